// BlobIndex: what the edge's cache holds (size, last access, hits, how many cached
// images use each blob), and the budget it must stay under (EvictionPolicy decides
// what goes). Thread-safe. Rebuilt from the files at start (an LMDB index with the
// image references is the next step).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "edge/cache/eviction.h"
#include "edge/cache/fill_coordinator.h"
#include "shared/base/clock.h"

namespace wharf {

class BlobIndex {
 public:
  BlobIndex(FillCoordinator& fills, Clock& clock, CacheBudget budget)
      : fills_(fills), clock_(clock), budget_(budget) {}

  // Scans the committed blobs (start-up).
  void rebuild(const std::string& blobs_dir);
  void committed(const std::string& digest, uint64_t size);
  void accessed(const std::string& digest);
  // A cached manifest references these blobs.
  void referencedBy(const std::vector<std::string>& digests);
  // Evicts to the low watermark when over the high one; returns the bytes freed.
  uint64_t enforce();
  uint64_t used();

 private:
  FillCoordinator& fills_;
  Clock& clock_;
  CacheBudget budget_;
  std::mutex mu_;
  std::map<std::string, CachedBlob> blobs_;  // GUARDED_BY(mu_)
  uint64_t used_ = 0;                        // GUARDED_BY(mu_)
};

}  // namespace wharf
