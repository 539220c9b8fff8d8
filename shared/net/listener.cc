#include "shared/net/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>

#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/log.h"
#include "shared/metrics/metrics.h"

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
    int ready = out & (self->events_ | (status < 0 ? 3 : 0));
    runTask([self, ready] { self->cb_(ready); }, "poller");
  });
}

namespace {

Counter& exhaustedCounter() {
  static Counter& c = MetricsRegistry::global().counter(
      "wharf_http_accept_exhausted_total",
      "Times accept() failed for lack of descriptors (the listener then pauses briefly).");
  return c;
}
Counter& shedCounter() {
  static Counter& c = MetricsRegistry::global().counter(
      "wharf_http_connections_shed_total", "Connections answered 503 and closed at the descriptor limit.");
  return c;
}

int openReserve() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

Acceptor::Acceptor(Loop& loop, int listen_fd, std::function<void(int, std::string)> on_accept,
                   std::string shed_response)
    : fd_(listen_fd),
      poller_(loop, listen_fd, [this](int) { onReadable(); }),
      backoff_(loop),
      on_accept_(std::move(on_accept)),
      shed_response_(std::move(shed_response)),
      reserve_fd_(openReserve()) {
  exhaustedCounter();  // present in /metrics from the start
  shedCounter();
  poller_.watch(Poller::kReadable);
}

Acceptor::~Acceptor() {
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

void Acceptor::pause() {
  paused_ = true;
  backoff_.stop();
  poller_.watch(0);
}

void Acceptor::resume() {
  paused_ = false;
  poller_.watch(Poller::kReadable);
}

void Acceptor::onReadable() {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) return onExhausted(errno);
      logWarn("accept failed", {{"error", std::strerror(errno)}});
      return;
    }
    if (reserve_fd_ < 0) reserve_fd_ = openReserve();  // descriptors are free again
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

void Acceptor::onExhausted(int err) {
  exhaustedCounter().inc();
  ++unlogged_;
  if (reserve_fd_ >= 0) {
    // Tell one waiting client why instead of leaving it in the backlog.
    ::close(reserve_fd_);
    reserve_fd_ = -1;
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (!shed_response_.empty()) {
        ssize_t n = ::send(fd, shed_response_.data(), shed_response_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
      }
      ::close(fd);
      shedCounter().inc();
    }
    reserve_fd_ = openReserve();
  }
  int64_t now = monotonicMillis();
  if (last_log_ms_ == 0 || now - last_log_ms_ >= 10'000) {
    logWarn("out of file descriptors: pausing accept",
            {{"error", std::strerror(err)}, {"pause_ms", kBackoffMs}, {"times", unlogged_}});
    last_log_ms_ = now;
    unlogged_ = 0;
  }
  poller_.watch(0);
  backoff_.start(kBackoffMs, [this] {
    if (!paused_) poller_.watch(Poller::kReadable);
  });
}

}  // namespace wharf
