// AuthService: who is asking (passwords, personal access tokens, bearer tokens), what
// they may do (the access policy), and the tokens that carry the answer.
//
// Threading: authenticatePassword() may pay the password KDF and the edge calls write
// transactions: they run on worker threads; everything else is cheap (LMDB reads, cached
// verifications) and runs on loop threads. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/auth/identity_store.h"
#include "core/auth/key_ring.h"
#include "shared/auth/scope.h"
#include "shared/auth/token.h"
#include "shared/base/clock.h"

namespace wharf {

class Revocations;

struct AuthConfig {
  bool enabled = true;
  std::string realm;                 // absolute URL of /auth/token, as clients reach it
  std::string service = "wharf";     // the token audience
  std::string issuer = "wharf-core";
  int64_t token_ttl_s = 300;
  int64_t refresh_ttl_s = 30 * 86400;
  int max_login_failures = 10;       // per account, per window
  int max_source_failures = 50;      // per source address (spraying many accounts), per window
  int64_t failure_window_ms = 300'000;
};

// An authenticated (or anonymous) caller.
struct Account {
  std::string name;  // empty: anonymous
  bool admin = false;
  std::string pat_id;              // set when authenticated with a personal access token
  std::vector<Scope> pat_scopes;   // limits of that token (empty: none)
  // An edge pulling for itself (prefetch, refetch): name "edge:<edge>", pull on the
  // repositories its settings allow ("repositories"; absent: every one) and nothing else.
  bool edge = false;
  std::vector<std::string> edge_repositories;
  bool anonymous() const { return name.empty(); }
};

// The repository a scope's name designates: itself, or for a Notary GUN
// ("<host:port>/<repository>", "localhost/<repository>") the repository after the host.
std::string repositoryOfName(const std::string& name);

class AuthService {
 public:
  AuthService(AuthConfig config, IdentityStore& identity, KeyRing& keys, Clock& clock);

  const AuthConfig& config() const { return config_; }
  KeyRing& keys() { return keys_; }

  // Checks a user name and secret: a personal access token ("wharf_pat_...") or the
  // user's password (KDF: call on a worker). Failures are rate-limited per account and
  // per source address (kTooManyRequests) and cost no KDF once limited; they are counted
  // by the identity store (with a shared database, on every core together).
  Result<Account> authenticatePassword(const std::string& user, const std::string& secret, const std::string& source);
  // Parses an "Authorization: Basic" value and authenticates it.
  Result<Account> authenticateBasic(const std::string& header_value, const std::string& source);
  struct Bearer {
    std::shared_ptr<const TokenClaims> claims;
    Account account;
  };
  // Verifies an "Authorization: Bearer" token and that its account still exists, is
  // enabled, and (for tokens issued for an access token) that the access token still
  // exists. Verified tokens and account states are cached (account states for a few
  // seconds; forgetCaches() drops them at once after a change).
  Result<Bearer> verifyBearer(const std::string& token);

  // Actions ("pull", "push", "delete") the account may perform on repo.
  std::vector<std::string> allowedActions(const Account& account, const std::string& repo);
  // Grants the intersection of what is asked and what is allowed.
  std::vector<Scope> grant(const Account& account, const std::vector<Scope>& requested);
  // Issues an access token (and a refresh token when offline) for the token endpoint.
  // issued_at: the token's iat, taken (issuedAt()) before the grants were worked out, so
  // that a revocation made meanwhile covers it; 0: now.
  Result<nlohmann::json> issue(const Account& account, const std::vector<Scope>& granted, bool offline,
                               int64_t issued_at = 0);
  // The iat of a token issued now (after every revocation so far).
  int64_t issuedAt() const;
  // The account a refresh token stands for.
  Result<Account> fromRefreshToken(const std::string& token);

