#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/scan/osv_ranges.h"

// Each file's own names: the test binaries are unity builds.
namespace osv_ranges_test {

using namespace wharf;
using nlohmann::json;

namespace {

std::vector<OsvRange> ranges(const std::string& text) {
  auto r = parseOsvRanges(json::parse(text));
  INFO(r.status().message());
  REQUIRE(r.isOk());
  return *r;
}

bool affects(const std::vector<OsvRange>& rs, VersionScheme s, const std::string& v,
             const std::vector<std::string>& versions = {}) {
  auto r = osvAffects(rs, versions, s, v);
  INFO(v << ": " << r.status().message());
  REQUIRE(r.isOk());
  return *r;
}

}  // namespace

TEST_CASE("osv ranges: Debian source packages by dpkg order", "[scan][osv]") {
  // DSA-5532-1 (openssl, bookworm): fixed in 3.0.11-1~deb12u2.
  auto rs = ranges(R"([{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}])");
  auto dpkg = VersionScheme::kDpkg;
  CHECK(affects(rs, dpkg, "3.0.11-1~deb12u1"));
  CHECK(affects(rs, dpkg, "3.0.9-1"));
  CHECK_FALSE(affects(rs, dpkg, "3.0.11-1~deb12u2"));
  CHECK_FALSE(affects(rs, dpkg, "3.0.11-1"));  // ~ sorts before: 3.0.11-1 is newer than the fix
  CHECK_FALSE(affects(rs, dpkg, "3.0.13-1~deb12u1"));
  CHECK_FALSE(affects(rs, dpkg, "1:0.1"));  // a newer epoch
}

TEST_CASE("osv ranges: several windows, last_affected, limit, exact versions, git", "[scan][osv]") {
  auto semver = VersionScheme::kSemver;
  auto rs = ranges(R"([{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"fixed":"1.5.0"},
                                                  {"introduced":"2.0.0"},{"fixed":"2.3.1"}]}])");
  CHECK_FALSE(affects(rs, semver, "0.9.9"));
  CHECK(affects(rs, semver, "1.0.0"));
  CHECK(affects(rs, semver, "1.4.99"));
  CHECK_FALSE(affects(rs, semver, "1.5.0"));
  CHECK_FALSE(affects(rs, semver, "1.9.0"));
  CHECK_FALSE(affects(rs, semver, "2.0.0-rc.1"));  // a pre-release of 2.0.0 is before it
  CHECK(affects(rs, semver, "2.3.0"));
  CHECK_FALSE(affects(rs, semver, "2.3.1"));
  // Events in any order: they are sorted by version first.
  auto shuffled = ranges(R"([{"type":"SEMVER","events":[{"fixed":"2.3.1"},{"introduced":"2.0.0"},
                                                        {"fixed":"1.5.0"},{"introduced":"1.0.0"}]}])");
  for (const char* v : {"0.9.9", "1.0.0", "1.5.0", "2.1.0", "2.3.1"}) {
    CHECK(affects(shuffled, semver, v) == affects(rs, semver, v));
  }
  auto last = ranges(R"([{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"1.2.3"}]}])");
  CHECK(affects(last, semver, "1.2.3"));
  CHECK_FALSE(affects(last, semver, "1.2.4"));
  auto limited = ranges(R"([{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"limit":"1.4.0"}]}])");
  CHECK(affects(limited, semver, "1.3.9"));
  CHECK_FALSE(affects(limited, semver, "1.4.0"));
  auto git = ranges(R"([{"type":"GIT","events":[{"introduced":"0"},{"fixed":"abc123"}]}])");
  CHECK_FALSE(affects(git, semver, "1.0.0"));
  CHECK(affects(git, semver, "1.0.0", {"0.9.0", "1.0.0"}));  // listed exactly
  // Go: SEMVER ranges without the v, module versions with it.
  auto go = ranges(R"([{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.17.0"}]}])");
  CHECK(affects(go, VersionScheme::kGo, "v0.16.0"));
  CHECK(affects(go, VersionScheme::kGo, "v0.0.0-20220101000000-abcdefabcdef"));
  CHECK_FALSE(affects(go, VersionScheme::kGo, "v0.17.0"));
}

