#include "core/api/api.h"
#include "shared/metrics/metrics.h"

namespace wharf {

void handleRequest(ApiContext& ctx, const ExchangePtr& ex) {
  const Request& req = ex->request();
  if (req.path == "/metrics" && (req.method == "GET" || req.method == "HEAD")) {
    reply(ex, Response::text(200, MetricsRegistry::global().render(), "text/plain; version=0.0.4"));
    return;
  }
  if (req.path == "/healthz" && (req.method == "GET" || req.method == "HEAD")) {
    reply(ex, Response::json(200, R"({"status":"ok"})"));
    return;
  }
  auto route = parseRoute(req.path);
  if (!route.isOk()) {
    if (route.status().code() == Code::kNotFound) {
      reply(ex, Response::json(404, R"({"errors":[{"code":"NOT_FOUND","message":"no such endpoint"}]})"));
    } else {
      replyError(ex, route.status());
    }
    return;
  }
  MetricsRegistry::global()
      .counter("wharf_registry_requests_total", "Registry API requests by endpoint family and method.",
               "route=\"" + std::string(routeName(route->kind)) + "\",method=\"" + req.method + "\"")
      .inc();
  switch (route->kind) {
    case RouteKind::kBase: return handleBase(ctx, ex);
    case RouteKind::kCatalog: return handleCatalog(ctx, ex);
    case RouteKind::kTagsList: return handleTags(ctx, ex, *route);
    case RouteKind::kBlob: return handleBlob(ctx, ex, *route);
    case RouteKind::kUploadStart: return handleUploadStart(ctx, ex, *route);
    case RouteKind::kUpload: return handleUpload(ctx, ex, *route);
    case RouteKind::kManifest: return handleManifest(ctx, ex, *route);
    case RouteKind::kReferrers: return handleReferrers(ctx, ex, *route);
  }
}

}  // namespace wharf
