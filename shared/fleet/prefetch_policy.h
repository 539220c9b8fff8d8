// PrefetchPolicy: what an edge fetches before any client asks, set at the core in the
// edge's settings ("prefetch") and applied by the edge to the push events its channel
// brings (shared by the core, which validates, and the edge, which applies).
//
//   "prefetch": {
//     "rules": [{"repository": "acme/*", "tag": "v*"}],  a newly pushed tag matching a rule
//     "recent_days": 7,         ...or of a repository this edge served a tag of within N
//                               days (0: off). The default rule: prefetching every push
//                               wastes 60 to 84 % of its bytes in the fleet traces; this
//                               one keeps waste near 30 %.
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
  int recent_days = 7;
  uint64_t rate = kDefaultRate;  // bytes per second
  // Minutes after 00:00 UTC: [start, end), wrapping midnight when end <= start.
  std::optional<std::pair<int, int>> window;
  std::vector<std::string> platforms{"linux/amd64"};

  // The settings' "prefetch" object (null or absent: the defaults). kInvalidArgument
  // naming the field ("prefetch.rate") otherwise.
  static Result<PrefetchPolicy> fromJson(const nlohmann::json& j);

  // Whether a tag pushed to repo is prefetched: a rule matches, or the edge served a tag
  // of repo at last_pull_ms (0: never) within recent_days of now.
  bool wants(const std::string& repo, const std::string& tag, int64_t last_pull_ms, int64_t now_ms) const;
  // 0 when rule-driven prefetch may run at now_ms, else the milliseconds until it may.
  int64_t waitForWindow(int64_t now_ms) const;
  // Whether an index's child for this platform ("linux/arm64/v8") is fetched: its
  // os/architecture, with the variant when the setting names one.
  bool wantsPlatform(const std::string& os, const std::string& arch, const std::string& variant) const;
};

// '*' matches any run of characters, everything else itself.
bool tagGlobMatches(std::string_view pattern, std::string_view tag);

}  // namespace wharf
