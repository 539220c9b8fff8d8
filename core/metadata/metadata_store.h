// MetadataStore: the registry's index of repositories, tags, manifests, blob links,
// referrers and uploads.
//
// Reads are cheap and never block (LMDB readers), so loop threads call them directly.
// Writes block (one writer at a time, fsync on commit): call them on worker threads.
// Every write method is one transaction: it happens entirely or not at all, and once it
// returns OK it survives kill -9 and power loss.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"
#include "shared/tuf/repository.h"

namespace wharf {

struct ManifestRecord {
  std::string media_type;
  uint64_t size = 0;
  std::string subject;        // digest of the subject manifest, if any
  std::string artifact_type;  // effective artifact type (for referrers)
  int64_t created_ms = 0;     // first pushed to this repository
  int64_t pushed_ms = 0;      // last pushed (again) to this repository
};

// Stored content (blobs and manifests), for garbage collection.
struct BlobRecord {
  uint64_t size = 0;
  int64_t created_ms = 0;
  // Last time something made the content wanted: stored, mounted, or referenced by a
  // manifest push. Garbage collection never deletes content touched after it started.
  int64_t touched_ms = 0;
};

struct TagRecord {
  std::string repo;
  std::string tag;
  std::string digest;
  int64_t pushed_ms = 0;  // when the tag was last set
};

// Retention and immutability, per repository ("team/app") or namespace ("team/*").
// An advisory a policy lets through despite its block_severity, until expires_ms.
struct VulnExemption {
  std::string advisory;  // an advisory id or one of its aliases (a CVE id)
  std::string reason;
  int64_t expires_ms = 0;
};

// Signatures a pull by tag needs (core/trust): Notary's (the tag in the repository's
// verified, unexpired TUF targets with the digest it names), cosign's (a signature of the
// digest by one of cosign_keys), either, or both.
struct TrustPolicy {
  std::string require;  // "": not set here; "none" (over a namespace's), "notary", "cosign", "either", "both"
  std::vector<std::string> roles;        // Notary: signed in one of these roles (empty: any)
  std::vector<std::string> keys;         // Notary: by one of these key ids (empty: any key of the role)
  std::vector<std::string> cosign_keys;  // PEM public keys, ECDSA P-256
  bool wantsNotary() const { return tuf::requiresNotary(require); }
  bool wantsCosign() const { return tuf::acceptsCosign(require); }
  bool enforced() const { return wantsNotary() || wantsCosign(); }
};

struct Policy {
  std::string scope;
  // Retention (applied by garbage collection jobs): among tags matching `match`, keep the
  // keep_last most recently pushed and those pushed within keep_days; delete the rest.
  // Absent (-1): that rule keeps nothing by itself; both absent: no retention.
  std::string match = "*";
  int64_t keep_last = -1;
  int64_t keep_days = -1;
  // Tags matching one of these cannot be overwritten or deleted.
  std::vector<std::string> immutable;
  // Scanning: whether a push starts a scan (absent: the core's --scan-on-push default),
  // and the severity (LOW, MEDIUM, HIGH, CRITICAL) at or above which pulls of images
  // with findings that have a fix are refused ("": not set here; NONE: no refusal, over a
  // namespace's). The most specific policy that sets it decides, with its exemptions.
  std::optional<bool> scan_on_push;
  std::string block_severity;
  std::vector<VulnExemption> exemptions;
  TrustPolicy trust;
  nlohmann::json toJson() const;
  static Result<Policy> fromJson(const std::string& scope, const nlohmann::json& j);
};

struct UploadRecord {
  std::string repository;
  int64_t started_ms = 0;
  std::string owner;  // account that started it; only it may continue it
};

struct Page {
  std::vector<std::string> items;
  bool more = false;  // items after the last one returned exist
};

struct ManifestWrite {
  std::string repository;
  std::string digest;
  ManifestRecord record;
  std::optional<std::string> tag;
  nlohmann::json referrer_descriptor;      // set when record.subject is set
  std::vector<std::string> blobs;          // config and layers: must be linked to the repository
  std::vector<std::string> manifests;      // index children: must be manifests of the repository
  // The tag is immutable (this rule): it may be created or set to the same digest, never
  // moved (kDenied), checked in the write's own transaction.
  std::optional<std::string> immutable_rule;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // --- reads (any thread) ---
  // kManifestUnknown when the tag does not exist.
  virtual Result<std::string> resolveTag(const std::string& repo, const std::string& tag) = 0;
  // kManifestUnknown when the repository has no such manifest.
  virtual Result<ManifestRecord> manifest(const std::string& repo, const std::string& digest) = 0;
  virtual Result<bool> blobLinked(const std::string& repo, const std::string& digest) = 0;
  // Size of a blob stored in the registry (any repository); kBlobUnknown otherwise.
  virtual Result<uint64_t> blobSize(const std::string& digest) = 0;
  virtual Result<bool> repositoryExists(const std::string& repo) = 0;
  // kBlobUploadUnknown when there is no such upload.
  virtual Result<UploadRecord> upload(const std::string& id) = 0;
  // Sorted; starts after `last`; at most n items. kNameUnknown for an unknown repository.
  virtual Result<Page> tags(const std::string& repo, const std::string& last, size_t n) = 0;
  // Repository names in name order (descending: the reverse), after `last` in that order.
  virtual Page repositories(const std::string& last, size_t n, bool descending = false) = 0;
  // Descriptors of the manifests whose subject is `subject`, in digest order.
  virtual std::vector<nlohmann::json> referrers(const std::string& repo, const std::string& subject) = 0;
  virtual std::vector<std::pair<std::string, UploadRecord>> uploads() = 0;

