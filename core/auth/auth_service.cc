#include "core/auth/auth_service.h"

#include <algorithm>
#include <set>

#include "core/auth/ldap_directory.h"
#include "core/auth/revocations.h"
#include "shared/base/ids.h"
#include "shared/base/log.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/names.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

Counter& loginCounter(const char* method, const char* outcome) {
  return MetricsRegistry::global().counter("wharf_auth_logins_total", "Credential checks by method and outcome.",
                                           std::string("method=\"") + method + "\",outcome=\"" + outcome + "\"");
}

constexpr std::string_view kPatPrefix = "wharf_pat_";
constexpr std::string_view kJoinPrefix = "wharf_join_";
constexpr std::string_view kEdgePrefix = "wharf_edge_";
constexpr int64_t kLastSeenWriteIntervalMs = 60'000;
constexpr int64_t kGoodPasswordTtlMs = 60'000;

std::string namespaceOf(const std::string& repo) {
  auto slash = repo.find('/');
  return slash == std::string::npos ? "" : repo.substr(0, slash);
}

std::vector<std::string> actionsFor(Role r) {
  switch (r) {
    case Role::kRead: return {"pull"};
    case Role::kWrite: return {"pull", "push"};
    case Role::kAdmin: return {"delete", "pull", "push"};
    case Role::kNone: break;
  }
  return {};
}

// A PAT scope pattern "repository:<name|prefix/*>:<actions>" against repo.
bool patternMatches(const Scope& pattern, const std::string& repo) {
  return pattern.type == "repository" && repositoryPatternMatches(pattern.name, repo);
}

Account edgeAccount(const Edge& e) {
  Account a;
  a.name = std::string(AuthService::kEdgeSubjectPrefix) + e.name;
  a.edge = true;
  if (e.settings.is_object() && e.settings.contains("repositories") && e.settings["repositories"].is_array()) {
    for (const auto& p : e.settings["repositories"]) {
      if (p.is_string()) a.edge_repositories.push_back(p.get<std::string>());
    }
  } else {
    a.edge_repositories = {"*"};
  }
  return a;
}

}  // namespace

AuthService::AuthService(AuthConfig config, IdentityStore& identity, KeyRing& keys, Clock& clock)
    : config_(std::move(config)), identity_(identity), keys_(keys), clock_(clock), cache_secret_(randomToken(32)) {}

// Counted by the identity store: with a shared database, every core's failures count.
bool AuthService::rateLimited(const std::string& key, int limit) {
  return identity_.signInFailures(key, clock_.nowMillis(), config_.failure_window_ms) >= limit;
}

void AuthService::recordFailure(const std::string& key) {
  identity_.recordSignInFailure(key, clock_.nowMillis(), config_.failure_window_ms);
}

Result<Account> AuthService::accountFor(const std::string& name) {
  if (name.compare(0, kEdgeSubjectPrefix.size(), kEdgeSubjectPrefix) == 0) {
    auto e = identity_.edge(name.substr(kEdgeSubjectPrefix.size()));
    if (!e.isOk() || !e->registered()) return Status(Code::kUnauthorized, "edge unknown or removed");
    return edgeAccount(*e);
  }
  auto u = identity_.user(name);
  if (!u.isOk() || u->disabled) return Status(Code::kUnauthorized, "account unknown or disabled");
  Account a;
  a.name = u->name;
  a.admin = u->admin;
  return a;
}

