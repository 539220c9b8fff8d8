// LmdbUsageStore: the UsageStore in its own LMDB environment (<data_dir>/usage.lmdb).
//
// Group commit: ingest() queues the report; one writer thread takes everything queued,
// applies it in queue order in one write transaction, commits (one fsync for the whole
// batch) and then calls each report's callback. So 1,000 edges reporting every second
// cost a few commits a second, not 1,000 fsyncs, and a report is only acknowledged once
// it is durable. A batch that fails (disk full, I/O error) fails every report in it; the
// edges send them again.
//
// The writer also applies retention (at open and every prune_interval): hourly rows older
// than hourly_retention, day rows older than daily_retention, in transactions of at most
// 10,000 deletes.
//
// Statuses are also kept in memory (loaded at open, replaced after each commit), so the
// edge list and /metrics never read the disk for them.
//
// Layout, version kUsageSchemaVersion in usage_meta["schema"] (integers big-endian so
// that keys sort by time; <edge> is an edge name, which never holds '\0'):
//   usage_meta      "schema" -> "1"
//   usage_edges     <edge> -> [varint n][n bytes: EdgeStatus as JSON (statusToJson)]
//                   [the counter state: epoch, seq, EdgeCounters and each repository's
//                   cumulative RepoCounters of that epoch]: one record, so that a report
//                   writes one page of it
//   usage_hour      <hour u32><edge> -> UsageTotals delta of that hour
//   usage_day       <day u32><edge>  -> UsageTotals delta of that UTC day
//   usage_hour_repo <hour u32><edge>\0<repository> -> RepoCounters delta
//   usage_day_repo  <day u32><edge>\0<repository>  -> RepoCounters delta
// Binary values are varints (see lmdb_usage_store.cc), fields in EdgeReport's order,
// each list preceded by its length, so that fields added later read as 0.
// hour = ms / 3,600,000 and day = ms / 86,400,000 since the Unix epoch. Every series is
// keyed by time first: the rows a batch of reports changes are the current hour's and
// day's, next to each other at the end of each tree (a commit writes few pages however
// many edges report), a fleet query over 30 days reads 30 x edges contiguous rows, one
// edge's is a seek per bucket, and retention removes a prefix.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/fleet/usage_store.h"
#include "shared/base/clock.h"
#include "shared/store/lmdb.h"

namespace wharf {

constexpr int kUsageSchemaVersion = 1;

struct LmdbUsageOptions {
  int64_t hourly_retention_ms = 14ll * 86'400'000;
  int64_t daily_retention_ms = 400ll * 86'400'000;
  int64_t prune_interval_ms = 3'600'000;
  size_t queue_max = 100'000;  // reports waiting for the writer; beyond, ingest() fails (503)
};

class LmdbUsageStore : public UsageStore {
 public:
  // Opens the databases above in env, prunes, and starts the writer thread.
  static Result<std::unique_ptr<LmdbUsageStore>> open(std::shared_ptr<LmdbEnv> env, Clock& clock,
                                                      LmdbUsageOptions options);
  ~LmdbUsageStore() override;  // commits what is queued (callbacks run), then stops the writer

  Status ingest(const std::string& edge, EdgeReport report, IngestCallback done) override;
  Result<UsageResult> query(const UsageQuery& q) override;
  std::optional<EdgeStatus> status(const std::string& edge) override;
  std::vector<EdgeStatus> statuses() override;
  Status forgetEdge(const std::string& edge) override;
  Result<UsageSnapshot> snapshot() override;
  Status restore(const UsageSnapshot& snapshot) override;

  // Applies retention now (the writer does it periodically). Returns rows removed.
  size_t prune();
  const LmdbUsageOptions& options() const { return options_; }

  struct Stats {
    uint64_t reports = 0;     // ingested (duplicates included)
    uint64_t duplicates = 0;
    uint64_t batches = 0;     // commits
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
  LmdbUsageStore(std::shared_ptr<LmdbEnv> env, Clock& clock, LmdbUsageOptions options);
  Status openDbs();
  void run();
  // Applies a batch in one transaction; results[i] is op i's answer.
  Status writeBatch(std::deque<Op>& batch, std::vector<IngestResult>& results,
                    std::map<std::string, std::optional<EdgeStatus>>& changed);
  size_t prunePrefix(Dbi db, int64_t cutoff_bucket);

  std::shared_ptr<LmdbEnv> env_;
  Clock& clock_;
  LmdbUsageOptions options_;
  Dbi meta_db_ = 0, edges_db_ = 0, hour_db_ = 0, day_db_ = 0, hour_repo_db_ = 0, day_repo_db_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;  // GUARDED_BY(mu_)
  bool stop_ = false;     // GUARDED_BY(mu_)
  Stats stats_;           // GUARDED_BY(mu_)

  mutable std::mutex status_mu_;
  std::map<std::string, EdgeStatus> statuses_;  // GUARDED_BY(status_mu_)

  std::mutex prune_mu_;  // one pruner at a time (the writer, or a caller of prune())
  std::thread thread_;
};

nlohmann::json statusToJson(const EdgeStatus& s);
EdgeStatus statusFromJson(const std::string& edge, const nlohmann::json& j);

}  // namespace wharf
