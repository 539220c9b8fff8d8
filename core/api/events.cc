// The event log over HTTP:
//
//   GET /api/v1/events?repository=&namespace=&type=&actor=&from=&to=&since=&limit=
//       -> {"events":[<event>...],"next":<seq>|null,"last_seq":<seq>}
//   GET /api/v1/events/stream?since=&repository=&namespace=&type=&actor=
//       (or Last-Event-ID: <seq>) -> text/event-stream, one
//       "id: <seq>\nevent: <type>\ndata: <event>\n\n" per event, ": keepalive" every 15 s
//
// <event> is Event::toJson(). `type` is a comma-separated list (and may repeat) of types
// or patterns ("manifest.*"); from/to are RFC 3339 or epoch milliseconds; `since` is a
// sequence number (events after it); limit is 1 to 1000 (100). A page ends early after
// 10,000 events looked at; follow `next` until it is null.
//
// Visibility: an administrator sees every event; anyone else only events of the
// repositories they may pull (the access policy of the token endpoint,
// AuthService::allowedActions). Like the rest of /api/v1, callers authenticate (Basic or
// Bearer); a request without credentials is a 401. Without authentication (--auth
// none) everyone sees everything, as everyone may pull everything. A live feed checks a
// repository's access again at most a minute after it last did.
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "core/events/event_log.h"
#include "shared/event/loop.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr uint64_t kKeepaliveMs = 15'000;
constexpr int64_t kAccessRecheckMs = 60'000;

struct Query {
  EventFilter filter;
  std::optional<uint64_t> since;
  size_t limit = 100;
};

Result<uint64_t> parseSeq(const std::string& v, const char* what) {
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) {
    return Status(Code::kInvalidArgument, std::string(what) + " is a sequence number");
  }
  return std::stoull(v);
}

Result<Query> parseQueryParams(const Request& req) {
  Query q;
  q.filter.repository = req.queryParam("repository").value_or("");
  q.filter.ns = req.queryParam("namespace").value_or("");
  while (!q.filter.ns.empty() && q.filter.ns.back() == '/') q.filter.ns.pop_back();
  q.filter.actor = req.queryParam("actor").value_or("");
  for (const auto& v : req.queryParams("type")) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t end = v.find(',', start);
      if (end == std::string::npos) end = v.size();
      std::string t = v.substr(start, end - start);
      start = end + 1;
      if (t.empty()) continue;
      bool pattern = t == "*" || (t.size() > 2 && t.compare(t.size() - 2, 2, ".*") == 0);
      const auto& known = knownEventTypes();
      if (!pattern && std::find(known.begin(), known.end(), t) == known.end()) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        return Status(Code::kInvalidArgument, "unknown event type \"" + t + "\" (types: " + list + "; or a pattern such as manifest.*)");
      }
      q.filter.types.push_back(t);
    }
  }
  for (const char* k : {"from", "to"}) {
    if (auto v = req.queryParam(k)) {
      auto t = parseTimeBound(*v);
      if (!t.isOk()) return Status(Code::kInvalidArgument, std::string(k) + ": " + t.status().message());
      (std::string(k) == "from" ? q.filter.from_ms : q.filter.to_ms) = *t;
    }
  }
  if (auto v = req.queryParam("since")) {
    auto s = parseSeq(*v, "since");
    if (!s.isOk()) return s.status();
    q.since = *s;
  }
  if (auto v = req.queryParam("limit")) {
    if (v->empty() || v->size() > 4 || v->find_first_not_of("0123456789") != std::string::npos || std::stoul(*v) < 1 ||
        std::stoul(*v) > 1000) {
      return Status(Code::kInvalidArgument, "limit is 1 to 1000");
    }
    q.limit = std::stoul(*v);
  }
  return q;
}

// Who may see what: null for "everything".
std::function<bool(const std::string&)> visibility(ApiContext& ctx, const Account& who) {
  if (ctx.auth == nullptr || who.admin) return nullptr;
  AuthService* auth = ctx.auth;
  return [auth, who](const std::string& repo) {
    auto a = auth->allowedActions(who, repo);
    return std::find(a.begin(), a.end(), "pull") != a.end();
  };
}

Result<Account> caller(ApiContext& ctx, const Request& req) {
  if (ctx.auth == nullptr) {
    Account all;
    all.admin = true;  // an open registry: everyone may pull everything
    return all;
  }
  return authenticateApiCaller(ctx, req);
}

// The live feed: a response body that never ends by itself. It sends what the log has
// after its cursor (reading committed events, so nothing is sent twice or skipped), then
// waits for the log's next commit, with a keepalive comment every 15 s of silence.
class EventStream : public BodySource, public std::enable_shared_from_this<EventStream> {
 public:
  EventStream(Loop& loop, EventLog& log, EventFilter filter, std::function<bool(const std::string&)> visible,
              uint64_t cursor)
      : loop_(loop), log_(log), filter_(std::move(filter)), visible_(std::move(visible)), cursor_(cursor),
        keepalive_(loop) {}
  ~EventStream() override {
    if (subscription_ != 0) log_.unsubscribe(subscription_);
  }

  void start() {
    std::weak_ptr<EventStream> weak = shared_from_this();
    subscription_ = log_.subscribe(loop_, [weak](uint64_t last) {
      if (auto self = weak.lock()) self->onCommit(last);
    });
    if (subscription_ == 0) closed_ = true;
    if (visible_) {
      // Cached per repository, re-checked after kAccessRecheckMs.
      filter_.visible = [this](const std::string& repo) {
        int64_t now = monotonicMillis();
        auto it = access_.find(repo);
        if (it == access_.end() || now - it->second.second > kAccessRecheckMs) {
          it = access_.insert_or_assign(repo, std::make_pair(visible_(repo), now)).first;
        }
        return it->second.first;
      };
    }
  }

