#include "core/scan/vuln_db.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

namespace wharf {

const char* severityName(Severity s) {
  switch (s) {
    case Severity::kUnknown: return "UNKNOWN";
    case Severity::kLow: return "LOW";
    case Severity::kMedium: return "MEDIUM";
    case Severity::kHigh: return "HIGH";
    case Severity::kCritical: return "CRITICAL";
  }
  return "UNKNOWN";
}

std::optional<Severity> parseSeverity(std::string_view name) {
  std::string up;
  for (char c : name) up += char(c >= 'a' && c <= 'z' ? c - 32 : c);
  if (up == "UNKNOWN") return Severity::kUnknown;
  if (up == "LOW") return Severity::kLow;
  if (up == "MEDIUM" || up == "MODERATE") return Severity::kMedium;
  if (up == "HIGH" || up == "IMPORTANT") return Severity::kHigh;
  if (up == "CRITICAL") return Severity::kCritical;
  return std::nullopt;
}

Severity severityOfScore(double score) {
  if (score >= 9.0) return Severity::kCritical;
  if (score >= 7.0) return Severity::kHigh;
  if (score >= 4.0) return Severity::kMedium;
  if (score > 0.0) return Severity::kLow;
  return Severity::kUnknown;
}

namespace {

// CVSS v3.1 Roundup: the smallest number with one decimal that is >= x, computed on
// integers so that 4.000000001 does not become 4.1 (specification, Appendix A).
// At most max bytes of s, not splitting a UTF-8 sequence (the JSON it goes into must
// stay valid UTF-8).
std::string utf8Prefix(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (uint8_t(s[n]) & 0xC0) == 0x80) --n;  // s[n] continues a sequence: cut before it
  return s.substr(0, n);
}

double roundUp1(double x) {
  long long i = std::llround(x * 100000.0);
  if (i % 10000 == 0) return double(i) / 100000.0;
  return (std::floor(double(i) / 10000.0) + 1) / 10.0;
}

}  // namespace

std::optional<double> cvss3BaseScore(std::string_view vector) {
  if (vector.substr(0, 9) != "CVSS:3.0/" && vector.substr(0, 9) != "CVSS:3.1/") return std::nullopt;
  std::map<std::string, std::string> m;
  size_t pos = 9;
  while (pos < vector.size()) {
    size_t slash = vector.find('/', pos);
    if (slash == std::string_view::npos) slash = vector.size();
    std::string_view part = vector.substr(pos, slash - pos);
    size_t colon = part.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    m[std::string(part.substr(0, colon))] = std::string(part.substr(colon + 1));
    pos = slash + 1;
  }
  auto pick = [&](const char* k, std::initializer_list<std::pair<const char*, double>> table) -> std::optional<double> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    for (const auto& [v, w] : table)
      if (it->second == v) return w;
    return std::nullopt;
  };
  auto scope = m.find("S");
  if (scope == m.end() || (scope->second != "U" && scope->second != "C")) return std::nullopt;
  bool changed = scope->second == "C";
  auto av = pick("AV", {{"N", 0.85}, {"A", 0.62}, {"L", 0.55}, {"P", 0.2}});
  auto ac = pick("AC", {{"L", 0.77}, {"H", 0.44}});
  auto pr = changed ? pick("PR", {{"N", 0.85}, {"L", 0.68}, {"H", 0.5}}) : pick("PR", {{"N", 0.85}, {"L", 0.62}, {"H", 0.27}});
  auto ui = pick("UI", {{"N", 0.85}, {"R", 0.62}});
  auto c = pick("C", {{"H", 0.56}, {"L", 0.22}, {"N", 0}});
  auto i = pick("I", {{"H", 0.56}, {"L", 0.22}, {"N", 0}});
  auto a = pick("A", {{"H", 0.56}, {"L", 0.22}, {"N", 0}});
  if (!av || !ac || !pr || !ui || !c || !i || !a) return std::nullopt;
  double iss = 1 - (1 - *c) * (1 - *i) * (1 - *a);
  double impact = changed ? 7.52 * (iss - 0.029) - 3.25 * std::pow(iss - 0.02, 15) : 6.42 * iss;
  double exploitability = 8.22 * *av * *ac * *pr * *ui;
  if (impact <= 0) return 0.0;
  return changed ? roundUp1(std::min(1.08 * (impact + exploitability), 10.0))
                 : roundUp1(std::min(impact + exploitability, 10.0));
}

nlohmann::json findingToJson(const Finding& f) {
  return {{"advisory", f.advisory}, {"aliases", f.aliases},     {"package", f.package},
          {"type", f.type},         {"installed", f.installed}, {"fixed", f.fixed.empty() ? nlohmann::json() : nlohmann::json(f.fixed)},
          {"ecosystem", f.ecosystem}, {"severity", severityName(f.severity)}, {"score", f.score},
          {"layer", f.layer},       {"summary", f.summary}};
}

