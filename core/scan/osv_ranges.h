// OSV's affected ranges, evaluated as the OSV schema defines them: whether an installed
// version of a package is affected by an advisory.
//
// A range is a list of events, each introduced, fixed, last_affected or limit. The events
// are ordered by version (introduced "0" before everything); walking them, an
// `introduced` at or below the version makes it affected, a `fixed` at or below it (or a
// `last_affected` below it) makes it unaffected again; a `limit` at or below it excludes
// it from the range. SEMVER ranges order versions as SemVer does (a leading v allowed:
// Go advisories write "1.2.3" for module version v1.2.3); ECOSYSTEM ranges as the
// package's ecosystem does (versionSchemeOf). GIT ranges name commits, which no
// installed package records: they never match. An exact `versions` list is matched too.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/scan/versions.h"
#include "shared/base/status.h"

namespace wharf {

struct OsvEvent {
  enum class Kind { kIntroduced, kFixed, kLastAffected, kLimit };
  Kind kind;
  std::string version;
};

struct OsvRange {
  enum class Type { kSemver, kEcosystem, kGit };
  Type type;
  std::vector<OsvEvent> events;
  // Set by prepareOsvRange: events checked and in version order, so that evaluating the
  // range (once per installed package, for every image) only compares.
  bool prepared = false;
};

// affected[].ranges of an OSV entry; refuses what the schema does not allow (an event
// with no or two kinds, an unknown type), naming it.
Result<std::vector<OsvRange>> parseOsvRanges(const nlohmann::json& ranges);

// The version order of an OSV ecosystem: "Debian:12" and "Ubuntu:22.04" dpkg, "Alpine:v3.18"
// apk, Red Hat, Rocky Linux, AlmaLinux, openSUSE and SUSE rpm, "npm" and "crates.io"
// semver, "Go" go; kNotFound for ecosystems not supported yet (PyPI, Maven, ...).
Result<VersionScheme> versionSchemeOf(std::string_view ecosystem);

// Checks every event's version in the range's scheme and sorts the events (kept, as
// parsed, when it fails: osvRangeIncludes then reports the bad version).
Status prepareOsvRange(OsvRange& range, VersionScheme ecosystem);

// Whether version is in the range (ecosystem: the scheme of ECOSYSTEM ranges).
Result<bool> osvRangeIncludes(const OsvRange& range, VersionScheme ecosystem, std::string_view version);
// Whether version is affected: in one of the ranges, or listed in versions.
Result<bool> osvAffects(const std::vector<OsvRange>& ranges, const std::vector<std::string>& versions,
                        VersionScheme ecosystem, std::string_view version);

}  // namespace wharf
