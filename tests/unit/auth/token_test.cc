#include <catch2/catch.hpp>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/auth/token.h"
#include "shared/base/clock.h"
#include "shared/tls/crypto.h"

// Each file's own names: the test binaries are unity builds.
namespace token_test {

using namespace wharf;
using nlohmann::json;

namespace {

constexpr const char* kIssuer = "wharf-core";
constexpr const char* kAudience = "wharf";

struct Key {
  std::string kid, private_pem, public_pem;
};

Key newKey() {
  auto pair = generateEcKey();
  REQUIRE(pair.isOk());
  auto kid = keyIdOf(pair->public_pem);
  REQUIRE(kid.isOk());
  return Key{*kid, pair->private_pem, pair->public_pem};
}

int64_t realNowS() { return RealClock::instance().nowMillis() / 1000; }

std::shared_ptr<const TokenSigner> makeSigner(const std::string& kid, const std::string& private_pem) {
  auto s = TokenSigner::create(kid, private_pem);
  INFO(s.status().toString());
  REQUIRE(s.isOk());
  return *s;
}

TokenClaims claimsAt(int64_t now) {
  TokenClaims c;
  c.issuer = kIssuer;
  c.subject = "alice";
  c.audience = kAudience;
  c.id = "jti-1";
  c.issued_at = now;
  c.not_before = now - 1;
  c.expires_at = now + 300;
  c.access = {{"repository", "alice/app", {"pull", "push"}}};
  return c;
}

json payloadAt(int64_t now) {
  return json{{"iss", kIssuer}, {"sub", "alice"}, {"aud", kAudience}, {"jti", "jti-1"}, {"iat", now},
              {"nbf", now - 1},  {"exp", now + 300},
              {"access", json::array({json{{"type", "repository"}, {"name", "alice/app"}, {"actions", {"pull"}}}})}};
}

std::string b64(const std::string& s) { return base64UrlEncode(s); }

// A raw ES256 signature (r || s, 64 bytes) of data, made with OpenSSL directly.
std::string es256Sign(const std::string& private_pem, const std::string& data) {
  BIO* bio = BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size()));
  REQUIRE(bio != nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(key != nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1);
  size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
  std::string der(len, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                         reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
  der.resize(len);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  REQUIRE(sig != nullptr);
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string raw(64, '\0');
  BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

std::string hmacSha256(const std::string& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len) != nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

// header.payload.signature, ES256-signed by hand with private_pem.
std::string handSigned(const json& header, const json& payload, const std::string& private_pem) {
  std::string input = b64(header.dump()) + "." + b64(payload.dump());
  return input + "." + b64(es256Sign(private_pem, input));
}

json es256Header(const std::string& kid) { return json{{"alg", "ES256"}, {"typ", "JWT"}, {"kid", kid}}; }

struct Fixture {
  Key key = newKey();
  std::shared_ptr<const TokenSigner> signer = makeSigner(key.kid, key.private_pem);
  TokenVerifier verifier{{{key.kid, key.public_pem}}, kIssuer, kAudience};
  int64_t now = realNowS();

  void refused(const std::string& token, const char* reason_part = nullptr) const {
    auto r = verifier.verify(token, now);
    INFO("token: " << token);
    CHECK_FALSE(r.isOk());
    CHECK(r.status().code() == Code::kUnauthorized);
    if (reason_part != nullptr) {
      INFO("reason: " << r.status().message());
      CHECK(r.status().message().find(reason_part) != std::string::npos);
    }
  }
};

}  // namespace

TEST_CASE("token: a signed token round-trips its claims", "[auth]") {
  Fixture f;
  TokenClaims c = claimsAt(f.now);
  c.access.push_back({"registry", "catalog", {"*"}});
  c.via = "pat123";
  auto token = f.signer->sign(c);
  REQUIRE(token.isOk());

  // The header names the key and the algorithm.
  auto dot = token->find('.');
  auto header = base64UrlDecode(token->substr(0, dot));
  REQUIRE(header.isOk());
  json h = json::parse(*header);
  CHECK(h["alg"] == "ES256");
  CHECK(h["kid"] == f.key.kid);

  auto v = f.verifier.verify(*token, f.now);
  INFO(v.status().toString());
  REQUIRE(v.isOk());
  CHECK(v->issuer == kIssuer);
  CHECK(v->subject == "alice");
  CHECK(v->audience == kAudience);
  CHECK(v->id == "jti-1");
  CHECK(v->issued_at == c.issued_at);
  CHECK(v->not_before == c.not_before);
  CHECK(v->expires_at == c.expires_at);
  CHECK(v->kind == "access");
  CHECK(v->via == "pat123");
  REQUIRE(v->access.size() == 2);
  CHECK(v->access[0].type == "repository");
  CHECK(v->access[0].name == "alice/app");
  CHECK(v->access[0].actions == std::vector<std::string>{"pull", "push"});
  CHECK(v->access[1].type == "registry");
  CHECK(v->access[1].name == "catalog");
  CHECK(v->access[1].actions == std::vector<std::string>{"*"});
  CHECK(v->allows("repository", "alice/app", "push"));
  CHECK_FALSE(v->allows("repository", "alice/app", "delete"));
}

TEST_CASE("token: refresh kind and an empty via round-trip", "[auth]") {
  Fixture f;
  TokenClaims c = claimsAt(f.now);
  c.kind = "refresh";
  c.access.clear();
  auto token = f.signer->sign(c);
  REQUIRE(token.isOk());
  auto v = f.verifier.verify(*token, f.now);
  REQUIRE(v.isOk());
  CHECK(v->kind == "refresh");
  CHECK(v->via.empty());
  CHECK(v->access.empty());
}

TEST_CASE("token: a hand-built ES256 token verifies (control for the attacks below)", "[auth]") {
  Fixture f;
  auto v = f.verifier.verify(handSigned(es256Header(f.key.kid), payloadAt(f.now), f.key.private_pem), f.now);
  INFO(v.status().toString());
  REQUIRE(v.isOk());
  CHECK(v->subject == "alice");
  CHECK(v->allows("repository", "alice/app", "pull"));
}

TEST_CASE("token: alg none with an empty signature is refused", "[auth]") {
  Fixture f;
  json header = {{"alg", "none"}, {"typ", "JWT"}, {"kid", f.key.kid}};
  std::string token = b64(header.dump()) + "." + b64(payloadAt(f.now).dump()) + ".";
  f.refused(token, "ES256");
  // Spelling variants of "none" too.
  header["alg"] = "None";
  f.refused(b64(header.dump()) + "." + b64(payloadAt(f.now).dump()) + ".");
  header["alg"] = "NONE";
  f.refused(b64(header.dump()) + "." + b64(payloadAt(f.now).dump()) + ".");
  // And with no alg at all.
  header.erase("alg");
  f.refused(b64(header.dump()) + "." + b64(payloadAt(f.now).dump()) + ".");
}

TEST_CASE("token: HS256 keyed with the public key PEM is refused", "[auth]") {
  Fixture f;
  json header = {{"alg", "HS256"}, {"typ", "JWT"}, {"kid", f.key.kid}};
  std::string input = b64(header.dump()) + "." + b64(payloadAt(f.now).dump());
  std::string token = input + "." + b64(hmacSha256(f.key.public_pem, input));
  f.refused(token, "ES256");
}

TEST_CASE("token: a header carrying its own jwk is refused", "[auth]") {
  Fixture f;
  auto jwk = publicJwk(f.key.public_pem, f.key.kid);
  REQUIRE(jwk.isOk());
  json header = es256Header(f.key.kid);
  header["jwk"] = *jwk;
  // Even signed with the ring's own key, the embedded key is not accepted.
  f.refused(handSigned(header, payloadAt(f.now), f.key.private_pem), "jwk");

  // The real attack: the attacker's key, embedded, signing.
  Key evil = newKey();
  auto evil_jwk = publicJwk(evil.public_pem, evil.kid);
  REQUIRE(evil_jwk.isOk());
  json evil_header = {{"alg", "ES256"}, {"typ", "JWT"}, {"jwk", *evil_jwk}};
  f.refused(handSigned(evil_header, payloadAt(f.now), evil.private_pem));
  evil_header["kid"] = f.key.kid;
  f.refused(handSigned(evil_header, payloadAt(f.now), evil.private_pem));
}

TEST_CASE("token: a header carrying x5c is refused", "[auth]") {
  Fixture f;
  json header = es256Header(f.key.kid);
  header["x5c"] = json::array({"MIIBszCCAVmgAwIBAgIU"});
  f.refused(handSigned(header, payloadAt(f.now), f.key.private_pem), "x5c");
}

TEST_CASE("token: headers with jku, x5u or crit are refused", "[auth]") {
  Fixture f;
  for (const char* field : {"jku", "x5u", "crit"}) {
    json header = es256Header(f.key.kid);
    header[field] = field == std::string("crit") ? json::array({"exp"}) : json("https://evil.example/keys");
    f.refused(handSigned(header, payloadAt(f.now), f.key.private_pem), field);
  }
}

TEST_CASE("token: the wrong audience is refused", "[auth]") {
  Fixture f;
  TokenClaims c = claimsAt(f.now);
  c.audience = "another-service";
  auto token = f.signer->sign(c);
  REQUIRE(token.isOk());
  f.refused(*token);
}

TEST_CASE("token: the wrong issuer is refused", "[auth]") {
  Fixture f;
  TokenClaims c = claimsAt(f.now);
  c.issuer = "evil-issuer";
  auto token = f.signer->sign(c);
  REQUIRE(token.isOk());
  f.refused(*token);
}

TEST_CASE("token: an expired token is refused beyond the leeway, accepted within it", "[auth]") {
  Fixture f;
  TokenClaims c = claimsAt(f.now);
  c.issued_at = f.now - 1000;
  c.not_before = f.now - 1000;
  c.expires_at = f.now - 31;  // leeway is 30s
  auto expired = f.signer->sign(c);
  REQUIRE(expired.isOk());
  f.refused(*expired);

  c.expires_at = f.now - 10;
  auto within = f.signer->sign(c);
  REQUIRE(within.isOk());
  CHECK(f.verifier.verify(*within, f.now).isOk());
  // The same token, checked later on our clock, is expired.
  CHECK(f.verifier.verify(*within, f.now + 100).status().code() == Code::kUnauthorized);
}

TEST_CASE("token: a token whose nbf is in the future is refused", "[auth]") {
  Fixture f;
  TokenClaims c = claimsAt(f.now);
  c.not_before = f.now + 120;
  c.expires_at = f.now + 600;
  auto token = f.signer->sign(c);
  REQUIRE(token.isOk());
  f.refused(*token);
  // Within the leeway it is accepted.
  c.not_before = f.now + 10;
  auto soon = f.signer->sign(c);
  REQUIRE(soon.isOk());
  CHECK(f.verifier.verify(*soon, f.now).isOk());
}

TEST_CASE("token: a token signed by a key not in the ring is refused", "[auth]") {
  Fixture f;
  Key other = newKey();
  auto token = makeSigner(other.kid, other.private_pem)->sign(claimsAt(f.now));
  REQUIRE(token.isOk());
  f.refused(*token, "unknown key");
}

TEST_CASE("token: a known kid signed by another key is refused", "[auth]") {
  Fixture f;
  Key other = newKey();
  auto token = makeSigner(f.key.kid, other.private_pem)->sign(claimsAt(f.now));
  REQUIRE(token.isOk());
  f.refused(*token);
}

TEST_CASE("token: an ES256 token with a missing or malformed signature is refused", "[auth]") {
  Fixture f;
  auto token = f.signer->sign(claimsAt(f.now));
  REQUIRE(token.isOk());
  std::string input = token->substr(0, token->rfind('.'));
  auto raw = base64UrlDecode(token->substr(token->rfind('.') + 1));
  REQUIRE(raw.isOk());
  REQUIRE(raw->size() == 64);
  f.refused(input + ".", "signature");
  f.refused(input + "." + b64(std::string(64, '\0')), "signature");
  f.refused(input + "." + b64(raw->substr(0, 63)), "signature");
  f.refused(input + "." + b64(*raw + "x"), "signature");
  f.refused(input + ".!!!!", "signature");
  // The same signature in DER form (not what JWS uses) is refused.
  std::string der;
  {
    ECDSA_SIG* sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()), 32, nullptr),
                   BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()) + 32, 32, nullptr));
    unsigned char* out = nullptr;
    int len = i2d_ECDSA_SIG(sig, &out);
    REQUIRE(len > 0);
    der.assign(reinterpret_cast<char*>(out), static_cast<size_t>(len));
    OPENSSL_free(out);
    ECDSA_SIG_free(sig);
  }
  f.refused(input + "." + b64(der), "signature");
  // The original still verifies.
  CHECK(f.verifier.verify(*token, f.now).isOk());
}

