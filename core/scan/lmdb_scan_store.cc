#include "core/scan/lmdb_scan_store.h"

#include <map>

#include "core/scan/scan_records.h"
#include "shared/base/json_body.h"

namespace wharf {
namespace {

constexpr size_t kDeleteChunk = 10'000;

}  // namespace

Result<std::unique_ptr<LmdbScanStore>> LmdbScanStore::open(std::shared_ptr<LmdbEnv> env) {
  std::unique_ptr<LmdbScanStore> store(new LmdbScanStore(std::move(env)));
  WHARF_RETURN_IF_ERROR(store->openDbs());
  WHARF_RETURN_IF_ERROR(store->dropOtherGenerations(store->dbGeneration()));
  return store;
}

Status LmdbScanStore::openDbs() {
  struct Named {
    const char* name;
    Dbi* dbi;
  };
  for (Named n : {Named{"scan_meta", &meta_db_}, Named{"scan_layers", &layers_db_}, Named{"scan_images", &images_db_},
                  Named{"scan_inventories", &inventories_db_},
                  Named{"scan_matches", &matches_db_},
                  Named{"scan_advisories", &advisories_db_}}) {
    auto db = env_->openDb(n.name);
    if (!db.isOk()) return db.status();
    *n.dbi = *db;
  }
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  if (txn->get(meta_db_, "schema", &v).isOk()) {
    if (v != std::to_string(kScanSchemaVersion))
      return Status(Code::kCorruption, "scan.lmdb has layout version " + std::string(v) + ", this build reads " +
                                           std::to_string(kScanSchemaVersion));
    return Status::ok();
  }
  WHARF_RETURN_IF_ERROR(txn->put(meta_db_, "schema", std::to_string(kScanSchemaVersion)));
  return txn->commit();
}

Result<nlohmann::json> LmdbScanStore::getDoc(Dbi db, const std::string& key) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  WHARF_RETURN_IF_ERROR(txn->get(db, key, &v));
  return scanJsonOfCbor(v);
}

Status LmdbScanStore::putDoc(Dbi db, const std::string& key, const nlohmann::json& doc) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  WHARF_RETURN_IF_ERROR(txn->put(db, key, scanCbor(doc)));
  return txn->commit();
}

Result<nlohmann::json> LmdbScanStore::layer(const std::string& digest) { return getDoc(layers_db_, digest); }
Status LmdbScanStore::putLayer(const std::string& digest, const nlohmann::json& scan) {
  return putDoc(layers_db_, digest, scan);
}
Result<nlohmann::json> LmdbScanStore::image(const std::string& digest) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  WHARF_RETURN_IF_ERROR(txn->get(images_db_, digest, &v));
  auto doc = scanJsonOfCbor(v);
  if (!doc.isOk()) return doc.status();
  std::string_view inv_bytes;
  if (!txn->get(inventories_db_, digest, &inv_bytes).isOk()) return doc;  // not a completed result
  Inventory inv;
  WHARF_RETURN_IF_ERROR(decodeInventory(inv_bytes, FindingsKey::kInRecord, &inv));
  nlohmann::json packages = nlohmann::json::array();
  for (const auto& p : inv.inv.packages) packages.push_back(packageToJson(p));
  (*doc)["packages"] = std::move(packages);
  if (txn->get(matches_db_, digest, &v).isOk()) {
    auto match = scanJsonOfCbor(v);
    if (!match.isOk()) return match.status();
    for (auto it = match->begin(); it != match->end(); ++it) (*doc)[it.key()] = std::move(it.value());
  }
  return doc;
}

Status LmdbScanStore::putImageIn(WriteTxn& txn, const std::string& digest, const nlohmann::json& result) {
  auto packages = result.find("packages");
  if (jsonStringOr(result, "status") != "completed" || packages == result.end() || !packages->is_array()) {
    WHARF_RETURN_IF_ERROR(txn.put(images_db_, digest, scanCbor(result)));
    for (Dbi db : {inventories_db_, matches_db_}) {
      Status s = txn.del(db, digest);
      if (!s.isOk() && s.code() != Code::kNotFound) return s;
    }
    return Status::ok();
  }
  nlohmann::json rest = nlohmann::json::object(), match = nlohmann::json::object();
  for (auto it = result.begin(); it != result.end(); ++it) {
    if (it.key() == "packages") continue;
    bool in_match = isScanMatchField(it.key());
    (in_match ? match : rest)[it.key()] = it.value();
  }
  WHARF_RETURN_IF_ERROR(txn.put(images_db_, digest, scanCbor(rest)));
  WHARF_RETURN_IF_ERROR(txn.put(matches_db_, digest, scanCbor(match)));
  return txn.put(inventories_db_, digest, encodeInventory(result, FindingsKey::kInRecord));
}

