// Webhooks, under /api/v1/webhooks:
//
//   POST   /api/v1/webhooks              {"scope","url","events":[...],"secret"?,"enabled"?} -> 201 <hook>
//   GET    /api/v1/webhooks              -> {"webhooks":[<hook>...]}   (the hooks the caller manages)
//   GET    /api/v1/webhooks/<id>         -> <hook>
//   PATCH  /api/v1/webhooks/<id>         {"url"?,"events"?,"secret"?,"enabled"?} -> <hook>
//   DELETE /api/v1/webhooks/<id>         -> 204 (its cursor and delivery log go too)
//   GET    /api/v1/webhooks/<id>/deliveries?limit=N -> {"deliveries":[<delivery>...]} newest first
//   POST   /api/v1/webhooks/<id>/test    -> <delivery> (one "webhook.test" event, sent now, once)
//
// <hook> is Webhook::toJson(): {"id","scope","url","events","has_secret","enabled",
// "created_by","created_at"}; the secret is write-only. <delivery> is DeliveryRecord::toJson().
//
// Who manages a hook: administrators (any scope, and "*"); for a namespace scope
// ("team/*") its owner (the user of that name or an owner of the organization); for a
// repository scope its administrators (those the access policy allows "delete"). Others
// get 404 for hooks they may not manage, as if there were none.
//
// Secrets never follow a URL they were not stored with: a PATCH that changes the URL of a
// hook that has a secret must say what the secret is for the new URL ("secret": a new
// one, or "" to deliver unsigned), or it is refused with 400. /test takes no URL: it
// sends to the stored URL with the stored secret.
//
// Targets are checked at creation, at every URL change and at every delivery (see
// core/events/webhooks.h): loopback, link-local, private and the like are refused with
// 400 naming the address and the reason unless the core runs with
// webhook_allow_private. Handlers run on a worker: they write transactions and resolve
// host names.
#include <set>

#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "core/events/webhooks.h"
#include "shared/base/ids.h"

namespace wharf {
namespace {

using nlohmann::json;

using Reply = ApiReply;

class Hooks {
 public:
  Hooks(ApiContext& ctx, const Request& req, std::string body) : ctx_(ctx), svc_(*ctx.webhooks), req_(req), raw_(std::move(body)) {}

  Reply run() {
    auto who = authenticateApiCaller(ctx_, req_);
    if (!who.isOk()) return fail(who.status());
    me_ = std::move(who).value();
    auto body = JsonBody::parse(raw_);
    if (!body.isOk()) return fail(body.status());
    body_ = std::move(body).value();
    auto parts = splitPath(std::string_view(req_.path).substr(std::string_view("/api/v1/webhooks").size()));
    const std::string& m = req_.method;
    if (parts.empty()) {
      if (m == "GET") return list();
      if (m == "POST") return create();
      return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    }
    if (parts.size() > 2) return fail(Status(Code::kNotFound, "no such endpoint"));
    auto hook = svc_.store.get(parts[0]);
    if (!hook.isOk() || !mayManage(hook->scope)) return fail(Status(Code::kNotFound, "no webhook " + parts[0]));
    if (parts.size() == 2) {
      if (parts[1] == "deliveries" && m == "GET") return deliveries(*hook);
      if (parts[1] == "test" && m == "POST") return test(*hook);
      return fail(Status(Code::kNotFound, "no such endpoint"));
    }
    if (m == "GET") return ok(hook->toJson());
    if (m == "PATCH") return update(*hook);
    if (m == "DELETE") return remove(*hook);
    return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
  }

 private:
  bool mayManage(const std::string& scope) {
    if (me_.admin) return true;
    if (scope == "*") return false;
    if (scope.size() > 2 && scope.compare(scope.size() - 2, 2, "/*") == 0) {
      std::string ns = scope.substr(0, scope.find('/'));
      return ns == me_.name || (ctx_.identity != nullptr && ctx_.identity->orgRole(ns, me_.name) == "owner");
    }
    auto a = ctx_.auth->allowedActions(me_, scope);
    return std::find(a.begin(), a.end(), "delete") != a.end();
  }


  // The events field: event types or patterns (manifest.*, *). nullopt: absent or wrong.
  std::optional<std::vector<std::string>> readEvents(bool required) {
    auto events = body_.strings("events", {.required = required, .max_items = 64, .max = 64, .non_empty = true});
    if (!events) return std::nullopt;
    const auto& known = knownEventTypes();
    for (const auto& s : *events) {
      bool pattern = s == "*" || (s.size() > 2 && s.compare(s.size() - 2, 2, ".*") == 0);
      if (!pattern && std::find(known.begin(), known.end(), s) == known.end()) {
        body_.fail("events", "unknown event type \"" + s + "\" (types such as manifest.push, or patterns such as manifest.*)");
        return std::nullopt;
      }
    }
    return events;
  }

