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

// Returns the failed Status as a Reply.
#define WHARF_RETURN_IF_ERROR_REPLY(expr) \
  do { ::wharf::Status _st = (expr); if (!_st.isOk()) return fail(_st); } while (0)

namespace wharf {
namespace {

using nlohmann::json;

struct Reply {
  int status = 200;
  json body;
  bool secret = false;     // carries a secret: not to be cached
  std::string challenge;   // WWW-Authenticate on a 401
};

Reply ok(json body, int status = 200) { return Reply{status, std::move(body), false, ""}; }
Reply fail(const Status& st) {
  return Reply{errorInfo(st.code()).http_status, errorJson(st), false, ""};
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
    if (!who.isOk()) {
      Reply r = fail(who.status());
      if (r.status == 401) r.challenge = "Basic realm=\"wharf\"";
      return r;
    }
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
      return ok(e->toJson());
    }
    if (m == "PATCH") return update(name);
    if (m == "DELETE") return remove(name);
    return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
  }

 private:
  Status parseBody() {
    auto body = parseJsonObject(raw_);
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
    return ok({{"edges", items}});
  }

  Reply create() {
    WHARF_RETURN_IF_ERROR_REPLY(allowFields(body_, {"name", "site", "settings", "ttl_seconds"}));
    for (const char* k : {"name", "site"}) {
      if (body_.contains(k) && !body_[k].is_string()) return fail(Status(Code::kInvalidArgument, std::string(k) + " is a string"));
    }
    if (!body_.contains("name")) return fail(Status(Code::kNameInvalid, "name is required"));
    json settings = body_.value("settings", json::object());
    int64_t ttl_ms = AuthService::kJoinTokenTtlMs;
    if (body_.contains("ttl_seconds")) {
      if (!body_["ttl_seconds"].is_number_integer()) {
        return fail(Status(Code::kInvalidArgument, "ttl_seconds is an integer from 60 to 2592000 (30 days)"));
      }
      int64_t s = body_["ttl_seconds"].get<int64_t>();
      if (s < AuthService::kMinJoinTokenTtlMs / 1000 || s > AuthService::kMaxJoinTokenTtlMs / 1000) {
        return fail(Status(Code::kInvalidArgument, "ttl_seconds is an integer from 60 to 2592000 (30 days)"));
      }
      ttl_ms = s * 1000;
    }
    auto created = ctx_.auth->createEdge(body_["name"].get<std::string>(), body_.value("site", ""), settings, ttl_ms,
                                         me_.name);
    if (!created.isOk()) return fail(created.status());
    const Edge& e = created->edge;
    record("edge.add", e.name, "site=" + e.site + " expires=" + formatRfc3339(e.join_expires_ms));
    Reply r = ok({{"name", e.name},
                  {"site", e.site},
                  {"join_token", created->join_token},
                  {"expires_at", formatRfc3339(e.join_expires_ms)}},
                 201);
    r.secret = true;
    return r;
  }

  Reply update(const std::string& name) {
    WHARF_RETURN_IF_ERROR_REPLY(allowFields(body_, {"settings"}));
    if (!body_.contains("settings")) return fail(Status(Code::kInvalidArgument, "settings is required"));
    auto e = ctx_.auth->setEdgeSettings(name, body_["settings"]);
    if (!e.isOk()) return fail(e.status());
    record("edge.settings", name, e->settings.dump());
    return ok(e->toJson());
  }

  Reply remove(const std::string& name) {
    WHARF_RETURN_IF_ERROR_REPLY(ctx_.identity->deleteEdge(name));
    record("edge.remove", name);
    return ok(json::object(), 204);
  }

  Reply registerEdge() {
    Status parsed = parseBody();
    std::string token;
    if (parsed.isOk() && body_.contains("join_token") && body_["join_token"].is_string()) {
      token = body_["join_token"].get<std::string>();
    }
    if (token.empty()) {
      return fail(parsed.isOk() ? Status(Code::kInvalidArgument, "join_token is required") : parsed);
    }
    auto reg = ctx_.auth->registerEdge(token, req_.peer);
    if (!reg.isOk()) {
      ctx_.audit->record("", req_.peer, "edge.register", "", "failure", reg.status().message());
      Reply r = fail(reg.status());
      if (r.status == 401) r.challenge = "Bearer realm=\"wharf-edge\"";
      return r;
    }
    const Edge& e = reg->edge;
    ctx_.audit->record("edge:" + e.name, req_.peer, "edge.register", e.name, "success", "site=" + e.site);
    json out = edgeView(e);
    out["credential"] = reg->credential;
    Reply r = ok(out);
    r.secret = true;
    return r;
  }

  Reply self() {
    const std::string* authz = req_.headers.get("authorization");
    Result<Edge> e = Status(Code::kUnauthorized, "edge credential required");
    if (authz != nullptr && authz->size() > 7 && strncasecmp(authz->c_str(), "Bearer ", 7) == 0) {
      e = ctx_.auth->authenticateEdge(authz->substr(7));
    }
    if (!e.isOk()) {
      Reply r = fail(e.status());
      if (r.status == 401) r.challenge = "Bearer realm=\"wharf-edge\"";
      return r;
    }
    return ok(edgeView(*e));
  }

  ApiContext& ctx_;
  const Request& req_;
  std::string raw_;
  json body_ = json::object();
  Account me_;
};

}  // namespace

void handleEdges(ApiContext& ctx, const ExchangePtr& ex) {
  if (ctx.auth == nullptr) return replyError(ex, Status(Code::kNotFound, "edges need authentication on"));
  ex->readFullBody(64 * 1024, [&ctx, ex](Status st, std::string body) {
    if (!st.isOk()) return replyError(ex, st);
    auto shared = std::make_shared<std::string>(std::move(body));
    offload<Reply>(
        ctx, ex, [&ctx, ex, shared] { return Edges(ctx, ex->request(), std::move(*shared)).run(); },
        [ex](Reply r) {
          Response resp;
          resp.status = r.status;
          if (r.status != 204) resp = Response::json(r.status, r.body.dump(-1, ' ', false, json::error_handler_t::replace));
          if (!r.challenge.empty()) resp.headers.add("WWW-Authenticate", r.challenge);
          if (r.secret) resp.headers.add("Cache-Control", "no-store");
          reply(ex, std::move(resp));
        });
  });
}

}  // namespace wharf
