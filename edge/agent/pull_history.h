// PullHistory: how often clients pulled each tag through this edge since it last moved,
// for the default prefetch rule ("prefetch the new image of a tag the site pulled often
// enough before it moved"), kept in <data_dir>/agent/pulls.json
// ({"<repository>:<tag>": [<last ms>, <pulls>], ...}). A kill -9 loses at most the
// changes since the last save(), which the agent calls every few seconds. Thread-safe;
// pulled() is on the request path (one short lock).
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
  // Tags remembered at most (the least recently pulled go first).
  static constexpr size_t kMaxTags = 20'000;
  struct Pulls {
    int64_t last_ms = 0;  // 0: never
    uint32_t count = 0;   // since the tag last moved
  };

  // An unreadable file starts an empty history (it only steers prefetch).
  static Result<std::unique_ptr<PullHistory>> open(const std::string& path, Clock& clock);
  void pulled(const std::string& repo, const std::string& tag);
  Pulls get(const std::string& repo, const std::string& tag) const;
  // The tag moved: what its pulls were, and from now on none.
  Pulls moved(const std::string& repo, const std::string& tag);
  Status save();                                // if anything changed

 private:
  PullHistory(std::string path, Clock& clock) : path_(std::move(path)), clock_(clock) {}
  std::string path_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Pulls> tags_;  // GUARDED_BY(mu_): repo:tag
  bool dirty_ = false;                   // GUARDED_BY(mu_)
  std::mutex save_mu_;
};

}  // namespace wharf