// JWS compact serialization is unpadded base64url. base64UrlDecode strips '=' and
// ignores non-zero leftover bits, so many spellings of one token verify.
TEST_CASE("token: only the canonical encoding of a token verifies", "[auth][regression]") {
  Fixture f;
  auto token = f.signer->sign(claimsAt(f.now));
  REQUIRE(token.isOk());
  CHECK_FALSE(f.verifier.verify(*token + "==", f.now).isOk());
  // 64 signature bytes are 86 characters; the last one carries 4 unused bits.
  std::string variant = *token;
  char& last = variant.back();
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  last = alphabet[alphabet.find(last) ^ 1];
  REQUIRE(variant != *token);
  CHECK_FALSE(f.verifier.verify(variant, f.now).isOk());
}

TEST_CASE("token: a token without kid, or with a non-string kid, is refused", "[auth]") {
  Fixture f;
  json header = {{"alg", "ES256"}, {"typ", "JWT"}};
  f.refused(handSigned(header, payloadAt(f.now), f.key.private_pem), "key id");
  header["kid"] = 42;
  f.refused(handSigned(header, payloadAt(f.now), f.key.private_pem), "key id");
}

TEST_CASE("token: a tampered payload is refused", "[auth]") {
  Fixture f;
  auto token = f.signer->sign(claimsAt(f.now));
  REQUIRE(token.isOk());
  REQUIRE(f.verifier.verify(*token, f.now).isOk());
  auto dot1 = token->find('.');
  auto dot2 = token->find('.', dot1 + 1);
  // Change one character in the middle of the payload segment, keep the signature.
  std::string tampered = *token;
  size_t pos = dot1 + (dot2 - dot1) / 2;
  tampered[pos] = tampered[pos] == 'A' ? 'B' : 'A';
  REQUIRE(tampered != *token);
  f.refused(tampered, "signature");

  // A meaningful tamper too: same header and signature, a payload granting more.
  json payload = payloadAt(f.now);
  payload["sub"] = "admin";
  std::string forged = token->substr(0, dot1) + "." + b64(payload.dump()) + token->substr(dot2);
  f.refused(forged);
}

