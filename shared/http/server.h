// HTTP/1.1 server: N loop threads, each accepting on its own SO_REUSEPORT socket.
//
// The handler is called on a loop thread, once per request, when the request headers are
// complete; it answers through the Exchange, possibly later and from that same loop
// thread (work done elsewhere comes back with Loop::post()).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shared/base/status.h"
#include "shared/event/loop.h"
#include "shared/http/message.h"
#include "shared/tls/tls.h"

namespace wharf {

class Connection;

struct ServerLimits {
  size_t max_header_bytes = 64 * 1024;  // request line + all header fields
  size_t max_headers = 100;
  size_t max_url_bytes = 8 * 1024;
  uint64_t idle_timeout_ms = 60'000;    // keep-alive wait for the next request
  uint64_t io_timeout_ms = 60'000;      // no progress writing a response; the window of body_min_rate
  // The whole request head (request line and header fields) must arrive within this,
  // counted from its first byte, or from the connection's start for its first request
  // (then at most idle_timeout):
  // a client that trickles a header in a byte at a time is answered 408 and closed.
  uint64_t header_timeout_ms = 30'000;
  // While the server waits for a request body, at least this many bytes per second must
  // arrive, measured over each io_timeout window (and at least one byte per window):
  // a body that stalls or trickles is answered 408 and the connection closed.
  uint64_t body_min_rate = 1024;
  size_t body_buffer_bytes = 4 * 1024 * 1024;  // request body buffered before reads stop
  uint64_t shutdown_grace_ms = 30'000;
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 0;
  int threads = 0;  // 0 = number of cores
  ServerLimits limits;
  std::shared_ptr<TlsContext> tls;  // null: plain TCP
};

// One request and its response. All methods must be called on the loop thread that
// called the handler. When the client goes away first, the Exchange becomes detached:
// respond() does nothing and a pending readBody() callback gets kCancelled.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  // data holds the next bytes of the body; end is true with the last piece.
  using BodyCallback = std::function<void(Status status, std::string data, bool end)>;

  const Request& request() const { return request_; }
  Loop& loop() { return *loop_; }
  bool detached() const { return conn_ == nullptr; }

  // Calls cb exactly once with whatever body bytes are buffered (waiting for some if
  // none are), or with end = true and no data when the body is complete. Call again for
  // more. Sends "100 Continue" first when the client asked for it.
  void readBody(BodyCallback cb);
  // Gives back a piece readBody() handed out, its bytes used: it is kept for the next
  // large bodies this loop thread reads (its pages are the process's already, where a
  // fresh buffer of megabytes costs a page fault every 4 KiB).
  void recycleBody(std::string piece);
  // Reads the whole body, refusing bodies over max_bytes with kTooLarge.
  void readFullBody(size_t max_bytes, std::function<void(Status, std::string)> cb);
  // Sends the response. Exactly once per exchange.
  void respond(Response response);
  bool responded() const { return responded_; }
  // Called if the connection closes before the response is complete.
  void setOnAbort(std::function<void()> cb) { on_abort_ = std::move(cb); }

 private:
  friend class Connection;
  Request request_;
  Loop* loop_ = nullptr;
  Connection* conn_ = nullptr;
  bool responded_ = false;
  std::function<void()> on_abort_;
  int64_t start_ms_ = 0;
};

using Handler = std::function<void(std::shared_ptr<Exchange>)>;

class Server {
 public:
  Server(ServerConfig config, Handler handler);
  ~Server();

  // Binds and starts the loop threads. The port is known when start() returns.
  Status start();
  int port() const { return port_; }
  // Stops accepting, lets requests in flight finish (up to the grace period), closes
  // idle connections, and joins the threads. Thread-safe; idempotent.
  void stop();
  // The loop of thread i (for timers and posting).
  Loop& loop(size_t i);
  size_t threads() const { return workers_.size(); }

 private:
  struct Worker;
  void runWorker(Worker* w);

  ServerConfig config_;
  Handler handler_;
  int port_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stopped_{false};
};

}  // namespace wharf
