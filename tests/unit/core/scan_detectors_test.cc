#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "core/scan/detectors.h"

// Each file's own names: the test binaries are unity builds.
namespace scan_detectors_test {

using namespace wharf;

namespace {

std::vector<Package> parsed(const Result<std::vector<Package>>& r) {
  INFO(r.status().message());
  REQUIRE(r.isOk());
  return *r;
}

const Package* byName(const std::vector<Package>& v, const std::string& name) {
  for (const auto& p : v)
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> names(std::vector<Package> v) {
  std::vector<std::string> out;
  for (const auto& p : v) out.push_back(p.name + "@" + p.version);
  std::sort(out.begin(), out.end());
  return out;
}

// A bookworm status file, shortened; fields as dpkg writes them.
const char* kDpkgStatus =
    "Package: libc6\n"
    "Status: install ok installed\n"
    "Priority: optional\n"
    "Section: libs\n"
    "Installed-Size: 12987\n"
    "Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n"
    "Architecture: amd64\n"
    "Multi-Arch: same\n"
    "Source: glibc (2.36-9+deb12u1)\n"
    "Version: 2.36-9+deb12u1\n"
    "Replaces: libc6-amd64\n"
    "Depends: libgcc-s1\n"
    "Conffiles:\n"
    " /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab\n"
    "Description: GNU C Library: Shared libraries\n"
    " Contains the standard libraries that are used by nearly all programs on\n"
    " the system. This package includes shared versions of the standard C library\n"
    " and the standard math library, as well as many others.\n"
    "Homepage: https://www.gnu.org/software/libc/libc.html\n"
    "\n"
    "Package: zlib1g\n"
    "Status: install ok installed\n"
    "Priority: optional\n"
    "Section: libs\n"
    "Architecture: amd64\n"
    "Multi-Arch: same\n"
    "Source: zlib\n"
    "Version: 1:1.2.13.dfsg-1\n"
    "Description: compression library - runtime\n"
    " zlib is a library implementing the deflate compression method found\n"
    " in gzip and PKZIP.\n"
    " .\n"
    " Package: not-a-package\n"
    " Version: 0.0\n"
    "\n"
    "Package: oldconf\n"
    "Status: deinstall ok config-files\n"
    "Priority: optional\n"
    "Architecture: all\n"
    "Version: 1.0-1\n"
    "Conffiles:\n"
    " /etc/oldconf.conf 0123456789abcdef0123456789abcdef\n"
    "Description: removed, its configuration kept\n"
    "\n"
    "Package: gone\n"
    "Status: purge ok not-installed\n"
    "Architecture: amd64\n"
    "Version: 2.0-1\n"
    "\n"
    "Package: bash\n"
    "Essential: yes\n"
    "Status: install ok installed\n"
    "Priority: required\n"
    "Section: shells\n"
    "Architecture: amd64\n"
    "Multi-Arch: foreign\n"
    "Source: bash (5.2.15-2)\n"
    "Version: 5.2.15-2+b2\n"
    "Description: GNU Bourne Again SHell\n"
    " Bash is an sh-compatible command language interpreter.\n"
    "\n"
    "Package: base-files\n"
    "Status: install ok installed\n"
    "Architecture: amd64\n"
    "Version: 12.4+deb12u2\n"
    "Description: Debian base system miscellaneous files\n";

}  // namespace

TEST_CASE("detectors: detectorFor by path", "[core][scan]") {
  CHECK(detectorFor("var/lib/dpkg/status") == Detector::kDpkg);
  CHECK(detectorFor("var/lib/dpkg/status.d/base") == Detector::kDpkg);
  CHECK(detectorFor("var/lib/dpkg/status.d/libssl3") == Detector::kDpkg);
  CHECK(detectorFor("lib/apk/db/installed") == Detector::kApk);
  CHECK(detectorFor("usr/lib/apk/db/installed") == Detector::kApk);
  CHECK(detectorFor("var/lib/rpm/rpmdb.sqlite") == Detector::kRpm);
  CHECK(detectorFor("var/lib/rpm/Packages") == Detector::kRpm);
  CHECK(detectorFor("usr/lib/sysimage/rpm/rpmdb.sqlite") == Detector::kRpm);
  CHECK(detectorFor("usr/lib/sysimage/rpm/Packages.db") == Detector::kRpm);
  CHECK(detectorFor("usr/share/rpm/Packages") == Detector::kRpm);
  CHECK(detectorFor("etc/os-release") == Detector::kOsRelease);
  CHECK(detectorFor("usr/lib/os-release") == Detector::kOsRelease);
  CHECK(detectorFor("usr/lib/python3/dist-packages/foo.dist-info/METADATA") == Detector::kPython);
  CHECK(detectorFor("usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA") == Detector::kPython);
  CHECK(detectorFor("usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO") == Detector::kPython);
  CHECK(detectorFor("app/node_modules/express/package.json") == Detector::kNpmPackage);
  CHECK(detectorFor("node_modules/express/package.json") == Detector::kNpmPackage);
  CHECK(detectorFor("app/node_modules/@babel/core/package.json") == Detector::kNpmPackage);
  CHECK(detectorFor("app/node_modules/a/node_modules/b/package.json") == Detector::kNpmPackage);
  CHECK(detectorFor("app/package-lock.json") == Detector::kNpmLock);
  CHECK(detectorFor("package-lock.json") == Detector::kNpmLock);
  CHECK(detectorFor("app/lib/log4j-core-2.14.1.jar") == Detector::kJava);
  CHECK(detectorFor("opt/app.war") == Detector::kJava);
  CHECK(detectorFor("opt/app.ear") == Detector::kJava);
  CHECK(detectorFor("opt/app.par") == Detector::kJava);

  // Near misses.
  CHECK(detectorFor("var/lib/dpkg/status-old") == Detector::kNone);
  CHECK(detectorFor("var/lib/dpkg/status.d/base.md5sums") == Detector::kNone);
  CHECK(detectorFor("var/lib/dpkg/status.d/sub/base") == Detector::kNone);
  CHECK(detectorFor("var/lib/dpkg/available") == Detector::kNone);
  CHECK(detectorFor("x/var/lib/dpkg/status") == Detector::kNone);
  CHECK(detectorFor("lib/apk/db/installed.bak") == Detector::kNone);
  CHECK(detectorFor("etc/os-release.d/x") == Detector::kNone);
  CHECK(detectorFor("home/etc/os-release") == Detector::kNone);
  CHECK(detectorFor("var/lib/rpm/Packages.bak") == Detector::kNone);
  CHECK(detectorFor("home/var/lib/rpm/Packages") == Detector::kNone);
  CHECK(detectorFor("var/lib/rpm/Name") == Detector::kNone);
  CHECK(detectorFor("usr/lib/python3/dist-packages/foo/METADATA") == Detector::kNone);
  CHECK(detectorFor("usr/lib/python3/dist-packages/foo.dist-info/RECORD") == Detector::kNone);
  CHECK(detectorFor("usr/lib/python3/dist-packages/foo.egg-info/METADATA") == Detector::kNone);
  CHECK(detectorFor("package.json") == Detector::kNone);  // the project's own, not a dependency
  CHECK(detectorFor("app/package.json") == Detector::kNone);
  CHECK(detectorFor("app/node_modules/package.json") == Detector::kNone);
  CHECK(detectorFor("app/node_modules/a/lib/package.json") == Detector::kNone);
  CHECK(detectorFor("app/my_node_modules/a/package.json") == Detector::kNone);
  CHECK(detectorFor("app/node_modules/babel/core/package.json") == Detector::kNone);  // not a scope
  CHECK(detectorFor("app/node_modules/a/package-lock.json") == Detector::kNone);
  CHECK(detectorFor("app/jar") == Detector::kNone);
  CHECK(detectorFor("app/x.jar.sha1") == Detector::kNone);
  CHECK(detectorFor("") == Detector::kNone);

  CHECK(std::string(detectorName(Detector::kDpkg)) == "dpkg");
  CHECK(std::string(detectorName(Detector::kNone)) == "none");
  CHECK(std::string(detectorName(Detector::kNpmLock)) == "npm-lock");
}

TEST_CASE("detectors: dpkg status, installed packages with their source", "[core][scan]") {
  auto pkgs = parsed(parseDpkgStatus(kDpkgStatus, "var/lib/dpkg/status"));
  CHECK(names(pkgs) == std::vector<std::string>{"base-files@12.4+deb12u2", "bash@5.2.15-2+b2",
                                                "libc6@2.36-9+deb12u1", "zlib1g@1:1.2.13.dfsg-1"});
  for (const auto& p : pkgs) {
    CHECK(p.type == "deb");
    CHECK(p.path == "var/lib/dpkg/status");
    CHECK(p.layer.empty());
  }

  const Package* libc = byName(pkgs, "libc6");
  REQUIRE(libc != nullptr);
  CHECK(libc->version == "2.36-9+deb12u1");
  CHECK(libc->arch == "amd64");
  CHECK(libc->source_name == "glibc");
  // The source's version is the package's: kept as "the same" (empty).
  CHECK((libc->source_version.empty() || libc->source_version == "2.36-9+deb12u1"));

  const Package* zlib = byName(pkgs, "zlib1g");
  REQUIRE(zlib != nullptr);
  CHECK(zlib->source_name == "zlib");
  CHECK((zlib->source_version.empty() || zlib->source_version == zlib->version));

  // A binNMU: the source's version differs, and the source has the package's name.
  const Package* bash = byName(pkgs, "bash");
  REQUIRE(bash != nullptr);
  CHECK(bash->version == "5.2.15-2+b2");
  CHECK((bash->source_name.empty() || bash->source_name == "bash"));
  CHECK(bash->source_version == "5.2.15-2");

  const Package* base = byName(pkgs, "base-files");
  REQUIRE(base != nullptr);
  CHECK(base->source_name.empty());
  CHECK(base->source_version.empty());

  CHECK(byName(pkgs, "oldconf") == nullptr);
  CHECK(byName(pkgs, "gone") == nullptr);
  CHECK(byName(pkgs, "not-a-package") == nullptr);  // a continuation line, not a field
}

TEST_CASE("detectors: dpkg status variants", "[core][scan]") {
  SECTION("CRLF line ends, no final newline, several blank lines") {
    auto pkgs = parsed(parseDpkgStatus("Package: a\r\nStatus: install ok installed\r\nVersion: 1.0\r\n\r\n\r\n\r\n"
                                       "Package: b\r\nVersion: 2.0\r\nStatus: install ok installed",
                                       "var/lib/dpkg/status"));
    CHECK(names(pkgs) == std::vector<std::string>{"a@1.0", "b@2.0"});
  }
  SECTION("distroless status.d: stanzas without Status") {
    auto pkgs = parsed(parseDpkgStatus("Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n"
                                       "Source: openssl\n",
                                       "var/lib/dpkg/status.d/libssl3"));
    REQUIRE(pkgs.size() == 1);
    CHECK(pkgs[0].name == "libssl3");
    CHECK(pkgs[0].source_name == "openssl");
    CHECK(pkgs[0].path == "var/lib/dpkg/status.d/libssl3");
  }
  SECTION("half-installed and unpacked packages have files on disk") {
    auto pkgs = parsed(parseDpkgStatus("Package: a\nStatus: install reinstreq half-installed\nVersion: 1\n\n"
                                       "Package: b\nStatus: install ok unpacked\nVersion: 2\n\n"
                                       "Package: c\nStatus: install ok half-configured\nVersion: 3\n",
                                       "var/lib/dpkg/status"));
    CHECK(names(pkgs) == std::vector<std::string>{"a@1", "b@2", "c@3"});
  }
  SECTION("stanzas without a name or a version are skipped; empty text is no packages") {
    CHECK(parsed(parseDpkgStatus("Package: a\nStatus: install ok installed\n\nVersion: 1\n", "s")).empty());
    CHECK(parsed(parseDpkgStatus("", "s")).empty());
    CHECK(parsed(parseDpkgStatus("garbage without colons\n\n\n", "s")).empty());
  }
}

TEST_CASE("detectors: apk installed database", "[core][scan]") {
  const char* installed =
      "C:Q1yBLwcOYWQgmcJJr5jzHVLTRPAEE=\n"
      "P:musl\n"
      "V:1.2.4-r2\n"
      "A:x86_64\n"
      "S:383152\n"
      "I:622592\n"
      "T:the musl c library (libc) implementation\n"
      "U:https://musl.libc.org/\n"
      "L:MIT\n"
      "o:musl\n"
      "m:Timo Teräs <timo.teras@iki.fi>\n"
      "t:1697471519\n"
      "c:83b858f83b658bd34eca5d8ad4d145f673ae7e5e\n"
      "F:lib\n"
      "R:ld-musl-x86_64.so.1\n"
      "a:0:0:755\n"
      "Z:Q1cSNnvm+yEB1a5DbhSOIvPhWyN7o=\n"
      "\n"
      "C:Q1/Kz8wBvnvqSa2pWMnIqD0i7U4xs=\n"
      "P:libcrypto3\n"
      "V:3.1.4-r0\n"
      "A:x86_64\n"
      "o:openssl\n"
      "D:so:libc.musl-x86_64.so.1\n"
      "\n"
      "P:nover\n"
      "A:x86_64\n";
  auto pkgs = parsed(parseApkInstalled(installed, "lib/apk/db/installed"));
  CHECK(names(pkgs) == std::vector<std::string>{"libcrypto3@3.1.4-r0", "musl@1.2.4-r2"});
  const Package* musl = byName(pkgs, "musl");
  REQUIRE(musl != nullptr);
  CHECK(musl->type == "apk");
  CHECK(musl->arch == "x86_64");
  CHECK(musl->source_name.empty());  // its own origin
  CHECK(musl->path == "lib/apk/db/installed");
  const Package* crypto = byName(pkgs, "libcrypto3");
  REQUIRE(crypto != nullptr);
  CHECK(crypto->source_name == "openssl");
  CHECK(crypto->version == "3.1.4-r0");
}

TEST_CASE("detectors: os-release", "[core][scan]") {
  OsRelease debian = parseOsRelease(
      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
      "NAME=\"Debian GNU/Linux\"\n"
      "VERSION_ID=\"12\"\n"
      "VERSION=\"12 (bookworm)\"\n"
      "VERSION_CODENAME=bookworm\n"
      "ID=debian\n"
      "HOME_URL=\"https://www.debian.org/\"\n",
      "etc/os-release");
  CHECK(debian.id == "debian");
  CHECK(debian.version_id == "12");
  CHECK(debian.pretty_name == "Debian GNU/Linux 12 (bookworm)");
  CHECK(debian.path == "etc/os-release");
  CHECK(!debian.empty());

  OsRelease alpine = parseOsRelease(
      "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n", "usr/lib/os-release");
  CHECK(alpine.id == "alpine");
  CHECK(alpine.version_id == "3.18.4");
  CHECK(alpine.pretty_name == "Alpine Linux v3.18");

  OsRelease quoted = parseOsRelease(
      "# a comment\n\n  ID='ubuntu'  \r\nVERSION_ID=\"22.04\"\nPRETTY_NAME=\"Say \\\"hi\\\" \\\\ there\"\nNOEQUALS\n", "p");
  CHECK(quoted.id == "ubuntu");
  CHECK(quoted.version_id == "22.04");
  CHECK(quoted.pretty_name == "Say \"hi\" \\ there");

  OsRelease none = parseOsRelease("NAME=nothing\n", "p");
  CHECK(none.empty());
  CHECK(parseOsRelease("", "p").empty());
}

TEST_CASE("detectors: Python metadata and PEP 503 names", "[core][scan]") {
  CHECK(normalisePythonName("Foo_Bar.baz") == "foo-bar-baz");
  CHECK(normalisePythonName("Django") == "django");
  CHECK(normalisePythonName("zope.interface") == "zope-interface");
  CHECK(normalisePythonName("a--_.b") == "a-b");
  CHECK(normalisePythonName("ruamel.yaml.clib") == "ruamel-yaml-clib");
  CHECK(normalisePythonName("requests") == "requests");

  auto pkgs = parsed(parsePythonMetadata("Metadata-Version: 2.1\n"
                                         "Name: Foo_Bar.baz\n"
                                         "Version: 2.31.0\n"
                                         "Summary: Python HTTP for Humans.\n"
                                         "Classifier: Name: not this\n"
                                         "\n"
                                         "Name: body text, not a header\n"
                                         "Version: 9.9.9\n",
                                         "usr/lib/python3/dist-packages/Foo_Bar.baz-2.31.0.dist-info/METADATA"));
  REQUIRE(pkgs.size() == 1);
  CHECK(pkgs[0].type == "pypi");
  CHECK(pkgs[0].name == "foo-bar-baz");
  CHECK(pkgs[0].version == "2.31.0");
  CHECK(pkgs[0].path == "usr/lib/python3/dist-packages/Foo_Bar.baz-2.31.0.dist-info/METADATA");

  auto crlf = parsed(parsePythonMetadata("Metadata-Version: 1.1\r\nName: six\r\nVersion: 1.16.0\r\n", "p"));
  REQUIRE(crlf.size() == 1);
  CHECK(crlf[0].name == "six");
  CHECK(crlf[0].version == "1.16.0");

  CHECK(parsed(parsePythonMetadata("Metadata-Version: 2.1\nName: noversion\n", "p")).empty());
  CHECK(parsed(parsePythonMetadata("", "p")).empty());
}

TEST_CASE("detectors: npm package.json", "[core][scan]") {
  auto pkgs = parsed(parseNpmPackageJson(R"({"name": "@babel/core", "version": "7.23.2", "license": "MIT",
                                            "dependencies": {"debug": "^4.1.0"}})",
                                         "app/node_modules/@babel/core/package.json"));
  REQUIRE(pkgs.size() == 1);
  CHECK(pkgs[0].type == "npm");
  CHECK(pkgs[0].name == "@babel/core");
  CHECK(pkgs[0].version == "7.23.2");
  CHECK(pkgs[0].path == "app/node_modules/@babel/core/package.json");

