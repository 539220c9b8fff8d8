#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/scan/vuln_db.h"

// Each file's own names: the test binaries are unity builds.
namespace vuln_db_test {

using namespace wharf;

namespace {

double score(const char* vector) {
  auto s = cvss3BaseScore(vector);
  INFO(vector);
  REQUIRE(s.has_value());
  return *s;
}

Package pkg(std::string type, std::string name, std::string version, std::string source = "",
            std::string source_version = "", std::string layer = "sha256:l1") {
  Package p;
  p.type = std::move(type);
  p.name = std::move(name);
  p.version = std::move(version);
  p.source_name = std::move(source);
  p.source_version = std::move(source_version);
  p.path = "x";
  p.layer = std::move(layer);
  return p;
}

OsRelease os(std::string id, std::string version_id) {
  OsRelease o;
  o.id = std::move(id);
  o.version_id = std::move(version_id);
  o.path = "etc/os-release";
  return o;
}

ImageInventory inventory(OsRelease o, std::vector<Package> packages) {
  ImageInventory inv;
  inv.os = std::move(o);
  inv.packages = std::move(packages);
  return inv;
}

std::vector<std::string> ids(const std::vector<Finding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) out.push_back(f.advisory + " " + f.package + "@" + f.installed);
  return out;
}

void addOk(VulnDb& db, const std::string& osv) {
  auto s = db.add(osv);
  INFO(s.message());
  REQUIRE(s.isOk());
}

// Debian's advisory for Looney Tunables (bookworm), as OSV serves DSAs.
const char* kDsa5514 = R"({
  "id": "DSA-5514-1",
  "summary": "glibc - security update",
  "modified": "2023-10-03T21:32:04Z",
  "published": "2023-10-03T00:00:00Z",
  "aliases": ["CVE-2023-4911"],
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "glibc", "purl": "pkg:deb/debian/glibc?arch=source"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}]
  }]
})";

const char* kOpenssl5678 = R"({
  "id": "CVE-2023-5678",
  "summary": "openssl: Generating excessively long X9.42 DH keys or checking excessively long X9.42 DH keys or parameters may be very slow",
  "modified": "2024-01-31T00:00:00Z",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}],
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}]
  }]
})";

// zlib's inflateGetHeader overflow, fixed for bullseye in DSA-5218-1.
const char* kZlib37434 = R"({
  "id": "DSA-5218-1",
  "aliases": ["CVE-2022-37434"],
  "summary": "zlib - security update",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
  "affected": [{
    "package": {"ecosystem": "Debian:11", "name": "zlib"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.2.11.dfsg-2+deb11u2"}]}]
  }]
})";

}  // namespace

