// Fuzzes the token path: TokenVerifier::verify on arbitrary strings, on tokens whose
// header and payload come from the input but carry a valid signature (so the claims
// parser behind the signature check is reached), and the scope parser the token
// endpoint uses. The first byte picks the mode:
//   0: the rest is the token, verified as it is
//   1: the rest is a payload (or header \0 payload), signed with the fuzz key, verified
//   2: the rest is a scope string ("repository:team/app:pull,push")
// Whatever verifies must describe itself consistently: signed again, it verifies to the
// same claims.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "shared/auth/scope.h"
#include "shared/auth/token.h"
#include "shared/tls/crypto.h"
#include "tests/fuzz/fuzz_support.h"

using namespace wharf;

namespace {

struct Keys {
  std::shared_ptr<const Es256Key> key;
  std::shared_ptr<const TokenSigner> signer;
  std::unique_ptr<TokenVerifier> verifier;
};

const Keys& keys() {
  static const Keys k = [] {
    Keys k;
    auto pub = publicPemOf(fuzz::kTokenKeyPem);
    auto key = Es256Key::fromPem(fuzz::kTokenKeyPem, true);
    auto signer = TokenSigner::create(fuzz::kTokenKid, fuzz::kTokenKeyPem);
    if (!pub.isOk() || !key.isOk() || !signer.isOk()) fuzz::violated("the fuzz key does not load");
    k.key = *key;
    k.signer = *signer;
    // A second kid with a key of its own: a token must verify under the kid that signed it.
    auto other = generateEcKey();
    std::map<std::string, std::string> pems{{fuzz::kTokenKid, *pub}};
    if (other.isOk()) pems["other"] = other->public_pem;
    pems["broken"] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";  // skipped
    k.verifier = std::make_unique<TokenVerifier>(pems, fuzz::kIssuer, fuzz::kAudience);
    return k;
  }();
  return k;
}

std::string accessText(const TokenClaims& c) {
  std::string s;
  for (const auto& a : c.access) s += a.str() + " ";
  return s;
}

void checkVerified(const std::string& token, const TokenClaims& c) {
  FUZZ_CHECK(c.issuer == fuzz::kIssuer, token);
  FUZZ_CHECK(c.audience == fuzz::kAudience, token);
  FUZZ_CHECK(c.key_id == fuzz::kTokenKid, token);
  FUZZ_CHECK(fuzz::kNowS <= c.expires_at + 30 && fuzz::kNowS + 30 >= c.not_before, token);
  for (const auto& a : c.access) {
    (void)c.allows(a.type, a.name, "pull");
    (void)a.toJson().dump();
  }
  // Signed again, the claims verify to themselves.
  auto again = keys().signer->sign(c);
  FUZZ_CHECK(again.isOk(), token);
  auto c2 = keys().verifier->verify(*again, fuzz::kNowS);
  FUZZ_CHECK(c2.isOk(), c2.status().message());
  FUZZ_CHECK(c2->subject == c.subject && c2->id == c.id && c2->kind == c.kind && c2->via == c.via &&
                 c2->expires_at == c.expires_at && c2->not_before == c.not_before && c2->issued_at == c.issued_at,
             token);
  FUZZ_CHECK(accessText(*c2) == accessText(c), token);
}

void verify(const std::string& token) {
  auto c = keys().verifier->verify(token, fuzz::kNowS);
  if (c.isOk()) {
    checkVerified(token, *c);
  } else {
    FUZZ_CHECK(c.status().code() == Code::kUnauthorized, c.status().message());
  }
  // The same token far in the past and the future: only the time checks differ.
  (void)keys().verifier->verify(token, 0);
  (void)keys().verifier->verify(token, INT64_MAX / 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0: verify(rest); break;
    case 1: {
      std::string header = std::string(R"({"alg":"ES256","kid":")") + fuzz::kTokenKid + R"(","typ":"JWT"})";
      std::string payload = rest;
      if (auto nul = rest.find('\0'); nul != std::string::npos) {
        header = rest.substr(0, nul);
        payload = rest.substr(nul + 1);
      }
      std::string input = base64UrlEncode(header) + "." + base64UrlEncode(payload);
      auto sig = keys().key->sign(input);
      if (!sig.isOk()) fuzz::violated("cannot sign", sig.status().message());
      verify(input + "." + base64UrlEncode(*sig));
      break;
    }
    case 2: {
      auto s = parseScope(rest);
      if (s.isOk()) {
        auto again = parseScope(s->str());
        FUZZ_CHECK(again.isOk(), s->str());
        FUZZ_CHECK(again->str() == s->str(), s->str());
        auto from_json = scopeFromJson(s->toJson());
        FUZZ_CHECK(from_json.isOk() && from_json->str() == s->str(), s->str());
        (void)bearerChallenge("http://realm/token", "wharf", {*s}, true);
      }
      break;
    }
  }
  return 0;
}
