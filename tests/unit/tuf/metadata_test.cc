// TUF metadata validation as Notary's server does it: roots (certificates for the GUN,
// thresholds, rotation), other roles (keys, versions, expiry), snapshots over exact
// bytes, and the server's timestamp. Metadata is built here the way the notary CLI
// builds it (ECDSA P-256 keys, a self-signed root certificate, raw r||s signatures).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "shared/base/clock.h"
#include "shared/tls/crypto.h"
#include "shared/tuf/metadata.h"

namespace metadata_test {

using namespace wharf;
using nlohmann::json;

namespace {

constexpr int64_t kNow = 1'800'000'000'000;  // 2027-01-15
const std::string kGun = "registry.example.com:5000/team/app";

struct Key {
  std::shared_ptr<EVP_PKEY> pkey;
  json tuf;  // the TUF key object
  std::string id;
};

std::string derToRaw(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, long(der.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(s);
  return raw;
}

std::string signRaw(EVP_PKEY* k, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k) == 1);
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string der(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len, reinterpret_cast<const unsigned char*>(data.data()),
                 data.size());
  der.resize(len);
  EVP_MD_CTX_free(ctx);
  return derToRaw(der);
}

Key ecdsaKey() {
  Key k;
  k.pkey.reset(EVP_EC_gen("P-256"), EVP_PKEY_free);
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(k.pkey.get(), &der);
  std::string spki(reinterpret_cast<char*>(der), size_t(n));
  OPENSSL_free(der);
  k.tuf = {{"keytype", "ecdsa"}, {"keyval", {{"public", base64Encode(spki)}, {"private", nullptr}}}};
  k.id = tuf::keyIdOf(k.tuf).value();
  return k;
}

// A root key: a self-signed certificate with the GUN as its common name.
Key rootKey(const std::string& cn = kGun, long valid_s = 10L * 365 * 86400, const EVP_MD* md = EVP_sha256(),
            long not_before_s = -86400) {
  Key k;
  k.pkey.reset(EVP_EC_gen("P-256"), EVP_PKEY_free);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  time_t now = time_t(kNow / 1000);
  X509_time_adj_ex(X509_getm_notBefore(x), 0, not_before_s, &now);
  X509_time_adj_ex(X509_getm_notAfter(x), 0, valid_s, &now);
  X509_set_pubkey(x, k.pkey.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  REQUIRE(X509_sign(x, k.pkey.get(), md) > 0);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  std::string pem(p, size_t(n));
  BIO_free(bio);
  X509_free(x);
  k.tuf = {{"keytype", "ecdsa-x509"}, {"keyval", {{"public", base64Encode(pem)}, {"private", nullptr}}}};
  k.id = tuf::keyIdOf(k.tuf).value();
  return k;
}

std::string envelope(const json& body, const std::vector<const Key*>& signers) {
  std::string canonical = tuf::canonicalJson(body).value();
  json sigs = json::array();
  for (const Key* k : signers)
    sigs.push_back({{"keyid", k->id}, {"method", "ecdsa"}, {"sig", base64Encode(signRaw(k->pkey.get(), canonical))}});
  return json{{"signed", body}, {"signatures", sigs}}.dump();
}

struct Keys {
  Key root = rootKey(), targets = ecdsaKey(), snapshot = ecdsaKey(), timestamp = ecdsaKey();
};

json rootBody(const std::vector<const Key*>& root_keys, const Keys& k, int version, int threshold = 1,
              const std::string& expires = "2030-01-01T00:00:00Z") {
  json keys = json::object();
  json root_ids = json::array();
  for (const Key* r : root_keys) {
    keys[r->id] = r->tuf;
    root_ids.push_back(r->id);
  }
  for (const Key* o : {&k.targets, &k.snapshot, &k.timestamp}) keys[o->id] = o->tuf;
  return {{"_type", "Root"},
          {"version", version},
          {"expires", expires},
          {"consistent_snapshot", false},
          {"keys", keys},
          {"roles",
           {{"root", {{"keyids", root_ids}, {"threshold", threshold}}},
            {"targets", {{"keyids", {k.targets.id}}, {"threshold", 1}}},
            {"snapshot", {{"keyids", {k.snapshot.id}}, {"threshold", 1}}},
            {"timestamp", {{"keyids", {k.timestamp.id}}, {"threshold", 1}}}}}};
}

json targetsBody(int version, const std::string& expires = "2029-01-01T00:00:00Z") {
  return {{"_type", "Targets"},
          {"version", version},
          {"expires", expires},
          {"targets", {{"v1", {{"length", 527}, {"hashes", {{"sha256", "AAAA"}}}}}}},
          {"delegations", {{"keys", json::object()}, {"roles", json::array()}}}};
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
  Key expired = rootKey(kGun, -3600, EVP_sha256(), -86400 * 2);
  refused(envelope(rootBody({&expired}, k, 1), {&expired}), "not valid now");
  Key sha1 = rootKey(kGun, 86400, EVP_sha1());
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
  auto meta = [](const std::string& bytes) {
    unsigned char h[32];
    EVP_Digest(bytes.data(), bytes.size(), h, nullptr, EVP_sha256(), nullptr);
    return json{{"length", bytes.size()}, {"hashes", {{"sha256", base64Encode(std::string(reinterpret_cast<char*>(h), 32))}}}};
  };
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
