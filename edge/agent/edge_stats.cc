#include "edge/agent/edge_stats.h"

#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "shared/base/log.h"

namespace wharf {

Result<std::unique_ptr<EdgeStats>> EdgeStats::open(const std::string& path) {
  std::unique_ptr<EdgeStats> stats(new EdgeStats(path));
  std::string text;
  Status st = readFile(path, &text);
  if (st.isOk()) {
    // The saved state has the report's own shape: the same reader checks it.
    auto saved = EdgeReport::fromJson(text);
    if (saved.isOk()) {
      stats->epoch_ = saved->epoch;
      stats->seq_ = saved->seq;
      stats->counters_ = saved->counters;
      stats->repos_ = saved->repos;
      return stats;
    }
    logWarn("the saved report counters are unreadable: starting a new epoch",
            {{"path", path}, {"error", saved.status().message()}});
  } else if (st.code() != Code::kNotFound) {
    return Status(st.code(), path + ": " + st.message());
  }
  stats->epoch_ = newUuid();
  stats->dirty_ = true;
  WHARF_RETURN_IF_ERROR(stats->save());
  return stats;
}

RepoCounters& EdgeStats::countersLocked(const std::string& repo) {
  auto it = repos_.find(repo);
  if (it != repos_.end()) return it->second;
  // A report holds at most kMaxRepos repositories: past that, new ones share one line
  // rather than make every later report too large for the core.
  if (repos_.size() + 1 >= EdgeReport::kMaxRepos) return repos_[kOverflowRepository];
  return repos_[repo];
}

void EdgeStats::served(const std::string& repo, uint64_t bytes, bool hit) {
  std::lock_guard lock(mu_);
  RepoCounters& c = countersLocked(repo);
  ++c.requests;
  c.served_bytes += bytes;
  if (hit) {
    ++c.hits;
    c.hit_bytes += bytes;
  } else {
    ++c.misses;
  }
  dirty_ = true;
}

void EdgeStats::fetched(const std::string& repo, uint64_t bytes, bool prefetch) {
  std::lock_guard lock(mu_);
  RepoCounters& c = countersLocked(repo);
  (prefetch ? c.prefetched_bytes : c.fetched_bytes) += bytes;
  dirty_ = true;
}

void EdgeStats::prefetchOutcome(const std::string& repo, uint64_t bytes, bool used) {
  std::lock_guard lock(mu_);
  RepoCounters& c = countersLocked(repo);
  (used ? c.prefetch_used_bytes : c.prefetch_wasted_bytes) += bytes;
  dirty_ = true;
}

void EdgeStats::evicted(uint64_t bytes) {
  std::lock_guard lock(mu_);
  ++counters_.evictions;
  counters_.evicted_bytes += bytes;
  dirty_ = true;
}

void EdgeStats::staleServe() {
  std::lock_guard lock(mu_);
  ++counters_.stale_serves;
  dirty_ = true;
}

void EdgeStats::error(const std::string& kind) {
  std::lock_guard lock(mu_);
  if (counters_.errors.size() >= EdgeReport::kMaxErrorKinds && counters_.errors.count(kind) == 0) return;
  ++counters_.errors[kind];
  dirty_ = true;
}

void EdgeStats::scrubbed(uint64_t checked, uint64_t corrupt) {
  std::lock_guard lock(mu_);
  counters_.scrub_checked += checked;
  counters_.scrub_corrupt += corrupt;
  dirty_ = true;
}

Result<EdgeReport> EdgeStats::nextReport() {
  std::lock_guard saving(save_mu_);
  EdgeReport r;
  {
    std::lock_guard lock(mu_);
    r = snapshotLocked();
    r.seq = ++seq_;
    dirty_ = false;
  }
  WHARF_RETURN_IF_ERROR(write(r));
  return r;
}

Status EdgeStats::save() {
  std::lock_guard saving(save_mu_);
  EdgeReport state;
  {
    std::lock_guard lock(mu_);
    if (!dirty_) return Status::ok();
    state = snapshotLocked();
    dirty_ = false;
  }
  Status st = write(state);
  if (!st.isOk()) {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  return st;
}

EdgeReport EdgeStats::snapshotLocked() const {
  EdgeReport state;
  // The reader wants seq >= 1: before the first report 1 is saved, which only skips one.
  state.seq = std::max<uint64_t>(seq_, 1);
  state.epoch = epoch_;
  state.counters = counters_;
  state.repos = repos_;
  return state;
}

// Written outside mu_: the request path never waits for the disk.
Status EdgeStats::write(const EdgeReport& state) { return writeFileDurable(path_, state.toJson().dump(), 0600); }

RepoCounters EdgeStats::totals() {
  std::lock_guard lock(mu_);
  RepoCounters t;
  for (const auto& [repo, c] : repos_) t.add(c);
  return t;
}

}  // namespace wharf