Status LmdbScanStore::putImage(const std::string& digest, const nlohmann::json& result) {
  return putImages({{digest, result}});
}

Status LmdbScanStore::putImages(const std::vector<std::pair<std::string, nlohmann::json>>& results) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  for (const auto& [digest, doc] : results) WHARF_RETURN_IF_ERROR(putImageIn(*txn, digest, doc));
  return txn->commit();
}

Status LmdbScanStore::putMatches(const std::vector<std::pair<std::string, nlohmann::json>>& matches) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  for (const auto& [digest, match] : matches) {
    std::string_view old;
    if (!txn->get(inventories_db_, digest, &old).isOk()) continue;  // not (or no longer) a completed result
    // The inventory starts with the findings key: the rest stays as it is.
    auto inventory = withFindingsKey(old, jsonStringOr(match, "findings_key"));
    if (!inventory.isOk()) return inventory.status();
    nlohmann::json part = nlohmann::json::object();
    for (const char* f : kScanMatchFields)
      if (match.contains(f)) part[f] = match[f];
    WHARF_RETURN_IF_ERROR(txn->put(inventories_db_, digest, *inventory));
    WHARF_RETURN_IF_ERROR(txn->put(matches_db_, digest, scanCbor(part)));
  }
  return txn->commit();
}

Status LmdbScanStore::removeImages(const std::vector<std::string>& digests) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  for (const auto& digest : digests)
    for (Dbi db : {images_db_, inventories_db_, matches_db_}) {
      Status s = txn->del(db, digest);
      if (!s.isOk() && s.code() != Code::kNotFound) return s;
    }
  return txn->commit();
}

Result<std::string> LmdbScanStore::inventoryPage(const std::string& after, size_t limit,
                                                 const std::function<void(const std::string&, const Inventory&)>& fn) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  auto c = txn->cursor(inventories_db_);
  bool ok = after.empty() ? c.first() : c.seek(after);
  if (ok && !after.empty() && c.key() == after) ok = c.next();
  std::string last;
  Inventory inv;
  for (size_t n = 0; ok && n < limit; ok = c.next(), ++n) {
    WHARF_RETURN_IF_ERROR(decodeInventory(c.value(), FindingsKey::kInRecord, &inv));
    last = std::string(c.key());
    fn(last, inv);
  }
  WHARF_RETURN_IF_ERROR(c.status());
  return last;
}

uint64_t LmdbScanStore::imageCount() {
  uint64_t n = 0;
  auto txn = env_->read();
  if (!txn.isOk()) return 0;
  auto c = txn->cursor(images_db_);
  for (bool ok = c.first(); ok; ok = c.next()) ++n;
  return n;
}

Result<std::vector<std::string>> LmdbScanStore::digests(Results kind, const std::string& after, size_t limit) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  auto c = txn->cursor(kind == Results::kLayers ? layers_db_ : images_db_);
  bool ok = after.empty() ? c.first() : c.seek(after);
  if (ok && !after.empty() && c.key() == after) ok = c.next();
  std::vector<std::string> out;
  for (; ok && out.size() < limit; ok = c.next()) out.emplace_back(c.key());
  WHARF_RETURN_IF_ERROR(c.status());
  return out;
}

nlohmann::json LmdbScanStore::dbMeta() {
  auto j = getDoc(meta_db_, "db_meta");
  return j.isOk() ? *j : nlohmann::json::object();
}

uint64_t LmdbScanStore::dbGeneration() {
  auto txn = env_->read();
  if (!txn.isOk()) return 0;
  std::string_view v;
  if (!txn->get(meta_db_, "generation", &v).isOk()) return 0;
  return std::strtoull(std::string(v).c_str(), nullptr, 10);
}

