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
#include "shared/base/log.h"
#include "core/scan/scanner.h"
#include "core/events/event_log.h"
#include "core/gc/garbage_collector.h"

namespace wharf {
namespace {

using nlohmann::json;

using Reply = ApiReply;

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
    if (!who.isOk()) return fail(who.status());
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
    return ok({{"scope", scope},
               {"bytes", u.bytes},
               {"blobs", u.blobs},
               {"manifests", u.manifests},
               {"repositories", u.repositories}});
  }
  std::string scope = req.path.size() > std::string("/api/v1/policies/").size()
                          ? req.path.substr(std::string("/api/v1/policies/").size())
                          : "";
  if (scope.empty()) {
    if (req.method != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    json items = json::array();
    for (const auto& p : *registry.policies()) items.push_back(p.toJson());
    return ok({{"items", items}});
  }
  if (req.method == "GET") {
    for (const auto& p : *registry.policies()) {
      if (p.scope == scope) return ok(p.toJson());
    }
    return fail(Status(Code::kNotFound, "no policy for " + scope));
  }
  if (req.method == "PUT") {
    auto j = JsonBody::parse(body);
    if (!j.isOk()) return fail(j.status());
    auto p = Policy::fromJson(scope, j->raw());
    if (!p.isOk()) return fail(p.status());
    if (Status st = registry.setPolicy(*p); !st.isOk()) return fail(st);
    if (ctx.audit) ctx.audit->record(actor, req.peer, "policy.set", scope, "success", p->toJson().dump());
    policyEvent(ctx, req, actor, event_type::kPolicySet, scope);
    // What the policy now refuses leaves the edges' caches (core/scan).
    if (ctx.scanner != nullptr && !p->block_severity.empty() && p->block_severity != "NONE") {
      auto refused = ctx.scanner->enforcePolicy(scope);
      if (!refused.isOk()) logWarn("vulnerability policy not sent to the edges", {{"scope", scope}, {"error", refused.status().message()}});
    }
    return ok(p->toJson());
  }
  if (req.method == "DELETE") {
    if (Status st = registry.deletePolicy(scope); !st.isOk()) return fail(st);
    if (ctx.audit) ctx.audit->record(actor, req.peer, "policy.remove", scope, "success");
    policyEvent(ctx, req, actor, event_type::kPolicyRemove, scope);
    return ok(nullptr, 204);
  }
  return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
}

}  // namespace

void handleStorage(ApiContext& ctx, const ExchangePtr& ex) {
  serveApi(ctx, ex, kMaxApiBody, [&ctx, ex](std::string body) { return storageApi(ctx, ex->request(), body); });
}

}  // namespace wharf
