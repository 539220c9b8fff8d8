// The admin REST API under /api/v1: users, organizations, teams, memberships,
// repositories, permissions, access tokens, audit log, key rotation. (Edges, also under
// /api/v1, are their own family: edges.cc.)
//
// Every request is authenticated (Basic with a password or access token, or a Bearer
// token), loaded, then authorized on the object's owning namespace. Request fields are
// allow-listed. The handler runs on a worker thread: it may pay the password KDF and
// it writes transactions.
#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "core/auth/revocations.h"
#include "core/auth/ldap_directory.h"
#include "core/events/event_log.h"
#include "core/jobs/job_runner.h"
#include "shared/base/log.h"
#include "shared/http/url.h"
#include "shared/oci/names.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

using nlohmann::json;

using Reply = ApiReply;
Reply denied(const std::string& why) { return fail(Status(Code::kDenied, why)); }

// Field limits of the admin API's bodies.
constexpr size_t kMaxName = 255;         // account, team and repository names (validated further)
constexpr size_t kMaxPassword = 1024;
constexpr size_t kMaxEmail = 320;
constexpr size_t kMaxDescription = 1024;
constexpr size_t kMaxTokenName = 100;

class Admin {
 public:
  Admin(ApiContext& ctx, const Request& req, std::string body) : ctx_(ctx), req_(req), raw_(std::move(body)) {}

  Reply run() {
    auto who = authenticate();
    if (!who.isOk()) return fail(who.status());
    me_ = std::move(who).value();
    caller_.account = me_;
    caller_.peer = req_.peer;
    auto body = JsonBody::parse(raw_);
    if (!body.isOk()) return fail(body.status());
    body_ = std::move(body).value();
    auto parts = splitPath(std::string_view(req_.path).substr(std::string_view("/api/v1").size()));
    if (parts.empty()) return fail(Status(Code::kNotFound, "no such endpoint"));
    const std::string& m = req_.method;
    if (parts[0] == "users") return users(parts, m);
    if (parts[0] == "orgs") return orgs(parts, m);
    if (parts[0] == "repositories") return repositories(m);
    if (parts[0] == "audit" && m == "GET") return auditQuery();
    if (parts[0] == "ldap") return ldap(parts, m);
    if (parts == std::vector<std::string>{"auth", "keys", "rotate"} && m == "POST") return rotate();
    if (parts[0] == "whoami" && m == "GET") return ok({{"name", me_.name}, {"admin", me_.admin}});
    return fail(Status(Code::kNotFound, "no such endpoint"));
  }

 private:
  Result<Account> authenticate() { return authenticateApiCaller(ctx_, req_); }

  void record(const std::string& action, const std::string& object, const std::string& detail = "") {
    ctx_.audit->record(me_.name, req_.peer, action, object, "success", detail);
    revokeFor(action, object, detail);
  }
  // A change the audit log records as another action that narrows access all the same.
  void narrowed(const std::string& action, const std::string& object) { revokeFor(action, object, ""); }

  // The one table of changes that narrow access in tokens already issued (at the core
  // and at every edge): each revokes what it may have narrowed. Broader than needed at
  // times (a changed grant revokes every token of the repository); clients then get a
  // new token, which says what is allowed now.
  void revokeFor(const std::string& action, const std::string& object, const std::string& detail) {
    Revocations* r = ctx_.auth != nullptr ? ctx_.auth->revocations() : nullptr;
    if (r == nullptr) return;
    auto after = [](const std::string& s) { return s.substr(s.rfind('/') + 1); };
    Status st;
    if (action == "user.narrowed" || action == "user.delete") {
      st = r->add("subject", object);
    } else if (action == "token.revoke") {
      st = r->add("via", detail);
    } else if (action == "org.member.remove" || action == "team.member.remove") {
      st = r->add("subject", after(object));
    } else if (action == "team.delete" || action == "org.delete") {
      st = r->add("repository", "*");  // whatever the team's or organization's grants reached
    } else if (action == "repository.private" || action == "repository.delete" ||
               action == "permission.narrow") {
      st = r->add("repository", object);
    }
    if (!st.isOk()) logError("cannot revoke issued tokens", {{"action", action}, {"error", st.message()}});
  }

