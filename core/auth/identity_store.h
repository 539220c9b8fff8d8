// IdentityStore: accounts, organizations, teams, repository settings and permissions,
// access tokens, edges, and the audit log.
//
// Reads never block and may run on loop threads; writes are one transaction each and
// run on worker threads. Names are validated by the caller (see validateAccountName).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"

namespace wharf {

struct User {
  std::string name;
  std::string email;
  std::string password_hash;  // empty for directory users (they bind to LDAP)
  bool admin = false;
  bool disabled = false;
  std::string source = "local";  // "local" or "ldap"
  int64_t created_ms = 0;
  // Refresh tokens issued at or before this time (epoch seconds) are refused: set when
  // the account's access narrows (a new password above all), as access tokens are
  // revoked then, for refresh tokens outlive the revocation list's entries.
  int64_t tokens_before_s = 0;
  nlohmann::json toJson() const;  // without the password hash
};

enum class Role { kNone = 0, kRead = 1, kWrite = 2, kAdmin = 3 };
std::string_view roleName(Role r);
Result<Role> parseRole(std::string_view s);

struct RepoSettings {
  bool is_public = false;
  std::string description;
};

struct Grant {
  std::string kind;       // "user" or "team" (team as "org/team")
  std::string principal;
  Role role = Role::kNone;
};

struct AccessToken {
  std::string id;
  std::string user;
  std::string name;
  std::string secret_hash;         // sha256 hex of the secret
  std::vector<std::string> scopes; // "repository:<name>:<actions>" patterns; empty = all of the user's access
  int64_t created_ms = 0;
  int64_t expires_ms = 0;          // 0 = never
  nlohmann::json toJson() const;   // without the hash
};

struct AuditEntry {
  int64_t seq = 0;
  int64_t time_ms = 0;
  std::string actor;    // account name or "anonymous"
  std::string source;   // peer address
  std::string action;   // "login", "token", "push", "pull", "delete", "user.create", ...
  std::string object;   // repository, user, team, ...
  std::string outcome;  // "success", "failure", "denied"
  std::string detail;
  nlohmann::json toJson() const;
  bool operator==(const AuditEntry&) const = default;
};

// A registered (or pending) edge. Its secrets are never stored: a pending edge keeps the
// SHA-256 of its single-use join token, a registered one the SHA-256 of its credential.
struct Edge {
  std::string name;
  std::string site;
  nlohmann::json settings = nlohmann::json::object();  // see validateEdgeSettings
  std::string join_hash;          // sha256 hex of the join token; empty once it was used
  int64_t join_expires_ms = 0;
  std::string credential_hash;    // sha256 hex of the credential; empty until registered
  std::string created_by;
  int64_t created_ms = 0;
  int64_t registered_ms = 0;      // 0: pending
  int64_t last_seen_ms = 0;       // 0: never
  bool registered() const { return !credential_hash.empty(); }
  // The API form: {"name","site","state","created_at","registered_at","last_seen","settings"}
  // (times RFC 3339 or null), without the hashes.
  nlohmann::json toJson() const;
};

struct AuditQuery {
  std::string actor, action, object, outcome;
  int64_t since_ms = 0, until_ms = 0;
  int64_t after_seq = 0;  // cursor
  size_t limit = 100;
};

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;

  // Users.
  virtual Result<User> user(const std::string& name) = 0;
  virtual std::vector<User> users(const std::string& after, size_t limit) = 0;
  virtual Status putUser(const User& user) = 0;   // create or replace
  virtual Status createUser(const User& user) = 0; // kConflict if the name is taken (user or org)
  virtual Status deleteUser(const std::string& name) = 0;

  // Organizations and teams.
  virtual bool orgExists(const std::string& org) = 0;
  virtual Status createOrg(const std::string& org, const std::string& creator) = 0;
  virtual Status deleteOrg(const std::string& org) = 0;
  virtual std::vector<std::string> orgs(const std::string& after, size_t limit) = 0;
  // "owner" or "member"; empty when not a member.
  virtual std::string orgRole(const std::string& org, const std::string& user) = 0;
  virtual Status setOrgMember(const std::string& org, const std::string& user, const std::string& role) = 0;
  virtual Status removeOrgMember(const std::string& org, const std::string& user) = 0;
  virtual std::vector<std::pair<std::string, std::string>> orgMembers(const std::string& org) = 0;
  virtual Status createTeam(const std::string& org, const std::string& team, const std::string& description) = 0;
  virtual Status deleteTeam(const std::string& org, const std::string& team) = 0;
  virtual bool teamExists(const std::string& org, const std::string& team) = 0;
  virtual std::vector<std::string> teams(const std::string& org) = 0;
  virtual Status addTeamMember(const std::string& org, const std::string& team, const std::string& user) = 0;
  virtual Status removeTeamMember(const std::string& org, const std::string& team, const std::string& user) = 0;
  virtual std::vector<std::string> teamMembers(const std::string& org, const std::string& team) = 0;
  // Teams ("org/team") the user belongs to within org.
  virtual std::vector<std::string> userTeams(const std::string& org, const std::string& user) = 0;