TEST_CASE("vuln db: CVSS 3 base scores as NVD computes them", "[core][scan]") {
  CHECK(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == Approx(9.8));
  CHECK(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H") == Approx(10.0));  // Log4Shell
  CHECK(score("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N") == Approx(5.5));
  CHECK(score("CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N") == Approx(3.1));
  CHECK(score("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H") == Approx(7.8));  // CVE-2023-4911
  CHECK(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L") == Approx(5.3));  // CVE-2023-5678
  CHECK(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N") == Approx(7.5));
  CHECK(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N") == Approx(6.1));  // the usual XSS
  CHECK(score("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H") == Approx(7.2));  // lodash CVE-2021-23337
  CHECK(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N") == Approx(0.0));
  // Temporal metrics after the base ones do not change the base score.
  CHECK(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C") == Approx(9.8));
  // Metrics in another order.
  CHECK(score("CVSS:3.1/S:U/C:H/I:H/A:H/AV:N/AC:L/PR:N/UI:N") == Approx(9.8));

  CHECK(!cvss3BaseScore("").has_value());
  CHECK(!cvss3BaseScore("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").has_value());
  CHECK(!cvss3BaseScore("CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P").has_value());
  CHECK(!cvss3BaseScore("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N").has_value());
  CHECK(!cvss3BaseScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/C:H/I:H/A:H").has_value());      // no scope
  CHECK(!cvss3BaseScore("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").has_value());  // bad value
  CHECK(!cvss3BaseScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H").has_value());      // no A
  CHECK(!cvss3BaseScore("CVSS:3.1/AVN/AC:L").has_value());
}

TEST_CASE("vuln db: severities", "[core][scan]") {
  CHECK(severityOfScore(0.0) == Severity::kUnknown);
  CHECK(severityOfScore(0.1) == Severity::kLow);
  CHECK(severityOfScore(3.9) == Severity::kLow);
  CHECK(severityOfScore(4.0) == Severity::kMedium);
  CHECK(severityOfScore(6.9) == Severity::kMedium);
  CHECK(severityOfScore(7.0) == Severity::kHigh);
  CHECK(severityOfScore(8.9) == Severity::kHigh);
  CHECK(severityOfScore(9.0) == Severity::kCritical);
  CHECK(severityOfScore(10.0) == Severity::kCritical);

  CHECK(parseSeverity("LOW") == Severity::kLow);
  CHECK(parseSeverity("moderate") == Severity::kMedium);
  CHECK(parseSeverity("Medium") == Severity::kMedium);
  CHECK(parseSeverity("HIGH") == Severity::kHigh);
  CHECK(parseSeverity("critical") == Severity::kCritical);
  CHECK(parseSeverity("UNKNOWN") == Severity::kUnknown);
  CHECK(!parseSeverity("severe").has_value());
  CHECK(!parseSeverity("").has_value());
  for (Severity s : {Severity::kUnknown, Severity::kLow, Severity::kMedium, Severity::kHigh, Severity::kCritical})
    CHECK(parseSeverity(severityName(s)) == s);
  CHECK(std::string(severityName(Severity::kCritical)) == "CRITICAL");
}

TEST_CASE("vuln db: Debian advisories match source packages of the release", "[core][scan]") {
  VulnDb db;
  addOk(db, kDsa5514);
  addOk(db, kOpenssl5678);
  CHECK(db.advisories() == 2);
  CHECK(db.perEcosystem().at("Debian") == 2);

  SECTION("libc6 from glibc, before the fix") {
    auto findings = db.match(inventory(os("debian", "12"), {pkg("deb", "libc6", "2.36-9+deb12u1", "glibc", "", "sha256:base"),
                                                            pkg("deb", "libc-bin", "2.36-9+deb12u1", "glibc", "", "sha256:base")}));
    REQUIRE(findings.size() == 2);
    const Finding& f = findings[0];
    CHECK(f.advisory == "DSA-5514-1");
    CHECK(f.aliases == std::vector<std::string>{"CVE-2023-4911"});
    CHECK(f.package == "libc-bin");  // same severity and id: by package
    CHECK(findings[1].package == "libc6");
    CHECK(f.installed == "2.36-9+deb12u1");
    CHECK(f.fixed == "2.36-9+deb12u3");
    CHECK(f.ecosystem == "Debian:12");
    CHECK(f.type == "deb");
    CHECK(f.severity == Severity::kHigh);
    CHECK(f.score == Approx(7.8));
    CHECK(f.layer == "sha256:base");
    CHECK(f.summary == "glibc - security update");

    auto j = findingToJson(findings[1]);
    CHECK(j["advisory"] == "DSA-5514-1");
    CHECK(j["package"] == "libc6");
    CHECK(j["installed"] == "2.36-9+deb12u1");
    CHECK(j["fixed"] == "2.36-9+deb12u3");
    CHECK(j["ecosystem"] == "Debian:12");
    CHECK(j["severity"] == "HIGH");
    CHECK(j["score"].get<double>() == Approx(7.8));
    CHECK(j["layer"] == "sha256:base");
    CHECK(j["aliases"] == nlohmann::json::array({"CVE-2023-4911"}));
    CHECK(j["type"] == "deb");
  }
  SECTION("fixed, or a later version") {
    CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "libc6", "2.36-9+deb12u3", "glibc")})).empty());
    CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "libc6", "2.36-9+deb12u4", "glibc")})).empty());
    CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "libc6", "2.37-12", "glibc")})).empty());
  }
  SECTION("another Debian release, or no release known") {
    CHECK(db.match(inventory(os("debian", "11"), {pkg("deb", "libc6", "2.31-13+deb11u6", "glibc")})).empty());
    CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "libc6", "2.36-9+deb12u1", "glibc")})).size() == 1);
    // A point release's VERSION_ID would still be "12"; the major is what counts.
    CHECK(db.match(inventory(os("debian", "12.4"), {pkg("deb", "libc6", "2.36-9+deb12u1", "glibc")})).size() == 1);
    CHECK(db.match(inventory(OsRelease(), {pkg("deb", "libc6", "2.36-9+deb12u1", "glibc")})).empty());
    CHECK(db.match(inventory(os("ubuntu", "22.04"), {pkg("deb", "libc6", "2.36-9+deb12u1", "glibc")})).empty());
  }
  SECTION("the binary's own name is not the source's") {
    // No Source: the binary is named for the advisory's package only if it is its own source.
    CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "libc6", "2.36-9+deb12u1")})).empty());
    CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "glibc", "2.36-9+deb12u1")})).size() == 1);
  }
  SECTION("the source version decides, not the binary's (binNMU)") {
    // libc6 2.36-9+deb12u1+b1 built from glibc 2.36-9+deb12u3: fixed.
    CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "libc6", "2.36-9+deb12u1+b1", "glibc", "2.36-9+deb12u3")})).empty());
    auto f = db.match(inventory(os("debian", "12"), {pkg("deb", "libc6", "2.36-9+deb12u3+b1", "glibc", "2.36-9+deb12u1")}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].installed == "2.36-9+deb12u3+b1");  // what is installed, as installed
    CHECK(f[0].fixed == "2.36-9+deb12u3");
  }
  SECTION("openssl's libssl3") {
    auto f = db.match(inventory(os("debian", "12"), {pkg("deb", "libssl3", "3.0.11-1~deb12u1", "openssl"),
                                                     pkg("deb", "openssl", "3.0.11-1~deb12u1")}));
    REQUIRE(f.size() == 2);
    CHECK(ids(f) == std::vector<std::string>{"CVE-2023-5678 libssl3@3.0.11-1~deb12u1", "CVE-2023-5678 openssl@3.0.11-1~deb12u1"});
    CHECK(f[0].fixed == "3.0.13-1~deb12u1");
    CHECK(f[0].severity == Severity::kMedium);
    CHECK(f[0].score == Approx(5.3));
    CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "libssl3", "3.0.13-1~deb12u1", "openssl")})).empty());
    // ~ sorts before everything: 3.0.13-1~deb12u1 < 3.0.13-1.
    CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "libssl3", "3.0.13-1", "openssl")})).empty());
  }
  SECTION("findings worst first") {
    auto f = db.match(inventory(os("debian", "12"), {pkg("deb", "libssl3", "3.0.11-1~deb12u1", "openssl"),
                                                     pkg("deb", "libc6", "2.36-9+deb12u1", "glibc")}));
    CHECK(ids(f) == std::vector<std::string>{"DSA-5514-1 libc6@2.36-9+deb12u1", "CVE-2023-5678 libssl3@3.0.11-1~deb12u1"});
  }
}