  CHECK(parsed(parseNpmPackageJson(R"({"name": "private-thing"})", "p")).empty());
  CHECK(parsed(parseNpmPackageJson(R"({"name": 3, "version": "1.0.0"})", "p")).empty());
  auto bad = parseNpmPackageJson("{not json", "app/node_modules/x/package.json");
  REQUIRE(!bad.isOk());
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(bad.status().message().find("app/node_modules/x/package.json") != std::string::npos);
  CHECK(!parseNpmPackageJson("[1, 2]", "p").isOk());
}

TEST_CASE("detectors: npm lockfile v1, nested dependencies", "[core][scan]") {
  const char* lock = R"({
    "name": "app", "version": "1.0.0", "lockfileVersion": 1, "requires": true,
    "dependencies": {
      "express": {"version": "4.18.2", "resolved": "https://registry.npmjs.org/express/-/express-4.18.2.tgz",
                  "dependencies": {
                    "debug": {"version": "2.6.9",
                              "dependencies": {"ms": {"version": "2.0.0"}}}
                  }},
      "debug": {"version": "4.3.4"},
      "ms": {"version": "2.1.2"},
      "@types/node": {"version": "20.8.0", "dev": true},
      "aliased": {"version": "npm:lodash@4.17.21"},
      "from-git": {"version": "github:user/repo#abcdef"},
      "noversion": {"resolved": "x"}
    }})";
  auto pkgs = parsed(parseNpmLock(lock, "app/package-lock.json"));
  CHECK(names(pkgs) == std::vector<std::string>{"@types/node@20.8.0", "debug@2.6.9", "debug@4.3.4", "express@4.18.2",
                                                "ms@2.0.0", "ms@2.1.2"});
  for (const auto& p : pkgs) {
    CHECK(p.type == "npm");
    CHECK(p.path == "app/package-lock.json");
  }
}

