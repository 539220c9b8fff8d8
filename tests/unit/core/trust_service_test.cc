// The trust server's logic (Notary v1 semantics) over a real store: a first publish, its
// timestamp, replays and wrong signers refused with the store unchanged, delegations,
// snapshot checksums, the timestamp signed again when it expires, keys sealed at rest.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "core/trust/lmdb_trust_store.h"
#include "core/trust/trust_service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tuf_fixtures.h"

namespace trust_service_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

constexpr int64_t kNow = 1'800'000'000'000;
const std::string kGun = "127.0.0.1:5000/team/app";

struct Fixture {
  TempDir dir;
  FakeClock clock{kNow};
  std::unique_ptr<LmdbTrustStore> store;
  std::unique_ptr<TrustService> service;
  TufKey root = tufRootKey(kGun, kNow), targets = tufEcdsaKey(), snapshot = tufEcdsaKey();
  json ts_key;
  Fixture() {
    LmdbEnv::Options o;
    o.map_size = 64ull << 20;
    store = std::move(LmdbTrustStore::open(std::move(LmdbEnv::open(dir.path() + "/meta.lmdb", o)).value())).value();
    service = std::make_unique<TrustService>(*store, clock, TrustOptions{std::string(32, 's')});
    ts_key = service->serverKey(kGun, "timestamp").value();
  }
  std::string rootBytes(int version = 1) {
    return tufEnvelope(tufRootBody({&root}, targets.tuf, snapshot.tuf, ts_key, version), {&root});
  }
  std::string snapshotBytes(int version, const std::map<std::string, std::string>& listed) {
    json meta = json::object();
    for (const auto& [role, bytes] : listed) meta[role] = tufFileMeta(bytes);
    return tufEnvelope({{"_type", "Snapshot"}, {"version", version}, {"expires", "2029-01-01T00:00:00Z"}, {"meta", meta}},
                       {&snapshot});
  }
};

json targetEntry(const std::string& bytes) { return tufFileMeta(bytes); }

}  // namespace