TEST_CASE("osv ranges: PyPI by PEP 440 order", "[scan][osv]") {
  // An advisory of the shape of PYSEC's: fixed in 2.31.0, since 2.3.0.
  auto rs = ranges(R"([{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}])");
  auto pep440 = VersionScheme::kPep440;
  CHECK_FALSE(affects(rs, pep440, "2.3.0rc1"));  // a pre-release is before its release
  CHECK(affects(rs, pep440, "2.3"));             // 2.3 == 2.3.0
  CHECK(affects(rs, pep440, "2.30.0.post1"));
  CHECK(affects(rs, pep440, "2.31.0rc2"));
  CHECK(affects(rs, pep440, "2.31.0.dev0"));
  CHECK_FALSE(affects(rs, pep440, "2.31.0"));
  CHECK_FALSE(affects(rs, pep440, "v2.31.0+ubuntu1"));  // a local version is after its public one
  CHECK_FALSE(affects(rs, pep440, "2.31.0.post1"));
  CHECK_FALSE(affects(rs, pep440, "1!1.0"));  // a newer epoch
  // A version PEP 440 refuses fails the match with a message.
  CHECK(osvAffects(rs, {}, pep440, "2.31.x").status().code() == Code::kInvalidArgument);
}

TEST_CASE("osv ranges: Maven by ComparableVersion order", "[scan][osv]") {
  // GHSA-jfh8-c2jp-5v3q (log4j-core, Log4Shell): three windows, each closed by a fix.
  auto rs = ranges(R"([{"type":"ECOSYSTEM","events":[{"introduced":"2.0-beta9"},{"fixed":"2.3.1"},
                                                     {"introduced":"2.4"},{"fixed":"2.12.2"},
                                                     {"introduced":"2.13.0"},{"fixed":"2.15.0"}]}])");
  auto maven = VersionScheme::kMaven;
  CHECK_FALSE(affects(rs, maven, "2.0-alpha1"));
  CHECK_FALSE(affects(rs, maven, "2.0-beta8"));
  CHECK(affects(rs, maven, "2.0-beta9"));
  CHECK(affects(rs, maven, "2.0-rc1"));
  CHECK(affects(rs, maven, "2.0"));
  CHECK(affects(rs, maven, "2.3"));
  CHECK_FALSE(affects(rs, maven, "2.3.1"));
  CHECK_FALSE(affects(rs, maven, "2.3.2"));
  CHECK(affects(rs, maven, "2.12.1"));
  CHECK_FALSE(affects(rs, maven, "2.12.2"));
  CHECK(affects(rs, maven, "2.14.1"));
  CHECK(affects(rs, maven, "2.15.0-rc1"));  // rc before the release
  CHECK_FALSE(affects(rs, maven, "2.15.0"));
  CHECK_FALSE(affects(rs, maven, "2.15.0.Final"));  // final is the release itself
  CHECK_FALSE(affects(rs, maven, "2.17.1"));
}

TEST_CASE("osv ranges: ecosystems and bad input", "[scan][osv]") {
  CHECK(*versionSchemeOf("Debian:12") == VersionScheme::kDpkg);
  CHECK(*versionSchemeOf("Alpine:v3.18") == VersionScheme::kApk);
  CHECK(*versionSchemeOf("Rocky Linux:9") == VersionScheme::kRpm);
  CHECK(*versionSchemeOf("npm") == VersionScheme::kSemver);
  CHECK(*versionSchemeOf("Go") == VersionScheme::kGo);
  CHECK(*versionSchemeOf("PyPI") == VersionScheme::kPep440);
  CHECK(*versionSchemeOf("Maven") == VersionScheme::kMaven);
  CHECK(*versionSchemeOf("Maven:https://maven.example.com/") == VersionScheme::kMaven);
  CHECK(versionSchemeOf("NuGet").status().code() == Code::kNotFound);
  for (const char* bad : {R"({})", R"([{"events":[{"introduced":"0"}]}])", R"([{"type":"X","events":[{"introduced":"0"}]}])",
                          R"([{"type":"SEMVER","events":[]}])", R"([{"type":"SEMVER","events":[{"introduced":"0","fixed":"1"}]}])",
                          R"([{"type":"SEMVER","events":[{"broken":"1.0.0"}]}])", R"([{"type":"SEMVER","events":[{"fixed":""}]}])",
                          R"([{"type":"SEMVER","events":[{"fixed":1}]}])"}) {
    INFO(bad);
    CHECK(parseOsvRanges(json::parse(bad)).status().code() == Code::kInvalidArgument);
  }
  // A version the scheme refuses fails the match with a message, never matches by accident.
  auto rs = ranges(R"([{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"not-a-version"}]}])");
  CHECK(osvAffects(rs, {}, VersionScheme::kSemver, "1.0.0").status().code() == Code::kInvalidArgument);
  auto ok = ranges(R"([{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}])");
  CHECK(osvAffects(ok, {}, VersionScheme::kSemver, "garbage").status().code() == Code::kInvalidArgument);
}

}  // namespace osv_ranges_test