Status LmdbScanStore::forEachAdvisory(const std::function<Status(std::string_view, std::string_view)>& fn) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  if (!txn->get(meta_db_, "generation", &v).isOk()) return Status::ok();
  std::string prefix = bigEndian64(std::strtoull(std::string(v).c_str(), nullptr, 10));
  auto c = txn->cursor(advisories_db_);
  for (bool ok = c.seek(prefix); ok && c.key().substr(0, 8) == prefix; ok = c.next())
    WHARF_RETURN_IF_ERROR(fn(c.key().substr(8), c.value()));
  return c.status();
}

Result<uint64_t> LmdbScanStore::beginGeneration() {
  std::lock_guard lock(generation_mu_);
  uint64_t current = dbGeneration();
  WHARF_RETURN_IF_ERROR(dropOtherGenerations(current));
  return current + 1;
}

Status LmdbScanStore::addAdvisories(uint64_t generation, const std::vector<std::pair<std::string, std::string>>& batch) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  std::string prefix = bigEndian64(generation);
  for (const auto& [id, osv] : batch) WHARF_RETURN_IF_ERROR(txn->put(advisories_db_, prefix + id, osv));
  return txn->commit();
}

Status LmdbScanStore::commitGeneration(uint64_t generation, const nlohmann::json& meta) {
  {
    std::lock_guard lock(generation_mu_);
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    WHARF_RETURN_IF_ERROR(txn->put(meta_db_, "generation", std::to_string(generation)));
    WHARF_RETURN_IF_ERROR(txn->put(meta_db_, "db_meta", scanCbor(meta)));
    WHARF_RETURN_IF_ERROR(txn->commit());
  }
  return dropOtherGenerations(generation);
}

Status LmdbScanStore::dropOtherGenerations(uint64_t keep) {
  std::string keep_prefix = bigEndian64(keep);
  for (;;) {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::vector<std::string> doomed;
    {
      auto c = txn->cursor(advisories_db_);
      for (bool ok = c.first(); ok && doomed.size() < kDeleteChunk;) {
        if (c.key().substr(0, 8) == keep_prefix) {
          // Skip the kept generation: jump past its prefix.
          ok = keep == UINT64_MAX ? false : c.seek(bigEndian64(keep + 1));
          continue;
        }
        doomed.emplace_back(c.key());
        ok = c.next();
      }
      WHARF_RETURN_IF_ERROR(c.status());
    }
    if (doomed.empty()) return Status::ok();
    for (const auto& k : doomed) WHARF_RETURN_IF_ERROR(txn->del(advisories_db_, k));
    WHARF_RETURN_IF_ERROR(txn->commit());
  }
}

nlohmann::json LmdbScanStore::state(const std::string& key) {
  auto j = getDoc(meta_db_, "state:" + key);
  return j.isOk() ? *j : nlohmann::json();
}

std::vector<std::string> LmdbScanStore::stateKeys() {
  std::vector<std::string> out;
  auto txn = env_->read();
  if (!txn.isOk()) return out;
  auto c = txn->cursor(meta_db_);
  for (bool ok = c.seek("state:"); ok && c.key().substr(0, 6) == "state:"; ok = c.next())
    out.emplace_back(c.key().substr(6));
  return out;
}

Status LmdbScanStore::setState(const std::string& key, const nlohmann::json& value) {
  return putDoc(meta_db_, "state:" + key, value);
}

Result<bool> LmdbScanStore::swapState(const std::string& key, const nlohmann::json& expected,
                                      const nlohmann::json& value) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  nlohmann::json stored;
  if (txn->get(meta_db_, "state:" + key, &v).isOk()) {
    auto doc = scanJsonOfCbor(v);
    if (!doc.isOk()) return doc.status();
    stored = std::move(doc).value();
  }
  if (stored != expected) return false;
  WHARF_RETURN_IF_ERROR(txn->put(meta_db_, "state:" + key, scanCbor(value)));
  WHARF_RETURN_IF_ERROR(txn->commit());
  return true;
}

}  // namespace wharf
