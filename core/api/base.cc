// GET /v2/ and GET /v2/_catalog.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/api/api.h"

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

}  // namespace wharf
