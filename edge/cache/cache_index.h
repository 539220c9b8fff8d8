// CacheIndex: what the edge's cache holds and what it knows about it, persisted in LMDB
// (<cache>/index.lmdb) and kept in memory for the request path.
//
//   blobs   digest            -> size, last access, hits, the repository it was
//                                prefetched for until a client reads it
//   manifests digest          -> the same for a cached manifest (ManifestCache's files)
//   images  manifest digest   -> the blobs and child manifests it references
//   tags    repo \0 tag       -> digest, when the upstream last said so
//   links   digest \0 repo    -> (the upstream confirmed repo has digest)
//   pins    label             -> the digests an administrator pinned under that label
//                                ("repo:tag" or "repo@digest"): never evicted
//
// Blob bytes are files (FillCoordinator's blobs/), manifests too (ManifestCache's
// directory); both count in the budget and are evicted by the same policy. The index
// never claims more than the files hold: at open, entries without a file are dropped and
// files without an entry are adopted. Changes are written behind, in one transaction per flush() (the edge flushes
// every few seconds and at shutdown), never on a loop thread: a kill -9 loses at most
// the last seconds of access statistics, tags and links, which only costs a question to
// the upstream, never a wrong answer.
//
// Links matter for security: content is cached by digest, but the upstream answers per
// repository, so a blob fetched through repository A is served through B only once the
// upstream has said B has it too.
//
// Every admission and eviction decision is CachePolicy's (the edge's default policy,
// "wharf"): a miss the policy refuses is served and then not kept. The budget (high and
// low watermarks) is enforced here. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "edge/cache/cache_policy.h"
#include "edge/cache/fill_coordinator.h"
#include "shared/base/clock.h"
#include "shared/store/lmdb.h"

namespace wharf {

struct CachedBlob {
  std::string digest;
  uint64_t size = 0;
  int64_t last_access_ms = 0;
  uint64_t hits = 0;
  std::string prefetched_for;  // prefetched for this repository and not read by a client yet
  bool manifest = false;       // a manifest (ManifestCache's file), not a blob
};

struct CacheBudget {
  uint64_t bytes = 10ull << 30;
  double high_watermark = 0.90;  // evict when above this fraction...
  double low_watermark = 0.80;   // ...down to this one
};

class CacheIndex {
 public:
  struct Tag {
    std::string digest;
    int64_t fetched_ms = 0;
  };

  // manifests_dir: ManifestCache's directory (<hex> and <hex>.type per manifest).
  static Result<std::unique_ptr<CacheIndex>> open(const std::string& path, FillCoordinator& fills,
                                                  const std::string& manifests_dir, Clock& clock, CacheBudget budget);

  // --- blobs ---
  // A blob a client's miss fetched, verified and complete, that `asks` requests wanted
  // (the one that led the fill and those that joined it): true when the policy keeps it
  // (always when asked for more than once, or pinned); otherwise its file is removed (the
  // readers that have it open finish).
  bool committed(const std::string& digest, uint64_t size, uint32_t asks = 1);
  // A blob a prefetch for repo fetched: always kept, valued as expected_hits (the pulls
  // its tag had before it moved); its first client read counts as prefetch used, its
  // eviction before any as prefetch wasted (see Listener).
  void committedPrefetch(const std::string& digest, uint64_t size, const std::string& repo, uint32_t expected_hits);
  const std::string& manifestsDir() const { return manifests_dir_; }
  // A manifest ManifestCache stored (size: its body): kept, small as it is, since every
  // pull needs it; evicted like a blob.
  void manifestStored(const std::string& digest, uint64_t size);
  // A request served from the cache (a blob or a manifest).
  void accessed(const std::string& digest);
  // The cached blobs (not manifests), for the scrub.
  std::vector<std::string> blobDigests();
  // Removes a blob's or manifest's files and entry (a corrupt one); true if it was there.
  bool drop(const std::string& digest);
  uint64_t used();
  size_t blobCount();
  void setBudget(CacheBudget budget);
  CacheBudget budget();
  // Which digests another edge of the site owns (SitePeers::ownedElsewhere): their
  // copies here are worth less to the policy. Set once, before serving.
  void setOwnership(std::function<bool(const std::string& digest)> owned_elsewhere);
  // The site's edges changed: every cached blob's ownership again.
  void reassessOwnership();
  // Evicts down to the low watermark when over the high one; returns the bytes freed.
  // Blobs used at or after protect_since_ms (when set) are kept like pinned ones.
  uint64_t enforce(int64_t protect_since_ms = 0);
  // Whether bytes more fit: under the high watermark, or once blobs neither pinned nor
  // used since protect_since_ms are evicted (prefetch never makes room with recent ones).
  bool roomFor(uint64_t bytes, int64_t protect_since_ms);

  // --- images, tags, links ---
  // A cached manifest and the digests it references (config, layers, child manifests);
  // fetched for repo:tag (tag empty: by digest), it is that tag's current image.
  void imageCached(const std::string& repo, const std::string& tag, const std::string& manifest_digest,
                   const std::vector<std::string>& refs);
  void setTag(const std::string& repo, const std::string& tag, const std::string& digest);
  std::optional<Tag> tag(const std::string& repo, const std::string& tag);
  void link(const std::string& repo, const std::string& digest);
  bool linked(const std::string& repo, const std::string& digest);
  std::vector<std::string> linkedRepositories(const std::string& digest);
  // A cache hit through repo: counted (accessed()) when repo is linked to the digest.
  // One lock for both: this is the hot path.
  bool hitIfLinked(const std::string& repo, const std::string& digest);

