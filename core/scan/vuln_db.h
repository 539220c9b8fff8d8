// VulnDb: one generation of the vulnerability database in memory, indexed for matching,
// built from OSV advisories (the open schema osv.dev serves for Debian, Alpine, PyPI,
// npm, Go, Maven and more).
//
// Matching: each installed package is looked up by (ecosystem, name) as OSV names it:
//   deb     "Debian:<major>" / "Ubuntu:<VERSION_ID>" (advisories' "Ubuntu:<VERSION_ID>:LTS"
//           too), the source package and version
//   apk     "Alpine:v<major.minor>", the origin (o:) package
//   rpm     "Rocky Linux:<major>", "AlmaLinux:<major>", "Red Hat:<major>", ... the name
//   pypi    "PyPI", the PEP 503 name; npm "npm"; golang "Go" (stdlib as "stdlib");
//   maven   "Maven", "group:artifact"
// An advisory naming the ecosystem without a release ("Debian") applies to every release.
// Then the OSV ranges decide (osv_ranges.h), in the ecosystem's own version order.
//
// Severity: the highest CVSS v3 base score among the advisory's `severity` vectors (computed
// here from the vector, CVSS 3.0/3.1 formulas), else `database_specific.severity`
// (GitHub's CRITICAL/HIGH/MODERATE/LOW), else UNKNOWN.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/scan/layer_scan.h"
#include "core/scan/osv_ranges.h"
#include "shared/base/status.h"

namespace wharf {

enum class Severity : uint8_t { kUnknown, kLow, kMedium, kHigh, kCritical };
const char* severityName(Severity s);  // "UNKNOWN", "LOW", ...
std::optional<Severity> parseSeverity(std::string_view name);  // also MODERATE = MEDIUM
// The CVSS 3.x base score of a vector ("CVSS:3.1/AV:N/AC:L/..."), or nullopt.
std::optional<double> cvss3BaseScore(std::string_view vector);
Severity severityOfScore(double score);

struct Advisory {
  std::string id;
  std::vector<std::string> aliases;  // CVE ids first
  std::string summary;
  Severity severity = Severity::kUnknown;
  double score = 0;  // CVSS base score, 0 if none
  std::string modified;
};

struct Finding {
  std::string advisory;  // id
  std::vector<std::string> aliases;
  std::string package;    // the installed package's name
  std::string installed;  // its version
  std::string fixed;      // the first fixed version above it, "" if none known
  std::string ecosystem;
  std::string type;       // purl type of the package
  Severity severity = Severity::kUnknown;
  double score = 0;
  std::string layer;
  std::string summary;
  bool operator==(const Finding& o) const { return advisory == o.advisory && package == o.package && installed == o.installed && layer == o.layer; }
};

nlohmann::json findingToJson(const Finding& f);

// The OSV ecosystem an inventory's package is matched in ("" when none applies), and the
// name and version looked up there.
struct MatchKey {
  std::string ecosystem;
  std::string name;
  std::string version;
};
MatchKey matchKeyOf(const Package& p, const OsRelease& os);

class VulnDb {
 public:
  VulnDb() = default;

  // Adds one OSV advisory (its JSON text); kInvalidArgument naming what is wrong.
  // Entries for ecosystems with no version order here are kept but never match.
  Status add(std::string_view osv_json);
  size_t advisories() const { return advisories_.size(); }
  // The store's generation this database was loaded or imported as (what results say
  // they were matched with).
  uint64_t generation() const { return generation_; }
  void setGeneration(uint64_t generation) { generation_ = generation; }
  // Advisories per ecosystem base name ("Debian", "PyPI", ...).
  std::map<std::string, uint64_t> perEcosystem() const;

  // Findings for every package of the inventory, sorted by severity (worst first), then id.
  std::vector<Finding> match(const ImageInventory& inv) const;

 private:
  struct Affected {
    uint32_t advisory;
    std::string ecosystem;  // as written ("Debian:12" or "Debian")
    VersionScheme scheme;
    std::vector<OsvRange> ranges;
    std::vector<std::string> versions;
  };
  std::string fixedAbove(const Affected& a, std::string_view version) const;

  std::vector<Advisory> advisories_;
  // "<ecosystem base>\0<name>" -> affected entries
  std::unordered_map<std::string, std::vector<Affected>> index_;
  std::map<std::string, uint64_t> per_ecosystem_;
  uint64_t generation_ = 0;
};

}  // namespace wharf
