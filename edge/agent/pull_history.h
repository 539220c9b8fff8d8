// PullHistory: when clients last pulled a tag of each repository through this edge, for
// the default prefetch rule ("prefetch a new tag where an earlier one was pulled within N
// days"), kept in <data_dir>/agent/pulls.json ({"<repository>": <ms>, ...}). A kill -9
// loses at most the changes since the last save(), which the agent calls every few
// seconds. Thread-safe; pulled() is on the request path (one short lock).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "shared/base/clock.h"
#include "shared/base/status.h"

namespace wharf {

class PullHistory {
 public:
  // Repositories remembered at most (the least recently pulled go first).
  static constexpr size_t kMaxRepositories = 20'000;

  // An unreadable file starts an empty history (it only steers prefetch).
  static Result<std::unique_ptr<PullHistory>> open(const std::string& path, Clock& clock);
  void pulled(const std::string& repo);
  int64_t last(const std::string& repo) const;  // 0: never
  Status save();                                // if anything changed

 private:
  PullHistory(std::string path, Clock& clock) : path_(std::move(path)), clock_(clock) {}
  std::string path_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, int64_t> last_;  // GUARDED_BY(mu_)
  bool dirty_ = false;                   // GUARDED_BY(mu_)
  std::mutex save_mu_;
};

}  // namespace wharf
