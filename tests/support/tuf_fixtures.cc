#include "tests/support/tuf_fixtures.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <stdexcept>

#include "shared/tls/crypto.h"
#include "shared/tuf/tuf_crypto.h"

namespace wharf::test {

namespace {

using nlohmann::json;

std::string signDer(EVP_PKEY* k, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k) != 1) throw std::runtime_error("sign init");
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string der(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len, reinterpret_cast<const unsigned char*>(data.data()),
                 data.size());
  EVP_MD_CTX_free(ctx);
  der.resize(len);
  return der;
}

std::string signRaw(EVP_PKEY* k, const std::string& data) {
  std::string der = signDer(k, data);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, long(der.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(s);
  return raw;
}

TufKey withId(TufKey k) {
  auto id = tuf::keyIdOf(k.tuf);
  if (!id.isOk()) throw std::runtime_error(id.status().message());
  k.id = *id;
  return k;
}

}  // namespace

TufKey tufEcdsaKey() {
  TufKey k;
  k.pkey.reset(EVP_EC_gen("P-256"), EVP_PKEY_free);
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(k.pkey.get(), &der);
  std::string spki(reinterpret_cast<char*>(der), size_t(n));
  OPENSSL_free(der);
  k.tuf = {{"keytype", "ecdsa"}, {"keyval", {{"public", base64Encode(spki)}, {"private", nullptr}}}};
  return withId(std::move(k));
}

std::string tufCertPem(EVP_PKEY* k, const std::string& cn, int64_t now_ms, long valid_s, bool sha1, long not_before_s) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  time_t now = time_t(now_ms / 1000);
  X509_time_adj_ex(X509_getm_notBefore(x), 0, not_before_s, &now);
  X509_time_adj_ex(X509_getm_notAfter(x), 0, valid_s, &now);
  X509_set_pubkey(x, k);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (X509_sign(x, k, sha1 ? EVP_sha1() : EVP_sha256()) <= 0) throw std::runtime_error("certificate");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  std::string pem(p, size_t(n));
  BIO_free(bio);
  X509_free(x);
  return pem;
}

TufKey tufRootKey(const std::string& cn, int64_t now_ms, long valid_s, bool sha1, long not_before_s) {
  TufKey k;
  k.pkey.reset(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::string pem = tufCertPem(k.pkey.get(), cn, now_ms, valid_s, sha1, not_before_s);
  k.tuf = {{"keytype", "ecdsa-x509"}, {"keyval", {{"public", base64Encode(pem)}, {"private", nullptr}}}};
  return withId(std::move(k));
}

std::string tufEnvelope(const json& body, const std::vector<const TufKey*>& signers) {
  auto canonical = tuf::canonicalJson(body);
  if (!canonical.isOk()) throw std::runtime_error(canonical.status().message());
  json sigs = json::array();
  for (const TufKey* k : signers)
    sigs.push_back({{"keyid", k->id}, {"method", "ecdsa"}, {"sig", base64Encode(signRaw(k->pkey.get(), *canonical))}});
  return json{{"signed", body}, {"signatures", sigs}}.dump();
}

json tufRootBody(const std::vector<const TufKey*>& root_keys, const json& targets_key, const json& snapshot_key,
                 const json& timestamp_key, int version, int threshold, const std::string& expires) {
  json keys = json::object();
  json root_ids = json::array();
  for (const TufKey* r : root_keys) {
    keys[r->id] = r->tuf;
    root_ids.push_back(r->id);
  }
  auto idOf = [&](const json& key) {
    std::string id = tuf::keyIdOf(key).value();
    keys[id] = key;
    return id;
  };
  std::string t = idOf(targets_key), s = idOf(snapshot_key), ts = idOf(timestamp_key);
  return {{"_type", "Root"},
          {"version", version},
          {"expires", expires},
          {"consistent_snapshot", false},
          {"keys", keys},
          {"roles",
           {{"root", {{"keyids", root_ids}, {"threshold", threshold}}},
            {"targets", {{"keyids", {t}}, {"threshold", 1}}},
            {"snapshot", {{"keyids", {s}}, {"threshold", 1}}},
            {"timestamp", {{"keyids", {ts}}, {"threshold", 1}}}}}};
}

json tufTargetsBody(int version, const json& targets, const std::string& expires) {
  return {{"_type", "Targets"},
          {"version", version},
          {"expires", expires},
          {"targets", targets},
          {"delegations", {{"keys", json::object()}, {"roles", json::array()}}}};
}

json tufFileMeta(const std::string& bytes) {
  unsigned char h[32];
  EVP_Digest(bytes.data(), bytes.size(), h, nullptr, EVP_sha256(), nullptr);
  return {{"length", bytes.size()}, {"hashes", {{"sha256", base64Encode(std::string(reinterpret_cast<char*>(h), 32))}}}};
}

CosignSigner::CosignSigner() : key(EVP_EC_gen("P-256"), EVP_PKEY_free) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(b, key.get());
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  public_pem.assign(p, size_t(n));
  BIO_free(b);
}

