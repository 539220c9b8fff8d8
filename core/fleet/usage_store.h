// UsageStore: what the core keeps of its edges' reports (shared/fleet/edge_report.h):
// per edge the last report's status and counter state, and time series of the deltas
// between reports, per hour and per UTC day, per repository and as edge totals.
//
// Ingest: ingest() turns a cumulative report into a delta against the last accepted one
// of the same edge and epoch (see EdgeReport): a seq at or below the last one of the same
// epoch is a duplicate and changes nothing; another epoch (or the first report of an
// edge) counts from zero; a counter below its last value adds 0. The delta goes to the
// hour and the day (UTC) the core received the report in, and the new counter state and
// the series change in one atomic update, so a crash never counts a report twice: a
// report whose update did not commit was never acknowledged, and its repeat (or the next
// report) is counted then.
//
// Queries read the series: hourly rows are kept usage_hourly_retention (then only their
// day rows remain), day rows usage_daily_retention; a bucket is in a range when it
// overlaps it.
//
// Removing an edge (forgetEdge) drops its status and counter state, not its history:
// what it served stays in the fleet's figures until retention drops the rows.
//
// Thread-safety: every method is thread-safe. Implementations: LmdbUsageStore
// (lmdb_usage_store.h), the embedded default.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "shared/base/status.h"
#include "shared/fleet/edge_report.h"

namespace wharf {

// Edge-wide figures over a period: the repositories' counters summed, and the edge's own.
struct UsageTotals {
  RepoCounters repos;
  EdgeCounters edge;
  void add(const UsageTotals& other);
  bool operator==(const UsageTotals&) const = default;
};

// What the core knows of an edge from its last accepted report.
struct EdgeStatus {
  std::string edge;
  int64_t received_ms = 0;  // when the core received the last accepted report
  std::string epoch;
  uint64_t seq = 0;
  int64_t report_time_ms = 0;  // the edge's clock in that report
  std::string version;
  int64_t uptime_s = 0;
  bool final = false;
  bool draining = false;
  uint64_t cache_used = 0, cache_budget = 0, cache_blobs = 0, pinned_bytes = 0, fills_in_flight = 0;
  // Every delta accepted from this edge since the core first saw it (across epochs): the
  // monotonic counters /metrics exposes.
  UsageTotals lifetime;  bool operator==(const EdgeStatus&) const = default;
};

// "online" when the last report is at most unreachable_after_ms old, else "unreachable";
// "never" without a report (status null).
const char* edgeState(const EdgeStatus* status, int64_t now_ms, int64_t unreachable_after_ms);

enum class UsageResolution { kHour, kDay };
// What rows of a query are keyed by: the bucket's start time, the repository, or the edge.
enum class UsageGroup { kTime, kRepo, kEdge };

struct UsageQuery {
  std::optional<std::set<std::string>> edges;  // nullopt: every edge
  // "": every repository. Else only that repository's counters count (the rows and the
  // totals then carry no edge counters: those are the edge's, not a repository's).
  std::string repository;
  UsageResolution resolution = UsageResolution::kDay;
  UsageGroup group = UsageGroup::kTime;
  int64_t from_ms = 0;  // buckets overlapping [from_ms, to_ms)
  int64_t to_ms = 0;
};

struct UsageRow {
  std::string key;         // kRepo: the repository; kEdge: the edge; kTime: ""
  int64_t bucket_ms = 0;   // kTime: the bucket's start
  UsageTotals totals;      // kRepo: only totals.repos is set
};

struct UsageResult {
  int64_t from_ms = 0, to_ms = 0;  // the range rounded out to whole buckets ([from, to))
  // kTime: every bucket of the range in order, empty ones included. kRepo and kEdge: the
  // keys with data, in key order.
  std::vector<UsageRow> rows;
  UsageTotals totals;  // over the range; totals.edge is set for every grouping
};

// The counter state of an edge: the cumulative counters of its last accepted report.
struct UsageCounterState {
  std::string epoch;
  uint64_t seq = 0;
  EdgeCounters counters;
  std::map<std::string, RepoCounters> repos;
  bool operator==(const UsageCounterState&) const = default;
};

// Everything a store holds, to write it into another (wharfctl migrate).
struct UsageSnapshot {
  struct Edge {
    EdgeStatus status;                          // status.edge names it
    std::optional<UsageCounterState> counters;  // nullopt: unreadable (its next report counts from zero)
  };
  // A series row: an edge's totals (repository ""), or one repository's counters at the
  // edge (only totals.repos).
  struct Row {
    UsageResolution resolution = UsageResolution::kHour;
    int64_t bucket_ms = 0;
    std::string edge, repository;
    UsageTotals totals;
  };
  std::vector<Edge> edges;
  std::vector<Row> rows;
};

struct IngestResult {
  uint64_t seq = 0;        // the last seq the core holds for the edge (in its epoch)
  bool duplicate = false;  // the report was a repeat and changed nothing
};

class UsageStore {
 public:
  virtual ~UsageStore() = default;

  using IngestCallback = std::function<void(Result<IngestResult>)>;
  // Queues the report of edge (authenticated by the caller) and calls done once its update
  // committed (or failed), on the store's writer thread: done must not block. Either fails
  // now (kUnavailable when the queue is full or the store is closing, without calling
  // done) or calls done exactly once. The report counts for the time of this call.
  virtual Status ingest(const std::string& edge, EdgeReport report, IngestCallback done) = 0;

  virtual Result<UsageResult> query(const UsageQuery& q) = 0;

  // The last accepted report's status; nullopt when the edge never reported (or was forgotten).
  virtual std::optional<EdgeStatus> status(const std::string& edge) = 0;
  // Every edge's, in name order.
  virtual std::vector<EdgeStatus> statuses() = 0;

  // Drops the status and counter state of edge (its next report counts from zero); its
  // series stay until retention. Ordered after every report queued before the call.
  virtual Status forgetEdge(const std::string& edge) = 0;

  // Everything the store holds (committed reports), read in one snapshot.
  virtual Result<UsageSnapshot> snapshot() = 0;
  // Writes another store's snapshot in one transaction, into a store that holds no edge
  // yet (kConflict otherwise: edges reported to it).
  virtual Status restore(const UsageSnapshot& snapshot) = 0;
};

// ingest() and wait for the result (tests and tools; never on a loop thread).
Result<IngestResult> ingestAndWait(UsageStore& store, const std::string& edge, EdgeReport report);

// Bucket arithmetic (UTC): the start of the hour or day holding t, and the length.
int64_t usageBucketStart(UsageResolution r, int64_t t_ms);
int64_t usageBucketMs(UsageResolution r);

}  // namespace wharf
