// The trust server's store: TUF files verbatim with history (by version, by checksum),
// versions strictly increasing per role in one transaction, deletion of a GUN, server
// keys, the change feed, and all of it surviving a reopen.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "core/trust/lmdb_trust_store.h"
#include "shared/tls/crypto.h"
#include "tests/support/temp_dir.h"

namespace trust_store_test {

using namespace wharf;
using namespace wharf::test;

namespace {

std::unique_ptr<LmdbTrustStore> openStore(const std::string& dir) {
  LmdbEnv::Options o;
  o.map_size = 64ull << 20;
  auto env = LmdbEnv::open(dir + "/meta.lmdb", o);
  REQUIRE(env.isOk());
  auto s = LmdbTrustStore::open(std::move(env).value());
  REQUIRE(s.isOk());
  return std::move(s).value();
}

TufFile tuf(const std::string& role, int64_t version, const std::string& bytes) { return {role, version, bytes, "", 0}; }

}  // namespace

TEST_CASE("trust store: files verbatim with history, versions going up, one transaction", "[core][trust]") {
  TempDir dir;
  const std::string gun = "127.0.0.1:5000/team/app";
  {
    auto s = openStore(dir.path());
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
  auto s = openStore(dir.path());
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

}  // namespace trust_store_test
