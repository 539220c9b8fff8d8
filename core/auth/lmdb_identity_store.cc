#include "core/auth/lmdb_identity_store.h"

#include <algorithm>
#include <cctype>
#include <mutex>

#include "shared/base/clock.h"
#include "shared/base/json_body.h"
#include "shared/config/config.h"
#include "shared/fleet/prefetch_policy.h"
#include "shared/oci/names.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

std::string seqKey(int64_t seq) { return bigEndian64(static_cast<uint64_t>(seq)); }
int64_t seqOf(std::string_view k) { return static_cast<int64_t>(fromBigEndian64(k)); }

std::string k2(const std::string& a, const std::string& b) { return a + '\0' + b; }
std::string k3(const std::string& a, const std::string& b, const std::string& c) { return a + '\0' + b + '\0' + c; }

nlohmann::json obj(std::string_view v) {
  auto j = nlohmann::json::parse(v, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

User userFrom(std::string_view v) {
  auto j = obj(v);
  User u;
  u.name = j.value("name", "");
  u.email = j.value("email", "");
  u.password_hash = j.value("password", "");
  u.admin = j.value("admin", false);
  u.disabled = j.value("disabled", false);
  u.source = j.value("source", "local");
  u.created_ms = j.value("created", int64_t{0});
  u.tokens_before_s = j.value("tokens_before", int64_t{0});
  return u;
}

std::string userValue(const User& u) {
  return dumpJson(nlohmann::json{{"name", u.name},       {"email", u.email},   {"password", u.password_hash}, {"admin", u.admin},
                        {"disabled", u.disabled}, {"source", u.source}, {"created", u.created_ms},
                        {"tokens_before", u.tokens_before_s}});
}

AccessToken tokenFrom(std::string_view v) {
  auto j = obj(v);
  AccessToken t;
  t.id = j.value("id", "");
  t.user = j.value("user", "");
  t.name = j.value("name", "");
  t.secret_hash = j.value("hash", "");
  if (j.contains("scopes") && j["scopes"].is_array()) {
    for (const auto& s : j["scopes"]) {
      if (s.is_string()) t.scopes.push_back(s.get<std::string>());
    }
  }
  t.created_ms = j.value("created", int64_t{0});
  t.expires_ms = j.value("expires", int64_t{0});
  return t;
}

AuditEntry auditFrom(std::string_view key, std::string_view v) {
  auto j = obj(v);
  AuditEntry e;
  e.seq = seqOf(key);
  e.time_ms = j.value("time", int64_t{0});
  e.actor = j.value("actor", "");
  e.source = j.value("source", "");
  e.action = j.value("action", "");
  e.object = j.value("object", "");
  e.outcome = j.value("outcome", "");
  e.detail = j.value("detail", "");
  return e;
}

Edge edgeFrom(std::string_view v) {
  auto j = obj(v);
  Edge e;
  e.name = j.value("name", "");
  e.site = j.value("site", "");
  if (j.contains("settings") && j["settings"].is_object()) e.settings = j["settings"];
  e.join_hash = j.value("join_hash", "");
  e.join_expires_ms = j.value("join_expires", int64_t{0});
  e.credential_hash = j.value("credential_hash", "");
  e.created_by = j.value("created_by", "");
  e.created_ms = j.value("created", int64_t{0});
  e.registered_ms = j.value("registered", int64_t{0});
  e.last_seen_ms = j.value("last_seen", int64_t{0});
  return e;
}

std::string edgeValue(const Edge& e) {
  return dumpJson(nlohmann::json{{"name", e.name},
                        {"site", e.site},
                        {"settings", e.settings},
                        {"join_hash", e.join_hash},
                        {"join_expires", e.join_expires_ms},
                        {"credential_hash", e.credential_hash},
                        {"created_by", e.created_by},
                        {"created", e.created_ms},
                        {"registered", e.registered_ms},
                        {"last_seen", e.last_seen_ms}});
}

template <typename F>
void scanPrefix(const Txn& txn, Dbi dbi, const std::string& prefix, F&& fn) {
  auto c = txn.cursor(dbi);
  for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next()) {
    if (!fn(c.key().substr(prefix.size()), c.value())) break;
  }
}

class LmdbIdentityStore final : public IdentityStore {
 public:
  explicit LmdbIdentityStore(std::shared_ptr<LmdbEnv> env) : env_(std::move(env)) {}

  Status init() {
    for (auto [name, dbi] : {std::pair{"users", &users_}, {"orgs", &orgs_}, {"org_members", &org_members_},
                             {"teams", &teams_}, {"team_members", &team_members_}, {"repo_settings", &repo_settings_},
                             {"grants", &grants_}, {"tokens", &tokens_}, {"audit", &audit_}, {"settings", &settings_},
                             {"edges", &edges_}, {"edge_secrets", &edge_secrets_}}) {
      auto d = env_->openDb(name);
      if (!d.isOk()) return d.status();
      *dbi = *d;
    }
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    auto c = txn->cursor(audit_);
    // Last sequence number: walk is fine at start-up only because audit keys are
    // ordered; find the last by seeking past every key.
    for (bool ok = c.first(); ok; ok = c.next()) next_seq_ = seqOf(c.key()) + 1;
    if (next_seq_ == 0) next_seq_ = 1;
    return Status::ok();
  }

  // --- users ---
  Result<User> user(const std::string& name) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(users_, name, &v).isOk()) return Status(Code::kNotFound, "no user " + name);
    return userFrom(v);
  }

  std::vector<User> users(const std::string& after, size_t limit) override {
    std::vector<User> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(users_);
    bool ok = c.seek(after);
    if (ok && !after.empty() && c.key() == after) ok = c.next();
    for (; ok && out.size() < limit; ok = c.next()) out.push_back(userFrom(c.value()));
    return out;
  }

  Status putUser(const User& u) override {
    return write([&](WriteTxn& t) { return t.put(users_, u.name, userValue(u)); });
  }

  Status createUser(const User& u) override {
    return write([&](WriteTxn& t) -> Status {
      if (t.has(users_, u.name) || t.has(orgs_, u.name)) return Status(Code::kConflict, "the name " + u.name + " is taken");
      return t.put(users_, u.name, userValue(u));
    });
  }

  Status deleteUser(const std::string& name) override {
    return write([&](WriteTxn& t) -> Status {
      Status st = t.del(users_, name);
      if (st.code() == Code::kNotFound) return Status(Code::kNotFound, "no user " + name);
      WHARF_RETURN_IF_ERROR(st);
      // Memberships and grants go with it, so a new account of that name inherits nothing.
      for (Dbi dbi : {org_members_, team_members_}) {
        std::vector<std::string> keys;
        auto c = t.cursor(dbi);
        for (bool ok = c.first(); ok; ok = c.next()) {
          std::string_view k = c.key();
          auto sep = k.rfind('\0');
          if (sep != std::string_view::npos && k.substr(sep + 1) == name) keys.emplace_back(k);
        }
        for (const auto& k : keys) WHARF_RETURN_IF_ERROR(t.del(dbi, k));
      }
      {
        std::vector<std::string> keys;
        auto c = t.cursor(grants_);
        for (bool ok = c.first(); ok; ok = c.next()) {
          std::string_view k = c.key();
          auto sep = k.rfind('\0');
          if (sep != std::string_view::npos && k.substr(sep + 1) == name &&
              k.substr(0, sep).size() >= 5 && k.substr(sep - 5, 5) == std::string_view("\0user", 5)) {
            keys.emplace_back(k);
          }
        }
        for (const auto& k : keys) WHARF_RETURN_IF_ERROR(t.del(grants_, k));
      }
      // The user's access tokens go with it.
      std::vector<std::string> ids;
      auto c = t.cursor(tokens_);
      for (bool ok = c.first(); ok; ok = c.next()) {
        if (tokenFrom(c.value()).user == name) ids.emplace_back(c.key());
      }
      for (const auto& id : ids) WHARF_RETURN_IF_ERROR(t.del(tokens_, id));
      return Status::ok();
    });
  }

  // --- orgs and teams ---
  bool orgExists(const std::string& org) override {
    auto txn = env_->read();
    return txn.isOk() && txn->has(orgs_, org);
  }

  Status createOrg(const std::string& org, const std::string& creator) override {
    return write([&](WriteTxn& t) -> Status {
      if (t.has(users_, org) || t.has(orgs_, org)) return Status(Code::kConflict, "the name " + org + " is taken");
      WHARF_RETURN_IF_ERROR(t.put(orgs_, org, "{}"));
      if (!creator.empty()) WHARF_RETURN_IF_ERROR(t.put(org_members_, k2(org, creator), "owner"));
      return Status::ok();
    });
  }

  Status deleteOrg(const std::string& org) override {
    return write([&](WriteTxn& t) -> Status {
      Status st = t.del(orgs_, org);
      if (st.code() == Code::kNotFound) return Status(Code::kNotFound, "no organization " + org);
      WHARF_RETURN_IF_ERROR(st);
      for (Dbi dbi : {org_members_, teams_, team_members_}) {
        std::vector<std::string> keys;
        scanPrefix(t, dbi, org + '\0', [&](std::string_view rest, std::string_view) {
          keys.push_back(org + '\0' + std::string(rest));
          return true;
        });
        for (const auto& k : keys) WHARF_RETURN_IF_ERROR(t.del(dbi, k));
      }
      // Grants to the organization's teams ("<org>/<team>").
      std::vector<std::string> grants;
      auto c = t.cursor(grants_);
      std::string team_prefix = std::string("\0team\0", 6) + org + "/";
      for (bool ok = c.first(); ok; ok = c.next()) {
        if (c.key().find(team_prefix) != std::string_view::npos) grants.emplace_back(c.key());
      }
      for (const auto& k : grants) WHARF_RETURN_IF_ERROR(t.del(grants_, k));
      return Status::ok();
    });
  }

  std::vector<std::string> orgs(const std::string& after, size_t limit) override {
    std::vector<std::string> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(orgs_);
    bool ok = c.seek(after);
    if (ok && !after.empty() && c.key() == after) ok = c.next();
    for (; ok && out.size() < limit; ok = c.next()) out.emplace_back(c.key());
    return out;
  }

  std::string orgRole(const std::string& org, const std::string& user) override {
    auto txn = env_->read();
    std::string_view v;
    if (!txn.isOk() || !txn->get(org_members_, k2(org, user), &v).isOk()) return "";
    return std::string(v);
  }

  Status setOrgMember(const std::string& org, const std::string& user, const std::string& role) override {
    return write([&](WriteTxn& t) -> Status {
      if (!t.has(orgs_, org)) return Status(Code::kNotFound, "no organization " + org);
      if (!t.has(users_, user)) return Status(Code::kNotFound, "no user " + user);
      return t.put(org_members_, k2(org, user), role);
    });
  }

  Status removeOrgMember(const std::string& org, const std::string& user) override {
    return write([&](WriteTxn& t) -> Status {
      Status st = t.del(org_members_, k2(org, user));
      if (st.code() == Code::kNotFound) return Status(Code::kNotFound, user + " is not a member of " + org);
      WHARF_RETURN_IF_ERROR(st);
      // And of the organization's teams.
      std::vector<std::string> keys;
      scanPrefix(t, team_members_, org + '\0', [&](std::string_view rest, std::string_view) {
        auto sep = rest.find('\0');
        if (sep != std::string_view::npos && rest.substr(sep + 1) == user) keys.push_back(org + '\0' + std::string(rest));
        return true;
      });
      for (const auto& k : keys) WHARF_RETURN_IF_ERROR(t.del(team_members_, k));
      return Status::ok();
    });
  }

  std::vector<std::pair<std::string, std::string>> orgMembers(const std::string& org) override {
    std::vector<std::pair<std::string, std::string>> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    scanPrefix(*txn, org_members_, org + '\0', [&](std::string_view user, std::string_view role) {
      out.emplace_back(std::string(user), std::string(role));
      return true;
    });
    return out;
  }

  Status createTeam(const std::string& org, const std::string& team, const std::string& description) override {
    return write([&](WriteTxn& t) -> Status {
      if (!t.has(orgs_, org)) return Status(Code::kNotFound, "no organization " + org);
      if (t.has(teams_, k2(org, team))) return Status(Code::kConflict, "team " + org + "/" + team + " exists");
      return t.put(teams_, k2(org, team), dumpJson(nlohmann::json{{"description", description}}));
    });
  }

  Status deleteTeam(const std::string& org, const std::string& team) override {
    return write([&](WriteTxn& t) -> Status {
      Status st = t.del(teams_, k2(org, team));
      if (st.code() == Code::kNotFound) return Status(Code::kNotFound, "no team " + org + "/" + team);
      WHARF_RETURN_IF_ERROR(st);
      std::vector<std::string> keys;
      scanPrefix(t, team_members_, k2(org, team) + '\0', [&](std::string_view user, std::string_view) {
        keys.push_back(k3(org, team, std::string(user)));
        return true;
      });
      for (const auto& k : keys) WHARF_RETURN_IF_ERROR(t.del(team_members_, k));
      return Status::ok();
    });
  }

  bool teamExists(const std::string& org, const std::string& team) override {
    auto txn = env_->read();
    return txn.isOk() && txn->has(teams_, k2(org, team));
  }

  std::vector<std::string> teams(const std::string& org) override {
    std::vector<std::string> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    scanPrefix(*txn, teams_, org + '\0', [&](std::string_view team, std::string_view) {
      out.emplace_back(team);
      return true;
    });
    return out;
  }

  Status addTeamMember(const std::string& org, const std::string& team, const std::string& user) override {
    return write([&](WriteTxn& t) -> Status {
      if (!t.has(teams_, k2(org, team))) return Status(Code::kNotFound, "no team " + org + "/" + team);
      if (!t.has(users_, user)) return Status(Code::kNotFound, "no user " + user);
      // Team members are members of the organization.
      if (!t.has(org_members_, k2(org, user))) WHARF_RETURN_IF_ERROR(t.put(org_members_, k2(org, user), "member"));
      return t.put(team_members_, k3(org, team, user), "");
    });
  }

  Status removeTeamMember(const std::string& org, const std::string& team, const std::string& user) override {
    return write([&](WriteTxn& t) -> Status {
      Status st = t.del(team_members_, k3(org, team, user));
      if (st.code() == Code::kNotFound) return Status(Code::kNotFound, user + " is not in team " + org + "/" + team);
      return st;
    });
  }

  std::vector<std::string> teamMembers(const std::string& org, const std::string& team) override {
    std::vector<std::string> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    scanPrefix(*txn, team_members_, k2(org, team) + '\0', [&](std::string_view user, std::string_view) {
      out.emplace_back(user);
      return true;
    });
    return out;
  }

  std::vector<std::string> userTeams(const std::string& org, const std::string& user) override {
    std::vector<std::string> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    scanPrefix(*txn, team_members_, org + '\0', [&](std::string_view rest, std::string_view) {
      auto sep = rest.find('\0');
      if (sep != std::string_view::npos && rest.substr(sep + 1) == user) {
        out.push_back(org + "/" + std::string(rest.substr(0, sep)));
      }
      return true;
    });
    return out;
  }

  // --- repositories ---
  std::optional<RepoSettings> repoSettings(const std::string& repo) override {
    auto txn = env_->read();
    std::string_view v;
    if (!txn.isOk() || !txn->get(repo_settings_, repo, &v).isOk()) return std::nullopt;
    auto j = obj(v);
    return RepoSettings{j.value("public", false), j.value("description", "")};
  }

  Status putRepoSettings(const std::string& repo, const RepoSettings& s) override {
    return write([&](WriteTxn& t) {
      return t.put(repo_settings_, repo, dumpJson(nlohmann::json{{"public", s.is_public}, {"description", s.description}}));
    });
  }

  Status deleteRepoSettings(const std::string& repo) override {
    return write([&](WriteTxn& t) -> Status {
      Status st = t.del(repo_settings_, repo);
      if (!st.isOk() && st.code() != Code::kNotFound) return st;
      std::vector<std::string> keys;
      scanPrefix(t, grants_, repo + '\0', [&](std::string_view rest, std::string_view) {
        keys.push_back(repo + '\0' + std::string(rest));
        return true;
      });
      for (const auto& k : keys) WHARF_RETURN_IF_ERROR(t.del(grants_, k));
      return Status::ok();
    });
  }

  std::vector<Grant> grants(const std::string& repo) override {
    std::vector<Grant> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    scanPrefix(*txn, grants_, repo + '\0', [&](std::string_view rest, std::string_view v) {
      auto sep = rest.find('\0');
      if (sep == std::string_view::npos) return true;
      auto role = parseRole(v);
      out.push_back(Grant{std::string(rest.substr(0, sep)), std::string(rest.substr(sep + 1)),
                          role.isOk() ? *role : Role::kNone});
      return true;
    });
    return out;
  }

  Status setGrant(const std::string& repo, const Grant& g) override {
    return write([&](WriteTxn& t) -> Status {
      std::string key = k3(repo, g.kind, g.principal);
      if (g.role == Role::kNone) {
        Status st = t.del(grants_, key);
        return st.code() == Code::kNotFound ? Status::ok() : st;
      }
      return t.put(grants_, key, std::string(roleName(g.role)));
    });
  }

  Role grantFor(const std::string& repo, const std::string& kind, const std::string& principal) override {
    auto txn = env_->read();
    std::string_view v;
    if (!txn.isOk() || !txn->get(grants_, k3(repo, kind, principal), &v).isOk()) return Role::kNone;
    auto r = parseRole(v);
    return r.isOk() ? *r : Role::kNone;
  }

  // --- access tokens ---
  Result<AccessToken> accessToken(const std::string& id) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(tokens_, id, &v).isOk()) return Status(Code::kNotFound, "no such access token");
    return tokenFrom(v);
  }

  std::vector<AccessToken> accessTokens(const std::string& user) override {
    std::vector<AccessToken> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(tokens_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      AccessToken t = tokenFrom(c.value());
      if (t.user == user) out.push_back(std::move(t));
    }
    return out;
  }

  Status putAccessToken(const AccessToken& t) override {
    nlohmann::json j = {{"id", t.id},           {"user", t.user},       {"name", t.name},      {"hash", t.secret_hash},
                        {"scopes", t.scopes},   {"created", t.created_ms}, {"expires", t.expires_ms}};
    return write([&](WriteTxn& txn) { return txn.put(tokens_, t.id, dumpJson(j)); });
  }

  Status deleteAccessToken(const std::string& id) override {
    return write([&](WriteTxn& t) -> Status {
      Status st = t.del(tokens_, id);
      if (st.code() == Code::kNotFound) return Status(Code::kNotFound, "no such access token");
      return st;
    });
  }

  // --- audit ---
  Status appendAudit(std::vector<AuditEntry>& entries) override {
    std::lock_guard lock(seq_mu_);
    return write([&](WriteTxn& t) -> Status {
      int64_t seq = next_seq_;
      for (auto& e : entries) {
        e.seq = seq++;
        nlohmann::json j = {{"time", e.time_ms}, {"actor", e.actor},   {"source", e.source}, {"action", e.action},
                            {"object", e.object}, {"outcome", e.outcome}, {"detail", e.detail}};
        WHARF_RETURN_IF_ERROR(t.put(audit_, seqKey(e.seq), dumpJson(j)));
      }
      WHARF_RETURN_IF_ERROR(t.commit());
      next_seq_ = seq;
      return Status::ok();
    }, /*commit=*/false);
  }

  Status importAudit(const std::vector<AuditEntry>& entries) override {
    std::lock_guard lock(seq_mu_);
    int64_t next = next_seq_;
    Status st = write([&](WriteTxn& t) -> Status {
      for (const auto& e : entries) {
        if (e.seq <= 0) return Status(Code::kInvalidArgument, "an audit entry without a sequence number");
        std::string_view v;
        if (t.get(audit_, seqKey(e.seq), &v).isOk()) {
          if (auditFrom(seqKey(e.seq), v) == e) continue;
          return Status(Code::kConflict, "audit entry " + std::to_string(e.seq) + " is another entry here");
        }
        nlohmann::json j = {{"time", e.time_ms}, {"actor", e.actor},   {"source", e.source}, {"action", e.action},
                            {"object", e.object}, {"outcome", e.outcome}, {"detail", e.detail}};
        WHARF_RETURN_IF_ERROR(t.put(audit_, seqKey(e.seq), dumpJson(j)));
        next = std::max(next, e.seq + 1);
      }
      return t.commit();
    }, /*commit=*/false);
    if (st.isOk()) next_seq_ = next;
    return st;
  }

  std::vector<AuditEntry> queryAudit(const AuditQuery& q) override {
    std::vector<AuditEntry> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(audit_);
    for (bool ok = c.seek(seqKey(q.after_seq + 1)); ok && out.size() < q.limit; ok = c.next()) {
      AuditEntry e = auditFrom(c.key(), c.value());
      if (q.since_ms && e.time_ms < q.since_ms) continue;
      if (q.until_ms && e.time_ms > q.until_ms) continue;
      if (!q.actor.empty() && e.actor != q.actor) continue;
      if (!q.action.empty() && e.action != q.action) continue;
      if (!q.object.empty() && e.object != q.object) continue;
      if (!q.outcome.empty() && e.outcome != q.outcome) continue;
      out.push_back(std::move(e));
    }
    return out;
  }

  size_t pruneAudit(int64_t older_than_ms) override {
    size_t removed = 0;
    (void)write([&](WriteTxn& t) -> Status {
      std::vector<std::string> keys;
      auto c = t.cursor(audit_);
      for (bool ok = c.first(); ok && keys.size() < 100000; ok = c.next()) {
        if (auditFrom(c.key(), c.value()).time_ms >= older_than_ms) break;
        keys.emplace_back(c.key());
      }
      for (const auto& k : keys) WHARF_RETURN_IF_ERROR(t.del(audit_, k));
      removed = keys.size();
      return Status::ok();
    });
    return removed;
  }

  // --- edges ---
  Result<Edge> edge(const std::string& name) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(edges_, name, &v).isOk()) return Status(Code::kNotFound, "no edge " + name);
    return edgeFrom(v);
  }

  std::vector<Edge> edges() override {
    std::vector<Edge> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(edges_);
    for (bool ok = c.first(); ok; ok = c.next()) out.push_back(edgeFrom(c.value()));
    return out;
  }

  Status createEdge(const Edge& e) override {
    return write([&](WriteTxn& t) -> Status {
      if (t.has(edges_, e.name)) return Status(Code::kConflict, "edge " + e.name + " exists");
      if (!e.join_hash.empty()) WHARF_RETURN_IF_ERROR(t.put(edge_secrets_, e.join_hash, e.name));
      if (!e.credential_hash.empty()) WHARF_RETURN_IF_ERROR(t.put(edge_secrets_, e.credential_hash, e.name));
      return t.put(edges_, e.name, edgeValue(e));
    });
  }

  Status putEdgeSettings(const std::string& name, const nlohmann::json& settings) override {
    return updateEdge(name, [&](Edge& e) { e.settings = settings; });
  }

  Result<Edge> redeemJoinToken(const std::string& join_hash, const std::string& credential_hash,
                               int64_t now_ms) override {
    const Status refused(Code::kUnauthorized, "join token unknown, used or expired");
    Edge out;
    Status st = write([&](WriteTxn& t) -> Status {
      std::string_view name, v;
      if (join_hash.empty() || !t.get(edge_secrets_, join_hash, &name).isOk()) return refused;
      std::string edge_name(name);
      if (!t.get(edges_, edge_name, &v).isOk()) return refused;
      Edge e = edgeFrom(v);
      // The index only finds the edge; the edge's own hash decides (and tells a join
      // token from a credential).
      if (e.join_hash.empty() || !constantTimeEquals(e.join_hash, join_hash)) return refused;
      if (e.join_expires_ms <= now_ms) return refused;
      WHARF_RETURN_IF_ERROR(t.del(edge_secrets_, join_hash));
      e.join_hash.clear();
      e.credential_hash = credential_hash;
      e.registered_ms = now_ms;
      e.last_seen_ms = now_ms;
      WHARF_RETURN_IF_ERROR(t.put(edge_secrets_, credential_hash, e.name));
      WHARF_RETURN_IF_ERROR(t.put(edges_, e.name, edgeValue(e)));
      out = std::move(e);
      return Status::ok();
    });
    if (!st.isOk()) return st;
    return out;
  }

  Result<Edge> edgeByCredential(const std::string& credential_hash) override {
    const Status refused(Code::kUnauthorized, "edge credential unknown or revoked");
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view name, v;
    if (credential_hash.empty() || !txn->get(edge_secrets_, credential_hash, &name).isOk()) return refused;
    if (!txn->get(edges_, std::string(name), &v).isOk()) return refused;
    Edge e = edgeFrom(v);
    if (e.credential_hash.empty() || !constantTimeEquals(e.credential_hash, credential_hash)) return refused;
    return e;
  }

  Status touchEdge(const std::string& name, int64_t seen_ms) override {
    return updateEdge(name, [&](Edge& e) { e.last_seen_ms = std::max(e.last_seen_ms, seen_ms); });
  }

  Status deleteEdge(const std::string& name) override {
    return write([&](WriteTxn& t) -> Status {
      std::string_view v;
      if (!t.get(edges_, name, &v).isOk()) return Status(Code::kNotFound, "no edge " + name);
      Edge e = edgeFrom(v);
      for (const std::string& hash : {e.join_hash, e.credential_hash}) {
        if (hash.empty()) continue;
        Status st = t.del(edge_secrets_, hash);
        if (!st.isOk() && st.code() != Code::kNotFound) return st;
      }
      return t.del(edges_, name);
    });
  }

  std::optional<nlohmann::json> setting(const std::string& key) override {
    auto txn = env_->read();
    std::string_view v;
    if (!txn.isOk() || !txn->get(settings_, key, &v).isOk()) return std::nullopt;
    auto j = nlohmann::json::parse(v, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  Status putSetting(const std::string& key, const nlohmann::json& value) override {
    return write([&](WriteTxn& t) { return t.put(settings_, key, dumpJson(value)); });
  }

  std::vector<std::pair<std::string, nlohmann::json>> settings() override {
    std::vector<std::pair<std::string, nlohmann::json>> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(settings_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      auto j = nlohmann::json::parse(c.value(), nullptr, false);
      if (!j.is_discarded()) out.emplace_back(std::string(c.key()), std::move(j));
    }
    return out;
  }

  // --- sign-in failures: in memory (an embedded core is the only one counting) ---
  int signInFailures(const std::string& key, int64_t now_ms, int64_t window_ms) override {
    std::lock_guard lock(failures_mu_);
    auto it = failures_.find(key);
    if (it == failures_.end()) return 0;
    if (now_ms - it->second.start_ms > window_ms) {
      failures_.erase(it);
      return 0;
    }
    return it->second.count;
  }

  void recordSignInFailure(const std::string& key, int64_t now_ms, int64_t window_ms) override {
    std::lock_guard lock(failures_mu_);
    if (failures_.size() > 100000) failures_.clear();  // bound memory under a spray
    auto& w = failures_[key];
    if (w.count == 0 || now_ms - w.start_ms > window_ms) {
      w.count = 0;
      w.start_ms = now_ms;
    }
    ++w.count;
  }

 private:
  template <typename F>
  Status write(F&& fn, bool commit = true) {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    Status st = fn(*txn);
    if (!st.isOk() || !commit) return st;
    return txn->commit();
  }

  template <typename F>
  Status updateEdge(const std::string& name, F&& change) {
    return write([&](WriteTxn& t) -> Status {
      std::string_view v;
      if (!t.get(edges_, name, &v).isOk()) return Status(Code::kNotFound, "no edge " + name);
      Edge e = edgeFrom(v);
      change(e);
      return t.put(edges_, name, edgeValue(e));
    });
  }

  std::shared_ptr<LmdbEnv> env_;
  Dbi edges_ = 0, edge_secrets_ = 0;
  Dbi users_ = 0, orgs_ = 0, org_members_ = 0, teams_ = 0, team_members_ = 0, repo_settings_ = 0, grants_ = 0,
      tokens_ = 0, audit_ = 0, settings_ = 0;
  std::mutex seq_mu_;
  int64_t next_seq_ = 1;  // GUARDED_BY(seq_mu_)
  struct Window {
    int count = 0;
    int64_t start_ms = 0;
  };
  std::mutex failures_mu_;
  std::unordered_map<std::string, Window> failures_;  // GUARDED_BY(failures_mu_)
};

}  // namespace

