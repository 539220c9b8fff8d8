// ScanStore: what the scanner keeps: layer results by layer digest, image results by
// manifest digest, and the vulnerability database's generations.
//
// The database is switched atomically: a new generation is written beside the current
// one (beginGeneration, addAdvisories in batches), and only commitGeneration makes it
// current, in one transaction with its metadata; a generation that never committed (an
// import that failed or a crash) is dropped by the next begin or at open. The previous
// generation is removed after the switch.
//
// Thread-safety: every method is thread-safe; writes block on the disk (worker threads).
// Implementations: LmdbScanStore (lmdb_scan_store.h), the embedded default.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/scan/layer_scan.h"
#include "shared/base/status.h"

namespace wharf {

class ScanStore {
 public:
  virtual ~ScanStore() = default;

  // JSON documents (layerScanToJson, the image result), kNotFound when absent.
  virtual Result<nlohmann::json> layer(const std::string& digest) = 0;
  virtual Status putLayer(const std::string& digest, const nlohmann::json& scan) = 0;
  virtual Result<nlohmann::json> image(const std::string& digest) = 0;
  virtual Status putImage(const std::string& digest, const nlohmann::json& result) = 0;
  // A completed result (status "completed" and "packages") is kept in three parts: the
  // rest, the inventory (OS and packages) and the match (findings and what goes with
  // them), so that re-matching reads and writes only what it needs; image() joins them.
  virtual Status putImages(const std::vector<std::pair<std::string, nlohmann::json>>& results) = 0;
  // What re-matching reads of a completed image result: its OS and packages, and what it
  // was matched to (findings_key), kept by putImages in a compact form.
  struct Inventory {
    ImageInventory inv;
    std::string_view findings_key, repository, media_type;
  };
  // Up to limit inventories after the digest `after` ("" from the first), in digest order,
  // each in its own short read (writes may come between pages); returns the last digest
  // given, "" when none was left.
  virtual Result<std::string> inventoryPage(const std::string& after, size_t limit,
                                            const std::function<void(const std::string& digest, const Inventory&)>& fn) = 0;
  // Removes image results (all their parts); digests without one are skipped.
  virtual Status removeImages(const std::vector<std::string>& digests) = 0;
  // Replaces what completed results were matched to: {"findings","counts","findings_key",
  // "db_generation","matched_at"} per digest; the rest of each result stays. Digests
  // without a completed result are skipped.
  virtual Status putMatches(const std::vector<std::pair<std::string, nlohmann::json>>& matches) = 0;
  virtual uint64_t imageCount() = 0;
  // Up to limit digests with a layer (kLayers) or image (kImages) result after `after`
  // ("" from the first), in digest order: every result, page by page (wharfctl migrate).
  enum class Results { kLayers, kImages };
  virtual Result<std::vector<std::string>> digests(Results kind, const std::string& after, size_t limit) = 0;

  // The current generation's metadata ({} before the first import) and its number (0).
  virtual nlohmann::json dbMeta() = 0;
  virtual uint64_t dbGeneration() = 0;
  // Every advisory (OSV JSON text) of the current generation.
  virtual Status forEachAdvisory(const std::function<Status(std::string_view id, std::string_view osv)>& fn) = 0;
  // Returns the new generation's number.
  virtual Result<uint64_t> beginGeneration() = 0;
  virtual Status addAdvisories(uint64_t generation, const std::vector<std::pair<std::string, std::string>>& batch) = 0;
  virtual Status commitGeneration(uint64_t generation, const nlohmann::json& meta) = 0;
  // Settings of the scanner kept across restarts (the database sources' ETags, ...).
  virtual nlohmann::json state(const std::string& key) = 0;
  virtual Status setState(const std::string& key, const nlohmann::json& value) = 0;
  // Every state key, in order.
  virtual std::vector<std::string> stateKeys() = 0;
  // Sets the value only if the stored one is `expected` (null: absent), in one
  // transaction; false when it was not (another replica changed it first).
  virtual Result<bool> swapState(const std::string& key, const nlohmann::json& expected,
                                 const nlohmann::json& value) = 0;
};

}  // namespace wharf