  // --- garbage collection and policies (reads: any thread) ---
  // Every stored content record / manifest / link, in key order, from one consistent
  // snapshot, until the callback returns false. An error means the scan is incomplete:
  // a collector must then stop, never take "not seen" for "not referenced".
  virtual Status forEachBlob(const std::function<bool(const std::string& digest, const BlobRecord&)>& fn) = 0;
  virtual Status forEachManifest(
      const std::function<bool(const std::string& repo, const std::string& digest, const ManifestRecord&)>& fn) = 0;
  virtual Status forEachLink(const std::function<bool(const std::string& repo, const std::string& digest)>& fn) = 0;
  virtual Result<std::vector<TagRecord>> tagRecords(const std::string& repo) = 0;
  // What a manifest references (config, layers, child manifests), recorded when it was
  // pushed; nullopt for manifests pushed before this was recorded.
  virtual std::optional<std::vector<std::string>> manifestRefs(const std::string& digest) = 0;
  virtual Result<BlobRecord> blobRecord(const std::string& digest) = 0;
  virtual std::vector<Policy> policies() = 0;

  // --- writes (worker threads) ---
  virtual Status createUpload(const std::string& id, const UploadRecord& record) = 0;
  virtual Status deleteUpload(const std::string& id) = 0;
  // Records the blob, links it to the repository and drops the upload, together.
  virtual Status commitBlob(const std::string& repo, const std::string& digest, uint64_t size,
                            const std::string& upload_id, int64_t now_ms) = 0;
  // Links an existing blob into a repository (mount). kBlobUnknown if it is not stored.
  virtual Status linkBlob(const std::string& repo, const std::string& digest, int64_t now_ms) = 0;
  // kBlobUnknown if the blob is not linked to the repository.
  virtual Status unlinkBlob(const std::string& repo, const std::string& digest) = 0;
  // Checks every referenced blob and child manifest (kManifestBlobUnknown naming the
  // first missing one), then stores the manifest, its tag and its referrer entry.
  virtual Status putManifest(const ManifestWrite& write, int64_t now_ms) = 0;
  // kManifestUnknown when the tag does not exist.
  virtual Status deleteTag(const std::string& repo, const std::string& tag) = 0;
  // Removes the manifest, every tag pointing at it and its referrer entry; kDenied
  // (naming the rule) when one of those tags is immutable under policies, checked in the
  // same transaction. kManifestUnknown when absent.
  virtual Status deleteManifest(const std::string& repo, const std::string& digest,
                                const std::vector<Policy>& policies = {}) = 0;
  // Garbage collection. Each re-checks, in its own transaction, that the object is still
  // unwanted (untouched since touched_before, untagged, ...); false when it kept it.
  // Starts a collection: from this transaction on, everything a write touches is
  // stamped at least `started`, whatever time its writer read before it got the lock, so
  // the collection (which snapshots after this) and the writes are ordered by commit.
  virtual Status beginCollection(int64_t started) = 0;
  // Removes a tag only if it still has the value read (digest and push time): a tag
  // pushed again meanwhile stays. Returns whether it removed it.
  virtual Result<bool> deleteTagIf(const TagRecord& expected) = 0;
  // Batches: one transaction each, so a collection costs one sync per batch.
  // Removes untagged manifests of repo (with their referrer entries).
  virtual Result<std::vector<bool>> collectManifests(const std::string& repo, const std::vector<std::string>& digests,
                                                     int64_t touched_before) = 0;
  // Removes content records and their links in every repository (link_repos: those the
  // caller saw; links made since touch the record, so they are never missed).
  struct Collectable {
    std::string digest;
    std::vector<std::string> link_repos;
  };
  virtual Result<std::vector<bool>> collectBlobs(const std::vector<Collectable>& batch, int64_t touched_before) = 0;
  virtual Status setPolicy(const Policy& policy) = 0;
  // kNotFound when absent.
  virtual Status deletePolicy(const std::string& scope) = 0;

  // --- other writers ---
  // fn is called (on a thread of the store's) when another process changed what a cache
  // of this one may hold: "policies", or "*" (anything: notifications were interrupted).
  // nullptr stops the calls (and waits for one under way). The embedded store has no
  // other writer and never calls it.
  virtual void onChange(std::function<void(const std::string& what)> fn) { (void)fn; }

  // Records an (empty) repository; OK when it exists.
  virtual Status createRepository(const std::string& repo, int64_t now_ms) = 0;
  // Removes the repository: its tags, manifests, blob links, referrers and uploads
  // records. The content stays until garbage collection. kNameUnknown when absent.
  virtual Status deleteRepository(const std::string& repo) = 0;
};

}  // namespace wharf
