// The package databases and manifests the scanner understands, each a pure parser from
// a file's bytes to packages. Which member goes to which parser is decided by its path
// alone (detectorFor), so that every other member is skipped unread.
//
//   dpkg      var/lib/dpkg/status, and distroless var/lib/dpkg/status.d/<name>: the
//             stanzas of installed packages (not config-files or not-installed), with
//             Source: name and version (advisories name source packages)
//   apk       lib/apk/db/installed, usr/lib/apk/db/installed: P:, V:, A:, o: (origin)
//   rpm       rpmdb.sqlite, Berkeley DB Packages, NDB Packages.db (rpmdb.h: the
//             format is sniffed), under var/lib/rpm, usr/lib/sysimage/rpm, usr/share/rpm
//   os        etc/os-release, usr/lib/os-release
//   python    *.dist-info/METADATA, *.egg-info/PKG-INFO (Name:, Version:)
//   npm       node_modules/**/package.json, package-lock.json outside node_modules
//   go        executables with Go build info (go_buildinfo.h)
//   java      *.jar, *.war, *.ear, *.par (java_archive.h)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/scan/package.h"
#include "shared/base/status.h"

namespace wharf {

enum class Detector { kNone, kDpkg, kApk, kRpm, kOsRelease, kPython, kNpmPackage, kNpmLock, kJava };

// The detector for a regular file at path (normalised, no leading '/'), kNone for
// anything else. Go binaries are found by their content (an ELF with an exec bit).
Detector detectorFor(std::string_view path);
const char* detectorName(Detector d);

struct OsRelease {
  std::string id;          // "debian", "alpine", "ubuntu", "rhel", ...
  std::string version_id;  // "12", "3.18.4", "22.04"
  std::string pretty_name;
  std::string path;
  bool empty() const { return id.empty(); }
};

Result<std::vector<Package>> parseDpkgStatus(std::string_view text, const std::string& path);
Result<std::vector<Package>> parseApkInstalled(std::string_view text, const std::string& path);
OsRelease parseOsRelease(std::string_view text, const std::string& path);
// One package, or none when the file has no Name/Version.
Result<std::vector<Package>> parsePythonMetadata(std::string_view text, const std::string& path);
Result<std::vector<Package>> parseNpmPackageJson(std::string_view text, const std::string& path);
Result<std::vector<Package>> parseNpmLock(std::string_view text, const std::string& path);

// PEP 503: lower case, runs of -, _ and . as one -.
std::string normalisePythonName(std::string_view name);

}  // namespace wharf