TEST_CASE("token: a token without exp is refused", "[auth]") {
  Fixture f;
  json payload = payloadAt(f.now);
  payload.erase("exp");
  f.refused(handSigned(es256Header(f.key.kid), payload, f.key.private_pem), "exp");
  // And with a non-integer exp.
  payload["exp"] = "tomorrow";
  f.refused(handSigned(es256Header(f.key.kid), payload, f.key.private_pem));
}

TEST_CASE("token: a token without nbf or iat is refused", "[auth]") {
  Fixture f;
  json no_nbf = payloadAt(f.now);
  no_nbf.erase("nbf");
  f.refused(handSigned(es256Header(f.key.kid), no_nbf, f.key.private_pem));
  json no_iat = payloadAt(f.now);
  no_iat.erase("iat");
  f.refused(handSigned(es256Header(f.key.kid), no_iat, f.key.private_pem));
}

TEST_CASE("token: a malformed access claim is refused", "[auth]") {
  Fixture f;
  json payload = payloadAt(f.now);
  payload["access"] = "repository:alice/app:pull";
  f.refused(handSigned(es256Header(f.key.kid), payload, f.key.private_pem), "access");
  payload["access"] = json::array({json{{"type", "repository"}}});
  f.refused(handSigned(es256Header(f.key.kid), payload, f.key.private_pem), "access");
}