Result<Account> AuthService::authenticatePassword(const std::string& user, const std::string& secret,
                                                  const std::string& source) {
  const Status denied(Code::kUnauthorized, "invalid credentials");
  std::string account_key = "u:" + user, source_key = "s:" + source;
  if (rateLimited(account_key, config_.max_login_failures) || rateLimited(source_key, config_.max_source_failures)) {
    loginCounter("any", "rate_limited").inc();
    return Status(Code::kTooManyRequests, "too many failed logins; try again later");
  }
  const char* method = secret.compare(0, kPatPrefix.size(), kPatPrefix) == 0 ? "access_token" : "password";
  auto fail = [&]() -> Result<Account> {
    recordFailure(account_key);
    recordFailure(source_key);
    loginCounter(method, "failure").inc();
    return denied;
  };
  if (user.empty() || secret.empty() || user.size() > 64 || secret.size() > 1024) return fail();

  if (secret.compare(0, kPatPrefix.size(), kPatPrefix) == 0) {
    // wharf_pat_<id>_<secret>: a lookup and one SHA-256, never the password KDF.
    std::string rest = secret.substr(kPatPrefix.size());
    auto sep = rest.find('_');
    if (sep == std::string::npos) return fail();
    auto tok = identity_.accessToken(rest.substr(0, sep));
    if (!tok.isOk() || tok->user != user || !constantTimeEquals(sha256Hex(rest.substr(sep + 1)), tok->secret_hash)) {
      return fail();
    }
    if (tok->expires_ms != 0 && tok->expires_ms < clock_.nowMillis()) return fail();
    auto account = accountFor(user);
    if (!account.isOk()) return fail();
    account->pat_id = tok->id;
    for (const auto& s : tok->scopes) {
      auto parsed = parseScope(s);
      if (parsed.isOk()) account->pat_scopes.push_back(std::move(parsed).value());
    }
    if (account->pat_scopes.empty() && !tok->scopes.empty()) return fail();
    loginCounter(method, "success").inc();
    return account;
  }

  auto u = identity_.user(user);
  // Directory users (and unknown names, when a directory is configured) bind to LDAP
  // as themselves; their password is never stored.
  if ((!u.isOk() || u->source == "ldap")) {
    auto ldap_json = identity_.setting("ldap");
    auto ldap = ldap_json ? LdapConfig::fromJson(*ldap_json) : Result<LdapConfig>(Status(Code::kNotFound, ""));
    if (ldap.isOk() && ldap->enabled) {
      if (!validateAccountName(user).isOk()) return fail();
      auto d = LdapDirectory::authenticate(*ldap, user, secret);
      if (!d.isOk()) {
        if (d.status().code() != Code::kUnauthorized) {
          logWarn("directory login failed", {{"user", user}, {"error", d.status().message()}});
        }
        return fail();
      }
      if (!u.isOk()) {
        User created;
        created.name = d->name;
        created.email = d->email;
        created.source = "ldap";
        created.created_ms = clock_.nowMillis();
        (void)identity_.createUser(created);  // a concurrent login may have created it
        u = identity_.user(d->name);
        if (!u.isOk()) return fail();
      }
      if (u->disabled) return fail();
      loginCounter("ldap", "success").inc();
      Account a;
      a.name = u->name;
      a.admin = u->admin;
      return a;
    }
  }
  if (!u.isOk() || u->disabled || u->password_hash.empty()) {
    // Spend about as long as a real check, so that timing does not tell which names exist.
    (void)verifyPassword(secret, "pbkdf2-sha256$" + std::to_string(kPasswordIterations) + "$AAAAAAAAAAAAAAAAAAAAAA$AAAA");
    return fail();
  }
  std::string cache_key = sha256Hex(cache_secret_ + '\0' + user + '\0' + secret + '\0' + u->password_hash);
  bool cached = false;
  {
    std::lock_guard lock(mu_);
    auto it = good_passwords_.find(cache_key);
    cached = it != good_passwords_.end() && it->second > clock_.nowMillis();
  }
  if (!cached) {
    if (!verifyPassword(secret, u->password_hash)) return fail();
    std::lock_guard lock(mu_);
    if (good_passwords_.size() > 10000) good_passwords_.clear();
    good_passwords_[cache_key] = clock_.nowMillis() + kGoodPasswordTtlMs;
  }
  loginCounter(method, "success").inc();
  Account a;
  a.name = u->name;
  a.admin = u->admin;
  return a;
}

Result<Account> AuthService::authenticateBasic(const std::string& header_value, const std::string& source) {
  if (header_value.size() < 6 || strncasecmp(header_value.c_str(), "Basic ", 6) != 0) {
    return Status(Code::kUnauthorized, "expected Basic credentials");
  }
  bool ok = false;
  std::string decoded = base64Decode(header_value.substr(6), &ok);
  auto colon = decoded.find(':');
  if (!ok || colon == std::string::npos) return Status(Code::kUnauthorized, "malformed Basic credentials");
  return authenticatePassword(decoded.substr(0, colon), decoded.substr(colon + 1), source);
}

bool AuthService::cachedState(const std::string& key, CachedAccount* out) {
  std::shared_lock lock(state_mu_);
  auto it = states_.find(key);
  if (it == states_.end() || it->second.expires_ms < clock_.nowMillis()) return false;
  *out = it->second;
  return true;
}

void AuthService::cacheState(const std::string& key, CachedAccount state) {
  constexpr int64_t kStateTtlMs = 5000;
  state.expires_ms = clock_.nowMillis() + kStateTtlMs;
  std::unique_lock lock(state_mu_);
  if (states_.size() > 100000) states_.clear();
  states_[key] = std::move(state);
}

