#include "core/jobs/job_runner.h"

#include <algorithm>
#include <exception>
#include <set>

#include <unistd.h>

#include "shared/base/log.h"
#include "shared/base/ids.h"
#include "shared/tls/crypto.h"
#include "shared/metrics/metrics.h"

namespace wharf {

using nlohmann::json;

namespace {

struct JobMetrics {
  Gauge& running = MetricsRegistry::global().gauge("wharf_jobs_running", "Jobs running now.");
  Gauge& queued = MetricsRegistry::global().gauge("wharf_jobs_queued", "Jobs waiting to run.");
  static JobMetrics& get() {
    static JobMetrics m;
    return m;
  }
  static void finished(const std::string& kind, JobState state, double seconds) {
    MetricsRegistry::global()
        .counter("wharf_jobs_total", "Jobs finished, by kind and final state.",
                 "kind=\"" + kind + "\",state=\"" + std::string(jobStateName(state)) + "\"")
        .inc();
    if (seconds >= 0) {
      MetricsRegistry::global()
          .histogram("wharf_job_duration_seconds", "Run time of finished jobs, by kind.", "kind=\"" + kind + "\"")
          .observe(seconds);
    }
  }
};

constexpr int64_t kPruneEveryMs = 3'600'000;

}  // namespace

// --- JobContext ------------------------------------------------------------------

JobContext::JobContext(std::string id, json params, std::string actor)
    : id_(std::move(id)), params_(std::move(params)), actor_(std::move(actor)) {}

void JobContext::progress(uint64_t done, uint64_t total, const std::string& message) {
  if (on_progress_) return on_progress_(done, total, message);
  std::lock_guard lock(mu_);
  progress_ = JobProgress{done, total, message};
}

void JobContext::log(const std::string& line) {
  if (on_log_) return on_log_(line);
  std::lock_guard lock(mu_);
  lines_.push_back(line);
}

std::vector<std::string> JobContext::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

JobProgress JobContext::lastProgress() const {
  std::lock_guard lock(mu_);
  return progress_;
}

// --- JobRunner -------------------------------------------------------------------

// A job a runner thread has claimed. The context's hooks write into pending, which the
// flusher (or the job's end) moves to the store.
struct JobRunner::Active {
  Job job;  // as claimed (running)
  std::unique_ptr<JobContext> ctx;
  std::mutex mu;
  std::vector<JobLogLine> pending;  // GUARDED_BY(mu)
  uint64_t next_line = 1;           // GUARDED_BY(mu)
  bool truncated = false;           // GUARDED_BY(mu)
  JobProgress progress;             // GUARDED_BY(mu)
  bool progress_dirty = false;      // GUARDED_BY(mu)
  int64_t progress_written = INT64_MIN / 2;  // GUARDED_BY(mu): monotonic ms
  std::string cancelled_by;         // GUARDED_BY(mu): set by a cancel
  bool shutdown = false;            // GUARDED_BY(mu): cancelled by stop()
  bool lost = false;                // GUARDED_BY(mu): another runner took the lease over

  // REQUIRES mu. force: past the cap (the runner's own closing lines).
  void append(int64_t now, const std::string& line, uint64_t max_lines, bool force) {
    if (!force) {
      if (truncated) return;
      if (next_line > max_lines) {
        truncated = true;
        pending.push_back({next_line++, now, "log truncated: only the first " + std::to_string(max_lines) +
                                                 " lines are kept"});
        return;
      }
    }
    pending.push_back({next_line++, now, line});
  }
};

namespace {

std::string defaultOwner() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof(host), "core");
  return std::string(host) + "/" + std::to_string(::getpid()) + "/" + hexEncode(randomBytes(3));
}

}  // namespace