TEST_CASE("vuln db: an advisory for a source package matches the binaries built from it", "[core][scan]") {
  VulnDb db;
  addOk(db, kZlib37434);
  auto f = db.match(inventory(os("debian", "11"), {
                                                      pkg("deb", "zlib1g", "1:1.2.11.dfsg-2+deb11u1", "zlib"),
                                                      pkg("deb", "zlib1g-dev", "1:1.2.11.dfsg-2+deb11u1", "zlib"),
                                                      pkg("deb", "libminizip1", "1:1.2.11.dfsg-2+deb11u1", "zlib"),
                                                      // Another source, whatever the binary is called.
                                                      pkg("deb", "zlib", "1:1.2.11.dfsg-2+deb11u1", "not-zlib"),
                                                      pkg("deb", "libz-other", "1:1.2.11.dfsg-2+deb11u1", "zlib-ng"),
                                                  }));
  CHECK(ids(f) == std::vector<std::string>{"DSA-5218-1 libminizip1@1:1.2.11.dfsg-2+deb11u1",
                                           "DSA-5218-1 zlib1g@1:1.2.11.dfsg-2+deb11u1",
                                           "DSA-5218-1 zlib1g-dev@1:1.2.11.dfsg-2+deb11u1"});
  for (const auto& x : f) {
    CHECK(x.fixed == "1:1.2.11.dfsg-2+deb11u2");
    CHECK(x.severity == Severity::kCritical);
    CHECK(x.aliases == std::vector<std::string>{"CVE-2022-37434"});
  }
  CHECK(db.match(inventory(os("debian", "11"), {pkg("deb", "zlib1g", "1:1.2.11.dfsg-2+deb11u2", "zlib")})).empty());
  CHECK(db.match(inventory(os("debian", "12"), {pkg("deb", "zlib1g", "1:1.2.11.dfsg-2+deb11u1", "zlib")})).empty());
}