TEST_CASE("token: garbage strings are refused", "[auth]") {
  Fixture f;
  const std::vector<std::string> garbage = {
      "",
      ".",
      "..",
      "not a token",
      "a.b.c",
      "!!!.###.$$$",
      "eyJhbGciOiJFUzI1NiJ9",
      "eyJhbGciOiJFUzI1NiJ9..",
      b64("[1,2,3]") + "." + b64("{}") + ".AAAA",
      b64("null") + "." + b64("{}") + ".AAAA",
      b64("{\"alg\":\"ES256\",\"kid\":\"" + f.key.kid + "\"}") + "." + b64("not json") + ".AAAA",
      b64("{\"alg\":\"ES256\",\"kid\":\"" + f.key.kid + "\"}") + "." + b64("[]") + "." + b64(std::string(64, 'x')),
      std::string(20000, 'a'),
      std::string("\0\0.\0.\0", 6),
  };
  for (const auto& g : garbage) f.refused(g);
}

TEST_CASE("token: too many dots are refused", "[auth]") {
  Fixture f;
  auto token = f.signer->sign(claimsAt(f.now));
  REQUIRE(token.isOk());
  f.refused(*token + ".", "malformed");
  f.refused(*token + ".extra", "malformed");
  f.refused("a.b.c.d", "malformed");
  f.refused("...", "malformed");
}

