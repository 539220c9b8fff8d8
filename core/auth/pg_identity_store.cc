#include "core/auth/pg_identity_store.h"

#include <atomic>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "shared/tls/crypto.h"

namespace wharf {

const std::vector<PgMigration>& identityMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "accounts, organizations, teams, repository settings and grants, access tokens, the audit log, settings, edges",
       R"sql(
CREATE TABLE users (name text COLLATE "C" PRIMARY KEY, email text NOT NULL, password_hash text NOT NULL,
                    admin boolean NOT NULL, disabled boolean NOT NULL, source text NOT NULL,
                    created_ms bigint NOT NULL, tokens_before_s bigint NOT NULL);
CREATE TABLE orgs (name text COLLATE "C" PRIMARY KEY);
CREATE TABLE org_members (org text COLLATE "C" NOT NULL, username text COLLATE "C" NOT NULL, role text NOT NULL,
                          PRIMARY KEY (org, username));
CREATE INDEX org_members_by_user ON org_members (username);
CREATE TABLE teams (org text COLLATE "C" NOT NULL, team text COLLATE "C" NOT NULL, description text NOT NULL,
                    PRIMARY KEY (org, team));
CREATE TABLE team_members (org text COLLATE "C" NOT NULL, team text COLLATE "C" NOT NULL,
                           username text COLLATE "C" NOT NULL, PRIMARY KEY (org, team, username));
CREATE INDEX team_members_by_user ON team_members (username);
CREATE TABLE repo_settings (repository text COLLATE "C" PRIMARY KEY, is_public boolean NOT NULL,
                            description text NOT NULL);
CREATE TABLE grants (repository text COLLATE "C" NOT NULL, kind text COLLATE "C" NOT NULL,
                     principal text COLLATE "C" NOT NULL, role text NOT NULL,
                     PRIMARY KEY (repository, kind, principal));
CREATE INDEX grants_by_principal ON grants (kind, principal);
CREATE TABLE access_tokens (id text COLLATE "C" PRIMARY KEY, username text COLLATE "C" NOT NULL, name text NOT NULL,
                            secret_hash text NOT NULL, scopes text[] NOT NULL, created_ms bigint NOT NULL,
                            expires_ms bigint NOT NULL);
CREATE INDEX access_tokens_by_user ON access_tokens (username, id);
CREATE TABLE audit (seq bigint PRIMARY KEY, time_ms bigint NOT NULL, actor text NOT NULL, source text NOT NULL,
                    action text NOT NULL, object text NOT NULL, outcome text NOT NULL, detail text NOT NULL);
CREATE TABLE audit_seq (id int PRIMARY KEY CHECK (id = 1), last_seq bigint NOT NULL);
INSERT INTO audit_seq (id, last_seq) VALUES (1, 0);
CREATE TABLE identity_settings (name text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE edges (name text COLLATE "C" PRIMARY KEY, site text NOT NULL, settings text NOT NULL,
                    join_hash text NOT NULL, join_expires_ms bigint NOT NULL, credential_hash text NOT NULL,
                    created_by text NOT NULL, created_ms bigint NOT NULL, registered_ms bigint NOT NULL,
                    last_seen_ms bigint NOT NULL);
CREATE UNIQUE INDEX edges_by_join_hash ON edges (join_hash) WHERE join_hash <> '';
CREATE UNIQUE INDEX edges_by_credential_hash ON edges (credential_hash) WHERE credential_hash <> '';
)sql"},
      {2, "failed sign-ins per account and per address, counted by every core",
       R"sql(
CREATE TABLE signin_failures (key text COLLATE "C" PRIMARY KEY, start_ms bigint NOT NULL, count integer NOT NULL);
CREATE INDEX signin_failures_by_start ON signin_failures (start_ms);
)sql"},
  };
  return all;
}

