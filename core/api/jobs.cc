// Jobs and schedules, administrators only (with --auth none, open like the rest of that
// mode):
//
//   GET    /api/v1/jobs?kind=&state=&actor=&limit=&before=   newest first
//          -> {"items":[<job>...],"next":"<id>"}   (next: pass as before= for more)
//   POST   /api/v1/jobs {"kind","params"?}       -> 202 {"id","kind","state"}
//   GET    /api/v1/jobs/kinds                    -> {"items":[{"kind","description","exclusive"}]}
//   GET    /api/v1/jobs/<id>                     -> <job>
//   GET    /api/v1/jobs/<id>/log?after=SEQ&limit=N
//          -> {"items":[{"seq","ts","line"}...],"last":SEQ,"state","finished":bool}
//   GET    /api/v1/jobs/<id>/log?follow=1        text/event-stream: "id: SEQ" + "data: {line}"
//          per line, then "event: end" + "data: <job>" once the job has finished; resumes
//          after Last-Event-ID (or after=SEQ); ": keep-alive" comments every 15 s
//   POST   /api/v1/jobs/<id>/cancel              -> <job>
//   POST   /api/v1/jobs/<id>/retry               -> 202 {"id","retry_of"}
//   GET    /api/v1/schedules                     -> {"items":[<schedule>...]}
//   GET    /api/v1/schedules/<name>              -> <schedule>
//   PUT    /api/v1/schedules/<name> {"cron","kind","params"?,"enabled"?} -> 201 | 200 <schedule>
//   DELETE /api/v1/schedules/<name>              -> 204
//
// <job> is Job::toJson(), <schedule> Schedule::toJson(). Mutations are audited
// (job.run, job.cancel, job.retry, schedule.set, schedule.remove). Handlers run on a
// worker (authentication may pay the KDF; submit and cancel write); the log stream
// runs on the connection's loop and reads only.
#include <set>

#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "core/jobs/job_runner.h"
#include "core/jobs/scheduler.h"
#include "shared/event/loop.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr int64_t kHeartbeatMs = 15'000;
constexpr size_t kLinesPerPiece = 200;

using Reply = ApiReply;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A job's log as Server-Sent Events, tailing the job until it finishes. Lives on the
// connection's loop; the runner's notifications come back with post().
class JobLogStream : public BodySource, public std::enable_shared_from_this<JobLogStream> {
 public:
  JobLogStream(Loop& loop, JobRunner& runner, std::string id, uint64_t after)
      : loop_(loop), runner_(runner), id_(std::move(id)), after_(after) {}
  ~JobLogStream() override {
    if (sub_ != 0) runner_.unsubscribe(sub_);
  }

  void next(std::function<void(Status, Piece)> cb) override {
    cb_ = std::move(cb);
    if (sub_ == 0) {
      std::weak_ptr<JobLogStream> weak = shared_from_this();
      Loop* loop = &loop_;
      sub_ = runner_.subscribe(id_, [weak, loop] {
        loop->post([weak] {
          if (auto self = weak.lock()) self->answer();
        });
      });
      heartbeat_ = std::make_unique<Timer>(loop_);
      heartbeat_->start(kHeartbeatMs, [this] {
        heartbeat_due_ = true;
        answer();
      }, kHeartbeatMs);
    }
    answer();
  }
  std::optional<uint64_t> length() const override { return std::nullopt; }

 private:
  void deliver(std::string data, bool end) {
    auto cb = std::move(cb_);
    cb_ = nullptr;
    Piece p;
    p.data = std::move(data);
    p.end = end;
    if (end && heartbeat_) heartbeat_->stop();
    cb(Status::ok(), std::move(p));
  }

  // Answers the pending next() if there is something to send; else it waits for a
  // notification. The state is read before the lines: the final lines are written in
  // the same transaction as the final state, so "finished" plus no new lines is the end.
  void answer() {
    if (!cb_) return;
    auto job = runner_.get(id_);
    if (!job.isOk()) {
      auto cb = std::move(cb_);
      cb_ = nullptr;
      return cb(job.status(), {});
    }
    auto lines = runner_.logs(id_, after_, kLinesPerPiece);
    if (!lines.empty()) {
      std::string out;
      for (const auto& l : lines) out += "id: " + std::to_string(l.seq) + "\ndata: " + dump(l.toJson()) + "\n\n";
      after_ = lines.back().seq;
      return deliver(std::move(out), false);
    }
    if (jobFinished(job->state)) return deliver("event: end\ndata: " + dump(job->toJson()) + "\n\n", true);
    if (runner_.stopping()) return deliver(": the core is stopping; reconnect with Last-Event-ID\n\n", true);
    if (heartbeat_due_) {
      heartbeat_due_ = false;
      return deliver(": keep-alive\n\n", false);
    }
  }

  Loop& loop_;
  JobRunner& runner_;
  std::string id_;
  uint64_t after_;
  uint64_t sub_ = 0;
  std::function<void(Status, Piece)> cb_;
  std::unique_ptr<Timer> heartbeat_;
  bool heartbeat_due_ = false;
};