  void next(std::function<void(Status, Piece)> cb) override {
    if (!greeted_) {
      greeted_ = true;
      Piece p;
      p.data = "retry: 3000\n\n";
      return cb(Status::ok(), std::move(p));
    }
    produce(std::move(cb));
  }
  std::optional<uint64_t> length() const override { return std::nullopt; }

 private:
  void produce(std::function<void(Status, Piece)> cb) {
    // A few pages of events nobody here may see are skipped at once; more wait for the
    // next turn of the loop, so one stream never holds its thread for long.
    for (int round = 0; round < 4; ++round) {
      auto page = log_.query(filter_, cursor_, 100);
      if (!page.isOk()) return cb(page.status(), {});
      cursor_ = std::max(cursor_, page->scanned_to);
      if (!page->events.empty()) {
        Piece p;
        for (const auto& e : page->events) {
          p.data += "id: " + std::to_string(e.seq) + "\nevent: " + e.type + "\ndata: " +
                    e.toJson().dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
        }
        return cb(Status::ok(), std::move(p));
      }
      if (!page->next) break;
    }
    if (closed_) {
      Piece p;
      p.end = true;
      return cb(Status::ok(), std::move(p));
    }
    pending_ = std::move(cb);
    std::weak_ptr<EventStream> weak = shared_from_this();
    keepalive_.start(kKeepaliveMs, [weak] {
      auto self = weak.lock();
      if (!self || !self->pending_) return;
      auto cb = std::move(self->pending_);
      self->pending_ = nullptr;
      Piece p;
      p.data = ": keepalive\n\n";
      cb(Status::ok(), std::move(p));
    });
  }

  void onCommit(uint64_t last) {
    if (last == 0) {
      closed_ = true;
      subscription_ = 0;
    }
    if (!pending_) return;  // the connection is still writing; it asks again later
    keepalive_.stop();
    auto cb = std::move(pending_);
    pending_ = nullptr;
    produce(std::move(cb));
  }

  Loop& loop_;
  EventLog& log_;
  EventFilter filter_;
  std::function<bool(const std::string&)> visible_;
  std::unordered_map<std::string, std::pair<bool, int64_t>> access_;  // repo -> (visible, checked at)
  uint64_t cursor_;
  uint64_t subscription_ = 0;
  bool closed_ = false;
  bool greeted_ = false;
  std::function<void(Status, Piece)> pending_;
  Timer keepalive_;
};

}  // namespace

void emitEvent(ApiContext& ctx, const Caller& caller, const char* type, const std::string& repository,
               EventTarget target, const Request& req) {
  if (ctx.events == nullptr) return;
  Event e;
  e.type = type;
  e.actor = caller.name();
  e.repository = repository;
  e.target = std::move(target);
  e.addr = req.peer;
  e.method = req.method;
  ctx.events->append(std::move(e));
}

void handleEvents(ApiContext& ctx, const ExchangePtr& ex) {
  if (ctx.events == nullptr) return replyError(ex, Status(Code::kNotFound, "the event log is off"));
  serveApi(ctx, ex, kMaxApiBody, [&ctx, ex](std::string) -> ApiReply {
    const Request& req = ex->request();
    bool stream = req.path == "/api/v1/events/stream";
    if (!stream && req.path != "/api/v1/events") return apiFail(Status(Code::kNotFound, "no such endpoint"));
    if (req.method != "GET") return apiFail(Status(Code::kMethodNotAllowed, "method not allowed"));
    auto q = parseQueryParams(req);
    if (!q.isOk()) return apiFail(q.status());
    Query query = std::move(q).value();
    auto who = caller(ctx, req);
    if (!who.isOk()) return apiFail(who.status());
    if (!stream) {
      query.filter.visible = visibility(ctx, *who);
      uint64_t last = ctx.events->lastSeq();
      auto page = ctx.events->query(query.filter, query.since.value_or(0), query.limit);
      if (!page.isOk()) return apiFail(page.status());
      json items = json::array();
      for (const auto& e : page->events) items.push_back(e.toJson());
      return apiOk({{"events", items}, {"next", page->next ? json(*page->next) : json(nullptr)}, {"last_seq", last}});
    }
    // Resuming: Last-Event-ID (what an EventSource sends when it reconnects) wins over since.
    if (const std::string* last_id = req.headers.get("last-event-id"); last_id != nullptr && !last_id->empty()) {
      auto s = parseSeq(*last_id, "Last-Event-ID");
      if (!s.isOk()) return apiFail(s.status());
      query.since = *s;
    }
    ApiReply r;
    r.stream = [&log = *ctx.events, filter = query.filter, visible = visibility(ctx, *who),
                since = query.since](Loop& loop) {
      auto source = std::make_shared<EventStream>(loop, log, filter, visible, since ? *since : log.lastSeq());
      source->start();
      Response resp;
      resp.headers.add("Content-Type", "text/event-stream");
      resp.headers.add("Cache-Control", "no-cache");
      resp.headers.add("X-Accel-Buffering", "no");
      resp.body = std::shared_ptr<BodySource>(source);
      return resp;
    };
    return r;
  });
}

}  // namespace wharf