std::string_view roleName(Role r) {
  switch (r) {
    case Role::kRead: return "read";
    case Role::kWrite: return "write";
    case Role::kAdmin: return "admin";
    case Role::kNone: break;
  }
  return "none";
}

Result<Role> parseRole(std::string_view s) {
  if (s == "read") return Role::kRead;
  if (s == "write") return Role::kWrite;
  if (s == "admin") return Role::kAdmin;
  if (s == "none") return Role::kNone;
  return Status(Code::kInvalidArgument, "role must be read, write, admin or none");
}

nlohmann::json User::toJson() const {
  return {{"name", name}, {"email", email}, {"admin", admin}, {"disabled", disabled}, {"source", source},
          {"created", created_ms}};
}

nlohmann::json AccessToken::toJson() const {
  return {{"id", id}, {"user", user}, {"name", name}, {"scopes", scopes}, {"created", created_ms}, {"expires", expires_ms}};
}

nlohmann::json AuditEntry::toJson() const {
  return {{"seq", seq},       {"time", time_ms},     {"actor", actor},   {"source", source},
          {"action", action}, {"object", object},    {"outcome", outcome}, {"detail", detail}};
}

Status validateAccountName(std::string_view name) {
  if (name.size() < 2 || name.size() > 64) return Status(Code::kInvalidArgument, "names are 2 to 64 characters");
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) {
    return Status(Code::kInvalidArgument, "names start and end with a lower-case letter or digit");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (alnum(c)) continue;
    if ((c == '.' || c == '_' || c == '-') && alnum(name[i + 1])) continue;
    return Status(Code::kInvalidArgument, "names are lower-case letters and digits, separated by single '.', '_' or '-'");
  }
  return Status::ok();
}