  bool isOwner(const std::string& org) { return me_.admin || ctx_.identity->orgRole(org, me_.name) == "owner"; }

  std::pair<std::string, size_t> page() {
    size_t limit = 100;
    if (auto l = req_.queryParam("limit"); l && !l->empty() && l->size() < 6 &&
                                           l->find_first_not_of("0123456789") == std::string::npos) {
      limit = std::clamp<size_t>(std::stoul(*l), 1, 1000);
    }
    return {req_.queryParam("after").value_or(""), limit};
  }

  // --- users and their access tokens ---
  Reply users(const std::vector<std::string>& p, const std::string& m) {
    IdentityStore& id = *ctx_.identity;
    if (p.size() == 1) {
      if (!me_.admin) return denied("only administrators manage users");
      if (m == "GET") {
        auto [after, limit] = page();
        json items = json::array();
        auto list = id.users(after, limit);
        for (const auto& u : list) items.push_back(u.toJson());
        json out = {{"items", items}};
        if (list.size() == limit) out["next"] = list.back().name;
        return ok(out);
      }
      if (m == "POST") {
        auto name = body_.string("name", {.required = true, .max = kMaxName});
        auto pw = body_.string("password", {.required = true, .max = kMaxPassword});
        auto email = body_.string("email", {.max = kMaxEmail});
        auto admin = body_.boolean("admin");
        WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
        User u;
        u.name = *name;
        WHARF_RETURN_IF_ERROR_REPLY(validateAccountName(u.name));
        if (pw->size() < 8) return fail(Status(Code::kInvalidArgument, "password: at least 8 characters"));
        u.password_hash = hashPassword(*pw);
        u.email = email.value_or("");
        u.admin = admin.value_or(false);
        u.created_ms = RealClock::instance().nowMillis();
        WHARF_RETURN_IF_ERROR_REPLY(id.createUser(u));
        record("user.create", u.name);
        return ok(u.toJson(), 201);
      }
      return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    }
    const std::string& name = p[1];
    bool self = name == me_.name;
    if (!self && !me_.admin) return denied("you may only see and change your own account");
    auto user = id.user(name);
    if (!user.isOk()) return fail(user.status());
    if (p.size() == 2) {
      if (m == "GET") return ok(user->toJson());
      if (m == "PATCH") {
        for (const char* k : {"admin", "disabled"}) {
          if (!me_.admin && body_.has(k)) return denied("only administrators change \"" + std::string(k) + "\"");
        }
        auto email = body_.string("email", {.max = kMaxEmail});
        auto pw = body_.string("password", {.max = kMaxPassword});
        auto admin = body_.boolean("admin");
        auto disabled = body_.boolean("disabled");
        WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
        if (email) user->email = *email;
        if (pw) {
          if (pw->size() < 8) return fail(Status(Code::kInvalidArgument, "password: at least 8 characters"));
          user->password_hash = hashPassword(*pw);
        }
        // Narrowed: disabled, no longer an administrator, or a new password (whoever had
        // the old one loses the tokens it bought).
        bool narrowing = (disabled && *disabled && !user->disabled) || (admin && !*admin && user->admin) || pw;
        if (admin) user->admin = *admin;
        if (disabled) user->disabled = *disabled;
        // Refresh tokens issued until now end too (tokens issued from here on carry a
        // later iat: the revocation below moves it on).
        if (narrowing) user->tokens_before_s = ctx_.auth->issuedAt();
        WHARF_RETURN_IF_ERROR_REPLY(id.putUser(*user));
        ctx_.auth->forgetCaches();
        record("user.update", name, pw ? "password changed" : "");
        if (narrowing) narrowed("user.narrowed", name);
        return ok(user->toJson());
      }
      if (m == "DELETE") {
        if (!me_.admin) return denied("only administrators delete users");
        WHARF_RETURN_IF_ERROR_REPLY(id.deleteUser(name));
        ctx_.auth->forgetCaches();
        record("user.delete", name);
        return ok(json::object(), 204);
      }
      return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    }
    if (p[2] != "tokens") return fail(Status(Code::kNotFound, "no such endpoint"));
    if (p.size() == 3 && m == "GET") {
      json items = json::array();
      for (const auto& t : id.accessTokens(name)) items.push_back(t.toJson());
      return ok({{"items", items}});
    }
    if (p.size() == 3 && m == "POST") {
      auto token_name = body_.string("name", {.max = kMaxTokenName});
      auto scopes = body_.strings("scopes", {.max_items = 50, .max = 512});
      auto days = body_.integer("expires_in_days", {.min = 0, .max = 3650});  // 0: never
      WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
      int64_t expires = days.value_or(0) == 0 ? 0 : RealClock::instance().nowMillis() + *days * 86'400'000;
      auto created = ctx_.auth->createAccessToken(name, token_name.value_or(""), scopes.value_or(std::vector<std::string>{}),
                                                  expires);
      if (!created.isOk()) return fail(created.status());
      record("token.create", name, created->first.id);
      json out = created->first.toJson();
      out["secret"] = created->second;  // shown once
      return ok(out, 201);
    }
    if (p.size() == 4 && m == "DELETE") {
      auto t = id.accessToken(p[3]);
      if (!t.isOk() || t->user != name) return fail(Status(Code::kNotFound, "no such access token"));
      WHARF_RETURN_IF_ERROR_REPLY(id.deleteAccessToken(p[3]));
      ctx_.auth->forgetCaches();
      record("token.revoke", name, p[3]);
      return ok(json::object(), 204);
    }
    return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
  }