std::string CosignSigner::sign(const std::string& payload) const { return base64Encode(signDer(key.get(), payload)); }

std::string cosignPayload(const std::string& reference, const std::string& digest) {
  return json{{"critical",
               {{"identity", {{"docker-reference", reference}}},
                {"image", {{"docker-manifest-digest", digest}}},
                {"type", "cosign container image signature"}}},
              {"optional", nullptr}}
      .dump();
}

CommandResult notaryCli(const std::string& server_url, const std::string& trust_dir, const std::string& user,
                        const std::string& password, const std::string& args, const std::string& input) {
  std::string cmd = "NOTARY_AUTH=" + base64Encode(user + ":" + password) +
                    " NOTARY_ROOT_PASSPHRASE=root-pass NOTARY_TARGETS_PASSPHRASE=targets-pass"
                    " NOTARY_SNAPSHOT_PASSPHRASE=snapshot-pass NOTARY_DELEGATION_PASSPHRASE=delegation-pass"
                    " notary -s " + server_url + " -d " + trust_dir + " " + args + " 2>&1";
  if (!input.empty()) cmd = "echo " + input + " | " + cmd;
  return shell(cmd, 120000);
}

std::string tufMultipart(const std::map<std::string, std::string>& parts) {
  std::string body;
  for (const auto& [role, bytes] : parts)
    body += "--BOUNDARY\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + role +
            "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + bytes + "\r\n";
  return body + "--BOUNDARY--\r\n";
}

TufRepoKeys tufRepoKeys(const std::string& gun, int64_t now_ms) {
  return TufRepoKeys{tufRootKey(gun, now_ms), tufEcdsaKey(), tufEcdsaKey(), tufEcdsaKey()};
}

std::map<std::string, std::string> tufRepoFiles(const TufRepoKeys& k, const json& targets,
                                                const std::vector<TufDelegation>& delegations, const std::string& expires,
                                                int version) {
  std::map<std::string, std::string> files;
  files["root"] = tufEnvelope(tufRootBody({&k.root}, k.targets.tuf, k.snapshot.tuf, k.timestamp.tuf, 1), {&k.root});
  json body = tufTargetsBody(version, targets, expires);
  for (const auto& d : delegations) {
    body["delegations"]["keys"][d.key->id] = d.key->tuf;
    body["delegations"]["roles"].push_back({{"name", d.name}, {"keyids", {d.key->id}}, {"threshold", 1}, {"paths", d.paths}});
    files[d.name] = tufEnvelope(tufTargetsBody(version, d.targets, expires), {d.key});
  }
  files["targets"] = tufEnvelope(body, {&k.targets});
  json meta = json::object();
  for (const auto& [role, bytes] : files) meta[role] = tufFileMeta(bytes);
  files["snapshot"] = tufEnvelope({{"_type", "Snapshot"}, {"version", version}, {"expires", expires}, {"meta", meta}},
                                  {&k.snapshot});
  if (!k.timestamp.pkey) return files;  // the server's key: the server signs the timestamp
  files["timestamp"] = tufEnvelope(
      {{"_type", "Timestamp"}, {"version", version}, {"expires", expires}, {"meta", {{"snapshot", tufFileMeta(files["snapshot"])}}}},
      {&k.timestamp});
  return files;
}

}  // namespace wharf::test
