#include "core/api/api.h"
#include "core/auth/revocations.h"
#include "shared/metrics/metrics.h"
#include "shared/store/disk_space.h"

namespace wharf {
namespace {

// The action a registry request needs on its repository.
std::string requiredAction(const Route& route, const std::string& method) {
  if (method == "DELETE") return route.kind == RouteKind::kUpload ? "push" : "delete";
  if (method == "GET" || method == "HEAD") {
    return route.kind == RouteKind::kUpload ? "push" : "pull";
  }
  return "push";
}

// 401 with the Bearer challenge that sends the client to the token endpoint.
void challenge(ApiContext& ctx, const ExchangePtr& ex, const std::vector<Scope>& scopes, const Status& why,
               bool insufficient) {
  Response r = errorResponse(why);
  r.status = 401;
  r.headers.add("WWW-Authenticate",
                bearerChallenge(tokenRealm(ctx, ex->request()), ctx.auth->config().service, scopes, insufficient));
  reply(ex, std::move(r));
}

// Establishes the caller of a registry request and checks it may do what it asks.
// Returns false when it has already answered.
bool authorize(ApiContext& ctx, const ExchangePtr& ex, const Route& route, Caller* caller) {
  caller->peer = ex->request().peer;
  if (ctx.auth == nullptr) {
    caller->all_access = true;
    return true;
  }
  const Request& req = ex->request();
  std::vector<Scope> needed;
  std::string action;
  if (route.kind == RouteKind::kCatalog) {
    needed.push_back(Scope{"registry", "catalog", {"*"}});
  } else if (route.kind != RouteKind::kBase) {
    action = requiredAction(route, req.method);
    Scope s{"repository", route.name, {action}};
    if (action == "push") s.actions = {"pull", "push"};
    needed.push_back(s);
  }
  const std::string* authz = req.headers.get("authorization");
  if (authz == nullptr || authz->size() < 7 || strncasecmp(authz->c_str(), "Bearer ", 7) != 0) {
    challenge(ctx, ex, needed, Status(Code::kUnauthorized, "authentication required"), false);
    return false;
  }
  auto bearer = ctx.auth->verifyBearer(authz->substr(7));
  if (!bearer.isOk()) {
    challenge(ctx, ex, needed, bearer.status(), false);
    return false;
  }
  caller->claims = std::move(bearer->claims);
  caller->account = std::move(bearer->account);
  bool ok = route.kind == RouteKind::kBase ||
            (route.kind == RouteKind::kCatalog ? caller->claims->allows("registry", "catalog", "*")
                                               : caller->claims->allows("repository", route.name, action));
  if (ok && route.kind != RouteKind::kBase && route.kind != RouteKind::kCatalog) {
    Revocations* revocations = ctx.auth->revocations();
    if (revocations != nullptr && revocations->current()->covers(*caller->claims, route.name)) {
      // Access to this repository changed since the token was issued: a new one says how.
      challenge(ctx, ex, needed, Status(Code::kUnauthorized, "token revoked for " + route.name + ": get a new one"),
                false);
      return false;
    }
  }
  if (!ok) {
    audit(ctx, *caller, action.empty() ? "catalog" : action, route.name, "denied");
    challenge(ctx, ex, needed, Status(Code::kUnauthorized, "insufficient scope for " + needed.front().str()), true);
    return false;
  }
  return true;
}

}  // namespace

std::string tokenRealm(const ApiContext& ctx, const Request& req) {
  std::string realm = ctx.auth->config().realm;
  if (realm.empty()) {
    // No public_url configured: send clients back to the address they used.
    const std::string* host = req.headers.get("host");
    realm = std::string(ctx.tls ? "https://" : "http://") + (host ? *host : "localhost") + "/auth/token";
  }
  return realm;
}

void audit(ApiContext& ctx, const Caller& caller, const std::string& action, const std::string& object,
           const std::string& outcome, const std::string& detail) {
  if (ctx.audit != nullptr) ctx.audit->record(caller.account.name, caller.peer, action, object, outcome, detail);
}

void handleRequest(ApiContext& ctx, const ExchangePtr& ex) {
  const Request& req = ex->request();
  if (req.path == "/metrics" && (req.method == "GET" || req.method == "HEAD")) {
    reply(ex, Response::text(200, MetricsRegistry::global().render() + renderEdgeMetrics(ctx), "text/plain; version=0.0.4"));
    return;
  }
  if (req.path == "/healthz" && (req.method == "GET" || req.method == "HEAD")) {
    // Low space is reported, not failed: reads go on, so the core stays in rotation.
    nlohmann::json health = {{"status", "ok"}};
    if (ctx.disk != nullptr) {
      DiskSpace::Reading d = ctx.disk->read();
      health["disk"] = {{"free_bytes", d.free}, {"reserve_bytes", d.reserve}, {"writable", !d.low()}};
      if (d.low()) health["status"] = "low_space";
    }
    reply(ex, Response::json(200, health.dump()));
    return;
  }
  if (req.path.rfind("/auth/", 0) == 0) return handleAuth(ctx, ex);
  if (req.path == "/api/v1/edges" || req.path.rfind("/api/v1/edges/", 0) == 0 ||
      req.path.rfind("/api/v1/sites/", 0) == 0) {
    return handleEdges(ctx, ex);
  }
  if (req.path == "/api/v1/policies" || req.path.rfind("/api/v1/policies/", 0) == 0 || req.path == "/api/v1/usage") {
    return handleStorage(ctx, ex);
  }
  if (req.path == "/api/v1/fleet" || req.path.rfind("/api/v1/fleet/", 0) == 0) return handleFleetUsage(ctx, ex);
  if (req.path == "/api/v1/events" || req.path.rfind("/api/v1/events/", 0) == 0) return handleEvents(ctx, ex);
  if (req.path == "/api/v1/webhooks" || req.path.rfind("/api/v1/webhooks/", 0) == 0) return handleWebhooks(ctx, ex);
  if (req.path == "/api/v1/jobs" || req.path.rfind("/api/v1/jobs/", 0) == 0 || req.path == "/api/v1/schedules" ||
      req.path.rfind("/api/v1/schedules/", 0) == 0) {
    return handleJobs(ctx, ex);
  }
  if (isScanPath(req.path)) return handleScans(ctx, ex);
  if (isBrowsePath(req.path)) return handleBrowse(ctx, ex);
  if (req.path.rfind("/api/v1/", 0) == 0 || req.path == "/api/v1") return handleAdmin(ctx, ex);
  if (isTrustPath(req.path)) return handleTrust(ctx, ex);
  if (isUiPath(req.path)) return handleUi(ctx, ex);
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
  Caller caller;
  if (!authorize(ctx, ex, *route, &caller)) return;
  // Writes (uploads and manifest pushes) stop at the disk's reserve; reads and deletes go on.
  bool write = (route->kind == RouteKind::kUploadStart || route->kind == RouteKind::kUpload ||
                route->kind == RouteKind::kManifest) &&
               (req.method == "POST" || req.method == "PUT" || req.method == "PATCH");
  if (write && ctx.disk != nullptr) {
    if (Status space = ctx.disk->admitWrite(); !space.isOk()) return replyError(ex, space);
  }
  switch (route->kind) {
    case RouteKind::kBase: return handleBase(ctx, ex);
    case RouteKind::kCatalog: return handleCatalog(ctx, ex, caller);
    case RouteKind::kTagsList: return handleTags(ctx, ex, *route, caller);
    case RouteKind::kBlob: return handleBlob(ctx, ex, *route, caller);
    case RouteKind::kUploadStart: return handleUploadStart(ctx, ex, *route, caller);
    case RouteKind::kUpload: return handleUpload(ctx, ex, *route, caller);
    case RouteKind::kManifest: return handleManifest(ctx, ex, *route, caller);
    case RouteKind::kReferrers: return handleReferrers(ctx, ex, *route, caller);
  }
}

}  // namespace wharf
