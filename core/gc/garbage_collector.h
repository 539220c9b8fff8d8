// GarbageCollector: gets the disk back while pushes and pulls go on.
//
// One run, in phases, each safe to interrupt (a crash leaves a consistent store, and
// the next run finishes the work):
//   1. retention: tags that the repositories' policies no longer keep are deleted
//      (never immutable ones);
//   2. untagged manifests older than untagged_older_than are deleted, except those a
//      kept manifest needs: the children of a kept index, the subject of a kept
//      referrer, and the referrers of a kept manifest (signatures follow their image);
//      and those something outside the registry names (ContentPins: the digests that
//      trust data signs), which count as tagged;
//   3. mark: every manifest left in any repository, and everything it references;
//   4. sweep: content records that nothing marked references and that nothing touched
//      since the run started minus the grace period are deleted, with their links
//      (one transaction each, re-checking), and then their files;
//   5. files that have no record (a crash between the two steps of 4, or of a push)
//      and are older than the grace period are deleted.
//
// Why concurrent pushes are safe: storing content, mounting it and pushing a manifest
// that references it all "touch" its record in their own transaction; the sweep's
// transaction re-checks the touch time, so whichever commits first wins: either the
// push sees the content gone (MANIFEST_BLOB_UNKNOWN / a fresh upload) or the sweep sees
// it wanted and keeps it. Storing a file and its record, and deleting them, are
// serialized per digest (Registry::lockContent), so a collected file can never take a
// just-stored one with it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/registry/registry.h"

namespace wharf {

struct GcOptions {
  bool dry_run = false;
  int64_t untagged_older_than_ms = -1;  // -1: untagged manifests are kept
  int64_t grace_ms = 3'600'000;         // content younger than this is never collected
  bool retention = true;                // apply the retention policies first
  // After each batch of deletions the run pauses this many times as long as the batch
  // took, leaving the metadata store's single writer and the disk to pushes (2, the
  // default: the collector holds them at most a third of the time; 0: full speed).
  double yield = 2.0;
};

struct GcReport {
  bool dry_run = false;
  uint64_t tags_expired = 0;
  uint64_t manifests_deleted = 0;
  uint64_t blobs_deleted = 0;
  uint64_t bytes_freed = 0;        // would be freed, in a dry run
  uint64_t orphan_files_deleted = 0;
  uint64_t blobs_kept = 0;         // referenced, or too young
  uint64_t manifests_scanned = 0;
  int64_t duration_ms = 0;
  std::vector<std::string> sample;  // some of what went (or would go), for people
  nlohmann::json toJson() const;
};

// What a run reports as it goes (the job system's context, or a test's).
struct GcObserver {
  std::function<void(uint64_t done, uint64_t total, const std::string& phase)> progress = [](uint64_t, uint64_t,
                                                                                            const std::string&) {};
  std::function<void(const std::string& line)> log = [](const std::string&) {};
  std::function<bool()> cancelled = [] { return false; };
  // Each deletion as it is committed (not in a dry run), for the event log and so for
  // the edges: a tag (retention; ref is the tag), an untagged manifest (ref is its
  // digest), or content (repo "": gone from every repository; ref is the digest).
  enum class Deleted { kTag, kManifest, kBlob };
  std::function<void(Deleted what, const std::string& repo, const std::string& ref)> deleted =
      [](Deleted, const std::string&, const std::string&) {};
};

// The manifests of a repository that state outside the registry refers to (trust data's
// targets), kept as if tagged.
using ContentPins = std::function<std::vector<std::string>(const std::string& repo)>;

class GarbageCollector {
 public:
  explicit GarbageCollector(Registry& registry, ContentPins pins = {}) : registry_(registry), pins_(std::move(pins)) {}
  // kCancelled when the observer cancelled it (what was done so far stays done).
  Result<GcReport> run(const GcOptions& options, const GcObserver& observer);

 private:
  Registry& registry_;
  ContentPins pins_;
};

// Storage used by the repositories under a scope ("team/app", "team/*", or "*" for the
// whole registry): every manifest and the content it references, each digest counted
// once per scope however many images share it.
struct StorageUsage {
  uint64_t bytes = 0;
  uint64_t blobs = 0;
  uint64_t manifests = 0;
  uint64_t repositories = 0;
};
Result<StorageUsage> storageUsage(Registry& registry, const std::string& scope);

}  // namespace wharf
