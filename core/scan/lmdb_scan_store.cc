#include "core/scan/lmdb_scan_store.h"

#include <map>

#include "shared/base/json_body.h"

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

// The inventory record: findings_key, os id, version_id, pretty_name, the layer table
// (count, digests), then the packages (count; each type, name, version, source_name,
// source_version, arch, path, layer index). Strings are a varint length and the bytes.
void putVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(uint8_t(v));
}
void putString(std::string& out, std::string_view s) {
  putVarint(out, s.size());
  out.append(s);
}

struct InventoryReader {
  std::string_view in;
  bool ok = true;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
      uint8_t b = uint8_t(in.front());
      in.remove_prefix(1);
      v |= uint64_t(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok = false;
    return 0;
  }
  std::string_view string() {
    uint64_t n = varint();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string_view s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
};

// The fields of a completed result that make its match (scan_matches).
constexpr const char* kMatchFields[] = {"findings", "counts", "findings_key", "db_generation", "matched_at"};

std::string encodeInventory(const nlohmann::json& result) {
  std::string out;
  putString(out, jsonStringOr(result, "findings_key"));
  putString(out, jsonStringOr(result, "repository"));
  putString(out, jsonStringOr(result, "media_type"));
  nlohmann::json os = result.value("os", nlohmann::json());
  for (const char* k : {"id", "version_id", "pretty_name"}) putString(out, os.is_object() ? jsonStringOr(os, k) : "");
  std::vector<Package> packages;
  std::vector<std::string> layers;
  std::map<std::string, uint64_t> layer_index;
  for (const auto& pj : result["packages"]) {
    auto p = packageFromJson(pj);
    if (!p.isOk()) continue;
    if (layer_index.emplace(p->layer, layers.size()).second) layers.push_back(p->layer);
    packages.push_back(std::move(*p));
  }
  putVarint(out, layers.size());
  for (const auto& l : layers) putString(out, l);
  putVarint(out, packages.size());
  for (const auto& p : packages) {
    for (const std::string* f : {&p.type, &p.name, &p.version, &p.source_name, &p.source_version, &p.arch, &p.path})
      putString(out, *f);
    putVarint(out, layer_index[p.layer]);
  }
  return out;
}

Status decodeInventory(std::string_view bytes, ScanStore::Inventory* out) {
  InventoryReader r{bytes};
  ImageInventory* inv = &out->inv;
  out->findings_key = r.string();
  out->repository = r.string();
  out->media_type = r.string();
  inv->os.id = r.string();
  inv->os.version_id = r.string();
  inv->os.pretty_name = r.string();
  std::vector<std::string_view> layers(r.ok ? std::min<uint64_t>(r.varint(), bytes.size()) : 0);
  for (auto& l : layers) l = r.string();
  uint64_t n = r.ok ? r.varint() : 0;
  inv->packages.clear();
  inv->packages.reserve(std::min<uint64_t>(n, bytes.size()));
  for (uint64_t i = 0; i < n && r.ok; ++i) {
    Package p;
    for (std::string* f : {&p.type, &p.name, &p.version, &p.source_name, &p.source_version, &p.arch, &p.path})
      *f = r.string();
    uint64_t li = r.varint();
    if (li < layers.size()) p.layer = layers[li];
    inv->packages.push_back(std::move(p));
  }
  if (!r.ok) return Status(Code::kCorruption, "scan.lmdb: an inventory record does not decode");
  return Status::ok();
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
Result<nlohmann::json> LmdbScanStore::image(const std::string& digest) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  WHARF_RETURN_IF_ERROR(txn->get(images_db_, digest, &v));
  auto doc = fromCbor(v);
  if (!doc.isOk()) return doc.status();
  std::string_view inv_bytes;
  if (!txn->get(inventories_db_, digest, &inv_bytes).isOk()) return doc;  // not a completed result
  Inventory inv;
  WHARF_RETURN_IF_ERROR(decodeInventory(inv_bytes, &inv));
  nlohmann::json packages = nlohmann::json::array();
  for (const auto& p : inv.inv.packages) packages.push_back(packageToJson(p));
  (*doc)["packages"] = std::move(packages);
  if (txn->get(matches_db_, digest, &v).isOk()) {
    auto match = fromCbor(v);
    if (!match.isOk()) return match.status();
    for (auto it = match->begin(); it != match->end(); ++it) (*doc)[it.key()] = std::move(it.value());
  }
  return doc;
}

Status LmdbScanStore::putImageIn(WriteTxn& txn, const std::string& digest, const nlohmann::json& result) {
  auto packages = result.find("packages");
  if (jsonStringOr(result, "status") != "completed" || packages == result.end() || !packages->is_array()) {
    WHARF_RETURN_IF_ERROR(txn.put(images_db_, digest, toCbor(result)));
    for (Dbi db : {inventories_db_, matches_db_}) {
      Status s = txn.del(db, digest);
      if (!s.isOk() && s.code() != Code::kNotFound) return s;
    }
    return Status::ok();
  }
  nlohmann::json rest = nlohmann::json::object(), match = nlohmann::json::object();
  for (auto it = result.begin(); it != result.end(); ++it) {
    if (it.key() == "packages") continue;
    bool in_match = std::find_if(std::begin(kMatchFields), std::end(kMatchFields),
                                 [&](const char* f) { return it.key() == f; }) != std::end(kMatchFields);
    (in_match ? match : rest)[it.key()] = it.value();
  }
  WHARF_RETURN_IF_ERROR(txn.put(images_db_, digest, toCbor(rest)));
  WHARF_RETURN_IF_ERROR(txn.put(matches_db_, digest, toCbor(match)));
  return txn.put(inventories_db_, digest, encodeInventory(result));
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
    InventoryReader r{old};
    (void)r.string();
    if (!r.ok) return Status(Code::kCorruption, "scan.lmdb: an inventory record does not decode");
    std::string inventory;
    putString(inventory, jsonStringOr(match, "findings_key"));
    inventory.append(r.in);
    nlohmann::json part = nlohmann::json::object();
    for (const char* f : kMatchFields)
      if (match.contains(f)) part[f] = match[f];
    WHARF_RETURN_IF_ERROR(txn->put(inventories_db_, digest, inventory));
    WHARF_RETURN_IF_ERROR(txn->put(matches_db_, digest, toCbor(part)));
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
    WHARF_RETURN_IF_ERROR(decodeInventory(c.value(), &inv));
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
