// wharfctl's scan and vulndb families.
#include <cstdio>
#include <fstream>

#include "core/cli/cli.h"
#include "shared/http/url.h"

namespace wharf::cli {

const std::map<std::string, std::string> kScanHelp = {
    {"", R"(Usage: wharfctl scan COMMAND ...

  show REPO:TAG|REPO@DIGEST [--packages] [--all]
                       the scan of an image: OS, findings (worst first), counts; --packages
                       lists the software; an index shows each platform
  run REPO:TAG|REPO@DIGEST [-f]
                       scan it now (needs push access); -f follows the job (administrators)
  sbom REPO:TAG|REPO@DIGEST [--format spdx|cyclonedx] [-o FILE]
                       the software list as SPDX 2.3 or CycloneDX 1.5 JSON

wharfctl scan COMMAND --help shows one command. The database: wharfctl vulndb --help.
)"},
    {"show", R"(Usage: wharfctl scan show REPO:TAG|REPO@DIGEST [--packages] [--all] [--json]

Shows the stored scan of the image: its status, OS, the database generation it was
matched with (and whether that database is stale), counts per severity and the findings,
worst first (the first 50 unless --all): advisory, package, installed and fixed versions,
and the layer that brought the package. --packages lists the packages instead.
)"},
    {"run", R"(Usage: wharfctl scan run REPO:TAG|REPO@DIGEST [-f]

Submits a scan job for the image (its layers are read only if no earlier scan read them)
and prints the job id; -f follows its log (the jobs API: administrators).
)"},
    {"sbom", R"(Usage: wharfctl scan sbom REPO:TAG|REPO@DIGEST [--format spdx|cyclonedx] [-o FILE]

Writes the image's software list as SPDX 2.3 JSON (the default) or CycloneDX 1.5 JSON to
FILE, or to standard output. An index has none: ask for one of its images (scan show
lists their digests).
)"},
};

const std::map<std::string, std::string> kVulnDbHelp = {
    {"", R"(Usage: wharfctl vulndb COMMAND ...

  show                 the database: generation, when updated, age, advisories per
                       ecosystem, sources
  import FILE.zip [-f] import a zip of OSV JSON files (administrators; for sites without
                       internet: download e.g. https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip
                       elsewhere and bring it); -f follows the import job
  update [-f]          fetch the configured sources now (the vulndb-update job)

wharfctl vulndb COMMAND --help shows one command.
)"},
    {"show", R"(Usage: wharfctl vulndb show [--json]

Shows the current database generation, when it was updated and last confirmed current,
whether it is stale (older than the core's vulndb_max_age), the number of advisories per
ecosystem, and the sources with when each was imported.
)"},
    {"import", R"(Usage: wharfctl vulndb import FILE.zip [-f]

Uploads FILE.zip (OSV JSON files, as osv.dev publishes them per ecosystem) and starts a
vulndb-import job. The new generation replaces the previous upload's advisories and is
merged with the configured online sources; the switch happens only once the whole file
parsed. Every stored image is then matched again. -f follows the job's log.
)"},
    {"update", R"(Usage: wharfctl vulndb update [-f]

Starts the vulndb-update job now: each configured source is fetched if it changed
(ETag, If-Modified-Since) and imported. -f follows its log.
)"},
};

namespace {

struct ImageRef {
  std::string repo, reference;
};

ImageRef parseImageRef(const std::string& s) {
  ImageRef r;
  auto at = s.find('@');
  if (at != std::string::npos) {
    r.repo = s.substr(0, at);
    r.reference = s.substr(at + 1);
  } else {
    auto colon = s.rfind(':');
    auto slash = s.rfind('/');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
      r.repo = s.substr(0, colon);
      r.reference = s.substr(colon + 1);
    } else {
      r.repo = s;
      r.reference = "latest";
    }
  }
  if (r.repo.empty() || r.reference.empty()) die("expected REPO:TAG or REPO@DIGEST, got \"" + s + "\"", 2);
  return r;
}

std::string scanPath(const ImageRef& r, const char* what) {
  return "/repositories/" + r.repo + "/manifests/" + percentEncode(r.reference) + "/" + what;
}

std::string shortDigest(const json& v) {
  std::string d = cell(v);
  auto colon = d.find(':');
  return colon == std::string::npos ? d : d.substr(colon + 1, 12);
}

void printCounts(const json& counts) {
  std::cout << "findings:";
  for (const char* s : {"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"})
    std::cout << " " << s << " " << counts.value(s, 0);
  std::cout << "\n";
}

void printImage(const json& r, bool packages, bool all) {
  std::cout << "status: " << r.value("status", "") << "\n";
  if (r.contains("error")) std::cout << "error: " << r.value("error", "") << "\n";
  if (r.value("status", "") != "completed") return;
  if (r.contains("os") && r["os"].is_object()) std::cout << "os: " << r["os"].value("pretty_name", r["os"].value("id", "")) << "\n";
  std::cout << "packages: " << r.value("packages", json::array()).size() << "\n";
  std::cout << "scanned: " << localTime(r.value("scanned_at", json())) << "\n";
  printCounts(r.value("counts", json::object()));
  if (packages) {
    printTable(r.value("packages", json::array()),
               {field("TYPE", "type"), field("NAME", "name"), field("VERSION", "version"), field("SOURCE", "source"),
                Column{"LAYER", [](const json& p) { return shortDigest(p.value("layer", json())); }}, field("PURL", "purl")});
    return;
  }
  json findings = r.value("findings", json::array());
  json shown = json::array();
  for (const auto& f : findings) {
    if (!all && shown.size() >= 50) break;
    shown.push_back(f);
  }
  printTable(shown, {field("SEVERITY", "severity"), field("ADVISORY", "advisory"),
                     Column{"ALIASES", [](const json& f) {
                              std::string a = cell(f.value("aliases", json::array()));
                              return a.empty() ? "-" : a;
                            }},
                     field("PACKAGE", "package"), field("INSTALLED", "installed"), field("FIXED", "fixed"),
                     Column{"LAYER", [](const json& f) { return shortDigest(f.value("layer", json())); }}});
  if (shown.size() < findings.size())
    std::cout << "(" << findings.size() - shown.size() << " more: --all shows them)\n";
}

}  // namespace

int scan(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  if (sub != "show" && sub != "run" && sub != "sbom") die("unknown scan command (see wharfctl scan --help)", 2);
  ImageRef ref = parseImageRef(need(a, 2, "REPO:TAG or REPO@DIGEST"));
  if (sub == "show") {
    json r = api.call("GET", scanPath(ref, "scan"));
    if (js) return printJson(r), 0;
    std::cout << ref.repo << "@" << r.value("digest", "") << "\n";
    if (r.contains("db") && r["db"].is_object()) {
      std::cout << "database: generation " << cell(r["db"].value("generation", json()))
                << (r["db"].value("stale", false) ? " (STALE: update the vulnerability database)" : "") << "\n";
    }
    if (r.value("status", "") == "not_scanned") {
      std::cout << "status: not scanned (wharfctl scan run " << ref.repo << "@" << r.value("digest", "") << ")\n";
      return 0;
    }
    if (r.value("index", false)) {
      printCounts(r.value("counts", json::object()));
      for (const auto& c : r.value("manifests", json::array())) {
        json p = c.contains("platform") && c["platform"].is_object() ? c["platform"] : json::object();
        std::cout << "\n== " << p.value("os", "?") << "/" << p.value("architecture", "?")
                  << (p.contains("variant") ? "/" + p.value("variant", "") : "") << "  " << c.value("digest", "") << "\n";
        printImage(c, a.has("packages"), a.has("all"));
      }
      return 0;
    }
    printImage(r, a.has("packages"), a.has("all"));
    return 0;
  }
  if (sub == "run") {
    json r = api.call("POST", scanPath(ref, "scan"));
    if (js && !(a.has("f") || a.has("follow"))) return printJson(r), 0;
    std::string id = r.value("job", "");
    std::cerr << "Scan of " << ref.repo << "@" << r.value("digest", "") << ": job " << id << " queued.\n";
    if (!(a.has("f") || a.has("follow"))) {
      std::cout << id << "\n";
      return 0;
    }
    return jobLog(api, id, true, js);
  }
  std::string format = a.get("format", "spdx");
  std::string body = api.text("GET", scanPath(ref, "sbom") + "?format=" + percentEncode(format));
  if (a.has("o")) {
    std::ofstream out(a.get("o"), std::ios::binary | std::ios::trunc);
    out << body;
    if (!out) die("cannot write " + a.get("o"));
    std::cerr << "Wrote " << a.get("o") << "\n";
  } else {
    std::cout << body;
  }
  return 0;
}

int vulndb(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  bool follow = a.has("f") || a.has("follow");
  if (sub == "show") {
    json r = api.call("GET", "/vulndb");
    if (js) return printJson(r), 0;
    std::cout << "generation: " << cell(r.value("generation", json())) << "\n"
              << "updated: " << localTime(r.value("updated_at", json()), "never") << "\n"
              << "confirmed current: " << localTime(r.value("checked_at", json()), "never") << "\n"
              << "stale: " << (r.value("stale", true) ? "yes" : "no") << "\n"
              << "advisories: " << cell(r.value("advisories", json())) << "\n";
    json eco = json::array();
    json ecosystems = r.value("ecosystems", json::object());
    for (const auto& [k, v] : ecosystems.items()) eco.push_back({{"ecosystem", k}, {"advisories", v}});
    printTable(eco, {field("ECOSYSTEM", "ecosystem"), field("ADVISORIES", "advisories")});
    json src = json::array();
    json sources = r.value("sources", json::object());
    for (const auto& [k, v] : sources.items())
      src.push_back({{"source", k}, {"imported_at", v.value("imported_at", json())}});
    if (!src.empty()) printTable(src, {field("SOURCE", "source"), timeField("IMPORTED", "imported_at")});
    for (const auto& s : r.value("sources_configured", json::array())) std::cout << "configured source: " << cell(s) << "\n";
    return 0;
  }
  std::string id;
  if (sub == "import") {
    json r = api.upload("/vulndb", need(a, 2, "FILE.zip"), "application/zip");
    id = r.value("job", "");
    std::cerr << "Uploaded " << cell(r.value("bytes", json())) << " bytes; import job " << id << " queued.\n";
  } else if (sub == "update") {
    json r = api.call("POST", "/jobs", {{"kind", "vulndb-update"}, {"params", json::object()}});
    id = r.value("id", "");
    std::cerr << "Update job " << id << " queued.\n";
  } else {
    die("unknown vulndb command (see wharfctl vulndb --help)", 2);
  }
  if (!follow) {
    std::cout << id << "\n";
    return 0;
  }
  return jobLog(api, id, true, js);
}

}  // namespace wharf::cli
