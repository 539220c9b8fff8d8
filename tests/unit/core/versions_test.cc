#include <catch2/catch.hpp>

#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/scan/versions.h"
#include "shared/base/fs.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace versions_test {

using namespace wharf;
using namespace wharf::test;

namespace {

int cmp(VersionScheme s, const std::string& a, const std::string& b) {
  auto r = compareVersions(s, a, b);
  INFO(versionSchemeName(s) << ": " << a << " vs " << b << ": " << r.status().message());
  REQUIRE(r.isOk());
  return *r;
}

// Each version older than the next, and every pair ordered the same way both ways.
void checkAscending(VersionScheme s, const std::vector<std::string>& versions) {
  for (size_t i = 0; i < versions.size(); ++i) {
    for (size_t j = 0; j < versions.size(); ++j) {
      INFO(versions[i] << " vs " << versions[j]);
      int expected = i < j ? -1 : i > j ? 1 : 0;
      CHECK(cmp(s, versions[i], versions[j]) == expected);
    }
  }
}

// A random dpkg version: [epoch:]upstream[-revision], upstream starting with a digit,
// from the characters policy allows, weighted towards the ones that order specially.
std::string randomDpkgVersion(std::mt19937& rng) {
  const std::string upstream_chars = "0123456789012345678901234567890123456789abzAZ..++~~~";
  const std::string revision_chars = "0123456789012345678901234567890123456789abzAZ..++~~~";
  auto pick = [&](const std::string& from) { return from[rng() % from.size()]; };
  std::string v;
  if (rng() % 5 == 0) v += std::to_string(rng() % 3) + ":";
  v += static_cast<char>('0' + rng() % 10);
  for (size_t n = rng() % 8; n > 0; --n) v += pick(upstream_chars);
  if (rng() % 3 != 0) {
    v += "-";
    v += static_cast<char>('0' + rng() % 10);  // dpkg wants a revision that is not empty
    for (size_t n = rng() % 5; n > 0; --n) v += pick(revision_chars);
  }
  return v;
}

}  // namespace

TEST_CASE("versions: dpkg orders as dpkg does", "[scan][versions]") {
  const auto s = VersionScheme::kDpkg;
  // The rules: ~ before everything (even the end), letters before other characters,
  // digit runs as numbers, epochs first, a missing revision as 0.
  checkAscending(s, {"0.9", "1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a", "1.0+", "1.0.1", "1.2", "1.10", "1:0.1"});
  CHECK(cmp(s, "3.0.11-1~deb12u2", "3.0.11-1") < 0);
  CHECK(cmp(s, "1:1.2", "9.9") > 0);
  CHECK(cmp(s, "2.36-9+deb12u1", "2.36-9+deb12u4") < 0);
  CHECK(cmp(s, "2.36-9+deb12u10", "2.36-9+deb12u4") > 0);
  CHECK(cmp(s, "1.0", "1.0-0") == 0);
  CHECK(cmp(s, "0:1.0", "1.0") == 0);
  CHECK(cmp(s, "1.001", "1.1") == 0);
  CHECK(cmp(s, " 1.0 ", "1.0") == 0);
  CHECK(cmp(s, "1.2.3-1-2", "1.2.3-1-10") < 0);  // the revision is after the last '-'
}

