// The HTTP/1.1 server in-process, driven over real sockets by the test client.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <mutex>
#include <thread>

#include "shared/http/server.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace server_test {

using namespace wharf;
using namespace wharf::test;

namespace {

// Produces `pieces` pieces of `size` bytes, one per timer tick, then ends (or fails
// after fail_after pieces).
class TickSource : public BodySource {
 public:
  TickSource(Loop& loop, int pieces, size_t size, bool known, int fail_after = -1)
      : timer_(std::make_shared<Timer>(loop)), pieces_(pieces), size_(size), known_(known), fail_after_(fail_after) {}
  void next(std::function<void(Status, Piece)> cb) override {
    timer_->start(2, [this, cb] {
      timer_->stop();
      if (sent_ == fail_after_) return cb(Status(Code::kUnavailable, "upstream went away"), {});
      Piece p;
      p.data = std::string(size_, static_cast<char>('a' + sent_ % 26));
      ++sent_;
      p.end = sent_ == pieces_;
      cb(Status::ok(), std::move(p));
    });
  }
  std::optional<uint64_t> length() const override {
    if (!known_) return std::nullopt;
    return static_cast<uint64_t>(pieces_) * size_;
  }

 private:
  std::shared_ptr<Timer> timer_;
  int pieces_;
  size_t size_;
  bool known_;
  int fail_after_;
  int sent_ = 0;
};

// Echo handler: answers with method, path, query and the body length it read.
void echo(const std::shared_ptr<Exchange>& ex) {
  if (ex->request().path == "/nobody") {
    ex->respond(Response::text(200, "ignored your body"));
    return;
  }
  if (ex->request().path.rfind("/stream", 0) == 0) {
    const std::string& p = ex->request().path;
    Response r;
    r.body = std::shared_ptr<BodySource>(std::make_shared<TickSource>(ex->loop(), 5, 70000, p == "/stream-known",
                                                                      p == "/stream-fail" ? 2 : -1));
    ex->respond(std::move(r));
    return;
  }
  if (ex->request().path == "/slow") {
    auto timer = std::make_shared<Timer>(ex->loop());
    timer->start(300, [ex, timer] {
      ex->respond(Response::text(200, "slow done"));
      timer->stop();
    });
    return;
  }
  ex->readFullBody(64 << 20, [ex](Status st, std::string body) {
    if (!st.isOk()) {
      ex->respond(Response::text(errorInfo(st.code()).http_status, st.message()));
      return;
    }
    const Request& r = ex->request();
    std::string out = r.method + " " + r.path + "?" + r.query + " " + std::to_string(body.size());
    Response resp = Response::text(200, out);
    if (r.isHead()) {
      resp.body = std::monostate();
      resp.head_length = 1234;
    }
    ex->respond(std::move(resp));
  });
}

struct TestServer {
  explicit TestServer(ServerLimits limits = {}, Handler h = echo) : server(makeConfig(limits), std::move(h)) {
    REQUIRE(server.start().isOk());
  }
  static ServerConfig makeConfig(const ServerLimits& limits) {
    ServerConfig c;
    c.threads = 2;
    c.limits = limits;
    return c;
  }
  Server server;
};

int rawConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

// True once the peer has closed fd (recv returns 0 or an error).
bool peerClosed(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char b[4096];
  ssize_t r = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
  return r == 0 || (r < 0 && errno != EAGAIN);
}

}  // namespace

TEST_CASE("keep-alive: several requests on one connection", "[http]") {
  TestServer s;
  HttpClient c("127.0.0.1", s.server.port());
  for (int i = 0; i < 5; ++i) {
    auto r = c.request("POST", "/echo?i=" + std::to_string(i), {}, "hello");
    REQUIRE(r.isOk());
    CHECK(r->status == 200);
    CHECK(r->body == "POST /echo?i=" + std::to_string(i) + " 5");
    CHECK_FALSE(r->closed);
  }
}

TEST_CASE("pipelined requests are answered in order", "[http]") {
  TestServer s;
  HttpClient c("127.0.0.1", s.server.port());
  std::string batch;
  for (int i = 0; i < 3; ++i) {
    batch += "POST /p" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(i) + "\r\n\r\n" +
             std::string(static_cast<size_t>(i), 'x');
  }
  batch += "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(c.send(batch).isOk());
  for (int i = 0; i < 3; ++i) {
    auto r = c.read();
    REQUIRE(r.isOk());
    CHECK(r->body == "POST /p" + std::to_string(i) + "? " + std::to_string(i));
  }
  auto slow = c.read();
  REQUIRE(slow.isOk());
  CHECK(slow->body == "slow done");
  auto after = c.read();
  REQUIRE(after.isOk());
  CHECK(after->body == "GET /after? 0");
}

