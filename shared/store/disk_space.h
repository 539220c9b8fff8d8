// DiskSpace: the free space of the filesystem that holds a data directory, and the
// reserve under which writes are refused.
//
// The reserve is the smaller of reserve_bytes and reserve_percent of the filesystem's
// size (0 for either turns it off). Under it, admitWrite() is kInsufficientStorage
// (507) and reads go on, so that a filling disk stops pushes before a write fails
// halfway. Free space is read with statvfs(2) at most once per kRefreshMs; the last
// reading is exported as wharf_disk_free_bytes, wharf_disk_reserve_bytes and
// wharf_disk_low (1 under the reserve). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "shared/base/status.h"

namespace wharf {

class DiskSpace {
 public:
  static constexpr int64_t kRefreshMs = 1000;

  struct Reading {
    uint64_t size = 0;     // bytes of the filesystem
    uint64_t free = 0;     // bytes available to this process
    uint64_t reserve = 0;  // bytes kept free
    bool low() const { return free < reserve; }
  };

  DiskSpace(std::string path, uint64_t reserve_bytes, uint64_t reserve_percent);

  // kInsufficientStorage naming the free space and the reserve when under it.
  Status admitWrite();
  // The current reading (refreshed if older than kRefreshMs).
  Reading read();

 private:
  std::string path_;
  uint64_t reserve_bytes_;
  uint64_t reserve_percent_;
  std::mutex mu_;
  Reading last_;          // GUARDED_BY(mu_)
  int64_t read_ms_ = 0;   // GUARDED_BY(mu_)
};

}  // namespace wharf
