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
//                                   -> {"name","site","realm","service","keys","settings",
//                                       "trust_policies":[{"scope","require","roles","keys"}]}
//   GET    /api/v1/edges/self/trust?repository=<name>
//          -> {"repository","guns":{<gun>:{<role>:<metadata as stored>}}}: the TUF metadata of
//          the repository's GUNs, which the edge verifies itself (edge/trust/edge_trust.h);
//          repositories the edge may pull only (403 otherwise)
//
// Central administration (administrators; see core/fleet/edge_commands.h for the kinds):
//   POST   /api/v1/edges/<name>/commands      {"kind","args"?} -> 202 <command>
//   GET    /api/v1/edges/<name>/commands?limit=  -> {"commands":[<command>...]} newest first
//   GET    /api/v1/edges/<name>/commands/<id> -> <command>
//   POST   /api/v1/sites/<site>/commands      {"kind","args"?} -> 202 {"commands":[...]}, one
//                                             per edge of the site
//
// The edge's channel (its credential; the edge opens every connection, so NAT is fine):
//   GET    /api/v1/edges/self/channel?after=<id>&revocations=<version>&events=<seq>&wait=<s>
//          -> {"commands":[{"id","kind","args"}...], "revocations"?: <list>,
//              "events":[{"seq","type","repository","tag","digest","previous_digest","media_type"}...],
//              "events_next": <seq>, "peers":[{"name","url"}...], "peers_version": <v>}
//          The unfinished commands above `after`; the token revocation list
//          (shared/auth/revocation.h) when the edge's version is not the current one; and
//          the pushes (tag.push, tag.move) after event `events` in the repositories the
//          edge may pull (its settings' "repositories"), for prefetch. Without `events`
//          the answer only gives `events_next` (the log's end: where to start). At once if
//          there is any of these, else when one comes or after `wait` seconds (0..50,
//          default 20) with none. A long poll rather than a stream: each answer is one JSON
//          document that any proxy passes whole, and the next poll's `after` and `events`
//          are the acknowledgement of delivery, so a reconnect is an ordinary poll.
//          `url` (optional): where the edge serves clients; `peers` lists the other edges
//          of its site that gave theirs lately (core/fleet/channel_hub.h). A new one wakes
//          their polls, and a poll whose `peers_version` is not the site's is answered at
//          once.
//   POST   /api/v1/edges/self/token  {"repository"} -> {"token","expires_in","issued_at"}:
//          a registry token for the edge's own pulls (prefetch, pins, refetching what its
//          scrub found corrupt): pull on that repository if the edge's settings allow it
//          (403 otherwise), subject "edge:<name>", refused once the edge is removed.
//   POST   /api/v1/edges/self/commands/<id>   {"ok":bool,"result"?:{},"error"?:""} -> the
//          command; the first outcome stands (an edge repeats it until it gets an answer)
//
// <edge> is Edge::toJson(). Administrators authenticate as on the rest of the admin API;
// an edge credential authenticates /self and nothing else (it is not a token the
// registry or the admin API accept). Handlers run on a worker: they write transactions.
#include <algorithm>
#include <limits>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "core/auth/revocations.h"
#include "core/events/event_log.h"
#include "core/fleet/channel_hub.h"
#include "core/fleet/edge_commands.h"
#include "core/trust/trust_service.h"
#include "shared/base/clock.h"
#include "shared/base/log.h"
#include "shared/event/loop.h"
#include "shared/http/client.h"
#include "shared/oci/names.h"