TEST_CASE("versions: dpkg agrees with dpkg --compare-versions on 2,000 generated pairs", "[scan][versions]") {
  std::mt19937 rng(20261206);
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < 2000; ++i) {
    std::string a = randomDpkgVersion(rng);
    std::string b = randomDpkgVersion(rng);
    if (rng() % 2 == 0) {
      // Near misses are where orderings differ: half the pairs share a prefix, then go on
      // with a digit and characters of the upstream version (never a second ':' or '-').
      b = a.substr(0, a.size() / 2 + 1) + static_cast<char>('0' + rng() % 10);
      for (size_t n = rng() % 4; n > 0; --n) b += "0123456789az.+~"[rng() % 15];
    }
    pairs.emplace_back(a, b);
  }
  // One shell runs dpkg for every pair: -1, 0 or 1 per line.
  TempDir dir;
  std::ostringstream script;
  for (const auto& [a, b] : pairs) {
    script << "if dpkg --compare-versions '" << a << "' lt '" << b << "'; then echo -1; "
           << "elif dpkg --compare-versions '" << a << "' eq '" << b << "'; then echo 0; else echo 1; fi\n";
  }
  REQUIRE(writeFileAtomic(dir / "pairs.sh", script.str()).isOk());
  auto r = run({"sh", dir / "pairs.sh"}, 300'000);
  REQUIRE(r.exit_code == 0);
  std::istringstream lines(r.output);
  std::string line;
  size_t i = 0, differ = 0, equal = 0;
  while (std::getline(lines, line)) {
    if (line != "-1" && line != "0" && line != "1") continue;  // dpkg's warnings, if any
    REQUIRE(i < pairs.size());
    const auto& [a, b] = pairs[i++];
    int expected = std::stoi(line);
    INFO(a << " vs " << b);
    CHECK(cmp(VersionScheme::kDpkg, a, b) == expected);
    (expected == 0 ? equal : differ)++;
  }
  CHECK(i == pairs.size());
  CHECK(differ > 1000);  // the generated pairs do exercise the ordering
}