// The helpers' own namespace: wharf_core_lib is a unity build (sources batched into one
// translation unit), where anonymous namespaces of different files are one.
namespace pg_identity_store {
namespace {

std::string num(int64_t v) { return std::to_string(v); }
std::string boolean(bool b) { return b ? "true" : "false"; }
std::string limitOf(size_t n) {
  return num(static_cast<int64_t>(std::min<size_t>(n, static_cast<size_t>(std::numeric_limits<int64_t>::max()))));
}

bool allStorable(const PgParams& params) {
  return std::all_of(params.begin(), params.end(), [](const auto& p) { return !p || pgStorable(*p); });
}

Status unstorable() {
  return Status(Code::kInvalidArgument, "a value that is not UTF-8 text (or that holds a NUL byte) cannot be stored");
}

// A statement of a write: values PostgreSQL cannot hold are refused, never cut short.
Result<PgResult> exec(PgConn& c, std::string_view sql, const PgParams& params = {}) {
  if (!allStorable(params)) return unstorable();
  return c.exec(sql, params);
}

nlohmann::json object(std::string_view v) {
  auto j = nlohmann::json::parse(v, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

constexpr const char* kUserColumns = "name, email, password_hash, admin, disabled, source, created_ms, tokens_before_s";

User userOf(const PgResult& r, int i) {
  User u;
  u.name = std::string(r.text(i, 0));
  u.email = std::string(r.text(i, 1));
  u.password_hash = std::string(r.text(i, 2));
  u.admin = r.boolean(i, 3);
  u.disabled = r.boolean(i, 4);
  u.source = std::string(r.text(i, 5));
  u.created_ms = r.integer(i, 6);
  u.tokens_before_s = r.integer(i, 7);
  return u;
}

PgParams userParams(const User& u) {
  return {u.name,     u.email, u.password_hash, boolean(u.admin), boolean(u.disabled),
          u.source,   num(u.created_ms), num(u.tokens_before_s)};
}

constexpr const char* kTokenColumns = "id, username, name, secret_hash, array_to_json(scopes)::text, created_ms, expires_ms";

AccessToken tokenOf(const PgResult& r, int i) {
  AccessToken t;
  t.id = std::string(r.text(i, 0));
  t.user = std::string(r.text(i, 1));
  t.name = std::string(r.text(i, 2));
  t.secret_hash = std::string(r.text(i, 3));
  auto scopes = nlohmann::json::parse(r.text(i, 4), nullptr, false);
  if (scopes.is_array()) {
    for (const auto& s : scopes)
      if (s.is_string()) t.scopes.push_back(s.get<std::string>());
  }
  t.created_ms = r.integer(i, 5);
  t.expires_ms = r.integer(i, 6);
  return t;
}

constexpr const char* kAuditColumns = "seq, time_ms, actor, source, action, object, outcome, detail";

AuditEntry auditOf(const PgResult& r, int i) {
  AuditEntry e;
  e.seq = r.integer(i, 0);
  e.time_ms = r.integer(i, 1);
  e.actor = std::string(r.text(i, 2));
  e.source = std::string(r.text(i, 3));
  e.action = std::string(r.text(i, 4));
  e.object = std::string(r.text(i, 5));
  e.outcome = std::string(r.text(i, 6));
  e.detail = std::string(r.text(i, 7));
  return e;
}

constexpr const char* kEdgeColumns =
    "name, site, settings, join_hash, join_expires_ms, credential_hash, created_by, created_ms, registered_ms, "
    "last_seen_ms";

Edge edgeOf(const PgResult& r, int i) {
  Edge e;
  e.name = std::string(r.text(i, 0));
  e.site = std::string(r.text(i, 1));
  e.settings = object(r.text(i, 2));
  e.join_hash = std::string(r.text(i, 3));
  e.join_expires_ms = r.integer(i, 4);
  e.credential_hash = std::string(r.text(i, 5));
  e.created_by = std::string(r.text(i, 6));
  e.created_ms = r.integer(i, 7);
  e.registered_ms = r.integer(i, 8);
  e.last_seen_ms = r.integer(i, 9);
  return e;
}

Status taken(const std::string& name) { return Status(Code::kConflict, "the name " + name + " is taken"); }

// Atomicity, where LMDB had its single writer (READ COMMITTED: each statement sees what
// committed before it; every lock below is held to commit):
//
// * createUser and createOrg: a name is a user's or an organization's, never both. Both
//   take an advisory lock on the name (kNameLock, hashtext(name): a collision only
//   serializes two unrelated names), then look in the other table and insert with ON
//   CONFLICT DO NOTHING (the primary key catches a putUser of the same name meanwhile;
//   putUser, like LMDB's, does not look at organizations).
// * An organization's memberships and teams: each write within an organization first
//   locks its row (SELECT ... FOR UPDATE; deleteOrg deletes it), so they run one at a
//   time per organization, as under LMDB's writer; one that finds the row gone answers as
//   LMDB would after the deletion. Those that require a user (setOrgMember, addTeamMember)
//   also lock the user's row FOR SHARE, and deleteUser deletes that row first: it waits
//   for them, and its deletions of memberships that follow see what they added.
// * The audit sequence: appendAudit increments the one row of audit_seq; the row lock is
//   held to commit, so appenders take turns, each batch's seq follow the previous batch's
//   and are visible only after it: seq order is commit order, and a reader paging by
//   after_seq never skips an entry. The counter never goes back (not even when pruning
//   empties the log).
// * redeemJoinToken: one UPDATE ... WHERE join_hash = $1 AND join_expires_ms > now. A
//   concurrent redemption waits for the row, then re-checks the condition against the
//   updated row (join_hash now empty): it updates nothing and is refused.
// * Everything else is one statement (an upsert, an UPDATE or DELETE of one key), or
//   deletes whose outcome any order of concurrent writes could have had under LMDB.
class PgIdentityStore final : public IdentityStore {
 public:
  explicit PgIdentityStore(std::shared_ptr<PgPool> db) : db_(std::move(db)) {}

  // --- users ---
  Result<User> user(const std::string& name) override {
    auto r = read(std::string("SELECT ") + kUserColumns + " FROM users WHERE name = $1", {name});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kNotFound, "no user " + name);
    return userOf(*r, 0);
  }

  std::vector<User> users(const std::string& after, size_t limit) override {
    std::vector<User> out;
    auto r = read(std::string("SELECT ") + kUserColumns + " FROM users WHERE name > $1 ORDER BY name LIMIT $2",
                  {after, limitOf(limit)});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(userOf(*r, i));
    return out;
  }

  Status putUser(const User& u) override {
    return write1(std::string("INSERT INTO users (") + kUserColumns +
                      ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET "
                      "email = EXCLUDED.email, password_hash = EXCLUDED.password_hash, admin = EXCLUDED.admin, "
                      "disabled = EXCLUDED.disabled, source = EXCLUDED.source, created_ms = EXCLUDED.created_ms, "
                      "tokens_before_s = EXCLUDED.tokens_before_s",
                  userParams(u))
        .status();
  }

  Status createUser(const User& u) override {
    return write([&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(lockName(c, u.name));
      auto org = exec(c, "SELECT 1 FROM orgs WHERE name = $1", {u.name});
      if (!org.isOk()) return org.status();
      if (org->rows() > 0) return taken(u.name);
      auto r = exec(c, std::string("INSERT INTO users (") + kUserColumns +
                           ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO NOTHING",
                    userParams(u));
      if (!r.isOk()) return r.status();
      return r->affected() == 0 ? taken(u.name) : Status::ok();
    });
  }

  Status deleteUser(const std::string& name) override {
    return write([&](PgConn& c) -> Status {
      auto r = exec(c, "DELETE FROM users WHERE name = $1", {name});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kNotFound, "no user " + name);
      // Memberships, grants and access tokens go with it, so a new account of that name
      // inherits nothing.
      for (const char* sql : {"DELETE FROM org_members WHERE username = $1", "DELETE FROM team_members WHERE username = $1",
                              "DELETE FROM grants WHERE kind = 'user' AND principal = $1",
                              "DELETE FROM access_tokens WHERE username = $1"}) {
        WHARF_RETURN_IF_ERROR(exec(c, sql, {name}).status());
      }
      return Status::ok();
    });
  }

  // --- organizations and teams ---
  bool orgExists(const std::string& org) override {
    auto r = read("SELECT 1 FROM orgs WHERE name = $1", {org});
    return r.isOk() && r->rows() > 0;
  }

  Status createOrg(const std::string& org, const std::string& creator) override {
    return write([&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(lockName(c, org));
      auto user = exec(c, "SELECT 1 FROM users WHERE name = $1", {org});
      if (!user.isOk()) return user.status();
      if (user->rows() > 0) return taken(org);
      auto r = exec(c, "INSERT INTO orgs (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", {org});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return taken(org);
      if (creator.empty()) return Status::ok();
      return exec(c,
                  "INSERT INTO org_members (org, username, role) VALUES ($1, $2, 'owner') "
                  "ON CONFLICT (org, username) DO UPDATE SET role = 'owner'",
                  {org, creator})
          .status();
    });
  }

  Status deleteOrg(const std::string& org) override {
    return write([&](PgConn& c) -> Status {
      // Deleting the row waits for the writes within the organization that hold it.
      auto r = exec(c, "DELETE FROM orgs WHERE name = $1", {org});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kNotFound, "no organization " + org);
      for (const char* sql : {"DELETE FROM org_members WHERE org = $1", "DELETE FROM teams WHERE org = $1",
                              "DELETE FROM team_members WHERE org = $1",
                              // Grants to the organization's teams ("<org>/<team>").
                              "DELETE FROM grants WHERE kind = 'team' AND starts_with(principal, $1::text || '/')"}) {
        WHARF_RETURN_IF_ERROR(exec(c, sql, {org}).status());
      }
      return Status::ok();
    });
  }