namespace wharf {
namespace {

using nlohmann::json;

using Reply = ApiReply;
// Edge endpoints challenge for an edge credential, the others as the admin API does.
Reply fail(const Status& st, bool edge_credential) {
  Reply r = apiFail(st);
  if (r.status == 401 && edge_credential) r.challenge = "Bearer realm=\"wharf-edge\"";
  return r;
}

constexpr size_t kChannelBatch = 100;
constexpr size_t kChannelEvents = 200;

// What one channel poll asks for.
struct ChannelQuery {
  std::string edge;
  std::string site;
  std::vector<std::string> repositories;  // the edge's settings' patterns
  uint64_t after = 0;                     // commands done
  uint64_t revocations = 0;               // the version the edge holds
  std::optional<uint64_t> peers;          // the site's version the edge holds (ChannelHub)
  std::optional<uint64_t> events;         // pushes after this seq (nullopt: only the cursor)
};

std::vector<std::string> edgeRepositories(const Edge& e) {
  std::vector<std::string> out;
  if (e.settings.is_object() && e.settings.contains("repositories") && e.settings["repositories"].is_array()) {
    for (const auto& p : e.settings["repositories"]) {
      if (p.is_string()) out.push_back(p.get<std::string>());
    }
    return out;
  }
  return {"*"};
}

// The pushes an edge may read after q.events, and the cursor past them.
struct ChannelEvents {
  json items = json::array();
  uint64_t next = 0;
};
Result<ChannelEvents> channelEvents(ApiContext& ctx, const ChannelQuery& q) {
  ChannelEvents out;
  if (ctx.events == nullptr) return out;
  if (!q.events) {
    out.next = ctx.events->lastSeq();
    return out;
  }
  EventFilter filter;
  filter.types = {event_type::kTagPush, event_type::kTagMove};
  filter.visible = [&q](const std::string& repo) { return anyRepositoryPatternMatches(q.repositories, repo); };
  auto page = ctx.events->query(filter, *q.events, kChannelEvents);
  if (!page.isOk()) return page.status();
  for (const Event& e : page->events) {
    out.items.push_back({{"seq", e.seq},
                         {"type", e.type},
                         {"repository", e.repository},
                         {"tag", e.target.tag},
                         {"digest", e.target.digest},
                         {"previous_digest", e.target.previous_digest},
                         {"media_type", e.target.media_type}});
  }
  out.next = std::max(*q.events, page->scanned_to);
  return out;
}

// The revocation list when the edge's copy (version `have`) is not the current one.
std::shared_ptr<const RevocationList> newerRevocations(ApiContext& ctx, uint64_t have) {
  Revocations* r = ctx.auth != nullptr ? ctx.auth->revocations() : nullptr;
  if (r == nullptr) return nullptr;
  auto list = r->current();
  return list->version != have ? list : nullptr;
}

// The channel's answer; marks the commands delivered (off the loop thread).
json channelBody(ApiContext& ctx, const ChannelQuery& q, const std::vector<EdgeCommand>& commands,
                 ChannelEvents events) {
  const std::string& edge = q.edge;
  json items = json::array();
  std::vector<uint64_t> ids;
  for (const auto& c : commands) {
    items.push_back(c.toWire());
    ids.push_back(c.id);
  }
  if (!ids.empty()) {
    ctx.work.submit([&ctx, edge, ids] {
      if (Status st = ctx.commands->delivered(edge, ids, RealClock::instance().nowMillis()); !st.isOk()) {
        logWarn("cannot mark edge commands delivered", {{"edge", edge}, {"error", st.message()}});
      }
    });
  }
  json peers = json::array();
  for (const auto& [name, url] : ctx.channel->peers(edge, q.site, RealClock::instance().nowMillis())) {
    peers.push_back({{"name", name}, {"url", url}});
  }
  json out = {{"commands", items},        {"events", std::move(events.items)},
              {"events_next", events.next}, {"peers", peers},
              {"peers_version", q.site.empty() ? 0 : ctx.channel->siteVersion(q.site)}};
  if (auto list = newerRevocations(ctx, q.revocations)) out["revocations"] = list->toJson();
  return out;
}

// A channel poll with nothing to deliver yet: answers when the hub wakes it (something
// was queued for the edge) or when the wait is over, with whatever is pending then.
class ChannelWait : public BodySource, public std::enable_shared_from_this<ChannelWait> {
 public:
  ChannelWait(Loop& loop, ApiContext& ctx, ChannelQuery query)
      : loop_(loop), ctx_(ctx), q_(std::move(query)), timer_(loop) {}
  ~ChannelWait() override {
    if (wait_id_ != 0) ctx_.channel->cancel(wait_id_);
  }