TEST_CASE("token: a verifier with several keys accepts each", "[auth]") {
  Key a = newKey(), b = newKey();
  int64_t now = realNowS();
  TokenVerifier v({{a.kid, a.public_pem}, {b.kid, b.public_pem}}, kIssuer, kAudience);
  auto ta = makeSigner(a.kid, a.private_pem)->sign(claimsAt(now));
  auto tb = makeSigner(b.kid, b.private_pem)->sign(claimsAt(now));
  REQUIRE(ta.isOk());
  REQUIRE(tb.isOk());
  CHECK(v.verify(*ta, now).isOk());
  CHECK(v.verify(*tb, now).isOk());
  // Swapping the kids makes both fail.
  auto swapped = makeSigner(a.kid, b.private_pem)->sign(claimsAt(now));
  REQUIRE(swapped.isOk());
  CHECK(v.verify(*swapped, now).status().code() == Code::kUnauthorized);
}

TEST_CASE("token: a signer needs a P-256 private key", "[auth]") {
  CHECK_FALSE(TokenSigner::create("kid", "not a pem").isOk());
  Key k = newKey();
  CHECK_FALSE(TokenSigner::create(k.kid, k.public_pem).isOk());
  auto s = TokenSigner::create(k.kid, k.private_pem);
  REQUIRE(s.isOk());
  CHECK((*s)->kid() == k.kid);
}

TEST_CASE("token: a verifier skips unparseable keys", "[auth]") {
  Key k = newKey();
  int64_t now = realNowS();
  TokenVerifier v({{"broken", "garbage"}, {k.kid, k.public_pem}}, kIssuer, kAudience);
  auto t = makeSigner(k.kid, k.private_pem)->sign(claimsAt(now));
  REQUIRE(t.isOk());
  CHECK(v.verify(*t, now).isOk());
  auto b = makeSigner("broken", k.private_pem)->sign(claimsAt(now));
  REQUIRE(b.isOk());
  CHECK(v.verify(*b, now).status().code() == Code::kUnauthorized);
}

// The verifier judges validity at now_s, whatever the system clock says.
TEST_CASE("token: validity is judged at now_s, not at the system time", "[auth]") {
  Fixture f;
  int64_t past = 1'700'000'000;  // FakeClock's default start, Nov 2023
  auto token = f.signer->sign(claimsAt(past));
  REQUIRE(token.isOk());
  auto v = f.verifier.verify(*token, past);
  INFO(v.status().toString());
  CHECK(v.isOk());
  CHECK_FALSE(f.verifier.verify(*token, f.now).isOk());
}

TEST_CASE("token: nbf of 0 (the TokenClaims default) is valid", "[auth]") {
  Fixture f;
  TokenClaims c = claimsAt(f.now);
  c.not_before = 0;
  auto token = f.signer->sign(c);
  REQUIRE(token.isOk());
  auto v = f.verifier.verify(*token, f.now);
  INFO(v.status().toString());
  CHECK(v.isOk());
}

TEST_CASE("token: VerifiedTokenCache returns cached claims until expiry, not after", "[auth]") {
  VerifiedTokenCache cache;
  TokenClaims c = claimsAt(1000);
  c.not_before = 999;
  c.expires_at = 1300;
  CHECK(cache.lookup("tok", 1000) == nullptr);
  cache.insert("tok", std::make_shared<const TokenClaims>(c));
  auto hit = cache.lookup("tok", 1000);
  REQUIRE(hit != nullptr);
  CHECK(hit->subject == "alice");
  CHECK(hit->expires_at == 1300);
  REQUIRE(hit->access.size() == 1);
  CHECK(hit->access[0].name == "alice/app");
  CHECK(cache.lookup("tok", 1300) != nullptr);
  CHECK(cache.lookup("other", 1000) == nullptr);
  CHECK(cache.lookup("tok", 1301) == nullptr);
  CHECK(cache.lookup("tok", 100000) == nullptr);
}

TEST_CASE("token: VerifiedTokenCache refuses before nbf, clears, and stays bounded", "[auth]") {
  VerifiedTokenCache cache(2);
  auto c = std::make_shared<const TokenClaims>(claimsAt(1000));
  cache.insert("a", c);
  CHECK(cache.lookup("a", c->not_before - 1) == nullptr);
  CHECK(cache.lookup("a", c->not_before) != nullptr);

  cache.insert("b", c);
  cache.insert("c", c);  // over capacity: the cache starts over
  CHECK(cache.lookup("c", 1000) != nullptr);
  int present = 0;
  for (const char* k : {"a", "b"}) present += cache.lookup(k, 1000) != nullptr ? 1 : 0;
  CHECK(present <= 1);

  cache.clear();
  CHECK(cache.lookup("c", 1000) == nullptr);
}

}  // namespace token_test
