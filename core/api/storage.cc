// Storage policies and usage, administrators only (with --auth none, open like the rest
// of that mode):
//
//   GET    /api/v1/policies                   -> {"items":[<policy>...]}
//   GET    /api/v1/policies/<scope>           -> <policy>      scope: team/app or team/*
//   PUT    /api/v1/policies/<scope>           {"retention":{"match","keep_last","keep_days"},
//                                              "immutable":["v*",...]} -> <policy>
//   DELETE /api/v1/policies/<scope>           -> 204
//   GET    /api/v1/usage?scope=team/*         -> {"scope","bytes","blobs","manifests","repositories"}
//                                              (scope "*": the whole registry; shared
//                                              content counted once per scope)
//
// Garbage collection itself is a job: POST /api/v1/jobs {"kind":"gc","params":{...}}.
#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "core/events/event_log.h"
#include "core/gc/garbage_collector.h"

namespace wharf {
namespace {

using nlohmann::json;

struct Reply {
  int status = 200;
  json body;
  std::string challenge;
};

Reply fail(const Status& st) {
  return Reply{errorInfo(st.code()).http_status, errorJson(st), ""};
}

// Policy changes are events too (type policy.set / policy.remove, the scope as the
// repository: administrators see them).
void policyEvent(ApiContext& ctx, const Request& req, const std::string& actor, const char* type,
                 const std::string& scope) {
  if (ctx.events == nullptr) return;
  Event e;
  e.type = type;
  e.actor = actor;
  e.repository = scope;
  e.addr = req.peer;
  e.method = req.method;
  ctx.events->append(std::move(e));
}

Reply storageApi(ApiContext& ctx, const Request& req, const std::string& body) {
  std::string actor = "anonymous";
  if (ctx.auth != nullptr) {
    auto who = authenticateApiCaller(ctx, req);
    if (!who.isOk()) {
      Reply r = fail(who.status());
      if (r.status == 401) r.challenge = "Basic realm=\"wharf\"";
      return r;
    }
    if (!who->admin) return fail(Status(Code::kDenied, "only administrators manage storage policies"));
    actor = who->name;
  }
  Registry& registry = ctx.registry;
  if (req.path == "/api/v1/usage") {
    if (req.method != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    std::string scope = req.queryParam("scope").value_or("*");
    if (scope != "*") {
      auto p = Policy::fromJson(scope, json::object());  // the same scope rules
      if (!p.isOk()) return fail(p.status());
    }
    auto usage = storageUsage(registry, scope);
    if (!usage.isOk()) return fail(usage.status());
    const StorageUsage& u = *usage;
    return Reply{200,
                 {{"scope", scope},
                  {"bytes", u.bytes},
                  {"blobs", u.blobs},
                  {"manifests", u.manifests},
                  {"repositories", u.repositories}},
                 ""};
  }
  std::string scope = req.path.size() > std::string("/api/v1/policies/").size()
                          ? req.path.substr(std::string("/api/v1/policies/").size())
                          : "";
  if (scope.empty()) {
    if (req.method != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    json items = json::array();
    for (const auto& p : *registry.policies()) items.push_back(p.toJson());
    return Reply{200, {{"items", items}}, ""};
  }
  if (req.method == "GET") {
    for (const auto& p : *registry.policies()) {
      if (p.scope == scope) return Reply{200, p.toJson(), ""};
    }
    return fail(Status(Code::kNotFound, "no policy for " + scope));
  }
  if (req.method == "PUT") {
    auto j = json::parse(body, nullptr, false);
    if (j.is_discarded()) return fail(Status(Code::kInvalidArgument, "the body must be a JSON object"));
    auto p = Policy::fromJson(scope, j);
    if (!p.isOk()) return fail(p.status());
    if (Status st = registry.setPolicy(*p); !st.isOk()) return fail(st);
    if (ctx.audit) ctx.audit->record(actor, req.peer, "policy.set", scope, "success", p->toJson().dump());
    policyEvent(ctx, req, actor, event_type::kPolicySet, scope);
    return Reply{200, p->toJson(), ""};
  }
  if (req.method == "DELETE") {
    if (Status st = registry.deletePolicy(scope); !st.isOk()) return fail(st);
    if (ctx.audit) ctx.audit->record(actor, req.peer, "policy.remove", scope, "success");
    policyEvent(ctx, req, actor, event_type::kPolicyRemove, scope);
    return Reply{204, nullptr, ""};
  }
  return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
}

}  // namespace

void handleStorage(ApiContext& ctx, const ExchangePtr& ex) {
  ex->readFullBody(64 * 1024, [&ctx, ex](Status st, std::string body) {
    if (!st.isOk()) return replyError(ex, st);
    auto shared = std::make_shared<std::string>(std::move(body));
    offload<Reply>(
        ctx, ex, [&ctx, ex, shared] { return storageApi(ctx, ex->request(), *shared); },
        [ex](Reply r) {
          Response resp;
          resp.status = r.status;
          if (r.status != 204) resp = Response::json(r.status, r.body.dump());
          if (!r.challenge.empty()) resp.headers.add("WWW-Authenticate", r.challenge);
          reply(ex, std::move(resp));
        });
  });
}

}  // namespace wharf
