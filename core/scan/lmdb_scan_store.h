// LmdbScanStore: the ScanStore in its own LMDB environment (<data_dir>/scan.lmdb), so
// that scan results and advisories (hundreds of MB for a full OSV feed) never grow the
// registry's metadata file or hold its write lock.
//
// Layout, version kScanSchemaVersion in scan_meta["schema"]; documents are CBOR:
//   scan_meta        "schema" -> "1"; "generation" -> the current one (decimal);
//                    "db_meta" -> its metadata; "state:<key>" -> a scanner setting
//   scan_layers      <layer digest> -> layerScanToJson
//   scan_images      <manifest digest> -> image result; of a completed one, all but the
//                    packages and the match, which are kept apart:
//   scan_inventories <manifest digest> -> findings_key, repository, media_type, OS and
//                    packages, for re-matching: strings as varint length + bytes, the
//                    layers as a table (see encodeInventory)
//   scan_matches     <manifest digest> -> {"findings","counts","findings_key",
//                    "db_generation","matched_at"}
//   scan_advisories  <generation u64 BE><advisory id> -> OSV JSON text
#pragma once

#include <memory>
#include <mutex>

#include "core/scan/scan_store.h"
#include "shared/store/lmdb.h"

namespace wharf {

constexpr int kScanSchemaVersion = 1;

class LmdbScanStore : public ScanStore {
 public:
  static Result<std::unique_ptr<LmdbScanStore>> open(std::shared_ptr<LmdbEnv> env);

  Result<nlohmann::json> layer(const std::string& digest) override;
  Status putLayer(const std::string& digest, const nlohmann::json& scan) override;
  Result<nlohmann::json> image(const std::string& digest) override;
  Status putImage(const std::string& digest, const nlohmann::json& result) override;
  Status putImages(const std::vector<std::pair<std::string, nlohmann::json>>& results) override;
  Result<std::string> inventoryPage(const std::string& after, size_t limit,
                                    const std::function<void(const std::string&, const Inventory&)>& fn) override;
  Status putMatches(const std::vector<std::pair<std::string, nlohmann::json>>& matches) override;
  Status removeImages(const std::vector<std::string>& digests) override;
  uint64_t imageCount() override;
  Result<std::vector<std::string>> digests(Results kind, const std::string& after, size_t limit) override;
  nlohmann::json dbMeta() override;
  uint64_t dbGeneration() override;
  Status forEachAdvisory(const std::function<Status(std::string_view, std::string_view)>& fn) override;
  Result<uint64_t> beginGeneration() override;
  Status addAdvisories(uint64_t generation, const std::vector<std::pair<std::string, std::string>>& batch) override;
  Status commitGeneration(uint64_t generation, const nlohmann::json& meta) override;
  nlohmann::json state(const std::string& key) override;
  Status setState(const std::string& key, const nlohmann::json& value) override;
  std::vector<std::string> stateKeys() override;
  Result<bool> swapState(const std::string& key, const nlohmann::json& expected, const nlohmann::json& value) override;

 private:
  explicit LmdbScanStore(std::shared_ptr<LmdbEnv> env) : env_(std::move(env)) {}
  Status openDbs();
  // Removes every advisory of generations other than keep, in bounded transactions.
  Status dropOtherGenerations(uint64_t keep);
  Result<nlohmann::json> getDoc(Dbi db, const std::string& key);
  Status putDoc(Dbi db, const std::string& key, const nlohmann::json& doc);

  std::shared_ptr<LmdbEnv> env_;
  Status putImageIn(WriteTxn& txn, const std::string& digest, const nlohmann::json& result);
  Dbi meta_db_ = 0, layers_db_ = 0, images_db_ = 0, inventories_db_ = 0, matches_db_ = 0, advisories_db_ = 0;
  std::mutex generation_mu_;  // one import at a time
};

}  // namespace wharf