  // Personal access tokens: the secret is returned once ("wharf_pat_<id>_<secret>").
  Result<std::pair<AccessToken, std::string>> createAccessToken(const std::string& user, const std::string& name,
                                                               const std::vector<std::string>& scopes,
                                                               int64_t expires_ms);
  // Creates the first administrator if there is no user at all. Returns the password it
  // set (from `password`, or generated) or empty when an administrator already exists.
  Result<std::string> bootstrapAdmin(const std::string& name, const std::string& password);

  // Edges. An administrator adds an edge and gets a single-use join token
  // ("wharf_join_<secret>"); the edge trades it once for its credential
  // ("wharf_edge_<secret>"). Only their SHA-256 hashes are stored. A credential
  // authenticates the edge's own endpoints and nothing else.
  static constexpr int64_t kJoinTokenTtlMs = 24 * 3600'000ll;
  static constexpr int64_t kMinJoinTokenTtlMs = 60'000;
  static constexpr int64_t kMaxJoinTokenTtlMs = 30 * 86'400'000ll;
  struct NewEdge {
    Edge edge;
    std::string join_token;  // shown once
  };
  // Validates name, site and settings (stored canonical); ttl_ms within
  // [kMinJoinTokenTtlMs, kMaxJoinTokenTtlMs].
  Result<NewEdge> createEdge(const std::string& name, const std::string& site, const nlohmann::json& settings,
                             int64_t ttl_ms, const std::string& created_by);
  struct RegisteredEdge {
    Edge edge;
    std::string credential;  // shown once
  };
  // Replaces an edge's settings (validated, stored canonical: see canonicalEdgeSettings).
  Result<Edge> setEdgeSettings(const std::string& name, const nlohmann::json& settings);
  // Consumes a join token. kUnauthorized when it is unknown, used or expired; failures
  // are rate-limited per source address like logins (kTooManyRequests).
  Result<RegisteredEdge> registerEdge(const std::string& join_token, const std::string& source);
  // The edge a credential belongs to (kUnauthorized if none: unknown or revoked). Records
  // that it was seen, writing at most once a minute per edge.
  Result<Edge> authenticateEdge(const std::string& credential);
  // A registry token for the edge's own pulls of repo (subject "edge:<name>"): kDenied
  // when its settings' "repositories" do not cover repo. Deleting the edge revokes it.
  Result<nlohmann::json> issueEdgeToken(const Edge& edge, const std::string& repo);
  static constexpr std::string_view kEdgeSubjectPrefix = "edge:";

  void forgetCaches();

  // Grants narrowed since a token was issued (see core/auth/revocations.h): tokens they
  // cover are refused by verifyBearer (subject, access token) and, per repository, by
  // the registry's authorization; tokens issued afterwards are dated after them.
  void setRevocations(Revocations* r) { revocations_ = r; }
  Revocations* revocations() const { return revocations_; }
  // Revokes every token issued so far to these accounts (a directory sync narrowed them).
  void revokeSubjects(const std::vector<std::string>& names);

 private:
  bool rateLimited(const std::string& key, int limit);
  void recordFailure(const std::string& key);
  Result<Account> accountFor(const std::string& name);

  AuthConfig config_;
  Revocations* revocations_ = nullptr;
  IdentityStore& identity_;
  KeyRing& keys_;
  Clock& clock_;
  VerifiedTokenCache token_cache_;
  struct CachedAccount {
    bool valid = false;
    Account account;
    int64_t expires_ms = 0;
  };
  // Cached account (or access-token) state for bearer requests; keys "u:<name>",
  // "p:<pat id>".
  bool cachedState(const std::string& key, CachedAccount* out);
  void cacheState(const std::string& key, CachedAccount state);
  std::shared_mutex state_mu_;
  std::unordered_map<std::string, CachedAccount> states_;  // GUARDED_BY(state_mu_)
  std::string cache_secret_;

  std::mutex mu_;
  std::unordered_map<std::string, int64_t> good_passwords_;  // GUARDED_BY(mu_): keyed hash -> expiry
};

}  // namespace wharf
