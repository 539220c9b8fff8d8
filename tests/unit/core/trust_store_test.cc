// The trust server's store: TUF files verbatim with history (by version, by checksum),
// versions strictly increasing per role in one transaction, deletion of a GUN, server
// keys, the change feed, and all of it surviving a reopen; on LMDB and on PostgreSQL, where
// replicas publishing at once take turns.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/trust/lmdb_trust_store.h"
#include "core/trust/pg_trust_store.h"
#include "shared/store/pg.h"
#include "shared/tls/crypto.h"
#include "tests/support/postgres.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/core/metadata_backends.h"

namespace trust_store_test {

using namespace wharf;
using namespace wharf::test;

namespace {

// The store on a backend (the metadata store's: test::metadataBackends()): LMDB in
// <dir>/meta.lmdb, or PostgreSQL in a database of the test binary's server, a fresh one
// unless pg_url names one (to open the same database again, as a restart or another
// replica).
struct Store {
  MetadataBackend backend;
  std::string dir;     // LMDB: the environment's directory
  std::string pg_url;  // PostgreSQL: the database (set at the first open)
  size_t pool_size = 4;
  std::unique_ptr<TrustStore> trust;

  Store(const std::string& dir, MetadataBackend backend, std::string pg_url = "", size_t pool_size = 4)
      : backend(backend), dir(dir), pg_url(std::move(pg_url)), pool_size(pool_size) {
    open();
  }
  void open() {
    if (backend == MetadataBackend::kPostgres) {
      if (pg_url.empty()) pg_url = PostgresServer::shared().freshDatabase();
      auto db = PgPool::open(pg_url, pool_size);
      INFO(db.status().toString());
      REQUIRE(db.isOk());
      auto s = openPgTrustStore(std::shared_ptr<PgPool>(std::move(db).value()));
      INFO(s.status().toString());
      REQUIRE(s.isOk());
      trust = std::move(s).value();
      return;
    }
    LmdbEnv::Options o;
    o.map_size = 64ull << 20;
    auto env = LmdbEnv::open(dir + "/meta.lmdb", o);
    INFO(env.status().toString());
    REQUIRE(env.isOk());
    auto s = LmdbTrustStore::open(std::move(env).value());
    INFO(s.status().toString());
    REQUIRE(s.isOk());
    trust = std::move(s).value();
  }
  void close() { trust.reset(); }
  void reopen() {
    close();
    open();
  }
  const char* name() const { return backend == MetadataBackend::kPostgres ? "backend: PostgreSQL" : "backend: LMDB"; }
  TrustStore* operator->() { return trust.get(); }
};

TufFile tuf(const std::string& role, int64_t version, const std::string& bytes) { return {role, version, bytes, "", 0}; }

std::vector<uint64_t> seqsOf(const std::vector<TrustChange>& changes) {
  std::vector<uint64_t> out;
  for (const auto& c : changes) out.push_back(c.seq);
  return out;
}

}  // namespace

TEST_CASE("trust store: files verbatim with history, versions going up, one transaction", "[core][trust]") {
  TempDir dir;
  Store s(dir.path(), GENERATE(from_range(metadataBackends())));
  INFO(s.name());
  const std::string gun = "127.0.0.1:5000/team/app";
  {
    CHECK(s->current(gun, "root").status().code() == Code::kNotFound);
    // Bytes as uploaded: whitespace and key order are kept.
    std::string root = "{ \"signed\" : {\"b\":1, \"a\":2}, \"signatures\": [] }";
    REQUIRE(s->update(gun, {tuf("root", 1, root), tuf("targets", 1, "T1"), tuf("snapshot", 1, "S1"), tuf("timestamp", 1, "TS1")},
                      1000)
                .isOk());
    auto r = s->current(gun, "root");
    REQUIRE(r.isOk());
    CHECK(r->bytes == root);
    CHECK(r->sha256 == sha256Hex(root));
    CHECK(r->stored_ms == 1000);
    CHECK(s->byChecksum(gun, "targets", sha256Hex("T1"))->bytes == "T1");

    // A replayed or older version of any role refuses the whole update.
    Status replay = s->update(gun, {tuf("targets", 2, "T2"), tuf("snapshot", 1, "S1-other")}, 2000);
    CHECK(replay.code() == Code::kConflict);
    CHECK(replay.message().find("snapshot") != std::string::npos);
    CHECK(s->current(gun, "targets")->bytes == "T1");  // nothing written
    // The same file again is no change; new versions go in.
    REQUIRE(s->update(gun, {tuf("root", 1, root), tuf("targets", 2, "T2"), tuf("snapshot", 2, "S2")}, 3000).isOk());
    REQUIRE(s->update(gun, {tuf("timestamp", 7, "TS7")}, 3100).isOk());
    CHECK(s->current(gun, "targets")->version == 2);
    CHECK(s->byVersion(gun, "targets", 1)->bytes == "T1");
    CHECK(s->byChecksum(gun, "targets", sha256Hex("T1"))->version == 1);
    CHECK(s->byVersion(gun, "targets", 3).status().code() == Code::kNotFound);
    // Delegations are roles of their own.
    REQUIRE(s->update(gun, {tuf("targets/releases", 1, "R1")}, 3500).isOk());
    CHECK(s->current(gun, "targets/releases")->bytes == "R1");

    REQUIRE(s->putServerKey(gun, "timestamp", "sealed-key").isOk());
    CHECK(*s->serverKey(gun, "timestamp") == "sealed-key");
    CHECK(s->serverKey(gun, "snapshot").status().code() == Code::kNotFound);
    // Another GUN is apart.
    REQUIRE(s->update("127.0.0.1:5000/team/other", {tuf("root", 1, "O"), tuf("timestamp", 1, "OTS")}, 4000).isOk());
  }
  // Reopened: the same state; then a deletion.
  s.reopen();
  CHECK(s->current(gun, "targets")->bytes == "T2");
  auto feed = s->changes("", 0, 10);
  REQUIRE(feed.isOk());
  // A change per timestamp written (as Notary's feed): not for updates without one.
  REQUIRE(feed->size() == 3);
  CHECK((*feed)[0].gun == gun);
  CHECK((*feed)[0].version == 1);
  CHECK((*feed)[1].version == 7);
  CHECK((*feed)[1].sha256 == sha256Hex("TS7"));
  CHECK((*feed)[2].gun == "127.0.0.1:5000/team/other");
  REQUIRE(s->deleteGun(gun, 5000).isOk());
  CHECK(s->current(gun, "root").status().code() == Code::kNotFound);
  CHECK(s->byVersion(gun, "targets", 1).status().code() == Code::kNotFound);
  CHECK(s->serverKey(gun, "timestamp").status().code() == Code::kNotFound);
  CHECK(s->current("127.0.0.1:5000/team/other", "root")->bytes == "O");
  auto after = s->changes(gun, (*feed)[2].seq, 10);
  REQUIRE(after->size() == 1);
  CHECK((*after)[0].action == "deletion");
  // A GUN that is a prefix of another is not touched by the other's deletion.
  REQUIRE(s->update("a/b", {tuf("root", 1, "AB")}, 6000).isOk());
  REQUIRE(s->update("a/bc", {tuf("root", 1, "ABC")}, 6000).isOk());
  REQUIRE(s->deleteGun("a/b", 7000).isOk());
  CHECK(s->current("a/bc", "root")->bytes == "ABC");
}

TEST_CASE("trust store: listings, the feed's pages and filters, keys and deletions", "[core][trust]") {
  TempDir dir;
  Store s(dir.path(), GENERATE(from_range(metadataBackends())));
  INFO(s.name());
  CHECK(s->guns()->empty());
  CHECK(s->currentAll("x/y")->empty());
  // Bytes of any kind are kept as they are (files and sealed keys).
  const std::string odd("\xff\0{\"x\"}\n\xc3", 9);
  REQUIRE(s->update("b/app", {tuf("targets/z", 3, odd), tuf("root", 1, "R"), tuf("targets", 1, "T"), tuf("timestamp", 1, "TS1")},
                    10)
              .isOk());
  REQUIRE(s->update("a/app", {tuf("root", 1, "AR"), tuf("timestamp", 1, "ATS1")}, 20).isOk());
  REQUIRE(s->update("b/app", {tuf("timestamp", 2, "TS2")}, 30).isOk());
  CHECK(*s->guns() == std::vector<std::string>{"a/app", "b/app"});
  auto all = s->currentAll("b/app");
  REQUIRE(all.isOk());
  std::vector<std::string> roles;
  for (const auto& f : *all) roles.push_back(f.role + "@" + std::to_string(f.version));
  CHECK(roles == std::vector<std::string>{"root@1", "targets@1", "targets/z@3", "timestamp@2"});
  CHECK((*all)[2].bytes == odd);
  CHECK((*all)[2].sha256 == sha256Hex(odd));
  CHECK((*all)[2].stored_ms == 10);
  CHECK(s->byChecksum("b/app", "targets/z", sha256Hex(odd))->bytes == odd);
  CHECK(s->byChecksum("b/app", "targets", sha256Hex(odd)).status().code() == Code::kNotFound);
  // The same version with other bytes is refused, as is a version below; one above goes in.
  CHECK(s->update("b/app", {tuf("targets/z", 3, "other")}, 40).code() == Code::kConflict);
  CHECK(s->update("b/app", {tuf("targets/z", 2, "older")}, 40).code() == Code::kConflict);
  CHECK(s->update("b/app", {tuf("targets/z", 3, odd)}, 40).isOk());  // the same file again
  CHECK(s->current("b/app", "targets/z")->stored_ms == 10);         // kept as it was
  // Within one update, a later file of a role is checked against the earlier one.
  CHECK(s->update("b/app", {tuf("targets", 5, "T5"), tuf("targets", 4, "T4")}, 50).code() == Code::kConflict);
  CHECK(s->current("b/app", "targets")->version == 1);
  REQUIRE(s->update("b/app", {tuf("targets", 4, "T4"), tuf("targets", 5, "T5")}, 50).isOk());
  CHECK(s->current("b/app", "targets")->bytes == "T5");
  CHECK(s->byVersion("b/app", "targets", 4)->bytes == "T4");

  // The feed: pages by seq, filtered by GUN (the limit counts what is returned).
  auto feed = s->changes("", 0, 100);
  REQUIRE(feed.isOk());
  REQUIRE(feed->size() == 3);
  CHECK(seqsOf(*feed) == std::vector<uint64_t>{(*feed)[0].seq, (*feed)[0].seq + 1, (*feed)[0].seq + 2});
  CHECK((*feed)[2].gun == "b/app");
  CHECK((*feed)[2].version == 2);
  CHECK((*feed)[2].ts_ms == 30);
  CHECK((*feed)[2].action == "update");
  auto b_only = s->changes("b/app", 0, 1);
  REQUIRE(b_only->size() == 1);
  CHECK((*b_only)[0].seq == (*feed)[0].seq);
  b_only = s->changes("b/app", (*feed)[0].seq, 10);
  REQUIRE(b_only->size() == 1);
  CHECK((*b_only)[0].seq == (*feed)[2].seq);
  CHECK(s->changes("", (*feed)[2].seq, 10)->empty());
  CHECK(s->changes("", 0, 0)->empty());
  CHECK(s->changes("c/app", 0, 10)->empty());

  // Keys: replaced, deleted (deleting one that is not there is no error).
  REQUIRE(s->putServerKey("c/app", "snapshot", odd).isOk());
  CHECK(*s->serverKey("c/app", "snapshot") == odd);
  REQUIRE(s->putServerKey("c/app", "snapshot", "v1:second").isOk());
  CHECK(*s->serverKey("c/app", "snapshot") == "v1:second");
  REQUIRE(s->deleteServerKey("c/app", "snapshot").isOk());
  REQUIRE(s->deleteServerKey("c/app", "snapshot").isOk());
  CHECK(s->serverKey("c/app", "snapshot").status().code() == Code::kNotFound);
  // A GUN with only a key: deleting it is a change; a GUN with nothing is not.
  REQUIRE(s->putServerKey("c/app", "timestamp", "v1:k").isOk());
  // The first key made stands: a second core's add reads it back.
  CHECK(*s->addServerKey("c/app", "root-like", "v1:first") == "v1:first");
  CHECK(*s->addServerKey("c/app", "root-like", "v1:second") == "v1:first");
  CHECK(*s->serverKey("c/app", "root-like") == "v1:first");
  REQUIRE(s->deleteGun("c/app", 60).isOk());
  REQUIRE(s->deleteGun("d/app", 70).isOk());
  feed = s->changes("", (*feed)[2].seq, 10);
  REQUIRE(feed->size() == 1);
  CHECK((*feed)[0].gun == "c/app");
  CHECK((*feed)[0].action == "deletion");
  CHECK((*feed)[0].version == 0);
  CHECK((*feed)[0].sha256.empty());
  CHECK((*feed)[0].ts_ms == 60);
  CHECK(*s->guns() == std::vector<std::string>{"a/app", "b/app"});
  // After a deletion, a GUN starts again from any version.
  REQUIRE(s->deleteGun("b/app", 80).isOk());
  REQUIRE(s->update("b/app", {tuf("targets", 1, "again")}, 90).isOk());
  CHECK(s->current("b/app", "targets")->bytes == "again");
  CHECK(s->byVersion("b/app", "targets", 5).status().code() == Code::kNotFound);
}

TEST_CASE("trust store on PostgreSQL: text the database cannot hold", "[core][trust][pg]") {
  if (!PostgresServer::available()) return;
  TempDir dir;
  Store s(dir.path(), MetadataBackend::kPostgres);
  const std::string bad_gun("a/\xff", 3), nul_role("targets/\0x", 10);
  CHECK(s->update(bad_gun, {tuf("root", 1, "R")}, 1).code() == Code::kInvalidArgument);
  CHECK(s->update("a/ok", {tuf("root", 1, "R"), tuf(nul_role, 1, "T")}, 1).code() == Code::kInvalidArgument);
  CHECK(s->current("a/ok", "root").status().code() == Code::kNotFound);  // nothing written
  CHECK(s->putServerKey(bad_gun, "timestamp", "k").code() == Code::kInvalidArgument);
  CHECK(s->current(bad_gun, "root").status().code() == Code::kNotFound);
  CHECK(s->byVersion("a/ok", nul_role, 1).status().code() == Code::kNotFound);
  CHECK(s->byChecksum("a/ok", "root", "\xff").status().code() == Code::kNotFound);
  CHECK(s->serverKey(bad_gun, "timestamp").status().code() == Code::kNotFound);
  CHECK(s->currentAll(bad_gun)->empty());
  CHECK(s->changes(bad_gun, 0, 10)->empty());
  CHECK(s->deleteGun(bad_gun, 1).isOk());
  CHECK(s->deleteServerKey(bad_gun, "timestamp").isOk());
  CHECK(s->changes("", 0, 10)->empty());
}

TEST_CASE("trust store on PostgreSQL: replicas publishing the same role at once: one wins, the other is stale",
          "[core][trust][pg]") {
  if (!PostgresServer::available()) return;
  TempDir dir;
  Store a(dir / "a", MetadataBackend::kPostgres);
  Store b(dir / "b", MetadataBackend::kPostgres, a.pg_url);
  TrustStore* replicas[] = {a.trust.get(), b.trust.get()};
  const std::string gun = "registry/team/app";

  // Both publish at once; returns each replica's status.
  auto race = [&](const std::string& g, const std::vector<TufFile>& fa, const std::vector<TufFile>& fb) {
    Status sa, sb;
    std::latch start(2);
    std::thread ta([&] {
      start.arrive_and_wait();
      sa = replicas[0]->update(g, fa, 1000);
    });
    std::thread tb([&] {
      start.arrive_and_wait();
      sb = replicas[1]->update(g, fb, 2000);
    });
    ta.join();
    tb.join();
    return std::make_pair(sa, sb);
  };

  // A GUN's first publish: the root is claimed once.
  for (int round = 0; round < 10; ++round) {
    std::string g = "new/" + std::to_string(round);
    auto [sa, sb] = race(g, {tuf("root", 1, "root-a"), tuf("timestamp", 1, "ts-a")},
                         {tuf("root", 1, "root-b"), tuf("timestamp", 1, "ts-b")});
    INFO(g << ": " << sa.toString() << " / " << sb.toString());
    CHECK(sa.isOk() != sb.isOk());
    const Status& lost = sa.isOk() ? sb : sa;
    CHECK(lost.code() == Code::kConflict);
    CHECK(lost.message() == "root: version 1 is not above the current 1");
    CHECK(b->current(g, "root")->bytes == (sa.isOk() ? "root-a" : "root-b"));
    CHECK(a->current(g, "timestamp")->bytes == (sa.isOk() ? "ts-a" : "ts-b"));
    CHECK(a->changes(g, 0, 10)->size() == 1);
  }

  // The next version of the same roles, on both at once: one is current, whole; the other
  // is refused as a stale version is, and wrote nothing.
  REQUIRE(a->update(gun, {tuf("root", 1, "R"), tuf("targets", 1, "T1"), tuf("snapshot", 1, "S1"), tuf("timestamp", 1, "TS1")},
                    500)
              .isOk());
  int wins[2] = {0, 0};
  for (int64_t v = 2; v <= 30; ++v) {
    auto files = [&](const std::string& who) {
      return std::vector<TufFile>{tuf("targets", v, "T" + std::to_string(v) + who),
                                  tuf("snapshot", v, "S" + std::to_string(v) + who),
                                  tuf("timestamp", v, "TS" + std::to_string(v) + who)};
    };
    auto [sa, sb] = race(gun, files("a"), files("b"));
    INFO("version " << v << ": " << sa.toString() << " / " << sb.toString());
    REQUIRE(sa.isOk() != sb.isOk());
    const Status& lost = sa.isOk() ? sb : sa;
    CHECK(lost.code() == Code::kConflict);
    CHECK(lost.message() == "targets: version " + std::to_string(v) + " is not above the current " + std::to_string(v));
    const std::string who = sa.isOk() ? "a" : "b";
    ++wins[sa.isOk() ? 0 : 1];
    for (const char* role : {"targets", "snapshot", "timestamp"}) {
      auto f = b->current(gun, role);
      REQUIRE(f.isOk());
      CHECK(f->version == v);
      CHECK(f->bytes == std::string(role == std::string("targets") ? "T" : role == std::string("snapshot") ? "S" : "TS") +
                            std::to_string(v) + who);
      CHECK(f->stored_ms == (who == "a" ? 1000 : 2000));
    }
  }
  INFO("wins: " << wins[0] << " / " << wins[1]);
  // The same bytes published on both at once: both succeed, one change.
  auto same = std::vector<TufFile>{tuf("targets", 31, "T31"), tuf("timestamp", 31, "TS31")};
  auto [sa, sb] = race(gun, same, same);
  CHECK(sa.isOk());
  CHECK(sb.isOk());
  auto feed = a->changes(gun, 0, 1000);
  REQUIRE(feed.isOk());
  REQUIRE(feed->size() == 31);  // a timestamp change per version that went in, and one only
  for (size_t i = 0; i < feed->size(); ++i) CHECK((*feed)[i].version == int64_t(i) + 1);
}

TEST_CASE("trust store on PostgreSQL: replicas' changes are numbered in commit order", "[core][trust][pg]") {
  if (!PostgresServer::available()) return;
  TempDir dir;
  constexpr int kWriters = 3, kUpdates = 10;  // writers per replica, each on GUNs of its own
  Store a(dir / "a", MetadataBackend::kPostgres, "", kWriters + 1);
  Store b(dir / "b", MetadataBackend::kPostgres, a.pg_url, kWriters + 1);
  TrustStore* replicas[] = {a.trust.get(), b.trust.get()};
  constexpr uint64_t kTotal = 2 * kWriters * kUpdates;

  std::mutex mu;
  std::vector<std::string> errors;
  std::atomic<bool> writing{true};
  // A reader pages by seq meanwhile. Were seq not in commit order, it could see a change
  // before one with a smaller seq, move past that one and never see it.
  std::vector<uint64_t> read;
  std::thread reader([&] {
    uint64_t after = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      bool done = !writing.load();  // before the query: an empty answer then means all was read
      auto got = replicas[0]->changes("", after, 4);
      if (!got.isOk()) {
        std::lock_guard lock(mu);
        errors.push_back("read: " + got.status().toString());
        return;
      }
      for (const auto& c : *got) read.push_back(c.seq);
      if (!got->empty()) {
        after = got->back().seq;
      } else if (done) {
        break;
      }
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 2 * kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 1; i <= kUpdates; ++i) {
        // Two GUNs per writer, in turn (a GUN's lock does not order the feed).
        std::string gun = "w" + std::to_string(w) + "/" + std::to_string(i % 2);
        Status st = replicas[w % 2]->update(gun, {tuf("timestamp", i, "TS" + std::to_string(i))}, i);
        if (st.isOk()) continue;
        std::lock_guard lock(mu);
        errors.push_back(gun + ": " + st.toString());
      }
    });
  }
  for (auto& t : writers) t.join();
  writing = false;
  reader.join();

  CHECK(errors.empty());
  std::vector<uint64_t> expected;
  for (uint64_t seq = 1; seq <= kTotal; ++seq) expected.push_back(seq);
  CHECK(read == expected);
  CHECK(seqsOf(*replicas[1]->changes("", 0, 1000)) == expected);
}

}  // namespace trust_store_test
