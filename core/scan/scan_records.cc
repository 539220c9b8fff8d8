#include "core/scan/scan_records.h"

#include <algorithm>
#include <map>
#include <vector>

#include "shared/base/json_body.h"

namespace wharf {
namespace {

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

struct Reader {
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

}  // namespace

std::string scanCbor(const nlohmann::json& j) {
  std::vector<uint8_t> bytes = nlohmann::json::to_cbor(j);
  return std::string(bytes.begin(), bytes.end());
}

Result<nlohmann::json> scanJsonOfCbor(std::string_view v) {
  auto j = nlohmann::json::from_cbor(v.begin(), v.end(), true, false);
  if (j.is_discarded()) return Status(Code::kCorruption, "scan store: a record does not decode");
  return j;
}

std::string encodeInventory(const nlohmann::json& result, FindingsKey key) {
  std::string out;
  if (key == FindingsKey::kInRecord) putString(out, jsonStringOr(result, "findings_key"));
  putString(out, jsonStringOr(result, "repository"));
  putString(out, jsonStringOr(result, "media_type"));
  nlohmann::json os = result.value("os", nlohmann::json());
  for (const char* k : {"id", "version_id", "pretty_name"}) putString(out, os.is_object() ? jsonStringOr(os, k) : "");
  std::vector<Package> packages;
  std::vector<std::string> layers;
  std::map<std::string, uint64_t> layer_index;
  auto all = result.find("packages");
  if (all != result.end() && all->is_array()) {
    for (const auto& pj : *all) {
      auto p = packageFromJson(pj);
      if (!p.isOk()) continue;  // a package that does not read is not kept
      if (layer_index.emplace(p->layer, layers.size()).second) layers.push_back(p->layer);
      packages.push_back(std::move(*p));
    }
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

Status decodeInventory(std::string_view bytes, FindingsKey key, ScanStore::Inventory* out) {
  Reader r{bytes};
  ImageInventory* inv = &out->inv;
  if (key == FindingsKey::kInRecord) out->findings_key = r.string();
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
  if (!r.ok) return Status(Code::kCorruption, "scan store: an inventory record does not decode");
  return Status::ok();
}

Result<std::string> withFindingsKey(std::string_view record, std::string_view findings_key) {
  Reader r{record};
  (void)r.string();
  if (!r.ok) return Status(Code::kCorruption, "scan store: an inventory record does not decode");
  std::string out;
  putString(out, findings_key);
  out.append(r.in);
  return out;
}

bool isScanMatchField(std::string_view field) {
  return std::find(std::begin(kScanMatchFields), std::end(kScanMatchFields), field) != std::end(kScanMatchFields);
}

}  // namespace wharf