MatchKey matchKeyOf(const Package& p, const OsRelease& os) {
  MatchKey k;
  auto major = [](const std::string& v) { return v.substr(0, v.find('.')); };
  auto majorMinor = [](const std::string& v) {
    auto d1 = v.find('.');
    if (d1 == std::string::npos) return v;
    return v.substr(0, v.find('.', d1 + 1));
  };
  k.name = p.name;
  k.version = p.version;
  if (p.type == "deb") {
    if (os.id == "debian" && !os.version_id.empty()) k.ecosystem = "Debian:" + major(os.version_id);
    else if (os.id == "ubuntu" && !os.version_id.empty()) k.ecosystem = "Ubuntu:" + os.version_id;
    if (!p.source_name.empty()) k.name = p.source_name;
    if (!p.source_version.empty()) k.version = p.source_version;
  } else if (p.type == "apk") {
    if (os.id == "alpine" && !os.version_id.empty()) k.ecosystem = "Alpine:v" + majorMinor(os.version_id);
    if (!p.source_name.empty()) k.name = p.source_name;
  } else if (p.type == "rpm") {
    std::string m = major(os.version_id);
    if (os.id == "rocky") k.ecosystem = "Rocky Linux:" + m;
    else if (os.id == "almalinux") k.ecosystem = "AlmaLinux:" + m;
    else if (os.id == "rhel" || os.id == "centos") k.ecosystem = "Red Hat:" + m;
    else if (os.id == "opensuse-leap") k.ecosystem = "openSUSE:Leap " + os.version_id;
    else if (os.id == "sles") k.ecosystem = "SUSE:Linux Enterprise Server " + m;
  } else if (p.type == "pypi") {
    k.ecosystem = "PyPI";
    k.name = normalisePythonName(p.name);
  } else if (p.type == "npm") {
    k.ecosystem = "npm";
  } else if (p.type == "golang") {
    k.ecosystem = "Go";
  } else if (p.type == "maven") {
    k.ecosystem = "Maven";
  }
  return k;
}

