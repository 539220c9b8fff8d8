// TUF metadata validation as Notary's server does it: roots (certificates for the GUN,
// thresholds, rotation), other roles (keys, versions, expiry), snapshots over exact
// bytes, and the server's timestamp. Metadata is built here the way the notary CLI
// builds it (ECDSA P-256 keys, a self-signed root certificate, raw r||s signatures).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "shared/base/clock.h"
#include "shared/tls/crypto.h"
#include "shared/tuf/metadata.h"
#include "tests/support/tuf_fixtures.h"

namespace metadata_test {

using namespace wharf;
using nlohmann::json;

namespace {

constexpr int64_t kNow = 1'800'000'000'000;  // 2027-01-15
const std::string kGun = "registry.example.com:5000/team/app";

using Key = test::TufKey;

Key rootKey(const std::string& cn = kGun, long valid_s = 10L * 365 * 86400, bool sha1 = false, long not_before_s = -86400) {
  return test::tufRootKey(cn, kNow, valid_s, sha1, not_before_s);
}
Key ecdsaKey() { return test::tufEcdsaKey(); }
std::string envelope(const json& body, const std::vector<const Key*>& signers) { return test::tufEnvelope(body, signers); }

struct Keys {
  Key root = rootKey(), targets = ecdsaKey(), snapshot = ecdsaKey(), timestamp = ecdsaKey();
};

json rootBody(const std::vector<const Key*>& root_keys, const Keys& k, int version, int threshold = 1,
              const std::string& expires = "2030-01-01T00:00:00Z") {
  return test::tufRootBody(root_keys, k.targets.tuf, k.snapshot.tuf, k.timestamp.tuf, version, threshold, expires);
}

json targetsBody(int version, const std::string& expires = "2029-01-01T00:00:00Z") {
  return test::tufTargetsBody(version, {{"v1", {{"length", 527}, {"hashes", {{"sha256", "AAAA"}}}}}}, expires);
}

}  // namespace

TEST_CASE("tuf metadata: a root for the GUN, signed to its threshold", "[tuf]") {
  Keys k;
  auto root = tuf::validateRoot(envelope(rootBody({&k.root}, k, 1), {&k.root}), nullptr, kGun, kNow);
  INFO(root.status().message());
  REQUIRE(root.isOk());
  CHECK(root->roles["targets"].keyids == std::vector<std::string>{k.targets.id});

  auto refused = [&](const std::string& bytes, const std::string& why) {
    auto r = tuf::validateRoot(bytes, nullptr, kGun, kNow);
    INFO(why);
    REQUIRE(!r.isOk());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find(why) != std::string::npos);
  };
  Key other_gun = rootKey("registry.example.com:5000/team/other");
  refused(envelope(rootBody({&other_gun}, k, 1), {&other_gun}), "not " + kGun);
  Key wildcard = rootKey("registry.example.com:5000/team/*");
  CHECK(tuf::validateRoot(envelope(rootBody({&wildcard}, k, 1), {&wildcard}), nullptr, kGun, kNow).isOk());
  Key expired = rootKey(kGun, -3600, false, -86400 * 2);
  refused(envelope(rootBody({&expired}, k, 1), {&expired}), "not valid now");
  Key sha1 = rootKey(kGun, 86400, true);
  refused(envelope(rootBody({&sha1}, k, 1), {&sha1}), "SHA-1");
  Key plain = ecdsaKey();
  refused(envelope(rootBody({&plain}, k, 1), {&plain}), "not an x509 certificate");
  // Thresholds: two root keys, threshold 2, one signature.
  Key second = rootKey();
  refused(envelope(rootBody({&k.root, &second}, k, 1, 2), {&k.root}), "below its threshold of 2");
  CHECK(tuf::validateRoot(envelope(rootBody({&k.root, &second}, k, 1, 2), {&k.root, &second}), nullptr, kGun, kNow).isOk());
  // The same key twice counts once.
  refused(envelope(rootBody({&k.root, &second}, k, 1, 2), {&k.root, &k.root}), "below its threshold");
  // Signed by a key that is not a root key: not counted.
  refused(envelope(rootBody({&k.root}, k, 1), {&k.targets}), "below its threshold");
  // Tampered after signing.
  json tampered = json::parse(envelope(rootBody({&k.root}, k, 1), {&k.root}));
  tampered["signed"]["version"] = 2;
  refused(tampered.dump(), "below its threshold");
  refused(envelope(rootBody({&k.root}, k, 1, 1, "2020-01-01T00:00:00Z"), {&k.root}), "expired");
  refused(envelope(rootBody({&k.root}, k, 1, 3), {&k.root}), "threshold of 3 for 1");
  refused("{\"signed\": 1}", "expected");
  refused(envelope(targetsBody(1), {&k.root}), "_type");
}

