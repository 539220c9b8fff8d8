// PrefetchPolicy: what an edge fetches before any client asks, set at the core in the
// edge's settings ("prefetch") and applied by the edge to the push events its channel
// brings (shared by the core, which validates, and the edge, which applies).
//
//   "prefetch": {
//     "rules": [{"repository": "acme/*", "tag": "v*"}],  a newly pushed tag matching a rule
//     "recent_days": 1,         ...or a tag that moved after clients pulled it through this
//     "min_pulls": 3,           edge at least min_pulls times within recent_days (0: off):
//                               the site runs what the tag named, so it will roll out what
//                               it names now; only the blobs the previous image did not
//                               have are fetched (its nodes have those). In the fleet
//                               traces' replay this follow-the-previous-tag rule wastes
//                               about 23 % of its bytes (1 day, 3 pulls; 39 % with 3 days
//                               and 2 pulls), where prefetching every push of a repository
//                               the site pulled in the last 7 days wasted about 90 %
//                               (bench/wharf-cachesim).
//     "rate": "10m",            bytes per second at most (a size: "512k", "10m", "1g")
//     "window": "20:00-06:00",  UTC; rule-driven prefetch waits for it (absent: any time)
//     "platforms": ["linux/amd64"]  the children of a multi-platform index fetched
//   }
//
// A tag pattern is a glob where '*' matches any run of characters ("v*", "*-prod", "*").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"

namespace wharf {

struct PrefetchRule {
  std::string repository;  // a repository pattern (shared/oci/names.h)
  std::string tag;         // a tag glob
};

struct PrefetchPolicy {
  static constexpr uint64_t kDefaultRate = 10ull << 20;
  std::vector<PrefetchRule> rules;
  int recent_days = 1;
  int min_pulls = 3;
  uint64_t rate = kDefaultRate;  // bytes per second
  // Minutes after 00:00 UTC: [start, end), wrapping midnight when end <= start.
  std::optional<std::pair<int, int>> window;
  std::vector<std::string> platforms{"linux/amd64"};

  // The settings' "prefetch" object (null or absent: the defaults). kInvalidArgument
  // naming the field ("prefetch.rate") otherwise.
  static Result<PrefetchPolicy> fromJson(const nlohmann::json& j);

  // Whether the new image of a tag pushed to repo is prefetched: a rule matches, or
  // clients pulled the tag through this edge `pulls` times (the last at last_pull_ms)
  // since it moved before, enough and recently enough.
  bool wants(const std::string& repo, const std::string& tag, int64_t last_pull_ms, uint32_t pulls,
             int64_t now_ms) const;
  // 0 when rule-driven prefetch may run at now_ms, else the milliseconds until it may.
  int64_t waitForWindow(int64_t now_ms) const;
  // Whether an index's child for this platform ("linux/arm64/v8") is fetched: its
  // os/architecture, with the variant when the setting names one.
  bool wantsPlatform(const std::string& os, const std::string& arch, const std::string& variant) const;
};

// '*' matches any run of characters, everything else itself.
bool tagGlobMatches(std::string_view pattern, std::string_view tag);

}  // namespace wharf