TEST_CASE("versions: rpm orders as rpmvercmp does (rpm's own test table)", "[scan][versions]") {
  // tests/rpmvercmp.at of rpm, case by case: a, b, expected.
  const std::vector<std::tuple<std::string, std::string, int>> table = {
      {"1.0", "1.0", 0}, {"1.0", "2.0", -1}, {"2.0", "1.0", 1},
      {"2.0.1", "2.0.1", 0}, {"2.0", "2.0.1", -1}, {"2.0.1", "2.0", 1},
      {"2.0.1a", "2.0.1a", 0}, {"2.0.1a", "2.0.1", 1}, {"2.0.1", "2.0.1a", -1},
      {"5.5p1", "5.5p1", 0}, {"5.5p1", "5.5p2", -1}, {"5.5p2", "5.5p1", 1},
      {"5.5p10", "5.5p10", 0}, {"5.5p1", "5.5p10", -1}, {"5.5p10", "5.5p1", 1},
      {"10xyz", "10.1xyz", -1}, {"10.1xyz", "10xyz", 1},
      {"xyz10", "xyz10", 0}, {"xyz10", "xyz10.1", -1}, {"xyz10.1", "xyz10", 1},
      {"xyz.4", "xyz.4", 0}, {"xyz.4", "8", -1}, {"8", "xyz.4", 1}, {"xyz.4", "2", -1}, {"2", "xyz.4", 1},
      {"5.5p2", "5.6p1", -1}, {"5.6p1", "5.5p2", 1},
      {"5.6p1", "6.5p1", -1}, {"6.5p1", "5.6p1", 1},
      {"6.0.rc1", "6.0", 1}, {"6.0", "6.0.rc1", -1},
      {"10b2", "10a1", 1}, {"10a2", "10b2", -1},
      {"1.0aa", "1.0aa", 0}, {"1.0a", "1.0aa", -1}, {"1.0aa", "1.0a", 1},
      {"10.0001", "10.0001", 0}, {"10.0001", "10.1", 0}, {"10.1", "10.0001", 0},
      {"10.0001", "10.0039", -1}, {"10.0039", "10.0001", 1},
      {"4.999.9", "5.0", -1}, {"5.0", "4.999.9", 1},
      {"20101121", "20101121", 0}, {"20101121", "20101122", -1}, {"20101122", "20101121", 1},
      {"2_0", "2_0", 0}, {"2.0", "2_0", 0}, {"2_0", "2.0", 0},
      {"a", "a", 0}, {"a+", "a+", 0}, {"a+", "a_", 0}, {"a_", "a+", 0}, {"+a", "+a", 0}, {"+a", "_a", 0},
      {"_a", "+a", 0}, {"+_", "+_", 0}, {"_+", "+_", 0}, {"_+", "_+", 0}, {"+", "_", 0}, {"_", "+", 0},
      {"1.0~rc1", "1.0~rc1", 0}, {"1.0~rc1", "1.0", -1}, {"1.0", "1.0~rc1", 1},
      {"1.0~rc1", "1.0~rc2", -1}, {"1.0~rc2", "1.0~rc1", 1},
      {"1.0~rc1~git123", "1.0~rc1~git123", 0}, {"1.0~rc1~git123", "1.0~rc1", -1}, {"1.0~rc1", "1.0~rc1~git123", 1},
      {"1.0^", "1.0^", 0}, {"1.0^", "1.0", 1}, {"1.0", "1.0^", -1},
      {"1.0^git1", "1.0^git1", 0}, {"1.0^git1", "1.0", 1}, {"1.0", "1.0^git1", -1},
      {"1.0^git1", "1.0^git2", -1}, {"1.0^git2", "1.0^git1", 1},
      {"1.0^git1", "1.01", -1}, {"1.01", "1.0^git1", 1},
      {"1.0^20160101", "1.0^20160101", 0}, {"1.0^20160101", "1.0.1", -1}, {"1.0.1", "1.0^20160101", 1},
      {"1.0^20160101^git1", "1.0^20160101^git1", 0}, {"1.0^20160102", "1.0^20160101^git1", 1},
      {"1.0^20160101^git1", "1.0^20160102", -1},
      {"1.0~rc1^git1", "1.0~rc1^git1", 0}, {"1.0~rc1^git1", "1.0~rc1", 1}, {"1.0~rc1", "1.0~rc1^git1", -1},
      {"1.0^git1~pre", "1.0^git1~pre", 0}, {"1.0^git1", "1.0^git1~pre", 1}, {"1.0^git1~pre", "1.0^git1", -1},
  };
  for (const auto& [a, b, expected] : table) {
    INFO(a << " vs " << b);
    CHECK(cmp(VersionScheme::kRpm, a, b) == expected);
  }
  // Epoch, version, release.
  CHECK(cmp(VersionScheme::kRpm, "1:1.0-1.el9", "2.0-1.el9") > 0);
  CHECK(cmp(VersionScheme::kRpm, "3.0.7-16.el9", "3.0.7-18.el9") < 0);
  CHECK(cmp(VersionScheme::kRpm, "3.0.7-16.el9", "3.0.7") == 0);  // no release: any release
  CHECK(cmp(VersionScheme::kRpm, "0:3.0.7-16.el9", "3.0.7-16.el9") == 0);
}

