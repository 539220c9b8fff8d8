// IdentityStore: accounts, organizations, teams, repository settings and permissions,
// access tokens, and the audit log.
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

  // Key-value settings (LDAP configuration and the like).
  virtual std::optional<nlohmann::json> setting(const std::string& key) = 0;
  virtual Status putSetting(const std::string& key, const nlohmann::json& value) = 0;
};

// Account, organization and team names: [a-z0-9]+([._-][a-z0-9]+)*, 2 to 64 characters
// (a namespace is a repository name component).
Status validateAccountName(std::string_view name);

}  // namespace wharf
