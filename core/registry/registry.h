// Registry: the operations of the distribution API over a BlobStore and a
// MetadataStore, independent of HTTP.
//
// Threading: methods marked (loop) are cheap and may run on loop threads; the others
// block on disk and run on worker threads. All are thread-safe.
#pragma once

#include <array>
#include <list>
#include <memory>
#include <unordered_map>
#include <mutex>
#include <vector>
#include <optional>
#include <string>

#include "core/metadata/metadata_store.h"
#include "core/metadata/policy.h"
#include "core/registry/content_locks.h"
#include "core/registry/upload_sessions.h"
#include "shared/base/clock.h"
#include "shared/oci/digest.h"
#include "shared/store/blob_store.h"

namespace wharf {

struct ManifestHit {
  std::string digest;
  ManifestRecord record;
};

struct PutManifestResult {
  std::string digest;
  std::string subject;  // digest of the subject, if the manifest has one
};

class Registry {
 public:
  // cluster: the database the index is shared on (content locks become cluster-wide),
  // null for one core.
  Registry(BlobStore& blobs, MetadataStore& meta, Clock& clock, std::shared_ptr<PgPool> cluster = nullptr);
  ~Registry();

  MetadataStore& metadata() { return meta_; }
  UploadSessions& sessions() { return sessions_; }

  // (loop) A blob of the repository, open for reading. kBlobUnknown if it is not
  // linked to the repository (or is one of its manifests).
  Result<BlobFile> openBlob(const std::string& repo, const Digest& digest);
  // (loop) Resolves a tag or digest reference to a manifest of the repository.
  Result<ManifestHit> resolveManifest(const std::string& repo, const std::string& reference);
  Result<BlobFile> openContent(const std::string& digest);
  // Stored content read whole (manifests, small blobs); kTooLarge above max_bytes.
  Result<std::string> readContent(const std::string& digest, uint64_t max_bytes);
  // Manifests of a store without files (S3), kept in memory by digest (content never
  // changes under its digest, so the cache is never stale; least recently used out past
  // kManifestCacheBytes). cachedManifest() never blocks (loop threads); manifestBytes()
  // reads a miss from the store (workers).
  static constexpr size_t kManifestCacheBytes = 64u << 20;
  std::shared_ptr<const std::string> cachedManifest(const std::string& digest);
  Result<std::shared_ptr<const std::string>> manifestBytes(const std::string& digest);
  // (loop) The upload's size if it belongs to repo; kBlobUploadUnknown otherwise.
  Result<uint64_t> uploadOffset(const std::string& repo, const std::string& id);
  // (loop) kBlobUploadUnknown unless the upload exists, belongs to repo, and was
  // started by owner (when owner is given).
  Status checkUpload(const std::string& repo, const std::string& id, const std::optional<std::string>& owner = {});

  // Starts an upload bound to repo; returns its id. An unrecorded upload (monolithic
  // POST, finished in the same request) has a file but no metadata record; after a
  // crash its file is purged like any stale upload.
  Result<std::string> startUpload(const std::string& repo, bool recorded = true, const std::string& owner = "");
  // Appends to a leased upload at its current offset and hashes the bytes. The write
  // (on the calling thread) and the hash (on hash_queue) run in parallel. hash_queue
  // must run nothing that blocks, so that waiting on it can never deadlock.
  Status append(UploadSessions::Lease& lease, std::string_view data, class WorkQueue& hash_queue);
  // A request announced the length of the bytes it will append (BlobStore::announceAppend).
  void announceAppend(UploadSessions::Lease& lease, uint64_t length) {
    blobs_.announceAppend(lease.id(), lease.session().offset, length);
  }
  // The end of a request that leaves the upload open: its bytes so far become durable
  // and visible to every replica (BlobStore::flushUpload).
  Status flushUpload(UploadSessions::Lease& lease) { return blobs_.flushUpload(lease.id()); }
  // Verifies and commits a leased upload as a blob of repo. On kDigestInvalid the
  // upload is dropped: nothing is stored.
  Result<uint64_t> finishUpload(const std::string& repo, UploadSessions::Lease& lease,
                                const Digest& digest, bool recorded);
  Status cancelUpload(const std::string& repo, const std::string& id);
  // Drops a leased upload that will not be finished (its file and session).
  void discardUpload(UploadSessions::Lease& lease);
  // Cross-repository mount: links digest into repo when `from` has it (or, with from
  // empty, when the registry holds it). Returns false when it cannot mount.
  Result<bool> mount(const std::string& repo, const std::string& from, const Digest& digest);
  Result<PutManifestResult> putManifest(const std::string& repo, const std::string& reference, const std::string& body,
                                        const std::string& content_type);
  Status deleteManifest(const std::string& repo, const std::string& reference);
  Status deleteBlob(const std::string& repo, const Digest& digest);
  // kDenied while one of its tags is immutable.
  Status deleteRepository(const std::string& repo);

  // --- policies (retention, immutable tags) ---
  // (loop) The current policies; reloaded whenever they change.
  std::shared_ptr<const std::vector<Policy>> policies();
  Status setPolicy(const Policy& policy);
  Status deletePolicy(const std::string& scope);
  // Deletes the tags of repo that its retention policies no longer keep (never
  // immutable ones); returns them. dry_run: only says which.
  Result<std::vector<std::string>> applyRetention(const std::string& repo, bool dry_run);

  // --- garbage collection (core/gc) ---
  BlobStore& blobStore() { return blobs_; }
  Clock& clock() { return clock_; }
  // Serializes, per digest, the two things that must not interleave: storing content
  // (file, then record) and collecting it (record, then file); cluster-wide when the
  // index is shared (see content_locks.h). kUnavailable when the database is away.
  Result<ContentHold> lockContent(const std::string& digest) { return locks_.lock({digest}); }
  // The locks of several digests at once, taken in a fixed order.
  Result<ContentHold> lockContents(const std::vector<std::string>& digests) { return locks_.lock(digests); }
  // The content lock key of an upload (commit, cancel and purge take it).
  static std::string uploadLockKey(const std::string& id) { return "upload:" + id; }
  // Takes the locks of the digests that are free now, without waiting; (*locked)[i] says
  // whether digests[i] is covered.
  Result<ContentHold> tryLockContents(const std::vector<std::string>& digests, std::vector<bool>* locked) {
    return locks_.tryLock(digests, locked);
  }
  bool sharedIndex() const { return locks_.clusterWide(); }
  // Removes uploads (recorded or not) untouched for longer than max_age_ms and not in
  // use. Returns how many were removed.
  size_t purgeUploads(int64_t max_age_ms);

 private:
  BlobStore& blobs_;
  MetadataStore& meta_;
  Clock& clock_;
  UploadSessions sessions_;
  ContentLocks locks_;
  std::mutex manifest_cache_mu_;
  std::list<std::pair<std::string, std::shared_ptr<const std::string>>> manifest_lru_;  // GUARDED_BY: newest first
  std::unordered_map<std::string, decltype(manifest_lru_)::iterator> manifest_index_;  // GUARDED_BY(manifest_cache_mu_)
  size_t manifest_cache_bytes_ = 0;                                                     // GUARDED_BY(manifest_cache_mu_)
  std::mutex policies_mu_;
  std::shared_ptr<const std::vector<Policy>> policies_;  // GUARDED_BY(policies_mu_)
};

}  // namespace wharf
