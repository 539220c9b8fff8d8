// Transport: byte I/O on one non-blocking connection, plain TCP or TLS.
//
// Used only on the connection's loop thread. Every call returns an IoResult; kAgain says
// which readiness (read or write) to wait for before calling again.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

#include "shared/tls/tls.h"

namespace wharf {

struct IoResult {
  enum Kind { kOk, kWantRead, kWantWrite, kEof, kError } kind;
  size_t bytes = 0;
  int err = 0;  // errno for kError on plain sockets
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual IoResult read(char* buf, size_t len) = 0;
  // more: a file body follows at once (plain TCP holds a partial segment for it, so
  // headers and a small body leave as one packet).
  virtual IoResult writev(const iovec* iov, int count, bool more = false) = 0;
  // Sends up to len bytes of file fd from offset: sendfile(2) on plain TCP, read and
  // encrypt on TLS. The caller retries with the same offset after kWant*.
  virtual IoResult sendFile(int file_fd, uint64_t offset, size_t len) = 0;
  virtual bool secure() const = 0;
  int fd() const { return fd_; }

 protected:
  explicit Transport(int fd) : fd_(fd) {}
  int fd_;
};

// Takes ownership of fd (closed on destruction).
std::unique_ptr<Transport> makePlainTransport(int fd);
// Server side; with a server_name, the client side of TLS.
std::unique_ptr<Transport> makeTlsTransport(int fd, const TlsContext& ctx, const std::string& server_name = "");

}  // namespace wharf