  // --- organizations, members, teams ---
  Reply orgs(const std::vector<std::string>& p, const std::string& m) {
    IdentityStore& id = *ctx_.identity;
    if (p.size() == 1) {
      if (m == "GET") {
        auto [after, limit] = page();
        auto list = id.orgs(after, limit);
        json out = {{"items", list}};
        if (list.size() == limit) out["next"] = list.back();
        return ok(out);
      }
      if (m == "POST") {
        auto given = body_.string("name", {.required = true, .max = kMaxName});
        WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
        std::string name = *given;
        WHARF_RETURN_IF_ERROR_REPLY(validateAccountName(name));
        WHARF_RETURN_IF_ERROR_REPLY(id.createOrg(name, me_.name));
        record("org.create", name);
        return ok({{"name", name}}, 201);
      }
      return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    }
    const std::string& org = p[1];
    if (!id.orgExists(org)) return fail(Status(Code::kNotFound, "no organization " + org));
    bool member = me_.admin || !id.orgRole(org, me_.name).empty();
    if (!member) return fail(Status(Code::kNotFound, "no organization " + org));  // do not reveal it
    if (p.size() == 2) {
      if (m == "GET") {
        json members = json::array();
        for (const auto& [u, role] : id.orgMembers(org)) members.push_back({{"name", u}, {"role", role}});
        return ok({{"name", org}, {"members", members}, {"teams", id.teams(org)}});
      }
      if (m == "DELETE") {
        if (!isOwner(org)) return denied("only owners delete an organization");
        WHARF_RETURN_IF_ERROR_REPLY(id.deleteOrg(org));
        record("org.delete", org);
        return ok(json::object(), 204);
      }
      return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    }
    if (p[2] == "members" && p.size() == 4) {
      if (!isOwner(org)) return denied("only owners change membership");
      if (m == "PUT") {
        std::string role = body_.string("role", {.max = 16}).value_or("member");
        WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
        if (role != "owner" && role != "member") return fail(Status(Code::kInvalidArgument, "role is owner or member"));
        bool demoted = role == "member" && id.orgRole(org, p[3]) == "owner";
        WHARF_RETURN_IF_ERROR_REPLY(id.setOrgMember(org, p[3], role));
        record("org.member.set", org + "/" + p[3], role);
        if (demoted) narrowed("org.member.remove", org + "/" + p[3]);  // an owner's grants went
        return ok({{"name", p[3]}, {"role", role}});
      }
      if (m == "DELETE") {
        WHARF_RETURN_IF_ERROR_REPLY(id.removeOrgMember(org, p[3]));
        record("org.member.remove", org + "/" + p[3]);
        return ok(json::object(), 204);
      }
    }
    if (p[2] == "teams") {
      if (p.size() == 3 && m == "GET") return ok({{"items", id.teams(org)}});
      if (!isOwner(org)) return denied("only owners manage teams");
      if (p.size() == 3 && m == "POST") {
        auto team_name = body_.string("name", {.required = true, .max = kMaxName});
        auto description = body_.string("description", {.max = kMaxDescription});
        WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
        const std::string& team = *team_name;
        WHARF_RETURN_IF_ERROR_REPLY(validateAccountName(team));
        WHARF_RETURN_IF_ERROR_REPLY(id.createTeam(org, team, description.value_or("")));
        record("team.create", org + "/" + team);
        return ok({{"name", team}}, 201);
      }
      if (p.size() == 4 && m == "DELETE") {
        WHARF_RETURN_IF_ERROR_REPLY(id.deleteTeam(org, p[3]));
        record("team.delete", org + "/" + p[3]);
        return ok(json::object(), 204);
      }
      if (p.size() == 5 && p[4] == "members" && m == "GET") return ok({{"items", id.teamMembers(org, p[3])}});
      if (p.size() == 6 && p[4] == "members" && m == "PUT") {
        WHARF_RETURN_IF_ERROR_REPLY(id.addTeamMember(org, p[3], p[5]));
        record("team.member.add", org + "/" + p[3] + "/" + p[5]);
        return ok({{"name", p[5]}});
      }
      if (p.size() == 6 && p[4] == "members" && m == "DELETE") {
        WHARF_RETURN_IF_ERROR_REPLY(id.removeTeamMember(org, p[3], p[5]));
        record("team.member.remove", org + "/" + p[3] + "/" + p[5]);
        return ok(json::object(), 204);
      }
    }
    return fail(Status(Code::kNotFound, "no such endpoint"));
  }

