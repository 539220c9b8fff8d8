// Scrubber: re-hashes the cached blobs, a little at a time, so a disk that rots is found
// out before a client is: a blob that no longer hashes to its digest is dropped (its
// file and index entry), counted, and handed to on_corrupt (the edge fetches it again
// with its own credential; else the next pull does).
//
// Bounded: at most rate_bytes_per_s of reading, in passes over every blob, a pass at
// most every interval. Runs on its own thread; stop() returns within a moment.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edge/cache/cache_index.h"
#include "edge/cache/fill_coordinator.h"

namespace wharf {

class Scrubber {
 public:
  struct Options {
    uint64_t rate_bytes_per_s = 32ull << 20;
    int64_t interval_ms = 24ll * 3600 * 1000;  // between the starts of two passes
    // After each pass: blobs re-hashed and corrupt ones dropped (the edge's reports).
    std::function<void(uint64_t checked, uint64_t corrupt)> on_pass;
    // A corrupt blob dropped, with the repositories it was linked to (to fetch it again).
    std::function<void(const std::string& digest, const std::vector<std::string>& repos)> on_corrupt;
  };
  Scrubber(CacheIndex& index, FillCoordinator& fills, Options options)
      : index_(index), fills_(fills), options_(options) {}
  ~Scrubber() { stop(); }
  void start();
  void stop();
  // One pass now, on the calling thread (tests, and the thread's loop). Returns the
  // number of corrupt blobs dropped.
  size_t scrubOnce();

 private:
  bool waitFor(int64_t ms);  // false when stopping
  void run();
  CacheIndex& index_;
  FillCoordinator& fills_;
  Options options_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
};

}  // namespace wharf
