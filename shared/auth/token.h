// JSON Web Tokens for Docker token auth: JWS with ES256 signatures, and a key id ("kid")
// in the header so keys can rotate.
//
// Signing and verification use OpenSSL directly with keys parsed once (Es256Key):
// cpp-jwt parses the PEM key on every call, which under OpenSSL 3's global decoder
// locks capped the token endpoint at about 2,300 tokens per second on two cores.
//
// TokenSigner and TokenVerifier are immutable after construction and thread-safe. The
// verifier accepts only ES256 with one of its own keys: "alg":"none", HMAC algorithms,
// and headers that carry their own key ("jwk", "jku", "x5c", "x5u") are refused.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "shared/auth/scope.h"
#include "shared/base/status.h"
#include "shared/tls/crypto.h"

namespace wharf {

struct TokenClaims {
  std::string issuer;
  std::string subject;   // account name; empty for anonymous
  std::string audience;  // the service
  std::string id;        // jti
  int64_t issued_at = 0;   // seconds since the epoch
  int64_t not_before = 0;
  int64_t expires_at = 0;
  std::vector<Scope> access;
  std::string kind = "access";  // "access" or "refresh"
  std::string via;              // id of the personal access token it was issued for
  std::string key_id;           // kid of the key that signed it (set by the verifier)

  // True when some access entry of type/name allows the action.
  bool allows(const std::string& type, const std::string& name, const std::string& action) const;
};

class TokenSigner {
 public:
  static Result<std::shared_ptr<const TokenSigner>> create(std::string kid, const std::string& private_pem);
  Result<std::string> sign(const TokenClaims& claims) const;
  const std::string& kid() const { return kid_; }

 private:
  TokenSigner(std::string kid, std::shared_ptr<const Es256Key> key) : kid_(std::move(kid)), key_(std::move(key)) {}
  std::string kid_;
  std::shared_ptr<const Es256Key> key_;
};

class TokenVerifier {
 public:
  // keys: kid -> public PEM (unparseable keys are skipped). issuer and audience must
  // match the token's iss and aud.
  TokenVerifier(const std::map<std::string, std::string>& keys, std::string issuer, std::string audience,
                int64_t leeway_s = 30);

  // kUnauthorized with a reason when the token is not valid at now_s.
  Result<TokenClaims> verify(const std::string& token, int64_t now_s) const;

 private:
  std::map<std::string, std::shared_ptr<const Es256Key>> keys_;
  std::string issuer_, audience_;
  int64_t leeway_s_;
};

// Remembers tokens that verified, until they expire, so that each request does not pay
// for an ECDSA verification. Thread-safe; bounded.
class VerifiedTokenCache {
 public:
  explicit VerifiedTokenCache(size_t capacity = 10000) : capacity_(capacity) {}
  // The claims of a cached token still valid at now_s, or null.
  std::shared_ptr<const TokenClaims> lookup(const std::string& token, int64_t now_s);
  void insert(const std::string& token, std::shared_ptr<const TokenClaims> claims);
  void clear();

 private:
  size_t capacity_;
  std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const TokenClaims>> entries_;  // GUARDED_BY(mu_)
};

}  // namespace wharf
