// JobStore: jobs, their logs and the schedules, persisted where the core keeps its
// metadata: LMDB (openLmdbJobStore, in the metadata environment) or PostgreSQL
// (openPgJobStore, shared by the replicas of a scale-out installation).
//
// A job's id is its sequence number as 10 decimal digits ("0000000042"), so ids sort as
// they were created. Log lines are numbered from 1 per job; the job's record counts
// them (log_lines) and is written in the same transaction as the lines.
//
// Runs are leased (claim()): a runner takes the oldest queued job it can run, marks it
// running under its owner name with a lease it renews; a runner that stopped renewing
// (its process died) loses the job to whichever runner finds the lease expired, which
// queues it again (see JobRunner). At most one job of an exclusive kind runs at a time
// across every runner that shares the store.
//
// Thread-safety: every method may be called from any thread. Writes are transactions on
// the store (an LMDB write transaction, or a PostgreSQL round trip), so they belong on
// worker threads (see shared/store/lmdb.h).
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
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

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
  std::string cancelled_by;   // who asked for the cancel
  uint64_t log_lines = 0;     // lines in its log
  // The lease of a run: the runner that holds it (JobRunner::owner()), until when (ms,
  // wall clock), and how many runs have started (a run lost with its runner counts).
  std::string owner;
  int64_t lease_until_ms = 0;
  uint32_t runs = 0;
  // Runs only on this runner (it needs files of the core that took the request); empty:
  // anywhere.
  std::string pinned;

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

// Whether a stored job is the one importJob was given.
inline bool sameJob(const Job& a, const Job& b) {
  return a.id == b.id && a.kind == b.kind && a.created_ms == b.created_ms;
}

struct JobFilter {
  std::string kind;   // empty: any
  std::string actor;  // empty: any
  std::optional<JobState> state;
  bool matches(const Job& j) const;
};

// A batch of changes to one job for JobStore::commit: log lines to append, then fn.
// A line with seq 0 is numbered after the job's last line. With `when`, the job's
// lines and fn are written only if when(job as stored) holds.
struct JobWrite {
  std::string id;
  std::vector<JobLogLine> lines;
  std::function<void(Job&)> fn;  // may be empty
  std::function<bool(const Job&)> when;  // may be empty: always
};

// What JobStore::claim() may take: the oldest queued job of one of kinds, pinned to
// owner or to no runner, unless its kind is in exclusive and a job of that kind is
// running; it becomes running under owner until lease_until_ms, with started_ms =
// now_ms and one more run.
struct JobClaim {
  std::vector<std::string> kinds;
  std::vector<std::string> exclusive;
  std::string owner;
  int64_t now_ms = 0;
  int64_t lease_until_ms = 0;
};

// For the stores: the sequence number of an id ("42", "0000000042"; kInvalidArgument
// otherwise), and the id of a sequence number.
Result<uint64_t> jobSeqOf(const std::string& id);
std::string jobIdOf(uint64_t seq);
// For the stores' list(), fed records newest first: adds a record that parses and
// matches f to page; false once the page is full (*more is then its last id).
bool fillJobPage(std::vector<Job>& page, Result<Job> record, const JobFilter& f, size_t limit, std::string* more);

class JobStore {
 public:
  virtual ~JobStore() = default;

  // "42" or "0000000042" -> "0000000042"; kInvalidArgument for anything else.
  static Result<std::string> normalizeId(const std::string& id);

  // Whether other processes (replicas) share this store: their runners' leases are
  // then honoured until they expire; an unshared store's running jobs at start were
  // left by a process that is gone.
  virtual bool shared() const = 0;

  // Stores a new job (its fields taken as given except id, which is assigned). Returns
  // the id.
  virtual Result<std::string> create(Job job) = 0;
  virtual Result<Job> get(const std::string& id) const = 0;
  // Stores a job of another store with its id and log lines (wharfctl migrate), in one
  // transaction: a job whose id is there already is left as it is when it is the same
  // job (its kind and creation time; a run again), kConflict when it is another; ids
  // created afterwards follow the highest.
  virtual Status importJob(const Job& job, const std::vector<JobLogLine>& lines) = 0;
  // Read-modify-write of one job in one transaction; fn's error aborts it.
  virtual Result<Job> update(const std::string& id, const std::function<Status(Job&)>& fn) = 0;
  // Appends lines and applies fn to several jobs in one transaction (log_lines follows
  // the highest line written). A job that is gone (pruned) is skipped.
  virtual Status commit(const std::vector<JobWrite>& writes) = 0;
  // The oldest job c allows, now running under c.owner; nullopt when there is none.
  virtual Result<std::optional<Job>> claim(const JobClaim& c) = 0;
  // Newest first: jobs matching f with an id below `before` (empty: from the newest),
  // at most limit. *next is set to the last id returned when more may follow, else "".
  virtual std::vector<Job> list(const JobFilter& f, size_t limit, const std::string& before,
                                std::string* next) const = 0;
  // Jobs queued or running, oldest first.
  virtual std::vector<Job> unfinished() const = 0;
  // Lines with seq > after, at most limit.
  virtual std::vector<JobLogLine> logs(const std::string& id, uint64_t after, size_t limit) const = 0;
  // Deletes finished jobs (and their logs) that finished before the cutoff; returns how many.
  virtual Result<size_t> prune(int64_t finished_before_ms) = 0;

  virtual Result<Schedule> schedule(const std::string& name) const = 0;
  virtual std::vector<Schedule> schedules() const = 0;
  virtual Status putSchedule(const Schedule& s) = 0;
  // kNotFound when absent.
  virtual Status deleteSchedule(const std::string& name) = 0;
  // Read-modify-write of one schedule in one transaction (replicas firing the same
  // schedule see each other's change); fn's error aborts it.
  virtual Result<Schedule> updateSchedule(const std::string& name, const std::function<Status(Schedule&)>& fn) = 0;
};

// The store in the core's metadata environment (openMetadataEnv, shared with the
// metadata and identity stores). Databases, added without a schema bump (see
// lmdb_identity_store.h):
//
//   jobs            <~seq, 8 bytes big-endian>           -> Job JSON (record form)
//   jobs_unfinished <seq, 8 bytes BE>                    -> "" (queued and running jobs;
//                                                           rebuilt from jobs at open)
//   job_logs        <seq, 8 bytes BE> <line, 8 bytes BE> -> {"ts":ms,"line":"..."}
//   schedules       <name>                               -> Schedule JSON (record form)
//
// jobs keys hold the complement of the sequence, so that a forward cursor walks the
// newest job first.
Result<std::unique_ptr<JobStore>> openLmdbJobStore(std::shared_ptr<LmdbEnv> env);

// The store on PostgreSQL (component "jobs", migrations in pg_job_store.cc): rows of
// jobs with their record, log lines, schedules. claim() picks with FOR UPDATE SKIP
// LOCKED (runners never wait for each other's candidates) and, for an exclusive kind,
// re-checks under the kind's advisory lock that none of it runs.
Result<std::unique_ptr<JobStore>> openPgJobStore(std::shared_ptr<PgPool> db);
// The jobs component's migrations, oldest first.
const std::vector<PgMigration>& jobMigrations();

}  // namespace wharf
