// PgUsageStore: the UsageStore on PostgreSQL, for several cores sharing one database.
// The same contract as LmdbUsageStore (lmdb_usage_store.h), the same options:
//
// Group commit: ingest() queues the report; one writer thread per store takes what is
// queued (at most 2,000 reports, and about 100,000 repository entries), applies it in
// queue order in one transaction, commits, then calls each report's callback. A batch
// that fails fails every report in it (the edges send them again); a report the database
// cannot hold (an edge or repository name that is not UTF-8 text, or holds a NUL) fails
// alone with kInvalidArgument. The writer applies retention at open and every
// prune_interval (10,000 rows per statement); every replica does, deletes of the same rows
// at once are harmless.
//
// Tables (component "usage", migrations in pg_usage_store.cc). Times are ms since the
// epoch (bigint); a bucket is the start of its hour or UTC day, clamped as LMDB clamps it
// (0 .. 2^32-1 buckets); names are compared and sorted bytewise (COLLATE "C"):
//   usage_edges (edge, received_ms, status, state): the last accepted report's status as
//       JSON (statusToJson, with the lifetime counters) and the counter state as JSON
//       {"epoch","seq","counters":[...],"errors":{kind:n},"repos":{name:[...]}} (numbers in
//       kRepoCounterFields' / kEdgeCounterFields' order; missing ones read as 0)
//   usage_hour, usage_day (bucket_ms, edge, <RepoCounters fields>, <EdgeCounters fields>)
//   usage_hour_errors, usage_day_errors (bucket_ms, edge, kind, n): the totals' errors
//   usage_hour_repo, usage_day_repo (bucket_ms, edge, repository, <RepoCounters fields>)
// Series counters are bigint: a value above 2^63-1 is stored as 2^63-1, and sums stop
// there (wharf_usage_add), where LMDB's uint64 would wrap. Error kinds in the series are
// stored with the bytes PostgreSQL cannot hold replaced by U+FFFD (the status and the
// counter state keep them exactly, escaped in their JSON).
//
// Atomicity across replicas: a batch takes a transaction-scoped advisory lock per edge it
// touches, (1490, hashtext(edge)), in ascending key order (no deadlock between batches),
// before it reads those edges' state: the dedup check, the delta and the new state of an
// edge are computed from what the previous holder committed, so a report sent to two
// replicas at once counts once, whichever commits first. Series rows belong to one edge
// and are only written under its lock; their updates are additive upserts anyway
// (INSERT ... ON CONFLICT DO UPDATE SET x = wharf_usage_add(x, EXCLUDED.x)). forgetEdge
// takes the same lock.
//
// Statuses are read from the database (another replica may have taken the last report),
// not kept in memory.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/fleet/lmdb_usage_store.h"
#include "core/fleet/usage_store.h"
#include "shared/base/clock.h"
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

namespace wharf {

// The usage component's migrations, oldest first. Append one to change the schema; never
// edit one that shipped.
const std::vector<PgMigration>& usageMigrations();

class PgUsageStore final : public UsageStore {
 public:
  // Applies the migrations, prunes, and starts the writer thread. The options are
  // LmdbUsageStore's (retention, prune interval, queue bound).
  static Result<std::unique_ptr<PgUsageStore>> open(std::shared_ptr<PgPool> db, Clock& clock,
                                                    LmdbUsageOptions options);
  ~PgUsageStore() override;  // commits what is queued (callbacks run), then stops the writer

  Status ingest(const std::string& edge, EdgeReport report, IngestCallback done) override;
  Result<UsageResult> query(const UsageQuery& q) override;
  std::optional<EdgeStatus> status(const std::string& edge) override;
  std::vector<EdgeStatus> statuses() override;
  Status forgetEdge(const std::string& edge) override;
  Result<UsageSnapshot> snapshot() override;
  Status restore(const UsageSnapshot& snapshot) override;

  // Applies retention now (the writer does it periodically). Returns the series rows
  // removed (totals and repository rows, as LMDB counts them; error-kind rows go with
  // their totals uncounted).
  size_t prune();
  const LmdbUsageOptions& options() const { return options_; }

  struct Stats {
    uint64_t reports = 0;     // ingested by this store (duplicates included)
    uint64_t duplicates = 0;
    uint64_t batches = 0;     // transactions
    uint64_t failed = 0;      // reports failed with their batch
  };
  Stats stats() const;

 private:
  struct Op {
    std::string edge;
    std::optional<EdgeReport> report;  // none: forget the edge
    int64_t received_ms = 0;
    IngestCallback done;
  };
  PgUsageStore(std::shared_ptr<PgPool> db, Clock& clock, LmdbUsageOptions options);
  void run();
  // Applies a batch in one transaction; results[i] is op i's answer (set when OK).
  Status writeBatch(const std::deque<Op>& batch, std::vector<std::optional<Result<IngestResult>>>& results);
  size_t pruneTable(const char* table, int64_t cutoff_ms);

  std::shared_ptr<PgPool> db_;
  Clock& clock_;
  LmdbUsageOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;  // GUARDED_BY(mu_)
  bool stop_ = false;     // GUARDED_BY(mu_)
  Stats stats_;           // GUARDED_BY(mu_)

  std::mutex prune_mu_;  // one pruner at a time in this store (the writer, or a caller of prune())
  std::thread thread_;
};

// The store over db, as a UsageStore (its migrations applied first).
Result<std::unique_ptr<UsageStore>> openPgUsageStore(std::shared_ptr<PgPool> db, Clock& clock,
                                                     LmdbUsageOptions options = {});

}  // namespace wharf
