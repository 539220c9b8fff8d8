#include "core/scan/layer_scan.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "core/scan/go_buildinfo.h"
#include "core/scan/java_archive.h"
#include "core/scan/rpmdb.h"

namespace wharf {

namespace {

nlohmann::json stringsJson(const std::vector<std::string>& v) { return nlohmann::json(v); }

// Fields of a stored document, read around a wrong type rather than thrown at.
std::string stringOf(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
uint64_t countOf(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  return it->get<int64_t>() > 0 ? uint64_t(it->get<int64_t>()) : 0;
}

std::vector<std::string> stringsFrom(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& s : *it)
    if (s.is_string()) out.push_back(s.get<std::string>());
  return out;
}

// Whether path is dir itself or under it ("" is the root: everything).
bool under(const std::string& path, const std::string& dir) {
  if (dir.empty()) return true;
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

}  // namespace

nlohmann::json layerScanToJson(const LayerScan& scan) {
  nlohmann::json packages = nlohmann::json::array();
  for (const auto& p : scan.packages) packages.push_back(packageToJson(p));
  nlohmann::json os = nlohmann::json::array();
  for (const auto& o : scan.os)
    os.push_back({{"id", o.id}, {"version_id", o.version_id}, {"pretty_name", o.pretty_name}, {"path", o.path}});
  return {{"version", kLayerScanVersion},
          {"packages", std::move(packages)},
          {"recorded", stringsJson(scan.recorded)},
          {"os", std::move(os)},
          {"whiteouts", stringsJson(scan.whiteouts)},
          {"opaque", stringsJson(scan.opaque)},
          {"warnings", stringsJson(scan.warnings)},
          {"members", scan.stats.members},
          {"compressed_bytes", scan.stats.compressed_bytes},
          {"expanded_bytes", scan.stats.expanded_bytes}};
}

Result<LayerScan> layerScanFromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("version") || !j["version"].is_number_integer() ||
      j["version"].get<int64_t>() != kLayerScanVersion)
    return Status(Code::kNotFound, "layer scan of another scanner version");
  LayerScan scan;
  if (auto it = j.find("packages"); it != j.end() && it->is_array()) {
    for (const auto& pj : *it) {
      auto p = packageFromJson(pj);
      if (!p.isOk()) return p.status();
      scan.packages.push_back(std::move(*p));
    }
  }
  if (auto it = j.find("os"); it != j.end() && it->is_array()) {
    for (const auto& oj : *it) {
      if (!oj.is_object()) continue;
      OsRelease o;
      o.id = stringOf(oj, "id");
      o.version_id = stringOf(oj, "version_id");
      o.pretty_name = stringOf(oj, "pretty_name");
      o.path = stringOf(oj, "path");
      scan.os.push_back(std::move(o));
    }
  }
  scan.recorded = stringsFrom(j, "recorded");
  scan.whiteouts = stringsFrom(j, "whiteouts");
  scan.opaque = stringsFrom(j, "opaque");
  scan.warnings = stringsFrom(j, "warnings");
  scan.stats.members = countOf(j, "members");
  scan.stats.compressed_bytes = countOf(j, "compressed_bytes");
  scan.stats.expanded_bytes = countOf(j, "expanded_bytes");
  return scan;
}