TEST_CASE("vuln db: Ubuntu advisories name LTS releases", "[core][scan]") {
  VulnDb db;
  addOk(db, R"({"id": "UBUNTU-CVE-2023-5678", "aliases": ["CVE-2023-5678"],
    "affected": [{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "openssl"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.13"}]}]},
                 {"package": {"ecosystem": "Ubuntu:23.10", "name": "openssl"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.10-1ubuntu2.2"}]}]}]})");
  auto lts = db.match(inventory(os("ubuntu", "22.04"), {pkg("deb", "libssl3", "3.0.2-0ubuntu1.12", "openssl")}));
  REQUIRE(lts.size() == 1);
  CHECK(lts[0].fixed == "3.0.2-0ubuntu1.13");
  CHECK(lts[0].ecosystem == "Ubuntu:22.04");
  auto interim = db.match(inventory(os("ubuntu", "23.10"), {pkg("deb", "libssl3", "3.0.10-1ubuntu2.1", "openssl")}));
  REQUIRE(interim.size() == 1);
  CHECK(interim[0].fixed == "3.0.10-1ubuntu2.2");
  CHECK(db.match(inventory(os("ubuntu", "22.04"), {pkg("deb", "libssl3", "3.0.2-0ubuntu1.13", "openssl")})).empty());
  CHECK(db.match(inventory(os("ubuntu", "20.04"), {pkg("deb", "libssl1.1", "1.1.1f-1ubuntu2.19", "openssl")})).empty());
}

TEST_CASE("vuln db: Alpine advisories match by origin in the release", "[core][scan]") {
  VulnDb db;
  addOk(db, R"({"id": "ALPINE-CVE-2023-5678", "aliases": ["CVE-2023-5678"],
    "affected": [{"package": {"ecosystem": "Alpine:v3.18", "name": "openssl"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r1"}]}]}]})");
  auto f = db.match(inventory(os("alpine", "3.18.4"), {pkg("apk", "libcrypto3", "3.1.4-r0", "openssl"),
                                                       pkg("apk", "libssl3", "3.1.4-r0", "openssl"),
                                                       pkg("apk", "musl", "1.2.4-r2")}));
  CHECK(ids(f) == std::vector<std::string>{"ALPINE-CVE-2023-5678 libcrypto3@3.1.4-r0", "ALPINE-CVE-2023-5678 libssl3@3.1.4-r0"});
  REQUIRE(!f.empty());
  CHECK(f[0].ecosystem == "Alpine:v3.18");
  CHECK(f[0].fixed == "3.1.4-r1");
  CHECK(f[0].type == "apk");
  CHECK(f[0].severity == Severity::kUnknown);
  CHECK(db.match(inventory(os("alpine", "3.18.4"), {pkg("apk", "libcrypto3", "3.1.4-r1", "openssl")})).empty());
  CHECK(db.match(inventory(os("alpine", "3.19.0"), {pkg("apk", "libcrypto3", "3.1.4-r0", "openssl")})).empty());
  CHECK(db.match(inventory(os("debian", "12"), {pkg("apk", "libcrypto3", "3.1.4-r0", "openssl")})).empty());
}

TEST_CASE("vuln db: language ecosystems", "[core][scan]") {
  VulnDb db;
  // PyPI, named as the project spells itself; GitHub's severity only.
  addOk(db, R"({"id": "GHSA-jh3w-4vvf-mjgr", "aliases": ["CVE-2023-36053"],
    "summary": "Django has regular expression denial of service vulnerability in EmailValidator/URLValidator",
    "database_specific": {"severity": "HIGH", "github_reviewed": true},
    "affected": [
      {"package": {"ecosystem": "PyPI", "name": "Django"},
       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.2a1"}, {"fixed": "3.2.20"}]}]},
      {"package": {"ecosystem": "PyPI", "name": "Django"},
       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "4.2a1"}, {"fixed": "4.2.3"}]}]}]})");
  // npm.
  addOk(db, R"({"id": "GHSA-35jh-r3h4-6jhm", "aliases": ["CVE-2021-23337"], "summary": "Command Injection in lodash",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}],
    "database_specific": {"severity": "HIGH"},
    "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
                  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}]})");
  // Go: a module and the standard library, SEMVER ranges without the v.
  addOk(db, R"({"id": "GO-2023-2102", "aliases": ["CVE-2023-39325", "GHSA-4374-p667-p6c8"],
    "summary": "HTTP/2 rapid reset can cause excessive work in net/http",
    "affected": [
      {"package": {"ecosystem": "Go", "name": "stdlib"},
       "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.20.10"}, {"introduced": "1.21.0-0"}, {"fixed": "1.21.3"}]}]},
      {"package": {"ecosystem": "Go", "name": "golang.org/x/net"},
       "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.17.0"}]}]}]})");
  // Maven: Log4Shell.
  addOk(db, R"({"id": "GHSA-jfh8-c2jp-5v3q", "aliases": ["CVE-2021-44228"], "summary": "Remote code injection in Log4j",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}],
    "affected": [{"package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.13.0"}, {"fixed": "2.15.0"}]},
                             {"type": "ECOSYSTEM", "events": [{"introduced": "2.0-beta9"}, {"fixed": "2.3.1"}]},
                             {"type": "ECOSYSTEM", "events": [{"introduced": "2.4"}, {"fixed": "2.12.2"}]}]}]})");
  CHECK(db.advisories() == 4);
  auto per = db.perEcosystem();
  CHECK(per["PyPI"] == 1);  // two entries, one advisory
  CHECK(per["npm"] == 1);
  CHECK(per["Go"] == 1);
  CHECK(per["Maven"] == 1);

  SECTION("PyPI: normalised names, PEP 440 order") {
    auto f = db.match(inventory(OsRelease(), {pkg("pypi", "django", "4.2.2")}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].advisory == "GHSA-jh3w-4vvf-mjgr");
    CHECK(f[0].fixed == "4.2.3");
    CHECK(f[0].ecosystem == "PyPI");
    CHECK(f[0].severity == Severity::kHigh);
    CHECK(f[0].score == 0);
    CHECK(f[0].aliases == std::vector<std::string>{"CVE-2023-36053"});
    CHECK(db.match(inventory(OsRelease(), {pkg("pypi", "Django", "3.2.19")})).size() == 1);
    CHECK(db.match(inventory(OsRelease(), {pkg("pypi", "django", "3.2.19")}))[0].fixed == "3.2.20");
    CHECK(db.match(inventory(OsRelease(), {pkg("pypi", "django", "4.2.3")})).empty());
    CHECK(db.match(inventory(OsRelease(), {pkg("pypi", "django", "4.1.9")})).empty());  // 4.1 not in these ranges
    CHECK(db.match(inventory(OsRelease(), {pkg("pypi", "django", "4.2rc1")})).size() == 1);
    CHECK(db.match(inventory(OsRelease(), {pkg("pypi", "django-extensions", "3.2.1")})).empty());
  }
  SECTION("npm") {
    auto f = db.match(inventory(OsRelease(), {pkg("npm", "lodash", "4.17.20"), pkg("npm", "lodash", "4.17.21"),
                                              pkg("npm", "Lodash", "4.17.20")}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].package == "lodash");
    CHECK(f[0].installed == "4.17.20");
    CHECK(f[0].fixed == "4.17.21");
    CHECK(f[0].score == Approx(7.2));
    CHECK(f[0].severity == Severity::kHigh);
    CHECK(f[0].ecosystem == "npm");
  }
  SECTION("Go modules and the standard library") {
    auto f = db.match(inventory(OsRelease(), {pkg("golang", "golang.org/x/net", "v0.15.0"), pkg("golang", "stdlib", "v1.21.1"),
                                              pkg("golang", "golang.org/x/net", "v0.17.0"), pkg("golang", "stdlib", "v1.20.10")}));
    CHECK(ids(f) == std::vector<std::string>{"GO-2023-2102 golang.org/x/net@v0.15.0", "GO-2023-2102 stdlib@v1.21.1"});
    REQUIRE(f.size() == 2);
    CHECK(f[0].fixed == "0.17.0");
    CHECK(f[1].fixed == "1.21.3");
    CHECK(f[0].aliases.front() == "CVE-2023-39325");
    CHECK(f[0].severity == Severity::kUnknown);
    CHECK(db.match(inventory(OsRelease(), {pkg("golang", "stdlib", "v1.20.9")}))[0].fixed == "1.20.10");
    // Pseudo-versions are pre-releases of the next version.
    CHECK(db.match(inventory(OsRelease(), {pkg("golang", "golang.org/x/net", "v0.16.1-0.20231011000000-abcdefabcdef")})).size() == 1);
  }
  SECTION("Maven") {
    auto f = db.match(inventory(OsRelease(), {pkg("maven", "org.apache.logging.log4j:log4j-core", "2.14.1")}));
    REQUIRE(f.size() == 1);
    CHECK(f[0].advisory == "GHSA-jfh8-c2jp-5v3q");
    CHECK(f[0].fixed == "2.15.0");
    CHECK(f[0].severity == Severity::kCritical);
    CHECK(f[0].score == Approx(10.0));
    CHECK(f[0].ecosystem == "Maven");
    CHECK(db.match(inventory(OsRelease(), {pkg("maven", "org.apache.logging.log4j:log4j-core", "2.12.1")}))[0].fixed == "2.12.2");
    CHECK(db.match(inventory(OsRelease(), {pkg("maven", "org.apache.logging.log4j:log4j-core", "2.15.0")})).empty());
    CHECK(db.match(inventory(OsRelease(), {pkg("maven", "org.apache.logging.log4j:log4j-core", "2.12.2")})).empty());
    CHECK(db.match(inventory(OsRelease(), {pkg("maven", "org.apache.logging.log4j:log4j-api", "2.14.1")})).empty());
    CHECK(db.match(inventory(OsRelease(), {pkg("maven", "org.apache.logging.log4j:log4j-core", "2.0-beta8")})).empty());
  }
  SECTION("the same package in two layers: a finding each") {
    auto f = db.match(inventory(OsRelease(), {pkg("npm", "lodash", "4.17.20", "", "", "sha256:a"),
                                              pkg("npm", "lodash", "4.17.20", "", "", "sha256:b")}));
    REQUIRE(f.size() == 2);
    CHECK(f[0].layer != f[1].layer);
  }
}

