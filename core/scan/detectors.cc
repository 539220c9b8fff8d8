#include "core/scan/detectors.h"

#include <set>

#include <nlohmann/json.hpp>

namespace wharf {

namespace {

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool startsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string_view baseName(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// RFC 822-style stanzas (dpkg, apk): calls fn(field, value) for each field of each
// stanza and end() after each stanza. Continuation lines (leading space or tab) are
// appended to the previous field's value only for the fields we keep, so they are ignored.
template <typename Field, typename End>
void forEachStanza(std::string_view text, char separator, Field field, End end) {
  bool in_stanza = false;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (line.empty()) {
      if (in_stanza) end();
      in_stanza = false;
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') continue;
    size_t colon = line.find(separator);
    if (colon == std::string_view::npos) continue;
    in_stanza = true;
    field(line.substr(0, colon), trim(line.substr(colon + 1)));
  }
  if (in_stanza) end();
}

// Whether a dpkg Status: value means the package's files are installed:
// "want flag state", with state neither not-installed nor config-files.
bool dpkgInstalled(std::string_view status) {
  if (status.empty()) return true;  // distroless status.d stanzas carry no Status
  auto last = status.rfind(' ');
  std::string_view state = last == std::string_view::npos ? status : status.substr(last + 1);
  return state != "not-installed" && state != "config-files";
}

}  // namespace

Detector detectorFor(std::string_view path) {
  std::string_view base = baseName(path);
  if (path == "var/lib/dpkg/status") return Detector::kDpkg;
  if (startsWith(path, "var/lib/dpkg/status.d/") && path.find('/', 22) == std::string_view::npos &&
      !endsWith(path, ".md5sums"))
    return Detector::kDpkg;
  if (path == "lib/apk/db/installed" || path == "usr/lib/apk/db/installed") return Detector::kApk;
  if (path == "etc/os-release" || path == "usr/lib/os-release") return Detector::kOsRelease;
  if (base == "rpmdb.sqlite" || base == "Packages" || base == "Packages.db") {
    std::string_view dir = path.substr(0, path.size() - base.size());
    if (dir == "var/lib/rpm/" || dir == "usr/lib/sysimage/rpm/" || dir == "usr/share/rpm/") return Detector::kRpm;
  }
  if ((base == "METADATA" && endsWith(path, ".dist-info/METADATA")) ||
      (base == "PKG-INFO" && endsWith(path, ".egg-info/PKG-INFO")))
    return Detector::kPython;
  if (base == "package.json") {
    // node_modules/<name>/package.json or node_modules/@scope/<name>/package.json
    std::string_view dir = path.substr(0, path.size() - base.size() - (path.size() > base.size() ? 1 : 0));
    auto s1 = dir.rfind('/');
    std::string_view parent = s1 == std::string_view::npos ? std::string_view() : dir.substr(0, s1);
    if (endsWith(parent, "node_modules") && (parent.size() == 12 || parent[parent.size() - 13] == '/'))
      return Detector::kNpmPackage;
    auto s2 = parent.rfind('/');
    std::string_view scope = s2 == std::string_view::npos ? parent : parent.substr(s2 + 1);
    std::string_view grand = s2 == std::string_view::npos ? std::string_view() : parent.substr(0, s2);
    if (startsWith(scope, "@") && endsWith(grand, "node_modules") && (grand.size() == 12 || grand[grand.size() - 13] == '/'))
      return Detector::kNpmPackage;
    return Detector::kNone;
  }
  if (base == "package-lock.json" && path.find("node_modules/") == std::string_view::npos) return Detector::kNpmLock;
  if (endsWith(base, ".jar") || endsWith(base, ".war") || endsWith(base, ".ear") || endsWith(base, ".par"))
    return Detector::kJava;
  return Detector::kNone;
}

const char* detectorName(Detector d) {
  switch (d) {
    case Detector::kNone: return "none";
    case Detector::kDpkg: return "dpkg";
    case Detector::kApk: return "apk";
    case Detector::kRpm: return "rpm";
    case Detector::kOsRelease: return "os-release";
    case Detector::kPython: return "python";
    case Detector::kNpmPackage: return "npm";
    case Detector::kNpmLock: return "npm-lock";
    case Detector::kJava: return "java";
  }
  return "none";
}

Result<std::vector<Package>> parseDpkgStatus(std::string_view text, const std::string& path) {
  std::vector<Package> out;
  Package p;
  std::string status;
  forEachStanza(
      text, ':',
      [&](std::string_view k, std::string_view v) {
        if (k == "Package") p.name = v;
        else if (k == "Version") p.version = v;
        else if (k == "Architecture") p.arch = v;
        else if (k == "Status") status = v;
        else if (k == "Source") {
          // "glibc" or "bash (5.2.15-2)"
          auto paren = v.find('(');
          if (paren == std::string_view::npos) {
            p.source_name = v;
          } else {
            p.source_name = trim(v.substr(0, paren));
            auto close = v.find(')', paren);
            if (close != std::string_view::npos) p.source_version = trim(v.substr(paren + 1, close - paren - 1));
          }
        }
      },
      [&]() {
        if (!p.name.empty() && !p.version.empty() && dpkgInstalled(status)) {
          p.type = "deb";
          p.path = path;
          if (p.source_name == p.name) p.source_name.clear();
          if (p.source_version == p.version) p.source_version.clear();
          out.push_back(std::move(p));
        }
        p = Package();
        status.clear();
      });
  return out;
}

Result<std::vector<Package>> parseApkInstalled(std::string_view text, const std::string& path) {
  std::vector<Package> out;
  Package p;
  forEachStanza(
      text, ':',
      [&](std::string_view k, std::string_view v) {
        if (k.size() != 1) return;
        switch (k[0]) {
          case 'P': p.name = v; break;
          case 'V': p.version = v; break;
          case 'A': p.arch = v; break;
          case 'o': p.source_name = v; break;
          default: break;
        }
      },
      [&]() {
        if (!p.name.empty() && !p.version.empty()) {
          p.type = "apk";
          p.path = path;
          if (p.source_name == p.name) p.source_name.clear();
          out.push_back(std::move(p));
        }
        p = Package();
      });
  return out;
}

OsRelease parseOsRelease(std::string_view text, const std::string& path) {
  OsRelease os;
  os.path = path;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = trim(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = line.substr(0, eq);
    std::string_view raw = line.substr(eq + 1);
    std::string value;
    if (!raw.empty() && (raw[0] == '"' || raw[0] == '\'')) {
      char q = raw[0];
      for (size_t i = 1; i < raw.size() && raw[i] != q; ++i) {
        if (raw[i] == '\\' && q == '"' && i + 1 < raw.size()) ++i;
        value += raw[i];
      }
    } else {
      value = raw;
    }
    if (key == "ID") os.id = value;
    else if (key == "VERSION_ID") os.version_id = value;
    else if (key == "PRETTY_NAME") os.pretty_name = value;
  }
  return os;
}

std::string normalisePythonName(std::string_view name) {
  std::string out;
  bool sep = false;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      sep = true;
      continue;
    }
    if (sep && !out.empty()) out += '-';
    sep = false;
    out += char(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return out;
}

Result<std::vector<Package>> parsePythonMetadata(std::string_view text, const std::string& path) {
  Package p;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the headers end at the first blank line; the body follows
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || line[0] == ' ' || line[0] == '\t') continue;
    std::string_view k = line.substr(0, colon);
    if (k == "Name") p.name = normalisePythonName(trim(line.substr(colon + 1)));
    else if (k == "Version") p.version = trim(line.substr(colon + 1));
  }
  if (p.name.empty() || p.version.empty()) return std::vector<Package>{};
  p.type = "pypi";
  p.path = path;
  return std::vector<Package>{std::move(p)};
}

