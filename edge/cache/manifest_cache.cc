#include "edge/cache/manifest_cache.h"

#include "shared/base/fs.h"
#include "shared/oci/digest.h"

namespace wharf {

Result<std::unique_ptr<ManifestCache>> ManifestCache::open(const std::string& root, Clock& clock, int64_t tag_ttl_ms) {
  WHARF_RETURN_IF_ERROR(makeDirs(root));
  return std::unique_ptr<ManifestCache>(new ManifestCache(root, clock, tag_ttl_ms));
}

std::optional<ManifestCache::Entry> ManifestCache::load(const std::string& digest) {
  auto d = Digest::parse(digest);
  if (!d.isOk()) return std::nullopt;
  Entry e;
  e.digest = digest;
  if (!readFile(root_ + "/" + d->hex(), &e.body).isOk()) return std::nullopt;
  if (!readFile(root_ + "/" + d->hex() + ".type", &e.media_type).isOk()) return std::nullopt;
  return e;
}

std::optional<ManifestCache::Entry> ManifestCache::byDigest(const std::string& repo, const std::string& digest) {
  {
    std::lock_guard lock(mu_);
    if (!links_.count(repo + '\0' + digest)) return std::nullopt;
  }
  return load(digest);
}

std::optional<ManifestCache::Entry> ManifestCache::byTag(const std::string& repo, const std::string& tag, bool* fresh) {
  std::string digest;
  {
    std::lock_guard lock(mu_);
    auto it = tags_.find(repo + '\0' + tag);
    if (it == tags_.end()) return std::nullopt;
    digest = it->second.first;
    *fresh = clock_.nowMillis() - it->second.second < ttl_ms_;
  }
  return load(digest);
}

Status ManifestCache::store(const std::string& repo, const std::string& tag, const Entry& entry) {
  auto d = Digest::parse(entry.digest);
  if (!d.isOk()) return d.status();
  if (!(digestOf(entry.body, d->algorithm()) == *d)) {
    return Status(Code::kCorruption, "manifest from upstream does not hash to " + entry.digest);
  }
  // A cache: written through a temporary name (never half a file), not synced (this runs
  // on a loop thread; what a power loss takes is fetched again).
  WHARF_RETURN_IF_ERROR(writeFileAtomic(root_ + "/" + d->hex() + ".type", entry.media_type));
  WHARF_RETURN_IF_ERROR(writeFileAtomic(root_ + "/" + d->hex(), entry.body));
  std::lock_guard lock(mu_);
  links_[repo + '\0' + entry.digest] = true;
  if (!tag.empty()) tags_[repo + '\0' + tag] = {entry.digest, clock_.nowMillis()};
  return Status::ok();
}

}  // namespace wharf