JobRunner::JobRunner(JobStore& store, Clock& clock, JobRunnerOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {
  if (options_.workers == 0) options_.workers = 1;
  if (options_.max_runs == 0) options_.max_runs = 1;
  if (options_.poll_ms <= 0) options_.poll_ms = 1'000;
  if (options_.lease_ms < 3 * options_.poll_ms) options_.lease_ms = 3 * options_.poll_ms;
  if (options_.owner.empty()) options_.owner = defaultOwner();
}

JobRunner::~JobRunner() { stop(); }

void JobRunner::registerKind(const std::string& kind, const std::string& description, JobFn fn, bool exclusive) {
  std::lock_guard lock(mu_);
  WHARF_ASSERT(!started_);
  kinds_[kind] = Kind{JobKindInfo{kind, description, exclusive}, std::move(fn), nullptr};
}

void JobRunner::setParamsCheck(const std::string& kind, std::function<Status(const json&)> check) {
  std::lock_guard lock(mu_);
  WHARF_ASSERT(!started_ && kinds_.count(kind));
  kinds_[kind].check = std::move(check);
}

std::vector<JobKindInfo> JobRunner::kinds() const {
  std::vector<JobKindInfo> out;
  for (const auto& [name, k] : kinds_) out.push_back(k.info);
  return out;
}

bool JobRunner::hasKind(const std::string& kind) const { return kinds_.count(kind) > 0; }

Status JobRunner::checkParams(const std::string& kind, const json& params) const {
  auto it = kinds_.find(kind);
  if (it == kinds_.end()) {
    std::string known;
    for (const auto& [name, k] : kinds_) known += (known.empty() ? "" : ", ") + name;
    return Status(Code::kInvalidArgument, "unknown job kind \"" + kind + "\" (known: " + known + ")");
  }
  if (!params.is_object()) return Status(Code::kInvalidArgument, "params must be a JSON object");
  if (it->second.check) return it->second.check(params);
  return Status::ok();
}

void JobRunner::start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) return;
    started_ = true;
    for (const auto& [name, k] : kinds_) {
      kind_names_.push_back(name);
      if (k.info.exclusive) exclusive_kinds_.push_back(name);
    }
  }
  logInfo("job runner started", {{"runner", options_.owner}, {"workers", options_.workers}});
  reclaim(true);
  if (auto pruned = prune(); pruned > 0) logInfo("pruned finished jobs", {{"removed", pruned}});
  for (size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { workerLoop(); });
  flusher_ = std::thread([this] { flusherLoop(); });
}