TEST_CASE("a request split into single bytes is parsed", "[http]") {
  TestServer s;
  HttpClient c("127.0.0.1", s.server.port());
  std::string req = "PUT /split?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
  for (char ch : req) REQUIRE(c.send(std::string(1, ch)).isOk());
  auto r = c.read();
  REQUIRE(r.isOk());
  CHECK(r->body == "PUT /split?a=1 3");
}

TEST_CASE("chunked request bodies are decoded", "[http]") {
  TestServer s;
  HttpClient c("127.0.0.1", s.server.port());
  auto r = c.raw("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  REQUIRE(r.isOk());
  CHECK(r->body == "POST /c? 11");
  r = c.raw("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
  REQUIRE(r.isOk());
  CHECK(r->status == 400);
}

TEST_CASE("malformed requests get 400 and the connection closes", "[http]") {
  TestServer s;
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET /\r\nHost: x\r\n\r\n",
                          "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"}) {
    HttpClient c("127.0.0.1", s.server.port());
    auto r = c.raw(bad);
    REQUIRE(r.isOk());
    INFO(bad);
    CHECK(r->status == 400);
    CHECK(r->closed);
  }
  // Targets that are not a clean path.
  HttpClient c("127.0.0.1", s.server.port());
  for (const char* target : {"/a/../b", "/a%2fb", "/a//b", "/%zz", "/./a"}) {
    auto r = c.request("GET", target);
    INFO(target << " " << r.status().toString());
    REQUIRE(r.isOk());
    CHECK(r->status == 400);
  }
}

TEST_CASE("header and URL limits", "[http]") {
  ServerLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_headers = 10;
  limits.max_url_bytes = 1024;
  TestServer s(limits);
  {
    HttpClient c("127.0.0.1", s.server.port());
    auto r = c.raw("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n");
    REQUIRE(r.isOk());
    CHECK(r->status == 431);
  }
  {
    HttpClient c("127.0.0.1", s.server.port());
    std::string req = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 20; ++i) req += "X-H" + std::to_string(i) + ": v\r\n";
    auto r = c.raw(req + "\r\n");
    REQUIRE(r.isOk());
    CHECK(r->status == 431);
  }
  {
    HttpClient c("127.0.0.1", s.server.port());
    auto r = c.raw("GET /" + std::string(2000, 'u') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(r.isOk());
    CHECK(r->status == 414);
  }
}

TEST_CASE("Expect: 100-continue is answered when the body is read", "[http]") {
  TestServer s;
  int fd = rawConnect(s.server.port());
  std::string head = "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
  REQUIRE(::send(fd, head.data(), head.size(), 0) == static_cast<ssize_t>(head.size()));
  // The interim response arrives before any body byte is sent.
  std::string got;
  bool interim = waitFor([&] {
    char b[256];
    ssize_t r = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (r > 0) got.append(b, static_cast<size_t>(r));
    return got.find("\r\n\r\n") != std::string::npos;
  });
  REQUIRE(interim);
  CHECK(got == "HTTP/1.1 100 Continue\r\n\r\n");
  REQUIRE(::send(fd, "body", 4, 0) == 4);
  got.clear();
  REQUIRE(waitFor([&] {
    char b[1024];
    ssize_t r = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (r > 0) got.append(b, static_cast<size_t>(r));
    return got.find("PUT /e? 4") != std::string::npos;
  }));
  CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  ::close(fd);
  // A handler that answers without reading: no 100, the connection closes.
  HttpClient d("127.0.0.1", s.server.port());
  auto n = d.raw("PUT /nobody HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n");
  REQUIRE(n.isOk());
  CHECK(n->status == 200);
  CHECK(n->closed);
}

TEST_CASE("HEAD responses carry Content-Length and no body", "[http]") {
  TestServer s;
  HttpClient c("127.0.0.1", s.server.port());
  auto r = c.request("HEAD", "/h");
  REQUIRE(r.isOk());
  CHECK(r->header("content-length") == "1234");
  CHECK(r->body.empty());
  auto again = c.request("GET", "/h2");  // the connection stays usable
  REQUIRE(again.isOk());
  CHECK(again->body == "GET /h2? 0");
}

TEST_CASE("request bodies are handed over in bounded pieces", "[http]") {
  ServerLimits limits;
  limits.body_buffer_bytes = 1 << 20;
  std::mutex mu;
  size_t largest = 0, total = 0;
  int pieces = 0;
  auto handler = [&](std::shared_ptr<Exchange> ex) {
    auto step = std::make_shared<std::function<void(Status, std::string, bool)>>();
    *step = [&, ex, step](Status st, std::string data, bool end) {
      REQUIRE(st.isOk());
      {
        std::lock_guard lock(mu);
        largest = std::max(largest, data.size());
        total += data.size();
        ++pieces;
      }
      if (end) {
        ex->respond(Response::text(200, "ok"));
        *step = nullptr;
        return;
      }
      // A slow consumer: take the next piece only a little later.
      auto t = std::make_shared<Timer>(ex->loop());
      t->start(2, [ex, step, t] {
        ex->readBody(*step);
        t->stop();
      });
    };
    ex->readBody(*step);
  };
  TestServer s(limits, handler);
  HttpClient c("127.0.0.1", s.server.port());
  std::string body(32 << 20, 'b');
  auto r = c.request("PUT", "/big", {}, body);
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  std::lock_guard lock(mu);
  CHECK(total == body.size());
  CHECK(pieces > 8);
  // Never more than the buffer plus one read's worth.
  CHECK(largest <= limits.body_buffer_bytes + 256 * 1024);
}

