// Fuzzes the HTTP request path: bytes go through a real Connection (llhttp parsing,
// limits, body handling, pipelining) over a socketpair, then the request-target is
// normalized and routed exactly as wharf-core does.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "shared/base/log.h"
#include "shared/http/connection.h"
#include "shared/oci/routes.h"

using namespace wharf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool init = [] {
    setLogLevel(LogLevel::kError);
    signal(SIGPIPE, SIG_IGN);  // as Server::start() does
    return true;
  }();
  (void)init;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return 0;
  // Small limits so the fuzzer reaches them.
  ServerLimits limits;
  limits.max_header_bytes = 2048;
  limits.max_headers = 16;
  limits.max_url_bytes = 512;
  limits.body_buffer_bytes = 4096;
  Handler handler = [](std::shared_ptr<Exchange> ex) {
    (void)parseRoute(ex->request().path);
    ex->readFullBody(1 << 16, [ex](Status st, std::string body) {
      Response r = Response::text(st.isOk() ? 200 : 400, std::to_string(body.size()));
      ex->respond(std::move(r));
    });
  };
  {
    Loop loop;
    bool closed = false;
    auto* conn = new Connection(loop, makePlainTransport(fds[0]), "fuzz", limits, handler,
                                [&](Connection*) { closed = true; loop.stop(); });
    conn->start();
    // Feed the input, then close our write side so the connection sees EOF.
    size_t off = 0;
    while (off < size) {
      ssize_t w = ::send(fds[1], data + off, size - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    ::shutdown(fds[1], SHUT_WR);
    // Drain responses so the server never blocks on a full socket.
    Timer drain(loop);
    drain.start(
        0,
        [&] {
          char buf[65536];
          while (::recv(fds[1], buf, sizeof buf, MSG_DONTWAIT) > 0) {
          }
        },
        1);
    Timer deadline(loop);
    deadline.start(2000, [&] {
      if (!closed) conn->close();
    });
    loop.run();
    drain.stop();
    deadline.stop();
    (void)closed;
  }
  ::close(fds[1]);
  return 0;
}