TEST_CASE("vuln db: last_affected, exact versions, limits", "[core][scan]") {
  VulnDb db;
  addOk(db, R"({"id": "TEST-LAST-1", "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"last_affected": "1.3.0"}]}]}]})");
  addOk(db, R"({"id": "TEST-VERSIONS-1", "affected": [{"package": {"ecosystem": "npm", "name": "event-stream"},
    "versions": ["3.3.6"]}]})");
  addOk(db, R"({"id": "TEST-GIT-1", "affected": [{"package": {"ecosystem": "npm", "name": "gitonly"},
    "ranges": [{"type": "GIT", "repo": "https://example.com/x.git", "events": [{"introduced": "0"}, {"fixed": "abcdef"}]}]}]})");

  auto m = [&](const std::string& name, const std::string& version) {
    return db.match(inventory(OsRelease(), {pkg("npm", name, version)}));
  };
  auto last = m("left-pad", "1.3.0");
  REQUIRE(last.size() == 1);
  CHECK(last[0].fixed.empty());
  CHECK(findingToJson(last[0])["fixed"].is_null());
  CHECK(m("left-pad", "1.0.0").size() == 1);
  CHECK(m("left-pad", "1.3.1").empty());
  CHECK(m("left-pad", "0.9.9").empty());
  CHECK(m("event-stream", "3.3.6").size() == 1);
  CHECK(m("event-stream", "3.3.5").empty());
  CHECK(m("event-stream", "4.0.0").empty());
  CHECK(m("gitonly", "1.0.0").empty());
  // An installed version that is no version at all matches nothing.
  CHECK(m("left-pad", "not-a-version").empty());
}

