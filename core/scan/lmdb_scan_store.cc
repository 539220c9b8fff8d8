#include "core/scan/lmdb_scan_store.h"

namespace wharf {
namespace {

constexpr size_t kDeleteChunk = 10'000;

std::string toCbor(const nlohmann::json& j) {
  std::vector<uint8_t> bytes = nlohmann::json::to_cbor(j);
  return std::string(bytes.begin(), bytes.end());
}

Result<nlohmann::json> fromCbor(std::string_view v) {
  auto j = nlohmann::json::from_cbor(v.begin(), v.end(), true, false);
  if (j.is_discarded()) return Status(Code::kCorruption, "scan.lmdb: a record does not decode");
  return j;
}

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
  return fromCbor(v);
}

Status LmdbScanStore::putDoc(Dbi db, const std::string& key, const nlohmann::json& doc) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  WHARF_RETURN_IF_ERROR(txn->put(db, key, toCbor(doc)));
  return txn->commit();
}

Result<nlohmann::json> LmdbScanStore::layer(const std::string& digest) { return getDoc(layers_db_, digest); }
Status LmdbScanStore::putLayer(const std::string& digest, const nlohmann::json& scan) {
  return putDoc(layers_db_, digest, scan);
}
Result<nlohmann::json> LmdbScanStore::image(const std::string& digest) { return getDoc(images_db_, digest); }
Status LmdbScanStore::putImage(const std::string& digest, const nlohmann::json& result) {
  return putDoc(images_db_, digest, result);
}

Status LmdbScanStore::putImages(const std::vector<std::pair<std::string, nlohmann::json>>& results) {
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  for (const auto& [digest, doc] : results) WHARF_RETURN_IF_ERROR(txn->put(images_db_, digest, toCbor(doc)));
  return txn->commit();
}

Status LmdbScanStore::forEachImage(const std::function<bool(const std::string&, const nlohmann::json&)>& fn) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  auto c = txn->cursor(images_db_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    auto doc = fromCbor(c.value());
    if (!doc.isOk()) return doc.status();
    if (!fn(std::string(c.key()), *doc)) break;
  }
  return c.status();
}

uint64_t LmdbScanStore::imageCount() {
  uint64_t n = 0;
  auto txn = env_->read();
  if (!txn.isOk()) return 0;
  auto c = txn->cursor(images_db_);
  for (bool ok = c.first(); ok; ok = c.next()) ++n;
  return n;
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
    WHARF_RETURN_IF_ERROR(txn->put(meta_db_, "db_meta", toCbor(meta)));
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

Status LmdbScanStore::setState(const std::string& key, const nlohmann::json& value) {
  return putDoc(meta_db_, "state:" + key, value);
}

}  // namespace wharf
