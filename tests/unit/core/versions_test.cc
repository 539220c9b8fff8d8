#include <catch2/catch.hpp>

#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
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

TEST_CASE("versions: pep440 orders as packaging does (packaging's own test lists)", "[scan][versions]") {
  const auto s = VersionScheme::kPep440;
  // VERSIONS of packaging's tests/test_version.py, "in the correct sorting order", then
  // the same with an epoch of 1, every one of them after every one without.
  const std::vector<std::string> versions = {
      "1.0.dev0", "1.0.dev456", "1.0.dev456+local", "1.0a0", "1.0a0.post0.dev0", "1.0a0.post0", "1.0a1.dev1",
      "1.0a1.dev1+local", "1.0a1", "1.0a1+local", "1.0b0", "1.0b1.dev456", "1.0b2", "1.0b2.post345.dev456",
      "1.0b2.post345", "1.0b2-346", "1.0rc0", "1.0rc1.dev1", "1.0c1", "1.0rc2", "1.0", "1.0.post0.dev0", "1.0.post0",
      "1.0.post456.dev34", "1.0.post456", "1.0.post456+local", "1.0.1.dev1", "1.0.1a1", "1.0.1", "1.0.1+local",
      "1.0.1.post1", "1.1.dev1", "1.2+a", "1.2+abc", "1.2+abcdef", "1.2+def", "1.2+0", "1.2+1", "1.2+1.abc",
      "1.2+1.1", "1.2+1.1.0", "1.2+2", "1.2+123", "1.2+123456", "1.2.r32+123456", "1.2.rev33+123456"};
  std::vector<std::string> with_epochs = versions;
  for (const auto& v : versions) with_epochs.push_back("1!" + v);
  checkAscending(s, with_epochs);
  // A release's ladder: dev < pre < release < post, dev releases before what they lead to.
  checkAscending(s, {"1.0.dev0", "1.0a1.dev0", "1.0a1", "1.0a1.post0.dev0", "1.0rc1", "1.0", "1.0.post0.dev0",
                     "1.0.post0", "1.0.post0+local", "1.0.1.dev0", "2!0.1"});
  // test_normalized_versions: each spelling is the same version as its normal form.
  const std::vector<std::pair<std::string, std::string>> same = {
      {"1.0dev", "1.0.dev0"}, {"1.0.dev", "1.0.dev0"}, {"1.0dev1", "1.0.dev1"}, {"1.0-dev", "1.0.dev0"},
      {"1.0-dev1", "1.0.dev1"}, {"1.0DEV", "1.0.dev0"}, {"1.0.DEV", "1.0.dev0"}, {"1.0DEV1", "1.0.dev1"},
      {"1.0.DEV1", "1.0.dev1"}, {"1.0-DEV", "1.0.dev0"}, {"1.0-DEV1", "1.0.dev1"}, {"1.0a", "1.0a0"},
      {"1.0.a", "1.0a0"}, {"1.0.a1", "1.0a1"}, {"1.0-a", "1.0a0"}, {"1.0-a1", "1.0a1"}, {"1.0alpha", "1.0a0"},
      {"1.0.alpha", "1.0a0"}, {"1.0.alpha1", "1.0a1"}, {"1.0-alpha", "1.0a0"}, {"1.0-alpha1", "1.0a1"},
      {"1.0A", "1.0a0"}, {"1.0.A", "1.0a0"}, {"1.0.A1", "1.0a1"}, {"1.0-A", "1.0a0"}, {"1.0-A1", "1.0a1"},
      {"1.0ALPHA", "1.0a0"}, {"1.0.ALPHA", "1.0a0"}, {"1.0.ALPHA1", "1.0a1"}, {"1.0-ALPHA", "1.0a0"},
      {"1.0-ALPHA1", "1.0a1"}, {"1.0b", "1.0b0"}, {"1.0.b", "1.0b0"}, {"1.0.b1", "1.0b1"}, {"1.0-b", "1.0b0"},
      {"1.0-b1", "1.0b1"}, {"1.0beta", "1.0b0"}, {"1.0.beta", "1.0b0"}, {"1.0.beta1", "1.0b1"},
      {"1.0-beta", "1.0b0"}, {"1.0-beta1", "1.0b1"}, {"1.0B", "1.0b0"}, {"1.0.B", "1.0b0"}, {"1.0.B1", "1.0b1"},
      {"1.0-B", "1.0b0"}, {"1.0-B1", "1.0b1"}, {"1.0BETA", "1.0b0"}, {"1.0.BETA", "1.0b0"}, {"1.0.BETA1", "1.0b1"},
      {"1.0-BETA", "1.0b0"}, {"1.0-BETA1", "1.0b1"}, {"1.0c", "1.0rc0"}, {"1.0.c", "1.0rc0"}, {"1.0.c1", "1.0rc1"},
      {"1.0-c", "1.0rc0"}, {"1.0-c1", "1.0rc1"}, {"1.0rc", "1.0rc0"}, {"1.0.rc", "1.0rc0"}, {"1.0.rc1", "1.0rc1"},
      {"1.0-rc", "1.0rc0"}, {"1.0-rc1", "1.0rc1"}, {"1.0C", "1.0rc0"}, {"1.0.C", "1.0rc0"}, {"1.0.C1", "1.0rc1"},
      {"1.0-C", "1.0rc0"}, {"1.0-C1", "1.0rc1"}, {"1.0RC", "1.0rc0"}, {"1.0.RC", "1.0rc0"}, {"1.0.RC1", "1.0rc1"},
      {"1.0-RC", "1.0rc0"}, {"1.0-RC1", "1.0rc1"}, {"1.0post", "1.0.post0"}, {"1.0.post", "1.0.post0"},
      {"1.0post1", "1.0.post1"}, {"1.0-post", "1.0.post0"}, {"1.0-post1", "1.0.post1"}, {"1.0POST", "1.0.post0"},
      {"1.0.POST", "1.0.post0"}, {"1.0POST1", "1.0.post1"}, {"1.0r", "1.0.post0"}, {"1.0rev", "1.0.post0"},
      {"1.0.POST1", "1.0.post1"}, {"1.0.r1", "1.0.post1"}, {"1.0.rev1", "1.0.post1"}, {"1.0-POST", "1.0.post0"},
      {"1.0-POST1", "1.0.post1"}, {"1.0-5", "1.0.post5"}, {"1.0-r5", "1.0.post5"}, {"1.0-rev5", "1.0.post5"},
      {"1.0+AbC", "1.0+abc"}, {"1.01", "1.1"}, {"1.0a05", "1.0a5"}, {"1.0b07", "1.0b7"}, {"1.0c056", "1.0rc56"},
      {"1.0rc09", "1.0rc9"}, {"1.0.post000", "1.0.post0"}, {"1.1.dev09000", "1.1.dev9000"}, {"00!1.2", "1.2"},
      {"0100!0.0", "100!0.0"}, {"v1.0", "1.0"}, {"   v1.0\t\n", "1.0"},
      {"\u202f1.0\t\u2029\n ", "1.0"},  // Python's whitespace, non-ASCII too
      {"1.0rc1", "1.0c1"}, {"1.0.0", "1"}, {"1.0", "1.0.0.0"}, {"1.0pre1", "1.0rc1"}, {"1.0preview1", "1.0rc1"},
      {"1.0_A_1", "1.0a1"}, {"1.0+ubuntu.1", "1.0+ubuntu.01"}, {"1.0+a-b_c", "1.0+a.b.c"}, {"V1.0", "1.0"},
      // packaging's regex takes a label's separator even without a number after it.
      {"1.0a-", "1.0a0"}, {"1.0a-1", "1.0a1"}, {"1.0a--1", "1.0a0.post1"}, {"1.0a-.post1", "1.0a0.post1"},
      {"1.0.post-", "1.0.post0"}, {"1.0.dev.", "1.0.dev0"}, {"\x1c" "1.0\x1f", "1.0"}};
  for (const auto& [a, b] : same) {
    INFO(a << " == " << b);
    CHECK(cmp(s, a, b) == 0);
    CHECK(cmp(s, b, a) == 0);
  }
  CHECK(cmp(s, "1.0.99999999999999999999", "1.0.9") > 0);  // numbers of any length
  // test_invalid_versions, and what else packaging refuses (InvalidVersion).
  // Non-ASCII digits are no numbers, and a non-ASCII letter is no local segment even where
  // Python's case folding would match it (packaging 21 took "1.0+\u0130"; later ones refuse it).
  for (const char* bad : {"french toast", "1.0+a+", "1.0++", "1.0+_foobar", "1.0+foo&asd", "1.0+1+1", "1. 0", "1 .0",
                          "1. 0a1", "1 .0a1", "1.0 a1", "1.0a 1", "\u0660\u0661\u0662.\u0663\u0664\u0665", ".",
                          "..", "1..0", "1.0.", ".1.0", "1..2.3", "1.0+\u0130", "", "v", "1!", "!1.0", "1.0-", "1.0+",
                          "1.0+a..b", "1.0-1-1", "1.0a---post", "1.0a1.2", "1.0.post1-1", "1.0.dev1.post1", "lolwat"}) {
    INFO(bad);
    CHECK(compareVersions(s, bad, "1.0").status().code() == Code::kInvalidArgument);
    CHECK(compareVersions(s, "1.0", bad).status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("versions: pep440 agrees with packaging.version.Version on a table of near misses", "[scan][versions]") {
  // Pairs drawn from 50,000 generated ones (odd spellings, near misses, invalid ones), each
  // with packaging's answer: -1, 0, 1, or kInvalid where Version() raises InvalidVersion.
  constexpr int kInvalid = 2;
  const std::vector<std::tuple<std::string, std::string, int>> table = {
      {"3.3.3.1+1", "3.3.3.117", -1}, {"1!1", "1!1+a", -1}, {"1.0.0001c1", "1.0.0001", -1},
      {"0.2-Rc.0", "0.2-Rc.0+a", -1}, {"V0.0-a+a_0", "V0.0-a+a_0.0.0", -1}, {"1!0b", "1!0b-1", -1},
      {"V0.0.0.2", "V0.0.0.2+a", -1}, {"0.3.2.04", "0.3.2.040", -1},
      {"0.0-posT-0dev.", "0.0.1_Beta-359.r0008", -1}, {"0.0.0.3-3+1a_b.1a", "0.0.0.3-3+1a_b.1a.0", -1},
      {"3.1.rev.dev+10_1a", "3.1.rev.dev+10_1a.post0", -1}, {"1.0_Dev_08", "1.0_Dev_08+0", -1},
      {"0.reV-43+a_a_a1", "0.reV-43+l_a_1", -1}, {"0.1.3+abc.01", "0.1.3+bc.01", -1}, {"2.2.r", "2.2.71", -1},
      {"0.pre_05-0dev937", "0.pre_05-0dev937+0", -1}, {"0.0.3.0", "0.0002.Dev-2", -1},
      {"3.0.0007.3", "3.0.0007.30", -1}, {"0.1.0+2.Z_1a", "0.1.06+2.Z_1a", -1}, {"1+1a.a-1a", "1+1a.a-1d", -1},
      {"1!1.1_poSt.609dev.0011", "1!1.1_poSt.609dev.0011+a", -1}, {"1.3.0.0b", "1.3.0.0b.post0", -1},
      {"20.434_rev_0Dev", "20.434_rev_0Dev.1", -1}, {"2_a-.Revdev.0+10.01.0", "2_a-.Rev", -1},
      {"0.0.0_betA_+10_ubuntu", "0.0-0_deV_0", -1}, {"1!0005+a.1a_ubuntu", "1!0005+a.1a_ubuntu.0", -1},
      {"1.3.3.3", "1.35.3.3", -1}, {"2!0.524.0b-0_dev2+10", "2!0.524.0b-0_dev2+10.0.0", -1},
      {"0.2.0.2_A3", "0.2.0.2_A30", -1}, {"0.182-alpha+1_1a.b", "0.182-alpha+1_1a.b.0", -1},
      {"0011-009", "00112009", -1}, {"2DeV+1a_1a", "2DeV+1a_1a.dev0", -1}, {"V0.0.000", "V0.0.000+0", -1},
      {"00012.00-deV.1", "00012.00deV.9", -1}, {"3.744.0.1-2", "3.744.0.1-2+a", -1},
      {"v0.007-0", "v0.007-067", -1}, {"0.160.214", "0.160.214.1", -1},
      {"783.680_a.post+1.Z", "783.680_a.post+1.Z.dev0", -1}, {"0-a-1", "0-a-1+a", -1},
      {"0.3.r1+deadbeef-b", "0.3.r1+deadbeef-b.1", -1}, {"V3.2.0000.0", "V3.2.0000.0-0", -1},
      {"0.604.1.329+deadbeef", "0.604.1.329+deadbeef-0", -1}, {"249.0.1", "249.0.1+a", -1},
      {"1.0dev_008", "1.0dev_0080", -1}, {"0.0.0-0-deV.3", "0.0.005-r.00012", -1}, {"2.1.0", "2.1.0.1", -1},
      {"v2.1.0betA-0009", "v2.1.0betA-0009.post0", -1}, {"1.1.0_c.0-post_1+2", "1.1.0_c.0-post_1+20", -1},
      {"1.0+a_1a", "1.0+a_1", -1}, {"2.2", "2.21", -1}, {"2!1_Alpha0+a", "2!1", -1},
      {"0.0.betA", "0.0.betA+0", -1}, {"0.1.2.1-0", "0.1.2.1-0+a", -1}, {"0.pre-1", "0.pre-1+a", -1},
      {"0-pre-1-1+Z", "0-pre-1-17+Z", -1}, {"0.1.0.2", "0.1.0.2.0", 0}, {"0.0.0-reV-0", "0.0.0-r", 0},
      {"3.0.0.0_alpha", "3.0.0.0_a", 0}, {"349.0.0.0", "349.0.0.0.0.0", 0},
      {"00!0.2-beta3_reV-", "00!0.2-beta3_reV", 0}, {"1.2-pre", "1.2-pre0", 0},
      {"00!0.0.0.Rev", "00!0.0.0.Rev.0", 0}, {"1!3.0.0Dev-+01-b", "1!3.0.Dev-+01-b", 0}, {"0.1", "0.1.0.0", 0},
      {"1.0.0.0_rEv_0", "1.0.0.0_rEv", 0}, {"2!0-A1-dev", "2!0-A1-dev0", 0}, {"3.1.post.0", "3.1.post0", 0},
      {"0.dev_0", "0.dev", 0}, {"46.02b0", "46.02b", 0}, {"V756.pREvIewRdev.0", "V756.pREvIewRdev.", 0},
      {"05-previEw-0009-0", "05-previEw-0009-00", 0}, {"3.0.05.0", "3.0.05.00", 0}, {"1!0083.008", "1!0083.08", 0},
      {"00!0", "00!00", 0}, {"0.3.008", "0.3.008.0.0", 0}, {"3.3.Dev-0", "3.3.Dev-00", 0},
      {"2.006.225.0", "2.06.225.0", 0}, {"0post_", "0post_0", 0}, {"0-posT-0", "0-posT-", 0},
      {"0.0.165_Rc", "0.0.165Rc", 0}, {"3.3r0", "3.3r00", 0}, {"1.1.0A008-rEv_0_dev", "1.1.0A008-rEv_0_dev-0", 0},
      {"0.1.0.0-Rdev.0+deadbeef", "0.1.00-Rdev.0+deadbeef", 0}, {"3.0", "3.0.0", 0}, {"2.1.0.0", "2.1.0.00", 0},
      {"V1.3.0.2.Rc673", "V1.03.0.2.Rc673", 0}, {"204.2.0", "204.2.0.0.0", 0}, {"2-post_3", "2-post3", 0},
      {"0.0.0.rc0_dEv.0", "0.0.0.rc0_dEv.", 0}, {"0.007.3_R00011", "0.07.3_R00011", 0},
      {"0002_dev_08", "0002_dev08", 0}, {"0!385_C", "0!385_C.0", 0}, {"2!0.dEv", "2!0-dEv", 0},
      {"0_alpha__reV", "0_alpha__reV0", 0}, {"2!0", "2!0.0", 0}, {"2!18.1dev_0", "2!18.1dev_00", 0},
      {"1!2.0.c1+10-a-a", "1!2.0c1+10-a-a", 0}, {"0_Pre0", "0_Pre", 0}, {"463.2.0.2b", "463.2.0.2b-0", 0},
      {"v0.3.2-rc.", "v0.3.2-c.", 0}, {"0.137post000+ubuntu", "0.1a7post040+ubuntu", 1},
      {"1!1.1_c-06+a-a1.deadbeef", "1!1", 1}, {"3.0previEw_06_r0", "3.0previEw_0", 1},
      {"0a_344+1a-1.abc", "0a_3", 1}, {"009.2.0c.0+2_ubuntu-a1", "009.2.0c.0+2_ubun", 1},
      {"0.2.2+2-a_ubuntu", "0.2B-0", 1}, {"0.0.704-0", "0.0.7", 1}, {"002.2.004-225", "002.2.0", 1},
      {"1.0.0.0009.C_0", "1.0.0.00", 1}, {"0.0006", "0.0.0.0006-Dev_0", 1}, {"2.1", "2.1.dev0", 1},
      {"0.433RC_-dEV+Z_ubuntu", "0.433RC_-dEV+Z_ubu", 1}, {"3-0_dEv405", "3-0_dEv", 1},
      {"0.0.0pre_2.Post_747", "0.0.0pre_", 1}, {"V22.rev.0", "V22", 1}, {"0.004.0.0.c0", "0.00", 1},
      {"1.000.0.0", "1.000.0.0rc1", 1}, {"3.2.0a1-3", "3.2.0a", 1}, {"2!0.3+deadbeef.2", "2!0.3+deadbeef.2rc1", 1},
      {"009.0.2.0006", "009.0.2.00", 1}, {"0.2_alpha-1", "0.2_alpha", 1}, {"2.1.0.3-B.0+b", "2.1.0", 1},
      {"1!1.0.1", "1!1", 1}, {"2.0.644.0-491+01_10", "2.0.644.0-461+018_10", 1}, {"0.0007.0.724", "0.0007.0.7", 1},
      {"1.1-Rc_3+01_ubuntu", "1.1-Rc_3+0_ubuntu", 1}, {"00!0.0.0.1.pRe-0", "00!0.0", 1},
      {"2.0-rc_0", "2.0-rc_0.dev0", 1}, {"0.0.3", "0.0.3rc1", 1}, {"351.183", "351.183a", 1},
      {"1.0.1", "1.0.1.dev0", 1}, {"2.0", "2.0.dev0", 1}, {"652!3.1.00010", "652!3.1.0001", 1},
      {"V0.1.0.0.poST_00012", "V0.1.0.0", 1}, {"V0002", "V00", 1}, {"v0.289.3", "v0.28", 1},
      {"08b", "08b.dev0", 1}, {"2.007.0.0-r1_dEV0", "2.007", 1}, {"00.2.1.0+abc", "00.2", 1}, {"0.879", "0.87", 1},
      {"3_rC_0+2.10", "3_rC_0", 1}, {"V0-2", "V0-a", 1}, {"0.88.006.1-Rc_DEv-0", "0.8", 1},
      {"1!2+a1_Z", "1!2+a1", 1}, {"0.0004.1.2.Pre0-dEV+1-01", "0.0a1", 1}, {"2!0.0.001.854", "2!0.0.001.854a0", 1},
      {"0_reV-3", "0_reV-", 1}, {"V2.1Rev", "V2.Rev", 1}, {"0.545.3.1_r", "0.545.3_r", 1},
      {"0.0-0", "0.0.0.Pre-0_Dev_2", 1}, {"930.3.2.2", "930.3.2.2rc1", 1},
      {"006.0_B_0R.1", "006.0_B_0R.1.dev0", 1}, {"01.2.2.006a", "01.2.2.00", 1}, {"3.7.0", "3.7.0a", 1},
      {"1.3_pOsT-0002", "1.3_pOsT-0002.dev0", 1}, {"V0.Dev.0", "V0.Dev.0rc1", kInvalid},
      {"131.3.1.1-275", "131.3.1d1-27", kInvalid}, {"1b.0-posT2.Dev.1", "1b.0-posT2.Dev.1a0", kInvalid},
      {"0!06.2.010.3_rc-0", "0!06.2.010-A3_rc-0", kInvalid},
      {"0.0.2_Rc-2r.0.deV-0", "0.0.2a_Rc-2r.0.deV-0", kInvalid}, {"+016", "+016-0", kInvalid},
      {"0..29-2", "0..29-2+a", kInvalid}, {"865_rev.0", "865_rv.", kInvalid},
      {"0.0.2devx1", "0.0.2devx", kInvalid}, {"3.0.0.101R-dev.0", "3.0.0.101R-dev.0.0.0", kInvalid},
      {"00!0.3trdev.0", "00!0.3trdev.0-0", kInvalid}, {"3.717.3.2-c3", "3.717.3.o12-c3", kInvalid},
      {"3.0.0rc", "3.0.0rcrc1", kInvalid}, {"v0.330.008-c+10_a.ubuntu", "v0.330.008-c+", kInvalid},
      {"339.2-r_3", "339.2-r_3.post0", kInvalid}, {"2!0.3a.545+2_1", "2!0.3a.545+2_1+a", kInvalid},
      {"1.0_alpha_", "1.0._alpha_", kInvalid}, {"3.0.0beta3", "3.0.0petaA3", kInvalid},
      {"0t.0.2-deV", "0t.0", kInvalid}, {"1.89.3.2.dEv", "1.89.3.2.", kInvalid}, {"3.0.0", "3.0.", kInvalid},
      {"0.1.0_b-Dev.1+2", "0.1.0_b-Dv.1+2", kInvalid}, {".0..b-0000_r.1", ".0..b-0000_r.1+a", kInvalid},
      {"V003.1.1-POst.", "V003.1d.1-POst.", kInvalid}, {"v000p.0.2-0.dev", "v000p.0.2-0.dev-0", kInvalid},
      {"V483.816", "V483.81.", kInvalid}, {"0.A!.0-beta.", "0.A!.0-be", kInvalid},
      {"0-Dev-3", "0-Dev-3.0.0", kInvalid}, {"0!168.2.dEv1", "0!168.2.dEv1a", kInvalid},
      {"0.1_alpha_603-r-1_deV+a1", "0.1_", kInvalid}, {"84.c.deV3", "84.c.de", kInvalid},
      {"0.2-rdev_3+deadbeef-0", "0.2-rdev_3+deadeef!0", kInvalid}, {"0.0.16rev_2", "0.0.16rev_A", kInvalid},
      {"00011.2.0poSt.2", "00011.2.0poSt.2.post0", kInvalid}, {"V0.3-pre-0rev-3", "V0.3-pre-0rev-3a", kInvalid},
      {"1-Dev-0005", "1-Dev-0005-0", kInvalid}, {"0.0.0_b-0", "0.0.0_", kInvalid},
      {"v0.007rEv-000", "v0.007rEv-000.post0", kInvalid},
      {"1!0012.1.0.reV-0_dEv", "1!0012.1.0.reV-0_dEva", kInvalid}, {"0.b.2.dev", "0.b.2.ev", kInvalid},
      {"1.0.0.beta_0", "1.0.0.beta_0.0.0", kInvalid}, {"p0-296+2.2", "p0-296+292+", kInvalid},
      {"278.0-rc.1", "278.0-", kInvalid}, {"00!3+abc-1.01", "00!3+a_b!c-1.01", kInvalid},
      {"3.0.1.0", "3.0.1l0", kInvalid},
  };
  for (const auto& [a, b, expected] : table) {
    INFO(a << " vs " << b);
    if (expected == kInvalid) {
      CHECK(compareVersions(VersionScheme::kPep440, a, b).status().code() == Code::kInvalidArgument);
      continue;
    }
    CHECK(cmp(VersionScheme::kPep440, a, b) == expected);
    CHECK(cmp(VersionScheme::kPep440, b, a) == -expected);
  }
}

TEST_CASE("versions: maven orders as ComparableVersion does (Maven's own test lists)", "[scan][versions]") {
  const auto s = VersionScheme::kMaven;
  // ComparableVersionTest of Maven 3.9: VERSIONS_QUALIFIER and VERSIONS_NUMBER, each in
  // strictly increasing order.
  checkAscending(s, {"1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11", "1-rc",
                     "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def", "1-pom-1",
                     "1-1-snapshot", "1-1", "1-2", "1-123"});
  checkAscending(s, {"2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1", "2.1.0.1",
                     "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a", "11b",
                     "11c", "11m"});
  // testVersionsEqual and testVersionsHaveSameOrderButAreNotEqual.
  std::vector<std::pair<std::string, std::string>> same = {
      {"1", "1"}, {"1", "1.0"}, {"1", "1.0.0"}, {"1.0", "1.0.0"}, {"1", "1-0"}, {"1", "1.0-0"}, {"1.0", "1.0-0"},
      {"1a", "1-a"}, {"1a", "1.0-a"}, {"1a", "1.0.0-a"}, {"1.0a", "1-a"}, {"1.0.0a", "1-a"}, {"1x", "1-x"},
      {"1x", "1.0-x"}, {"1x", "1.0.0-x"}, {"1.0x", "1-x"}, {"1.0.0x", "1-x"}, {"1cr", "1rc"}, {"1a1", "1-alpha-1"},
      {"1b2", "1-beta-2"}, {"1m3", "1-milestone-3"}, {"1X", "1x"}, {"1A", "1a"}, {"1B", "1b"}, {"1M", "1m"},
      {"1Cr", "1Rc"}, {"1cR", "1rC"}, {"1m3", "1Milestone3"}, {"1m3", "1MileStone3"}, {"1m3", "1MILESTONE3"},
      {"1ga", "1"}, {"1release", "1"}, {"1final", "1"}, {"1Ga", "1"}, {"1GA", "1"}, {"1RELEASE", "1"},
      {"1RELeaSE", "1"}, {"1Final", "1"}, {"1FinaL", "1"}, {"1FINAL", "1"},
      {"1-abcdefghijklmnopqrstuvwxyz", "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ"}, {"1.0.0-alpha1", "1.0.0-ALPHA1"},
      {"1.a", "1.A"}, {"1-ga", "1"}, {"1.0.0", "1-ga"}};
  for (const char* x : {"abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC"}) {  // testMng7644
    same.emplace_back(std::string("2-") + x, std::string("2.0.") + x);
    same.emplace_back(std::string("2-") + x, std::string("2.0.0.") + x);
    same.emplace_back(std::string("2.0.") + x, std::string("2.0.0.") + x);
  }
  for (int n = 0; n < 19; ++n) {  // testVersion(Zero)EqualWithLeadingZeroes
    same.emplace_back(std::string(19 - n, '0') + "1", "1");
    same.emplace_back(std::string(19 - n, '0'), "0");
  }
  for (const auto& [a, b] : same) {
    INFO(a << " == " << b);
    CHECK(cmp(s, a, b) == 0);
    CHECK(cmp(s, b, a) == 0);
  }
  // testVersionComparing, testLeadingZeroes, the MNG cases: each first older than second.
  std::vector<std::pair<std::string, std::string>> older = {
      {"1", "2"}, {"1.5", "2"}, {"1", "2.5"}, {"1.0", "1.1"}, {"1.1", "1.2"}, {"1.0.0", "1.1"}, {"1.0.1", "1.1"},
      {"1.1", "1.2.0"}, {"1.0-alpha-1", "1.0"}, {"1.0-alpha-1", "1.0-alpha-2"}, {"1.0-alpha-1", "1.0-beta-1"},
      {"1.0-beta-1", "1.0-SNAPSHOT"}, {"1.0-SNAPSHOT", "1.0"}, {"1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"},
      {"1.0", "1.0-1"}, {"1.0-1", "1.0-2"}, {"1.0.0", "1.0-1"}, {"2.0-1", "2.0.1"}, {"2.0.1-klm", "2.0.1-lmn"},
      {"2.0.1", "2.0.1-xyz"}, {"2.0.1", "2.0.1-123"}, {"2.0.1-xyz", "2.0.1-123"}, {"0.7", "2"}, {"0.2", "1.0.7"},
      {"J", "7"}, {"c", "7"}, {"aardvark", "zebra"},
      {"6.1.0rc3", "6.1.0"}, {"6.1.0rc3", "6.1H.5-beta"}, {"6.1.0", "6.1H.5-beta"},  // MNG-5568
      {"20190126.230843", "1234567890.12345"}, {"1234567890.12345", "123456789012345.1H.5-beta"},  // MNG-6572
      {"123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta"},
      {"20190126.230843", "12345678901234567890.1H.5-beta"},
      {"1-0.alpha", "1"}, {"1-0.beta", "1"}, {"1-0.alpha", "1-0.beta"},  // MNG-6964
      {"1.0.final-redhat", "1.0-sp1-redhat"}, {"1.0.final-redhat", "1.0-sp-1-redhat"},  // MNG-7714
      {"1.0.final-redhat", "1.0-sp.1-redhat"},
      // Qualifiers in Maven's order, then unknown ones alphabetically.
      {"1-alpha", "1-beta"}, {"1-beta", "1-milestone"}, {"1-milestone", "1-rc"}, {"1-rc", "1-snapshot"},
      {"1-snapshot", "1-final"}, {"1-release", "1-sp"}, {"1-sp", "1-jre"}, {"1-android", "1-jre"},
      // Long numbers compare as numbers; a run of ten zeros is Maven's long 0, after its int 0.
      {"1.99999999999999999999999", "1.100000000000000000000000"}, {"0.1", "0000000000.1"}};
  for (const char* x : {"abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC"}) {  // testMng7644
    older.emplace_back(std::string("1.0.0.") + x + "1", std::string("1.0.0-") + x + "2");
  }
  for (const auto& [a, b] : older) {
    INFO(a << " < " << b);
    CHECK(cmp(s, a, b) < 0);
    CHECK(cmp(s, b, a) > 0);
  }
  // Any string is a version, as in Maven; only an absurdly long one is refused.
  CHECK(cmp(s, "", "0") == 0);
  CHECK(compareVersions(s, std::string(257, '1'), "1").status().code() == Code::kInvalidArgument);
  CHECK(cmp(s, std::string(128, '-') + "1", "1") < 0);  // deep nesting, within the bound
  std::string nested;
  for (int n = 0; n < 100; ++n) nested += "1-";
  CHECK(cmp(s, nested + "1", "1") > 0);
}

TEST_CASE("versions: maven agrees with ComparableVersion on a table of near misses", "[scan][versions]") {
  // Pairs drawn from 60,000 generated ones (qualifiers, aliases, numbers of every length,
  // empty items, mixed separators), each with ComparableVersion's answer (Maven 3.9).
  const std::vector<std::tuple<std::string, std::string, int>> table = {
      {"0SP.abc..00", "0S0P.abc..00", -1}, {"0001ga-0.0-x.", "0001ga-0.0-x..1", -1},
      {"173abc-0.-final", "173abc-0.rfinal", -1}, {"2..pom..0.1-._", "2..pom..0.1-.r", -1}, {"38", "38-sp", -1},
      {"00000000001.0alpha.+", "00000000001.02lpha.+", -1}, {"0-", "0-s", -1}, {"1--cr", "1--00.1", -1},
      {"1.sp", "1.spa1", -1}, {"0..000000001", "0..000000001-xyz", -1}, {"2-.SP", "2-.S2P", -1},
      {"3snapshot-.vga", "3snpshot-.vga", -1}, {"1.2", "1.2-1", -1},
      {"0.rc--0--milestone", "0.rc--0--miles9one", -1}, {"0.2-M--_-x", "0.24M--_-x", -1},
      {"107754140603-SP", "1077541406093-SP", -1}, {"final", "final1", -1}, {"0--3m.", "0--3m..a", -1},
      {"0-cr.Beta", "0-cr.9eta", -1}, {"0.-beta-1", "0.-beta-17", -1}, {"1.milestone-SNAPSHOTGA", "1.", -1},
      {"0z23-2", "0z2312", -1}, {"0.finalzRELEASE-x", "0.finalzRELEASE-x-sp", -1},
      {"235537925264661900--0", "235537925264661900-_-0", -1},
      {"000000001--0.3jre--3", "000000001--0.3jreb--3", -1}, {"1.xyz0--1", "1.xyz10--1", -1},
      {"990300036305-.2", "990300036305-.2.a", -1}, {"0000_..Final", "0000_..Fi6nal", -1},
      {"3.3.2.-1", "3.3.2.-1-sp", -1}, {"0.rc", "0.arc", -1},
      {"0milestone--0.-jre.Beta", "0miles_tone--0.-jre.Beta", -1},
      {"820.000000000-0-0000000", "820.000000000-03-0000000", -1}, {"0.c", "0.2", -1}, {"0--0", "0-x", -1},
      {"0.-RC.3--snapshot--3.3", "0.-RC.3--snapshot--3.3-a", -1}, {"22-000000.1.a.sp", "22-000000.1.am.sp", -1},
      {"RELEASE-.0000001", "RELEASE-.0000001-a", -1}, {"18.zga--pom-.0", "18.zpa--pom-.0", -1},
      {"2.2-redhat", "2.2-redhat-a", -1}, {"0.jre-+.-3.0.-0", "0.re-+.-3.0.-0", -1},
      {"25.0RC.0-", "25.0RC.0--a", -1}, {"3..0.GA.-rc", "3..0.GA.-rca1", -1}, {"0.+-v", "0.+-v.1", -1},
      {"153.-Final0-.milestone", "153.-Final20-.milestone", -1}, {"1.1-jre", "1.1-re", -1},
      {"1.2-x", "1.2-x-redhat-1", -1}, {"2.-jre-M..SNAPSHOT.3", "2.-jre-M..SNASHOT.3", -1},
      {"2.alpha", "2.alp", -1}, {"3..milestone.cr", "3..milestone.cr1", -1},
      {"0-3.SNAPSHOT--0", "0-3.SNAPSHOT--0m", -1}, {"+.0Beta", "+.0", -1},
      {"0-.ga-.apom13312", "0-.ga-.apom13312.1", -1}, {"3..release.-u", "3..release.-ub", -1},
      {"0..+", "0.6+", -1}, {"0000001.-0", "0000001.-0-1", -1}, {"1-.abc-M", "1-abc-M", 0},
      {"3.m-0000001", "3.m-000001", 0}, {"0-1u-00000", "0-1u-0000", 0}, {"0.-+.ga-21.-jre", "0.-+.ga21.-jre", 0},
      {"00000000000000", "0000000000000", 0}, {"1-0-.0.abc.0-2", "1-0-.0.abc.0-2.0.0", 0},
      {"0.2..0", "0.0000002", 0}, {"1-.0.-android0", "1-.0-android0", 0}, {"3.dev.-0-22", "3.dev.-0-22-ga", 0},
      {"0-xyz..1rc..0release", "0-xyz..1rc..", 0}, {"171.-119", "171.-119-", 0},
      {"3-ga--3..0000000000003", "3-ga--3..0000000000003-0", 0},
      {"000000000-.x-.alpha..1-0", "00000000-.x-.alpha..1-0", 0}, {"0-001", "0-001.0.0", 0},
      {"128c--0-3", "128c--0-3-0", 0}, {"0..743002882497-", "0..743002882497-.0", 0},
      {"3.000000002..27", "3.000000002..27.final", 0}, {"0--android-.RELEASE--0", "0--android-.RELEASE--0.0", 0},
      {"28-01-m", "28-01m", 0}, {"1-.android-RELEASEga", "1-.android-RELEASEga.0", 0},
      {"000000000002-ga--166", "000000000002-ga--166.0.0", 0}, {"1.sp..z-.rc..abc", "1.sp.z-.rc..abc", 0},
      {"1--SP.M-.c..1.0", "1--SP.M-.c..1.", 0}, {"00.-m-0", "00-m-0", 0},
      {"000000033final.1", "00000033final.1", 0}, {"0.-1-1-.156", "0.-1-1-.156-0", 0},
      {"113SNAPSHOT-0", "113SNAPSHOT-00", 0}, {"0--android.-Beta", "0--android.-Beta.0.0", 0},
      {"000003-4", "00003-4", 0}, {"63c", "63.c", 0}, {"123", "123-ga", 0},
      {"100818204800.0--abc", "100818204800.0--abc.0.0", 0}, {"0.m.0.0", "0.m.0.0-0", 0},
      {"3.0-.000000001", "3.0-.00000001", 0}, {"2..rc0-pom", "2..rc0-pom.final", 0},
      {"2..android--sp", "2.android--sp", 0}, {"003", "003-ga", 0}, {"23.-xFinal--0", "23.-xFinal--", 0},
      {"0.-_-0-ga", "0.-_-0-ga-ga", 0}, {"0000000000-0", "00000000", 0}, {"20", "20-0", 0},
      {"3-0.RC.3..ga163", "3-0.RC.3", 0}, {"0000000000003-.2", "0000000000003-.2.0.0", 0},
      {"000003", "000003.0", 0}, {"0--0.-2rc", "0--0.-2rc-ga", 0}, {"0-b.2-.1", "0-b.2-.1-0", 0},
      {"02.0", "02.0.0.0", 0}, {"0.xyzrc-.Beta0-a", "0.xyzrc-.Beta0-a-ga", 0}, {"3..02", "3..02-ga", 0},
      {"00000001", "00000001-0", 0}, {"508160527620", "508160527m20", 1}, {"0--snapshot--ga-0", "0-.jre--02", 1},
      {"3-xyzRELEASE", "3-x", 1}, {"00000002..0-1", "00000002..0-1-alpha", 1},
      {"0-.snapshot.rcpom", "0-.snapshot.rcpom-", 1}, {"020-6.0v", "02", 1}, {"0-3", "0-u", 1},
      {"3-.3.-49-166-3", "3-SNAPSHOT", 1}, {"0.0.rc.0", "0.0.rc.0-SNAPSHOT", 1}, {"2ga-abc", "2ga-ab8", 1},
      {"0-ga.SP", "0-ga.SP.0.0", 1}, {"0--a-00000002", "0--a-00000", 1},
      {"2..c-SNAPSHOTpom", "2..c-S1NAPSHOTpom", 1}, {"final.-124--22b--24", "final.-124--22b--_4", 1},
      {"1rc-370152313146.79-cr", "1rc-370152313146.9-cr", 1}, {"RC0.0", "RC0.0a1", 1},
      {"3.x65.00001..+", "3.x65.00001..+-sp", 1}, {"2.0..jre", "2.0.", 1},
      {"0001.3-.0-0.-M.dev", "0001.3-.0-0.-M.de", 1}, {"b.-0.-0-.RC", "b.-0.-0-.RC-alpha", 1},
      {"2.RC", "2.RC-a", 1}, {"502727193518548068.121", "502727193518548068.121a1", 1}, {"100001.0-3", "10", 1},
      {"redhat", "re5dhat", 1}, {"0.1831951726939--RCGA", "0..pom..alpha-", 1},
      {"3-1dev.-3..v", "3-1d-v.-3..v", 1}, {"1-a", "1-", 1}, {"3._", "3.", 1}, {"2-.abc", "2-.abc.final", 1},
      {"0devv-SP", "0de2vv-SP", 1}, {"0-2", "0-2a1", 1}, {"0..0..6", "0..", 1},
      {"0.-1--GA-2", "0.SP-.SNAPSHOT.++", 1}, {"10.0000000000001", "10.0000000", 1}, {"0-v-.001", "0-.0-0.0", 1},
      {"02--z0.b", "02-z0.b", 1}, {"564325695840-.alpha", "56432565840-.alpha", 1}, {"0jre.2", "0jr.2", 1},
      {"0.ga", "0.ga.0.0", 1}, {"1..05648618674420268396", "1..0564818674420268396", 1},
      {"3.umilestone", "3.u1milestone", 1}, {"42-z..99393865453.-m.21", "42-z.r.99393865453.-m.21", 1},
      {"ga.0redhat.-0.snapshot.1", "ga.0rdhat.-0.snapshot.1", 1}, {"0-0.2..2.0..3", "0-0.2..2.0..3.rc1", 1},
      {"92438888885", "92438888885-SNAPSHOT", 1}, {"3--ga-30-.M-186343851597", "3--ga-30-.M-18634385", 1},
      {"0003..1.GA", "000.3..1.GA", 1}, {"2GA00000000002-redhat", "2GA000000p0002-redhat", 1},
      {"0-z", "0-ga-857231770704.xyz", 1}, {"0--abc2", "0--", 1}, {"0..0abc.-RC.redhat-.0", "0.", 1},
      {"2..spsp--2", "2..spsp--2-rc1", 1}, {"33..pom-z..0", "33..", 1}, {"3-03milestone.milestone", "3-b", 1},
      {"000000013", "000000013.rc1", 1},
      // Any string is a Maven version: odd characters are letters.
      {"sZnri2msba", "sZnri2scb", -1}, {"ac.2n ~ngll", "ac.2715", -1}, {"~a7-", "~afb.4", -1},
      {"in", "inc-3Z", -1}, {"g4-mf_fl~_3", "g4-mf_fl~_3081", -1}, {"9..~14cb8gr", "9..~~8", -1},
      {"3.Ab c.n.--", "3.Ab c.n", -1}, {"b4gn3-.ri1Al", "b4gn3-.rin6~", -1}, {"p~-ig_-cpmb", "p~-igZ-0", -1},
      {"in.", "inA", -1}, {"cibafZa.7~", "cibafZZlp", -1}, {"12~n_", "120.", -1},
      {".3339-3-3sb", ".3339-3-3sbi.", -1}, {"0709_", "0709_f9", -1}, {"pf4A0mZ+25", "pff", -1},
      {"2rls---.", "2rls---", 0}, {"pnl-", "pnl", 0}, {"p189fA1.", "p189fA1", 0}, {"+f.", "+f", 0},
      {"c_is.c8.", "c_is.c8", 0}, {"3-0s~", "3-0s~.", 0}, {"..2l1r-", "..2l1r--", 0}, {"34", "34.-", 0},
      {"6c Ap", "6c Ap.", 0}, {"s0~89.", "s0~89..", 0}, {"2--2A. -14", "2--2A. -1-", 1}, {"+.-fA_0", "+.", 1},
      {"r9mam7rZn98", "r9mam7rZn9", 1}, {"A90ZrZ7Z9i-", "A90ZrZ", 1}, {"f.~+a", "f.~+-", 1},
      {"mf-4-i", "mf-3b2", 1}, {"irc80ls.3br.", "ir g-7", 1}, {"_.-.1Ass", "_.-.1_", 1},
      {"g7.8.s98", "g7.-31c", 1}, {"2.-A-85", "2.-A-8rA5", 1}, {"_A-i5rp0", "_A-i5r3-.", 1}, {"5A-", "5A-7", 1},
      {"3p101s+", "3p101s.~-r", 1}, {"3 .131_64", "3 .131_6", 1}, {"-72-", "-7", 1},
  };
  for (const auto& [a, b, expected] : table) {
    INFO(a << " vs " << b);
    CHECK(cmp(VersionScheme::kMaven, a, b) == expected);
  }
}

TEST_CASE("versions: scheme names", "[scan][versions]") {
  for (auto s : {VersionScheme::kDpkg, VersionScheme::kRpm, VersionScheme::kApk, VersionScheme::kSemver,
                 VersionScheme::kGo, VersionScheme::kPep440, VersionScheme::kMaven}) {
    auto back = parseVersionScheme(versionSchemeName(s));
    REQUIRE(back.isOk());
    CHECK(*back == s);
  }
  CHECK(std::string(versionSchemeName(VersionScheme::kPep440)) == "pep440");
  CHECK(std::string(versionSchemeName(VersionScheme::kMaven)) == "maven");
  CHECK_FALSE(parseVersionScheme("nuget").isOk());
}

}  // namespace versions_test
