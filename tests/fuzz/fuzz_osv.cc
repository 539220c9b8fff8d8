// Fuzzes the vulnerability database's reader (advisories come from feeds and uploaded
// zips): VulnDb::add on the input as OSV JSON, then matching an inventory of packages
// whose names and versions are taken from the advisory's own affected entries and from
// the input. add() ends in OK or kInvalidArgument; match() never throws or crashes, and
// its findings name packages of the inventory.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/scan/vuln_db.h"
#include "shared/base/json_body.h"
#include "tests/fuzz/fuzz_support.h"

using namespace wharf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (256 << 10)) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!jsonNestedWithin(text, 32)) return 0;  // the importer's own first check
  VulnDb db;
  Status s = db.add(text);
  if (!s.isOk()) {
    FUZZ_CHECK(s.code() == Code::kInvalidArgument, s.message());
    return 0;
  }
  ImageInventory inv;
  inv.os.id = "debian";
  inv.os.version_id = "12";
  auto j = nlohmann::json::parse(text, nullptr, false);
  const char* types[] = {"deb", "apk", "rpm", "pypi", "npm", "golang", "maven"};
  const char* versions[] = {"0", "1.0", "2.36-9+deb12u1", "1:1.2.13.dfsg-1", "v1.2.3", "3.1.3-r0", "1.0.0a1", "~", ""};
  if (j.is_object() && j.contains("affected") && j["affected"].is_array()) {
    for (const auto& a : j["affected"]) {
      if (!a.is_object() || !a.contains("package") || !a["package"].is_object()) continue;
      std::string name = jsonStringOr(a["package"], "name");
      for (size_t t = 0; t < 7; ++t)
        for (const char* v : versions) {
          Package p;
          p.type = types[t];
          p.name = name;
          p.version = v;
          p.source_name = name;
          inv.packages.push_back(p);
        }
    }
  }
  for (const auto& f : db.match(inv)) {
    bool known = false;
    for (const auto& p : inv.packages) known = known || p.name == f.package;
    FUZZ_CHECK(known, f.package);
    (void)findingToJson(f).dump();
  }
  return 0;
}