Result<uint64_t> parseCount(const std::optional<std::string>& v, const char* name, uint64_t def, uint64_t max) {
  if (!v || v->empty()) return def;
  if (v->size() > 19 || v->find_first_not_of("0123456789") != std::string::npos) {
    return Status(Code::kInvalidArgument, std::string(name) + " must be a non-negative integer");
  }
  uint64_t n = std::stoull(*v);
  if (n > max) return Status(Code::kInvalidArgument, std::string(name) + " must be at most " + std::to_string(max));
  return n;
}

class JobsApi {
 public:
  JobsApi(ApiContext& ctx, const Request& req, std::string body) : ctx_(ctx), req_(req), raw_(std::move(body)) {}

  Reply run() {
    if (ctx_.jobs == nullptr || ctx_.scheduler == nullptr) {
      return fail(Status(Code::kNotFound, "the job system is not running"));
    }
    if (ctx_.auth != nullptr) {
      auto who = authenticateApiCaller(ctx_, req_);
      if (!who.isOk()) return fail(who.status());
      if (!who->admin) return fail(Status(Code::kDenied, "only administrators manage jobs and schedules"));
      actor_ = who->name;
    }
    auto parts = splitPath(std::string_view(req_.path).substr(std::string_view("/api/v1/").size()));
    const std::string& m = req_.method;
    if (m == "POST" || m == "PUT") WHARF_RETURN_IF_ERROR_REPLY(parseBody());
    if (parts[0] == "schedules") return schedules(parts, m);
    if (parts.size() == 1) {
      if (m == "GET") return list();
      if (m == "POST") return submit();
      return notAllowed();
    }
    if (parts.size() == 2 && parts[1] == "kinds") {
      if (m != "GET") return notAllowed();
      json items = json::array();
      for (const auto& k : ctx_.jobs->kinds()) {
        items.push_back({{"kind", k.kind}, {"description", k.description}, {"exclusive", k.exclusive}});
      }
      return ok({{"items", items}});
    }
    auto id = JobStore::normalizeId(parts[1]);
    if (!id.isOk()) return fail(Status(Code::kNotFound, "no job " + parts[1]));
    if (parts.size() == 2) {
      if (m != "GET") return notAllowed();
      auto j = ctx_.jobs->get(*id);
      if (!j.isOk()) return fail(j.status());
      return ok(j->toJson());
    }
    if (parts.size() == 3 && parts[2] == "log") {
      if (m != "GET") return notAllowed();
      return log(*id);
    }
    if (parts.size() == 3 && parts[2] == "cancel") {
      if (m != "POST") return notAllowed();
      WHARF_RETURN_IF_ERROR_REPLY(ctx_.jobs->cancel(*id, actor_));
      record("job.cancel", *id);
      auto j = ctx_.jobs->get(*id);
      if (!j.isOk()) return fail(j.status());
      return ok(j->toJson());
    }
    if (parts.size() == 3 && parts[2] == "retry") {
      if (m != "POST") return notAllowed();
      auto nid = ctx_.jobs->retry(*id, actor_);
      if (!nid.isOk()) return fail(nid.status());
      record("job.retry", *nid, "retry_of=" + *id);
      Reply r = ok({{"id", *nid}, {"retry_of", *id}, {"state", "queued"}}, 202);
      r.location = "/api/v1/jobs/" + *nid;
      return r;
    }
    return fail(Status(Code::kNotFound, "no such endpoint"));
  }

 private:
  static Reply notAllowed() { return fail(Status(Code::kMethodNotAllowed, "method not allowed")); }

  Status parseBody() {
    auto body = JsonBody::parse(raw_);
    if (!body.isOk()) return body.status();
    body_ = std::move(body).value();
    return Status::ok();
  }


  void record(const std::string& action, const std::string& object, const std::string& detail = "") {
    if (ctx_.audit != nullptr) ctx_.audit->record(actor_, req_.peer, action, object, "success", detail);
  }

  Reply list() {
    JobFilter f;
    f.kind = req_.queryParam("kind").value_or("");
    f.actor = req_.queryParam("actor").value_or("");
    if (auto s = req_.queryParam("state"); s && !s->empty()) {
      JobState st;
      if (!parseJobState(*s, &st)) {
        return fail(Status(Code::kInvalidArgument,
                           "state \"" + *s + "\": one of queued, running, succeeded, failed, cancelled"));
      }
      f.state = st;
    }
    auto limit = parseCount(req_.queryParam("limit"), "limit", 50, 1000);
    if (!limit.isOk()) return fail(limit.status());
    if (*limit == 0) return fail(Status(Code::kInvalidArgument, "limit must be from 1 to 1000"));
    std::string before;
    if (auto b = req_.queryParam("before"); b && !b->empty()) {
      auto id = JobStore::normalizeId(*b);
      if (!id.isOk()) return fail(Status(Code::kInvalidArgument, "before: " + id.status().message()));
      before = *id;
    }
    std::string next;
    json items = json::array();
    for (const auto& j : ctx_.jobs->list(f, *limit, before, &next)) items.push_back(j.toJson());
    json out = {{"items", items}};
    if (!next.empty()) out["next"] = next;
    return ok(out);
  }