  // --- repositories and permissions ---
  Reply repositories(const std::string& m) {
    IdentityStore& id = *ctx_.identity;
    std::string rest = req_.path.substr(std::string("/api/v1/repositories").size());
    if (!rest.empty() && rest[0] == '/') rest = rest.substr(1);
    if (rest.empty()) {
      if (m == "GET") {
        auto [after, limit] = page();
        std::string q = req_.queryParam("q").value_or("");  // a part of the name
        std::string sort = req_.queryParam("sort").value_or("name");
        if (sort != "name" && sort != "-name") return fail(Status(Code::kInvalidArgument, "sort: name or -name"));
        json items = json::array();
        std::string cursor = after;
        bool more = true;
        while (items.size() < limit && more) {
          Page chunk = ctx_.registry.metadata().repositories(cursor, limit, sort == "-name");
          more = chunk.more;
          for (const auto& r : chunk.items) {
            cursor = r;
            if (!q.empty() && r.find(q) == std::string::npos) continue;
            if (!allows(r, "pull")) continue;
            auto s = id.repoSettings(r).value_or(RepoSettings{});
            json item = {{"name", r}, {"public", s.is_public}, {"description", s.description}};
            // The namespace's organization and the teams with a role here.
            std::string ns = r.substr(0, r.find('/'));
            if (ns != r && id.orgExists(ns)) item["organization"] = ns;
            json teams = json::array();
            for (const auto& g : id.grants(r))
              if (g.kind == "team" && g.role != Role::kNone) teams.push_back({{"name", g.principal}, {"role", roleName(g.role)}});
            item["teams"] = std::move(teams);
            items.push_back(std::move(item));
            if (items.size() == limit) break;
          }
        }
        json out = {{"items", items}};
        if (items.size() == limit) out["next"] = cursor;
        return ok(out);
      }
      if (m == "POST") {
        auto given = body_.string("name", {.required = true, .max = kMaxName});
        auto is_public = body_.boolean("public");
        auto description = body_.string("description", {.max = kMaxDescription});
        WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
        const std::string& name = *given;
        WHARF_RETURN_IF_ERROR_REPLY(validateRepositoryName(name));
        if (!allows(name, "push")) return denied("you may not create repositories in this namespace");
        auto stored = ctx_.registry.metadata().repositoryExists(name);
        if (!stored.isOk()) return fail(stored.status());
        if (id.repoSettings(name) || *stored) {
          return fail(Status(Code::kConflict, "repository " + name + " exists"));
        }
        RepoSettings s{is_public.value_or(false), description.value_or("")};
        WHARF_RETURN_IF_ERROR_REPLY(id.putRepoSettings(name, s));
        WHARF_RETURN_IF_ERROR_REPLY(ctx_.registry.metadata().createRepository(name, RealClock::instance().nowMillis()));
        record("repository.create", name, s.is_public ? "public" : "private");
        return ok({{"name", name}, {"public", s.is_public}, {"description", s.description}}, 201);
      }
      return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    }
    // <name>[/permissions[/<users|teams>/<principal>]]
    std::string name = rest, sub;
    if (auto pos = rest.find("/permissions"); pos != std::string::npos) {
      name = rest.substr(0, pos);
      sub = rest.substr(pos + 1);
    }
    WHARF_RETURN_IF_ERROR_REPLY(validateRepositoryName(name));
    auto stored = ctx_.registry.metadata().repositoryExists(name);
    if (!stored.isOk()) return fail(stored.status());
    bool exists = id.repoSettings(name).has_value() || *stored;
    // Unknown and invisible look the same.
    if (!exists || !allows(name, "pull")) return fail(Status(Code::kNameUnknown, "repository name not known to registry"));
    bool repo_admin = allows(name, "delete");
    if (sub.empty()) {
      auto s = id.repoSettings(name).value_or(RepoSettings{});
      if (m == "GET") return ok({{"name", name}, {"public", s.is_public}, {"description", s.description}});
      if (!repo_admin) return denied("only repository administrators change " + name);
      if (m == "PATCH") {
        auto is_public = body_.boolean("public");
        auto description = body_.string("description", {.max = kMaxDescription});
        WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
        bool was_public = s.is_public;
        if (is_public) s.is_public = *is_public;
        if (description) s.description = *description;
        WHARF_RETURN_IF_ERROR_REPLY(id.putRepoSettings(name, s));
        record("repository.update", name, s.is_public ? "public" : "private");
        if (was_public && !s.is_public) narrowed("repository.private", name);
        return ok({{"name", name}, {"public", s.is_public}, {"description", s.description}});
      }
      if (m == "DELETE") {
        WHARF_RETURN_IF_ERROR_REPLY(ctx_.registry.deleteRepository(name));
        WHARF_RETURN_IF_ERROR_REPLY(id.deleteRepoSettings(name));
        record("repository.delete", name);
        emitEvent(ctx_, caller_, event_type::kRepositoryDelete, name, EventTarget{}, req_);
        return ok(json::object(), 204);
      }
      return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    }
    auto parts = splitPath(sub);
    if (parts.size() == 1 && m == "GET") {
      json items = json::array();
      for (const auto& g : id.grants(name)) {
        items.push_back({{"kind", g.kind}, {"name", g.principal}, {"role", roleName(g.role)}});
      }
      return ok({{"items", items}});
    }
    if (!repo_admin) return denied("only repository administrators change permissions of " + name);
    // teams are addressed as <team> within the repository's organization
    if ((parts.size() == 3) && (parts[1] == "users" || parts[1] == "teams") && (m == "PUT" || m == "DELETE")) {
      Grant g;
      g.kind = parts[1] == "users" ? "user" : "team";
      g.principal = parts[2];
      if (g.kind == "user" && !id.user(g.principal).isOk()) return fail(Status(Code::kNotFound, "no user " + g.principal));
      if (g.kind == "team") {
        std::string ns = name.substr(0, name.find('/'));
        if (!id.teamExists(ns, g.principal)) return fail(Status(Code::kNotFound, "no team " + ns + "/" + g.principal));
        g.principal = ns + "/" + g.principal;
      }
      if (m == "PUT") {
        auto role_name = body_.string("role", {.required = true, .max = 16});
        WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
        auto role = parseRole(*role_name);
        if (!role.isOk()) return fail(role.status());
        g.role = *role;
      }
      Role before = Role::kNone;
      for (const auto& old : id.grants(name)) {
        if (old.kind == g.kind && old.principal == g.principal) before = old.role;
      }
      WHARF_RETURN_IF_ERROR_REPLY(id.setGrant(name, g));
      record("permission.set", name, g.kind + ":" + g.principal + "=" + std::string(roleName(g.role)));
      if (g.role < before) narrowed("permission.narrow", name);
      return ok({{"kind", g.kind}, {"name", g.principal}, {"role", roleName(g.role)}});
    }
    return fail(Status(Code::kNotFound, "no such endpoint"));
  }

