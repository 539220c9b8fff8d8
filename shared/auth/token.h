// JSON Web Tokens for Docker token auth: ES256 signatures (cpp-jwt), with a key id
// ("kid") in the header so keys can rotate.
//
// TokenSigner and TokenVerifier are immutable after construction and thread-safe. The
// verifier accepts only ES256 with one of its own keys: "alg":"none", HMAC algorithms,
// and headers that carry their own key ("jwk", "jku", "x5c", "x5u") are refused.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "shared/auth/scope.h"
#include "shared/base/status.h"

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

  // True when some access entry of type/name allows the action.
  bool allows(const std::string& type, const std::string& name, const std::string& action) const;
};

class TokenSigner {
 public:
  TokenSigner(std::string kid, std::string private_pem) : kid_(std::move(kid)), private_pem_(std::move(private_pem)) {}
  Result<std::string> sign(const TokenClaims& claims) const;
  const std::string& kid() const { return kid_; }

 private:
  std::string kid_;
  std::string private_pem_;
};

class TokenVerifier {
 public:
  // keys: kid -> public PEM. issuer and audience must match the token's iss and aud.
  TokenVerifier(std::map<std::string, std::string> keys, std::string issuer, std::string audience,
                int64_t leeway_s = 30)
      : keys_(std::move(keys)), issuer_(std::move(issuer)), audience_(std::move(audience)), leeway_s_(leeway_s) {}

  // kUnauthorized with a reason when the token is not valid at now_s.
  Result<TokenClaims> verify(const std::string& token, int64_t now_s) const;

 private:
  std::map<std::string, std::string> keys_;
  std::string issuer_, audience_;
  int64_t leeway_s_;
};

// Remembers tokens that verified, until they expire, so that each request does not pay
// for an ECDSA verification. Thread-safe; bounded.
class VerifiedTokenCache {
 public:
  explicit VerifiedTokenCache(size_t capacity = 10000) : capacity_(capacity) {}
  // The claims of a cached token still valid at now_s, or nullptr-like empty result.
  bool lookup(const std::string& token, int64_t now_s, TokenClaims* out);
  void insert(const std::string& token, const TokenClaims& claims);
  void clear();

 private:
  size_t capacity_;
  std::mutex mu_;
  std::unordered_map<std::string, TokenClaims> entries_;  // GUARDED_BY(mu_)
};

}  // namespace wharf
