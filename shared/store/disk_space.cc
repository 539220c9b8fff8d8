#include "shared/store/disk_space.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared/base/clock.h"
#include "shared/base/log.h"
#include "shared/metrics/metrics.h"

namespace wharf {
namespace {

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}

}  // namespace

DiskSpace::DiskSpace(std::string path, uint64_t reserve_bytes, uint64_t reserve_percent)
    : path_(std::move(path)), reserve_bytes_(reserve_bytes), reserve_percent_(reserve_percent) {}

DiskSpace::Reading DiskSpace::read() {
  std::lock_guard lock(mu_);
  int64_t now = monotonicMillis();
  if (read_ms_ != 0 && now - read_ms_ < kRefreshMs) return last_;
  struct statvfs vfs {};
  if (::statvfs(path_.c_str(), &vfs) != 0) {
    logWarn("cannot read the free space of the data directory", {{"path", path_}, {"error", std::strerror(errno)}});
    return last_;  // the last reading stands (none: no reserve enforced)
  }
  Reading r;
  r.size = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  r.free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  uint64_t by_percent = r.size / 100 * reserve_percent_;
  r.reserve = reserve_bytes_ == 0 || reserve_percent_ == 0 ? 0 : std::min(reserve_bytes_, by_percent);
  bool was_low = last_.low();
  last_ = r;
  read_ms_ = now;
  auto& m = MetricsRegistry::global();
  m.gauge("wharf_disk_free_bytes", "Free bytes on the data directory's filesystem.").set(static_cast<int64_t>(r.free));
  m.gauge("wharf_disk_reserve_bytes", "Free bytes kept on the data disk; under it pushes are refused (507).")
      .set(static_cast<int64_t>(r.reserve));
  m.gauge("wharf_disk_low", "1 while free space is under the reserve (pushes refused, reads go on).").set(r.low() ? 1 : 0);
  if (r.low() != was_low) {
    if (r.low()) {
      logWarn("disk space under the reserve: pushes are refused until space is freed",
              {{"path", path_}, {"free", r.free}, {"reserve", r.reserve}});
    } else {
      logInfo("disk space back over the reserve: pushes accepted", {{"path", path_}, {"free", r.free}});
    }
  }
  return r;
}

Status DiskSpace::admitWrite() {
  Reading r = read();
  if (!r.low()) return Status::ok();
  return Status(Code::kInsufficientStorage, "insufficient storage: " + gib(r.free) + " free on the registry's disk, under "
                                                "its reserve of " + gib(r.reserve) + "; pushes are refused until space is freed");
}

}  // namespace wharf