Result<AuthService::Bearer> AuthService::verifyBearer(const std::string& token) {
  int64_t now_s = clock_.nowMillis() / 1000;
  Bearer b;
  b.claims = token_cache_.lookup(token, now_s);
  // A cached token whose key was retired since is verified afresh (and refused).
  if (b.claims && !keys_.isLive(b.claims->key_id)) b.claims = nullptr;
  if (!b.claims) {
    auto verified = keys_.verifier(config_.issuer, config_.service)->verify(token, now_s);
    if (!verified.isOk()) return verified.status();
    if (verified->kind != "access") return Status(Code::kUnauthorized, "invalid token: not an access token");
    b.claims = std::make_shared<const TokenClaims>(std::move(verified).value());
    token_cache_.insert(token, b.claims);
  }
  if (revocations_ != nullptr && revocations_->current()->covers(*b.claims, "")) {
    return Status(Code::kUnauthorized, "invalid token: revoked (access changed since it was issued)");
  }
  // Revocation: the account (and the access token it came from) must still be there.
  if (!b.claims->subject.empty()) {
    CachedAccount state;
    if (!cachedState("u:" + b.claims->subject, &state)) {
      auto account = accountFor(b.claims->subject);
      state.valid = account.isOk();
      if (state.valid) state.account = *account;
      cacheState("u:" + b.claims->subject, state);
    }
    if (!state.valid) return Status(Code::kUnauthorized, "invalid token: account unknown or disabled");
    b.account = state.account;
  }
  if (!b.claims->via.empty()) {
    CachedAccount state;
    if (!cachedState("p:" + b.claims->via, &state)) {
      auto pat = identity_.accessToken(b.claims->via);
      state.valid = pat.isOk() && (pat->expires_ms == 0 || pat->expires_ms >= clock_.nowMillis());
      cacheState("p:" + b.claims->via, state);
    }
    if (!state.valid) return Status(Code::kUnauthorized, "invalid token: its access token was revoked");
  }
  return b;
}

std::vector<std::string> AuthService::allowedActions(const Account& account, const std::string& repo) {
  std::vector<std::string> actions;
  if (account.edge) {
    if (anyRepositoryPatternMatches(account.edge_repositories, repo)) actions = {"pull"};
    return actions;
  }
  auto settings = identity_.repoSettings(repo);
  if (settings && settings->is_public) actions = {"pull"};
  if (!account.anonymous()) {
    std::vector<std::string> own;
    std::string ns = namespaceOf(repo);
    if (account.admin || ns == account.name) {
      own = {"delete", "pull", "push"};
    } else if (!ns.empty() && identity_.orgExists(ns)) {
      if (identity_.orgRole(ns, account.name) == "owner") {
        own = {"delete", "pull", "push"};
      } else {
        Role best = identity_.grantFor(repo, "user", account.name);
        for (const auto& team : identity_.userTeams(ns, account.name)) {
          best = std::max(best, identity_.grantFor(repo, "team", team));
        }
        own = actionsFor(best);
      }
    } else {
      own = actionsFor(identity_.grantFor(repo, "user", account.name));
    }
    for (auto& a : own) {
      if (std::find(actions.begin(), actions.end(), a) == actions.end()) actions.push_back(a);
    }
  }
  // A personal access token narrows what its owner may do.
  if (!account.pat_id.empty() && !account.pat_scopes.empty()) {
    std::erase_if(actions, [&](const std::string& a) {
      for (const auto& p : account.pat_scopes) {
        if (patternMatches(p, repo) && p.allows(a)) return false;
      }
      return true;
    });
  }
  std::sort(actions.begin(), actions.end());
  return actions;
}

std::string repositoryOfName(const std::string& name) {
  auto slash = name.find('/');
  if (slash == std::string::npos) return name;
  std::string first = name.substr(0, slash);
  // A host: "host:port" (a repository never holds ':'), or "localhost". A first component
  // with a dot is a host only when the name is not itself a repository's.
  if (first.find(':') != std::string::npos || first == "localhost") return name.substr(slash + 1);
  return name;
}

std::vector<Scope> AuthService::grant(const Account& account, const std::vector<Scope>& requested) {
  std::vector<Scope> out;
  for (const auto& want : requested) {
    Scope got{want.type, want.name, {}};
    if (want.type == "repository") {
      // Notary's clients ask for the GUN, "<registry host>/<repository>": the access is
      // the repository's (the token names what was asked).
      auto allowed = allowedActions(account, repositoryOfName(want.name));
      for (const auto& a : want.actions) {
        if (a == "*") {
          got.actions = allowed;
          break;
        }
        if (std::find(allowed.begin(), allowed.end(), a) != allowed.end()) got.actions.push_back(a);
      }
    } else if (want.type == "registry" && want.name == "catalog" && !account.anonymous()) {
      got.actions = {"*"};
    }
    if (!got.actions.empty()) out.push_back(std::move(got));
  }
  return out;
}

