// SseClient: a raw text/event-stream reader for tests of the live event feed: chunked
// transfer decoding and SSE blocks, read with a deadline (poll), never a sleep.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "shared/base/clock.h"
#include "shared/http/blocking_client.h"

namespace wharf::test {

class SseClient {
 public:
  SseClient(int port, const std::string& path, const HeaderList& headers) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    req += "\r\n";
    REQUIRE(::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  }
  ~SseClient() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  struct Ev {
    uint64_t id;
    std::string type;
    nlohmann::json data;
  };
  // Reads until pred() holds or the deadline passes; returns pred().
  template <typename Pred>
  bool readUntil(Pred pred, int deadline_ms = 15000) {
    int64_t end = monotonicMillis() + deadline_ms;
    while (!pred()) {
      int64_t left = end - monotonicMillis();
      if (left <= 0 || fd_ < 0) return pred();
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[8192];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
        close();
        return pred();
      }
      in_.append(buf, static_cast<size_t>(n));
      parse();
    }
    return true;
  }
  int status() const { return status_; }
  const std::string& headers() const { return head_; }
  const std::vector<Ev>& events() const { return events_; }
  bool sawRetryHint() const { return retry_; }

 private:
  void parse() {
    if (status_ == 0) {
      size_t end = in_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      head_ = in_.substr(0, end);
      status_ = std::atoi(in_.c_str() + 9);
      in_.erase(0, end + 4);
    }
    for (;;) {
      size_t eol = in_.find("\r\n");
      if (eol == std::string::npos) break;
      size_t size = std::strtoull(in_.substr(0, eol).c_str(), nullptr, 16);
      if (in_.size() < eol + 2 + size + 2) break;
      sse_.append(in_, eol + 2, size);
      in_.erase(0, eol + 2 + size + 2);
    }
    for (size_t end; (end = sse_.find("\n\n")) != std::string::npos;) {
      std::string block = sse_.substr(0, end);
      sse_.erase(0, end + 2);
      Ev e{0, "", nullptr};
      size_t start = 0;
      while (start < block.size()) {
        size_t nl = block.find('\n', start);
        std::string line = block.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        start = nl == std::string::npos ? block.size() : nl + 1;
        if (line.rfind("id: ", 0) == 0) e.id = std::stoull(line.substr(4));
        if (line.rfind("event: ", 0) == 0) e.type = line.substr(7);
        if (line.rfind("data: ", 0) == 0) e.data = nlohmann::json::parse(line.substr(6));
        if (line.rfind("retry: ", 0) == 0) retry_ = true;
      }
      if (e.id != 0) events_.push_back(std::move(e));
    }
  }
  int fd_ = -1;
  std::string in_, sse_, head_;
  int status_ = 0;
  bool eof_ = false;
  bool retry_ = false;
  std::vector<Ev> events_;
};

}  // namespace wharf::test