  Status checkUrl(const std::string& url) {
    auto u = parseHookUrl(url);
    if (!u.isOk()) return u.status();
    auto addrs = resolveHookTarget(*u, svc_.allow_private);
    return addrs.isOk() ? Status::ok() : addrs.status();
  }

  void record(const std::string& action, const std::string& object, const std::string& detail = "") {
    if (ctx_.audit != nullptr) ctx_.audit->record(me_.name, req_.peer, action, object, "success", detail);
  }

  Reply list() {
    json items = json::array();
    for (const auto& h : svc_.store.list()) {
      if (mayManage(h.scope)) items.push_back(h.toJson());
    }
    return ok({{"webhooks", items}});
  }

  Reply create() {
    auto scope = body_.string("scope", {.required = true, .max = 256});
    auto url = body_.string("url", {.required = true, .max = 2048});
    auto events = readEvents(/*required=*/true);
    auto secret = body_.string("secret", {.max = 1024});  // "": unsigned
    auto enabled = body_.boolean("enabled");
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    Webhook h;
    h.scope = *scope;
    WHARF_RETURN_IF_ERROR_REPLY(validateHookScope(h.scope));
    if (!mayManage(h.scope)) {
      return fail(Status(Code::kDenied, "only administrators of " + h.scope + " (or of the registry) manage its webhooks"));
    }
    h.url = *url;
    WHARF_RETURN_IF_ERROR_REPLY(checkUrl(h.url));
    h.events = std::move(*events);
    h.secret = secret.value_or("");
    h.enabled = enabled.value_or(h.enabled);
    h.id = newUuid();
    h.created_by = me_.name;
    h.created_ms = RealClock::instance().nowMillis();
    // A new hook gets the events from now on.
    WHARF_RETURN_IF_ERROR_REPLY(svc_.store.setCursor(h.id, svc_.events.lastSeq()));
    WHARF_RETURN_IF_ERROR_REPLY(svc_.store.put(h));
    svc_.dispatcher.kick();
    record("webhook.create", h.id, "scope=" + h.scope);
    return ok(h.toJson(), 201);
  }

  Reply update(Webhook h) {
    auto url = body_.string("url", {.max = 2048});
    auto events = readEvents(/*required=*/false);
    auto secret = body_.string("secret", {.max = 1024});
    auto enabled = body_.boolean("enabled");
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    if (url && *url != h.url) {
      if (!h.secret.empty() && !secret) {
        return fail(Status(Code::kInvalidArgument,
                           "changing the url of a hook with a secret needs \"secret\" too (a new secret, or \"\" to "
                           "deliver unsigned): a stored secret is never sent to another URL"));
      }
      WHARF_RETURN_IF_ERROR_REPLY(checkUrl(*url));
      h.url = *url;
    }
    if (events) h.events = std::move(*events);
    if (secret) h.secret = *secret;
    if (enabled) h.enabled = *enabled;
    WHARF_RETURN_IF_ERROR_REPLY(svc_.store.put(h));
    svc_.dispatcher.kick();
    std::string changed;
    for (auto it = body_.raw().begin(); it != body_.raw().end(); ++it) changed += (changed.empty() ? "" : ",") + it.key();
    record("webhook.update", h.id, changed);
    return ok(h.toJson());
  }

  Reply remove(const Webhook& h) {
    WHARF_RETURN_IF_ERROR_REPLY(svc_.store.remove(h.id));
    record("webhook.delete", h.id, "scope=" + h.scope);
    return ok(json::object(), 204);
  }

  Reply deliveries(const Webhook& h) {
    size_t limit = 50;
    if (auto v = req_.queryParam("limit")) {
      if (v->empty() || v->size() > 3 || v->find_first_not_of("0123456789") != std::string::npos || std::stoul(*v) == 0) {
        return fail(Status(Code::kInvalidArgument, "limit is 1 to 999"));
      }
      limit = std::stoul(*v);
    }
    json items = json::array();
    for (const auto& d : svc_.store.deliveries(h.id, limit)) items.push_back(d.toJson());
    return ok({{"deliveries", items}});
  }

  Reply test(const Webhook& h) {
    DeliveryRecord r = svc_.dispatcher.sendTest(h, me_.name);
    record("webhook.test", h.id, r.outcome);
    return ok(r.toJson());
  }

  ApiContext& ctx_;
  WebhookService& svc_;
  const Request& req_;
  std::string raw_;
  JsonBody body_{json::object()};
  Account me_;
};

}  // namespace

void handleWebhooks(ApiContext& ctx, const ExchangePtr& ex) {
  if (ctx.auth == nullptr || ctx.webhooks == nullptr) {
    return replyError(ex, Status(Code::kNotFound, "webhooks need authentication on"));
  }
  serveApi(ctx, ex, kMaxApiBody, [&ctx, ex](std::string body) { return Hooks(ctx, ex->request(), std::move(body)).run(); });
}

}  // namespace wharf