void AuthService::revokeSubjects(const std::vector<std::string>& names) {
  if (revocations_ == nullptr) return;
  std::set<std::string> once(names.begin(), names.end());
  for (const auto& n : once) {
    if (Status st = revocations_->add("subject", n); !st.isOk()) {
      logError("cannot revoke issued tokens", {{"subject", n}, {"error", st.message()}});
    }
  }
}

int64_t AuthService::issuedAt() const {
  int64_t now = clock_.nowMillis() / 1000;
  return revocations_ != nullptr ? revocations_->issuedAt(now) : now;
}

Result<nlohmann::json> AuthService::issue(const Account& account, const std::vector<Scope>& granted, bool offline,
                                          int64_t issued_at) {
  int64_t now = clock_.nowMillis() / 1000;
  TokenClaims c;
  c.issuer = config_.issuer;
  c.subject = account.name;
  c.audience = config_.service;
  c.id = newUuid();
  c.issued_at = issued_at != 0 ? issued_at : issuedAt();
  c.not_before = now - 1;
  c.expires_at = now + config_.token_ttl_s;
  c.access = granted;
  c.via = account.pat_id;
  auto signer = keys_.signer();
  auto token = signer->sign(c);
  if (!token.isOk()) return token.status();
  static Counter& issued = MetricsRegistry::global().counter("wharf_auth_tokens_issued_total", "Access tokens issued.");
  issued.inc();
  nlohmann::json out = {{"token", *token},
                        {"access_token", *token},
                        {"expires_in", config_.token_ttl_s},
                        {"issued_at", formatRfc3339(now * 1000)}};
  if (offline && !account.anonymous() && account.pat_id.empty()) {
    TokenClaims r = c;
    r.id = newUuid();
    r.kind = "refresh";
    r.access.clear();
    r.expires_at = now + config_.refresh_ttl_s;
    auto refresh = signer->sign(r);
    if (!refresh.isOk()) return refresh.status();
    out["refresh_token"] = *refresh;
  }
  return out;
}

Result<Account> AuthService::fromRefreshToken(const std::string& token) {
  auto c = keys_.verifier(config_.issuer, config_.service)->verify(token, clock_.nowMillis() / 1000);
  if (!c.isOk()) return c.status();
  if (c->kind != "refresh" || c->subject.empty()) return Status(Code::kUnauthorized, "not a refresh token");
  if (auto u = identity_.user(c->subject); u.isOk() && c->issued_at <= u->tokens_before_s) {
    return Status(Code::kUnauthorized, "refresh token revoked (the account's access changed since): sign in again");
  }
  return accountFor(c->subject);
}

Result<std::pair<AccessToken, std::string>> AuthService::createAccessToken(const std::string& user,
                                                                           const std::string& name,
                                                                           const std::vector<std::string>& scopes,
                                                                           int64_t expires_ms) {
  for (const auto& s : scopes) {
    auto parsed = parseScope(s);
    if (!parsed.isOk() || parsed->type != "repository") {
      return Status(Code::kInvalidArgument, "scope \"" + s + "\" is not repository:<name or prefix/*>:<actions>");
    }
  }
  AccessToken t;
  t.id = randomToken(9);
  std::erase(t.id, '_');  // the id never contains the separator
  std::string secret = randomToken(32);
  t.user = user;
  t.name = name;
  t.scopes = scopes;
  t.secret_hash = sha256Hex(secret);
  t.created_ms = clock_.nowMillis();
  t.expires_ms = expires_ms;
  WHARF_RETURN_IF_ERROR(identity_.putAccessToken(t));
  return std::make_pair(t, std::string(kPatPrefix) + t.id + "_" + secret);
}

Result<std::string> AuthService::bootstrapAdmin(const std::string& name, const std::string& password) {
  if (!identity_.users("", 1).empty()) return std::string();
  User u;
  u.name = name;
  u.admin = true;
  u.created_ms = clock_.nowMillis();
  std::string pw = password.empty() ? randomToken(18) : password;
  u.password_hash = hashPassword(pw);
  Status st = identity_.createUser(u);
  // Replicas starting together on one database: another one made the first account.
  if (st.code() == Code::kConflict) return std::string();
  WHARF_RETURN_IF_ERROR(st);
  return pw;
}

