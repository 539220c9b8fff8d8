// Edges and their registration, under /api/v1/edges:
//
//   POST   /api/v1/edges            {"name","site","settings"?,"ttl_seconds"?}  administrators
//          -> 201 {"name","site","join_token","expires_at"}   (the token is shown once)
//   GET    /api/v1/edges            -> {"edges":[<edge>...]}                     administrators
//   GET    /api/v1/edges/<name>     -> <edge>                                    administrators
//   PATCH  /api/v1/edges/<name>     {"settings":{...}} replaces them -> <edge>  administrators
//   DELETE /api/v1/edges/<name>     -> 204; its join token and credential stop working
//   POST   /api/v1/edges/register   {"join_token"} -> {"name","site","credential","realm",
//                                   "service","keys","settings"}  (no user authentication)
//   GET    /api/v1/edges/self       Authorization: Bearer <credential>
//                                   -> {"name","site","realm","service","keys","settings"}
//
// <edge> is Edge::toJson(). Administrators authenticate as on the rest of the admin API;
// an edge credential authenticates /self and nothing else (it is not a token the
// registry or the admin API accept). Handlers run on a worker: they write transactions.
#include <set>

#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "shared/base/clock.h"

namespace wharf {
namespace {

using nlohmann::json;

using Reply = ApiReply;
Reply ok(json body, int status = 200) { return apiOk(std::move(body), status); }
// Edge endpoints challenge for an edge credential, the others as the admin API does.
Reply fail(const Status& st, bool edge_credential = false) {
  Reply r = apiFail(st);
  if (r.status == 401 && edge_credential) r.challenge = "Bearer realm=\"wharf-edge\"";
  return r;
}

class Edges {
 public:
  Edges(ApiContext& ctx, const Request& req, std::string body) : ctx_(ctx), req_(req), raw_(std::move(body)) {}