  std::vector<std::string> orgs(const std::string& after, size_t limit) override {
    return column("SELECT name FROM orgs WHERE name > $1 ORDER BY name LIMIT $2", {after, limitOf(limit)});
  }

  std::string orgRole(const std::string& org, const std::string& user) override {
    auto r = read("SELECT role FROM org_members WHERE org = $1 AND username = $2", {org, user});
    if (!r.isOk() || r->rows() == 0) return "";
    return std::string(r->text(0, 0));
  }

  Status setOrgMember(const std::string& org, const std::string& user, const std::string& role) override {
    return write([&](PgConn& c) -> Status {
      auto exists = lockOrg(c, org);
      if (!exists.isOk()) return exists.status();
      if (!*exists) return Status(Code::kNotFound, "no organization " + org);
      auto u = lockUser(c, user);
      if (!u.isOk()) return u.status();
      if (!*u) return Status(Code::kNotFound, "no user " + user);
      return exec(c,
                  "INSERT INTO org_members (org, username, role) VALUES ($1, $2, $3) "
                  "ON CONFLICT (org, username) DO UPDATE SET role = EXCLUDED.role",
                  {org, user, role})
          .status();
    });
  }

  Status removeOrgMember(const std::string& org, const std::string& user) override {
    return write([&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(lockOrg(c, org).status());
      auto r = exec(c, "DELETE FROM org_members WHERE org = $1 AND username = $2", {org, user});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kNotFound, user + " is not a member of " + org);
      // And of the organization's teams.
      return exec(c, "DELETE FROM team_members WHERE org = $1 AND username = $2", {org, user}).status();
    });
  }

