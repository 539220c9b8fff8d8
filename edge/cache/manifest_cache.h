// ManifestCache: manifests by digest (byte-exact files, verified when stored), which
// repositories the core served each one for, and tag -> digest with a time to live.
//
// A tag within its TTL is answered from the cache; past it, the core is asked again, and
// when the core cannot answer (down, 5xx, 429) the stale entry is served instead
// (stale-if-error). Thread-safe. Tags and links live in memory for now; manifests
// survive restarts.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

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

  static Result<std::unique_ptr<ManifestCache>> open(const std::string& root, Clock& clock, int64_t tag_ttl_ms);

  // The manifest if the core served it for repo.
  std::optional<Entry> byDigest(const std::string& repo, const std::string& digest);
  // The manifest a tag pointed at; *fresh says whether it is within the TTL.
  std::optional<Entry> byTag(const std::string& repo, const std::string& tag, bool* fresh);
  // Stores what the core served for repo (and tag, when not empty). Refuses bodies that
  // do not hash to digest.
  Status store(const std::string& repo, const std::string& tag, const Entry& entry);

 private:
  ManifestCache(std::string root, Clock& clock, int64_t ttl) : root_(std::move(root)), clock_(clock), ttl_ms_(ttl) {}
  std::optional<Entry> load(const std::string& digest);

  std::string root_;
  Clock& clock_;
  int64_t ttl_ms_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, int64_t>> tags_;  // GUARDED_BY(mu_): repo\0tag -> digest, fetched
  std::map<std::string, bool> links_;                            // GUARDED_BY(mu_): repo\0digest
};

}  // namespace wharf
