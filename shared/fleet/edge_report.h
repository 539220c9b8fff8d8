// EdgeReport: what an edge tells its core about itself, the contract between wharf-edge
// (which counts) and wharf-core (which keeps the time series). The edge POSTs one to
// /api/v1/edges/self/reports at least once a minute and when it shuts down.
//
// Counters are cumulative since the edge's `epoch` began (an id the edge draws when its
// counter state is created and keeps in <data_dir>/agent/counters.json), and every
// report carries all of them with `seq` one above the previous report's. The core keeps
// the last seq and counters per edge: a report at or below the last seq is a repeat and
// is ignored; any other adds its difference with the last counters. So a lost report is
// covered by the next one, a repeated one never counts twice, and a core that lost its
// last write only attributes the bytes to a later hour. A report with another epoch (the
// edge lost its state) counts from zero.
//
// Per repository (the edge's repository names):
//   requests       blob and manifest GETs answered 200 or 206 (HEADs are not counted)
//   hits, misses   of them answered from the cache, or needing the upstream
//   served_bytes   the body bytes of those answers (as announced: a client that drops the
//                  connection mid-body is counted whole)
//   hit_bytes      of which from the cache
//   fetched_bytes  bytes received from the upstream (the WAN) for clients
//   prefetched_bytes     bytes received from the upstream for prefetches and pins
//   prefetch_used_bytes  bytes of prefetched blobs at their first client request
//   prefetch_wasted_bytes  bytes of prefetched blobs evicted before any client used them
// WAN bytes saved = served_bytes - fetched_bytes - prefetched_bytes; the hit ratio by
// bytes is hit_bytes / served_bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/base/json_body.h"
#include "shared/base/status.h"

namespace wharf {

struct RepoCounters {
  uint64_t requests = 0, hits = 0, misses = 0;
  uint64_t served_bytes = 0, hit_bytes = 0, fetched_bytes = 0;
  uint64_t prefetched_bytes = 0, prefetch_used_bytes = 0, prefetch_wasted_bytes = 0;

  // Field by field; `this - earlier`, each field clamped at 0.
  RepoCounters minus(const RepoCounters& earlier) const;
  void add(const RepoCounters& other);
  bool empty() const;
  // served_bytes - fetched_bytes - prefetched_bytes (negative when prefetch was wasted).
  int64_t savedBytes() const;
  nlohmann::json toJson() const;
  static RepoCounters fromJson(JsonBody& body);  // errors in body.status()
  bool operator==(const RepoCounters&) const = default;
};

// RepoCounters' fields with their names, for code that visits each (JSON, encodings,
// sums). In EdgeReport's order.
struct RepoCounterField {
  const char* name;
  uint64_t RepoCounters::*member;
};
inline constexpr RepoCounterField kRepoCounterFields[] = {
    {"requests", &RepoCounters::requests},
    {"hits", &RepoCounters::hits},
    {"misses", &RepoCounters::misses},
    {"served_bytes", &RepoCounters::served_bytes},
    {"hit_bytes", &RepoCounters::hit_bytes},
    {"fetched_bytes", &RepoCounters::fetched_bytes},
    {"prefetched_bytes", &RepoCounters::prefetched_bytes},
    {"prefetch_used_bytes", &RepoCounters::prefetch_used_bytes},
    {"prefetch_wasted_bytes", &RepoCounters::prefetch_wasted_bytes},
};

// Edge-wide cumulative counters.
struct EdgeCounters {
  uint64_t evictions = 0, evicted_bytes = 0;
  uint64_t stale_serves = 0;  // manifests served stale because the upstream failed
  uint64_t scrub_checked = 0, scrub_corrupt = 0;
  std::map<std::string, uint64_t> errors;  // by kind: "upstream", "verify", "disk", ...

  EdgeCounters minus(const EdgeCounters& earlier) const;
  void add(const EdgeCounters& other);  // errors by kind too
  nlohmann::json toJson() const;
  static EdgeCounters fromJson(JsonBody& body);
  bool operator==(const EdgeCounters&) const = default;
};

// EdgeCounters' numeric fields (errors aside), as kRepoCounterFields.
struct EdgeCounterField {
  const char* name;
  uint64_t EdgeCounters::*member;
};
inline constexpr EdgeCounterField kEdgeCounterFields[] = {
    {"evictions", &EdgeCounters::evictions},
    {"evicted_bytes", &EdgeCounters::evicted_bytes},
    {"stale_serves", &EdgeCounters::stale_serves},
    {"scrub_checked", &EdgeCounters::scrub_checked},
    {"scrub_corrupt", &EdgeCounters::scrub_corrupt},
};

struct EdgeReport {
  static constexpr size_t kMaxRepos = 20000;  // a larger report is refused (400)
  static constexpr size_t kMaxErrorKinds = 64;

  uint64_t seq = 0;
  std::string epoch;      // 1..64 characters [A-Za-z0-9_-]
  int64_t time_ms = 0;    // the edge's clock when it made the report
  std::string version;    // wharf-edge's version
  int64_t uptime_s = 0;
  bool final = false;     // sent at shutdown
  bool draining = false;  // the edge is drained (serves 503)
  // Gauges, as of the report.
  uint64_t cache_used = 0, cache_budget = 0, cache_blobs = 0, pinned_bytes = 0, fills_in_flight = 0;
  EdgeCounters counters;
  std::map<std::string, RepoCounters> repos;

  nlohmann::json toJson() const;
  // Validates everything (repository names, sizes, ranges): kInvalidArgument naming the field.
  static Result<EdgeReport> fromJson(std::string_view text);
};

}  // namespace wharf