  void start(uint64_t generation, uint64_t wait_ms) {
    std::weak_ptr<ChannelWait> weak = shared_from_this();
    wait_id_ = ctx_.channel->wait(q_.edge, generation, loop_, [weak] {
      if (auto self = weak.lock()) self->ready();
    });
    timer_.start(wait_ms, [weak] {
      if (auto self = weak.lock()) self->ready();
    });
  }

  void next(std::function<void(Status, Piece)> cb) override {
    if (sent_) {
      Piece p;
      p.end = true;
      return cb(Status::ok(), std::move(p));
    }
    pending_ = std::move(cb);
    if (done_) deliver();
  }
  std::optional<uint64_t> length() const override { return std::nullopt; }

 private:
  void ready() {
    if (done_) return;
    done_ = true;
    timer_.stop();
    ctx_.channel->cancel(wait_id_);
    wait_id_ = 0;
    if (pending_) deliver();
  }

  void deliver() {
    auto cb = std::move(pending_);
    pending_ = nullptr;
    sent_ = true;
    auto commands = ctx_.commands->pending(q_.edge, q_.after, kChannelBatch);
    if (!commands.isOk()) return cb(commands.status(), {});
    auto events = channelEvents(ctx_, q_);
    if (!events.isOk()) return cb(events.status(), {});
    Piece p;
    p.data = channelBody(ctx_, q_, *commands, std::move(events).value()).dump();
    p.end = true;
    cb(Status::ok(), std::move(p));
  }

  Loop& loop_;
  ApiContext& ctx_;
  ChannelQuery q_;
  Timer timer_;
  uint64_t wait_id_ = 0;
  bool done_ = false;  // woken or timed out
  bool sent_ = false;
  std::function<void(Status, Piece)> pending_;
};

class Edges {
 public:
  Edges(ApiContext& ctx, const Request& req, std::string body) : ctx_(ctx), req_(req), raw_(std::move(body)) {}

  Reply run() {
    if (req_.path.rfind("/api/v1/sites", 0) == 0) return siteCommands();
    auto parts = splitPath(std::string_view(req_.path).substr(std::string_view("/api/v1/edges").size()));
    const std::string& m = req_.method;
    if (!parts.empty() && parts[0] == "self" && parts.size() > 1) return selfEndpoint(parts);
    if (parts.size() > 1) return adminEdgeEndpoint(parts);
    if (parts.size() == 1 && parts[0] == "register") {
      if (m != "POST") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      return registerEdge();
    }
    if (parts.size() == 1 && parts[0] == "self") {
      if (m != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      return self();
    }
    // The rest is for administrators.
    WHARF_RETURN_IF_ERROR_REPLY(authenticateAdmin());
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
  Status authenticateAdmin() {
    auto who = authenticateApiCaller(ctx_, req_);
    if (!who.isOk()) return who.status();
    me_ = std::move(who).value();
    if (!me_.admin) return Status(Code::kDenied, "only administrators manage edges");
    return Status::ok();
  }

  Result<Edge> authenticateSelf() {
    const std::string* authz = req_.headers.get("authorization");
    if (authz != nullptr && authz->size() > 7 && strncasecmp(authz->c_str(), "Bearer ", 7) == 0) {
      return ctx_.auth->authenticateEdge(authz->substr(7));
    }
    return Status(Code::kUnauthorized, "edge credential required");
  }

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
            {"settings", e.settings.is_object() ? e.settings : json::object()},
            {"trust_policies", trustPolicies()}};
  }

  // The trust policies edges enforce themselves (cosign keys stay here: the core checks
  // cosign signatures).
  json trustPolicies() {
    json out = json::array();
    for (const auto& p : *ctx_.registry.policies()) {
      if (p.trust.require.empty()) continue;
      out.push_back({{"scope", p.scope}, {"require", p.trust.require}, {"roles", p.trust.roles}, {"keys", p.trust.keys}});
    }
    return out;
  }

