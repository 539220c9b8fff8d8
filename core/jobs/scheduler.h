// Scheduler: recurring jobs from persisted cron schedules.
//
// A schedule {name, cron, kind, params, enabled} submits a job of its kind (actor
// "schedule:<name>") at each time its cron expression selects, on the injected Clock
// (UTC). Each schedule keeps next_run in the JobStore, so a run missed while the core
// was down happens once at the next start (not once per missed slot), and the following
// one is the first slot after that. A slot that comes while the schedule's previous job
// is still queued or running is skipped (and logged): runs never pile up. Replicas on
// one shared store each tick; a slot is taken in one transaction on the schedule's
// record (next_run moved on), so it fires once in the cluster: on the replica that
// took it, which submits the job right after (a replica dying in between loses that
// one run).
//
// Schedules from the configuration (origin "config": upload-purge, ldap-sync) are
// created when absent and kept in step with the configuration by ensureDefault(); once
// changed through the API (put()), the configuration no longer touches them.
//
// Thread-safety: every method is thread-safe; they write to the store, so they belong
// on worker threads (the scheduler's own thread calls tick()).
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/jobs/cron.h"
#include "core/jobs/job_runner.h"
#include "core/jobs/job_store.h"
#include "shared/base/clock.h"

namespace wharf {

// Schedule names: 1-63 of [a-z0-9._-], starting with a letter or digit.
Status validateScheduleName(const std::string& name);

class Scheduler {
 public:
  Scheduler(JobStore& store, JobRunner& runner, Clock& clock);
  ~Scheduler();  // stop()

  // Creates the schedule (origin "config") when absent, or brings one that still has
  // origin "config" in step (cron, kind, params, enabled). An absent schedule that
  // would be disabled is not created.
  Status ensureDefault(const std::string& name, const std::string& cron, const std::string& kind,
                       const nlohmann::json& params, bool enabled);
  // Creates or replaces a schedule (origin "api"). kInvalidArgument names the bad field
  // (the cron message names the cron field). *created tells which.
  Result<Schedule> put(const std::string& name, const std::string& cron, const std::string& kind,
                       const nlohmann::json& params, bool enabled, const std::string& actor, bool* created = nullptr);
  Status remove(const std::string& name);
  Result<Schedule> get(const std::string& name) const;
  std::vector<Schedule> list() const;

  // Submits the job of every enabled schedule that is due now (clock time). Returns the
  // ids of the jobs submitted.
  std::vector<std::string> tick();

  // A thread calling tick() every period_ms until stop().
  void start(int64_t period_ms = 1000);
  void stop();

 private:
  JobStore& store_;
  JobRunner& runner_;
  Clock& clock_;
  std::mutex tick_mu_;  // one tick at a time, and no put() in the middle of one
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace wharf