TEST_CASE("trust service: publish, timestamp, refusals that change nothing", "[core][trust]") {
  Fixture f;
  CHECK(f.service->serverKey(kGun, "timestamp").value() == f.ts_key);  // the same key every time
  CHECK(f.store->serverKey(kGun, "timestamp")->find("PRIVATE") == std::string::npos);  // sealed at rest

  std::string root = f.rootBytes();
  std::string targets = tufEnvelope(tufTargetsBody(1, {{"v1", targetEntry("manifest v1")}}), {&f.targets});
  std::string snapshot = f.snapshotBytes(1, {{"root", root}, {"targets", targets}});
  Status first = f.service->publish(kGun, {{"root", root}, {"targets", targets}, {"snapshot", snapshot}});
  INFO(first.message());
  REQUIRE(first.isOk());
  CHECK(f.store->current(kGun, "targets")->bytes == targets);
  auto ts = f.service->current(kGun, "timestamp");
  REQUIRE(ts.isOk());
  CHECK(ts->version == 1);
  auto parsed_root = tuf::parseRoot(root).value();
  auto ts_signed = tuf::validateRole(ts->bytes, "Timestamp", "timestamp", parsed_root, kNow, 0);
  INFO(ts_signed.status().message());
  REQUIRE(ts_signed.isOk());
  CHECK(tuf::checkSnapshotMeta(*ts_signed, {{"snapshot", snapshot}}).isOk());

  auto unchanged = [&] {
    CHECK(f.store->current(kGun, "targets")->bytes == targets);
    CHECK(f.store->current(kGun, "snapshot")->bytes == snapshot);
    CHECK(f.service->current(kGun, "timestamp")->version == 1);
  };
  auto refused = [&](const std::map<std::string, std::string>& parts, const std::string& why) {
    Status s = f.service->publish(kGun, parts);
    INFO(why + " <- " + s.message());
    CHECK(!s.isOk());
    CHECK(s.message().find(why) != std::string::npos);
    unchanged();
  };
  // A replayed targets version, a targets signed by the wrong key, a wrong checksum.
  refused({{"targets", targets}, {"snapshot", f.snapshotBytes(2, {{"root", root}, {"targets", targets}})}}, "not above");
  std::string wrong_signer = tufEnvelope(tufTargetsBody(2, {{"v2", targetEntry("x")}}), {&f.snapshot});
  refused({{"targets", wrong_signer}, {"snapshot", f.snapshotBytes(2, {{"root", root}, {"targets", wrong_signer}})}},
          "below its threshold");
  std::string t2 = tufEnvelope(tufTargetsBody(2, {{"v2", targetEntry("x")}}), {&f.targets});
  refused({{"targets", t2}, {"snapshot", f.snapshotBytes(2, {{"root", root}, {"targets", targets}})}}, "targets is not that");
  refused({{"targets", t2}}, "snapshot");
  refused({{"timestamp", ts->bytes}}, "the server signs the timestamp");
  refused({{"targets/../x", t2}}, "not a role");
  // A root that does not name this server's timestamp key.
  TufKey other_ts = tufEcdsaKey();
  std::string foreign = tufEnvelope(tufRootBody({&f.root}, f.targets.tuf, f.snapshot.tuf, other_ts.tuf, 2), {&f.root});
  refused({{"root", foreign}, {"snapshot", f.snapshotBytes(2, {{"root", foreign}, {"targets", targets}})}},
          "timestamp key");

  // A delegation: targets/releases, signed by the key targets delegates to.
  TufKey release = tufEcdsaKey(), stranger = tufEcdsaKey();
  json t3body = tufTargetsBody(3, {{"v1", targetEntry("manifest v1")}});
  json delegated_role = {{"name", "targets/releases"}, {"keyids", json::array({release.id})}, {"threshold", 1},
                        {"paths", json::array({""})}};
  json delegation_keys = json::object();
  delegation_keys[release.id] = release.tuf;
  t3body["delegations"] = {{"keys", delegation_keys}, {"roles", json::array({delegated_role})}};
  std::string t3 = tufEnvelope(t3body, {&f.targets});
  std::string rel = tufEnvelope(tufTargetsBody(1, {{"v2", targetEntry("manifest v2")}}), {&release});
  std::string bad_rel = tufEnvelope(tufTargetsBody(1, {{"v2", targetEntry("manifest v2")}}), {&stranger});
  refused({{"targets", t3}, {"targets/releases", bad_rel},
           {"snapshot", f.snapshotBytes(3, {{"root", root}, {"targets", t3}, {"targets/releases", bad_rel}})}},
          "targets/releases: signed by 0");
  Status delegated = f.service->publish(
      kGun, {{"targets", t3}, {"targets/releases", rel},
             {"snapshot", f.snapshotBytes(3, {{"root", root}, {"targets", t3}, {"targets/releases", rel}})}});
  INFO(delegated.message());
  REQUIRE(delegated.isOk());
  CHECK(f.store->current(kGun, "targets/releases")->bytes == rel);
  CHECK(f.service->current(kGun, "timestamp")->version == 2);

  // The timestamp expires after 14 days: signed again on the next read.
  f.clock.advance(15ll * 86'400'000);
  auto renewed = f.service->current(kGun, "timestamp");
  REQUIRE(renewed.isOk());
  CHECK(renewed->version == 3);
  CHECK(tuf::parseSigned(renewed->bytes, "Timestamp")->expires_ms > f.clock.nowMillis());
}

TEST_CASE("trust service: the first update carries a root for the GUN", "[core][trust]") {
  Fixture f;
  std::string targets = tufEnvelope(tufTargetsBody(1), {&f.targets});
  Status s = f.service->publish(kGun, {{"targets", targets}});
  CHECK(s.message().find("must carry a root") != std::string::npos);
  // A root whose certificate is for another repository.
  TufKey other = tufRootKey("127.0.0.1:5000/team/other", kNow);
  std::string root = tufEnvelope(tufRootBody({&other}, f.targets.tuf, f.snapshot.tuf, f.ts_key, 1), {&other});
  s = f.service->publish(kGun, {{"root", root}, {"targets", targets},
                                {"snapshot", f.snapshotBytes(1, {{"root", root}, {"targets", targets}})}});
  CHECK(s.message().find("not " + kGun) != std::string::npos);
  CHECK(f.store->current(kGun, "root").status().code() == Code::kNotFound);
}

}  // namespace trust_service_test
