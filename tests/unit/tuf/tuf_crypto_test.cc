// TUF cryptography as Notary 0.7 uses it: canonical JSON, key ids, and signatures of each
// key type and method, made here with OpenSSL the way the notary CLI makes them.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "shared/tls/crypto.h"
#include "shared/base/clock.h"
#include "shared/tuf/tuf_crypto.h"
#include "tests/support/tuf_fixtures.h"

namespace tuf_crypto_test {

using namespace wharf;
using nlohmann::json;

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string spkiB64(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(k, &der);
  std::string s(reinterpret_cast<char*>(der), size_t(n));
  OPENSSL_free(der);
  return base64Encode(s);
}

std::string sign(EVP_PKEY* k, const EVP_MD* md, int padding, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  REQUIRE(EVP_DigestSignInit(ctx, &pctx, md, nullptr, k) == 1);
  if (padding != 0) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, padding);
    if (padding == RSA_PKCS1_PSS_PADDING) EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
  }
  size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                         reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

// A self-signed certificate for k, as `notary init` makes for a root key.
std::string certPem(EVP_PKEY* k, const std::string& cn, long valid_s, bool sha1 = false) {
  return test::tufCertPem(k, cn, RealClock::instance().nowMillis(), valid_s, sha1, -60);
}

json keyJson(const std::string& type, const std::string& public_b64) {
  return {{"keytype", type}, {"keyval", {{"public", public_b64}, {"private", nullptr}}}};
}

}  // namespace

TEST_CASE("tuf: canonical JSON as docker/go's MarshalCanonical writes it", "[tuf]") {
  json v = json::parse(R"({"b": 1, "a": [true, null, "q\"b\\s\n\u00e9<"], "A": {"z": -5, "y": 18446744073709551615}})");
  auto c = tuf::canonicalJson(v);
  REQUIRE(c.isOk());
  // Bytewise key order (upper case first), no whitespace, only " and \ escaped.
  CHECK(*c == "{\"A\":{\"y\":18446744073709551615,\"z\":-5},\"a\":[true,null,\"q\\\"b\\\\s\n\xc3\xa9<\"],\"b\":1}");
  CHECK(tuf::canonicalJson(json::parse(R"({"x": 1.5})")).status().code() == Code::kInvalidArgument);
  CHECK(tuf::canonicalJson(json::parse("[]")).value() == "[]");
  json deep = json::array();
  for (int i = 0; i < 100; ++i) deep = json::array({deep});
  CHECK(!tuf::canonicalJson(deep).isOk());
}

TEST_CASE("tuf: key ids are the SHA-256 of the canonical key with a null private part", "[tuf]") {
  json k = keyJson("ecdsa", "AAAA");
  k["keyval"]["private"] = "secret";  // never part of the id
  auto id = tuf::keyIdOf(k);
  REQUIRE(id.isOk());
  CHECK(*id == sha256Hex(R"({"keytype":"ecdsa","keyval":{"private":null,"public":"AAAA"}})"));
  CHECK(!tuf::keyIdOf(json{{"keytype", "ecdsa"}}).isOk());
}

TEST_CASE("tuf: the server's ECDSA key signs raw r||s that its public key verifies", "[tuf]") {
  auto key = tuf::SigningKey::generate();
  REQUIRE(key.isOk());
  auto sig = (*key)->sign("the signed bytes");
  REQUIRE(sig.isOk());
  CHECK(sig->size() == 64);
  auto pub = tuf::PublicKey::fromJson((*key)->publicJson());
  REQUIRE(pub.isOk());
  CHECK((*pub)->id() == (*key)->id());
  CHECK((*pub)->verify("ecdsa", "the signed bytes", *sig));
  CHECK(!(*pub)->verify("ecdsa", "the signed bytez", *sig));
  CHECK(!(*pub)->verify("eddsa", "the signed bytes", *sig));
  CHECK(!(*pub)->verify("ecdsa", "the signed bytes", sig->substr(0, 63)));
  std::string flipped = *sig;
  flipped[10] = char(flipped[10] ^ 1);
  CHECK(!(*pub)->verify("ecdsa", "the signed bytes", flipped));
  // Kept as PEM and read back: the same key.
  auto again = tuf::SigningKey::fromPem((*key)->privatePem().value());
  REQUIRE(again.isOk());
  CHECK((*again)->id() == (*key)->id());
  CHECK((*pub)->verify("ecdsa", "x", (*again)->sign("x").value()));
  CHECK(!tuf::SigningKey::fromPem("not a key").isOk());
}