void JobRunner::reclaim(bool at_start) {
  int64_t now = clock_.nowMillis();
  int64_t queued = 0;
  auto unfinished = store_.unfinished();
  // Runners seen alive: holding a job under a lease that still runs.
  std::set<std::string> live = {options_.owner};
  for (const Job& j : unfinished)
    if (j.state == JobState::kRunning && j.lease_until_ms >= now) live.insert(j.owner);
  for (const Job& j : unfinished) {
    if (j.state == JobState::kQueued) ++queued;
    if (j.state == JobState::kQueued && !j.pinned.empty() && j.pinned != options_.owner) {
      // Pinned to a runner that is gone (it holds no live lease, and has had time to take
      // the job): nobody else has the files it needs.
      bool gone = store_.shared() ? !live.count(j.pinned) && j.created_ms < now - 3 * options_.lease_ms : at_start;
      if (!gone) continue;
      std::string line = "failed: " + j.pinned + ", the core it needs (it holds that core's files), went away";
      JobWrite w;
      w.id = j.id;
      w.lines.push_back({0, now, line});
      w.when = [](const Job& x) { return x.state == JobState::kQueued; };
      w.fn = [line, now](Job& x) {
        x.state = JobState::kFailed;
        x.interrupted = true;
        x.error = line;
        x.error_code = std::string(codeName(Code::kUnavailable));
        x.finished_ms = now;
      };
      if (Status st = store_.commit({w}); !st.isOk()) {
        logError("cannot record a job whose runner went away", {{"job", j.id}, {"error", st.message()}});
        continue;
      }
      logWarn("job's runner went away before it ran it", {{"job", j.id}, {"kind", j.kind}, {"runner", j.pinned}});
      --queued;  // counted above
      JobMetrics::finished(j.kind, JobState::kFailed, -1);
      continue;
    }
    if (j.state != JobState::kRunning || j.owner == options_.owner) continue;
    // Another runner's: gone when its lease ran out, or, with nobody else on the store,
    // whatever a previous process left (found at start).
    bool gone = store_.shared() ? j.lease_until_ms < now : at_start;
    if (!gone) continue;
    const std::string cause = store_.shared()
                                  ? "interrupted: " + (j.owner.empty() ? std::string("its runner") : j.owner) +
                                        " stopped renewing its lease"
                                  : std::string("interrupted by a restart");
    bool again = !j.cancel_requested && j.runs < options_.max_runs && j.pinned.empty();
    JobState end = j.cancel_requested ? JobState::kCancelled : JobState::kFailed;
    std::string line = j.cancel_requested ? "cancelled; " + cause
                       : again ? cause + "; queued again (run " + std::to_string(j.runs + 1) + " of " +
                                     std::to_string(options_.max_runs) + ")"
                       : !j.pinned.empty() ? cause + " (it needs that core's files: not run elsewhere)"
                                           : cause + " (" + std::to_string(j.runs) + " runs)";
    JobWrite w;
    w.id = j.id;
    w.lines.push_back({0, now, line});
    // Only as it was read: a renewal or another runner's reclaim in between wins.
    w.when = [owner = j.owner, lease = j.lease_until_ms](const Job& x) {
      return x.state == JobState::kRunning && x.owner == owner && x.lease_until_ms == lease;
    };
    w.fn = [again, end, line, now](Job& x) {
      x.owner.clear();
      x.lease_until_ms = 0;
      if (again) {
        x.state = JobState::kQueued;
        return;
      }
      x.state = end;
      x.interrupted = end == JobState::kFailed;
      x.error = line;
      x.error_code = std::string(codeName(Code::kUnavailable));
      x.finished_ms = now;
    };
    Status st = store_.commit({w});
    if (!st.isOk()) {
      logError("cannot record a job whose runner went away", {{"job", j.id}, {"error", st.message()}});
      continue;
    }
    logWarn("job's runner went away", {{"job", j.id}, {"kind", j.kind}, {"runner", j.owner}, {"what", line}});
    if (again) {
      ++queued;
      wake();
    } else {
      JobMetrics::finished(j.kind, end, -1);
      std::lock_guard lock(mu_);
      done_cv_.notify_all();
    }
  }
  JobMetrics::get().queued.set(queued);
}

void JobRunner::renew() {
  std::vector<std::shared_ptr<Active>> actives;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, a] : active_) actives.push_back(a);
  }
  int64_t until = clock_.nowMillis() + options_.lease_ms;
  for (const auto& a : actives) {
    auto j = store_.update(a->job.id, [&](Job& x) -> Status {
      if (x.state != JobState::kRunning || x.owner != options_.owner) return Status(Code::kConflict, "lease lost");
      x.lease_until_ms = until;
      return Status::ok();
    });
    if (!j.isOk()) {
      if (j.status().code() != Code::kConflict && j.status().code() != Code::kNotFound) {
        logWarn("cannot renew a job's lease", {{"job", a->job.id}, {"error", j.status().message()}});
        continue;
      }
      logWarn("job's lease taken over by another runner: stopping it here", {{"job", a->job.id}});
      {
        std::lock_guard al(a->mu);
        a->lost = true;
        a->pending.clear();
      }
      a->ctx->requestCancel();
      continue;
    }
    bool asked;
    {
      std::lock_guard al(a->mu);
      asked = j->cancel_requested && a->cancelled_by.empty();
    }
    if (asked) cancelLocally(a, j->cancelled_by.empty() ? "another replica" : j->cancelled_by);
  }
}