TEST_CASE("tuf metadata: root rotation is signed by the old root and the new", "[tuf]") {
  Keys k;
  auto v1 = tuf::validateRoot(envelope(rootBody({&k.root}, k, 1), {&k.root}), nullptr, kGun, kNow);
  REQUIRE(v1.isOk());
  Key next = rootKey();
  auto both = tuf::validateRoot(envelope(rootBody({&next}, k, 2), {&k.root, &next}), &*v1, kGun, kNow);
  INFO(both.status().message());
  CHECK(both.isOk());
  auto only_new = tuf::validateRoot(envelope(rootBody({&next}, k, 2), {&next}), &*v1, kGun, kNow);
  CHECK(only_new.status().message().find("by the previous root") != std::string::npos);
  auto skipped = tuf::validateRoot(envelope(rootBody({&next}, k, 3), {&k.root, &next}), &*v1, kGun, kNow);
  CHECK(skipped.status().message().find("version 3 after 1") != std::string::npos);
}

TEST_CASE("tuf metadata: roles signed by their keys, versions going up, snapshots over exact bytes, the timestamp", "[tuf]") {
  Keys k;
  auto root = tuf::validateRoot(envelope(rootBody({&k.root}, k, 1), {&k.root}), nullptr, kGun, kNow).value();
  std::string targets = envelope(targetsBody(1), {&k.targets});
  CHECK(tuf::validateRole(targets, "Targets", "targets", root, kNow, 0).isOk());
  CHECK(tuf::validateRole(envelope(targetsBody(1), {&k.snapshot}), "Targets", "targets", root, kNow, 0)
            .status().message().find("below its threshold") != std::string::npos);
  CHECK(tuf::validateRole(targets, "Targets", "targets", root, kNow, 1).status().message().find("not above") !=
        std::string::npos);  // a replay of the stored version
  CHECK(tuf::validateRole(envelope(targetsBody(2, "2020-01-01T00:00:00Z"), {&k.targets}), "Targets", "targets", root, kNow, 1)
            .status().message().find("expired") != std::string::npos);

  // The snapshot lists the uploaded bytes of root and targets.
  std::string root_bytes = envelope(rootBody({&k.root}, k, 1), {&k.root});
  auto meta = [](const std::string& bytes) { return test::tufFileMeta(bytes); };
  json snap = {{"_type", "Snapshot"}, {"version", 1}, {"expires", "2029-01-01T00:00:00Z"},
               {"meta", {{"root", meta(root_bytes)}, {"targets", meta(targets)}}}};
  std::string snapshot = envelope(snap, {&k.snapshot});
  auto s = tuf::validateRole(snapshot, "Snapshot", "snapshot", root, kNow, 0);
  REQUIRE(s.isOk());
  CHECK(tuf::checkSnapshotMeta(*s, {{"root", root_bytes}, {"targets", targets}}).isOk());
  // The same document re-serialised is other bytes: refused.
  std::string reserialised = json::parse(targets).dump(2);
  CHECK(tuf::checkSnapshotMeta(*s, {{"targets", reserialised}}).message().find("length of targets") != std::string::npos);
  std::string same_length = targets;
  same_length[same_length.size() - 3] = same_length[same_length.size() - 3] == 'a' ? 'b' : 'a';
  CHECK(tuf::checkSnapshotMeta(*s, {{"targets", same_length}}).message().find("sha256 of targets") != std::string::npos);
  CHECK(!tuf::checkSnapshotMeta(*s, {{"targets/releases", targets}}).isOk());

  // The server's timestamp: verified with the key root names for it.
  auto server = tuf::SigningKey::generate().value();
  Keys with_server = k;
  with_server.timestamp.tuf = server->publicJson();
  with_server.timestamp.id = server->id();
  auto root2 = tuf::validateRoot(envelope(rootBody({&k.root}, with_server, 1), {&k.root}), nullptr, kGun, kNow).value();
  auto ts = tuf::makeTimestamp(*server, snapshot, 1, kNow + 14 * 86'400'000LL);
  REQUIRE(ts.isOk());
  auto t = tuf::validateRole(*ts, "Timestamp", "timestamp", root2, kNow, 0);
  INFO(t.status().message());
  REQUIRE(t.isOk());
  CHECK(tuf::checkSnapshotMeta(*t, {{"snapshot", snapshot}}).isOk());
  CHECK(t->body["meta"]["snapshot"]["hashes"].contains("sha512"));
  CHECK(!tuf::validateRole(*ts, "Timestamp", "timestamp", root, kNow, 0).isOk());  // another timestamp key
}

}  // namespace metadata_test
