// GET /v2/<name>/tags/list
#include <nlohmann/json.hpp>

#include "core/api/api.h"

namespace wharf {

void handleTags(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller&) {
  const Request& req = ex->request();
  if (req.method != "GET") return replyError(ex, Status(Code::kMethodNotAllowed, "method not allowed"));
  size_t n;
  std::string last;
  Status st = pageParams(req, ctx.options.max_page, &n, &last);
  if (!st.isOk()) return replyError(ex, st);
  auto page = ctx.registry.metadata().tags(route.name, last, n);
  if (!page.isOk()) return replyError(ex, page.status());
  nlohmann::json body = {{"name", route.name}, {"tags", page->items}};
  Response r = Response::json(200, body.dump());
  if (page->more && !page->items.empty()) {
    r.headers.add("Link", nextLink("/v2/" + route.name + "/tags/list", n, page->items.back()));
  }
  reply(ex, std::move(r));
}

}  // namespace wharf
