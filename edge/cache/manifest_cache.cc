#include "edge/cache/manifest_cache.h"

#include <unistd.h>

#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "shared/oci/manifest.h"

namespace wharf {

Result<std::unique_ptr<ManifestCache>> ManifestCache::open(CacheIndex& index, Clock& clock, int64_t tag_ttl_ms) {
  WHARF_RETURN_IF_ERROR(makeDirs(index.manifestsDir()));
  return std::unique_ptr<ManifestCache>(new ManifestCache(index.manifestsDir(), index, clock, tag_ttl_ms));
}

std::optional<ManifestCache::Entry> ManifestCache::load(const std::string& digest) {
  auto d = Digest::parse(digest);
  if (!d.isOk()) return std::nullopt;
  Entry e;
  e.digest = digest;
  if (!readFile(root_ + "/" + d->hex(), &e.body).isOk()) return std::nullopt;
  if (!readFile(root_ + "/" + d->hex() + ".type", &e.media_type).isOk()) return std::nullopt;
  // Files are written through temporary names, but a disk can still rot: serve only
  // what hashes right.
  if (!(digestOf(e.body, d->algorithm()) == *d)) {
    index_.drop(digest);  // rotted: fetched again
    return std::nullopt;
  }
  index_.accessed(digest);
  return e;
}

std::optional<ManifestCache::Entry> ManifestCache::byDigest(const std::string& repo, const std::string& digest) {
  if (!index_.linked(repo, digest)) return std::nullopt;
  return load(digest);
}

std::optional<ManifestCache::Entry> ManifestCache::byTag(const std::string& repo, const std::string& tag, bool* fresh) {
  auto t = index_.tag(repo, tag);
  if (!t) return std::nullopt;
  *fresh = clock_.nowMillis() - t->fetched_ms < ttl_ms_.load();
  return load(t->digest);
}

Status ManifestCache::store(const std::string& repo, const std::string& tag, const Entry& entry) {
  auto d = Digest::parse(entry.digest);
  if (!d.isOk()) return d.status();
  if (!(digestOf(entry.body, d->algorithm()) == *d)) {
    return Status(Code::kCorruption, "manifest from upstream does not hash to " + entry.digest);
  }
  // A cache: written through a temporary name (never half a file), not synced (what a
  // power loss takes is fetched again).
  WHARF_RETURN_IF_ERROR(writeFileAtomic(root_ + "/" + d->hex() + ".type", entry.media_type));
  WHARF_RETURN_IF_ERROR(writeFileAtomic(root_ + "/" + d->hex(), entry.body));
  index_.manifestStored(entry.digest, entry.body.size());
  index_.link(repo, entry.digest);
  if (!tag.empty()) index_.setTag(repo, tag, entry.digest);
  // What it references: the blobs of each tag's current image are worth more (CachePolicy).
  if (auto m = parseManifest(entry.body, entry.media_type); m.isOk()) {
    std::vector<std::string> refs;
    if (m->config) refs.push_back(m->config->digest.str());
    for (const auto& l : m->layers) refs.push_back(l.digest.str());
    for (const auto& c : m->manifests) refs.push_back(c.digest.str());
    index_.imageCached(repo, tag, entry.digest, refs);
  }
  return Status::ok();
}

void ManifestCache::revalidated(const std::string& repo, const std::string& tag, const std::string& digest) {
  index_.setTag(repo, tag, digest);
}

}  // namespace wharf