Result<LayerScan> scanLayer(const ByteSource& source, uint64_t compressed_size, const ScanLimits& limits) {
  LayerScan scan;
  Status stream_error;
  auto visit = [&](const LayerEntry& e, const ChunkReader& content) -> Status {
    switch (e.type) {
      case LayerEntry::Type::kWhiteout: scan.whiteouts.push_back(e.path); return Status::ok();
      case LayerEntry::Type::kOpaque: scan.opaque.push_back(e.path); return Status::ok();
      case LayerEntry::Type::kFile: break;
      default: return Status::ok();
    }
    // Errors of the stream itself end the layer; a detector's own complaint does not.
    ChunkReader guarded = [&]() -> Result<std::string_view> {
      auto r = content();
      if (!r.isOk()) stream_error = r.status();
      return r;
    };
    Detector d = detectorFor(e.path);
    Result<std::vector<Package>> found = std::vector<Package>{};
    bool recorded = true;
    if (d == Detector::kNone) {
      // Go binaries are found by what they are: an executable ELF file.
      if ((e.mode & 0111) == 0 || e.size < 64) return Status::ok();
      auto first = guarded();
      if (!first.isOk()) return first.status();
      // The member's first chunk may be shorter than the magic (chunks end where the
      // decompressed buffer does): gather 4 bytes, copying only then.
      std::string_view head = *first;
      std::string gathered;
      if (head.size() < 4 && !head.empty()) {
        gathered.assign(head);
        while (gathered.size() < 4) {
          auto more = guarded();
          if (!more.isOk()) return more.status();
          if (more->empty()) break;
          gathered.append(*more);
        }
        head = gathered;
      }
      if (head.substr(0, 4) != std::string_view("\x7f" "ELF", 4)) return Status::ok();
      bool gave_first = false;
      ChunkReader replay = [&]() -> Result<std::string_view> {
        if (!gave_first) {
          gave_first = true;
          return head;
        }
        return guarded();
      };
      found = readGoBuildInfo(replay, e.path);
      recorded = found.isOk() && !found->empty();
    } else if (d == Detector::kJava) {
      found = readJavaArchive(guarded, e.path);
    } else if (d == Detector::kOsRelease) {
      auto text = readAllContent(guarded, limits.max_manifest_bytes);
      if (text.isOk()) {
        scan.os.push_back(parseOsRelease(*text, e.path));
        return Status::ok();
      }
      found = text.status();
    } else {
      size_t limit = d == Detector::kRpm ? limits.max_database_bytes : limits.max_manifest_bytes;
      auto text = readAllContent(guarded, limit);
      if (!text.isOk()) {
        found = text.status();
      } else {
        switch (d) {
          case Detector::kDpkg: found = parseDpkgStatus(*text, e.path); break;
          case Detector::kApk: found = parseApkInstalled(*text, e.path); break;
          case Detector::kRpm: found = readRpmDatabase(*text, e.path); break;
          case Detector::kPython: found = parsePythonMetadata(*text, e.path); break;
          case Detector::kNpmPackage: found = parseNpmPackageJson(*text, e.path); break;
          case Detector::kNpmLock: found = parseNpmLock(*text, e.path); break;
          default: break;
        }
      }
    }
    if (!stream_error.isOk()) return stream_error;
    if (!found.isOk()) {
      scan.warnings.push_back(e.path + " (" + detectorName(d == Detector::kNone ? Detector::kNone : d) +
                              "): " + found.status().message());
      return Status::ok();
    }
    if (recorded) scan.recorded.push_back(e.path);
    for (auto& p : *found) scan.packages.push_back(std::move(p));
    return Status::ok();
  };
  auto stats = walkLayer(source, compressed_size, limits.layer, visit);
  if (!stats.isOk()) return stats.status();
  scan.stats = *stats;
  return scan;
}

ImageInventory stackLayers(const std::vector<StackedLayer>& layers) {
  struct Recording {
    std::vector<Package> packages;
  };
  std::map<std::string, Recording> files;  // recording path -> what it lists now
  std::map<std::string, OsRelease> os;
  for (const auto& layer : layers) {
    const LayerScan& s = *layer.scan;
    auto hide = [&](auto pred) {
      for (auto it = files.begin(); it != files.end();) it = pred(it->first) ? files.erase(it) : std::next(it);
      for (auto it = os.begin(); it != os.end();) it = pred(it->first) ? os.erase(it) : std::next(it);
    };
    for (const auto& dir : s.opaque) hide([&](const std::string& p) { return under(p, dir) && p != dir; });
    for (const auto& w : s.whiteouts) hide([&](const std::string& p) { return under(p, w); });

    std::map<std::string, std::vector<Package>> mine;
    for (const auto& path : s.recorded) mine[path];
    for (const auto& p : s.packages) mine[p.path].push_back(p);
    for (auto& [path, pkgs] : mine) {
      // A package the same file already listed keeps the layer that introduced it.
      std::map<std::tuple<std::string, std::string, std::string>, std::string> before;
      if (auto old = files.find(path); old != files.end())
        for (const auto& p : old->second.packages) before[{p.name, p.version, p.arch}] = p.layer;
      for (auto& p : pkgs) {
        auto b = before.find({p.name, p.version, p.arch});
        p.layer = b != before.end() ? b->second : layer.digest;
      }
      files[path].packages = std::move(pkgs);
    }
    for (const auto& o : s.os) os[o.path] = o;
  }
  ImageInventory inv;
  for (auto& [path, rec] : files)
    for (auto& p : rec.packages) inv.packages.push_back(std::move(p));
  std::sort(inv.packages.begin(), inv.packages.end(), [](const Package& a, const Package& b) {
    return std::tie(a.type, a.name, a.version, a.path) < std::tie(b.type, b.name, b.version, b.path);
  });
  if (auto it = os.find("etc/os-release"); it != os.end()) inv.os = it->second;
  else if (auto it2 = os.find("usr/lib/os-release"); it2 != os.end()) inv.os = it2->second;
  return inv;
}

}  // namespace wharf
