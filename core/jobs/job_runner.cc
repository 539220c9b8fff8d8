#include "core/jobs/job_runner.h"

#include <algorithm>
#include <exception>

#include "shared/base/log.h"
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

// A job a runner thread has picked. The context's hooks write into pending, which the
// flusher (or the job's end) moves to the store.
struct JobRunner::Active {
  Job job;  // as picked (queued)
  std::unique_ptr<JobContext> ctx;
  std::mutex mu;
  std::vector<JobLogLine> pending;  // GUARDED_BY(mu)
  uint64_t next_line = 1;           // GUARDED_BY(mu)
  bool truncated = false;           // GUARDED_BY(mu)
  JobProgress progress;             // GUARDED_BY(mu)
  bool progress_dirty = false;      // GUARDED_BY(mu)
  int64_t progress_written = INT64_MIN / 2;  // GUARDED_BY(mu): monotonic ms
  std::string cancelled_by;         // GUARDED_BY(mu): set by cancel()
  bool shutdown = false;            // GUARDED_BY(mu): cancelled by stop()

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

JobRunner::JobRunner(JobStore& store, Clock& clock, JobRunnerOptions options)
    : store_(store), clock_(clock), options_(options) {
  if (options_.workers == 0) options_.workers = 1;
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
  }
  recover();
  if (auto pruned = prune(); pruned > 0) logInfo("pruned finished jobs", {{"removed", pruned}});
  for (size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { workerLoop(); });
  flusher_ = std::thread([this] { flusherLoop(); });
}