TEST_CASE("tuf: ecdsa-x509 root keys carry their certificate's name, validity and algorithm", "[tuf]") {
  Pkey k(EVP_EC_gen("P-256"));
  std::string pem = certPem(k.get(), "registry.example.com:5000/team/app", 10L * 365 * 86400);
  auto pub = tuf::PublicKey::fromJson(keyJson("ecdsa-x509", base64Encode(pem)));
  REQUIRE(pub.isOk());
  REQUIRE((*pub)->cert() != nullptr);
  CHECK((*pub)->cert()->common_name == "registry.example.com:5000/team/app");
  CHECK((*pub)->cert()->not_after_ms > (*pub)->cert()->not_before_ms + 9LL * 365 * 86'400'000);
  CHECK(!(*pub)->cert()->sha1_signature);
  // The signature the notary CLI makes: ECDSA SHA-256, DER turned into raw r||s.
  std::string der = sign(k.get(), EVP_sha256(), 0, "root bytes");
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, long(der.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(s);
  CHECK((*pub)->verify("ecdsa", "root bytes", raw));
  CHECK(!(*pub)->verify("ecdsa", "root bytes", der));  // DER is not what TUF carries

  std::string sha1 = certPem(k.get(), "old", 86400, true);
  auto old = tuf::PublicKey::fromJson(keyJson("ecdsa-x509", base64Encode(sha1)));
  REQUIRE(old.isOk());
  CHECK(old.value()->cert()->sha1_signature);
  CHECK(!tuf::PublicKey::fromJson(keyJson("ecdsa-x509", base64Encode("not a cert"))).isOk());
  // A certificate of another kind of key is refused for this key type.
  Pkey r(EVP_RSA_gen(2048));
  CHECK(!tuf::PublicKey::fromJson(keyJson("ecdsa-x509", base64Encode(certPem(r.get(), "x", 86400)))).isOk());
}

TEST_CASE("tuf: ed25519 and RSA (PSS, PKCS#1 v1.5) keys", "[tuf]") {
  Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  REQUIRE(ed);
  unsigned char raw[32];
  size_t len = sizeof raw;
  REQUIRE(EVP_PKEY_get_raw_public_key(ed.get(), raw, &len) == 1);
  auto edpub = tuf::PublicKey::fromJson(keyJson("ed25519", base64Encode(std::string(reinterpret_cast<char*>(raw), len))));
  REQUIRE(edpub.isOk());
  std::string edsig = sign(ed.get(), nullptr, 0, "targets bytes");
  CHECK((*edpub)->verify("eddsa", "targets bytes", edsig));
  CHECK(!(*edpub)->verify("eddsa", "targets byte", edsig));
  CHECK(!tuf::PublicKey::fromJson(keyJson("ed25519", base64Encode("short"))).isOk());

  Pkey rsa(EVP_RSA_gen(2048));
  auto rpub = tuf::PublicKey::fromJson(keyJson("rsa", spkiB64(rsa.get())));
  REQUIRE(rpub.isOk());
  std::string pss = sign(rsa.get(), EVP_sha256(), RSA_PKCS1_PSS_PADDING, "snapshot bytes");
  std::string v15 = sign(rsa.get(), EVP_sha256(), RSA_PKCS1_PADDING, "snapshot bytes");
  CHECK((*rpub)->verify("rsapss", "snapshot bytes", pss));
  CHECK((*rpub)->verify("rsapkcs1v15", "snapshot bytes", v15));
  CHECK(!(*rpub)->verify("rsapss", "snapshot bytes", v15));
  CHECK(!(*rpub)->verify("ecdsa", "snapshot bytes", pss));
  Pkey small(EVP_RSA_gen(1024));
  CHECK(tuf::PublicKey::fromJson(keyJson("rsa", spkiB64(small.get()))).status().message().find("2048") != std::string::npos);
  // A key of one type presented as another is refused.
  CHECK(!tuf::PublicKey::fromJson(keyJson("ecdsa", spkiB64(rsa.get()))).isOk());
  CHECK(!tuf::PublicKey::fromJson(keyJson("dsa", spkiB64(rsa.get()))).isOk());
  CHECK(!tuf::PublicKey::fromJson(keyJson("rsa", "%%%")).isOk());
}

}  // namespace tuf_crypto_test
