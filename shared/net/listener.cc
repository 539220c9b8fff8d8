#include "shared/net/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>

#include "shared/base/fs.h"
#include "shared/base/log.h"

namespace wharf {

Result<int> listenTcp(const std::string& host, int port, int backlog, bool reuse_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) return Status(Code::kInvalidArgument, "listen address " + host + ": " + gai_strerror(rc));
  Status last(Code::kIoError, "no address for " + host);
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      last = errnoStatus("socket", errno);
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = errnoStatus("bind " + host + ":" + service, errno);
      continue;
    }
    if (::listen(fd.get(), backlog) != 0) {
      last = errnoStatus("listen " + host + ":" + service, errno);
      continue;
    }
    freeaddrinfo(res);
    return fd.release();
  }
  freeaddrinfo(res);
  return last;
}

int boundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return -1;
}

Poller::Poller(Loop& loop, int fd, std::function<void(int)> cb) : poll_(new uv_poll_t), cb_(std::move(cb)) {
  WHARF_ASSERT(uv_poll_init_socket(loop.raw(), poll_, fd) == 0);
  poll_->data = this;
}

Poller::~Poller() {
  poll_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
}

void Poller::watch(int events) {
  if (events == events_) return;
  events_ = events;
  if (events == 0) {
    uv_poll_stop(poll_);
    return;
  }
  int uv_events = ((events & kReadable) ? UV_READABLE : 0) | ((events & kWritable) ? UV_WRITABLE : 0);
  uv_poll_start(poll_, uv_events, [](uv_poll_t* p, int status, int ev) {
    auto* self = static_cast<Poller*>(p->data);
    if (self == nullptr) return;
    int out = 0;
    if (status < 0) {
      out = kReadable | kWritable;  // let the owner's read/write see the error
    } else {
      if (ev & (UV_READABLE | UV_DISCONNECT)) out |= kReadable;
      if (ev & UV_WRITABLE) out |= kWritable;
    }
    self->cb_(out & (self->events_ | (status < 0 ? 3 : 0)));
  });
}

Acceptor::Acceptor(Loop& loop, int listen_fd, std::function<void(int, std::string)> on_accept)
    : fd_(listen_fd), poller_(loop, listen_fd, [this](int) { onReadable(); }), on_accept_(std::move(on_accept)) {
  poller_.watch(Poller::kReadable);
}

void Acceptor::pause() { poller_.watch(0); }
void Acceptor::resume() { poller_.watch(Poller::kReadable); }

void Acceptor::onReadable() {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) return;
      logWarn("accept failed", {{"error", std::strerror(errno)}});
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, host, sizeof host);
    } else if (ss.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, host, sizeof host);
    }
    on_accept_(fd, host);
  }
}

}  // namespace wharf
