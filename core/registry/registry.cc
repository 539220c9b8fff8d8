#include "core/registry/registry.h"

#include <algorithm>
#include <future>
#include <map>
#include <set>

#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "shared/event/work_queue.h"
#include "shared/metrics/metrics.h"
#include "shared/base/log.h"
#include "shared/oci/manifest.h"
#include "shared/oci/media_types.h"
#include "shared/oci/names.h"

namespace wharf {
namespace {

struct RegistryMetrics {
  Counter& blobs = MetricsRegistry::global().counter("wharf_registry_blobs_committed_total", "Blobs committed from uploads.");
  Counter& blob_bytes = MetricsRegistry::global().counter("wharf_registry_blob_bytes_committed_total",
                                                          "Bytes of blobs committed from uploads.");
  Counter& digest_mismatches = MetricsRegistry::global().counter(
      "wharf_registry_digest_mismatches_total", "Uploads refused because their bytes did not match the digest.");
  Counter& mounts = MetricsRegistry::global().counter("wharf_registry_mounts_total", "Cross-repository blob mounts.");
  Counter& manifests = MetricsRegistry::global().counter("wharf_registry_manifests_pushed_total", "Manifests pushed.");
  Counter& purged = MetricsRegistry::global().counter("wharf_registry_uploads_purged_total", "Stale uploads removed.");
  static RegistryMetrics& get() {
    static RegistryMetrics m;
    return m;
  }
};

}  // namespace

Result<BlobFile> Registry::openBlob(const std::string& repo, const Digest& digest) {
  std::string d = digest.str();
  auto linked = meta_.blobLinked(repo, d);
  if (!linked.isOk()) return linked.status();
  if (!*linked) {
    // Manifests are content of their repository too.
    auto m = meta_.manifest(repo, d);
    if (!m.isOk()) {
      return m.status().code() == Code::kManifestUnknown ? Status(Code::kBlobUnknown, "blob unknown to registry")
                                                         : m.status();
    }
  }
  if (!blobs_.hasFiles()) {
    // A store without files is not asked (that would block a loop thread on the
    // network): the index knows the size, and a read of a missing object fails then.
    if (*linked) {
      auto size = meta_.blobSize(d);
      if (!size.isOk()) return size.status();
      return BlobFile{nullptr, *size};
    }
    auto m = meta_.manifest(repo, d);
    if (!m.isOk()) return m.status();
    return BlobFile{nullptr, m->size};
  }
  auto f = blobs_.open(digest);
  if (!f.isOk() && f.status().code() == Code::kBlobUnknown) {
    logError("blob linked but missing from the blob store", {{"repository", repo}, {"digest", d}});
  }
  return f;
}

Result<ManifestHit> Registry::resolveManifest(const std::string& repo, const std::string& reference) {
  ManifestHit hit;
  if (isDigestReference(reference)) {
    auto d = Digest::parse(reference);
    if (!d.isOk()) return d.status();
    hit.digest = d->str();
  } else {
    WHARF_RETURN_IF_ERROR(validateTag(reference));
    auto t = meta_.resolveTag(repo, reference);
    if (!t.isOk()) return t.status();
    hit.digest = *t;
  }
  auto rec = meta_.manifest(repo, hit.digest);
  if (!rec.isOk()) return rec.status();
  hit.record = std::move(rec).value();
  return hit;
}

Result<BlobFile> Registry::openContent(const std::string& digest) {
  auto d = Digest::parse(digest);
  if (!d.isOk()) return d.status();
  return blobs_.open(*d);
}

Result<std::string> Registry::readContent(const std::string& digest, uint64_t max_bytes) {
  auto d = Digest::parse(digest);
  if (!d.isOk()) return d.status();
  auto size = blobs_.size(*d);
  if (!size.isOk()) return size.status();
  if (*size > max_bytes)
    return Status(Code::kTooLarge, digest + " holds " + std::to_string(*size) + " bytes, above " + std::to_string(max_bytes));
  std::string body(*size, '\0');
  WHARF_RETURN_IF_ERROR(blobs_.read(*d, 0, body.data(), body.size()));
  return body;
}

std::shared_ptr<const std::string> Registry::cachedManifest(const std::string& digest) {
  std::lock_guard lock(manifest_cache_mu_);
  auto it = manifest_index_.find(digest);
  if (it == manifest_index_.end()) return nullptr;
  manifest_lru_.splice(manifest_lru_.begin(), manifest_lru_, it->second);
  return it->second->second;
}

Result<std::shared_ptr<const std::string>> Registry::manifestBytes(const std::string& digest) {
  if (auto hit = cachedManifest(digest)) return hit;
  auto body = readContent(digest, kMaxManifestBytes);
  if (!body.isOk()) return body.status();
  auto bytes = std::make_shared<const std::string>(std::move(body).value());
  std::lock_guard lock(manifest_cache_mu_);
  if (manifest_index_.count(digest) == 0) {
    manifest_lru_.emplace_front(digest, bytes);
    manifest_index_[digest] = manifest_lru_.begin();
    manifest_cache_bytes_ += bytes->size();
    while (manifest_cache_bytes_ > kManifestCacheBytes && !manifest_lru_.empty()) {
      manifest_cache_bytes_ -= manifest_lru_.back().second->size();
      manifest_index_.erase(manifest_lru_.back().first);
      manifest_lru_.pop_back();
    }
  }
  return bytes;
}

Status Registry::checkUpload(const std::string& repo, const std::string& id, const std::optional<std::string>& owner) {
  if (!isUuid(id)) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
  auto rec = meta_.upload(id);
  if (!rec.isOk()) return rec.status();
  // An upload is bound to its repository: another repository never sees it.
  if (rec->repository != repo) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
  // ... and to the account that started it.
  if (owner && rec->owner != *owner) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
  return Status::ok();
}

Result<uint64_t> Registry::uploadOffset(const std::string& repo, const std::string& id) {
  WHARF_RETURN_IF_ERROR(checkUpload(repo, id));
  return blobs_.uploadSize(id);
}

Result<std::string> Registry::startUpload(const std::string& repo, bool recorded, const std::string& owner) {
  std::string id = newUuid();
  WHARF_RETURN_IF_ERROR(blobs_.createUpload(id));
  if (recorded) {
    Status st = meta_.createUpload(id, UploadRecord{repo, clock_.nowMillis(), owner});
    if (!st.isOk()) {
      (void)blobs_.removeUpload(id);
      return st;
    }
  }
  sessions_.create(id);
  return id;
}

Status Registry::append(UploadSessions::Lease& lease, std::string_view data, WorkQueue& hash_queue) {
  auto& s = lease.session();
  std::promise<void> hashed;
  std::future<void> hash_done = hashed.get_future();
  if (s.hasher) {
    hash_queue.submit([&] {
      s.hasher->update(data);
      hashed.set_value();
    });
  } else {
    hashed.set_value();
  }
  Status st = blobs_.append(lease.id(), s.offset, data);
  hash_done.wait();
  if (!st.isOk()) {
    // The hash now covers bytes the file may not hold; rebuild it from the file if the
    // upload is resumed.
    s.hasher.reset();
    return st;
  }
  s.offset += data.size();
  return Status::ok();
}

Result<uint64_t> Registry::finishUpload(const std::string& repo, UploadSessions::Lease& lease, const Digest& digest,
                                        bool recorded) {
  std::string id = lease.id();
  auto& s = lease.session();
  std::optional<Digest> known;
  if (s.hasher && s.hasher->algorithm() == digest.algorithm()) known = s.hasher->digest();
  // File and record together, never between a collection's two steps; and the upload's
  // lock, which its cancel and purge take on any replica (a store may keep the upload's
  // bytes as the blob's, see removeUpload).
  auto content = lockContents({digest.str(), uploadLockKey(id)});
  if (!content.isOk()) return content.status();
  auto size = blobs_.commitUpload(id, digest, known ? &*known : nullptr);
  if (!size.isOk()) {
    if (size.status().code() == Code::kDigestInvalid) {
      RegistryMetrics::get().digest_mismatches.inc();
      // Nothing is stored from a mismatching upload.
      (void)blobs_.removeUpload(id);
      if (recorded) (void)meta_.deleteUpload(id);
      sessions_.erase(id);
    }
    return size.status();
  }
  Status st = meta_.commitBlob(repo, digest.str(), *size, recorded ? id : "", clock_.nowMillis());
  sessions_.erase(id);
  if (!st.isOk()) return st;
  RegistryMetrics::get().blobs.inc();
  RegistryMetrics::get().blob_bytes.inc(*size);
  return *size;
}

Status Registry::cancelUpload(const std::string& repo, const std::string& id) {
  WHARF_RETURN_IF_ERROR(checkUpload(repo, id));
  auto lease = sessions_.acquire(id);
  if (!lease.isOk() && lease.status().code() != Code::kBlobUploadUnknown) return lease.status();
  auto locked = lockContent(uploadLockKey(id));  // never during its commit on another replica
  if (!locked.isOk()) return locked.status();
  WHARF_RETURN_IF_ERROR(meta_.deleteUpload(id));
  WHARF_RETURN_IF_ERROR(blobs_.removeUpload(id));
  if (lease.isOk()) lease->reset();
  sessions_.erase(id);
  return Status::ok();
}

void Registry::discardUpload(UploadSessions::Lease& lease) {
  if (auto locked = lockContent(uploadLockKey(lease.id())); locked.isOk()) (void)blobs_.removeUpload(lease.id());
  sessions_.erase(lease.id());
}

Result<bool> Registry::mount(const std::string& repo, const std::string& from, const Digest& digest) {
  std::string d = digest.str();
  if (!from.empty()) {
    WHARF_RETURN_IF_ERROR(validateRepositoryName(from));
    auto linked = meta_.blobLinked(from, d);
    if (!linked.isOk()) return linked.status();
    if (!*linked) return false;
  } else if (auto size = meta_.blobSize(d); !size.isOk()) {
    if (size.status().code() != Code::kBlobUnknown) return size.status();
    return false;
  }
  Status st = meta_.linkBlob(repo, d, clock_.nowMillis());
  if (st.code() == Code::kBlobUnknown) return false;
  if (!st.isOk()) return st;
  RegistryMetrics::get().mounts.inc();
  return true;
}

Result<PutManifestResult> Registry::putManifest(const std::string& repo, const std::string& reference,
                                                const std::string& body, const std::string& content_type) {
  std::optional<std::string> tag;
  DigestAlgorithm algorithm = DigestAlgorithm::kSha256;
  std::optional<Digest> claimed;
  if (isDigestReference(reference)) {
    auto d = Digest::parse(reference);
    if (!d.isOk()) return d.status();
    claimed = *d;
    algorithm = d->algorithm();
  } else {
    WHARF_RETURN_IF_ERROR(validateTag(reference));
    tag = reference;
  }
  auto m = parseManifest(body, content_type);
  auto rules = policies();
  if (!m.isOk()) return m.status();
  Digest digest = digestOf(body, algorithm);
  if (claimed && !(digest == *claimed)) {
    return Status(Code::kDigestInvalid, "manifest content has digest " + digest.str() + ", not " + claimed->str());
  }

  ManifestWrite w;
  w.repository = repo;
  w.digest = digest.str();
  w.tag = tag;
  w.record.media_type = m->media_type;
  w.record.size = body.size();
  w.record.artifact_type = m->effectiveArtifactType();
  if (m->config) w.blobs.push_back(m->config->digest.str());
  for (const auto& l : m->layers) {
    if (media::isNonDistributable(l.media_type) && l.has_urls) continue;
    w.blobs.push_back(l.digest.str());
  }
  for (const auto& c : m->manifests) w.manifests.push_back(c.digest.str());
  if (m->subject) {
    w.record.subject = m->subject->digest.str();
    Descriptor self;
    self.media_type = m->media_type;
    self.digest = digest;
    self.size = static_cast<int64_t>(body.size());
    self.artifact_type = w.record.artifact_type;
    self.annotations = m->annotations;
    w.referrer_descriptor = self.toJson();
  }
  // Refuse early, before writing anything, when a reference is missing; the write
  // transaction checks again, atomically with the insert. A descriptor's size is the
  // exact byte count of its content (image spec): content is immutable, so a size that
  // matches now always will.
  auto checkBlob = [&](const Descriptor& d, const std::string& where) -> Status {
    std::string digest = d.digest.str();
    auto linked = meta_.blobLinked(repo, digest);
    if (!linked.isOk()) return linked.status();
    if (!*linked) return Status(Code::kManifestBlobUnknown, "blob unknown to registry: " + digest);
    auto size = meta_.blobSize(digest);
    if (!size.isOk()) {
      if (size.status().code() != Code::kBlobUnknown) return size.status();
      return Status(Code::kManifestBlobUnknown, "blob unknown to registry: " + digest);
    }
    if (d.size < 0 || static_cast<uint64_t>(d.size) != *size) {
      return Status(Code::kManifestInvalid, where + " (" + digest + ") has size " + std::to_string(d.size) +
                                                ", but the blob is " + std::to_string(*size) + " bytes");
    }
    return Status::ok();
  };
  if (m->config) WHARF_RETURN_IF_ERROR(checkBlob(*m->config, "config"));
  for (size_t i = 0; i < m->layers.size(); ++i) {
    const Descriptor& l = m->layers[i];
    if (media::isNonDistributable(l.media_type) && l.has_urls) continue;
    WHARF_RETURN_IF_ERROR(checkBlob(l, "layers[" + std::to_string(i) + "]"));
  }
  for (size_t i = 0; i < m->manifests.size(); ++i) {
    const Descriptor& c = m->manifests[i];
    auto child = meta_.manifest(repo, c.digest.str());
    if (!child.isOk()) return Status(Code::kManifestBlobUnknown, "manifest unknown to registry: " + c.digest.str());
    if (c.size < 0 || static_cast<uint64_t>(c.size) != child->size) {
      return Status(Code::kManifestInvalid, "manifests[" + std::to_string(i) + "] (" + c.digest.str() + ") has size " +
                                                std::to_string(c.size) + ", but the manifest is " +
                                                std::to_string(child->size) + " bytes");
    }
  }
  if (tag) {
    // An immutable tag is never moved (pushing the same content again is fine): refused
    // early here, and atomically in the write.
    if (auto rule = immutableRule(*rules, repo, *tag)) {
      auto current = meta_.resolveTag(repo, *tag);
      if (current.isOk() && *current != w.digest) {
        return Status(Code::kDenied, "tag " + *tag + " is immutable: rule " + *rule);
      }
      w.immutable_rule = *rule;
    }
  }
  {
    auto content = lockContent(w.digest);
    if (!content.isOk()) return content.status();
    auto stored = blobs_.put(body, algorithm);
    if (!stored.isOk()) return stored.status();
    WHARF_RETURN_IF_ERROR(meta_.putManifest(w, clock_.nowMillis()));
  }
  RegistryMetrics::get().manifests.inc();
  if (tag) {
    // Retention at push time: tags the repository's policies no longer keep go now.
    bool retained = false;
    for (const auto& p : *rules) retained |= scopeCovers(p.scope, repo) && (p.keep_last >= 0 || p.keep_days >= 0);
    if (retained) {
      auto expired = applyRetention(repo, false);
      if (expired.isOk() && !expired->empty()) {
        logInfo("retention expired tags", {{"repository", repo}, {"tags", *expired}});
      }
    }
  }
  return PutManifestResult{w.digest, w.record.subject};
}

Status Registry::deleteManifest(const std::string& repo, const std::string& reference) {
  auto rules = policies();
  if (isDigestReference(reference)) {
    auto d = Digest::parse(reference);
    if (!d.isOk()) return d.status();
    // Deleting a manifest deletes its tags: not when one of them is immutable (checked in
    // the deletion's transaction).
    return meta_.deleteManifest(repo, d->str(), *rules);
  }
  WHARF_RETURN_IF_ERROR(validateTag(reference));
  if (auto rule = immutableRule(*rules, repo, reference)) {
    return Status(Code::kDenied, "tag " + reference + " is immutable: rule " + *rule);
  }
  return meta_.deleteTag(repo, reference);
}

Status Registry::deleteRepository(const std::string& repo) {
  auto rules = policies();
  auto tags = meta_.tagRecords(repo);
  if (!tags.isOk()) return tags.status();
  for (const auto& t : *tags) {
    if (auto rule = immutableRule(*rules, repo, t.tag)) {
      return Status(Code::kDenied, "tag " + t.tag + " is immutable: rule " + *rule + "; the repository stays");
    }
  }
  return meta_.deleteRepository(repo);
}

Registry::Registry(BlobStore& blobs, MetadataStore& meta, Clock& clock, std::shared_ptr<PgPool> cluster)
    : blobs_(blobs), meta_(meta), clock_(clock), sessions_(blobs), locks_(std::move(cluster)) {
  // Policies changed by another core sharing the index: read them again.
  meta_.onChange([this](const std::string& what) {
    if (what != "policies" && what != "*") return;
    std::lock_guard lock(policies_mu_);
    policies_.reset();
  });
}

Registry::~Registry() { meta_.onChange(nullptr); }

std::shared_ptr<const std::vector<Policy>> Registry::policies() {
  std::lock_guard lock(policies_mu_);
  if (!policies_) policies_ = std::make_shared<const std::vector<Policy>>(meta_.policies());
  return policies_;
}

Status Registry::setPolicy(const Policy& policy) {
  Status st = meta_.setPolicy(policy);
  std::lock_guard lock(policies_mu_);
  policies_.reset();
  return st;
}

Status Registry::deletePolicy(const std::string& scope) {
  Status st = meta_.deletePolicy(scope);
  std::lock_guard lock(policies_mu_);
  policies_.reset();
  return st;
}

Result<std::vector<std::string>> Registry::applyRetention(const std::string& repo, bool dry_run) {
  auto rules = policies();
  auto listed = meta_.tagRecords(repo);
  if (!listed.isOk()) return listed.status();
  const std::vector<TagRecord>& tags = *listed;
  int64_t now = clock_.nowMillis();
  std::set<std::string> keep;
  std::map<std::string, const TagRecord*> candidates;
  for (const auto& p : *rules) {
    if (!scopeCovers(p.scope, repo) || (p.keep_last < 0 && p.keep_days < 0)) continue;
    std::vector<const TagRecord*> matching;
    for (const auto& t : tags) {
      if (globMatch(p.match, t.tag)) matching.push_back(&t);
    }
    // Newest first; ties by name, so the choice is stable.
    std::sort(matching.begin(), matching.end(), [](const TagRecord* a, const TagRecord* b) {
      return a->pushed_ms != b->pushed_ms ? a->pushed_ms > b->pushed_ms : a->tag < b->tag;
    });
    for (size_t i = 0; i < matching.size(); ++i) {
      const TagRecord* t = matching[i];
      bool kept = (p.keep_last >= 0 && static_cast<int64_t>(i) < p.keep_last) ||
                  (p.keep_days >= 0 && now - t->pushed_ms < p.keep_days * 86'400'000);
      if (kept) {
        keep.insert(t->tag);
      } else {
        candidates[t->tag] = t;
      }
    }
  }
  std::vector<std::string> expired;
  for (const auto& [t, record] : candidates) {
    // Kept by any policy, or immutable: stays.
    if (keep.count(t) || immutableRule(*rules, repo, t)) continue;
    if (!dry_run) {
      // Only as it was read: a tag pushed again meanwhile is new, and stays.
      auto gone = meta_.deleteTagIf(*record);
      if (!gone.isOk()) return gone.status();
      if (!*gone) continue;
    }
    expired.push_back(t);
  }
  return expired;
}

Status Registry::deleteBlob(const std::string& repo, const Digest& digest) {
  return meta_.unlinkBlob(repo, digest.str());
}

size_t Registry::purgeUploads(int64_t max_age_ms) {
  int64_t cutoff = clock_.nowMillis() - max_age_ms;
  size_t removed = 0;
  for (const auto& [id, mtime] : blobs_.listUploads()) {
    if (mtime > cutoff) continue;
    auto rec = meta_.upload(id);
    auto lease = sessions_.acquire(id);
    if (!lease.isOk()) {
      if (lease.status().code() != Code::kBlobUploadUnknown) continue;  // in use right now
      // Objects of an upload without a state (a multipart upload a crash left before the
      // state named it): removed all the same, never during a commit of it.
      auto locked = lockContent(uploadLockKey(id));
      if (locked.isOk() && blobs_.removeUpload(id).isOk()) ++removed;
      continue;
    }
    auto locked = lockContent(uploadLockKey(id));  // never during its commit on another replica
    if (!locked.isOk()) continue;
    if (rec.isOk()) (void)meta_.deleteUpload(id);
    if (blobs_.removeUpload(id).isOk()) ++removed;
    lease->reset();
    sessions_.erase(id);
  }
  // Records whose file is gone.
  for (const auto& [id, rec] : meta_.uploads()) {
    if (rec.started_ms <= cutoff && !blobs_.uploadSize(id).isOk()) {
      (void)meta_.deleteUpload(id);
      ++removed;
    }
  }
  RegistryMetrics::get().purged.inc(removed);
  return removed;
}

}  // namespace wharf