  std::vector<std::pair<std::string, std::string>> orgMembers(const std::string& org) override {
    std::vector<std::pair<std::string, std::string>> out;
    auto r = read("SELECT username, role FROM org_members WHERE org = $1 ORDER BY username", {org});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) out.emplace_back(std::string(r->text(i, 0)), std::string(r->text(i, 1)));
    return out;
  }

  Status createTeam(const std::string& org, const std::string& team, const std::string& description) override {
    return write([&](PgConn& c) -> Status {
      auto exists = lockOrg(c, org);
      if (!exists.isOk()) return exists.status();
      if (!*exists) return Status(Code::kNotFound, "no organization " + org);
      auto r = exec(c, "INSERT INTO teams (org, team, description) VALUES ($1, $2, $3) ON CONFLICT (org, team) DO NOTHING",
                    {org, team, description});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kConflict, "team " + org + "/" + team + " exists");
      return Status::ok();
    });
  }

  Status deleteTeam(const std::string& org, const std::string& team) override {
    return write([&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(lockOrg(c, org).status());
      auto r = exec(c, "DELETE FROM teams WHERE org = $1 AND team = $2", {org, team});
      if (!r.isOk()) return r.status();
      if (r->affected() == 0) return Status(Code::kNotFound, "no team " + org + "/" + team);
      return exec(c, "DELETE FROM team_members WHERE org = $1 AND team = $2", {org, team}).status();
    });
  }

  bool teamExists(const std::string& org, const std::string& team) override {
    auto r = read("SELECT 1 FROM teams WHERE org = $1 AND team = $2", {org, team});
    return r.isOk() && r->rows() > 0;
  }

  std::vector<std::string> teams(const std::string& org) override {
    return column("SELECT team FROM teams WHERE org = $1 ORDER BY team", {org});
  }

  Status addTeamMember(const std::string& org, const std::string& team, const std::string& user) override {
    return write([&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(lockOrg(c, org).status());  // no organization: no team either
      auto t = exec(c, "SELECT 1 FROM teams WHERE org = $1 AND team = $2", {org, team});
      if (!t.isOk()) return t.status();
      if (t->rows() == 0) return Status(Code::kNotFound, "no team " + org + "/" + team);
      auto u = lockUser(c, user);
      if (!u.isOk()) return u.status();
      if (!*u) return Status(Code::kNotFound, "no user " + user);
      // Team members are members of the organization (an owner stays an owner).
      WHARF_RETURN_IF_ERROR(exec(c,
                                 "INSERT INTO org_members (org, username, role) VALUES ($1, $2, 'member') "
                                 "ON CONFLICT (org, username) DO NOTHING",
                                 {org, user})
                                .status());
      return exec(c, "INSERT INTO team_members (org, team, username) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                  {org, team, user})
          .status();
    });
  }

  Status removeTeamMember(const std::string& org, const std::string& team, const std::string& user) override {
    auto r = write1("DELETE FROM team_members WHERE org = $1 AND team = $2 AND username = $3", {org, team, user});
    if (!r.isOk()) return r.status();
    if (r->affected() == 0) return Status(Code::kNotFound, user + " is not in team " + org + "/" + team);
    return Status::ok();
  }

  std::vector<std::string> teamMembers(const std::string& org, const std::string& team) override {
    return column("SELECT username FROM team_members WHERE org = $1 AND team = $2 ORDER BY username", {org, team});
  }

  std::vector<std::string> userTeams(const std::string& org, const std::string& user) override {
    std::vector<std::string> out =
        column("SELECT team FROM team_members WHERE org = $1 AND username = $2 ORDER BY team", {org, user});
    for (auto& team : out) team = org + "/" + team;
    return out;
  }

  // --- repositories ---
  std::optional<RepoSettings> repoSettings(const std::string& repo) override {
    auto r = read("SELECT is_public, description FROM repo_settings WHERE repository = $1", {repo});
    if (!r.isOk() || r->rows() == 0) return std::nullopt;
    return RepoSettings{r->boolean(0, 0), std::string(r->text(0, 1))};
  }

  Status putRepoSettings(const std::string& repo, const RepoSettings& s) override {
    return write1("INSERT INTO repo_settings (repository, is_public, description) VALUES ($1, $2, $3) "
                  "ON CONFLICT (repository) DO UPDATE SET is_public = EXCLUDED.is_public, "
                  "description = EXCLUDED.description",
                  {repo, boolean(s.is_public), s.description})
        .status();
  }

  Status deleteRepoSettings(const std::string& repo) override {
    return write([&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(exec(c, "DELETE FROM repo_settings WHERE repository = $1", {repo}).status());
      return exec(c, "DELETE FROM grants WHERE repository = $1", {repo}).status();
    });
  }

  std::vector<Grant> grants(const std::string& repo) override {
    std::vector<Grant> out;
    auto r = read("SELECT kind, principal, role FROM grants WHERE repository = $1 ORDER BY kind, principal", {repo});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      auto role = parseRole(r->text(i, 2));
      out.push_back(Grant{std::string(r->text(i, 0)), std::string(r->text(i, 1)), role.isOk() ? *role : Role::kNone});
    }
    return out;
  }

  Status setGrant(const std::string& repo, const Grant& g) override {
    if (g.role == Role::kNone) {
      return write1("DELETE FROM grants WHERE repository = $1 AND kind = $2 AND principal = $3", {repo, g.kind, g.principal})
          .status();
    }
    return write1("INSERT INTO grants (repository, kind, principal, role) VALUES ($1, $2, $3, $4) "
                  "ON CONFLICT (repository, kind, principal) DO UPDATE SET role = EXCLUDED.role",
                  {repo, g.kind, g.principal, std::string(roleName(g.role))})
        .status();
  }

  Role grantFor(const std::string& repo, const std::string& kind, const std::string& principal) override {
    auto r = read("SELECT role FROM grants WHERE repository = $1 AND kind = $2 AND principal = $3", {repo, kind, principal});
    if (!r.isOk() || r->rows() == 0) return Role::kNone;
    auto role = parseRole(r->text(0, 0));
    return role.isOk() ? *role : Role::kNone;
  }

  // --- access tokens ---
  Result<AccessToken> accessToken(const std::string& id) override {
    auto r = read(std::string("SELECT ") + kTokenColumns + " FROM access_tokens WHERE id = $1", {id});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kNotFound, "no such access token");
    return tokenOf(*r, 0);
  }

  std::vector<AccessToken> accessTokens(const std::string& user) override {
    std::vector<AccessToken> out;
    auto r = read(std::string("SELECT ") + kTokenColumns + " FROM access_tokens WHERE username = $1 ORDER BY id", {user});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(tokenOf(*r, i));
    return out;
  }

  Status putAccessToken(const AccessToken& t) override {
    return write1("INSERT INTO access_tokens (id, username, name, secret_hash, scopes, created_ms, expires_ms) "
                  "VALUES ($1, $2, $3, $4, $5::text[], $6, $7) ON CONFLICT (id) DO UPDATE SET "
                  "username = EXCLUDED.username, name = EXCLUDED.name, secret_hash = EXCLUDED.secret_hash, "
                  "scopes = EXCLUDED.scopes, created_ms = EXCLUDED.created_ms, expires_ms = EXCLUDED.expires_ms",
                  {t.id, t.user, t.name, t.secret_hash, pgArray(t.scopes), num(t.created_ms), num(t.expires_ms)})
        .status();
  }

  Status deleteAccessToken(const std::string& id) override {
    auto r = write1("DELETE FROM access_tokens WHERE id = $1", {id});
    if (!r.isOk()) return r.status();
    if (r->affected() == 0) return Status(Code::kNotFound, "no such access token");
    return Status::ok();
  }

  // --- audit ---
  Status appendAudit(std::vector<AuditEntry>& entries) override {
    if (entries.empty()) return Status::ok();
    std::vector<std::string> times, actors, sources, actions, objects, outcomes, details;
    for (const auto& e : entries) {
      times.push_back(num(e.time_ms));
      // Who and what come from requests (a login's user name): never let one entry's
      // bytes refuse the batch.
      actors.push_back(pgStorableText(e.actor));
      sources.push_back(pgStorableText(e.source));
      actions.push_back(pgStorableText(e.action));
      objects.push_back(pgStorableText(e.object));
      outcomes.push_back(pgStorableText(e.outcome));
      details.push_back(pgStorableText(e.detail));
    }
    const int64_t n = static_cast<int64_t>(entries.size());
    return write([&](PgConn& c) -> Status {
      // The counter row stays locked to commit: seq order is commit order (see above).
      auto r = exec(c,
                    "INSERT INTO audit_seq (id, last_seq) VALUES (1, $1::bigint) "
                    "ON CONFLICT (id) DO UPDATE SET last_seq = audit_seq.last_seq + $1::bigint RETURNING last_seq",
                    {num(n)});
      if (!r.isOk()) return r.status();
      if (r->rows() != 1) return Status(Code::kInternal, "the audit sequence did not advance");
      int64_t seq = r->integer(0, 0) - n + 1;
      std::vector<std::string> seqs;
      for (auto& e : entries) {
        e.seq = seq++;
        seqs.push_back(num(e.seq));
      }
      return exec(c,
                  "INSERT INTO audit (seq, time_ms, actor, source, action, object, outcome, detail) "
                  "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], "
                  "$7::text[], $8::text[])",
                  {pgArray(seqs), pgArray(times), pgArray(actors), pgArray(sources), pgArray(actions), pgArray(objects),
                   pgArray(outcomes), pgArray(details)})
          .status();
    });
  }

  Status importAudit(const std::vector<AuditEntry>& entries) override {
    if (entries.empty()) return Status::ok();
    std::vector<std::string> seqs, times, actors, sources, actions, objects, outcomes, details;
    std::map<int64_t, AuditEntry> wanted;  // as stored (text made storable)
    for (const auto& e : entries) {
      if (e.seq <= 0) return Status(Code::kInvalidArgument, "an audit entry without a sequence number");
      AuditEntry s = e;
      for (std::string* f : {&s.actor, &s.source, &s.action, &s.object, &s.outcome, &s.detail}) *f = pgStorableText(*f);
      seqs.push_back(num(s.seq));
      times.push_back(num(s.time_ms));
      actors.push_back(s.actor);
      sources.push_back(s.source);
      actions.push_back(s.action);
      objects.push_back(s.object);
      outcomes.push_back(s.outcome);
      details.push_back(s.detail);
      wanted[s.seq] = std::move(s);
    }
    return write([&](PgConn& c) -> Status {
      // The counter row first, as appendAudit takes it: seq order stays commit order.
      WHARF_RETURN_IF_ERROR(exec(c,
                                 "INSERT INTO audit_seq (id, last_seq) VALUES (1, $1::bigint) ON CONFLICT (id) DO "
                                 "UPDATE SET last_seq = greatest(audit_seq.last_seq, $1::bigint)",
                                 {num(wanted.rbegin()->first)})
                                .status());
      WHARF_RETURN_IF_ERROR(exec(c,
                                 "INSERT INTO audit (seq, time_ms, actor, source, action, object, outcome, detail) "
                                 "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], "
                                 "$6::text[], $7::text[], $8::text[]) ON CONFLICT (seq) DO NOTHING",
                                 {pgArray(seqs), pgArray(times), pgArray(actors), pgArray(sources), pgArray(actions),
                                  pgArray(objects), pgArray(outcomes), pgArray(details)})
                                .status());
      // What was there already must be the same entries.
      auto r = exec(c, std::string("SELECT ") + kAuditColumns + " FROM audit WHERE seq = ANY($1::bigint[])",
                    {pgArray(seqs)});
      if (!r.isOk()) return r.status();
      for (int i = 0; i < r->rows(); ++i) {
        AuditEntry there = auditOf(*r, i);
        if (!(wanted[there.seq] == there))
          return Status(Code::kConflict, "audit entry " + num(there.seq) + " is another entry here");
      }
      return Status::ok();
    });
  }

  std::vector<AuditEntry> queryAudit(const AuditQuery& q) override {
    std::vector<AuditEntry> out;
    // A filter of 0 or "" is no filter; the limit counts matches.
    auto r = read(std::string("SELECT ") + kAuditColumns +
                      " FROM audit WHERE seq > $1::bigint"
                      " AND ($2::bigint = 0 OR time_ms >= $2::bigint) AND ($3::bigint = 0 OR time_ms <= $3::bigint)"
                      " AND ($4::text = '' OR actor = $4::text) AND ($5::text = '' OR action = $5::text)"
                      " AND ($6::text = '' OR object = $6::text) AND ($7::text = '' OR outcome = $7::text)"
                      " ORDER BY seq LIMIT $8::bigint",
                  {num(q.after_seq), num(q.since_ms), num(q.until_ms), q.actor, q.action, q.object, q.outcome,
                   limitOf(q.limit)});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(auditOf(*r, i));
    return out;
  }

  size_t pruneAudit(int64_t older_than_ms) override {
    // As LMDB walks it: the entries from the oldest seq up to the first that is not older
    // than older_than_ms, at most 100000 a call.
    auto r = write1(
        "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE seq < coalesce("
        "(SELECT seq FROM audit WHERE time_ms >= $1::bigint ORDER BY seq LIMIT 1), 9223372036854775807) "
        "ORDER BY seq LIMIT 100000)",
        {num(older_than_ms)});
    return r.isOk() ? static_cast<size_t>(r->affected()) : 0;
  }

  // --- edges ---
  Result<Edge> edge(const std::string& name) override {
    auto r = read(std::string("SELECT ") + kEdgeColumns + " FROM edges WHERE name = $1", {name});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kNotFound, "no edge " + name);
    return edgeOf(*r, 0);
  }

  std::vector<Edge> edges() override {
    std::vector<Edge> out;
    auto r = read(std::string("SELECT ") + kEdgeColumns + " FROM edges ORDER BY name", {});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(edgeOf(*r, i));
    return out;
  }

  Status createEdge(const Edge& e) override {
    // The hashes are unique (partial unique indexes): a second edge with the same one is
    // kConflict too.
    auto r = write1(std::string("INSERT INTO edges (") + kEdgeColumns +
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO NOTHING",
                    {e.name, e.site, e.settings.dump(), e.join_hash, num(e.join_expires_ms), e.credential_hash,
                     e.created_by, num(e.created_ms), num(e.registered_ms), num(e.last_seen_ms)});
    if (!r.isOk()) return r.status();
    if (r->affected() == 0) return Status(Code::kConflict, "edge " + e.name + " exists");
    return Status::ok();
  }

  Status putEdgeSettings(const std::string& name, const nlohmann::json& settings) override {
    auto r = write1("UPDATE edges SET settings = $2 WHERE name = $1", {name, settings.dump()});
    if (!r.isOk()) return r.status();
    if (r->affected() == 0) return Status(Code::kNotFound, "no edge " + name);
    return Status::ok();
  }

  Result<Edge> redeemJoinToken(const std::string& join_hash, const std::string& credential_hash,
                               int64_t now_ms) override {
    const Status refused(Code::kUnauthorized, "join token unknown, used or expired");
    if (join_hash.empty() || !pgStorable(join_hash)) return refused;
    if (credential_hash.empty()) return Status(Code::kInvalidArgument, "an edge credential hash is required");
    // One statement: the row is locked from the match to commit, and a concurrent
    // redemption of the same token re-checks the updated row and matches nothing. The
    // lookup compares SHA-256 hashes of the secret, so its timing tells nothing about it.
    auto r = write1(std::string("UPDATE edges SET join_hash = '', credential_hash = $2, registered_ms = $3::bigint, "
                                "last_seen_ms = $3::bigint WHERE join_hash = $1 AND join_hash <> '' "
                                "AND join_expires_ms > $3::bigint RETURNING ") +
                        kEdgeColumns,
                    {join_hash, credential_hash, num(now_ms)});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return refused;
    return edgeOf(*r, 0);
  }

  Result<Edge> edgeByCredential(const std::string& credential_hash) override {
    const Status refused(Code::kUnauthorized, "edge credential unknown or revoked");
    if (credential_hash.empty()) return refused;
    auto r = read(std::string("SELECT ") + kEdgeColumns + " FROM edges WHERE credential_hash = $1 AND credential_hash <> ''",
                  {credential_hash});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return refused;
    Edge e = edgeOf(*r, 0);
    if (!constantTimeEquals(e.credential_hash, credential_hash)) return refused;
    return e;
  }

  Status touchEdge(const std::string& name, int64_t seen_ms) override {
    auto r = write1("UPDATE edges SET last_seen_ms = GREATEST(last_seen_ms, $2::bigint) WHERE name = $1",
                    {name, num(seen_ms)});
    if (!r.isOk()) return r.status();
    if (r->affected() == 0) return Status(Code::kNotFound, "no edge " + name);
    return Status::ok();
  }

  Status deleteEdge(const std::string& name) override {
    // Its join token and credential are columns of the row: both stop working with it.
    auto r = write1("DELETE FROM edges WHERE name = $1", {name});
    if (!r.isOk()) return r.status();
    if (r->affected() == 0) return Status(Code::kNotFound, "no edge " + name);
    return Status::ok();
  }

  // --- sign-in failures: one row per key, its window's start and count ---
  int signInFailures(const std::string& key, int64_t now_ms, int64_t window_ms) override {
    if (!pgStorable(key)) return 0;
    auto r = read("SELECT count FROM signin_failures WHERE key = $1 AND start_ms >= $2::bigint",
                  {key, std::to_string(now_ms - window_ms)});
    if (!r.isOk() || r->rows() == 0) return 0;
    return static_cast<int>(r->integer(0, 0));
  }

  void recordSignInFailure(const std::string& key, int64_t now_ms, int64_t window_ms) override {
    if (!pgStorable(key)) return;
    const std::string now = std::to_string(now_ms), since = std::to_string(now_ms - window_ms);
    // One statement: a window that ran out starts again at this failure.
    auto st = write1("INSERT INTO signin_failures (key, start_ms, count) VALUES ($1, $2::bigint, 1) "
                       "ON CONFLICT (key) DO UPDATE SET "
                       "count = CASE WHEN signin_failures.start_ms < $3::bigint THEN 1 ELSE signin_failures.count + 1 END, "
                       "start_ms = CASE WHEN signin_failures.start_ms < $3::bigint THEN $2::bigint "
                       "ELSE signin_failures.start_ms END",
                       {key, now, since});
    if (!st.isOk()) return;
    // Windows long over go now and then (a spray of names leaves a row each).
    if (++records_ % 1000 == 0) (void)write1("DELETE FROM signin_failures WHERE start_ms < $1::bigint", {since});
  }

  // --- settings ---
  std::optional<nlohmann::json> setting(const std::string& key) override {
    auto r = read("SELECT value FROM identity_settings WHERE name = $1", {key});
    if (!r.isOk() || r->rows() == 0) return std::nullopt;
    auto j = nlohmann::json::parse(r->text(0, 0), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  Status putSetting(const std::string& key, const nlohmann::json& value) override {
    // Stored as text, not jsonb: read back exactly as LMDB gives it (key order, numbers).
    return write1("INSERT INTO identity_settings (name, value) VALUES ($1, $2) "
                  "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                  {key, value.dump()})
        .status();
  }

  std::vector<std::pair<std::string, nlohmann::json>> settings() override {
    std::vector<std::pair<std::string, nlohmann::json>> out;
    auto r = read("SELECT name, value FROM identity_settings ORDER BY name", {});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      auto j = nlohmann::json::parse(r->text(i, 1), nullptr, false);
      if (!j.is_discarded()) out.emplace_back(std::string(r->text(i, 0)), std::move(j));
    }
    return out;
  }

 private:
  // The advisory lock class of account names (createUser, createOrg); the second key is
  // hashtext(name).
  static constexpr int kNameLock = 1480;

  // A read: one statement. A value PostgreSQL cannot hold is in no row: no rows.
  Result<PgResult> read(std::string_view sql, const PgParams& params) {
    if (!allStorable(params)) return PgResult(nullptr);
    return db_->query(sql, params);
  }

  // The first column of a read's rows.
  std::vector<std::string> column(std::string_view sql, const PgParams& params) {
    std::vector<std::string> out;
    auto r = read(sql, params);
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) out.emplace_back(r->text(i, 0));
    return out;
  }

  // A write of one statement (its own transaction).
  Result<PgResult> write1(std::string_view sql, const PgParams& params) {
    if (!allStorable(params)) return unstorable();
    return db_->query(sql, params);
  }

  // A write of several statements: one transaction, retried on deadlocks.
  Status write(const std::function<Status(PgConn&)>& fn) { return db_->transact(fn); }

  static Status lockName(PgConn& c, const std::string& name) {
    return exec(c, "SELECT pg_advisory_xact_lock(" + std::to_string(kNameLock) + ", hashtext($1))", {name}).status();
  }

  // Locks the organization's row for the transaction; false when there is none.
  static Result<bool> lockOrg(PgConn& c, const std::string& org) {
    auto r = exec(c, "SELECT 1 FROM orgs WHERE name = $1 FOR UPDATE", {org});
    if (!r.isOk()) return r.status();
    return r->rows() > 0;
  }

  // Keeps the user's row (deleteUser waits); false when there is none.
  static Result<bool> lockUser(PgConn& c, const std::string& user) {
    auto r = exec(c, "SELECT 1 FROM users WHERE name = $1 FOR SHARE", {user});
    if (!r.isOk()) return r.status();
    return r->rows() > 0;
  }

  std::shared_ptr<PgPool> db_;
  std::atomic<uint64_t> records_{0};
};

}  // namespace
}  // namespace pg_identity_store

Result<std::unique_ptr<IdentityStore>> openPgIdentityStore(std::shared_ptr<PgPool> db) {
  auto applied = applyMigrations(*db, "identity", identityMigrations());
  if (!applied.isOk()) return applied.status();
  return std::unique_ptr<IdentityStore>(std::make_unique<pg_identity_store::PgIdentityStore>(std::move(db)));
}

}  // namespace wharf