TEST_CASE("vuln db: withdrawn and malformed advisories", "[core][scan]") {
  VulnDb db;
  auto withdrawn = db.add(R"({"id": "GHSA-withdrawn", "withdrawn": "2023-01-01T00:00:00Z",
    "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
                  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]})");
  CHECK(withdrawn.isOk());
  CHECK(db.advisories() == 0);
  CHECK(db.match(inventory(OsRelease(), {pkg("npm", "lodash", "4.17.20")})).empty());

  auto bad = [&](const std::string& text) -> std::string {
    Status s = db.add(text);
    INFO(text);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(!s.message().empty());
    return s.message();
  };
  bad("not json");
  bad("[]");
  bad(R"({"affected": []})");
  bad(R"({"id": "", "affected": []})");
  bad(R"({"id": 7, "affected": []})");
  CHECK(bad(R"({"id": "NO-AFFECTED"})").find("NO-AFFECTED") != std::string::npos);
  bad(R"({"id": "X-1", "affected": ["npm"]})");
  CHECK(bad(R"({"id": "X-2", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
              "ranges": [{"type": "SOMETHING", "events": [{"introduced": "0"}]}]}]})")
            .find("X-2") != std::string::npos);
  bad(R"({"id": "X-3", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
              "ranges": [{"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1.0.0"}]}]}]})");
  bad(R"({"id": "X-4", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
              "ranges": [{"type": "SEMVER", "events": []}]}]})");
  // Fields of the wrong type: a Status, never an exception.
  for (const char* text : {
           R"({"id": "T-1", "affected": [{"package": {"ecosystem": 5, "name": "a"}, "versions": ["1"]}]})",
           R"({"id": "T-2", "affected": [{"package": {"ecosystem": "npm", "name": ["a"]}, "versions": ["1"]}]})",
           R"({"id": "T-3", "affected": [{"package": {"ecosystem": null, "name": "a"}, "versions": ["1"]}]})",
       }) {
    INFO(text);
    Status s = Status::ok();
    CHECK_NOTHROW(s = db.add(text));
    CHECK(s.code() == Code::kInvalidArgument);
  }
  CHECK(db.advisories() == 0);
  // Rejected advisories are not counted, not even as an ecosystem with none.
  CHECK(db.perEcosystem().empty());

  // Kept but never matched: ecosystems without a version order here, entries without a package.
  CHECK(db.add(R"({"id": "RUSTSEC-2023-0001", "affected": [{"package": {"ecosystem": "Hex", "name": "x"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]})").isOk());
  CHECK(db.add(R"({"id": "OSV-GIT-1", "affected": [{"ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}]}]}]})").isOk());
  CHECK(db.advisories() == 2);
  CHECK(db.perEcosystem()["Hex"] == 1);
}

