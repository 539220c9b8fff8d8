#include "edge/cache/eviction.h"

#include <algorithm>

namespace wharf {

std::vector<std::string> EvictionPolicy::choose(const std::vector<CachedBlob>& blobs, uint64_t used,
                                                const CacheBudget& budget, int64_t now_ms) {
  std::vector<std::string> out;
  auto high = static_cast<uint64_t>(static_cast<double>(budget.bytes) * budget.high_watermark);
  auto low = static_cast<uint64_t>(static_cast<double>(budget.bytes) * budget.low_watermark);
  if (used <= high) return out;
  std::vector<const CachedBlob*> candidates;
  for (const auto& b : blobs) {
    if (!b.pinned) candidates.push_back(&b);
  }
  // Lower value first: fewer images, then older, then fewer hits.
  auto value = [&](const CachedBlob* b) {
    double age_h = static_cast<double>(std::max<int64_t>(0, now_ms - b->last_access_ms)) / 3.6e6;
    return static_cast<double>(b->images) * 100.0 + static_cast<double>(b->hits) - age_h;
  };
  std::sort(candidates.begin(), candidates.end(), [&](const CachedBlob* a, const CachedBlob* b) {
    if (a->images != b->images) return a->images < b->images;
    double va = value(a), vb = value(b);
    if (va != vb) return va < vb;
    return a->digest < b->digest;
  });
  for (const CachedBlob* b : candidates) {
    if (used <= low) break;
    out.push_back(b->digest);
    used -= std::min(used, b->size);
  }
  return out;
}

}  // namespace wharf
