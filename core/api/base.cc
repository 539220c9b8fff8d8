// GET /v2/ and GET /v2/_catalog.
#include <nlohmann/json.hpp>

#include <strings.h>

#include <algorithm>

#include "core/api/api.h"
#include "shared/oci/names.h"
#include "shared/oci/digest.h"

namespace wharf {

void handleBase(ApiContext&, const ExchangePtr& ex) {
  const auto& m = ex->request().method;
  if (m != "GET" && m != "HEAD") return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  reply(ex, Response::json(200, "{}"));
}

void handleCatalog(ApiContext& ctx, const ExchangePtr& ex, const Caller& caller) {
  const Request& req = ex->request();
  if (req.method != "GET") return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  size_t n;
  std::string last;
  Status st = pageParams(req, ctx.options.max_page, &n, &last);
  if (!st.isOk()) return replyError(ex, st);
  // Only repositories the caller may pull from are listed; with access control on, the
  // listing walks further than n to fill a page.
  Page page;
  std::string cursor = last;
  while (page.items.size() < n) {
    Page chunk = ctx.registry.metadata().repositories(cursor, n);
    for (auto& repo : chunk.items) {
      cursor = repo;
      if (!caller.all_access) {
        auto actions = ctx.auth->allowedActions(caller.account, repo);
        if (std::find(actions.begin(), actions.end(), "pull") == actions.end()) continue;
      }
      if (page.items.size() == n) {
        page.more = true;
        break;
      }
      page.items.push_back(repo);
    }
    if (page.more || !chunk.more) break;
  }
  if (page.items.size() == n && !page.more) page.more = !ctx.registry.metadata().repositories(cursor, 1).items.empty();
  nlohmann::json body = {{"repositories", page.items}};
  Response r = Response::json(200, body.dump());
  if (page.more && !page.items.empty()) r.headers.add("Link", nextLink("/v2/_catalog", n, page.items.back()));
  reply(ex, std::move(r));
}

Result<Caller> apiReader(ApiContext& ctx, const Request& req) {
  Caller c;
  c.peer = req.peer;
  if (ctx.auth == nullptr) {  // authentication is off: everyone may do everything
    c.all_access = true;
    c.account.name = "anonymous";
    c.account.admin = true;
    return c;
  }
  const std::string* authz = req.headers.get("authorization");
  if (authz == nullptr) return c;
  if (authz->size() > 7 && strncasecmp(authz->c_str(), "Bearer ", 7) == 0) {
    auto bearer = ctx.auth->verifyBearer(authz->substr(7));
    if (!bearer.isOk()) return bearer.status();
    c.claims = bearer->claims;
    c.account = bearer->account;
    return c;
  }
  auto account = authenticateApiCaller(ctx, req);
  if (!account.isOk()) return account.status();
  c.account = std::move(*account);
  return c;
}

bool callerMay(ApiContext& ctx, const Caller& c, const std::string& repo, const std::string& action) {
  if (c.all_access || c.claims) return c.may(repo, action);
  auto a = ctx.auth->allowedActions(c.account, repo);
  return std::find(a.begin(), a.end(), action) != a.end();
}

Result<Caller> repositoryReader(ApiContext& ctx, const Request& req, const std::string& repo) {
  auto who = apiReader(ctx, req);
  if (!who.isOk()) return who.status();
  if (!callerMay(ctx, *who, repo, "pull")) {
    if (who->account.anonymous()) return Status(Code::kUnauthorized, "authentication required");
    return Status(Code::kNameUnknown, "repository name not known to registry");
  }
  return who;
}

Result<std::string> referenceDigest(ApiContext& ctx, const std::string& repo, const std::string& reference) {
  if (reference.find(':') != std::string::npos) {
    auto d = Digest::parse(reference);
    if (!d.isOk()) return d.status();
    return d->str();
  }
  WHARF_RETURN_IF_ERROR(validateTag(reference));
  auto d = ctx.registry.metadata().resolveTag(repo, reference);
  if (!d.isOk()) return Status(Code::kManifestUnknown, "manifest unknown: " + repo + ":" + reference);
  return *d;
}

bool callerAdmin(const Caller& c) { return c.all_access || (c.account.admin && c.account.pat_scopes.empty()); }

}  // namespace wharf
