// GET /v2/ and GET /v2/_catalog.
#include <nlohmann/json.hpp>

#include "core/api/api.h"

namespace wharf {

void handleBase(ApiContext&, const ExchangePtr& ex) {
  const auto& m = ex->request().method;
  if (m != "GET" && m != "HEAD") return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  reply(ex, Response::json(200, "{}"));
}

void handleCatalog(ApiContext& ctx, const ExchangePtr& ex) {
  const Request& req = ex->request();
  if (req.method != "GET") return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  size_t n;
  std::string last;
  Status st = pageParams(req, ctx.options.max_page, &n, &last);
  if (!st.isOk()) return replyError(ex, st);
  Page page = ctx.registry.metadata().repositories(last, n);
  nlohmann::json body = {{"repositories", page.items}};
  Response r = Response::json(200, body.dump());
  if (page.more && !page.items.empty()) r.headers.add("Link", nextLink("/v2/_catalog", n, page.items.back()));
  reply(ex, std::move(r));
}

}  // namespace wharf