  bool allows(const std::string& repo, const std::string& action) {
    auto a = ctx_.auth->allowedActions(me_, repo);
    return std::find(a.begin(), a.end(), action) != a.end();
  }

  Reply auditQuery() {
    if (!me_.admin) return denied("only administrators read the audit log");
    AuditQuery q;
    q.actor = req_.queryParam("actor").value_or("");
    q.action = req_.queryParam("action").value_or("");
    q.object = req_.queryParam("object").value_or("");
    q.outcome = req_.queryParam("outcome").value_or("");
    auto num = [&](const char* k) -> int64_t {
      auto v = req_.queryParam(k);
      if (!v || v->empty() || v->size() > 18 || v->find_first_not_of("0123456789") != std::string::npos) return 0;
      return std::stoll(*v);
    };
    q.since_ms = num("since");
    q.until_ms = num("until");
    q.after_seq = num("after");
    q.limit = page().second;
    ctx_.audit->flush();
    json items = json::array();
    auto list = ctx_.identity->queryAudit(q);
    for (const auto& e : list) items.push_back(e.toJson());
    json out = {{"items", items}};
    if (list.size() == q.limit) out["next"] = list.back().seq;
    return ok(out);
  }

  Reply ldap(const std::vector<std::string>& p, const std::string& m) {
    if (!me_.admin) return denied("only administrators manage the directory");
    auto stored = ctx_.identity->setting("ldap");
    if (p.size() == 1 && m == "GET") {
      if (!stored) return ok({{"enabled", false}});
      auto c = LdapConfig::fromJson(*stored);
      if (!c.isOk()) return fail(c.status());
      return ok(c->toJson(/*redact=*/true));
    }
    if (p.size() == 1 && m == "PUT") {
      json next = body_.raw();
      // The bind password is write-only: keep the stored one unless a new one is given.
      if (!next.contains("bind_password") && stored && stored->contains("bind_password")) {
        next["bind_password"] = (*stored)["bind_password"];
      }
      auto c = LdapConfig::fromJson(next);
      if (!c.isOk()) return fail(c.status());
      WHARF_RETURN_IF_ERROR_REPLY(ctx_.identity->putSetting("ldap", c->toJson(/*redact=*/false)));
      record("ldap.configure", c->url);
      if (ctx_.directory_changed) ctx_.directory_changed();  // the ldap-sync schedule follows
      return ok(c->toJson(/*redact=*/true));
    }
    if (!stored) return fail(Status(Code::kNotFound, "no directory is configured"));
    auto c = LdapConfig::fromJson(*stored);
    if (!c.isOk()) return fail(c.status());
    if (p.size() == 2 && p[1] == "test" && m == "POST") {
      Status st = LdapDirectory::test(*c);
      if (!st.isOk()) return fail(st);
      return ok({{"status", "ok"}});
    }
    if (p.size() == 2 && p[1] == "sync" && m == "POST") {
      if (ctx_.jobs != nullptr) return syncJob(*c);
      auto report = LdapDirectory::sync(*c, *ctx_.identity, RealClock::instance());
      ctx_.auth->forgetCaches();
      if (!report.isOk()) {
        ctx_.audit->record(me_.name, req_.peer, "ldap.sync", c->url, "failure", report.status().message());
        return fail(report.status());
      }
      ctx_.auth->revokeSubjects(report->narrowed);
      record("ldap.sync", c->url, report->toJson().dump());
      return ok(report->toJson());
    }
    return fail(Status(Code::kNotFound, "no such endpoint"));
  }

