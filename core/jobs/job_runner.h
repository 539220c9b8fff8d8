// JobRunner: runs the core's background work as persisted jobs.
//
// A kind (garbage collection, upload purge, LDAP sync, ...) is a function registered
// under a name before start(). submit() stores a queued job and returns its id; a small
// pool of runner threads (options.workers, apart from the request workers) claims
// queued jobs from the JobStore, oldest first, at most one at a time per exclusive kind
// (across every runner sharing the store). Each job has a state (queued -> running ->
// succeeded | failed | cancelled), its actor, times, progress, a result or an error,
// and a log; all of it is in the JobStore and survives restarts.
//
// Leases: a runner holds each job it runs under its owner name (owner(), unique per
// process) until lease_until, renewed every poll period. A job whose runner is gone
// (its lease expired on a shared store; any job another process left running on an
// unshared one, found at start) runs again: it is queued again, up to max_runs runs in
// all, then failed with interrupted = true. So is a job a clean stop() interrupted:
// stop() asks running jobs to cancel and waits for them, queued ones stay queued. A
// runner that finds its lease taken over stops the job and writes nothing more of it.
//
// Cancel: a queued job is cancelled at once; a running one gets JobContext::cancelled()
// (from its own runner, or at the next renewal when it runs on another replica) and is
// recorded as cancelled when its function returns, whatever it returns.
//
// Thread-safety: every public method is thread-safe. Writes go to the store, so
// submit(), cancel(), retry() and wait() belong on worker threads, never on a loop
// thread; the readers (get, list, logs) and subscribe() are fine anywhere.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/jobs/job_store.h"
#include "shared/base/clock.h"
#include "shared/base/status.h"

namespace wharf {

// What a kind's function sees of its job. Every method is thread-safe, so threads the
// function starts may use it too, but only until the function returns: the context
// goes away with the run.
class JobContext {
 public:
  // A context outside any runner, for unit tests of a kind's function: progress and log
  // lines are kept in memory (lines(), lastProgress()) and requestCancel() cancels.
  JobContext(std::string id, nlohmann::json params, std::string actor);
  JobContext(const JobContext&) = delete;
  JobContext& operator=(const JobContext&) = delete;

  const std::string& id() const { return id_; }
  const nlohmann::json& params() const { return params_; }
  const std::string& actor() const { return actor_; }
  // Cheap; persisted at most about once a second (and when the job ends).
  void progress(uint64_t done, uint64_t total, const std::string& message = "");
  // Appends a line to the job's log (written in batches, a few times a second). A log
  // keeps its first 10,000 lines, then one "log truncated" line.
  void log(const std::string& line);
  // The job should return soon after this turns true.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Standalone contexts (and the runner, on cancel).
  void requestCancel() { cancelled_.store(true, std::memory_order_release); }
  std::vector<std::string> lines() const;
  JobProgress lastProgress() const;

 private:
  friend class JobRunner;
  std::string id_;
  nlohmann::json params_;
  std::string actor_;
  std::atomic<bool> cancelled_{false};
  // Set by the runner; null for a standalone context.
  std::function<void(uint64_t, uint64_t, const std::string&)> on_progress_;
  std::function<void(const std::string&)> on_log_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;  // GUARDED_BY(mu_): standalone only
  JobProgress progress_;            // GUARDED_BY(mu_): standalone only
};

// A kind's work: returns a JSON result summary, or an error (the job fails with it).
// A function that throws fails its job with the exception's message.
using JobFn = std::function<Result<nlohmann::json>(JobContext&)>;

struct JobKindInfo {
  std::string kind;
  std::string description;
  bool exclusive = true;
};

struct JobRunnerOptions {
  size_t workers = 2;
  int64_t retention_ms = 30ll * 86'400'000;  // finished jobs older than this are pruned
  int64_t flush_interval_ms = 200;           // log lines and progress are written this often
  int64_t progress_interval_ms = 1000;       // progress is persisted at most this often
  uint64_t max_log_lines = 10'000;
  int64_t lease_ms = 30'000;  // a run's lease; renewed every poll_ms
  // How often runners look at the shared store (jobs queued elsewhere, expired leases,
  // cancels asked on another replica); an unshared store is looked at when this process
  // changes it, and at least this often too.
  int64_t poll_ms = 1'000;
  uint32_t max_runs = 3;  // runs of a job whose runner went away, before it fails
  std::string owner;      // the runner's name in leases; empty: host/pid/random
};

class JobRunner {
 public:
  JobRunner(JobStore& store, Clock& clock, JobRunnerOptions options = {});
  ~JobRunner();  // stop()

