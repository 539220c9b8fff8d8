#include <catch2/catch.hpp>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <set>
#include <string>
#include <vector>

#include "shared/tls/crypto.h"

// Each file's own names: the test binaries are unity builds.
namespace crypto_test {

using namespace wharf;

TEST_CASE("crypto: generateEcKey produces distinct PEM key pairs", "[auth]") {
  auto a = generateEcKey();
  auto b = generateEcKey();
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  CHECK(a->private_pem.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  CHECK(a->public_pem.rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);
  CHECK(a->private_pem != b->private_pem);
  CHECK(a->public_pem != b->public_pem);
}

TEST_CASE("crypto: publicPemOf derives the public half", "[auth]") {
  auto k = generateEcKey();
  REQUIRE(k.isOk());
  auto pub = publicPemOf(k->private_pem);
  REQUIRE(pub.isOk());
  CHECK(*pub == k->public_pem);
  CHECK_FALSE(publicPemOf("").isOk());
  CHECK_FALSE(publicPemOf("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n").isOk());
  CHECK_FALSE(publicPemOf(k->public_pem).isOk());  // a public key is not a private key
}

TEST_CASE("crypto: keyIdOf is stable, 32 hex characters, and differs per key", "[auth]") {
  auto a = generateEcKey();
  auto b = generateEcKey();
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  auto ka = keyIdOf(a->public_pem);
  auto ka2 = keyIdOf(a->public_pem);
  auto kb = keyIdOf(b->public_pem);
  REQUIRE(ka.isOk());
  REQUIRE(ka2.isOk());
  REQUIRE(kb.isOk());
  CHECK(ka->size() == 32);
  CHECK(ka->find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(*ka == *ka2);
  CHECK(*ka != *kb);
  CHECK_FALSE(keyIdOf("not a key").isOk());
  CHECK_FALSE(keyIdOf(a->private_pem).isOk());
}

TEST_CASE("crypto: publicJwk describes a P-256 key", "[auth]") {
  auto a = generateEcKey();
  auto b = generateEcKey();
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  auto ja = publicJwk(a->public_pem, "kid-a");
  auto jb = publicJwk(b->public_pem, "kid-b");
  REQUIRE(ja.isOk());
  REQUIRE(jb.isOk());
  const auto& j = *ja;
  CHECK(j["kty"] == "EC");
  CHECK(j["crv"] == "P-256");
  CHECK(j["kid"] == "kid-a");
  CHECK(j["alg"] == "ES256");
  CHECK(j["use"] == "sig");
  REQUIRE(j["x"].is_string());
  REQUIRE(j["y"].is_string());
  auto x = base64UrlDecode(j["x"].get<std::string>());
  auto y = base64UrlDecode(j["y"].get<std::string>());
  REQUIRE(x.isOk());
  REQUIRE(y.isOk());
  CHECK(x->size() == 32);
  CHECK(y->size() == 32);
  CHECK(j["x"] != (*jb)["x"]);
  CHECK_FALSE(j.contains("d"));  // never the private part
  CHECK_FALSE(publicJwk("garbage", "k").isOk());
}

TEST_CASE("crypto: password hashes verify the right password only", "[auth]") {
  std::string h = hashPassword("correct horse", 1000);
  CHECK(h.rfind("pbkdf2-sha256$1000$", 0) == 0);
  CHECK(verifyPassword("correct horse", h));
  CHECK_FALSE(verifyPassword("correct horsE", h));
  CHECK_FALSE(verifyPassword("", h));
  CHECK_FALSE(verifyPassword("correct horse ", h));
  // Salted: the same password hashes differently each time, and both verify.
  std::string h2 = hashPassword("correct horse", 1000);
  CHECK(h != h2);
  CHECK(verifyPassword("correct horse", h2));
  // The iteration count is part of the encoding.
  std::string h3 = hashPassword("pw", 1234);
  CHECK(h3.rfind("pbkdf2-sha256$1234$", 0) == 0);
  CHECK(verifyPassword("pw", h3));
}

TEST_CASE("crypto: the default password hash uses the documented strength", "[auth]") {
  CHECK(kPasswordIterations == 600000);
}

TEST_CASE("crypto: malformed password hashes never verify", "[auth]") {
  std::string good = hashPassword("pw", 1000);
  auto parts_at = [&](size_t n) {
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) pos = good.find('$', pos) + 1;
    return pos;
  };
  std::string salt_and_hash = good.substr(parts_at(2));
  const std::vector<std::string> bad = {
      "",
      "pw",
      "$$$",
      "pbkdf2-sha256",
      "pbkdf2-sha256$1000",
      "pbkdf2-sha256$1000$" + salt_and_hash.substr(0, salt_and_hash.find('$')),
      "pbkdf2-sha1$1000$" + salt_and_hash,
      "bcrypt$1000$" + salt_and_hash,
      "pbkdf2-sha256$$" + salt_and_hash,
      "pbkdf2-sha256$0$" + salt_and_hash,
      "pbkdf2-sha256$-5$" + salt_and_hash,
      "pbkdf2-sha256$1e3$" + salt_and_hash,
      "pbkdf2-sha256$999999999$" + salt_and_hash,
      "pbkdf2-sha256$1000$!!!$" + salt_and_hash.substr(salt_and_hash.find('$') + 1),
      "pbkdf2-sha256$1000$" + salt_and_hash.substr(0, salt_and_hash.find('$')) + "$",
      "pbkdf2-sha256$1000$" + salt_and_hash.substr(0, salt_and_hash.find('$')) + "$+/+/",
      good + "$extra",
      "pbkdf2-sha256$1001$" + salt_and_hash,  // right format, wrong iteration count
  };
  for (const auto& h : bad) {
    INFO(h);
    CHECK_FALSE(verifyPassword("pw", h));
  }
  CHECK(verifyPassword("pw", good));
}

TEST_CASE("crypto: sha256Hex known answers", "[auth]") {
  CHECK(sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256Hex(std::string("\0", 1)) == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

TEST_CASE("crypto: constantTimeEquals", "[auth]") {
  CHECK(constantTimeEquals("", ""));
  CHECK(constantTimeEquals("secret", "secret"));
  CHECK_FALSE(constantTimeEquals("secret", "secreT"));
  CHECK_FALSE(constantTimeEquals("secret", "secret1"));
  CHECK_FALSE(constantTimeEquals("secret", ""));
  CHECK_FALSE(constantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
  CHECK(constantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
}

TEST_CASE("crypto: randomToken is base64url of n random bytes", "[auth]") {
  std::string t = randomToken(32);
  CHECK(t.size() == 43);
  CHECK(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
  auto raw = base64UrlDecode(t);
  REQUIRE(raw.isOk());
  CHECK(raw->size() == 32);
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) seen.insert(randomToken(16));
  CHECK(seen.size() == 50);
  CHECK(randomToken(0).empty());
  CHECK(randomToken(1).size() == 2);
}

TEST_CASE("crypto: base64url encoding (RFC 4648 vectors, no padding)", "[auth]") {
  CHECK(base64UrlEncode("") == "");
  CHECK(base64UrlEncode("f") == "Zg");
  CHECK(base64UrlEncode("fo") == "Zm8");
  CHECK(base64UrlEncode("foo") == "Zm9v");
  CHECK(base64UrlEncode("foob") == "Zm9vYg");
  CHECK(base64UrlEncode("fooba") == "Zm9vYmE");
  CHECK(base64UrlEncode("foobar") == "Zm9vYmFy");
  CHECK(base64UrlEncode("\xfb\xff") == "-_8");
  CHECK(base64UrlEncode("\xff\xff\xff") == "____");
}

TEST_CASE("crypto: base64url decoding round-trips and refuses foreign characters", "[auth]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 37) {
    std::string data = all.substr(0, n);
    auto back = base64UrlDecode(base64UrlEncode(data));
    REQUIRE(back.isOk());
    CHECK(*back == data);
  }
  auto d = base64UrlDecode("Zm9vYmFy");
  REQUIRE(d.isOk());
  CHECK(*d == "foobar");
  auto e = base64UrlDecode("");
  REQUIRE(e.isOk());
  CHECK(e->empty());
  auto u = base64UrlDecode("-_8");
  REQUIRE(u.isOk());
  CHECK(*u == "\xfb\xff");
  for (const char* bad : {"+_8", "-/8", "Zm9v!", "Zm 9v", "Zm9v\n", "a", "Zm9vY"}) {
    INFO(bad);
    CHECK(base64UrlDecode(bad).status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("crypto: standard base64 decoding, padding optional", "[auth]") {
  bool ok = false;
  CHECK(base64Decode("Zm9vYmFy", &ok) == "foobar");
  CHECK(ok);
  CHECK(base64Decode("Zg==", &ok) == "f");
  CHECK(ok);
  CHECK(base64Decode("Zg", &ok) == "f");
  CHECK(ok);
  CHECK(base64Decode("Zm8=", &ok) == "fo");
  CHECK(ok);
  CHECK(base64Decode("+/8=", &ok) == "\xfb\xff");
  CHECK(ok);
  CHECK(base64Decode("YWxpY2U6c2VjcmV0", &ok) == "alice:secret");
  CHECK(ok);
  (void)base64Decode("-_8", &ok);
  CHECK_FALSE(ok);
  (void)base64Decode("Zm9v!", &ok);
  CHECK_FALSE(ok);
  (void)base64Decode("Z", &ok);
  CHECK_FALSE(ok);
}

namespace {
// A PEM private key of another kind, to check that Es256Key insists on P-256.
std::string otherKeyPem(const char* curve) {
  EVP_PKEY* k = EVP_EC_gen(curve);
  REQUIRE(k != nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(k);
  return pem;
}
}  // namespace

TEST_CASE("crypto: Es256Key signs raw 64-byte signatures that verify", "[auth]") {
  auto pair = generateEcKey();
  REQUIRE(pair.isOk());
  auto priv = Es256Key::fromPem(pair->private_pem, true);
  auto pub = Es256Key::fromPem(pair->public_pem, false);
  REQUIRE(priv.isOk());
  REQUIRE(pub.isOk());
  auto sig = (*priv)->sign("header.payload");
  REQUIRE(sig.isOk());
  CHECK(sig->size() == 64);
  CHECK((*pub)->verify("header.payload", *sig));
  CHECK((*priv)->verify("header.payload", *sig));
  CHECK_FALSE((*pub)->verify("header.payloaD", *sig));
  std::string flipped = *sig;
  flipped[10] = static_cast<char>(flipped[10] ^ 1);
  CHECK_FALSE((*pub)->verify("header.payload", flipped));
  CHECK_FALSE((*pub)->verify("header.payload", sig->substr(0, 63)));
  CHECK_FALSE((*pub)->verify("header.payload", ""));
  CHECK_FALSE((*pub)->verify("header.payload", std::string(64, '\0')));

  auto other = generateEcKey();
  REQUIRE(other.isOk());
  auto other_pub = Es256Key::fromPem(other->public_pem, false);
  REQUIRE(other_pub.isOk());
  CHECK_FALSE((*other_pub)->verify("header.payload", *sig));
}

TEST_CASE("crypto: Es256Key refuses other keys and malformed PEM", "[auth]") {
  auto pair = generateEcKey();
  REQUIRE(pair.isOk());
  CHECK_FALSE(Es256Key::fromPem("garbage", true).isOk());
  CHECK_FALSE(Es256Key::fromPem("garbage", false).isOk());
  CHECK_FALSE(Es256Key::fromPem(pair->public_pem, true).isOk());
  CHECK_FALSE(Es256Key::fromPem(pair->private_pem, false).isOk());
  auto p384 = Es256Key::fromPem(otherKeyPem("P-384"), true);
  CHECK_FALSE(p384.isOk());
  CHECK(p384.status().code() == Code::kInvalidArgument);
}

// crypto.h: base64UrlDecode "Refuses characters outside the base64url alphabet". '=' is
// not in that alphabet (RFC 4648 section 5; JWS forbids padding), but decode() strips
// trailing '=' before checking, so padded input is accepted.
TEST_CASE("crypto: base64UrlDecode refuses '=' padding", "[auth][regression]") {
  CHECK_FALSE(base64UrlDecode("Zg==").isOk());
  CHECK_FALSE(base64UrlDecode("Zm8=").isOk());
}

}  // namespace crypto_test

namespace crypto_test_sealing {

using namespace wharf;

TEST_CASE("crypto: secrets sealed with AES-256-GCM open only with their key and purpose", "[crypto]") {
  std::string key(32, 'k'), other(32, 'o');
  auto sealed = sealSecret(key, "-----BEGIN PRIVATE KEY-----\nsecret\n", "timestamp key of team/app");
  REQUIRE(sealed.isOk());
  CHECK(sealed->rfind("v1:", 0) == 0);
  CHECK(sealed->find("secret") == std::string::npos);
  CHECK(*openSecret(key, *sealed, "timestamp key of team/app") == "-----BEGIN PRIVATE KEY-----\nsecret\n");
  CHECK(*sealSecret(key, "x", "a") != *sealSecret(key, "x", "a"));  // a fresh nonce each time
  CHECK(openSecret(other, *sealed, "timestamp key of team/app").status().code() == Code::kCorruption);
  CHECK(openSecret(key, *sealed, "timestamp key of team/other").status().code() == Code::kCorruption);
  std::string tampered = *sealed;
  tampered[10] = tampered[10] == 'A' ? 'B' : 'A';
  CHECK(!openSecret(key, tampered, "timestamp key of team/app").isOk());
  CHECK(!openSecret(key, "v1:AAAA", "x").isOk());
  CHECK(sealSecret("short", "x", "a").status().code() == Code::kInvalidArgument);
}

}  // namespace crypto_test_sealing