nlohmann::json Edge::toJson() const {
  auto time = [](int64_t ms) { return ms == 0 ? nlohmann::json(nullptr) : nlohmann::json(formatRfc3339(ms)); };
  return {{"name", name},
          {"site", site},
          {"state", registered() ? "registered" : "pending"},
          {"created_at", formatRfc3339(created_ms)},
          {"registered_at", time(registered_ms)},
          {"last_seen", time(last_seen_ms)},
          {"settings", settings.is_object() ? settings : nlohmann::json::object()}};
}

Status validateEdgeName(std::string_view name) {
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  bool ok = !name.empty() && name.size() <= 63 && lower_alnum(name.front());
  for (size_t i = 1; ok && i < name.size(); ++i) ok = lower_alnum(name[i]) || name[i] == '-';
  if (!ok) {
    return Status(Code::kNameInvalid,
                  "edge names are 1 to 63 lower-case letters, digits and '-', starting with a letter or digit");
  }
  if (name == "register" || name == "self") return Status(Code::kNameInvalid, "the edge name \"" + std::string(name) + "\" is reserved");
  return Status::ok();
}

Status validateEdgeSettings(const nlohmann::json& settings) {
  JsonBody b(settings, "settings");
  if (auto ttl = b.string("tag_ttl", {.max = 32})) {
    auto d = parseDurationMs(*ttl);
    if (!d.isOk()) b.fail("tag_ttl", d.status().message() + " (a duration such as \"60s\" or \"5m\")");
    else if (*d > 365ll * 86'400'000) b.fail("tag_ttl", "must be at most 365d");
  }
  if (auto budget = b.string("cache_budget", {.max = 32})) {
    auto n = parseEdgeCacheBudget(*budget);
    if (!n.isOk()) b.fail("cache_budget", n.status().message() + " (a size such as \"10GiB\" or \"512m\")");
  }
  if (auto patterns = b.strings("repositories", {.max_items = 100, .max = 256})) {
    for (const auto& p : *patterns) {
      if (Status st = validateRepositoryPattern(p); !st.isOk()) {
        b.fail("repositories", st.message());
        break;
      }
    }
  }
  if (auto prefetch = b.rawObject("prefetch")) {
    auto policy = PrefetchPolicy::fromJson(*prefetch);
    if (!policy.isOk()) return Status(Code::kInvalidArgument, "settings." + policy.status().message());
  }
  auto high = b.integer("high_watermark", {.min = 1, .max = 100});
  auto low = b.integer("low_watermark", {.min = 1, .max = 100});
  WHARF_RETURN_IF_ERROR(b.finish());
  if (high.has_value() != low.has_value()) {
    b.fail(high ? "high_watermark" : "low_watermark", "high_watermark and low_watermark are set together");
  } else if (high && *low >= *high) {
    b.fail("low_watermark", "must be below high_watermark");
  }
  return b.status();
}