void JobRunner::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, a] : active_) {
      std::lock_guard al(a->mu);
      a->shutdown = true;
      a->ctx->requestCancel();
    }
  }
  cv_.notify_all();
  flusher_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  if (flusher_.joinable()) flusher_.join();
  flush();
  notifyAll();  // followers of queued jobs end their streams
}

void JobRunner::wake() {
  {
    std::lock_guard lock(mu_);
    ++wake_gen_;
  }
  cv_.notify_all();
}

Result<std::string> JobRunner::submit(const std::string& kind, const json& params_in, const std::string& actor,
                                      bool here) {
  if (stopping_) return Status(Code::kUnavailable, "the job runner is stopping");
  json params = params_in.is_null() ? json::object() : params_in;
  WHARF_RETURN_IF_ERROR(checkParams(kind, params));
  Job j;
  j.kind = kind;
  j.actor = actor;
  j.params = params;
  j.state = JobState::kQueued;
  j.created_ms = clock_.nowMillis();
  if (here) j.pinned = options_.owner;
  return enqueue(std::move(j));
}

Result<std::string> JobRunner::enqueue(Job j) {
  auto id = store_.create(j);
  if (!id.isOk()) return id.status();
  logInfo("job queued", {{"job", *id}, {"kind", j.kind}, {"actor", j.actor}});
  wake();
  return id;
}

void JobRunner::cancelLocally(const std::shared_ptr<Active>& a, const std::string& actor) {
  {
    std::lock_guard al(a->mu);
    if (!a->cancelled_by.empty()) return;
    a->cancelled_by = actor;
    a->append(clock_.nowMillis(), "cancel requested by " + actor, options_.max_log_lines, true);
  }
  a->ctx->requestCancel();
  logInfo("job cancel requested", {{"job", a->job.id}, {"actor", actor}});
}

Status JobRunner::cancel(const std::string& raw_id, const std::string& actor) {
  auto id = JobStore::normalizeId(raw_id);
  if (!id.isOk()) return id.status();
  int64_t now = clock_.nowMillis();
  auto local = [&]() -> std::shared_ptr<Active> {
    std::lock_guard lock(mu_);
    auto it = active_.find(*id);
    return it == active_.end() ? nullptr : it->second;
  };
  bool running = false;
  auto j = store_.update(*id, [&](Job& x) -> Status {
    running = false;
    if (jobFinished(x.state)) {
      return Status(Code::kConflict, "job " + x.id + " already " + std::string(jobStateName(x.state)));
    }
    x.cancel_requested = true;
    x.cancelled_by = actor;
    if (x.state == JobState::kRunning) {
      running = true;  // its runner ends it (this one, or another replica's at its next renewal)
      return Status::ok();
    }
    x.state = JobState::kCancelled;
    x.error = "cancelled by " + actor + " before it started";
    x.error_code = std::string(codeName(Code::kCancelled));
    x.finished_ms = now;
    return Status::ok();
  });
  if (!j.isOk()) return j.status();
  if (running) {
    if (auto a = local()) {
      cancelLocally(a, actor);
    } else if (j->owner == options_.owner) {
      // Claimed here, not started yet: the worker honours it as it starts the job.
      std::lock_guard lock(mu_);
      if (auto it = active_.find(*id); it != active_.end()) {
        a = it->second;
      } else {
        cancels_before_start_[*id] = actor;
      }
      if (a) cancelLocally(a, actor);
    } else {
      logInfo("job cancel requested; its runner stops it", {{"job", *id}, {"actor", actor}, {"runner", j->owner}});
    }
    return Status::ok();
  }
  logInfo("job cancelled", {{"job", *id}, {"actor", actor}});
  JobMetrics::finished(j->kind, JobState::kCancelled, -1);
  {
    std::lock_guard lock(mu_);
    done_cv_.notify_all();
  }
  notify(*id);
  return Status::ok();
}

