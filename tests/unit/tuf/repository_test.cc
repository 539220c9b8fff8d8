// What a client (the core deciding a pull, an edge) trusts in a GUN's metadata: the chain
// root -> timestamp -> snapshot -> targets -> delegations, each signature, checksum, path
// and expiry; and cosign signatures.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <set>

#include "shared/tls/crypto.h"
#include "shared/tuf/cosign.h"
#include "shared/tuf/repository.h"
#include "tests/support/tuf_fixtures.h"

namespace repository_test {

using namespace wharf;
using nlohmann::json;

namespace {

constexpr int64_t kNow = 1'800'000'000'000;  // 2027-01-15
const std::string kGun = "registry.example.com:5000/team/app";
const std::string kManifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
const std::string kOther = R"({"schemaVersion":2})";

}  // namespace

TEST_CASE("tuf repository: targets of a verified chain, by name and digest", "[tuf]") {
  auto k = test::tufRepoKeys(kGun, kNow);
  auto release = test::tufEcdsaKey();
  auto files = test::tufRepoFiles(k, {{"v1", test::tufFileMeta(kManifest)}},
                                  {{"targets/releases", &release, {{"v1", test::tufFileMeta(kManifest)}, {"v2", test::tufFileMeta(kOther)}}},
                                   {"targets/ci", &release, {{"v9", test::tufFileMeta(kManifest)}}, {"release-"}}});
  auto repo = tuf::verifyRepository(kGun, files, nullptr, kNow);
  INFO(repo.status().message());
  REQUIRE(repo.isOk());
  CHECK(repo->problems.empty());
  auto v1 = repo->find("v1", sha256Hex(kManifest), kNow);
  REQUIRE(v1.size() == 2);
  std::set<std::string> roles{v1[0]->role, v1[1]->role};
  CHECK(roles == std::set<std::string>{"targets", "targets/releases"});
  for (const auto* t : v1) {
    CHECK(t->signers == std::vector<std::string>{t->role == "targets" ? k.targets.id : release.id});
    CHECK(t->length == int64_t(kManifest.size()));
  }
  CHECK(repo->find("v1", sha256Hex(kOther), kNow).empty());  // another digest
  CHECK(repo->find("v2", sha256Hex(kOther), kNow).size() == 1);
  CHECK(repo->find("v9", sha256Hex(kManifest), kNow).empty());  // outside targets/ci's paths
  CHECK(repo->find("v1", sha256Hex(kManifest), repo->expires_ms).empty());  // expired by then
}

TEST_CASE("tuf repository: tampering anywhere in the chain is refused", "[tuf]") {
  auto k = test::tufRepoKeys(kGun, kNow);
  auto files = test::tufRepoFiles(k, {{"v1", test::tufFileMeta(kManifest)}});
  REQUIRE(tuf::verifyRepository(kGun, files, nullptr, kNow).isOk());
  auto refused = [&](std::map<std::string, std::string> f, const std::string& gun, const std::string& needle) {
    auto r = tuf::verifyRepository(gun, f, nullptr, kNow);
    INFO(needle);
    REQUIRE(!r.isOk());
    INFO(r.status().message());
    CHECK(r.status().message().find(needle) != std::string::npos);
  };
  SECTION("targets re-signed by another key: below threshold") {
    auto other = test::tufEcdsaKey();
    auto f = files;
    f["targets"] = test::tufEnvelope(test::tufTargetsBody(1, {{"v1", test::tufFileMeta(kOther)}}), {&other});
    refused(f, kGun, "targets");
  }
  SECTION("targets changed after the snapshot was made: checksum") {
    auto f = files;
    f["targets"] = test::tufEnvelope(test::tufTargetsBody(1, {{"v1", test::tufFileMeta(kOther)}}), {&k.targets});
    refused(f, kGun, "snapshot: the sha256 of targets");
  }
  SECTION("a snapshot the timestamp does not name") {
    auto other = test::tufRepoFiles(k, {{"v2", test::tufFileMeta(kOther)}});
    auto f = files;
    f["snapshot"] = other["snapshot"];
    f["targets"] = other["targets"];
    refused(f, kGun, "timestamp: does not name this snapshot");
  }
  SECTION("a root for another GUN") { refused(files, "registry.example.com:5000/team/other", "is for"); }
  SECTION("expired metadata") {
    auto f = test::tufRepoFiles(k, {{"v1", test::tufFileMeta(kManifest)}}, {}, "2026-01-01T00:00:00Z");
    refused(f, kGun, "expired");
  }
  SECTION("a role missing") {
    auto f = files;
    f.erase("timestamp");
    refused(f, kGun, "timestamp: missing");
  }
  SECTION("a root other than the pinned one, not signed by it") {
    auto pinned = tuf::parseRoot(files["root"]);
    REQUIRE(pinned.isOk());
    auto k2 = test::tufRepoKeys(kGun, kNow);
    auto r = tuf::verifyRepository(kGun, test::tufRepoFiles(k2, {{"v1", test::tufFileMeta(kManifest)}}), &*pinned, kNow);
    REQUIRE(!r.isOk());
    CHECK(r.status().message().find("by the previous root") != std::string::npos);
    CHECK(tuf::verifyRepository(kGun, files, &*pinned, kNow).isOk());
  }
}

TEST_CASE("tuf repository: a delegation that does not verify loses only its own targets", "[tuf]") {
  auto k = test::tufRepoKeys(kGun, kNow);
  auto release = test::tufEcdsaKey(), impostor = test::tufEcdsaKey();
  auto files = test::tufRepoFiles(k, {{"v1", test::tufFileMeta(kManifest)}},
                                  {{"targets/releases", &release, {{"v2", test::tufFileMeta(kOther)}}}});
  // Signed by a key the parent does not name; the snapshot re-made over it.
  files["targets/releases"] = test::tufEnvelope(test::tufTargetsBody(1, {{"v2", test::tufFileMeta(kOther)}}), {&impostor});
  auto snap = tuf::parseSigned(files["snapshot"], "Snapshot");
  REQUIRE(snap.isOk());
  json body = snap->body;
  body["meta"]["targets/releases"] = test::tufFileMeta(files["targets/releases"]);
  files["snapshot"] = test::tufEnvelope(body, {&k.snapshot});
  json ts = {{"_type", "Timestamp"}, {"version", 1}, {"expires", "2029-01-01T00:00:00Z"},
             {"meta", {{"snapshot", test::tufFileMeta(files["snapshot"])}}}};
  files["timestamp"] = test::tufEnvelope(ts, {&k.timestamp});
  auto repo = tuf::verifyRepository(kGun, files, nullptr, kNow);
  INFO(repo.status().message());
  REQUIRE(repo.isOk());
  CHECK(repo->find("v1", sha256Hex(kManifest), kNow).size() == 1);
  CHECK(repo->find("v2", sha256Hex(kOther), kNow).empty());
  REQUIRE(repo->problems.size() == 1);
  CHECK(repo->problems[0].find("targets/releases") != std::string::npos);
}

TEST_CASE("cosign: a payload signed by a policy key for the image's digest", "[tuf]") {
  test::CosignSigner signer, other;
  auto key = tuf::CosignKey::fromPem(signer.public_pem);
  REQUIRE(key.isOk());
  std::vector<std::shared_ptr<const tuf::CosignKey>> keys{*key};
  std::string digest = "sha256:" + sha256Hex(kManifest);
  std::string payload = test::cosignPayload("registry.example.com/team/app:v1", digest);

  auto ok = tuf::verifyCosign(payload, signer.sign(payload), digest, keys);
  INFO(ok.status().message());
  REQUIRE(ok.isOk());
  CHECK(*ok == (*key)->id());
  CHECK(ok->rfind("sha256:", 0) == 0);

  CHECK(!tuf::verifyCosign(payload, other.sign(payload), digest, keys).isOk());  // another key
  std::string elsewhere = test::cosignPayload("registry.example.com/team/app:v1", "sha256:" + sha256Hex(kOther));
  auto wrong_digest = tuf::verifyCosign(elsewhere, signer.sign(elsewhere), digest, keys);
  REQUIRE(!wrong_digest.isOk());
  CHECK(wrong_digest.status().message().find("signs sha256:") != std::string::npos);
  std::string tampered = payload;
  tampered.replace(tampered.find("app:v1"), 6, "app:v2");
  CHECK(!tuf::verifyCosign(tampered, signer.sign(payload), digest, keys).isOk());
  CHECK(!tuf::verifyCosign(payload, "not base64!", digest, keys).isOk());
  std::string not_cosign = R"({"critical":{"type":"something else","image":{"docker-manifest-digest":")" + digest +
                           R"("},"identity":{}}})";
  CHECK(!tuf::verifyCosign(not_cosign, signer.sign(not_cosign), digest, keys).isOk());

  CHECK(tuf::cosignSignatureTag(digest) == "sha256-" + sha256Hex(kManifest) + ".sig");
  CHECK(!tuf::CosignKey::fromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").isOk());
}

}  // namespace repository_test
