#include <catch2/catch.hpp>

#include <algorithm>

#include "edge/cache/cache_policy.h"

// Each file's own names: the test binaries are unity builds.
namespace cache_policy_test {

using namespace wharf;
using Id = CachePolicy::Id;

namespace {

constexpr int64_t kHour = 3'600'000;
constexpr uint64_t kMiB = 1 << 20;

CachePolicy::Options options(CachePolicy::Kind kind, uint64_t capacity) {
  CachePolicy::Options o;
  o.kind = kind;
  o.capacity = capacity;
  o.high_watermark = o.low_watermark = 1.0;  // a hard budget, as the replay uses
  return o;
}

std::vector<Id> ids(const std::vector<CachePolicy::Victim>& victims) {
  std::vector<Id> out;
  for (const auto& v : victims) out.push_back(v.id);
  return out;
}

// A miss as the edge handles it: admitted or not; room made; entered.
bool miss(CachePolicy& p, Id id, uint64_t size, int64_t now, std::vector<Id>* evicted = nullptr) {
  if (!p.admit(id, size, now)) return false;
  auto victims = p.makeRoom(size, now);
  if (evicted != nullptr) *evicted = ids(victims);
  p.insert(id, size, now);
  return true;
}

}  // namespace

TEST_CASE("cache policy: names", "[edge][cache_policy]") {
  CHECK(*CachePolicy::parseKind("lru") == CachePolicy::Kind::kLru);
  CHECK(*CachePolicy::parseKind("lfuda") == CachePolicy::Kind::kLfuDa);
  CHECK(*CachePolicy::parseKind("wharf") == CachePolicy::Kind::kWharf);
  CHECK(CachePolicy::parseKind("arc").status().code() == Code::kInvalidArgument);
  CHECK(std::string(CachePolicy::kindName(CachePolicy::Kind::kWharf)) == "wharf");
}

TEST_CASE("cache policy: lru admits every miss and evicts the least recently used", "[edge][cache_policy]") {
  CachePolicy p(options(CachePolicy::Kind::kLru, 300));
  CHECK(miss(p, 1, 100, 0));
  CHECK(miss(p, 2, 100, 1));
  CHECK(miss(p, 3, 100, 2));
  p.hit(1, 3);  // 2 is now the least recent
  std::vector<Id> evicted;
  CHECK(miss(p, 4, 100, 4, &evicted));
  CHECK(evicted == std::vector<Id>{2});
  CHECK(p.used() == 300);
  CHECK(p.contains(1));
  CHECK_FALSE(p.contains(2));
  // Larger than the whole budget: never.
  CHECK_FALSE(p.admit(5, 301, 5));
}

TEST_CASE("cache policy: lfuda keeps the frequent, ages, and admits large objects on their second miss",
          "[edge][cache_policy]") {
  CachePolicy p(options(CachePolicy::Kind::kLfuDa, 4 * kMiB));
  CHECK(miss(p, 1, kMiB / 2, 0));
  for (int i = 0; i < 5; ++i) p.hit(1, i);
  CHECK(miss(p, 2, kMiB / 2, 10));
  // A large object: refused at its first miss, admitted at its second.
  CHECK_FALSE(miss(p, 3, 2 * kMiB, 11));
  CHECK_FALSE(p.contains(3));
  CHECK(miss(p, 3, 2 * kMiB, 12));
  std::vector<Id> evicted;
  CHECK_FALSE(miss(p, 5, 2 * kMiB, 15));
  CHECK(miss(p, 5, 2 * kMiB, 16, &evicted));  // 5 MiB wanted: the two asked for once go
  CHECK(evicted == std::vector<Id>{2, 3});
  CHECK(p.contains(1));  // the frequent one stays
}

TEST_CASE("cache policy: wharf refuses a large one-off miss instead of flushing the cache", "[edge][cache_policy]") {
  CachePolicy p(options(CachePolicy::Kind::kWharf, 10 * kMiB));
  for (Id id = 1; id <= 4; ++id) REQUIRE(miss(p, id, 2 * kMiB, 0) == false);  // first misses: remembered
  for (Id id = 1; id <= 4; ++id) REQUIRE(miss(p, id, 2 * kMiB, 1));           // second: kept
  CHECK(p.used() == 8 * kMiB);
  CHECK_FALSE(miss(p, 99, 8 * kMiB, 2));  // seen once: served, not kept
  CHECK(p.used() == 8 * kMiB);
  for (Id id = 1; id <= 4; ++id) CHECK(p.contains(id));
  // Small objects are kept at once.
  CHECK(miss(p, 50, 1000, 3));
}

TEST_CASE("cache policy: wharf values the current image of a tag, and demotes what a move left behind",
          "[edge][cache_policy]") {
  CachePolicy p(options(CachePolicy::Kind::kWharf, 8 * kMiB));
  const Id tag = 1000, v1 = 2000, v2 = 2001;
  const Id base = 1, old_app = 2, loose = 3, new_app = 4;
  for (Id id : {base, old_app, new_app, loose}) {
    p.admit(id, 2 * kMiB, 0);  // seen before (the ghost list admits them)
    REQUIRE(miss(p, id, 2 * kMiB, 1));
  }
  p.imagePulled(tag, v1, 0, {base, old_app});
  // Full: the next object pushes out the first cached of those no current image uses.
  p.admit(5, 2 * kMiB, 2);
  std::vector<Id> evicted;
  REQUIRE(miss(p, 5, 2 * kMiB, 3, &evicted));
  CHECK(evicted == std::vector<Id>{loose});
  // The tag moves to v2: old_app is now the least valuable.
  p.imagePulled(tag, v2, 0, {base, new_app});
  p.admit(6, 2 * kMiB, 4);
  REQUIRE(miss(p, 6, 2 * kMiB, 5, &evicted));
  CHECK(evicted == std::vector<Id>{old_app});
  CHECK(p.contains(base));
  CHECK(p.contains(new_app));
  // With push times known, pulling an older image does not make it current again.
  const Id v0 = 2002;
  CachePolicy q(options(CachePolicy::Kind::kWharf, 8 * kMiB));
  q.imagePulled(tag, v2, 200, {new_app});
  q.imagePulled(tag, v0, 100, {old_app});  // pushed before v2: v2 stays current
  q.admit(new_app, 2 * kMiB, 0), q.admit(old_app, 2 * kMiB, 0);
  REQUIRE(miss(q, old_app, 2 * kMiB, 1));
  REQUIRE(miss(q, new_app, 2 * kMiB, 2));
  auto victims = q.makeRoom(4 * kMiB + 1, 3);
  CHECK(ids(victims) == std::vector<Id>{old_app});
}

TEST_CASE("cache policy: wharf keeps small objects over large ones asked for as often", "[edge][cache_policy]") {
  CachePolicy p(options(CachePolicy::Kind::kWharf, 3 * kMiB));
  const Id config = 1, layer = 2;
  REQUIRE(miss(p, config, 4096, 0));
  p.admit(layer, 2 * kMiB, 0);
  REQUIRE(miss(p, layer, 2 * kMiB, 1));
  auto victims = p.makeRoom(kMiB, 2);
  CHECK(ids(victims) == std::vector<Id>{layer});
}

TEST_CASE("cache policy: wharf gives up a copy another edge of the site owns before its own", "[edge][cache_policy]") {
  CachePolicy p(options(CachePolicy::Kind::kWharf, 4 * 512 * 1024));
  const Id own = 1, replica = 2;
  REQUIRE(miss(p, own, 512 * 1024, 0));
  REQUIRE(miss(p, replica, 512 * 1024, 0));
  p.hit(own, 1);
  p.hit(replica, 1);
  p.hit(replica, 2);  // asked for more than the own copy...
  p.setReplica(replica, true);  // ...but a peer of the site has it: a LAN fetch away
  auto victims = p.makeRoom(3 * 512 * 1024, 3);
  CHECK(ids(victims) == std::vector<Id>{replica});
  // Ownership back (a peer left the site): valued in full again, age kept.
  REQUIRE(miss(p, replica, 512 * 1024, 4));
  p.hit(replica, 5);
  p.hit(replica, 6);
  p.setReplica(replica, true);
  p.setReplica(replica, false);
  victims = p.makeRoom(3 * 512 * 1024, 7);
  CHECK(ids(victims) == std::vector<Id>{own});
  // lru and lfuda have no notion of it.
  CachePolicy lru(options(CachePolicy::Kind::kLru, 2 * kMiB));
  REQUIRE(miss(lru, 1, kMiB, 0));
  REQUIRE(miss(lru, 2, kMiB, 1));
  lru.setReplica(2, true);
  CHECK(ids(lru.makeRoom(kMiB, 2)) == std::vector<Id>{1});
}

TEST_CASE("cache policy: pinned and protected objects are never chosen", "[edge][cache_policy]") {
  CachePolicy p(options(CachePolicy::Kind::kWharf, 1000));
  REQUIRE(miss(p, 1, 400, 0));
  REQUIRE(miss(p, 2, 400, 10 * kHour));
  p.pin(1, true);
  CHECK(ids(p.makeRoom(300, 10 * kHour)) == std::vector<Id>{2});
  REQUIRE(miss(p, 3, 400, 11 * kHour));
  // Used in the last hour: protected; the pinned one too; nothing else to take.
  CHECK(p.makeRoom(300, 11 * kHour, 10 * kHour).empty());
  CHECK_FALSE(p.roomFor(300, 10 * kHour));
  CHECK(p.roomFor(200, 10 * kHour));  // fits as it is
  p.pin(1, false);
  CHECK(p.roomFor(300, 10 * kHour));
  CHECK(ids(p.makeRoom(300, 11 * kHour, 10 * kHour)) == std::vector<Id>{1});
}

TEST_CASE("cache policy: a prefetch is held until its first hit, a day at most, and valued by its expected pulls",
          "[edge][cache_policy]") {
  CachePolicy p(options(CachePolicy::Kind::kWharf, 1000));
  p.insertPrefetched(1, 500, 0, 1);
  REQUIRE(miss(p, 2, 500, 1));
  for (int i = 0; i < 10; ++i) p.hit(2, 2);
  // Full; the prefetch is worth less than the hot object but is held.
  auto victims = p.makeRoom(100, 3);
  CHECK(ids(victims) == std::vector<Id>{2});
  REQUIRE(miss(p, 3, 400, 4));
  // A day on, unread: it goes, and says it was a prefetch (waste).
  victims = p.makeRoom(200, 25 * kHour);
  REQUIRE(victims.size() == 1);
  CHECK(victims[0].id == 1);
  CHECK(victims[0].prefetched);
  // Read once: an ordinary object.
  p.insertPrefetched(4, 100, 25 * kHour, 1);
  p.hit(4, 25 * kHour);
  REQUIRE(miss(p, 5, 500, 25 * kHour));
  victims = p.makeRoom(1000, 25 * kHour);
  for (const auto& v : victims) CHECK_FALSE(v.prefetched);
  // Expected pulls count as hits: a prefetch for a tag pulled 20 times outlives an object hit 3 times.
  CachePolicy q(options(CachePolicy::Kind::kWharf, 1000));
  REQUIRE(miss(q, 1, 500, 0));
  for (int i = 0; i < 3; ++i) q.hit(1, 0);
  q.insertPrefetched(2, 500, 0, 20);
  CHECK(ids(q.makeRoom(100, 30 * kHour)) == std::vector<Id>{1});
}

TEST_CASE("cache policy: restore, erase, capacity and watermarks", "[edge][cache_policy]") {
  CachePolicy::Options o = options(CachePolicy::Kind::kWharf, 1000);
  o.high_watermark = 0.9;
  o.low_watermark = 0.5;
  CachePolicy p(o);
  p.restore(1, 300, 0, 50, false);  // hot before the restart
  p.restore(2, 300, 0, 0, false);
  p.restore(3, 300, 0, 0, true);
  CHECK(p.used() == 900);
  CHECK(p.makeRoom(0, 0).empty());  // at the high watermark: nothing to do
  p.erase(3);
  CHECK(p.used() == 600);
  CHECK(p.size() == 2);
  p.setCapacity(500, 0.9, 0.5);  // high 450, low 250
  auto victims = p.makeRoom(0, 0);
  CHECK(ids(victims) == std::vector<Id>{2, 1});  // the cold one first; then the hot one is needed too
  CHECK(p.used() == 0);
}

}  // namespace cache_policy_test
