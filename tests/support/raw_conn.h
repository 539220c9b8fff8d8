// A raw TCP connection for tests that speak HTTP byte by byte (malformed requests,
// trickling clients, many idle connections).
#pragma once

#include <string>
#include <string_view>

namespace wharf::test {

class RawConn {
 public:
  // Connects to 127.0.0.1:port; valid() is false if the connection failed.
  explicit RawConn(int port);
  ~RawConn();
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Sends all of data; false if the peer is gone.
  bool send(std::string_view data);
  // Reads what arrives until the peer closes or deadline_ms passes; closed() tells which.
  std::string readUntilClosed(int deadline_ms);
  // Reads one whole response (head and Content-Length body), or what came by the deadline.
  std::string readResponse(int deadline_ms);
  // Reads what is available now without waiting; notes a close.
  std::string poll();
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string pending_;  // bytes read past the last response
};

// The status code of a raw response ("HTTP/1.1 408 ..." -> 408), or 0.
int statusOf(std::string_view response);
// The body of a raw response (after the blank line).
std::string bodyOf(std::string_view response);

}  // namespace wharf::test
