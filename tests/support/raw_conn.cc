#include "tests/support/raw_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <strings.h>

namespace wharf::test {
namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RawConn::RawConn(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConn::~RawConn() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConn::send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string RawConn::poll() {
  std::string out;
  for (;;) {
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed_ = true;
    return out;
  }
}

std::string RawConn::readUntilClosed(int deadline_ms) {
  std::string out = std::move(pending_);
  pending_.clear();
  int64_t end = nowMs() + deadline_ms;
  while (!closed_) {
    int64_t left = end - nowMs();
    if (left <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100))) > 0) out += poll();
  }
  return out;
}

std::string RawConn::readResponse(int deadline_ms) {
  std::string out = std::move(pending_);
  pending_.clear();
  int64_t end = nowMs() + deadline_ms;
  for (;;) {
    size_t head_end = out.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      size_t length = 0;
      std::string head = out.substr(0, head_end);
      for (size_t pos = 0; (pos = head.find("\r\n", pos)) != std::string::npos;) {
        pos += 2;
        if (strncasecmp(head.c_str() + pos, "content-length:", 15) == 0) {
          length = std::strtoull(head.c_str() + pos + 15, nullptr, 10);
        }
      }
      size_t total = head_end + 4 + length;
      if (out.size() >= total) {
        pending_ = out.substr(total);
        out.resize(total);
        return out;
      }
    }
    int64_t left = end - nowMs();
    if (closed_ || left <= 0) return out;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100))) > 0) out += poll();
  }
}

int statusOf(std::string_view response) {
  if (response.size() < 12 || response.substr(0, 5) != "HTTP/") return 0;
  return std::atoi(std::string(response.substr(9, 3)).c_str());
}

std::string bodyOf(std::string_view response) {
  size_t p = response.find("\r\n\r\n");
  return p == std::string_view::npos ? std::string() : std::string(response.substr(p + 4));
}

}  // namespace wharf::test