Result<std::vector<Package>> parseNpmPackageJson(std::string_view text, const std::string& path) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status(Code::kInvalidArgument, path + ": not a JSON object");
  auto name = j.find("name");
  auto version = j.find("version");
  if (name == j.end() || version == j.end() || !name->is_string() || !version->is_string())
    return std::vector<Package>{};
  Package p;
  p.type = "npm";
  p.name = name->get<std::string>();
  p.version = version->get<std::string>();
  p.path = path;
  return std::vector<Package>{std::move(p)};
}

Result<std::vector<Package>> parseNpmLock(std::string_view text, const std::string& path) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status(Code::kInvalidArgument, path + ": not a JSON object");
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<Package> out;
  auto add = [&](std::string name, const nlohmann::json& entry) {
    if (!entry.is_object()) return;
    auto v = entry.find("version");
    if (v == entry.end() || !v->is_string()) return;
    if (auto link = entry.find("link"); link != entry.end() && link->is_boolean() && link->get<bool>()) return;
    std::string version = v->get<std::string>();
    // v1 lockfiles write aliases and git dependencies as versions: keep real versions only.
    if (version.find(':') != std::string::npos || version.find('/') != std::string::npos) return;
    if (!seen.emplace(name, version).second) return;
    Package p;
    p.type = "npm";
    p.name = std::move(name);
    p.version = std::move(version);
    p.path = path;
    out.push_back(std::move(p));
  };
  if (auto pk = j.find("packages"); pk != j.end() && pk->is_object()) {
    // lockfileVersion 2 and 3: "node_modules/a/node_modules/@s/b": {...}; "" is the project.
    for (auto it = pk->begin(); it != pk->end(); ++it) {
      const std::string& key = it.key();
      auto at = key.rfind("node_modules/");
      if (at == std::string::npos) continue;
      add(key.substr(at + 13), it.value());
    }
    return out;
  }
  // lockfileVersion 1: nested "dependencies", walked with an explicit stack.
  std::vector<const nlohmann::json*> stack;
  if (auto d = j.find("dependencies"); d != j.end() && d->is_object()) stack.push_back(&*d);
  while (!stack.empty()) {
    const nlohmann::json* deps = stack.back();
    stack.pop_back();
    for (auto it = deps->begin(); it != deps->end(); ++it) {
      add(it.key(), it.value());
      if (it.value().is_object()) {
        if (auto d = it.value().find("dependencies"); d != it.value().end() && d->is_object()) stack.push_back(&*d);
      }
    }
  }
  return out;
}

nlohmann::json packageToJson(const Package& p) {
  nlohmann::json j = {{"type", p.type}, {"name", p.name}, {"version", p.version}, {"path", p.path}};
  if (!p.source_name.empty()) j["source"] = p.source_name;
  if (!p.source_version.empty()) j["source_version"] = p.source_version;
  if (!p.arch.empty()) j["arch"] = p.arch;
  if (!p.layer.empty()) j["layer"] = p.layer;
  return j;
}

Result<Package> packageFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Status(Code::kCorruption, "package: not an object");
  auto str = [&](const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  Package p;
  p.type = str("type");
  p.name = str("name");
  p.version = str("version");
  p.path = str("path");
  p.source_name = str("source");
  p.source_version = str("source_version");
  p.arch = str("arch");
  p.layer = str("layer");
  if (p.type.empty() || p.name.empty()) return Status(Code::kCorruption, "package without type or name");
  return p;
}

}  // namespace wharf