  Reply trustData(const Edge& e) {
    auto repo = req_.queryParam("repository");
    if (!repo || !validateRepositoryName(*repo).isOk()) return fail(Status(Code::kInvalidArgument, "repository= names a repository"));
    if (!anyRepositoryPatternMatches(edgeRepositories(e), *repo))
      return fail(Status(Code::kDenied, "edge \"" + e.name + "\" may not pull " + *repo + " (its settings' repositories)"));
    json guns = json::object();
    if (ctx_.trust != nullptr) {
      for (const auto& gun : ctx_.trust->gunsOf(*repo)) {
        (void)ctx_.trust->current(gun, "timestamp");  // signed again first if it expired
        auto files = ctx_.trust->store().currentAll(gun);
        if (!files.isOk()) return fail(files.status());
        for (const auto& f : *files) guns[gun][f.role] = f.bytes;
      }
    }
    return ok({{"repository", *repo}, {"guns", guns}});
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
    auto before = ctx_.identity->edge(name);
    if (!before.isOk()) return fail(before.status());
    auto e = ctx_.auth->setEdgeSettings(name, *settings);
    if (!e.isOk()) return fail(e.status());
    if (edgeRepositories(*before) != edgeRepositories(*e)) {
      // The edge's own tokens issued so far may name repositories it no longer may pull.
      ctx_.auth->revokeSubjects({std::string(AuthService::kEdgeSubjectPrefix) + name});
    }
    record("edge.settings", name, e->settings.dump());
    if (ctx_.commands != nullptr) {
      // The edge applies them at once rather than at its next refresh.
      auto queued = queueCommand(name, "refresh", json::object());
      if (!queued.isOk()) logWarn("cannot queue a refresh for the edge", {{"edge", name}, {"error", queued.status().message()}});
    }
    return ok(e->toJson());
  }

  Reply remove(const std::string& name) {
    WHARF_RETURN_IF_ERROR_REPLY(ctx_.identity->deleteEdge(name));
    if (ctx_.commands != nullptr) {
      if (Status st = ctx_.commands->dropEdge(name); !st.isOk()) {
        logWarn("cannot drop the edge's commands", {{"edge", name}, {"error", st.message()}});
      }
      ctx_.channel->notify(name);  // its waiting poll ends (and the next one is refused)
      ctx_.channel->forget(name);  // and its peers stop asking it
    }
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
    auto e = authenticateSelf();
    if (!e.isOk()) return fail(e.status(), /*edge_credential=*/true);
    return ok(edgeView(*e));
  }