Result<std::string> JobRunner::retry(const std::string& raw_id, const std::string& actor) {
  if (stopping_) return Status(Code::kUnavailable, "the job runner is stopping");
  auto old = get(raw_id);
  if (!old.isOk()) return old.status();
  if (old->state != JobState::kFailed && old->state != JobState::kCancelled) {
    return Status(Code::kConflict, "only failed or cancelled jobs are retried; job " + old->id + " is " +
                                       std::string(jobStateName(old->state)));
  }
  WHARF_RETURN_IF_ERROR(checkParams(old->kind, old->params));
  Job j;
  j.kind = old->kind;
  j.actor = actor;
  j.params = old->params;
  j.retry_of = old->id;
  j.created_ms = clock_.nowMillis();
  if (!old->pinned.empty()) j.pinned = options_.owner;  // it needs local files: this core's
  return enqueue(std::move(j));
}

Result<Job> JobRunner::get(const std::string& id) const {
  auto j = store_.get(id);
  if (!j.isOk() || j->state != JobState::kRunning) return j;
  std::lock_guard lock(mu_);
  if (auto it = active_.find(j->id); it != active_.end()) {
    std::lock_guard al(it->second->mu);
    j->progress = it->second->progress;
  }
  return j;
}

std::vector<Job> JobRunner::list(const JobFilter& f, size_t limit, const std::string& before, std::string* next) const {
  auto jobs = store_.list(f, limit, before, next);
  std::lock_guard lock(mu_);
  for (Job& j : jobs) {
    if (j.state != JobState::kRunning) continue;
    if (auto it = active_.find(j.id); it != active_.end()) {
      std::lock_guard al(it->second->mu);
      j.progress = it->second->progress;
    }
  }
  return jobs;
}

std::vector<JobLogLine> JobRunner::logs(const std::string& id, uint64_t after, size_t limit) const {
  return store_.logs(id, after, limit);
}

Result<Job> JobRunner::wait(const std::string& id, int64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock lock(mu_);
  for (;;) {
    lock.unlock();
    auto j = store_.get(id);
    lock.lock();
    auto now = std::chrono::steady_clock::now();
    if (!j.isOk() || jobFinished(j->state) || now >= deadline) return j;
    // A job run by another replica ends without telling this one: looked at each poll.
    done_cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(options_.poll_ms)));
  }
}

uint64_t JobRunner::subscribe(const std::string& id, std::function<void()> fn) {
  std::lock_guard lock(sub_mu_);
  uint64_t h = next_sub_++;
  subs_[h] = {id, std::move(fn)};
  return h;
}

void JobRunner::unsubscribe(uint64_t handle) {
  std::lock_guard lock(sub_mu_);
  subs_.erase(handle);
}

void JobRunner::notify(const std::string& id) {
  std::lock_guard lock(sub_mu_);
  for (auto& [h, s] : subs_) {
    if (s.first == id) s.second();
  }
}

void JobRunner::notifyAll() {
  std::lock_guard lock(sub_mu_);
  for (auto& [h, s] : subs_) s.second();
}