void JobRunner::recover() {
  int64_t now = clock_.nowMillis();
  std::vector<Job> queued;
  for (Job& j : store_.unfinished()) {
    if (j.state == JobState::kQueued) {
      queued.push_back(std::move(j));
      continue;
    }
    // Left running by a process that died or stopped without recording the end.
    bool was_cancelled = j.cancel_requested;
    std::string why = was_cancelled ? "cancelled; the core restarted before it ended" : "interrupted by a restart";
    JobWrite w;
    w.id = j.id;
    w.lines.push_back({j.log_lines + 1, now, why});
    w.fn = [was_cancelled, why, now](Job& x) {
      x.state = was_cancelled ? JobState::kCancelled : JobState::kFailed;
      x.interrupted = !was_cancelled;
      x.error = why;
      x.error_code = std::string(codeName(Code::kUnavailable));
      x.finished_ms = now;
    };
    Status st = store_.commit({w});
    if (!st.isOk()) logError("cannot record an interrupted job", {{"job", j.id}, {"error", st.message()}});
    logWarn("job interrupted by a restart", {{"job", j.id}, {"kind", j.kind}});
    JobMetrics::finished(j.kind, was_cancelled ? JobState::kCancelled : JobState::kFailed, -1);
  }
  std::lock_guard lock(mu_);
  for (Job& j : queued) {
    bool present = std::any_of(queue_.begin(), queue_.end(), [&](const Job& q) { return q.id == j.id; });
    if (!present) queue_.push_back(std::move(j));
  }
  std::sort(queue_.begin(), queue_.end(), [](const Job& a, const Job& b) { return a.id < b.id; });
  updateQueuedGauge();
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

void JobRunner::updateQueuedGauge() { JobMetrics::get().queued.set(static_cast<int64_t>(queue_.size())); }

Result<std::string> JobRunner::submit(const std::string& kind, const json& params_in, const std::string& actor) {
  if (stopping_) return Status(Code::kUnavailable, "the job runner is stopping");
  json params = params_in.is_null() ? json::object() : params_in;
  WHARF_RETURN_IF_ERROR(checkParams(kind, params));
  Job j;
  j.kind = kind;
  j.actor = actor;
  j.params = params;
  j.state = JobState::kQueued;
  j.created_ms = clock_.nowMillis();
  return enqueue(std::move(j));
}

Result<std::string> JobRunner::enqueue(Job j) {
  auto id = store_.create(j);
  if (!id.isOk()) return id.status();
  j.id = *id;
  logInfo("job queued", {{"job", j.id}, {"kind", j.kind}, {"actor", j.actor}});
  {
    std::lock_guard lock(mu_);
    bool present = std::any_of(queue_.begin(), queue_.end(), [&](const Job& q) { return q.id == j.id; });
    if (!present) queue_.push_back(std::move(j));
    updateQueuedGauge();
  }
  cv_.notify_all();
  return id;
}

Status JobRunner::cancel(const std::string& raw_id, const std::string& actor) {
  auto id = JobStore::normalizeId(raw_id);
  if (!id.isOk()) return id.status();
  int64_t now = clock_.nowMillis();
  std::string kind;
  bool running = false;
  {
    std::lock_guard lock(mu_);
    auto q = std::find_if(queue_.begin(), queue_.end(), [&](const Job& j) { return j.id == *id; });
    if (q != queue_.end()) {
      kind = q->kind;
      queue_.erase(q);
      updateQueuedGauge();
    } else if (auto it = active_.find(*id); it != active_.end()) {
      auto a = it->second;
      {
        std::lock_guard al(a->mu);
        a->cancelled_by = actor;
        a->append(now, "cancel requested by " + actor, options_.max_log_lines, true);
      }
      a->ctx->requestCancel();
      running = true;
    }
  }
  if (running) {
    logInfo("job cancel requested", {{"job", *id}, {"actor", actor}});
    // Recorded for readers; the end is recorded when the function returns.
    auto st = store_.update(*id, [](Job& j) {
      j.cancel_requested = true;
      return Status::ok();
    });
    return st.isOk() ? Status::ok() : st.status();
  }
  // Queued (just taken off the queue, or not loaded yet) or already finished.
  auto j = store_.update(*id, [&](Job& x) -> Status {
    if (jobFinished(x.state)) {
      return Status(Code::kConflict, "job " + x.id + " already " + std::string(jobStateName(x.state)));
    }
    if (x.state == JobState::kRunning) return Status(Code::kConflict, "job " + x.id + " is running elsewhere");
    x.state = JobState::kCancelled;
    x.cancel_requested = true;
    x.error = "cancelled by " + actor + " before it started";
    x.error_code = std::string(codeName(Code::kCancelled));
    x.finished_ms = now;
    return Status::ok();
  });
  if (!j.isOk()) {
    if (!kind.empty()) logError("cannot record a cancelled job", {{"job", *id}, {"error", j.status().message()}});
    return j.status();
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
    auto j = store_.get(id);
    if (!j.isOk() || jobFinished(j->state) || std::chrono::steady_clock::now() >= deadline) return j;
    done_cv_.wait_until(lock, deadline);
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
    std::shared_ptr<Active> a;
    {
      std::unique_lock lock(mu_);
      std::deque<Job>::iterator pick;
      auto pickable = [&] {
        pick = std::find_if(queue_.begin(), queue_.end(), [&](const Job& j) {
          auto k = kinds_.find(j.kind);
          return k == kinds_.end() || !k->second.info.exclusive || running_kinds_[j.kind] == 0;
        });
        return pick != queue_.end();
      };
      cv_.wait(lock, [&] { return stopping_ || pickable(); });
      if (stopping_) return;
      a = std::make_shared<Active>();
      a->job = std::move(*pick);
      queue_.erase(pick);
      updateQueuedGauge();
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
      active_[a->job.id] = a;
      running_kinds_[a->job.kind]++;
    }
    JobMetrics::get().running.add(1);
    runJob(a);
    JobMetrics::get().running.add(-1);
    {
      std::lock_guard lock(mu_);
      active_.erase(a->job.id);
      running_kinds_[a->job.kind]--;
      done_cv_.notify_all();
    }
    cv_.notify_all();  // an exclusive kind's next job may run now
    notify(a->job.id);
  }
}

void JobRunner::runJob(const std::shared_ptr<Active>& a) {
  const Job& job = a->job;
  int64_t started = clock_.nowMillis();
  auto rec = store_.update(job.id, [&](Job& j) {
    j.state = JobState::kRunning;
    j.started_ms = started;
    return Status::ok();
  });
  Result<json> result = Status(Code::kInternal, "not run");
  int64_t t0 = monotonicMillis();
  if (!rec.isOk()) {
    result = rec.status();
  } else {
    {
      std::lock_guard al(a->mu);
      a->next_line = rec->log_lines + 1;
    }
    logInfo("job started", {{"job", job.id}, {"kind", job.kind}});
    t0 = monotonicMillis();
    notify(job.id);
    auto k = kinds_.find(job.kind);
    if (k == kinds_.end()) {
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
  }
  int64_t finished = clock_.nowMillis();
  int64_t mono_ms = monotonicMillis() - t0;

  JobState state;
  std::string error, error_code, closing;
  bool interrupted = false;
  {
    std::lock_guard al(a->mu);
    if (!a->cancelled_by.empty()) {
      state = JobState::kCancelled;
      error = "cancelled by " + a->cancelled_by;
      error_code = std::string(codeName(Code::kCancelled));
    } else if (a->shutdown && !result.isOk()) {
      state = JobState::kFailed;
      interrupted = true;
      error = "interrupted by a shutdown";
      error_code = std::string(codeName(Code::kUnavailable));
    } else if (result.isOk()) {
      state = JobState::kSucceeded;
    } else {
      state = JobState::kFailed;
      error = result.status().message();
      error_code = std::string(codeName(result.status().code()));
    }
    closing = "job " + std::string(jobStateName(state)) + (error.empty() ? "" : ": " + error);
    a->append(finished, closing, options_.max_log_lines, true);
  }
  json result_json = result.isOk() ? *result : json(nullptr);
  {
    std::lock_guard fl(flush_mu_);
    flushLocked(a, [&](Job& j) {
      j.state = state;
      j.finished_ms = finished;
      j.result = result_json;
      j.error = error;
      j.error_code = error_code;
      j.interrupted = interrupted;
      if (state == JobState::kCancelled) j.cancel_requested = true;
    });
  }
  JobMetrics::finished(job.kind, state, static_cast<double>(mono_ms) / 1000.0);
  json fields = {{"job", job.id}, {"kind", job.kind}, {"state", jobStateName(state)}, {"duration_ms", mono_ms}};
  if (!error.empty()) fields["error"] = error;
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
    std::function<void(Job&)> progress_fn;
    {
      std::lock_guard al(a->mu);
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
  int64_t last_prune = monotonicMillis();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    flusher_cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms), [this] { return stopping_.load(); });
    if (stopping_) break;
    lock.unlock();
    flush();
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