  Reply submit() {
    auto given = body_.string("kind", {.required = true, .max = 64});  // GET /api/v1/jobs/kinds lists them
    json params = body_.rawObject("params").value_or(json::object());
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    const std::string& kind = *given;
    auto id = ctx_.jobs->submit(kind, params, actor_);
    if (!id.isOk()) return fail(id.status());
    record("job.run", *id, "kind=" + kind + " params=" + dump(params));
    Reply r = ok({{"id", *id}, {"kind", kind}, {"state", "queued"}}, 202);
    r.location = "/api/v1/jobs/" + *id;
    return r;
  }

  Reply log(const std::string& id) {
    auto j = ctx_.jobs->get(id);
    if (!j.isOk()) return fail(j.status());
    auto after = parseCount(req_.queryParam("after"), "after", 0, UINT64_MAX / 2);
    if (!after.isOk()) return fail(after.status());
    std::string follow = req_.queryParam("follow").value_or("");
    if (follow == "1" || follow == "true") {
      uint64_t from = *after;
      if (const std::string* last = req_.headers.get("last-event-id"); last != nullptr && !last->empty()) {
        auto seq = parseCount(*last, "Last-Event-ID", 0, UINT64_MAX / 2);
        if (!seq.isOk()) return fail(seq.status());
        from = *seq;
      }
      Reply r;
      r.stream = [&runner = *ctx_.jobs, id, from](Loop& loop) {
        Response resp;
        resp.status = 200;
        resp.headers.add("Content-Type", "text/event-stream");
        resp.headers.add("Cache-Control", "no-cache");
        resp.headers.add("X-Accel-Buffering", "no");
        resp.body = std::shared_ptr<BodySource>(std::make_shared<JobLogStream>(loop, runner, id, from));
        return resp;
      };
      return r;
    }
    if (!follow.empty() && follow != "0" && follow != "false") {
      return fail(Status(Code::kInvalidArgument, "follow must be 1 or 0"));
    }
    auto limit = parseCount(req_.queryParam("limit"), "limit", 1000, 10'001);
    if (!limit.isOk()) return fail(limit.status());
    json items = json::array();
    uint64_t last = *after;
    for (const auto& l : ctx_.jobs->logs(id, *after, *limit)) {
      items.push_back(l.toJson());
      last = l.seq;
    }
    // The state read before the lines (see JobLogStream::answer) tells whether more may come.
    return ok({{"items", items}, {"last", last}, {"state", jobStateName(j->state)}, {"finished", jobFinished(j->state)}});
  }

  Reply schedules(const std::vector<std::string>& p, const std::string& m) {
    Scheduler& s = *ctx_.scheduler;
    if (p.size() == 1) {
      if (m != "GET") return notAllowed();
      json items = json::array();
      for (const auto& x : s.list()) items.push_back(x.toJson());
      return ok({{"items", items}});
    }
    if (p.size() != 2) return fail(Status(Code::kNotFound, "no such endpoint"));
    const std::string& name = p[1];
    if (m == "GET") {
      auto x = s.get(name);
      if (!x.isOk()) return fail(x.status());
      return ok(x->toJson());
    }
    if (m == "DELETE") {
      WHARF_RETURN_IF_ERROR_REPLY(s.remove(name));
      record("schedule.remove", name);
      return ok(json::object(), 204);
    }
    if (m != "PUT") return notAllowed();
    auto cron = body_.string("cron", {.required = true, .max = 256});  // "0 3 * * *", "@daily"
    auto kind = body_.string("kind", {.required = true, .max = 64});
    json params = body_.rawObject("params").value_or(json::object());
    bool enabled = body_.boolean("enabled").value_or(true);
    WHARF_RETURN_IF_ERROR_REPLY(body_.finish());
    bool created = false;
    auto x = s.put(name, *cron, *kind, params, enabled, actor_, &created);
    if (!x.isOk()) return fail(x.status());
    record("schedule.set", name,
           "cron=" + x->cron + " kind=" + x->kind + " params=" + dump(x->params) + (enabled ? "" : " disabled"));
    return ok(x->toJson(), created ? 201 : 200);
  }

  ApiContext& ctx_;
  const Request& req_;
  std::string raw_;
  JsonBody body_{json::object()};
  std::string actor_ = "anonymous";
};

}  // namespace

void handleJobs(ApiContext& ctx, const ExchangePtr& ex) {
  serveApi(ctx, ex, kMaxApiBody, [&ctx, ex](std::string body) { return JobsApi(ctx, ex->request(), std::move(body)).run(); });
}

}  // namespace wharf
