// EdgeStats: the edge's cumulative counters for its reports to the core (the contract
// is shared/fleet/edge_report.h), kept in <data_dir>/agent/counters.json.
//
// The file holds the epoch, the last report's seq and the counters. Each report is saved
// before it is sent, so after a crash the next report has a higher seq and counters at
// least as high as anything the core saw: nothing counts twice. save() also runs every
// few seconds, so a kill -9 loses at most those seconds of counting. Thread-safe; the
// counting calls are on the request path (one short lock).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "shared/base/status.h"
#include "shared/fleet/edge_report.h"

namespace wharf {

class EdgeStats {
 public:
  // Where repositories past EdgeReport::kMaxRepos in one epoch are counted.
  static constexpr const char* kOverflowRepository = "wharf-overflow/other-repositories";

  // Loads the state, or starts a new epoch when there is none (or it is unreadable).
  static Result<std::unique_ptr<EdgeStats>> open(const std::string& path);

  // A blob or manifest GET answered 200/206 with bytes of body, from the cache or not.
  void served(const std::string& repo, uint64_t bytes, bool hit);
  // Bytes received from the upstream for a client (prefetch = false) or a pin/prefetch.
  void fetched(const std::string& repo, uint64_t bytes, bool prefetch);
  // A prefetched blob read by a client for the first time (used), or evicted unread.
  void prefetchOutcome(const std::string& repo, uint64_t bytes, bool used);
  void evicted(uint64_t bytes);
  void staleServe();
  void error(const std::string& kind);
  void scrubbed(uint64_t checked, uint64_t corrupt);

  // The next report: seq one above the last, the counters as of now, saved before it is
  // returned. The caller fills in the gauges.
  Result<EdgeReport> nextReport();
  // Writes the counters (same seq).
  Status save();

  std::string epoch() const { return epoch_; }
  RepoCounters totals();  // over every repository (tests, logs)

 private:
  explicit EdgeStats(std::string path) : path_(std::move(path)) {}
  EdgeReport snapshotLocked() const;
  RepoCounters& countersLocked(const std::string& repo);
  Status write(const EdgeReport& state);

  std::string path_;
  std::string epoch_;
  mutable std::mutex mu_;
  uint64_t seq_ = 0;                            // GUARDED_BY(mu_)
  EdgeCounters counters_;                       // GUARDED_BY(mu_)
  std::map<std::string, RepoCounters> repos_;   // GUARDED_BY(mu_)
  bool dirty_ = false;                          // GUARDED_BY(mu_)
  std::mutex save_mu_;                          // one writer of the file at a time
};

}  // namespace wharf
