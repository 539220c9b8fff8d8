// ContentLocks: per-digest locks, striped in one process and advisory locks in
// PostgreSQL across replicas; a hold released by destruction, release() or being
// replaced lets the next holder in, on every replica.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "core/registry/content_locks.h"
#include "tests/support/postgres.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace content_locks_test {

using namespace wharf;
using wharf::test::PostgresServer;

namespace {

std::shared_ptr<PgPool> pool(const std::string& url) {
  auto db = PgPool::open(url, 3);
  REQUIRE(db.isOk());
  return std::shared_ptr<PgPool>(std::move(db).value());
}

bool isFree(ContentLocks& locks, const std::string& digest) {
  std::vector<bool> locked;
  auto hold = locks.tryLock({digest}, &locked);
  REQUIRE(hold.isOk());
  return locked[0];
}

}  // namespace

TEST_CASE("content locks: one process", "[registry]") {
  ContentLocks locks;
  CHECK_FALSE(locks.clusterWide());
  auto a = locks.lock({"sha256:a", "sha256:b"});
  REQUIRE(a.isOk());
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto b = locks.lock({"sha256:b"});
    got = b.isOk();
  });
  CHECK_FALSE(got.load());
  a->release();
  t.join();
  CHECK(got.load());
}

TEST_CASE("content locks on PostgreSQL: replicas exclude each other per digest", "[registry][pg]") {
  if (!PostgresServer::available()) return;
  std::string url = PostgresServer::shared().freshDatabase();
  auto pa = pool(url), pb = pool(url);
  ContentLocks a(pa), b(pb);
  CHECK(a.clusterWide());
  auto held = a.lock({"sha256:one", "sha256:two"});
  REQUIRE(held.isOk());
  CHECK_FALSE(isFree(b, "sha256:one"));
  CHECK_FALSE(isFree(b, "sha256:two"));
  CHECK(isFree(b, "sha256:three"));
  // Replaced by another hold: the first one's locks go (not back to the pool with its
  // connection).
  *held = std::move(a.lock({"sha256:three"})).value();
  CHECK(isFree(b, "sha256:one"));
  CHECK_FALSE(isFree(b, "sha256:three"));
  // A waiter on another replica gets in once the holder lets go.
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto w = b.lock({"sha256:three"});
    got = w.isOk();
  });
  CHECK_FALSE(got.load());
  held->release();
  t.join();
  CHECK(got.load());
  // Every connection given back holds nothing: many holds in turn never wait.
  for (int i = 0; i < 20; ++i) {
    auto h = a.lock({"sha256:loop"});
    REQUIRE(h.isOk());
  }
  CHECK(isFree(b, "sha256:loop"));
}

}  // namespace content_locks_test