  Reply run() {
    auto parts = splitPath(std::string_view(req_.path).substr(std::string_view("/api/v1/edges").size()));
    const std::string& m = req_.method;
    if (parts.size() > 1) return fail(Status(Code::kNotFound, "no such endpoint"));
    if (parts.size() == 1 && parts[0] == "register") {
      if (m != "POST") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      return registerEdge();
    }
    if (parts.size() == 1 && parts[0] == "self") {
      if (m != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      return self();
    }
    // The rest is for administrators.
    auto who = authenticateApiCaller(ctx_, req_);
    if (!who.isOk()) return fail(who.status());
    me_ = std::move(who).value();
    if (!me_.admin) return fail(Status(Code::kDenied, "only administrators manage edges"));
    WHARF_RETURN_IF_ERROR_REPLY(parseBody());
    if (parts.empty()) {
      if (m == "GET") return list();
      if (m == "POST") return create();
      return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    }
    const std::string& name = parts[0];
    if (m == "GET") {
      auto e = ctx_.identity->edge(name);
      if (!e.isOk()) return fail(e.status());
      json items = json::array({e->toJson()});
      addEdgeStatus(ctx_, items);  // fleet_usage.cc
      return ok(items[0]);
    }
    if (m == "PATCH") return update(name);
    if (m == "DELETE") return remove(name);
    return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
  }

 private:
  Status parseBody() {
    auto body = JsonBody::parse(raw_);
    if (!body.isOk()) return body.status();
    body_ = std::move(body).value();
    return Status::ok();
  }


  void record(const std::string& action, const std::string& object, const std::string& detail = "") {
    ctx_.audit->record(me_.name, req_.peer, action, object, "success", detail);
  }

  // What an edge needs to verify the core's tokens and run: realm, service, keys, settings.
  json edgeView(const Edge& e) {
    return {{"name", e.name},
            {"site", e.site},
            {"realm", tokenRealm(ctx_, req_)},
            {"service", ctx_.auth->config().service},
            {"keys", ctx_.auth->keys().jwks()},
            {"settings", e.settings.is_object() ? e.settings : json::object()}};
  }

  Reply list() {
    json items = json::array();
    for (const auto& e : ctx_.identity->edges()) items.push_back(e.toJson());
    addEdgeStatus(ctx_, items);  // fleet_usage.cc
    return ok({{"edges", items}});
  }

  Reply create() {
    auto name = body_.string("name", {.required = true, .max = 63});
    auto site = body_.string("site", {.max = 256});
    auto settings = body_.rawObject("settings");
    auto ttl_s = body_.integer("ttl_seconds", {.min = AuthService::kMinJoinTokenTtlMs / 1000,
                                               .max = AuthService::kMaxJoinTokenTtlMs / 1000});
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    int64_t ttl_ms = ttl_s ? *ttl_s * 1000 : AuthService::kJoinTokenTtlMs;
    auto created = ctx_.auth->createEdge(*name, site.value_or(""), settings.value_or(json::object()), ttl_ms, me_.name);
    if (!created.isOk()) return fail(created.status());
    const Edge& e = created->edge;
    record("edge.add", e.name, "site=" + e.site + " expires=" + formatRfc3339(e.join_expires_ms));
    Reply r = ok({{"name", e.name},
                  {"site", e.site},
                  {"join_token", created->join_token},
                  {"expires_at", formatRfc3339(e.join_expires_ms)}},
                 201);
    r.no_store = true;
    return r;
  }

  Reply update(const std::string& name) {
    auto settings = body_.rawObject("settings", /*required=*/true);
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    auto e = ctx_.auth->setEdgeSettings(name, *settings);
    if (!e.isOk()) return fail(e.status());
    record("edge.settings", name, e->settings.dump());
    return ok(e->toJson());
  }

  Reply remove(const std::string& name) {
    WHARF_RETURN_IF_ERROR_REPLY(ctx_.identity->deleteEdge(name));
    WHARF_RETURN_IF_ERROR_REPLY(forgetEdgeUsage(ctx_, name));  // fleet_usage.cc
    record("edge.remove", name);
    return ok(json::object(), 204);
  }

  Reply registerEdge() {
    WHARF_RETURN_IF_ERROR_REPLY(parseBody());
    auto token = body_.string("join_token", {.required = true, .max = 256, .non_empty = true});
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    auto reg = ctx_.auth->registerEdge(*token, req_.peer);
    if (!reg.isOk()) {
      ctx_.audit->record("", req_.peer, "edge.register", "", "failure", reg.status().message());
      return fail(reg.status(), /*edge_credential=*/true);
    }
    const Edge& e = reg->edge;
    ctx_.audit->record("edge:" + e.name, req_.peer, "edge.register", e.name, "success", "site=" + e.site);
    json out = edgeView(e);
    out["credential"] = reg->credential;
    Reply r = ok(out);
    r.no_store = true;
    return r;
  }

  Reply self() {
    const std::string* authz = req_.headers.get("authorization");
    Result<Edge> e = Status(Code::kUnauthorized, "edge credential required");
    if (authz != nullptr && authz->size() > 7 && strncasecmp(authz->c_str(), "Bearer ", 7) == 0) {
      e = ctx_.auth->authenticateEdge(authz->substr(7));
    }
    if (!e.isOk()) return fail(e.status(), /*edge_credential=*/true);
    return ok(edgeView(*e));
  }

  ApiContext& ctx_;
  const Request& req_;
  std::string raw_;
  JsonBody body_{json::object()};
  Account me_;
};

}  // namespace

void handleEdges(ApiContext& ctx, const ExchangePtr& ex) {
  if (ctx.auth == nullptr) return replyError(ex, Status(Code::kNotFound, "edges need authentication on"));
  // Reports (POST self/reports) and <name>/usage: fleet_usage.cc.
  if (isEdgeUsagePath(ex->request().path)) return handleFleetUsage(ctx, ex);
  serveApi(ctx, ex, kMaxApiBody, [&ctx, ex](std::string body) { return Edges(ctx, ex->request(), std::move(body)).run(); });
}

}  // namespace wharf
