// The upstream HTTP client against the in-process server and raw misbehaving peers.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "shared/http/client.h"
#include "shared/http/server.h"
#include "tests/support/loop_thread.h"
#include "tests/support/process.h"
#include "tests/support/raw_peer.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace client_test {

using namespace wharf;
using namespace wharf::test;

namespace {


struct Collected {
  int status = 0;
  std::string body;
  Status result;
  int pieces = 0;
};

// Collects a response; optionally pauses after the first piece and resumes later.
class Collector : public ResponseHandler {
 public:
  Collector(Loop& loop, bool pause_once) : loop_(loop), pause_once_(pause_once) {}
  void onHeaders(const ClientResponse& r) override { got_.status = r.status; }
  bool onBody(std::string_view data) override {
    got_.body.append(data);
    ++got_.pieces;
    if (pause_once_ && got_.pieces == 1) {
      pause_once_ = false;
      paused_ = true;
      auto timer = std::make_shared<Timer>(loop_);
      timer->start(20, [this, timer] {
        call->resume();
        timer->stop();
      });
      return false;
    }
    return true;
  }
  void onComplete(Status st) override {
    got_.result = st;
    done_.set_value(got_);
  }
  std::shared_ptr<ClientCall> call;
  std::future<Collected> future() { return done_.get_future(); }
  bool paused_ = false;

 private:
  Loop& loop_;
  bool pause_once_;
  Collected got_;
  std::promise<Collected> done_;
};

std::unique_ptr<ClientPool> makePool(LoopThread& lt, const std::string& url, ClientOptions options) {
  auto upstream = Upstream::resolve(url);
  REQUIRE(upstream.isOk());
  auto pool = ClientPool::create(lt.loop, *upstream, std::move(options));
  REQUIRE(pool.isOk());
  return std::move(pool).value();
}

Collected fetch(LoopThread& lt, ClientPool& pool, const std::string& method, const std::string& target,
                bool pause_once = false) {
  auto collector = std::make_shared<Collector>(lt.loop, pause_once);
  auto fut = collector->future();
  lt.call([&] {
    ClientRequest r;
    r.method = method;
    r.target = target;
    collector->call = pool.send(r, collector);
    return 0;
  });
  REQUIRE(fut.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  return fut.get();
}

Server makeServer(ServerLimits limits = {}) {
  ServerConfig c;
  c.threads = 1;
  c.limits = limits;
  return Server(c, [](std::shared_ptr<Exchange> ex) {
    const Request& r = ex->request();
    if (r.path == "/big") {
      ex->respond(Response::text(200, std::string(3 << 20, 'z')));
    } else {
      ex->respond(Response::text(200, "hello " + r.path));
    }
  });
}

}  // namespace

TEST_CASE("client: requests reuse a keep-alive connection", "[http][client]") {
  Server server = makeServer();
  REQUIRE(server.start().isOk());
  LoopThread lt;
  auto pool = makePool(lt, "http://127.0.0.1:" + std::to_string(server.port()), {});
  for (int i = 0; i < 3; ++i) {
    auto got = fetch(lt, *pool, "GET", "/a" + std::to_string(i));
    CHECK(got.result.isOk());
    CHECK(got.status == 200);
    CHECK(got.body == "hello /a" + std::to_string(i));
  }
  CHECK(lt.call([&] { return pool->connectionsOpened(); }) == 1);
  auto head = fetch(lt, *pool, "HEAD", "/h");
  CHECK(head.result.isOk());
  CHECK(head.body.empty());
  lt.call([&] {
    pool.reset();
    return 0;
  });
}

TEST_CASE("client: a paused body resumes and arrives whole", "[http][client]") {
  Server server = makeServer();
  REQUIRE(server.start().isOk());
  LoopThread lt;
  auto pool = makePool(lt, "http://127.0.0.1:" + std::to_string(server.port()), {});
  auto got = fetch(lt, *pool, "GET", "/big", /*pause_once=*/true);
  CHECK(got.result.isOk());
  CHECK(got.body.size() == (3u << 20));
  CHECK(got.pieces > 1);
  lt.call([&] {
    pool.reset();
    return 0;
  });
}

TEST_CASE("client: a response cut short is an error, never a success", "[http][client]") {
  RawPeer peer([](int fd) {
    readRequestHead(fd);
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b";
    (void)::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  });
  LoopThread lt;
  auto pool = makePool(lt, peer.url(), {});
  auto got = fetch(lt, *pool, "GET", "/x");
  CHECK_FALSE(got.result.isOk());
  CHECK(got.body == "only ten b");
  lt.call([&] {
    pool.reset();
    return 0;
  });
}

TEST_CASE("client: refused connections and silent upstreams fail", "[http][client]") {
  LoopThread lt;
  {
    // A port nobody listens on.
    auto pool = makePool(lt, "http://127.0.0.1:" + std::to_string(freePort()), {});
    auto got = fetch(lt, *pool, "GET", "/x");
    CHECK(got.result.code() == Code::kUnavailable);
    lt.call([&] {
      pool.reset();
      return 0;
    });
  }
  std::promise<void> release;
  auto released = release.get_future();
  RawPeer silent([&](int fd) {
    readRequestHead(fd);
    released.wait_for(std::chrono::seconds(10));
  });
  ClientOptions o;
  o.io_timeout_ms = 200;
  auto pool = makePool(lt, silent.url(), o);
  auto got = fetch(lt, *pool, "GET", "/x");
  CHECK(got.result.code() == Code::kTimeout);
  release.set_value();
  lt.call([&] {
    pool.reset();
    return 0;
  });
}

TEST_CASE("client: a kept-alive connection the upstream closed is dropped, and the next request works", "[http][client]") {
  ServerLimits limits;
  limits.idle_timeout_ms = 100;
  Server server = makeServer(limits);
  REQUIRE(server.start().isOk());
  LoopThread lt;
  auto pool = makePool(lt, "http://127.0.0.1:" + std::to_string(server.port()), {});
  CHECK(fetch(lt, *pool, "GET", "/one").result.isOk());
  // Wait until the server has closed the idle connection and the pool noticed.
  REQUIRE(waitFor([&] { return lt.call([&] { return pool->idleConnections(); }) == 0; }, 5000));
  auto got = fetch(lt, *pool, "GET", "/two");
  CHECK(got.result.isOk());
  CHECK(got.body == "hello /two");
  lt.call([&] {
    pool.reset();
    return 0;
  });
}

TEST_CASE("client: base URLs are parsed strictly", "[http][client]") {
  auto u = parseBaseUrl("https://registry.example.com:8443/");
  REQUIRE(u.isOk());
  CHECK(u->tls);
  CHECK(u->host == "registry.example.com");
  CHECK(u->port == 8443);
  CHECK(u->host_header == "registry.example.com:8443");
  CHECK(parseBaseUrl("http://[::1]:5000")->host == "::1");
  CHECK(parseBaseUrl("http://core")->port == 80);
  CHECK_FALSE(parseBaseUrl("ftp://core").isOk());
  CHECK_FALSE(parseBaseUrl("http://core/v2").isOk());
  CHECK_FALSE(parseBaseUrl("http://core:99999").isOk());
  CHECK_FALSE(Upstream::resolve("http://no-such-host.invalid:80").isOk());
}

}  // namespace client_test
