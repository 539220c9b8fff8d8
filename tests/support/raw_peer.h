// A listening socket on 127.0.0.1 whose connections a test serves byte by byte: a peer
// that misbehaves (stops reading, never answers, cuts a response short) or an object
// store stand-in. Connections are served one after another, on one thread, by the
// script, until the peer is destroyed.
#pragma once

#include <functional>
#include <string>
#include <thread>

namespace wharf::test {

class RawPeer {
 public:
  explicit RawPeer(std::function<void(int fd)> script);
  ~RawPeer();
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::function<void(int)> script_;
  std::thread thread_;
};

// Reads a request's head (up to the blank line) and returns it; "" if the peer closed first.
std::string readRequestHead(int fd);

}  // namespace wharf::test
