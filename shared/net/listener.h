// TCP listening sockets (one per loop thread, SO_REUSEPORT) and readiness polling.
#pragma once

#include <functional>
#include <string>

#include "shared/base/status.h"
#include "shared/event/loop.h"

typedef struct uv_poll_s uv_poll_t;

namespace wharf {

// Creates a non-blocking listening socket on host:port with SO_REUSEADDR and
// SO_REUSEPORT, so that every loop thread can listen on the same port and the kernel
// spreads connections. port 0 picks a free port; boundPort() tells which. With
// reuse_port false the socket is exclusive, which fails when any process listens there.
Result<int> listenTcp(const std::string& host, int port, int backlog = 1024, bool reuse_port = true);
int boundPort(int fd);

// Watches one fd for readability/writability on a loop (level-triggered). The callback
// receives the ready events; it may destroy the Poller.
class Poller {
 public:
  static constexpr int kReadable = 1;
  static constexpr int kWritable = 2;

  Poller(Loop& loop, int fd, std::function<void(int events)> cb);
  ~Poller();  // stops watching; the handle is freed in its close callback
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  void watch(int events);  // 0 stops watching
  int watching() const { return events_; }

 private:
  uv_poll_t* poll_;
  std::function<void(int)> cb_;
  int events_ = 0;
};

// Accepts connections from a listening fd on a loop and hands each accepted,
// non-blocking, TCP_NODELAY fd (and its peer address text) to on_accept, which owns it.
//
// At the descriptor limit (EMFILE, ENFILE) accept() would fail at once every time the
// listener is woken, spinning the loop. Instead the Acceptor gives back a descriptor it
// keeps in reserve, accepts one waiting connection with it, writes shed_response to it
// (an HTTP 503; nothing for TLS listeners) and closes it, then stops accepting for
// kBackoffMs and tries again: it recovers by itself once descriptors are free. The
// event is counted (wharf_http_accept_exhausted_total) and logged at most once per 10 s.
class Acceptor {
 public:
  static constexpr uint64_t kBackoffMs = 100;

  Acceptor(Loop& loop, int listen_fd, std::function<void(int fd, std::string peer)> on_accept,
           std::string shed_response = "");
  ~Acceptor();
  void pause();
  void resume();

 private:
  void onReadable();
  void onExhausted(int err);
  int fd_;
  Poller poller_;
  Timer backoff_;
  std::function<void(int, std::string)> on_accept_;
  std::string shed_response_;
  int reserve_fd_ = -1;   // /dev/null, given up to accept one connection at the limit
  bool paused_ = false;   // by pause(): the backoff does not resume it
  int64_t last_log_ms_ = 0;
  uint64_t unlogged_ = 0;
};

}  // namespace wharf