  // Repository settings and permissions.
  virtual std::optional<RepoSettings> repoSettings(const std::string& repo) = 0;
  virtual Status putRepoSettings(const std::string& repo, const RepoSettings& settings) = 0;
  virtual Status deleteRepoSettings(const std::string& repo) = 0;  // and its grants
  virtual std::vector<Grant> grants(const std::string& repo) = 0;
  virtual Status setGrant(const std::string& repo, const Grant& grant) = 0;  // kNone removes
  virtual Role grantFor(const std::string& repo, const std::string& kind, const std::string& principal) = 0;

  // Access tokens.
  virtual Result<AccessToken> accessToken(const std::string& id) = 0;
  virtual std::vector<AccessToken> accessTokens(const std::string& user) = 0;
  virtual Status putAccessToken(const AccessToken& token) = 0;
  virtual Status deleteAccessToken(const std::string& id) = 0;

  // Audit log.
  virtual Status appendAudit(std::vector<AuditEntry>& entries) = 0;  // assigns seq
  virtual std::vector<AuditEntry> queryAudit(const AuditQuery& query) = 0;
  virtual size_t pruneAudit(int64_t older_than_ms) = 0;
  // Stores entries of another log keeping their seq (wharfctl migrate), in one
  // transaction: an entry whose seq is there already is skipped when it is the same
  // entry (a run again) and refuses the batch with kConflict when it is not (the log has
  // entries of its own); appended entries follow the highest seq.
  virtual Status importAudit(const std::vector<AuditEntry>& entries) = 0;

  // Edges. Secrets are looked up by their SHA-256 (an index from hash to edge), then the
  // edge's stored hash is compared in constant time.
  virtual Result<Edge> edge(const std::string& name) = 0;  // kNotFound
  virtual std::vector<Edge> edges() = 0;                    // by name
  // kConflict if the name exists. Indexes the join hash.
  virtual Status createEdge(const Edge& edge) = 0;
  virtual Status putEdgeSettings(const std::string& name, const nlohmann::json& settings) = 0;  // kNotFound
  // Consumes a join token, in one transaction: the pending edge whose join token hashes
  // to join_hash and has not expired at now_ms becomes registered with credential_hash.
  // kUnauthorized when the token is unknown, used or expired (so it works once, even
  // under concurrent use).
  virtual Result<Edge> redeemJoinToken(const std::string& join_hash, const std::string& credential_hash,
                                       int64_t now_ms) = 0;
  // The edge whose credential hashes to credential_hash; kUnauthorized if none.
  virtual Result<Edge> edgeByCredential(const std::string& credential_hash) = 0;
  virtual Status touchEdge(const std::string& name, int64_t seen_ms) = 0;  // sets last_seen; kNotFound
  // Removes the edge with its join token and credential (both stop working at once).
  virtual Status deleteEdge(const std::string& name) = 0;  // kNotFound

  // Key-value settings (LDAP configuration and the like).
  virtual std::optional<nlohmann::json> setting(const std::string& key) = 0;
  virtual Status putSetting(const std::string& key, const nlohmann::json& value) = 0;
  // Every setting, by key.
  virtual std::vector<std::pair<std::string, nlohmann::json>> settings() = 0;

  // Failed sign-ins, counted per key ("u:<name>", "s:<address>") in windows of
  // window_ms that start at a key's first failure: wherever they happen (every core
  // sharing the store counts them together).
  // The failures in the key's window that holds now_ms (0 when it has none).
  virtual int signInFailures(const std::string& key, int64_t now_ms, int64_t window_ms) = 0;
  // One more: a window starts when the key has none holding now_ms.
  virtual void recordSignInFailure(const std::string& key, int64_t now_ms, int64_t window_ms) = 0;
};

// Account, organization and team names: [a-z0-9]+([._-][a-z0-9]+)*, 2 to 64 characters
// (a namespace is a repository name component).
Status validateAccountName(std::string_view name);

// Edge names: ^[a-z0-9][a-z0-9-]{0,62}$, except the reserved "register" and "self"
// (paths of the edges' own endpoints). kNameInvalid otherwise.
Status validateEdgeName(std::string_view name);
// Edge settings: a JSON object with only these keys, each optional:
//   "tag_ttl"         duration string as parseDurationMs reads it ("90s", "5m", "1h")
//   "cache_budget"    size string: digits and an optional binary unit k|m|g|t, optionally
//                     followed by "iB" or "B", any case ("512m", "10GiB", "2tb")
//   "high_watermark", "low_watermark"  integers 1..100, set together, low below high
//                     (one alone could cross the edge's own value of the other)
//   "repositories"    repository patterns ("*", "team/*", "team/app") the edge's own pull
//                     credential covers, for prefetch and refetching (absent: every one)
//   "prefetch"        the edge's prefetch policy (shared/fleet/prefetch_policy.h)
// kInvalidArgument naming the key otherwise.
Status validateEdgeSettings(const nlohmann::json& settings);
// The bytes of a cache_budget string (see above).
Result<int64_t> parseEdgeCacheBudget(const std::string& text);
// Valid settings as they are stored and sent to edges: cache_budget in the form
// parseSize (shared/config) reads, the largest exact unit ("10GiB" -> "10g",
// "1536MiB" -> "1536m", "1000" -> "1000"); everything else as given.
// REQUIRES: validateEdgeSettings(settings).isOk().
nlohmann::json canonicalEdgeSettings(const nlohmann::json& settings);

}  // namespace wharf