  // --- the edge's own endpoints under /self ---
  Reply selfEndpoint(const std::vector<std::string>& parts) {
    auto e = authenticateSelf();
    if (!e.isOk()) return fail(e.status(), /*edge_credential=*/true);
    if (ctx_.commands == nullptr) return fail(Status(Code::kNotFound, "no such endpoint"));
    const std::string& m = req_.method;
    if (parts.size() == 2 && parts[1] == "channel") {
      if (m != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      return channel(*e);
    }
    if (parts.size() == 3 && parts[1] == "commands") {
      if (m != "POST") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      return acknowledge(*e, parts[2]);
    }
    if (parts.size() == 2 && parts[1] == "token") {
      if (m != "POST") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      return pullToken(*e);
    }
    if (parts.size() == 2 && parts[1] == "trust") {
      if (m != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      return trustData(*e);
    }
    return fail(Status(Code::kNotFound, "no such endpoint"));
  }

  Reply pullToken(const Edge& e) {
    WHARF_RETURN_IF_ERROR_REPLY(parseBody());
    auto repo = body_.string("repository", {.required = true, .max = kMaxRepositoryName, .non_empty = true});
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    auto token = ctx_.auth->issueEdgeToken(e, *repo);
    if (!token.isOk()) {
      if (token.status().code() == Code::kDenied) {
        ctx_.audit->record("edge:" + e.name, req_.peer, "edge.token", *repo, "denied", token.status().message());
      }
      return fail(token.status());
    }
    Reply r = ok(*token);
    r.no_store = true;
    return r;
  }

  Reply channel(const Edge& e) {
    auto after = queryNumber("after", 0, std::numeric_limits<int64_t>::max(), 0);
    if (!after.isOk()) return fail(after.status());
    auto wait_s = queryNumber("wait", 0, 50, 20);
    if (!wait_s.isOk()) return fail(wait_s.status());
    auto have = queryNumber("revocations", 0, std::numeric_limits<int64_t>::max(), 0);
    if (!have.isOk()) return fail(have.status());
    // Where the edge serves clients, for its site's other edges (see ChannelHub).
    std::string url;
    if (auto u = req_.queryParam("url")) {
      if (u->size() > 512 || !parseBaseUrl(*u).isOk()) {
        return fail(Status(Code::kInvalidArgument, "url: expected http(s)://HOST[:PORT], the edge's address for its peers"));
      }
      url = *u;
    }
    ChannelQuery q;
    q.edge = e.name;
    q.site = e.site;
    q.repositories = edgeRepositories(e);
    q.after = static_cast<uint64_t>(*after);
    q.revocations = static_cast<uint64_t>(*have);
    if (req_.queryParam("peers_version")) {  // an edge that takes part in its site's cache
      auto v = queryNumber("peers_version", 0, std::numeric_limits<int64_t>::max(), 0);
      if (!v.isOk()) return fail(v.status());
      q.peers = static_cast<uint64_t>(*v);
    }
    if (req_.queryParam("events")) {
      auto events = queryNumber("events", 0, std::numeric_limits<int64_t>::max(), 0);
      if (!events.isOk()) return fail(events.status());
      q.events = static_cast<uint64_t>(*events);
    }
    uint64_t generation = ctx_.channel->generation(e.name);
    ctx_.channel->announce(e.name, e.site, url, RealClock::instance().nowMillis());
    auto pending = ctx_.commands->pending(e.name, q.after, kChannelBatch);
    if (!pending.isOk()) return fail(pending.status());
    auto events = channelEvents(ctx_, q);
    if (!events.isOk()) return fail(events.status());
    if (!pending->empty() || !events->items.empty() || *wait_s == 0 ||
        newerRevocations(ctx_, q.revocations) != nullptr || (q.peers && !e.site.empty() && ctx_.channel->siteVersion(e.site) != *q.peers) ||
        ctx_.channel->closed()) {
      return ok(channelBody(ctx_, q, *pending, std::move(events).value()));
    }
    ApiReply r;
    r.stream = [&ctx = ctx_, q = std::move(q), generation, wait_ms = static_cast<uint64_t>(*wait_s) * 1000](Loop& loop) {
      auto source = std::make_shared<ChannelWait>(loop, ctx, q);
      source->start(generation, wait_ms);
      Response resp;
      resp.headers.add("Content-Type", "application/json");
      resp.headers.add("Cache-Control", "no-store");
      resp.body = std::shared_ptr<BodySource>(source);
      return resp;
    };
    return r;
  }

  Reply acknowledge(const Edge& e, const std::string& id_text) {
    auto id = commandId(id_text);
    if (!id.isOk()) return fail(id.status());
    WHARF_RETURN_IF_ERROR_REPLY(parseBody());
    auto succeeded = body_.boolean("ok", /*required=*/true);
    auto result = body_.rawObject("result");
    auto error = body_.string("error", {.max = 4096});
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    auto done = ctx_.commands->complete(e.name, *id, *succeeded, result.value_or(json::object()), error.value_or(""),
                                        RealClock::instance().nowMillis());
    if (!done.isOk()) return fail(done.status());
    return ok(done->toJson());
  }

  // --- administrators: /api/v1/edges/<name>/commands[/<id>] ---
  Reply adminEdgeEndpoint(const std::vector<std::string>& parts) {
    if (parts.size() > 3 || parts[1] != "commands") return fail(Status(Code::kNotFound, "no such endpoint"));
    WHARF_RETURN_IF_ERROR_REPLY(authenticateAdmin());
    if (ctx_.commands == nullptr) return fail(Status(Code::kNotFound, "no such endpoint"));
    const std::string& name = parts[0];
    auto e = ctx_.identity->edge(name);
    if (!e.isOk()) return fail(e.status());
    const std::string& m = req_.method;
    if (parts.size() == 3) {
      if (m != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      auto id = commandId(parts[2]);
      if (!id.isOk()) return fail(id.status());
      auto c = ctx_.commands->get(name, *id);
      if (!c.isOk()) return fail(c.status());
      return ok(c->toJson());
    }
    if (m == "GET") {
      auto limit = queryNumber("limit", 1, 1000, 50);
      if (!limit.isOk()) return fail(limit.status());
      auto list = ctx_.commands->list(name, static_cast<size_t>(*limit));
      if (!list.isOk()) return fail(list.status());
      json items = json::array();
      for (const auto& c : *list) items.push_back(c.toJson());
      return ok({{"commands", items}});
    }
    if (m != "POST") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    auto command = readCommand();
    if (!command.isOk()) return fail(command.status());
    auto queued = queueCommand(name, command->first, command->second);
    if (!queued.isOk()) return fail(queued.status());
    return ok(queued->toJson(), 202);
  }

  // POST /api/v1/sites/<site>/commands: the command for every edge of the site.
  Reply siteCommands() {
    auto parts = splitPath(std::string_view(req_.path).substr(std::string_view("/api/v1/sites").size()));
    if (parts.size() != 2 || parts[1] != "commands") return fail(Status(Code::kNotFound, "no such endpoint"));
    if (req_.method != "POST") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
    WHARF_RETURN_IF_ERROR_REPLY(authenticateAdmin());
    if (ctx_.commands == nullptr) return fail(Status(Code::kNotFound, "no such endpoint"));
    auto command = readCommand();
    if (!command.isOk()) return fail(command.status());
    json items = json::array();
    for (const auto& e : ctx_.identity->edges()) {
      if (e.site != parts[0]) continue;
      auto queued = queueCommand(e.name, command->first, command->second);
      if (!queued.isOk()) return fail(queued.status());
      items.push_back(queued->toJson());
    }
    if (items.empty()) return fail(Status(Code::kNotFound, "no edge has site \"" + parts[0] + "\""));
    return ok({{"commands", items}}, 202);
  }

  Result<std::pair<std::string, json>> readCommand() {
    WHARF_RETURN_IF_ERROR(parseBody());
    auto kind = body_.string("kind", {.required = true, .max = 32, .non_empty = true});
    auto args = body_.rawObject("args");
    WHARF_RETURN_IF_ERROR(body_.finish());
    auto canonical = validateEdgeCommand(*kind, args.value_or(json::object()));
    if (!canonical.isOk()) return canonical.status();
    return std::make_pair(*kind, std::move(canonical).value());
  }

  Result<EdgeCommand> queueCommand(const std::string& edge, const std::string& kind, const json& args) {
    auto c = ctx_.commands->enqueue(edge, kind, args, me_.name, RealClock::instance().nowMillis());
    if (!c.isOk()) return c.status();
    ctx_.channel->notify(edge);
    record("edge.command", edge, "id=" + std::to_string(c->id) + " kind=" + kind + " args=" + args.dump());
    return c;
  }

  Result<uint64_t> commandId(const std::string& text) {
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
      return Status(Code::kInvalidArgument, "\"" + text + "\" is not a command id");
    }
    return static_cast<uint64_t>(std::stoull(text));
  }

  Result<int64_t> queryNumber(const char* name, int64_t min, int64_t max, int64_t fallback) {
    auto v = req_.queryParam(name);
    if (!v) return fallback;
    if (v->empty() || v->size() > 18 || v->find_first_not_of("0123456789") != std::string::npos) {
      return Status(Code::kInvalidArgument, std::string(name) + ": expected a number (at most 18 digits)");
    }
    int64_t n = std::stoll(*v);
    if (n < min || n > max) {
      return Status(Code::kInvalidArgument,
                    std::string(name) + ": expected " + std::to_string(min) + " to " + std::to_string(max));
    }
    return n;
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
