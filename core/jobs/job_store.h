// JobStore: jobs, their logs and the schedules, persisted in the core's metadata LMDB
// environment (opened with openMetadataEnv; shared with MetadataStore and
// IdentityStore). Databases, added without a schema bump (see lmdb_identity_store.h):
//
//   jobs       <~seq, 8 bytes big-endian>          -> Job JSON (record form)
//   job_logs   <seq, 8 bytes BE> <line, 8 bytes BE> -> {"ts":ms,"line":"..."}
//   schedules  <name>                               -> Schedule JSON (record form)
//
// A job's id is its sequence number as 10 decimal digits ("0000000042"), so ids sort as
// they were created; the key stores the complement of the sequence so that a forward
// cursor walks the newest job first. Log lines are numbered from 1 per job; the job's
// record counts them (log_lines) and is written in the same transaction as the lines.
//
// Thread-safety: every method may be called from any thread. Reads take an LMDB read
// transaction (fine on loop threads); writes take a write transaction, so they belong
// on worker threads (see shared/store/lmdb.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"
#include "shared/store/lmdb.h"

namespace wharf {

enum class JobState : uint8_t { kQueued, kRunning, kSucceeded, kFailed, kCancelled };

std::string_view jobStateName(JobState s);
// "queued", "running", "succeeded", "failed", "cancelled".
bool parseJobState(std::string_view s, JobState* out);
inline bool jobFinished(JobState s) { return s != JobState::kQueued && s != JobState::kRunning; }

struct JobProgress {
  uint64_t done = 0;
  uint64_t total = 0;  // 0: unknown
  std::string message;
};

struct Job {
  std::string id;
  std::string kind;
  JobState state = JobState::kQueued;
  std::string actor;  // who submitted it: a user, or "schedule:<name>"
  nlohmann::json params = nlohmann::json::object();
  int64_t created_ms = 0, started_ms = 0, finished_ms = 0;  // 0: not yet
  JobProgress progress;
  nlohmann::json result;      // the kind's summary when it succeeded (null otherwise)
  std::string error;          // why it failed
  std::string error_code;     // codeName() of the failure's Status code
  std::string retry_of;       // the job this one retries
  bool interrupted = false;   // failed because the core stopped while it ran
  bool cancel_requested = false;
  uint64_t log_lines = 0;     // lines in its log

  // The failure as a Status (code from error_code; kInternal if unknown); OK unless
  // the job failed or was cancelled.
  Status failure() const;
  // The API form: times as RFC 3339 ("created_at") plus duration_ms.
  nlohmann::json toJson() const;
  std::string record() const;
  static Result<Job> fromRecord(std::string_view text);
};

struct JobLogLine {
  uint64_t seq = 0;  // from 1
  int64_t ts_ms = 0;
  std::string line;
  nlohmann::json toJson() const;  // {"seq","ts","line"} (ts RFC 3339)
};

struct Schedule {
  std::string name;
  std::string cron;
  std::string kind;
  nlohmann::json params = nlohmann::json::object();
  bool enabled = true;
  int64_t last_run_ms = 0, next_run_ms = 0;  // 0: never / not planned
  std::string last_job;
  // "config": created from the core's configuration, and kept in step with it at each
  // start; "api": set through the API (the configuration no longer touches it).
  std::string origin = "api";
  std::string updated_by;
  int64_t updated_ms = 0;

  nlohmann::json toJson() const;
  std::string record() const;
  static Result<Schedule> fromRecord(std::string_view text);
};

struct JobFilter {
  std::string kind;   // empty: any
  std::string actor;  // empty: any
  std::optional<JobState> state;
  bool matches(const Job& j) const;
};

// A batch of changes to one job for JobStore::commit: log lines to append, then fn.
struct JobWrite {
  std::string id;
  std::vector<JobLogLine> lines;
  std::function<void(Job&)> fn;  // may be empty
};

class JobStore {
 public:
  static Result<std::unique_ptr<JobStore>> open(std::shared_ptr<LmdbEnv> env);

  // "42" or "0000000042" -> "0000000042"; kInvalidArgument for anything else.
  static Result<std::string> normalizeId(const std::string& id);

  // Stores a new job (its id, created_ms and state are taken as given except id, which
  // is assigned). Returns the id.
  Result<std::string> create(Job job);
  Result<Job> get(const std::string& id) const;
  // Read-modify-write of one job in one transaction; fn's error aborts it.
  Result<Job> update(const std::string& id, const std::function<Status(Job&)>& fn);
  // Appends lines and applies fn to several jobs in one transaction (log_lines follows
  // the highest line written).
  Status commit(const std::vector<JobWrite>& writes);
  // Newest first: jobs matching f with an id below `before` (empty: from the newest),
  // at most limit. *next is set to the last id returned when more may follow, else "".
  std::vector<Job> list(const JobFilter& f, size_t limit, const std::string& before, std::string* next) const;
  // Jobs queued or running, oldest first (start-up recovery).
  std::vector<Job> unfinished() const;
  // Lines with seq > after, at most limit.
  std::vector<JobLogLine> logs(const std::string& id, uint64_t after, size_t limit) const;
  // Deletes finished jobs (and their logs) that finished before the cutoff; returns how many.
  Result<size_t> prune(int64_t finished_before_ms);

  Result<Schedule> schedule(const std::string& name) const;
  std::vector<Schedule> schedules() const;
  Status putSchedule(const Schedule& s);
  // kNotFound when absent.
  Status deleteSchedule(const std::string& name);
  // Read-modify-write of one schedule; fn's error aborts it.
  Result<Schedule> updateSchedule(const std::string& name, const std::function<Status(Schedule&)>& fn);

 private:
  explicit JobStore(std::shared_ptr<LmdbEnv> env) : env_(std::move(env)) {}
  Status init();

  std::shared_ptr<LmdbEnv> env_;
  Dbi jobs_ = 0, logs_ = 0, schedules_ = 0;
  std::mutex seq_mu_;
  uint64_t next_seq_ = 1;  // GUARDED_BY(seq_mu_)
};

}  // namespace wharf