TEST_CASE("vuln db: severity sources and aliases", "[core][scan]") {
  VulnDb db;
  // The highest CVSS v3 score wins; v2 and v4 vectors are not scored here.
  addOk(db, R"({"id": "TEST-SEV-1", "aliases": ["GHSA-aaaa-bbbb-cccc", "CVE-2024-0001", "OSV-1"],
    "severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
                 {"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"},
                 {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
    "database_specific": {"severity": "LOW"},
    "affected": [{"package": {"ecosystem": "npm", "name": "a"}, "versions": ["1.0.0"]}]})");
  // GitHub's MODERATE.
  addOk(db, R"({"id": "TEST-SEV-2", "database_specific": {"severity": "MODERATE"},
    "affected": [{"package": {"ecosystem": "npm", "name": "a"}, "versions": ["1.0.0"]}]})");
  // Per affected entry (Ubuntu and others put it there).
  addOk(db, R"({"id": "TEST-SEV-3",
    "affected": [{"package": {"ecosystem": "npm", "name": "a"}, "versions": ["1.0.0"],
                  "ecosystem_specific": {"severity": "critical"}}]})");
  addOk(db, R"({"id": "TEST-SEV-4",
    "affected": [{"package": {"ecosystem": "npm", "name": "a"}, "versions": ["1.0.0"]}]})");
  auto f = db.match(inventory(OsRelease(), {pkg("npm", "a", "1.0.0")}));
  CHECK(ids(f) == std::vector<std::string>{"TEST-SEV-3 a@1.0.0", "TEST-SEV-1 a@1.0.0", "TEST-SEV-2 a@1.0.0", "TEST-SEV-4 a@1.0.0"});
  REQUIRE(f.size() == 4);
  CHECK(f[0].severity == Severity::kCritical);
  CHECK(f[1].severity == Severity::kHigh);
  CHECK(f[1].score == Approx(7.5));
  CHECK(f[1].aliases == std::vector<std::string>{"CVE-2024-0001", "GHSA-aaaa-bbbb-cccc", "OSV-1"});
  CHECK(f[2].severity == Severity::kMedium);
  CHECK(f[3].severity == Severity::kUnknown);
  CHECK(findingToJson(f[3])["severity"] == "UNKNOWN");
}