  // kinds must be registered before start(). exclusive: at most one job of this kind
  // runs at a time (a second is queued).
  void registerKind(const std::string& kind, const std::string& description, JobFn fn, bool exclusive = true);
  // Optional: checks a kind's params at submit() (and when a schedule is set), so bad
  // input is a 400 at once rather than a failed job later.
  void setParamsCheck(const std::string& kind, std::function<Status(const nlohmann::json&)> check);
  std::vector<JobKindInfo> kinds() const;
  bool hasKind(const std::string& kind) const;
  Status checkParams(const std::string& kind, const nlohmann::json& params) const;

  void start();
  void stop();  // cancels running jobs and waits for them; idempotent

  // kInvalidArgument for an unknown kind or bad params, kUnavailable once stopping.
  // here: the job runs on this runner only (it needs this core's local files); if this
  // runner goes away first, the job fails (see reclaim()).
  Result<std::string> submit(const std::string& kind, const nlohmann::json& params, const std::string& actor,
                             bool here = false);
  // kNotFound, or kConflict when the job already finished.
  Status cancel(const std::string& id, const std::string& actor);
  // A new job with the same kind and params, retry_of = id. Only failed or cancelled
  // jobs are retried (kConflict otherwise).
  Result<std::string> retry(const std::string& id, const std::string& actor);

  // The job as stored, with the live progress of a running one.
  Result<Job> get(const std::string& id) const;
  // Newest first; see JobStore::list.
  std::vector<Job> list(const JobFilter& f, size_t limit, const std::string& before, std::string* next) const;
  std::vector<JobLogLine> logs(const std::string& id, uint64_t after, size_t limit) const;
  // Waits until the job finishes or timeout_ms passes; returns the job as it is then.
  Result<Job> wait(const std::string& id, int64_t timeout_ms);
  // Calls fn (on a runner thread, with a runner lock held: it must only post or signal)
  // whenever new log lines of the job are written, its state changes, or the runner
  // stops. Returns a handle for unsubscribe(); after unsubscribe() returns, fn is not
  // running and will not be called.
  uint64_t subscribe(const std::string& id, std::function<void()> fn);
  void unsubscribe(uint64_t handle);
  bool stopping() const { return stopping_.load(); }
  const std::string& owner() const { return options_.owner; }

  // Writes pending log lines and progress now (tests; the flusher does it on its own).
  void flush();
  // Removes finished jobs older than the retention (the flusher does it hourly).
  size_t prune();

 private:
  struct Kind {
    JobKindInfo info;
    JobFn fn;
    std::function<Status(const nlohmann::json&)> check;
  };
  struct Active;

  // Jobs whose runner is gone: queued again, or failed after max_runs (at_start: this
  // process's first look). Also sets the queued gauge.
  void reclaim(bool at_start);
  // Extends the leases of the jobs this runner holds, and hears of cancels asked on
  // other replicas and of leases lost.
  void renew();
  Result<std::string> enqueue(Job j);
  void wake();
  void workerLoop();
  void flusherLoop();
  void runJob(const std::shared_ptr<Active>& a);
  void cancelLocally(const std::shared_ptr<Active>& a, const std::string& actor);
  // Collects what is pending and writes it; REQUIRES flush_mu_.
  void flushLocked(const std::shared_ptr<Active>& final_job, std::function<void(Job&)> final_fn);
  void notify(const std::string& id);
  void notifyAll();

  JobStore& store_;
  Clock& clock_;
  JobRunnerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // workers: a job may be there to claim, or stop
  std::condition_variable done_cv_;   // wait(): a job finished
  std::map<std::string, Kind> kinds_;                      // written before start() only
  std::vector<std::string> kind_names_, exclusive_kinds_;  // written at start() only
  uint64_t wake_gen_ = 0;                                  // GUARDED_BY(mu_): bumped by wake()
  std::map<std::string, std::shared_ptr<Active>> active_;  // GUARDED_BY(mu_): jobs run here, by id
  // Cancels of jobs this runner claimed but had not started yet: id -> who asked.
  std::map<std::string, std::string> cancels_before_start_;  // GUARDED_BY(mu_)
  bool started_ = false;                                   // GUARDED_BY(mu_)
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> workers_;
  std::thread flusher_;
  std::condition_variable flusher_cv_;

  std::mutex flush_mu_;  // serializes writes of log lines, so lines land in order

  mutable std::mutex sub_mu_;
  uint64_t next_sub_ = 1;                                                          // GUARDED_BY(sub_mu_)
  std::map<uint64_t, std::pair<std::string, std::function<void()>>> subs_;         // GUARDED_BY(sub_mu_)
};

}  // namespace wharf