TEST_CASE("versions: apk orders as apk-tools does", "[scan][versions]") {
  const auto s = VersionScheme::kApk;
  // Answers of `apk version -t A B` on Alpine (apk-tools 2), quirks included: "1.0" is
  // older than "1.0_alpha" (a zero component ends differently) while "1.1" is newer than
  // "1.1_alpha"; unknown suffixes and stray letters keep apk's order.
  const std::vector<std::tuple<std::string, std::string, int>> table = {
      {"1", "1", 0}, {"1", "1.0", -1}, {"1.0", "1.0", 0}, {"1.0", "1.0_alpha", -1}, {"1.1", "1.1_alpha", 1},
      {"1.0", "1.0-r1", -1}, {"1.1", "1.0-r1", 1}, {"1.1", "1.0_p1", 1}, {"1.1", "1.2_alpha", -1},
      {"1", "1-r1", -1}, {"1.1", "1-r1", 1}, {"1", "1_p1", -1}, {"1.1", "1_p1", 1}, {"1", "1_alpha", 1},
      {"1-r1", "1_p1", -1}, {"1-r1", "1-r2", -1}, {"1_p1", "1", 1}, {"1", "2", -1}, {"11", "1", 1},
      {"1.10.0", "1.2.0", 1}, {"1.1.10", "1.1.4-r1", 1}, {"1.1_blarf", "1.1_alpha", 1}, {"1.1_arghhh", "1.1_p1", -1},
      {"1.1_blah", "1.1_alpha", 1}, {"1.1a", "1.1b", -1}, {"1.1b", "1.1a", 1}, {"1.1baa", "1.1b", 1},
      {"1.1ba", "1.2", -1}, {"1.1ba", "1.1c", -1}, {"1.0.2k-r0", "1.0.2i-r0", 1},
  };
  for (const auto& [a, b, expected] : table) {
    INFO(a << " vs " << b);
    CHECK(cmp(s, a, b) == expected);
    CHECK(cmp(s, b, a) == -expected);
  }
  // Alpine's own ladders: suffixes around the release, then the package revision.
  checkAscending(s, {"3.0.8_alpha1-r0", "3.0.8_beta2-r0", "3.0.8_pre1-r0", "3.0.8_rc1-r0", "3.0.8-r0", "3.0.8-r1",
                     "3.0.8_cvs1-r0", "3.0.8_svn1-r0", "3.0.8_git20230101-r0", "3.0.8_hg1-r0", "3.0.8_p1-r0",
                     "3.0.8_p2-r0", "3.0.8a-r0", "3.0.9-r0", "3.0.10-r0", "3.1.0-r0"});
  CHECK(cmp(s, "1.36.1-r2", "1.36.1-r15") < 0);
  CHECK(cmp(s, "99999999999999999999999.1", "1.1") > 0);  // long numbers saturate, never overflow
}

TEST_CASE("versions: semver precedence, SemVer 2.0.0 section 11", "[scan][versions]") {
  const auto s = VersionScheme::kSemver;
  checkAscending(s, {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                     "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1", "10.0.0"});
  CHECK(cmp(s, "1.0.0+build.5", "1.0.0") == 0);       // build metadata is ignored
  CHECK(cmp(s, "v1.2.3", "1.2.3") == 0);              // a leading v is accepted
  CHECK(cmp(s, "1.0.0-alpha-1", "1.0.0-alpha") > 0);  // hyphens belong to identifiers
  CHECK(cmp(s, "99999999999999999999.0.0", "1.0.0") > 0);
  for (const char* bad : {"", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-a..b", "1.2.x",
                          "1.2.3-ä", "a.b.c", "-1.2.3"}) {
    INFO(bad);
    auto r = compareVersions(s, bad, "1.0.0");
    CHECK(r.status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("versions: Go module versions, pseudo-versions between releases", "[scan][versions]") {
  const auto s = VersionScheme::kGo;
  checkAscending(s, {"v0.0.0-20190101000000-abcdefabcdef", "v0.1.0", "v1.2.3", "v1.2.4-0.20230101120000-0123456789ab",
                     "v1.2.4-pre", "v1.2.4", "v2.0.0"});
  CHECK(cmp(s, "v2.0.0+incompatible", "v2.0.0") == 0);
  CHECK(compareVersions(s, "1.2.3", "v1.2.3").status().code() == Code::kInvalidArgument);  // Go wants the v
}

TEST_CASE("versions: scheme names", "[scan][versions]") {
  for (auto s : {VersionScheme::kDpkg, VersionScheme::kRpm, VersionScheme::kApk, VersionScheme::kSemver,
                 VersionScheme::kGo}) {
    auto back = parseVersionScheme(versionSchemeName(s));
    REQUIRE(back.isOk());
    CHECK(*back == s);
  }
  CHECK_FALSE(parseVersionScheme("pep440").isOk());
}

}  // namespace versions_test
