#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "edge/cache/fill_coordinator.h"
#include "tests/support/oci_layout.h"
#include "tests/support/loop_thread.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace fill_coordinator_test {

using namespace wharf;
using namespace wharf::test;

namespace {

// A loop on its own thread, for followers' events.

struct Recorder {
  std::mutex mu;
  std::vector<Fill::Event> events;
  void operator()(const Fill::Event& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  }
  bool ended() {
    std::lock_guard lock(mu);
    return !events.empty() && events.back().state != Fill::State::kFilling;
  }
  Fill::Event last() {
    std::lock_guard lock(mu);
    return events.back();
  }
};

std::string readAll(Fd& fd, uint64_t n) {
  std::string out(n, '\0');
  REQUIRE(preadAll(fd.get(), out.data(), n, 0).isOk());
  return out;
}

}  // namespace

TEST_CASE("fill: many parallel misses make exactly one leader", "[edge][fill]") {
  TempDir dir;
  auto coord = FillCoordinator::open(dir.path());
  REQUIRE(coord.isOk());
  std::string data = randomData(1 << 20, 1);
  Digest d = digestOf(data);
  std::atomic<int> leaders{0}, followers{0};
  std::vector<FillCoordinator::Join> joins(16);
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      auto j = (*coord)->join(d, data.size());
      REQUIRE(j.isOk());
      (j->role == FillCoordinator::Role::kLeader ? leaders : followers)++;
      joins[static_cast<size_t>(i)] = std::move(j).value();
    });
  }
  for (auto& t : threads) t.join();
  CHECK(leaders == 1);
  CHECK(followers == 15);
  CHECK((*coord)->leaders() == 1);
}

TEST_CASE("fill: followers see bytes as they arrive, then the committed blob", "[edge][fill]") {
  TempDir dir;
  auto coord = std::move(FillCoordinator::open(dir.path())).value();
  LoopThread lt;
  std::string data = randomData(300000, 2);
  Digest d = digestOf(data);
  auto leader = std::move(coord->join(d, data.size())).value();
  REQUIRE(leader.role == FillCoordinator::Role::kLeader);
  auto follower = std::move(coord->join(d, data.size())).value();
  REQUIRE(follower.role == FillCoordinator::Role::kFollower);
  Recorder rec;
  follower.fill->subscribe(lt.loop, [&](const Fill::Event& e) { rec(e); });

  REQUIRE(leader.leader->append(std::string_view(data).substr(0, 100000)).isOk());
  // The follower is told before the fill ends, and can read what is there.
  REQUIRE(waitFor([&] {
    std::lock_guard lock(rec.mu);
    return !rec.events.empty();
  }));
  CHECK(rec.events.front().state == Fill::State::kFilling);
  CHECK(rec.events.front().available == 100000);
  CHECK(readAll(*follower.fill->reader(), 100000) == data.substr(0, 100000));

  REQUIRE(leader.leader->append(std::string_view(data).substr(100000)).isOk());
  REQUIRE(leader.leader->finish().isOk());
  REQUIRE(waitFor([&] { return rec.ended(); }));
  CHECK(rec.last().state == Fill::State::kDone);
  CHECK(rec.last().available == data.size());
  // The descriptor stays valid across the rename; the blob is committed.
  CHECK(readAll(*follower.fill->reader(), data.size()) == data);
  auto again = std::move(coord->join(d, data.size())).value();
  CHECK(again.role == FillCoordinator::Role::kCached);
  CHECK(coord->inFlight() == 0);
  CHECK(::access((dir / "partial/" + d.hex()).c_str(), F_OK) != 0);
}

TEST_CASE("fill: corrupt or short upstream bytes commit nothing and fail every follower", "[edge][fill]") {
  TempDir dir;
  auto coord = std::move(FillCoordinator::open(dir.path())).value();
  LoopThread lt;
  std::string data = randomData(5000, 3);
  Digest d = digestOf(data);

  SECTION("wrong bytes") {
    auto leader = std::move(coord->join(d, data.size())).value();
    auto follower = std::move(coord->join(d, data.size())).value();
    Recorder rec;
    follower.fill->subscribe(lt.loop, [&](const Fill::Event& e) { rec(e); });
    std::string bad = data;
    bad[100] ^= 1;
    REQUIRE(leader.leader->append(bad).isOk());
    Status st = leader.leader->finish();
    CHECK(st.code() == Code::kCorruption);
    REQUIRE(waitFor([&] { return rec.ended(); }));
    CHECK(rec.last().state == Fill::State::kFailed);
    CHECK(rec.last().error.code() == Code::kCorruption);
  }
  SECTION("too many bytes") {
    auto leader = std::move(coord->join(d, data.size())).value();
    CHECK_FALSE(leader.leader->append(data + "x").isOk());
    CHECK(leader.fill->current().state == Fill::State::kFailed);
  }
  SECTION("too few bytes") {
    auto leader = std::move(coord->join(d, data.size())).value();
    REQUIRE(leader.leader->append(data.substr(0, 10)).isOk());
    CHECK(leader.leader->finish().code() == Code::kCorruption);
  }
  SECTION("the leader goes away") {
    auto leader = std::move(coord->join(d, data.size())).value();
    auto follower = std::move(coord->join(d, data.size())).value();
    Recorder rec;
    follower.fill->subscribe(lt.loop, [&](const Fill::Event& e) { rec(e); });
    REQUIRE(leader.leader->append(data.substr(0, 10)).isOk());
    leader.leader.reset();
    REQUIRE(waitFor([&] { return rec.ended(); }));
    CHECK(rec.last().state == Fill::State::kFailed);
  }
  // Nothing committed, nothing partial; the next request leads a new fill.
  CHECK(::access(coord->blobPath(d).c_str(), F_OK) != 0);
  CHECK(::access((dir / "partial/" + d.hex()).c_str(), F_OK) != 0);
  auto next = std::move(coord->join(d, data.size())).value();
  CHECK(next.role == FillCoordinator::Role::kLeader);
  REQUIRE(next.leader->append(data).isOk());
  CHECK(next.leader->finish().isOk());
}

TEST_CASE("fill: a late subscriber to an ended fill gets the final event", "[edge][fill]") {
  TempDir dir;
  auto coord = std::move(FillCoordinator::open(dir.path())).value();
  LoopThread lt;
  std::string data = "small";
  Digest d = digestOf(data);
  auto leader = std::move(coord->join(d, data.size())).value();
  auto fill = leader.fill;
  REQUIRE(leader.leader->append(data).isOk());
  REQUIRE(leader.leader->finish().isOk());
  Recorder rec;
  fill->subscribe(lt.loop, [&](const Fill::Event& e) { rec(e); });
  REQUIRE(waitFor([&] { return rec.ended(); }));
  CHECK(rec.last().state == Fill::State::kDone);
}

TEST_CASE("fill: partial files from a crash are dropped at start", "[edge][fill]") {
  TempDir dir;
  { auto coord = std::move(FillCoordinator::open(dir.path())).value(); }
  // What a killed edge leaves: a partial file nobody will finish.
  REQUIRE(writeFileDurable(dir / "partial/deadbeef", "half a blob").isOk());
  auto coord = std::move(FillCoordinator::open(dir.path())).value();
  CHECK(::access((dir / "partial/deadbeef").c_str(), F_OK) != 0);
  CHECK(coord->inFlight() == 0);
}

}  // namespace fill_coordinator_test
