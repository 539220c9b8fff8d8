// Version ordering as each ecosystem's own package manager orders versions: the basis of
// every vulnerability match (an OSV range says "introduced in X, fixed in Y", and the
// installed version is placed between them with its ecosystem's rules, never as text).
//
//   dpkg    Debian and Ubuntu: [epoch:]upstream[-revision], compared as dpkg does
//           (lib/dpkg/version.c): epochs numerically, then upstream and revision in
//           alternating non-digit and digit runs, where letters sort before other
//           characters and `~` before everything, even the end (1.0~rc1 < 1.0).
//   rpm     Red Hat, SUSE: [epoch:]version[-release], each part with rpmvercmp (runs of
//           letters or digits, separators all equal, numbers beat letters, `~` sorts
//           before everything and `^` after the end); a release is compared only when both
//           sides have one (a range bound without a release matches every release).
//   apk     Alpine: as apk-tools orders them (version.c): dotted numbers (a component
//           with leading zeros compares as a fraction), one letter, suffixes
//           _alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p, each
//           with a number, then -rN; what apk takes as invalid keeps apk's order too.
//   semver  npm, crates and OSV's SEMVER ranges: SemVer 2.0.0 precedence (pre-releases
//           before their release, identifiers numeric or ASCII, build metadata ignored);
//           a leading `v` is accepted.
//   go      Go modules: semver with the `v`; pseudo-versions are pre-releases of the
//           next version, so they order between releases as `go` orders them, and
//           `+incompatible` is build metadata.
//   pep440  PyPI: as pip orders them (packaging.version.Version, PEP 440):
//           [N!]release[{a|b|rc}N][.postN][.devN][+local], with the spellings PEP 440
//           normalises (alpha, beta, c, pre, preview; -N, rev, r; `-`, `_` or none for
//           `.`; an implicit 0; a leading `v`; any case); trailing zeros of the release do
//           not count (1.0 == 1.0.0), and 1.0.dev0 < 1.0a1.dev0 < 1.0a1 < 1.0 <
//           1.0.post0.dev0 < 1.0.post0 < 1.0.post0+local, local segments compared one by
//           one with numbers after words.
//   maven   Maven: as ComparableVersion of Maven 3.9 orders them: items at `.`, `-` and
//           changes between digits and letters, a `-` opening a sub-list; numbers as
//           numbers; qualifiers alpha (a1) < beta (b1) < milestone (m1) < rc (cr) <
//           snapshot < "" (ga, final, release) < sp < any other word, alphabetically;
//           null items at the end dropped (1 == 1.0.0 == 1-0 == 1-ga).
//
// dpkg, rpm and maven order any string, as their tools do (an odd version still has a
// place; maven refuses only versions over 256 characters, as Maven 4 does); semver, go and
// pep440 refuse what is not a version (kInvalidArgument), so that a malformed advisory or
// package never matches by accident.
#pragma once

#include <string_view>

#include "shared/base/status.h"

namespace wharf {

enum class VersionScheme { kDpkg, kRpm, kApk, kSemver, kGo, kPep440, kMaven };

// The scheme's name ("dpkg", "rpm", "apk", "semver", "go", "pep440", "maven") and back.
const char* versionSchemeName(VersionScheme scheme);
Result<VersionScheme> parseVersionScheme(std::string_view name);

// Negative when a is older than b, 0 when they are the same version, positive when newer.
Result<int> compareVersions(VersionScheme scheme, std::string_view a, std::string_view b);

}  // namespace wharf