Status VulnDb::add(std::string_view osv_json) {
  auto j = nlohmann::json::parse(osv_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status(Code::kInvalidArgument, "not a JSON object");
  auto id = j.find("id");
  if (id == j.end() || !id->is_string() || id->get_ref<const std::string&>().empty())
    return Status(Code::kInvalidArgument, "an advisory without an id");
  if (j.contains("withdrawn")) return Status::ok();  // withdrawn advisories match nothing
  Advisory adv;
  adv.id = id->get<std::string>();
  if (auto al = j.find("aliases"); al != j.end() && al->is_array()) {
    for (const auto& a : *al)
      if (a.is_string()) adv.aliases.push_back(a.get<std::string>());
    std::stable_sort(adv.aliases.begin(), adv.aliases.end(), [](const std::string& a, const std::string& b) {
      return (a.rfind("CVE-", 0) == 0) > (b.rfind("CVE-", 0) == 0);
    });
  }
  if (auto s = j.find("summary"); s != j.end() && s->is_string()) adv.summary = utf8Prefix(s->get<std::string>(), 500);
  if (auto s = j.find("modified"); s != j.end() && s->is_string()) adv.modified = s->get<std::string>();
  auto scoreOf = [&](const nlohmann::json& sev) {
    if (!sev.is_array()) return;
    for (const auto& s : sev) {
      if (!s.is_object() || !s.contains("score") || !s["score"].is_string()) continue;
      if (auto score = cvss3BaseScore(s["score"].get<std::string>()); score && *score > adv.score) adv.score = *score;
    }
  };
  if (auto sev = j.find("severity"); sev != j.end()) scoreOf(*sev);
  if (adv.score > 0) adv.severity = severityOfScore(adv.score);
  auto namedSeverity = [&](const nlohmann::json& obj) {
    if (!obj.is_object()) return;
    auto s = obj.find("severity");
    if (s == obj.end() || !s->is_string()) return;
    if (auto parsed = parseSeverity(s->get<std::string>()); parsed && *parsed > adv.severity) adv.severity = *parsed;
  };
  if (adv.severity == Severity::kUnknown) {
    if (auto ds = j.find("database_specific"); ds != j.end()) namedSeverity(*ds);
  }

  auto affected = j.find("affected");
  if (affected == j.end() || !affected->is_array()) return Status(Code::kInvalidArgument, adv.id + ": no affected packages");
  std::vector<std::pair<std::string, Affected>> entries;
  for (const auto& a : *affected) {
    if (!a.is_object()) return Status(Code::kInvalidArgument, adv.id + ": an affected entry is not an object");
    auto pkg = a.find("package");
    if (pkg == a.end() || !pkg->is_object()) continue;  // GIT-only entries name no package
    auto eco_it = pkg->find("ecosystem");
    auto name_it = pkg->find("name");
    if ((eco_it != pkg->end() && !eco_it->is_string()) || (name_it != pkg->end() && !name_it->is_string()))
      return Status(Code::kInvalidArgument, adv.id + ": an affected package's ecosystem or name is not a string");
    std::string eco = eco_it != pkg->end() ? eco_it->get<std::string>() : "";
    std::string name = name_it != pkg->end() ? name_it->get<std::string>() : "";
    if (eco.empty() || name.empty()) continue;
    std::string base = eco.substr(0, eco.find(':'));
    auto scheme = versionSchemeOf(eco);
    if (!scheme.isOk()) continue;  // no version order for it here: kept out of the index
    Affected e{0, eco, *scheme, {}, {}};
    if (auto r = a.find("ranges"); r != a.end()) {
      auto ranges = parseOsvRanges(*r);
      if (!ranges.isOk()) return Status(Code::kInvalidArgument, adv.id + ": " + ranges.status().message());
      e.ranges = std::move(*ranges);
      for (auto& range : e.ranges) (void)prepareOsvRange(range, *scheme);  // a bad version: the range never matches
    }
    if (auto v = a.find("versions"); v != a.end() && v->is_array())
      for (const auto& s : *v)
        if (s.is_string()) e.versions.push_back(s.get<std::string>());
    if (adv.severity == Severity::kUnknown) {
      if (auto es = a.find("ecosystem_specific"); es != a.end()) namedSeverity(*es);
      if (auto ds = a.find("database_specific"); ds != a.end()) namedSeverity(*ds);
    }
    if (base == "PyPI") name = normalisePythonName(name);
    entries.emplace_back(base + std::string(1, '\0') + name, std::move(e));
  }
  std::set<std::string> bases;
  for (const auto& a : *affected)
    if (a.is_object() && a.contains("package") && a["package"].is_object()) {
      auto eco = a["package"].find("ecosystem");  // a string when present (checked above)
      if (eco != a["package"].end() && !eco->get_ref<const std::string&>().empty())
        bases.insert(eco->get<std::string>().substr(0, eco->get_ref<const std::string&>().find(':')));
    }
  for (const auto& b : bases) per_ecosystem_[b]++;
  uint32_t index = uint32_t(advisories_.size());
  advisories_.push_back(std::move(adv));
  for (auto& [key, e] : entries) {
    e.advisory = index;
    index_[key].push_back(std::move(e));
  }
  return Status::ok();
}

std::map<std::string, uint64_t> VulnDb::perEcosystem() const { return per_ecosystem_; }

std::string VulnDb::fixedAbove(const Affected& a, std::string_view version) const {
  std::string best;
  for (const auto& r : a.ranges) {
    VersionScheme scheme = r.type == OsvRange::Type::kSemver ? VersionScheme::kSemver : a.scheme;
    for (const auto& e : r.events) {
      if (e.kind != OsvEvent::Kind::kFixed) continue;
      auto above = compareVersions(scheme, e.version, version);
      if (!above.isOk() || *above <= 0) continue;
      if (best.empty()) {
        best = e.version;
      } else if (auto lower = compareVersions(scheme, e.version, best); lower.isOk() && *lower < 0) {
        best = e.version;
      }
    }
  }
  return best;
}

std::vector<Finding> VulnDb::match(const ImageInventory& inv) const {
  std::vector<Finding> out;
  std::set<std::tuple<uint32_t, std::string, std::string, std::string>> seen;
  for (const auto& p : inv.packages) {
    MatchKey k = matchKeyOf(p, inv.os);
    if (k.ecosystem.empty()) continue;
    std::string base = k.ecosystem.substr(0, k.ecosystem.find(':'));
    auto it = index_.find(base + std::string(1, '\0') + k.name);
    if (it == index_.end()) continue;
    for (const auto& a : it->second) {
      // OSV names Ubuntu's LTS releases "Ubuntu:22.04:LTS" (and others "Ubuntu:23.10").
      if (a.ecosystem != k.ecosystem && a.ecosystem != base &&
          !(base == "Ubuntu" && a.ecosystem == k.ecosystem + ":LTS"))
        continue;
      auto hit = osvAffects(a.ranges, a.versions, a.scheme, k.version);
      if (!hit.isOk() || !*hit) continue;
      if (!seen.emplace(a.advisory, p.name, p.version, p.layer).second) continue;
      const Advisory& adv = advisories_[a.advisory];
      Finding f;
      f.advisory = adv.id;
      f.aliases = adv.aliases;
      f.package = p.name;
      f.installed = p.version;
      f.fixed = fixedAbove(a, k.version);
      f.ecosystem = k.ecosystem;
      f.type = p.type;
      f.severity = adv.severity;
      f.score = adv.score;
      f.layer = p.layer;
      f.summary = adv.summary;
      out.push_back(std::move(f));
    }
  }
  std::sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) {
    return std::tie(b.severity, a.advisory, a.package) < std::tie(a.severity, b.advisory, b.package);
  });
  return out;
}

}  // namespace wharf
