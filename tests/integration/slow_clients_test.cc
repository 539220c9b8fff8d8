// Slow clients against the real wharf-core: a request head that trickles in a byte at a
// time, and a body that stalls, end at their deadlines with a 408 and a close, however
// many of them there are; the core serves others meanwhile. (Before, the I/O timeout
// restarted on every byte: such a client held its connection and parser forever.)
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/raw_conn.h"

// Each file's own names: the test binaries are unity builds.
namespace slow_clients_test {

using namespace wharf;
using namespace wharf::test;

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

TEST_CASE("request heads that trickle in end at the header deadline with 408", "[hardening][slow]") {
  CoreServer core("", {"--header-timeout", "1s"});
  constexpr int kSlow = 50;
  std::vector<std::unique_ptr<RawConn>> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<RawConn>(core.port()));
    REQUIRE(slow.back()->valid());
    REQUIRE(slow.back()->send("GET /v2/ HTTP/1.1\r\nHost: x\r\n"));
  }
  auto start = Clock::now();
  std::vector<std::string> got(kSlow);
  // One header byte per connection every 50 ms: each byte used to restart the timeout.
  auto last_tick = start;
  bool all_closed = waitFor([&] {
    bool tick = Clock::now() - last_tick >= std::chrono::milliseconds(50);
    if (tick) last_tick = Clock::now();
    bool done = true;
    for (int i = 0; i < kSlow; ++i) {
      if (slow[i]->closed()) continue;
      done = false;
      if (tick) slow[i]->send("X");
      got[i] += slow[i]->poll();
    }
    return done;
  }, 10000);
  double elapsed = secondsSince(start);
  CHECK(all_closed);
  CHECK(elapsed < 5.0);
  int timed_out = 0;
  for (const auto& r : got) timed_out += statusOf(r) == 408 && r.find("\"TIMEOUT\"") != std::string::npos;
  CHECK(timed_out == kSlow);
  // Others are served meanwhile and after.
  HttpClient c("127.0.0.1", core.port());
  auto r = c.request("GET", "/v2/");
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  auto m = c.request("GET", "/metrics");
  REQUIRE(m.isOk());
  CHECK(m->body.find("wharf_http_timeouts_total{phase=\"header\"} " + std::to_string(kSlow)) != std::string::npos);
}

TEST_CASE("a connection that never sends a byte is closed at the header deadline", "[hardening][slow]") {
  CoreServer core("", {"--header-timeout", "1s"});
  RawConn quiet(core.port());
  REQUIRE(quiet.valid());
  auto start = Clock::now();
  std::string r = quiet.readUntilClosed(8000);
  CHECK(quiet.closed());
  CHECK(secondsSince(start) < 5.0);
  CHECK(r.empty());  // nothing was asked: nothing to answer
}

TEST_CASE("a request body that stalls or trickles is answered 408 and closed", "[hardening][slow]") {
  CoreServer core("", {"--io-timeout", "1s", "--body-min-rate", "1000"});
  HttpClient c("127.0.0.1", core.port());
  auto started = c.request("POST", "/v2/slow/body/blobs/uploads/");
  REQUIRE(started.isOk());
  REQUIRE(started->status == 202);
  std::string location = started->header("location");
  REQUIRE_FALSE(location.empty());
  for (bool trickle : {false, true}) {
    INFO((trickle ? "10 bytes every 100 ms (100 B/s)" : "nothing after the head"));
    RawConn conn(core.port());
    REQUIRE(conn.valid());
    REQUIRE(conn.send("PATCH " + location + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: 100000\r\n\r\n"));
    auto start = Clock::now();
    std::string r;
    auto last_send = start;
    bool closed = waitFor([&] {
      if (trickle && !conn.closed() && Clock::now() - last_send >= std::chrono::milliseconds(100)) {
        conn.send("0123456789");
        last_send = Clock::now();
      }
      r += conn.poll();
      return conn.closed();
    }, 10000);
    CHECK(closed);
    CHECK(secondsSince(start) < 6.0);
    CHECK(statusOf(r) == 408);
    CHECK(r.find("\"TIMEOUT\"") != std::string::npos);
  }
  auto ok = c.request("GET", "/v2/");
  REQUIRE(ok.isOk());
  CHECK(ok->status == 200);
}

}  // namespace slow_clients_test
