// ManifestCache: manifests by digest (byte-exact files in the CacheIndex's manifests
// directory, verified when stored and when read), with the repositories the upstream
// served each one for and tag -> digest (both in the CacheIndex, so they survive
// restarts). Each manifest is an entry of the CacheIndex: it counts in the budget, its
// reads are hits, and the policy evicts it like a blob (a tag whose manifest went is
// asked of the upstream again).
//
// A tag within its TTL is answered from the cache; past it, the upstream is asked again
// (a conditional request), and when the upstream cannot answer (down, 5xx, 429) the stale
// entry is served instead (stale-if-error). Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "edge/cache/cache_index.h"
#include "shared/base/clock.h"
#include "shared/base/status.h"

namespace wharf {

class ManifestCache {
 public:
  struct Entry {
    std::string digest;
    std::string media_type;
    std::string body;
  };

  static Result<std::unique_ptr<ManifestCache>> open(CacheIndex& index, Clock& clock, int64_t tag_ttl_ms);

  // The manifest if the upstream served it for repo.
  std::optional<Entry> byDigest(const std::string& repo, const std::string& digest);
  // The manifest a tag pointed at; *fresh says whether it is within the TTL.
  std::optional<Entry> byTag(const std::string& repo, const std::string& tag, bool* fresh);
  // Stores what the upstream served for repo (and tag, when not empty), and what the
  // manifest references. Refuses bodies that do not hash to digest.
  Status store(const std::string& repo, const std::string& tag, const Entry& entry);
  // The upstream confirmed (304) that tag still points at the cached digest.
  void revalidated(const std::string& repo, const std::string& tag, const std::string& digest);
  void setTagTtl(int64_t ms) { ttl_ms_.store(ms); }

 private:
  ManifestCache(std::string root, CacheIndex& index, Clock& clock, int64_t ttl)
      : root_(std::move(root)), index_(index), clock_(clock), ttl_ms_(ttl) {}
  std::optional<Entry> load(const std::string& digest);

  std::string root_;
  CacheIndex& index_;
  Clock& clock_;
  std::atomic<int64_t> ttl_ms_;
};

}  // namespace wharf