  // The sync runs as an ldap-sync job (one at a time with the scheduled ones); the
  // answer waits for it, up to 5 minutes, and is the sync report plus "job" (its id).
  // Still running then: 202 {"job","state"}.
  Reply syncJob(const LdapConfig& c) {
    auto id = ctx_.jobs->submit("ldap-sync", json::object(), me_.name);
    if (!id.isOk()) return fail(id.status());
    auto job = ctx_.jobs->wait(*id, 5 * 60'000);
    if (!job.isOk()) return fail(job.status());
    if (!jobFinished(job->state)) return ok({{"job", *id}, {"state", jobStateName(job->state)}}, 202);
    if (job->state != JobState::kSucceeded) {
      Status st = job->failure();
      ctx_.audit->record(me_.name, req_.peer, "ldap.sync", c.url, "failure", st.message());
      Reply r = fail(st);
      r.body["job"] = *id;
      return r;
    }
    json out = job->result.is_object() ? job->result : json::object();
    record("ldap.sync", c.url, out.dump());
    out["job"] = *id;
    return ok(out);
  }

  Reply rotate() {
    if (!me_.admin) return denied("only administrators rotate keys");
    int64_t overlap =
        body_.integer("overlap_seconds", {.min = 0, .max = 30 * 86400}).value_or(ctx_.auth->config().token_ttl_s * 2);
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    WHARF_RETURN_IF_ERROR_REPLY(ctx_.auth->keys().rotate(overlap * 1000));
    ctx_.auth->forgetCaches();
    record("keys.rotate", "signing key");
    return ok(ctx_.auth->keys().jwks());
  }

  ApiContext& ctx_;
  const Request& req_;
  std::string raw_;
  JsonBody body_{json::object()};
  Account me_;
  Caller caller_;
};

}  // namespace

Result<Account> authenticateApiCaller(ApiContext& ctx, const Request& req) {
  const std::string* authz = req.headers.get("authorization");
  if (authz == nullptr) return Status(Code::kUnauthorized, "authentication required");
  if (authz->size() > 7 && strncasecmp(authz->c_str(), "Bearer ", 7) == 0) {
    auto bearer = ctx.auth->verifyBearer(authz->substr(7));
    if (!bearer.isOk()) return bearer.status();
    if (bearer->account.anonymous()) return Status(Code::kUnauthorized, "authentication required");
    return bearer->account;
  }
  auto a = ctx.auth->authenticateBasic(*authz, req.peer);
  ctx.audit->record(a.isOk() ? a->name : "", req.peer, "login", "api", a.isOk() ? "success" : "failure");
  return a;
}

void handleAdmin(ApiContext& ctx, const ExchangePtr& ex) {
  if (ctx.auth == nullptr) return replyError(ex, Status(Code::kNotFound, "the admin API needs authentication on"));
  serveApi(ctx, ex, kMaxApiBody, [&ctx, ex](std::string body) { return Admin(ctx, ex->request(), std::move(body)).run(); });
}

}  // namespace wharf