void JobRunner::workerLoop() {
  for (;;) {
    uint64_t seen;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      seen = wake_gen_;
    }
    int64_t now = clock_.nowMillis();
    JobClaim c{kind_names_, exclusive_kinds_, options_.owner, now, now + options_.lease_ms};
    auto claimed = store_.claim(c);
    if (!claimed.isOk()) logWarn("cannot claim a job", {{"error", claimed.status().message()}});
    if (!claimed.isOk() || !claimed->has_value()) {
      // A shared store is looked at each poll (jobs queued on other replicas); an
      // unshared one changes only through this runner, which wakes its workers.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(store_.shared() ? options_.poll_ms : 60'000),
                   [&] { return stopping_ || wake_gen_ != seen; });
      continue;
    }
    auto a = std::make_shared<Active>();
    a->job = std::move(**claimed);
    a->next_line = a->job.log_lines + 1;
    a->ctx = std::make_unique<JobContext>(a->job.id, a->job.params, a->job.actor);
    Active* raw = a.get();
    a->ctx->on_log_ = [this, raw](const std::string& line) {
      std::lock_guard al(raw->mu);
      raw->append(clock_.nowMillis(), line, options_.max_log_lines, false);
    };
    a->ctx->on_progress_ = [raw](uint64_t done, uint64_t total, const std::string& message) {
      std::lock_guard al(raw->mu);
      raw->progress = JobProgress{done, total, message};
      raw->progress_dirty = true;
    };
    std::string cancelled_by;  // a cancel that came between the claim and now
    {
      std::lock_guard lock(mu_);
      active_[a->job.id] = a;
      if (stopping_) {
        a->shutdown = true;
        a->ctx->requestCancel();
      }
      if (auto it = cancels_before_start_.find(a->job.id); it != cancels_before_start_.end()) {
        cancelled_by = it->second;
        cancels_before_start_.erase(it);
      }
    }
    if (!cancelled_by.empty()) cancelLocally(a, cancelled_by);
    JobMetrics::get().running.add(1);
    runJob(a);
    JobMetrics::get().running.add(-1);
    {
      std::lock_guard lock(mu_);
      active_.erase(a->job.id);
      cancels_before_start_.erase(a->job.id);
      done_cv_.notify_all();
    }
    wake();  // an exclusive kind's next job may run now
    notify(a->job.id);
  }
}

void JobRunner::runJob(const std::shared_ptr<Active>& a) {
  const Job& job = a->job;
  logInfo("job started", {{"job", job.id}, {"kind", job.kind}, {"runner", options_.owner}, {"run", job.runs}});
  int64_t t0 = monotonicMillis();
  notify(job.id);
  Result<json> result = Status(Code::kInternal, "not run");
  if (a->ctx->cancelled()) {
    // Cancelled (or the runner stopping) before it started: not run.
  } else if (auto k = kinds_.find(job.kind); k == kinds_.end()) {
    result = Status(Code::kInvalidArgument, "unknown job kind \"" + job.kind + "\" (not registered in this core)");
  } else {
    try {
      result = k->second.fn(*a->ctx);
    } catch (const std::exception& e) {
      result = Status(Code::kInternal, std::string("the job threw an exception: ") + e.what());
    } catch (...) {
      result = Status(Code::kInternal, "the job threw an exception");
    }
  }
  int64_t finished = clock_.nowMillis();
  int64_t mono_ms = monotonicMillis() - t0;

  JobState state;
  std::string error, error_code, closing;
  bool interrupted = false, again = false;
  {
    std::lock_guard al(a->mu);
    if (a->lost) {
      logWarn("job stopped here: another runner holds it now", {{"job", job.id}, {"kind", job.kind}});
      return;
    }
    if (!a->cancelled_by.empty()) {
      state = JobState::kCancelled;
      error = "cancelled by " + a->cancelled_by;
      error_code = std::string(codeName(Code::kCancelled));
    } else if (a->shutdown && !result.isOk()) {
      again = job.runs < options_.max_runs && job.pinned.empty();  // a pinned job's files go with this core
      state = again ? JobState::kQueued : JobState::kFailed;
      interrupted = !again;
      error = again ? "" : "interrupted by a shutdown";
      error_code = again ? "" : std::string(codeName(Code::kUnavailable));
    } else if (result.isOk()) {
      state = JobState::kSucceeded;
    } else {
      state = JobState::kFailed;
      error = result.status().message();
      error_code = std::string(codeName(result.status().code()));
    }
    closing = again ? "interrupted by a shutdown; queued again (run " + std::to_string(job.runs + 1) + " of " +
                          std::to_string(options_.max_runs) + ")"
                    : "job " + std::string(jobStateName(state)) + (error.empty() ? "" : ": " + error);
    a->append(finished, closing, options_.max_log_lines, true);
  }
  json result_json = result.isOk() ? *result : json(nullptr);
  {
    std::lock_guard fl(flush_mu_);
    flushLocked(a, [&](Job& j) {
      j.state = state;
      j.owner.clear();
      j.lease_until_ms = 0;
      if (again) return;
      j.finished_ms = finished;
      j.result = result_json;
      j.error = error;
      j.error_code = error_code;
      j.interrupted = interrupted;
      if (state == JobState::kCancelled) j.cancel_requested = true;
    });
  }
  json fields = {{"job", job.id}, {"kind", job.kind}, {"state", jobStateName(state)}, {"duration_ms", mono_ms}};
  if (!error.empty()) fields["error"] = error;
  if (again) {
    logInfo("job interrupted by the shutdown; queued again", fields);
    return;
  }
  JobMetrics::finished(job.kind, state, static_cast<double>(mono_ms) / 1000.0);
  if (state == JobState::kSucceeded) {
    logInfo("job finished", fields);
  } else {
    logWarn("job finished", fields);
  }
}

