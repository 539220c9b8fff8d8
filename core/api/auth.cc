// The Docker token endpoint and the public signing keys:
//   GET  /auth/token?service=&scope=...&offline_token=     (Basic credentials or anonymous)
//   POST /auth/token    grant_type=password|refresh_token (OAuth2 form)
//   GET  /auth/keys     JWK set of the keys that verify tokens (for edges)
#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "shared/http/url.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

// Scope parameters; each may hold several space-separated scopes.
Result<std::vector<Scope>> parseScopes(const std::vector<std::string>& params) {
  std::vector<Scope> out;
  for (const auto& p : params) {
    size_t start = 0;
    while (start < p.size()) {
      size_t end = p.find(' ', start);
      if (end == std::string::npos) end = p.size();
      if (end > start) {
        auto s = parseScope(std::string_view(p).substr(start, end - start));
        if (!s.isOk()) return s.status();
        out.push_back(std::move(s).value());
      }
      start = end + 1;
    }
    if (out.size() > 64) return Status(Code::kInvalidArgument, "too many scopes");
  }
  return out;
}

void authError(const ExchangePtr& ex, const Status& st) {
  Response r = errorResponse(st);
  if (st.code() == Code::kUnauthorized && !fromBrowserScript(ex->request()))
    r.headers.add("WWW-Authenticate", "Basic realm=\"wharf\"");
  reply(ex, std::move(r));
}

// Issues a token for an authenticated account and answers.
void answer(ApiContext& ctx, const ExchangePtr& ex, const Account& account, const std::vector<Scope>& requested,
            bool offline) {
  // Dated before the grants are worked out: a revocation in between covers the token.
  int64_t issued_at = ctx.auth->issuedAt();
  auto granted = ctx.auth->grant(account, requested);
  auto body = ctx.auth->issue(account, granted, offline, issued_at);
  if (!body.isOk()) return replyError(ex, body.status());
  std::string detail;
  for (const auto& s : granted) detail += (detail.empty() ? "" : " ") + s.str();
  ctx.audit->record(account.name, ex->request().peer, "token", "", "success", detail);
  Response r = Response::json(200, body->dump());
  r.headers.add("Cache-Control", "no-store");
  reply(ex, std::move(r));
}

void authenticateThen(ApiContext& ctx, const ExchangePtr& ex, const std::string& user, const std::string& secret,
                      std::function<void(Account)> next) {
  std::string peer = ex->request().peer;
  offload<Result<Account>>(
      ctx, ex, [&ctx, user, secret, peer] { return ctx.auth->authenticatePassword(user, secret, peer); },
      [&ctx, ex, user, next = std::move(next)](Result<Account> account) {
        ctx.audit->record(user, ex->request().peer, "login", user, account.isOk() ? "success" : "failure",
                          account.isOk() ? "" : account.status().message());
        if (!account.isOk()) return authError(ex, account.status());
        next(std::move(account).value());
      });
}

void tokenGet(ApiContext& ctx, const ExchangePtr& ex) {
  const Request& req = ex->request();
  if (auto service = req.queryParam("service"); service && *service != ctx.auth->config().service) {
    return replyError(ex, Status(Code::kInvalidArgument, "unknown service \"" + *service + "\""));
  }
  auto scopes = parseScopes(req.queryParams("scope"));
  if (!scopes.isOk()) return replyError(ex, scopes.status());
  bool offline = req.queryParam("offline_token").value_or("") == "true";
  const std::string* authz = req.headers.get("authorization");
  if (authz == nullptr) return answer(ctx, ex, Account{}, *scopes, false);  // anonymous
  bool ok = false;
  std::string decoded;
  if (authz->size() > 6 && strncasecmp(authz->c_str(), "Basic ", 6) == 0) decoded = base64Decode(authz->substr(6), &ok);
  auto colon = decoded.find(':');
  if (!ok || colon == std::string::npos) return authError(ex, Status(Code::kUnauthorized, "malformed credentials"));
  authenticateThen(ctx, ex, decoded.substr(0, colon), decoded.substr(colon + 1),
                   [&ctx, ex, scopes = *scopes, offline](Account a) { answer(ctx, ex, a, scopes, offline); });
}

void tokenPost(ApiContext& ctx, const ExchangePtr& ex) {
  ex->readFullBody(64 * 1024, [&ctx, ex](Status st, std::string body) {
    if (!st.isOk()) return replyError(ex, st);
    std::map<std::string, std::vector<std::string>> form;
    for (auto& [k, v] : parseQuery(body)) form[k].push_back(v);
    auto one = [&](const char* k) { return form.count(k) ? form[k].front() : std::string(); };
    if (!one("service").empty() && one("service") != ctx.auth->config().service) {
      return replyError(ex, Status(Code::kInvalidArgument, "unknown service"));
    }
    auto scopes = parseScopes(form["scope"]);
    if (!scopes.isOk()) return replyError(ex, scopes.status());
    bool offline = one("access_type") == "offline";
    std::string grant = one("grant_type");
    if (grant == "password") {
      return authenticateThen(ctx, ex, one("username"), one("password"),
                              [&ctx, ex, scopes = *scopes, offline](Account a) { answer(ctx, ex, a, scopes, offline); });
    }
    if (grant == "refresh_token") {
      auto account = ctx.auth->fromRefreshToken(one("refresh_token"));
      if (!account.isOk()) return authError(ex, account.status());
      return answer(ctx, ex, *account, *scopes, false);
    }
    replyError(ex, Status(Code::kInvalidArgument, "grant_type must be password or refresh_token"));
  });
}

}  // namespace

void handleAuth(ApiContext& ctx, const ExchangePtr& ex) {
  const Request& req = ex->request();
  if (ctx.auth == nullptr) return replyError(ex, Status(Code::kNotFound, "authentication is off"));
  if (req.path == "/auth/token") {
    if (req.method == "GET") return tokenGet(ctx, ex);
    if (req.method == "POST") return tokenPost(ctx, ex);
  } else if (req.path == "/auth/keys" && req.method == "GET") {
    return reply(ex, Response::json(200, ctx.auth->keys().jwks().dump()));
  } else {
    return replyError(ex, Status(Code::kNotFound, "no such endpoint"));
  }
  replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
}

}  // namespace wharf