  // --- central administration (commands from the core) ---
  struct Purged {
    size_t tags = 0, links = 0, blobs = 0;  // blobs: manifests too
    uint64_t bytes = 0;
  };
  // A repository: its tags and links, then the blobs no repository links any more.
  Purged purgeRepository(const std::string& repo);
  // One image of a repository, by tag or manifest digest: the tag (a digest: every tag of
  // the repository naming it), the repository's links to the manifest and to everything it
  // references (an index's children too), then the unlinked blobs. Content shared with
  // another image of the repository is confirmed with the upstream again at its next pull.
  Purged purgeImage(const std::string& repo, const std::string& reference);
  // A digest in every repository: its links, the tags naming it, its file.
  Purged purgeDigest(const std::string& digest);
  // The manifest a tag or digest names, and everything it references (children of an
  // index and their references), as far as the cache knows them.
  std::vector<std::string> closure(const std::string& repo, const std::string& reference);
  void pin(const std::string& label, const std::vector<std::string>& digests);
  bool unpin(const std::string& label);
  std::map<std::string, std::vector<std::string>> pins();
  uint64_t pinnedBytes();
  // Repositories and images by the bytes of their cached blobs, the top n of each.
  struct Usage {
    std::string name;
    uint64_t bytes = 0;
    size_t blobs = 0;
  };
  std::vector<Usage> topRepositories(size_t n);
  std::vector<Usage> topImages(size_t n);
  // Told (under the index's lock: be quick, do not call back) of each blob evicted to keep
  // the budget (not purges), and of the fate of prefetched blobs.
  struct Listener {
    std::function<void(uint64_t bytes)> evicted;
    std::function<void(const std::string& repo, uint64_t bytes)> prefetch_used;    // first client read
    std::function<void(const std::string& repo, uint64_t bytes)> prefetch_wasted;  // evicted unread
  };
  void setListener(Listener listener);

  // Writes what changed since the last flush, in one transaction.
  Status flush();

  // For tests and metrics.
  std::optional<CachedBlob> blob(const std::string& digest);

 private:
  CacheIndex(std::unique_ptr<LmdbEnv> env, FillCoordinator& fills, std::string manifests_dir, Clock& clock,
             CacheBudget budget)
      : env_(std::move(env)), fills_(fills), manifests_dir_(std::move(manifests_dir)), clock_(clock), budget_(budget),
        policy_(policyOptions(budget)) {}
  // The files of an entry.
  std::vector<std::string> pathsOf(const std::string& digest, bool manifest) const;
  static CachePolicy::Options policyOptions(const CacheBudget& b);
  CachePolicy::Id idLocked(const std::string& key);  // a dense id per digest or repo\0tag
  void feedPolicyLocked();                           // after load() and reconcile()
  bool pinnedLocked(const std::string& digest) const;
  // Drops the policy's victims from the index (adding their bytes to *freed); the files
  // to remove, which the caller does without the lock.
  std::vector<std::string> dropVictimsLocked(const std::vector<CachePolicy::Victim>& victims, uint64_t* freed);
  // A client read a cached blob (accessed() and hitIfLinked()).
  void hitLocked(std::pair<const std::string, CachedBlob>& blob);
  Status load();
  void reconcile();  // with the files, at open
  void dropLocked(const std::string& digest);
  void publishGauges();
  // Drops the blobs among candidates that no repository links any more.
  void dropUnlinkedLocked(const std::vector<std::string>& candidates, Purged* out);
  void unlinkLocked(const std::string& repo, const std::string& digest, Purged* out);

  std::unique_ptr<LmdbEnv> env_;
  Dbi blobs_db_ = 0, images_db_ = 0, tags_db_ = 0, links_db_ = 0, meta_db_ = 0, pins_db_ = 0, manifests_db_ = 0;
  FillCoordinator& fills_;
  const std::string manifests_dir_;
  Clock& clock_;
  CacheBudget budget_;

  std::mutex flush_mu_;  // one flush at a time
  std::mutex mu_;
  std::map<std::string, CachedBlob> blobs_;                               // GUARDED_BY(mu_): and manifests
  std::unordered_map<std::string, std::vector<std::string>> images_;      // GUARDED_BY(mu_)
  std::unordered_map<std::string, Tag> tags_;                             // GUARDED_BY(mu_): repo\0tag
  std::unordered_map<std::string, std::vector<std::string>> links_;       // GUARDED_BY(mu_): digest -> repos
  std::set<std::string> dirty_blobs_, dirty_images_, dirty_tags_;         // GUARDED_BY(mu_)
  std::set<std::string> dirty_links_;                                     // GUARDED_BY(mu_): digest\0repo
  std::map<std::string, std::vector<std::string>> pins_;                  // GUARDED_BY(mu_): label -> digests
  std::set<std::string> dirty_pins_;                                      // GUARDED_BY(mu_)
  Listener listener_;                                                     // GUARDED_BY(mu_)
  std::function<bool(const std::string&)> owned_elsewhere_;               // GUARDED_BY(mu_)
  CachePolicy policy_;                                                    // GUARDED_BY(mu_)
  std::unordered_map<std::string, CachePolicy::Id> ids_;                  // GUARDED_BY(mu_)
  std::unordered_map<CachePolicy::Id, const std::string*> names_;         // GUARDED_BY(mu_): into ids_
};

}  // namespace wharf