Result<AuthService::NewEdge> AuthService::createEdge(const std::string& name, const std::string& site,
                                                    const nlohmann::json& settings, int64_t ttl_ms,
                                                    const std::string& created_by) {
  WHARF_RETURN_IF_ERROR(validateEdgeName(name));
  if (site.size() > 200) return Status(Code::kInvalidArgument, "site is at most 200 characters");
  WHARF_RETURN_IF_ERROR(validateEdgeSettings(settings));
  if (ttl_ms < kMinJoinTokenTtlMs || ttl_ms > kMaxJoinTokenTtlMs) {
    return Status(Code::kInvalidArgument, "ttl_seconds is 60 to 2592000 (30 days)");
  }
  NewEdge out;
  out.join_token = std::string(kJoinPrefix) + randomToken(32);
  Edge& e = out.edge;
  e.name = name;
  e.site = site;
  e.settings = canonicalEdgeSettings(settings);
  e.join_hash = sha256Hex(out.join_token);
  e.created_ms = clock_.nowMillis();
  e.join_expires_ms = e.created_ms + ttl_ms;
  e.created_by = created_by;
  WHARF_RETURN_IF_ERROR(identity_.createEdge(e));
  return out;
}

Result<Edge> AuthService::setEdgeSettings(const std::string& name, const nlohmann::json& settings) {
  WHARF_RETURN_IF_ERROR(validateEdgeSettings(settings));
  WHARF_RETURN_IF_ERROR(identity_.putEdgeSettings(name, canonicalEdgeSettings(settings)));
  return identity_.edge(name);
}

Result<AuthService::RegisteredEdge> AuthService::registerEdge(const std::string& join_token, const std::string& source) {
  std::string source_key = "j:" + source;
  if (rateLimited(source_key, config_.max_source_failures)) {
    loginCounter("join_token", "rate_limited").inc();
    return Status(Code::kTooManyRequests, "too many failed registrations; try again later");
  }
  const Status refused(Code::kUnauthorized, "join token unknown, used or expired");
  if (join_token.size() > 256 || join_token.compare(0, kJoinPrefix.size(), kJoinPrefix) != 0) {
    recordFailure(source_key);
    loginCounter("join_token", "failure").inc();
    return refused;
  }
  RegisteredEdge out;
  out.credential = std::string(kEdgePrefix) + randomToken(32);
  auto e = identity_.redeemJoinToken(sha256Hex(join_token), sha256Hex(out.credential), clock_.nowMillis());
  if (!e.isOk()) {
    if (e.status().code() != Code::kUnauthorized) return e.status();
    recordFailure(source_key);
    loginCounter("join_token", "failure").inc();
    return refused;
  }
  loginCounter("join_token", "success").inc();
  out.edge = std::move(e).value();
  return out;
}

Result<Edge> AuthService::authenticateEdge(const std::string& credential) {
  const Status refused(Code::kUnauthorized, "edge credential unknown or revoked");
  if (credential.size() > 256 || credential.compare(0, kEdgePrefix.size(), kEdgePrefix) != 0) return refused;
  auto e = identity_.edgeByCredential(sha256Hex(credential));
  if (!e.isOk()) return e.status().code() == Code::kUnauthorized ? refused : e.status();
  int64_t now = clock_.nowMillis();
  if (now - e->last_seen_ms >= kLastSeenWriteIntervalMs) {
    // Removed meanwhile: the credential is no longer good.
    Status st = identity_.touchEdge(e->name, now);
    if (st.code() == Code::kNotFound) return refused;
    WHARF_RETURN_IF_ERROR(st);
    e->last_seen_ms = now;
  }
  return e;
}

Result<nlohmann::json> AuthService::issueEdgeToken(const Edge& edge, const std::string& repo) {
  WHARF_RETURN_IF_ERROR(validateRepositoryName(repo));
  int64_t issued_at = issuedAt();  // before the grant: a revocation meanwhile covers it
  Account a = edgeAccount(edge);
  auto granted = grant(a, {Scope{"repository", repo, {"pull"}}});
  if (granted.empty()) {
    return Status(Code::kDenied, "edge \"" + edge.name + "\" may not pull " + repo + " (its settings' repositories)");
  }
  return issue(a, granted, /*offline=*/false, issued_at);
}

void AuthService::forgetCaches() {
  token_cache_.clear();
  {
    std::unique_lock lock(state_mu_);
    states_.clear();
  }
  std::lock_guard lock(mu_);
  good_passwords_.clear();
}

}  // namespace wharf
