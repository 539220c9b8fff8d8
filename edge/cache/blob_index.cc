#include "edge/cache/blob_index.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/base/log.h"
#include "shared/metrics/metrics.h"

namespace wharf {

void BlobIndex::rebuild(const std::string& blobs_dir) {
  std::lock_guard lock(mu_);
  for (const char* algo : {"sha256", "sha512"}) {
    std::string dir = blobs_dir + "/" + algo;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st;
      if (::stat((dir + "/" + name).c_str(), &st) != 0) continue;
      CachedBlob b;
      b.digest = std::string(algo) + ":" + name;
      b.size = static_cast<uint64_t>(st.st_size);
      b.last_access_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000;
      used_ += b.size;
      blobs_[b.digest] = b;
    }
    ::closedir(d);
  }
}

void BlobIndex::committed(const std::string& digest, uint64_t size) {
  std::lock_guard lock(mu_);
  auto& b = blobs_[digest];
  if (b.digest.empty()) {
    b.digest = digest;
    b.size = size;
    used_ += size;
  }
  b.last_access_ms = clock_.nowMillis();
}

void BlobIndex::accessed(const std::string& digest) {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return;
  it->second.last_access_ms = clock_.nowMillis();
  ++it->second.hits;
}

void BlobIndex::referencedBy(const std::vector<std::string>& digests) {
  std::lock_guard lock(mu_);
  for (const auto& d : digests) {
    auto it = blobs_.find(d);
    if (it != blobs_.end()) ++it->second.images;
  }
}

uint64_t BlobIndex::used() {
  std::lock_guard lock(mu_);
  return used_;
}

uint64_t BlobIndex::enforce() {
  std::vector<CachedBlob> snapshot;
  uint64_t used;
  {
    std::lock_guard lock(mu_);
    used = used_;
    for (const auto& [d, b] : blobs_) snapshot.push_back(b);
  }
  auto victims = EvictionPolicy::choose(snapshot, used, budget_, clock_.nowMillis());
  uint64_t freed = 0;
  static Counter& evictions = MetricsRegistry::global().counter("wharf_edge_evictions_total", "Blobs evicted.");
  for (const auto& d : victims) {
    auto digest = Digest::parse(d);
    if (!digest.isOk()) continue;
    if (::unlink(fills_.blobPath(*digest).c_str()) != 0) continue;  // a reader's open descriptor keeps working
    std::lock_guard lock(mu_);
    auto it = blobs_.find(d);
    if (it == blobs_.end()) continue;
    freed += it->second.size;
    used_ -= std::min(used_, it->second.size);
    blobs_.erase(it);
    evictions.inc();
  }
  if (freed > 0) logInfo("evicted cached blobs", {{"blobs", victims.size()}, {"bytes", freed}});
  static Gauge& bytes = MetricsRegistry::global().gauge("wharf_edge_cache_bytes", "Bytes of committed blobs in the cache.");
  bytes.set(static_cast<int64_t>(this->used()));
  return freed;
}

}  // namespace wharf