TEST_CASE("vuln db: long summaries are cut on a character boundary", "[core][scan]") {
  VulnDb db;
  // 499 ASCII bytes, then two-byte characters: a cut at 500 bytes would split one.
  std::string summary = std::string(499, 's');
  for (int i = 0; i < 20; ++i) summary += "\xc3\xa9";  // é
  nlohmann::json osv = {{"id", "TEST-UTF8-1"},
                        {"summary", summary},
                        {"affected", {{{"package", {{"ecosystem", "npm"}, {"name", "a"}}}, {"versions", {"1.0.0"}}}}}};
  addOk(db, osv.dump());
  auto f = db.match(inventory(OsRelease(), {pkg("npm", "a", "1.0.0")}));
  REQUIRE(f.size() == 1);
  CHECK(f[0].summary.size() <= 500);
  CHECK(f[0].summary.size() >= 499);
  CHECK(f[0].summary.substr(0, 499) == std::string(499, 's'));
  std::string text;
  CHECK_NOTHROW(text = findingToJson(f[0]).dump());
  CHECK(nlohmann::json::parse(text)["summary"].get<std::string>() == f[0].summary);
}

TEST_CASE("vuln db: matchKeyOf", "[core][scan]") {
  MatchKey deb = matchKeyOf(pkg("deb", "libc6", "2.36-9+deb12u1+b1", "glibc", "2.36-9+deb12u1"), os("debian", "12"));
  CHECK(deb.ecosystem == "Debian:12");
  CHECK(deb.name == "glibc");
  CHECK(deb.version == "2.36-9+deb12u1");
  MatchKey same = matchKeyOf(pkg("deb", "libc6", "2.36-9+deb12u1", "glibc"), os("debian", "12"));
  CHECK(same.version == "2.36-9+deb12u1");
  CHECK(matchKeyOf(pkg("deb", "bash", "5.1-6ubuntu1"), os("ubuntu", "22.04")).ecosystem == "Ubuntu:22.04");
  CHECK(matchKeyOf(pkg("apk", "libcrypto3", "3.1.4-r0", "openssl"), os("alpine", "3.18.4")).ecosystem == "Alpine:v3.18");
  CHECK(matchKeyOf(pkg("apk", "libcrypto3", "3.1.4-r0", "openssl"), os("alpine", "3.18.4")).name == "openssl");
  CHECK(matchKeyOf(pkg("rpm", "openssl-libs", "1:3.0.7-24.el9"), os("rocky", "9.3")).ecosystem == "Rocky Linux:9");
  CHECK(matchKeyOf(pkg("rpm", "openssl-libs", "1:3.0.7-24.el9"), os("almalinux", "9.3")).ecosystem == "AlmaLinux:9");
  CHECK(matchKeyOf(pkg("pypi", "Foo_Bar", "1.0"), OsRelease()).name == "foo-bar");
  CHECK(matchKeyOf(pkg("pypi", "Foo_Bar", "1.0"), OsRelease()).ecosystem == "PyPI");
  CHECK(matchKeyOf(pkg("golang", "stdlib", "v1.21.1"), OsRelease()).ecosystem == "Go");
  CHECK(matchKeyOf(pkg("maven", "g:a", "1"), OsRelease()).ecosystem == "Maven");
  CHECK(matchKeyOf(pkg("deb", "x", "1"), OsRelease()).ecosystem.empty());
  CHECK(matchKeyOf(pkg("unknown", "x", "1"), os("debian", "12")).ecosystem.empty());
}

}  // namespace vuln_db_test