TEST_CASE("idle connections are closed after the idle timeout", "[http]") {
  ServerLimits limits;
  limits.idle_timeout_ms = 200;
  limits.io_timeout_ms = 300;
  limits.header_timeout_ms = 400;
  TestServer s(limits);
  int idle = rawConnect(s.server.port());
  CHECK(waitFor([&] { return peerClosed(idle); }, 5000));
  ::close(idle);
  // A request whose head trickles in a byte at a time still ends at the header
  // deadline (each byte used to restart the I/O timeout): 408 with the OCI error body.
  int stalled = rawConnect(s.server.port());
  std::string partial = "GET / HTTP/1.1\r\nHost: x\r\n";
  REQUIRE(::send(stalled, partial.data(), partial.size(), 0) == static_cast<ssize_t>(partial.size()));
  std::string got;
  bool closed = waitFor([&] {
    if (::send(stalled, "X", 1, MSG_NOSIGNAL) != 1) return true;
    pollfd p{stalled, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char b[4096];
      ssize_t r = ::recv(stalled, b, sizeof b, MSG_DONTWAIT);
      if (r <= 0) return true;
      got.append(b, static_cast<size_t>(r));
    }
    return false;
  }, 5000);
  CHECK(closed);
  CHECK(got.rfind("HTTP/1.1 408 ", 0) == 0);
  CHECK(got.find("\"code\":\"TIMEOUT\"") != std::string::npos);
  ::close(stalled);
}

TEST_CASE("stop() lets a request in flight finish and refuses new connections", "[http]") {
  auto s = std::make_unique<TestServer>();
  int port = s->server.port();
  HttpClient c("127.0.0.1", port);
  REQUIRE(c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").isOk());
  HttpClient idle("127.0.0.1", port);
  REQUIRE(idle.request("GET", "/warm").isOk());
  std::thread stopper([&] { s->server.stop(); });
  auto r = c.read();
  stopper.join();
  REQUIRE(r.isOk());
  CHECK(r->body == "slow done");
  CHECK(r->closed);
  HttpClient late("127.0.0.1", port);
  CHECK_FALSE(late.request("GET", "/x").isOk());
}

TEST_CASE("streamed response bodies: chunked, with a known length, and cut short", "[http]") {
  TestServer s;
  HttpClient c("127.0.0.1", s.server.port());
  auto r = c.request("GET", "/stream");
  REQUIRE(r.isOk());
  CHECK(r->header("transfer-encoding") == "chunked");
  REQUIRE(r->body.size() == 5u * 70000);
  CHECK(r->body.substr(0, 3) == "aaa");
  CHECK(r->body.substr(4 * 70000, 3) == "eee");
  r = c.request("GET", "/stream-known");  // same connection: keep-alive survives
  REQUIRE(r.isOk());
  CHECK(r->header("content-length") == "350000");
  CHECK(r->body.size() == 350000u);
  r = c.request("HEAD", "/stream-known");
  REQUIRE(r.isOk());
  CHECK(r->header("content-length") == "350000");
  CHECK(r->body.empty());
  // A source that fails mid-way: the client sees a broken response, not a short one.
  auto broken = c.request("GET", "/stream-fail");
  CHECK_FALSE(broken.isOk());
}

TEST_CASE("a handler that throws answers 500 with its request id and the server goes on", "[http]") {
  ServerLimits limits;
  Handler handler = [](std::shared_ptr<Exchange> ex) {
    if (ex->request().path == "/throw") throw std::runtime_error("a bug");
    if (ex->request().path == "/throw-in-body") {
      ex->readBody([](Status, std::string, bool) { throw std::logic_error("a bug reading the body"); });
      return;
    }
    ex->respond(Response::text(200, "fine"));
  };
  TestServer s(limits, handler);
  for (const char* path : {"/throw", "/throw-in-body"}) {
    INFO(path);
    HttpClient c("127.0.0.1", s.server.port());
    auto r = c.request("POST", path, {}, "body");
    REQUIRE(r.isOk());
    CHECK(r->status == 500);
    CHECK(r->body.find("\"UNKNOWN\"") != std::string::npos);
    CHECK_FALSE(r->header("x-request-id").empty());
    CHECK(r->body.find(r->header("x-request-id")) != std::string::npos);
  }
  HttpClient c("127.0.0.1", s.server.port());
  auto r = c.request("GET", "/fine");
  REQUIRE(r.isOk());
  CHECK(r->body == "fine");
}

}  // namespace server_test
