#include "shared/net/transport.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace wharf {
namespace {

IoResult fromErrno(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) return {IoResult::kWantWrite};
  return {IoResult::kError, 0, err};
}

class PlainTransport final : public Transport {
 public:
  explicit PlainTransport(int fd) : Transport(fd) {}
  ~PlainTransport() override { ::close(fd_); }

  IoResult read(char* buf, size_t len) override {
    for (;;) {
      ssize_t r = ::read(fd_, buf, len);
      if (r > 0) return {IoResult::kOk, static_cast<size_t>(r)};
      if (r == 0) return {IoResult::kEof};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoResult::kWantRead};
      return {IoResult::kError, 0, errno};
    }
  }

  IoResult writev(const iovec* iov, int count, bool more) override {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(count);
    for (;;) {
      // MSG_NOSIGNAL: a peer that went away is an error here, not a SIGPIPE.
      ssize_t w = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
      if (w >= 0) return {IoResult::kOk, static_cast<size_t>(w)};
      if (errno == EINTR) continue;
      return fromErrno(errno);
    }
  }

  IoResult sendFile(int file_fd, uint64_t offset, size_t len) override {
    off_t off = static_cast<off_t>(offset);
    for (;;) {
      ssize_t w = ::sendfile(fd_, file_fd, &off, len);
      if (w > 0) return {IoResult::kOk, static_cast<size_t>(w)};
      if (w == 0) return {IoResult::kError, 0, EIO};  // file shorter than promised
      if (errno == EINTR) continue;
      return fromErrno(errno);
    }
  }

  bool secure() const override { return false; }
};

IoResult fromTls(TlsIo io) {
  switch (io.kind) {
    case TlsIo::kDone: return {IoResult::kOk, io.bytes};
    case TlsIo::kWantRead: return {IoResult::kWantRead};
    case TlsIo::kWantWrite: return {IoResult::kWantWrite};
    case TlsIo::kEof: return {IoResult::kEof};
    case TlsIo::kError: break;
  }
  return {IoResult::kError, 0, EPROTO};
}

class TlsTransport final : public Transport {
 public:
  TlsTransport(int fd, const TlsContext& ctx, const std::string& server_name)
      : Transport(fd), session_(ctx, fd, server_name) {}
  ~TlsTransport() override { ::close(fd_); }

  IoResult read(char* buf, size_t len) override { return fromTls(session_.read(buf, len)); }

  IoResult writev(const iovec* iov, int count, bool /*more*/) override {
    // TLS records are written one buffer at a time; partial writes are enabled.
    size_t total = 0;
    for (int i = 0; i < count; ++i) {
      if (iov[i].iov_len == 0) continue;
      IoResult r = fromTls(session_.write(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len));
      if (r.kind != IoResult::kOk) return total > 0 ? IoResult{IoResult::kOk, total} : r;
      total += r.bytes;
      if (r.bytes < iov[i].iov_len) break;
    }
    return {IoResult::kOk, total};
  }

  IoResult sendFile(int file_fd, uint64_t offset, size_t len) override {
    // A write that wanted readiness must be retried with the same bytes.
    if (pending_.empty() || pending_offset_ != offset) {
      pending_.resize(std::min<size_t>(len, kChunk));
      ssize_t r = ::pread(file_fd, pending_.data(), pending_.size(), static_cast<off_t>(offset));
      if (r <= 0) {
        pending_.clear();
        return {IoResult::kError, 0, r == 0 ? EIO : errno};
      }
      pending_.resize(static_cast<size_t>(r));
      pending_offset_ = offset;
    }
    IoResult res = fromTls(session_.write(pending_.data(), pending_.size()));
    if (res.kind == IoResult::kOk) pending_.clear();
    return res;
  }

  bool secure() const override { return true; }

 private:
  static constexpr size_t kChunk = 64 * 1024;
  TlsSession session_;
  std::vector<char> pending_;
  uint64_t pending_offset_ = 0;
};

}  // namespace

std::unique_ptr<Transport> makePlainTransport(int fd) { return std::make_unique<PlainTransport>(fd); }
std::unique_ptr<Transport> makeTlsTransport(int fd, const TlsContext& ctx, const std::string& server_name) {
  return std::make_unique<TlsTransport>(fd, ctx, server_name);
}

}  // namespace wharf