TEST_CASE("detectors: npm lockfile v2 and v3, the packages map", "[core][scan]") {
  const char* lock = R"({
    "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
    "packages": {
      "": {"name": "app", "version": "1.0.0", "dependencies": {"express": "^4.18.2"}},
      "node_modules/express": {"version": "4.18.2"},
      "node_modules/express/node_modules/debug": {"version": "2.6.9"},
      "node_modules/debug": {"version": "4.3.4"},
      "node_modules/@babel/core": {"version": "7.23.2"},
      "node_modules/a/node_modules/@s/b": {"version": "0.1.0"},
      "node_modules/linked": {"resolved": "packages/linked", "link": true},
      "packages/linked": {"name": "linked", "version": "0.0.1"},
      "node_modules/dupe": {"version": "1.0.0"},
      "node_modules/x/node_modules/dupe": {"version": "1.0.0"}
    },
    "dependencies": {"ignored-v1-section": {"version": "9.9.9"}}
  })";
  auto pkgs = parsed(parseNpmLock(lock, "package-lock.json"));
  CHECK(names(pkgs) == std::vector<std::string>{"@babel/core@7.23.2", "@s/b@0.1.0", "debug@2.6.9", "debug@4.3.4",
                                                "dupe@1.0.0", "express@4.18.2"});
  CHECK(byName(pkgs, "app") == nullptr);
  CHECK(byName(pkgs, "linked") == nullptr);

  auto bad = parseNpmLock("{\"packages\": ", "package-lock.json");
  REQUIRE(!bad.isOk());
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(parsed(parseNpmLock("{}", "p")).empty());
}

TEST_CASE("detectors: packages to JSON and back", "[core][scan]") {
  Package p{"deb", "libc6", "2.36-9+deb12u1", "glibc", "2.36-9", "amd64", "var/lib/dpkg/status", "sha256:abc"};
  auto back = packageFromJson(packageToJson(p));
  REQUIRE(back.isOk());
  CHECK(*back == p);
  Package bare;
  bare.type = "npm";
  bare.name = "x";
  bare.version = "1.0.0";
  auto j = packageToJson(bare);
  CHECK(!j.contains("source"));
  CHECK(!j.contains("layer"));
  auto back2 = packageFromJson(j);
  REQUIRE(back2.isOk());
  CHECK(*back2 == bare);
  CHECK(packageFromJson(nlohmann::json::array()).status().code() == Code::kCorruption);
  CHECK(packageFromJson(nlohmann::json{{"type", "npm"}}).status().code() == Code::kCorruption);
}

}  // namespace scan_detectors_test