void JobRunner::flush() {
  std::lock_guard fl(flush_mu_);
  flushLocked(nullptr, nullptr);
}

void JobRunner::flushLocked(const std::shared_ptr<Active>& final_job, std::function<void(Job&)> final_fn) {
  std::vector<std::shared_ptr<Active>> actives;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, a] : active_) actives.push_back(a);
  }
  if (final_job && std::find(actives.begin(), actives.end(), final_job) == actives.end()) actives.push_back(final_job);
  int64_t mono = monotonicMillis();
  std::vector<JobWrite> writes;
  std::vector<std::string> touched;
  for (const auto& a : actives) {
    bool is_final = a == final_job;
    JobWrite w;
    w.id = a->job.id;
    // Written only while this runner holds the job.
    w.when = [owner = options_.owner](const Job& j) { return j.state == JobState::kRunning && j.owner == owner; };
    std::function<void(Job&)> progress_fn;
    {
      std::lock_guard al(a->mu);
      if (a->lost) continue;
      w.lines.swap(a->pending);
      if (a->progress_dirty && (is_final || mono - a->progress_written >= options_.progress_interval_ms)) {
        a->progress_dirty = false;
        a->progress_written = mono;
        progress_fn = [p = a->progress](Job& j) { j.progress = p; };
      }
    }
    if (is_final) {
      w.fn = [progress_fn, final_fn](Job& j) {
        if (progress_fn) progress_fn(j);
        if (final_fn) final_fn(j);
      };
    } else {
      w.fn = progress_fn;
    }
    if (w.lines.empty() && !w.fn) continue;
    if (!w.lines.empty()) touched.push_back(w.id);
    writes.push_back(std::move(w));
  }
  if (writes.empty()) return;
  Status st = store_.commit(writes);
  if (!st.isOk()) logError("cannot write job logs and progress", {{"error", st.message()}});
  for (const auto& id : touched) {
    if (!final_job || id != final_job->job.id) notify(id);
  }
}

void JobRunner::flusherLoop() {
  int64_t last_prune = monotonicMillis(), last_poll = monotonicMillis();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    flusher_cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms), [this] { return stopping_.load(); });
    if (stopping_) break;
    lock.unlock();
    flush();
    if (monotonicMillis() - last_poll >= options_.poll_ms) {
      last_poll = monotonicMillis();
      // Also what sets the queued gauge, whatever the store.
      reclaim(false);
      if (store_.shared()) {
        renew();
        // Followers of jobs run elsewhere hear of their lines only this way.
        notifyAll();
      }
    }
    if (monotonicMillis() - last_prune >= kPruneEveryMs) {
      last_prune = monotonicMillis();
      if (auto n = prune(); n > 0) logInfo("pruned finished jobs", {{"removed", n}});
    }
    lock.lock();
  }
}

size_t JobRunner::prune() {
  auto n = store_.prune(clock_.nowMillis() - options_.retention_ms);
  if (!n.isOk()) {
    logWarn("cannot prune finished jobs", {{"error", n.status().message()}});
    return 0;
  }
  return *n;
}

}  // namespace wharf
