// FillSource: a response tailing a fill sends bytes as they arrive, but its last byte
// only once the whole blob verified, so a corrupt fill can never look complete to a
// client that counts on Content-Length.
#include <catch2/catch.hpp>

#include <mutex>

#include "edge/cache/fill_coordinator.h"
#include "edge/pull/fill_source.h"
#include "tests/support/loop_thread.h"
#include "tests/support/oci_layout.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace fill_source_test {

using namespace wharf;
using namespace wharf::test;

namespace {

// Pulls pieces from a source on its loop until it ends, fails, or has nothing new.
struct Drain {
  std::mutex mu;
  uint64_t bytes = 0;
  bool ended = false;
  Status error;
  bool waiting = false;  // a next() is pending (nothing available yet)

  void pump(LoopThread& lt, const std::shared_ptr<FillSource>& src) {
    lt.loop.post([this, src, &lt] { step(lt, src); });
  }
  void step(LoopThread& lt, std::shared_ptr<FillSource> src) {
    {
      std::lock_guard lock(mu);
      waiting = true;
    }
    src->next([this, src, &lt](Status st, BodySource::Piece p) {
      std::lock_guard lock(mu);
      waiting = false;
      if (!st.isOk()) {
        error = st;
        return;
      }
      bytes += p.file.length + p.data.size();
      if (p.end) {
        ended = true;
        return;
      }
      lt.loop.post([this, src, &lt] { step(lt, src); });
    });
  }
  uint64_t sent() {
    std::lock_guard lock(mu);
    return bytes;
  }
};

}  // namespace

TEST_CASE("fill source: the last byte waits for verification", "[edge][fill]") {
  TempDir dir;
  auto coord = std::move(FillCoordinator::open(dir.path())).value();
  LoopThread lt;
  std::string data = randomData(200000, 5);
  Digest d = digestOf(data);
  auto leader = std::move(coord->join(d, 0)).value();
  leader.fill->started(data.size());
  auto src = std::make_shared<FillSource>(lt.loop, leader.fill);
  CHECK(src->length() == data.size());
  Drain drain;
  drain.pump(lt, src);
  REQUIRE(leader.leader->append(data).isOk());
  // Every byte but the last goes out; the response cannot end yet.
  REQUIRE(waitFor([&] { return drain.sent() == data.size() - 1; }));
  {
    std::lock_guard lock(drain.mu);
    CHECK_FALSE(drain.ended);
  }
  REQUIRE(leader.leader->finish().isOk());
  REQUIRE(waitFor([&] {
    std::lock_guard lock(drain.mu);
    return drain.ended;
  }));
  CHECK(drain.sent() == data.size());
}

TEST_CASE("fill source: a fill that does not verify leaves every response short and failed", "[edge][fill]") {
  TempDir dir;
  auto coord = std::move(FillCoordinator::open(dir.path())).value();
  LoopThread lt;
  std::string data = randomData(200000, 6);
  Digest d = digestOf(data);
  std::string corrupt = data;
  corrupt[1000] ^= 0x55;
  auto leader = std::move(coord->join(d, 0)).value();
  leader.fill->started(data.size());
  auto whole = std::make_shared<FillSource>(lt.loop, leader.fill);
  auto ranged = std::make_shared<FillSource>(lt.loop, leader.fill, 5000, 1000);  // a range inside the blob
  Drain a, b;
  a.pump(lt, whole);
  b.pump(lt, ranged);
  REQUIRE(leader.leader->append(corrupt).isOk());
  REQUIRE(waitFor([&] { return a.sent() == data.size() - 1 && b.sent() == 999; }));
  CHECK_FALSE(leader.leader->finish().isOk());
  REQUIRE(waitFor([&] {
    std::lock_guard la(a.mu), lb(b.mu);
    return !a.error.isOk() && !b.error.isOk();
  }));
  CHECK_FALSE(a.ended);
  CHECK_FALSE(b.ended);
  CHECK(a.sent() == data.size() - 1);
  CHECK(b.sent() == 999);
}

}  // namespace fill_source_test
