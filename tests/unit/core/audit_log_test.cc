#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/auth/audit_log.h"
#include "core/auth/lmdb_identity_store.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "shared/base/clock.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace audit_log_test {

using namespace wharf;
using wharf::test::TempDir;

namespace {

struct Store {
  std::shared_ptr<LmdbEnv> env;
  std::unique_ptr<IdentityStore> ids;
  explicit Store(const std::string& path) {
    LmdbMetadataOptions o{};
    o.map_size = 64ull << 20;
    auto e = openMetadataEnv(path, o);
    INFO(e.status().toString());
    REQUIRE(e.isOk());
    env = *e;
    auto s = openLmdbIdentityStore(env);
    INFO(s.status().toString());
    REQUIRE(s.isOk());
    ids = std::move(s).value();
  }
};

}  // namespace

TEST_CASE("auditlog: record then flush makes entries queryable", "[auth]") {
  TempDir dir;
  Store s(dir / "meta");
  FakeClock clock(1'700'000'000'000);
  AuditLog log(*s.ids, clock, 0);
  log.record("alice", "10.0.0.1", "login", "alice", "success");
  clock.advance(5);
  log.record("", "10.0.0.2", "pull", "acme/app", "denied", "no grant");
  log.record("bob", "10.0.0.3", "push", "bob/app", "success");
  log.flush();

  auto all = s.ids->queryAudit(AuditQuery{});
  REQUIRE(all.size() == 3);
  CHECK(all[0].seq == 1);
  CHECK(all[0].actor == "alice");
  CHECK(all[0].source == "10.0.0.1");
  CHECK(all[0].action == "login");
  CHECK(all[0].object == "alice");
  CHECK(all[0].outcome == "success");
  CHECK(all[0].time_ms == 1'700'000'000'000);
  CHECK(all[1].actor == "anonymous");  // an empty actor is the anonymous caller
  CHECK(all[1].detail == "no grant");
  CHECK(all[1].time_ms == 1'700'000'000'005);
  CHECK(all[2].actor == "bob");

  // A second round continues the sequence.
  log.record("carol", "10.0.0.4", "delete", "carol/app", "success");
  log.flush();
  auto more = s.ids->queryAudit(AuditQuery{});
  REQUIRE(more.size() == 4);
  CHECK(more[3].seq == 4);
  CHECK(more[3].actor == "carol");
  // Flushing with nothing queued returns.
  log.flush();
}

TEST_CASE("auditlog: entries are flushed at destruction", "[auth]") {
  TempDir dir;
  Store s(dir / "meta");
  FakeClock clock;
  {
    AuditLog log(*s.ids, clock, 0);
    for (int i = 0; i < 50; ++i) log.record("u" + std::to_string(i), "src", "pull", "r", "success");
  }
  CHECK(s.ids->queryAudit(AuditQuery{}).size() == 50);
}

TEST_CASE("auditlog: retention prunes entries older than the retention period", "[auth]") {
  TempDir dir;
  Store s(dir / "meta");
  FakeClock clock(1'700'000'000'000);
  std::vector<AuditEntry> old(2);
  for (auto& e : old) {
    e.time_ms = clock.nowMillis() - 10 * 86'400'000LL;
    e.actor = "old";
    e.action = "login";
    e.outcome = "success";
  }
  REQUIRE(s.ids->appendAudit(old).isOk());
  AuditLog log(*s.ids, clock, 86'400'000);  // one day
  log.record("new", "src", "login", "new", "success");
  log.flush();
  auto all = s.ids->queryAudit(AuditQuery{});
  REQUIRE(all.size() == 1);
  CHECK(all[0].actor == "new");
  CHECK(all[0].seq == 3);
}

TEST_CASE("auditlog: repeated pulls in one batch become one counted entry", "[auth]") {
  TempDir dir;
  Store s(dir / "meta");
  FakeClock clock(1'700'000'000'000);
  AuditLog log(*s.ids, clock, 0);
  // One batch: the writer wakes every 200 ms or on flush(); 100 records take far less.
  for (int i = 0; i < 100; ++i) log.record("alice", "10.0.0.1", "pull", "acme/app@sha256:x", "success");
  log.record("alice", "10.0.0.9", "pull", "acme/app@sha256:x", "success");  // another address
  log.record("alice", "10.0.0.1", "pull", "acme/app@sha256:x", "denied");   // not a success: kept apart
  log.flush();
  AuditQuery q;
  q.action = "pull";
  auto pulls = s.ids->queryAudit(q);
  // Coalescing is per batch: however the records were split, every pull is counted.
  uint64_t counted = 0;
  int denied = 0;
  for (const auto& e : pulls) {
    if (e.outcome == "denied") {
      ++denied;
      continue;
    }
    counted += e.detail.rfind("count=", 0) == 0 ? std::stoull(e.detail.substr(6)) : 1;
  }
  CHECK(counted == 101);
  CHECK(denied == 1);
  CHECK(pulls.size() < 20);
}

}  // namespace audit_log_test
