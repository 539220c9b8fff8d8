#include "core/auth/ldap_directory.h"

#include <ldap.h>
#include <sys/time.h>

#include <algorithm>
#include <memory>
#include <set>

#include "shared/base/json_body.h"
#include "shared/base/log.h"

namespace wharf {
namespace {

struct LdapFree {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
using LdapPtr = std::unique_ptr<LDAP, LdapFree>;

Status ldapError(const std::string& what, int rc) {
  Code code = rc == LDAP_INVALID_CREDENTIALS ? Code::kUnauthorized
              : (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT) ? Code::kUnavailable
                                                                                             : Code::kInternal;
  return Status(code, "ldap " + what + ": " + ldap_err2string(rc));
}

Result<LdapPtr> connect(const LdapConfig& c) {
  LDAP* raw = nullptr;
  int rc = ldap_initialize(&raw, c.url.c_str());
  if (rc != LDAP_SUCCESS) return ldapError("initialize " + c.url, rc);
  LdapPtr ld(raw);
  int version = LDAP_VERSION3;
  ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  timeval tv{static_cast<time_t>(c.timeout_ms / 1000), static_cast<suseconds_t>((c.timeout_ms % 1000) * 1000)};
  ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &tv);
  if (c.url.rfind("ldaps://", 0) == 0 || c.start_tls) {
    int require = c.insecure_skip_verify ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND;
    ldap_set_option(ld.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &require);
    if (!c.ca_file.empty()) ldap_set_option(ld.get(), LDAP_OPT_X_TLS_CACERTFILE, c.ca_file.c_str());
    int zero = 0;
    ldap_set_option(ld.get(), LDAP_OPT_X_TLS_NEWCTX, &zero);
  }
  if (c.start_tls) {
    rc = ldap_start_tls_s(ld.get(), nullptr, nullptr);
    if (rc != LDAP_SUCCESS) return ldapError("StartTLS", rc);
  }
  return ld;
}

Status bind(LDAP* ld, const std::string& dn, const std::string& password) {
  // An empty password is an "unauthenticated bind" that servers accept: never.
  if (password.empty()) return Status(Code::kUnauthorized, "ldap bind: empty password");
  berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
  int rc = ldap_sasl_bind_s(ld, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
  if (rc != LDAP_SUCCESS) return ldapError("bind", rc);
  return Status::ok();
}

struct Entry {
  std::string dn;
  std::map<std::string, std::vector<std::string>> attrs;  // lower-cased attribute names
  std::string first(const std::string& attr) const {
    std::string key = attr;
    std::transform(key.begin(), key.end(), key.begin(), ::tolower);
    auto it = attrs.find(key);
    return it == attrs.end() || it->second.empty() ? "" : it->second.front();
  }
};

Result<std::vector<Entry>> search(LDAP* ld, const LdapConfig& c, const std::string& base, const std::string& filter,
                                  std::vector<std::string> attrs) {
  std::vector<char*> attr_ptrs;
  for (auto& a : attrs) attr_ptrs.push_back(a.data());
  attr_ptrs.push_back(nullptr);
  timeval tv{static_cast<time_t>(c.timeout_ms / 1000), 0};
  LDAPMessage* res = nullptr;
  int rc = ldap_search_ext_s(ld, base.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(), attr_ptrs.data(), 0, nullptr,
                             nullptr, &tv, 100000, &res);
  std::unique_ptr<LDAPMessage, int (*)(LDAPMessage*)> guard(res, ldap_msgfree);
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) return ldapError("search " + base, rc);
  std::vector<Entry> out;
  for (LDAPMessage* e = ldap_first_entry(ld, res); e != nullptr; e = ldap_next_entry(ld, e)) {
    Entry entry;
    if (char* dn = ldap_get_dn(ld, e)) {
      entry.dn = dn;
      ldap_memfree(dn);
    }
    for (const auto& a : attrs) {
      berval** vals = ldap_get_values_len(ld, e, a.c_str());
      if (vals == nullptr) continue;
      std::string key = a;
      std::transform(key.begin(), key.end(), key.begin(), ::tolower);
      for (int i = 0; vals[i] != nullptr; ++i) entry.attrs[key].emplace_back(vals[i]->bv_val, vals[i]->bv_len);
      ldap_value_free_len(vals);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s;
}

// Directory DNs compare case-insensitively and without spaces after commas.
std::string normDn(const std::string& dn) {
  std::string out;
  for (size_t i = 0; i < dn.size(); ++i) {
    if (dn[i] == ' ' && i > 0 && dn[i - 1] == ',') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(dn[i])));
  }
  return out;
}

}  // namespace

std::string escapeFilterValue(std::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (c == '\\' || c == '*' || c == '(' || c == ')' || c == '\0' || c >= 0x80) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "\\%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Result<LdapConfig> LdapConfig::fromJson(const nlohmann::json& j) {
  JsonBody b(j, "ldap");
  LdapConfig c;
  c.enabled = b.boolean("enabled").value_or(true);
  c.start_tls = b.boolean("start_tls").value_or(false);
  c.insecure_skip_verify = b.boolean("insecure_skip_verify").value_or(false);
  for (auto [k, out] : {std::pair{"url", &c.url}, {"ca_file", &c.ca_file}, {"bind_dn", &c.bind_dn},
                        {"bind_password", &c.bind_password}, {"user_base", &c.user_base}, {"user_filter", &c.user_filter},
                        {"user_attr", &c.user_attr}, {"email_attr", &c.email_attr}, {"group_base", &c.group_base},
                        {"group_filter", &c.group_filter}, {"group_name_attr", &c.group_name_attr},
                        {"group_member_attr", &c.group_member_attr}}) {
    if (auto v = b.string(k, {.max = 4096})) *out = *v;
  }
  if (auto map = b.object("team_map")) {
    for (auto it = map->raw().begin(); it != map->raw().end(); ++it) {
      auto team = map->string(it.key(), {.max = 512});
      if (team && team->find('/') == std::string::npos) map->fail(it.key(), "expected \"org/team\"");
      if (!map->status().isOk()) return map->status();
      c.team_map[lower(it.key())] = *team;
    }
  }
  if (auto v = b.integer("sync_interval_seconds", {.min = 0, .max = 365 * 86400})) c.sync_interval_ms = *v * 1000;
  if (auto v = b.integer("timeout_seconds", {.min = 1, .max = 3600})) c.timeout_ms = *v * 1000;
  WHARF_RETURN_IF_ERROR(b.finish());
  if (c.url.rfind("ldap://", 0) != 0 && c.url.rfind("ldaps://", 0) != 0) {
    return Status(Code::kInvalidArgument, "ldap: url must start with ldap:// or ldaps://");
  }
  if (c.start_tls && c.url.rfind("ldaps://", 0) == 0) {
    return Status(Code::kInvalidArgument, "ldap: start_tls is for ldap:// URLs");
  }
  if (c.user_base.empty()) return Status(Code::kInvalidArgument, "ldap: user_base is required");
  if (c.user_filter.empty() || c.user_filter.front() != '(' || c.user_filter.back() != ')') {
    return Status(Code::kInvalidArgument, "ldap: user_filter must be a parenthesized filter");
  }
  if (j.contains("team_map")) {
    if (!j["team_map"].is_object()) return Status(Code::kInvalidArgument, "ldap: team_map maps group names to org/team");
    for (auto it = j["team_map"].begin(); it != j["team_map"].end(); ++it) {
      if (!it.value().is_string() || it.value().get<std::string>().find('/') == std::string::npos) {
        return Status(Code::kInvalidArgument, "ldap: team_map values are \"org/team\"");
      }
      c.team_map[lower(it.key())] = it.value().get<std::string>();
    }
  }
  if (j.contains("sync_interval_seconds")) c.sync_interval_ms = j.value("sync_interval_seconds", int64_t{3600}) * 1000;
  if (j.contains("timeout_seconds")) c.timeout_ms = j.value("timeout_seconds", int64_t{10}) * 1000;
  if (c.sync_interval_ms < 60'000 && c.sync_interval_ms != 0) {
    return Status(Code::kInvalidArgument, "ldap: sync_interval_seconds is 0 (never) or at least 60");
  }
  return c;
}

nlohmann::json LdapConfig::toJson(bool redact) const {
  nlohmann::json j = {{"enabled", enabled},
                      {"url", url},
                      {"start_tls", start_tls},
                      {"ca_file", ca_file},
                      {"insecure_skip_verify", insecure_skip_verify},
                      {"bind_dn", bind_dn},
                      {"user_base", user_base},
                      {"user_filter", user_filter},
                      {"user_attr", user_attr},
                      {"email_attr", email_attr},
                      {"group_base", group_base},
                      {"group_filter", group_filter},
                      {"group_name_attr", group_name_attr},
                      {"group_member_attr", group_member_attr},
                      {"team_map", team_map},
                      {"sync_interval_seconds", sync_interval_ms / 1000},
                      {"timeout_seconds", timeout_ms / 1000}};
  if (!redact) j["bind_password"] = bind_password;
  return j;
}

nlohmann::json SyncReport::toJson() const {
  return {{"users_seen", users_seen},       {"created", created},         {"updated", updated},
          {"disabled", disabled},           {"skipped", skipped},         {"members_added", members_added},
          {"members_removed", members_removed}, {"problems", problems}};
}

Status LdapDirectory::test(const LdapConfig& c) {
  auto ld = connect(c);
  if (!ld.isOk()) return ld.status();
  return bind(ld->get(), c.bind_dn, c.bind_password);
}

Result<DirectoryUser> LdapDirectory::authenticate(const LdapConfig& c, const std::string& user,
                                                  const std::string& password) {
  const Status denied(Code::kUnauthorized, "invalid credentials");
  if (password.empty() || user.empty() || user.size() > 256) return denied;
  auto ld = connect(c);
  if (!ld.isOk()) return ld.status();
  WHARF_RETURN_IF_ERROR(bind(ld->get(), c.bind_dn, c.bind_password));
  std::string filter = "(&" + c.user_filter + "(" + c.user_attr + "=" + escapeFilterValue(user) + "))";
  auto found = search(ld->get(), c, c.user_base, filter, {c.user_attr, c.email_attr});
  if (!found.isOk()) return found.status();
  if (found->size() != 1) return denied;  // none, or ambiguous
  const Entry& e = found->front();
  // Bind as the user on a fresh connection: their password is checked by the directory.
  auto user_ld = connect(c);
  if (!user_ld.isOk()) return user_ld.status();
  Status st = bind(user_ld->get(), e.dn, password);
  if (!st.isOk()) return st.code() == Code::kUnauthorized ? denied : st;
  return DirectoryUser{lower(e.first(c.user_attr)), e.dn, e.first(c.email_attr)};
}

Result<SyncReport> LdapDirectory::sync(const LdapConfig& c, IdentityStore& identity, Clock& clock) {
  SyncReport report;
  auto ld = connect(c);
  if (!ld.isOk()) return ld.status();
  WHARF_RETURN_IF_ERROR(bind(ld->get(), c.bind_dn, c.bind_password));
  auto users = search(ld->get(), c, c.user_base, "(&" + c.user_filter + "(" + c.user_attr + "=*))",
                      {c.user_attr, c.email_attr});
  if (!users.isOk()) return users.status();
  std::map<std::string, std::string> dn_to_name;  // normalized DN -> account name
  std::set<std::string> seen;
  for (const auto& e : *users) {
    std::string name = lower(e.first(c.user_attr));
    ++report.users_seen;
    if (!validateAccountName(name).isOk()) {
      ++report.skipped;
      report.problems.push_back("directory user \"" + name + "\" is not a valid account name");
      continue;
    }
    dn_to_name[normDn(e.dn)] = name;
    seen.insert(name);
    auto existing = identity.user(name);
    if (!existing.isOk()) {
      User u;
      u.name = name;
      u.email = e.first(c.email_attr);
      u.source = "ldap";
      u.created_ms = clock.nowMillis();
      Status st = identity.createUser(u);
      if (st.isOk()) {
        ++report.created;
      } else {
        ++report.skipped;
        report.problems.push_back(name + ": " + st.message());
      }
    } else if (existing->source != "ldap") {
      ++report.skipped;
      report.problems.push_back(name + " is a local account; the directory user of that name is not synced");
    } else if (existing->disabled || existing->email != e.first(c.email_attr)) {
      existing->disabled = false;
      existing->email = e.first(c.email_attr);
      if (identity.putUser(*existing).isOk()) ++report.updated;
    }
  }
  // Directory users who left the directory are disabled (their history stays).
  std::string after;
  for (;;) {
    auto page = identity.users(after, 500);
    for (auto& u : page) {
      if (u.source == "ldap" && !u.disabled && !seen.count(u.name)) {
        u.disabled = true;
        if (identity.putUser(u).isOk()) {
          ++report.disabled;
          report.narrowed.push_back(u.name);
        }
      }
    }
    if (page.size() < 500) break;
    after = page.back().name;
  }
  // Mapped groups set their teams' directory members.
  if (!c.group_base.empty() && !c.team_map.empty()) {
    auto groups = search(ld->get(), c, c.group_base, c.group_filter, {c.group_name_attr, c.group_member_attr});
    if (!groups.isOk()) return groups.status();
    for (const auto& g : *groups) {
      auto target = c.team_map.find(lower(g.first(c.group_name_attr)));
      if (target == c.team_map.end()) continue;
      std::string org = target->second.substr(0, target->second.find('/'));
      std::string team = target->second.substr(target->second.find('/') + 1);
      if (!identity.orgExists(org)) {
        report.problems.push_back("team map: no organization " + org);
        continue;
      }
      if (!identity.teamExists(org, team)) (void)identity.createTeam(org, team, "synced from the directory");
      std::set<std::string> want;
      std::string key = lower(c.group_member_attr);
      auto it = g.attrs.find(key);
      if (it != g.attrs.end()) {
        for (const auto& member : it->second) {
          auto n = dn_to_name.find(normDn(member));
          if (n != dn_to_name.end()) want.insert(n->second);
        }
      }
      std::set<std::string> have;
      for (const auto& m : identity.teamMembers(org, team)) have.insert(m);
      for (const auto& m : want) {
        if (!have.count(m) && identity.addTeamMember(org, team, m).isOk()) ++report.members_added;
      }
      for (const auto& m : have) {
        auto u = identity.user(m);
        // Only directory users are managed by the sync; local members stay.
        if (!want.count(m) && u.isOk() && u->source == "ldap" && identity.removeTeamMember(org, team, m).isOk()) {
          ++report.members_removed;
          report.narrowed.push_back(m);
        }
      }
    }
  }
  return report;
}

}  // namespace wharf
