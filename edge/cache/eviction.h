// EvictionPolicy: which cached blobs go first when the cache is over its budget.
//
// Value, highest kept longest: a blob used by several cached images is worth more than
// one used by a single image (it serves every one of them); among equals, the more
// recently and the more often used is worth more. Pinned blobs and blobs being filled
// are never chosen. Pure function of its input; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wharf {

struct CachedBlob {
  std::string digest;
  uint64_t size = 0;
  int64_t last_access_ms = 0;
  uint64_t hits = 0;
  uint32_t images = 0;  // cached manifests that reference it
  bool pinned = false;
  std::string prefetched_for;  // prefetched for this repository and not read by a client yet
};

struct CacheBudget {
  uint64_t bytes = 10ull << 30;
  double high_watermark = 0.90;  // evict when above this fraction...
  double low_watermark = 0.80;   // ...down to this one
};

class EvictionPolicy {
 public:
  // The blobs to remove (least valuable first) so that used bytes fall to the low
  // watermark; empty when used is not above the high watermark.
  static std::vector<std::string> choose(const std::vector<CachedBlob>& blobs, uint64_t used, const CacheBudget& budget,
                                         int64_t now_ms);
};

}  // namespace wharf
