// Scanner: what the core knows of the software in its images and their vulnerabilities.
//
// scan() reads an image's layers straight from the blob store (scanLayer), each layer
// once whatever number of images share it (its result is kept by layer digest), stacks
// them (stackLayers), matches the packages against the current vulnerability database
// (VulnDb) and stores the result by manifest digest; an index is scanned per platform.
//
// The database: importDatabase() reads a zip or a directory of OSV JSON files, parses
// every advisory, and only when all of it parsed writes it as a new generation and
// switches to it (ScanStore); then every stored image result is matched again from its
// stored package list (no layer is read again) and images whose findings changed get a
// scan.updated event. update() fetches the configured sources (ETag / Last-Modified, a
// size limit) and imports what changed: the vulndb-update job, on a schedule.
//
// Thread-safety: every method is thread-safe; all of them block (worker threads, jobs).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/metadata/metadata_store.h"
#include "core/scan/layer_scan.h"
#include "core/scan/scan_store.h"
#include "core/scan/vuln_db.h"
#include "shared/base/clock.h"
#include "shared/base/status.h"

namespace wharf {

class Registry;
class EventLog;
class JobContext;
struct Manifest;

struct ScannerOptions {
  ScanLimits limits;
  int64_t layer_timeout_ms = 15 * 60'000;
  // A database older than this is flagged stale on every result (0: never).
  int64_t max_db_age_ms = 7ll * 86'400'000;
  std::vector<std::string> sources;       // OSV zip URLs for vulndb-update
  std::string source_ca_file;             // for https sources (empty: system CAs)
  uint64_t max_download_bytes = 2ull << 30;
  uint64_t max_advisory_bytes = 4u << 20;
  std::string tmp_dir;                    // downloads and uploaded imports
  // Push each scanned image's SPDX SBOM as an OCI referrer of it (artifactType
  // application/spdx+json), once per image, so that clients find it with the referrers API.
  bool attach_sbom = false;
};

class Scanner {
 public:
  Scanner(Registry& registry, ScanStore& store, EventLog* events, Clock& clock, ScannerOptions options);

  // Loads the current database generation into memory (at start).
  Status load();
  // Loads the stored generation if it is not the one in memory (another core sharing the
  // store switched it).
  Status refresh();

  // Scans repo's manifest digest (image or index); returns the stored result.
  Result<nlohmann::json> scan(const std::string& repo, const std::string& digest, JobContext* ctx);
  // The stored result, with "db": {"generation","updated_at","stale"} (stale: the database
  // is older than the limit);
  // kNotFound when never scanned.
  Result<nlohmann::json> result(const std::string& digest);
  // Whether digest has a completed result of this scanner version (scan-all skips it).
  bool hasCurrentResult(const std::string& digest);

  // Imports path (a .zip or a directory of .json files) as the new generation; source
  // names where it came from. Returns {"generation","advisories","rematched","changed"}.
  Result<nlohmann::json> importDatabase(const std::string& path, const std::string& source, JobContext* ctx);
  // Fetches the configured sources and imports when one changed.
  Result<nlohmann::json> update(JobContext* ctx);
  // Matches every stored image again against the current database.
  Result<nlohmann::json> rematchAll(JobContext* ctx);
  // {"generation","updated_at","age_seconds","stale","advisories","ecosystems":{..},"sources":[..]}
  nlohmann::json databaseInfo();

  const ScannerOptions& options() const { return options_; }

  // Called (on the scanner's thread) with digests whose pulls a vulnerability policy now
  // refuses, after their results changed or a policy did: the core tells its edges to
  // drop them, so that an edge asks the core again before serving them. Set before use.
  // Whether the vulnerability policy of repo (the most specific one setting
  // block_severity) refuses pulls of digest: "refused by the vulnerability policy of
  // <scope> (<SEVERITY> and above with a fix): <the worst finding>", or nullopt.
  std::optional<std::string> refusal(const std::string& repo, const std::string& digest);

  using BlockedHook = std::function<void(const std::vector<std::string>& digests)>;
  void setBlockedHook(BlockedHook hook) { blocked_hook_ = std::move(hook); }
  // After a policy of scope changed: the stored images of repositories in scope that it
  // now refuses go to the hook. Returns how many.
  Result<size_t> enforcePolicy(const std::string& scope);

  // Whether a pull of digest is refused by a policy blocking findings at or above `at`
  // that have a fix: the worst such finding not exempted (exemptions still running at
  // now_ms), as a message naming it; nullopt when the pull may go on (also when the image
  // was never scanned or its scan failed). Cheap after the first call for a digest (the
  // decision inputs are cached until a result changes): callable on loop threads.
  std::optional<std::string> pullBlock(const std::string& digest, Severity at, const std::vector<VulnExemption>& exemptions,
                                       int64_t now_ms);

 private:
  // parsed: the manifest when the caller read it already (else it is read here).
  Result<nlohmann::json> scanImage(const std::string& repo, const std::string& digest, const Manifest* parsed,
                                   const nlohmann::json& platform, JobContext* ctx);
  // Imports the union of the sources' kept files with changed (source -> path) replacing theirs.
  Result<nlohmann::json> importSources(const std::map<std::string, std::string>& changed, JobContext* ctx);
  // Downloads url into dest when it changed since validators (ETag, Last-Modified; a local
  // path's mtime and size); true when dest (or the local path) holds new data, and then
  // validators are the new ones.
  Result<bool> fetchSource(const std::string& url, nlohmann::json& validators, const std::string& dest, JobContext* ctx);
  Result<LayerScan> layerScan(const std::string& digest, JobContext* ctx);
  // Pushes the SBOM of the image result as a referrer of repo@digest unless one is there.
  Status attachSbom(const std::string& repo, const std::string& digest, const std::string& media_type, uint64_t size,
                    const nlohmann::json& result, JobContext* ctx);
  nlohmann::json matchInto(const ImageInventory& inv, const VulnDb& db, nlohmann::json result);
  // {"findings","counts","findings_key","db_generation","matched_at"} of found by db.
  nlohmann::json matchOf(const std::vector<Finding>& found, std::string key, const VulnDb& db);
  std::shared_ptr<const VulnDb> db();

  Registry& registry_;
  ScanStore& store_;
  EventLog* events_;
  Clock& clock_;
  ScannerOptions options_;
  std::mutex db_mu_;
  std::shared_ptr<const VulnDb> db_;  // GUARDED_BY(db_mu_)
  std::mutex import_mu_;             // one import or rematch at a time
  // Per digest: its findings that have a fix, worst first (pullBlock's input).
  struct Fixable {
    Severity severity;
    std::string advisory, aliases, package, installed, fixed;
    std::vector<std::string> ids;  // advisory and aliases, for exemptions
  };
  void forgetPullDecisions();
  // Hands the digests of (repository, digest) pairs refused now to the hook.
  void reportRefused(const std::vector<std::pair<std::string, std::string>>& changed);
  BlockedHook blocked_hook_;
  std::mutex block_mu_;
  uint64_t block_epoch_ = 0;  // GUARDED_BY(block_mu_): a decision read before a forget is not kept
  std::unordered_map<std::string, std::shared_ptr<const std::vector<Fixable>>> block_cache_;  // GUARDED_BY(block_mu_)
};

// Severity counts of a findings array: {"CRITICAL": n, ...}, every level present.
nlohmann::json severityCounts(const nlohmann::json& findings);

}  // namespace wharf