nlohmann::json canonicalEdgeSettings(const nlohmann::json& settings) {
  nlohmann::json out = settings;
  if (out.contains("cache_budget") && out["cache_budget"].is_string()) {
    auto n = parseEdgeCacheBudget(out["cache_budget"].get<std::string>());
    if (n.isOk()) {
      std::string text = std::to_string(*n);
      for (auto [unit, shift] : {std::pair{'t', 40}, {'g', 30}, {'m', 20}, {'k', 10}}) {
        if (*n % (int64_t{1} << shift) == 0) {
          text = std::to_string(*n >> shift) + unit;
          break;
        }
      }
      out["cache_budget"] = text;
    }
  }
  return out;
}

Result<int64_t> parseEdgeCacheBudget(const std::string& text) {
  // parseSize reads one-letter units ("10g"); the long forms ("10GiB", "10GB") are
  // the same binary multiples.
  std::string s = text;
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s.size() > 3 && s.compare(s.size() - 2, 2, "ib") == 0 && std::isalpha(static_cast<unsigned char>(s[s.size() - 3]))) {
    s.resize(s.size() - 2);
  } else if (s.size() > 2 && s.back() == 'b' && std::isalpha(static_cast<unsigned char>(s[s.size() - 2]))) {
    s.pop_back();
  }
  auto n = parseSize(s);
  if (!n.isOk()) return Status(Code::kInvalidArgument, "\"" + text + "\" is not a size such as \"10GiB\"");
  if (*n <= 0) return Status(Code::kInvalidArgument, "must be more than 0 bytes");
  return n;
}

Result<std::unique_ptr<IdentityStore>> openLmdbIdentityStore(std::shared_ptr<LmdbEnv> env) {
  auto store = std::make_unique<LmdbIdentityStore>(std::move(env));
  WHARF_RETURN_IF_ERROR(store->init());
  return std::unique_ptr<IdentityStore>(std::move(store));
}

}  // namespace wharf
