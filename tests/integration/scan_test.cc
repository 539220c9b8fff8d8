// The scanner against the real wharf-core: images pushed over the registry API (and one
// with skopeo) are scanned on push, their package lists and findings checked against a
// test OSV feed of real advisories with their real fixed versions; the database is fed
// from a configured source directory (vulndb-update) and from an uploaded zip
// (vulndb-import), and a new generation re-matches stored images (scan.updated).
// Whiteouts and opaque directories across layers, hostile layers, SBOMs, permissions and
// wharfctl scan / vulndb.
//
// The Debian fixture is this machine's own dpkg database: the package list the scanner
// finds in an image holding it must be exactly what dpkg-query reads from the same files.
#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <set>

#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/support/edge_server.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/postgres.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace scan_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

std::string sha(const std::string& data) { return digestOf(data).str(); }

json parse(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  INFO(r.body);
  REQUIRE(!j.is_discarded());
  return j;
}

HttpResponse call(HttpClient& c, const std::string& method, const std::string& path, const HeaderList& headers = {},
                  const std::string& body = "") {
  auto r = c.request(method, path, headers, body);
  REQUIRE(r.isOk());
  return *r;
}

// Real advisories (ids, aliases and fixed versions as their sources publish them).
const char* kGlibc = R"({"id":"DSA-5514-1","modified":"2023-10-03T00:00:00Z","aliases":["CVE-2023-4911"],
 "summary":"glibc - security update",
 "affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"},
   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.36-9+deb12u3"}]}]}],
 "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}]})";
const char* kOpenssl = R"({"id":"DSA-5532-1","modified":"2023-10-24T00:00:00Z","aliases":["CVE-2023-5363"],
 "summary":"openssl - security update",
 "affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]}],
 "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]})";
const char* kMinizip = R"({"id":"DEBIAN-CVE-2023-45853","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2023-45853"],
 "summary":"MiniZip in zlib through 1.3 has an integer overflow",
 "affected":[{"package":{"ecosystem":"Debian:12","name":"minizip"},
   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.1-8+deb12u1"}]}]}],
 "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]})";
const char* kAlpineOpenssl = R"({"id":"CVE-2023-5363","modified":"2023-11-01T00:00:00Z",
 "affected":[{"package":{"ecosystem":"Alpine:v3.18","name":"openssl"},
   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.1.4-r0"}]}]}]})";
const char* kRequests = R"({"id":"GHSA-j8r2-6x86-q33q","modified":"2023-06-01T00:00:00Z","aliases":["CVE-2023-32681"],
 "summary":"Unintended leak of Proxy-Authorization header in requests",
 "affected":[{"package":{"ecosystem":"PyPI","name":"requests"},
   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}]}],
 "database_specific":{"severity":"MODERATE"}})";
const char* kLodash = R"({"id":"GHSA-p6mc-m468-83gw","modified":"2020-07-15T00:00:00Z","aliases":["CVE-2020-8203"],
 "summary":"Prototype Pollution in lodash",
 "affected":[{"package":{"ecosystem":"npm","name":"lodash"},
   "ranges":[{"type":"SEMVER","events":[{"introduced":"3.7.0"},{"fixed":"4.17.19"}]}]}],
 "database_specific":{"severity":"HIGH"}})";
const char* kLog4j = R"({"id":"GHSA-jfh8-c2jp-5v3q","modified":"2021-12-10T00:00:00Z","aliases":["CVE-2021-44228"],
 "summary":"Remote code injection in Log4j",
 "affected":[{"package":{"ecosystem":"Maven","name":"org.apache.logging.log4j:log4j-core"},
   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0-beta9"},{"fixed":"2.15.0"}]}]}],
 "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}]})";
// Added later, to see stored images matched again.
const char* kPysec = R"({"id":"PYSEC-2023-74","modified":"2023-05-26T00:00:00Z","aliases":["CVE-2023-32681"],
 "affected":[{"package":{"ecosystem":"PyPI","name":"requests"},
   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}]}]})";

const char* kDebianOsRelease =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
const char* kOldStatus =
    "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u1\n"
    "Description: GNU C Library\n\n"
    "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n\n"
    "Package: libminizip1\nStatus: install ok installed\nArchitecture: amd64\nSource: minizip\nVersion: 1.1-8\n\n"
    "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\n"
    "Package: oldpkg\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n";
const char* kRequestsMeta = "Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\nSummary: HTTP\n";

// A zip (a jar, or a database) from name -> content, with libarchive.
std::string makeZip(const std::map<std::string, std::string>& files) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* c, const void* b, size_t n) -> la_ssize_t {
        static_cast<std::string*>(c)->append(static_cast<const char*>(b), n);
        return la_ssize_t(n);
      },
      nullptr);
  for (const auto& [name, content] : files) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, la_int64_t(content.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

struct Pushed {
  std::string digest;
  std::vector<std::string> layers;
};

// Pushes an image of the given layers (each a tar, gzipped here) over the registry API.
// Pushes an image of the given layer blobs (gzipped tars, or any bytes) over the registry API.
Pushed pushBlobs(HttpClient& c, const std::string& repo, const std::string& tag, const std::vector<std::string>& blobs,
                 const HeaderList& auth = {}) {
  Pushed p;
  json layers = json::array();
  for (const auto& gz : blobs) {
    auto r = call(c, "POST", "/v2/" + repo + "/blobs/uploads/?digest=" + sha(gz), auth, gz);
    REQUIRE(r.status == 201);
    layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", sha(gz)}, {"size", gz.size()}});
    p.layers.push_back(sha(gz));
  }
  std::string config = json{{"architecture", "amd64"}, {"os", "linux"}}.dump();
  auto r = call(c, "POST", "/v2/" + repo + "/blobs/uploads/?digest=" + sha(config), auth, config);
  REQUIRE(r.status == 201);
  std::string manifest = json{{"schemaVersion", 2},
                              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                              {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", sha(config)},
                                          {"size", config.size()}}},
                              {"layers", layers}}
                             .dump();
  HeaderList put = auth;
  put.push_back({"Content-Type", "application/vnd.oci.image.manifest.v1+json"});
  r = call(c, "PUT", "/v2/" + repo + "/manifests/" + tag, put, manifest);
  INFO(r.body);
  REQUIRE(r.status == 201);
  p.digest = sha(manifest);
  return p;
}

// The same with the layers given as tars (gzipped here).
Pushed pushImage(HttpClient& c, const std::string& repo, const std::string& tag, const std::vector<std::string>& tars,
                 const HeaderList& auth = {}) {
  std::vector<std::string> blobs;
  for (const auto& tar : tars) blobs.push_back(gzip(tar));
  return pushBlobs(c, repo, tag, blobs, auth);
}

// Waits for the stored scan of repo@ref to reach a final status; returns it.
json waitScan(HttpClient& c, const std::string& repo, const std::string& ref, const HeaderList& h = {},
              int deadline_ms = 60000) {
  json out;
  bool done = waitFor(
      [&] {
        auto r = call(c, "GET", "/api/v1/repositories/" + repo + "/manifests/" + ref + "/scan", h);
        if (r.status != 200) return false;
        out = parse(r);
        return out.value("status", "") == "completed" || out.value("status", "") == "failed";
      },
      deadline_ms);
  INFO(out.dump());
  REQUIRE(done);
  return out;
}

std::set<std::string> findingSet(const json& scan) {
  std::set<std::string> out;
  for (const auto& f : scan["findings"]) out.insert(f["advisory"].get<std::string>() + " " + f["package"].get<std::string>());
  return out;
}

const json* findingOf(const json& scan, const std::string& advisory) {
  for (const auto& f : scan["findings"])
    if (f["advisory"] == advisory) return &f;
  return nullptr;
}

const json* packageOf(const json& scan, const std::string& name) {
  for (const auto& p : scan["packages"])
    if (p["name"] == name) return &p;
  return nullptr;
}

json jobWait(HttpClient& c, const std::string& id, const HeaderList& h = {}) {
  json j;
  REQUIRE(waitFor(
      [&] {
        j = parse(call(c, "GET", "/api/v1/jobs/" + id, h));
        std::string s = j.value("state", "");
        return s == "succeeded" || s == "failed" || s == "cancelled";
      },
      60000));
  return j;
}

json vulndb(HttpClient& c, const HeaderList& h = {}) { return parse(call(c, "GET", "/api/v1/vulndb", h)); }

void writeOsv(const std::string& dir, const std::string& id, const char* text) {
  REQUIRE(makeDirs(dir).isOk());
  REQUIRE(writeFileDurable(dir + "/" + id + ".json", text).isOk());
}

uint64_t metric(HttpClient& c, const std::string& line_prefix) {
  auto r = call(c, "GET", "/metrics");
  auto pos = r.body.find("\n" + line_prefix + " ");
  if (pos == std::string::npos) return 0;
  return std::stoull(r.body.substr(pos + line_prefix.size() + 2));
}

}  // namespace

TEST_CASE("scanning: packages per layer, whiteouts, findings from OSV, rematch on a new database", "[scan]") {
  TempDir tmp;
  std::string osv = tmp.path() + "/osv";
  writeOsv(osv, "DSA-5514-1", kGlibc);
  writeOsv(osv, "DSA-5532-1", kOpenssl);
  writeOsv(osv, "DEBIAN-CVE-2023-45853", kMinizip);
  writeOsv(osv, "CVE-2023-5363", kAlpineOpenssl);
  writeOsv(osv, "GHSA-j8r2-6x86-q33q", kRequests);
  writeOsv(osv, "GHSA-p6mc-m468-83gw", kLodash);
  writeOsv(osv, "GHSA-jfh8-c2jp-5v3q", kLog4j);
  CoreServer core("", {"--vulndb-sources", osv, "--scan-on-push", "true"});
  HttpClient c("127.0.0.1", core.port());

  // The configured source is imported at start.
  json db;
  REQUIRE(waitFor([&] { return (db = vulndb(c))["generation"].get<uint64_t>() >= 1; }, 30000));
  CHECK(db["advisories"] == 7);
  CHECK(db["ecosystems"]["Debian"] == 3);
  CHECK(db["ecosystems"]["PyPI"] == 1);
  CHECK(db["stale"] == false);
  uint64_t generation = db["generation"];

  std::string base = makeTar({{"etc/os-release", kDebianOsRelease}, {"var/lib/dpkg/status", kOldStatus}});
  std::string jar = makeZip({{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n"},
                             {"META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
                              "groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n"}});
  std::string apps = makeTar({{"usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA", kRequestsMeta},
                              {"app/node_modules/lodash/package.json", R"({"name":"lodash","version":"4.17.15"})"},
                              {"app/lib/log4j-core-2.14.1.jar", jar}});

  SECTION("an image's packages, findings with their layers, an SBOM") {
    Pushed img = pushImage(c, "team/old", "v1", {base, apps});
    json s = waitScan(c, "team/old", "v1");
    INFO(s.dump(1));
    REQUIRE(s["status"] == "completed");
    CHECK(s["digest"] == img.digest);
    CHECK(s["os"]["id"] == "debian");
    CHECK(s["os"]["version_id"] == "12");
    CHECK(s["db"]["generation"] == generation);
    // Four installed Debian packages (not the config-files one), requests, lodash, log4j.
    CHECK(s["packages"].size() == 7);
    CHECK(packageOf(s, "oldpkg") == nullptr);
    const json* libc = packageOf(s, "libc6");
    REQUIRE(libc != nullptr);
    CHECK((*libc)["source"] == "glibc");
    CHECK((*libc)["layer"] == img.layers[0]);
    CHECK((*libc)["ecosystem"] == "Debian:12");
    CHECK((*libc)["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=glibc");
    const json* requests = packageOf(s, "requests");
    REQUIRE(requests != nullptr);
    CHECK((*requests)["layer"] == img.layers[1]);
    CHECK((*requests)["purl"] == "pkg:pypi/requests@2.28.1");
    const json* log4j = packageOf(s, "org.apache.logging.log4j:log4j-core");
    REQUIRE(log4j != nullptr);
    CHECK((*log4j)["purl"] == "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1");

    // libminizip1 (source minizip) has the minizip advisory; zlib1g (source zlib) not.
    CHECK(findingSet(s) == std::set<std::string>{"DSA-5514-1 libc6", "DSA-5532-1 libssl3",
                                                 "DEBIAN-CVE-2023-45853 libminizip1", "GHSA-j8r2-6x86-q33q requests",
                                                 "GHSA-p6mc-m468-83gw lodash", "GHSA-jfh8-c2jp-5v3q org.apache.logging.log4j:log4j-core"});
    const json* f = findingOf(s, "DSA-5514-1");
    REQUIRE(f != nullptr);
    CHECK((*f)["installed"] == "2.36-9+deb12u1");
    CHECK((*f)["fixed"] == "2.36-9+deb12u3");
    CHECK((*f)["severity"] == "HIGH");  // 7.8
    CHECK((*f)["layer"] == img.layers[0]);
    CHECK((*f)["aliases"] == json::array({"CVE-2023-4911"}));
    CHECK(findingOf(s, "GHSA-jfh8-c2jp-5v3q")->at("severity") == "CRITICAL");
    CHECK(findingOf(s, "GHSA-jfh8-c2jp-5v3q")->at("layer") == img.layers[1]);
    CHECK(findingOf(s, "GHSA-j8r2-6x86-q33q")->at("severity") == "MEDIUM");
    CHECK(s["counts"]["CRITICAL"] == 2);  // minizip 9.8, log4j 10.0
    CHECK(s["findings"][0]["severity"] == "CRITICAL");

    // The same image by digest, and its SBOMs.
    json by_digest = waitScan(c, "team/old", img.digest);
    CHECK(by_digest["findings"] == s["findings"]);
    auto spdx = call(c, "GET", "/api/v1/repositories/team/old/manifests/v1/sbom?format=spdx");
    REQUIRE(spdx.status == 200);
    CHECK(spdx.header("content-type").rfind("application/spdx+json", 0) == 0);
    json sp = parse(spdx);
    CHECK(sp["spdxVersion"] == "SPDX-2.3");
    CHECK(sp["packages"].size() == 8);  // the image and its 7 packages
    CHECK(sp["relationships"].size() == 8);
    CHECK(spdx.body.find("pkg:npm/lodash@4.17.15") != std::string::npos);
    auto cdx = call(c, "GET", "/api/v1/repositories/team/old/manifests/v1/sbom?format=cyclonedx");
    REQUIRE(cdx.status == 200);
    json cd = parse(cdx);
    CHECK(cd["bomFormat"] == "CycloneDX");
    CHECK(cd["specVersion"] == "1.5");
    CHECK(cd["components"].size() == 8);  // the OS and 7 packages
    CHECK(call(c, "GET", "/api/v1/repositories/team/old/manifests/v1/sbom?format=xml").status == 400);
    CHECK(call(c, "GET", "/api/v1/repositories/team/old/manifests/nope/scan").status == 404);
    CHECK(call(c, "GET", "/api/v1/repositories/team/old/manifests/v1/scan", {}, "").status == 200);
    CHECK(call(c, "DELETE", "/api/v1/repositories/team/old/manifests/v1/scan").status == 405);
  }

  SECTION("whiteouts and opaque directories across layers; a layer shared by images is read once") {
    uint64_t read_before = metric(c, "wharf_scan_layers_total{source=\"read\"}");
    Pushed plain = pushImage(c, "team/stack", "plain", {base, apps});
    json s0 = waitScan(c, "team/stack", "plain");
    // The status file deleted by a later layer: no Debian packages, no Debian findings.
    Pushed wh = pushImage(c, "team/stack", "whiteout", {base, makeTar({{"var/lib/dpkg/.wh.status", ""}})});
    json s1 = waitScan(c, "team/stack", "whiteout");
    INFO(s1.dump(1));
    CHECK(s1["packages"].empty());
    CHECK(s1["findings"].empty());
    CHECK(s1["os"]["id"] == "debian");  // os-release is still there
    // An opaque site-packages hides the lower layer's requests.
    Pushed opq = pushImage(c, "team/stack", "opaque",
                           {apps, makeTar({{"usr/lib/python3/dist-packages/.wh..wh..opq", ""}})});
    json s2 = waitScan(c, "team/stack", "opaque");
    INFO(s2.dump(1));
    CHECK(packageOf(s2, "requests") == nullptr);
    CHECK(packageOf(s2, "lodash") != nullptr);
    // An upgrade in a later layer: libssl3 fixed there, the rest still from the base.
    std::string upgraded = kOldStatus;
    upgraded.replace(upgraded.find("3.0.11-1~deb12u1"), 16, "3.0.11-1~deb12u2");
    Pushed up = pushImage(c, "team/stack", "upgraded", {base, makeTar({{"var/lib/dpkg/status", upgraded}})});
    json s3 = waitScan(c, "team/stack", "upgraded");
    INFO(s3.dump(1));
    CHECK(findingOf(s3, "DSA-5532-1") == nullptr);
    CHECK(findingOf(s3, "DSA-5514-1") != nullptr);
    CHECK(packageOf(s3, "libc6")->at("layer") == up.layers[0]);
    CHECK(packageOf(s3, "libssl3")->at("layer") == up.layers[1]);
    CHECK(packageOf(s3, "libssl3")->at("version") == "3.0.11-1~deb12u2");
    // base and apps were pushed four and two times: each read once.
    uint64_t read_after = metric(c, "wharf_scan_layers_total{source=\"read\"}");
    CHECK(read_after - read_before == 5);  // base, apps, the whiteout, the opaque, the upgrade
    CHECK(metric(c, "wharf_scan_layers_total{source=\"cache\"}") >= 3);
    (void)plain;
    (void)wh;
    (void)opq;
    (void)s0;
  }

  SECTION("Alpine: matched by origin package and release") {
    std::string installed = "C:Q1abc=\nP:libssl3\nV:3.1.3-r0\nA:x86_64\no:openssl\n\nC:Q1def=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\n";
    pushImage(c, "team/alpine", "3.18",
              {makeTar({{"etc/os-release", "ID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n"},
                        {"lib/apk/db/installed", installed}})});
    json s = waitScan(c, "team/alpine", "3.18");
    INFO(s.dump(1));
    CHECK(s["packages"].size() == 2);
    CHECK(findingSet(s) == std::set<std::string>{"CVE-2023-5363 libssl3"});
    CHECK(findingOf(s, "CVE-2023-5363")->at("fixed") == "3.1.4-r0");
    CHECK(packageOf(s, "libssl3")->at("purl") == "pkg:apk/alpine/libssl3@3.1.3-r0?arch=x86_64&distro=3.18.4&upstream=openssl");
  }

  SECTION("a new database generation re-matches stored images from their package lists") {
    Pushed with_requests = pushImage(c, "team/re", "py", {base, apps});
    Pushed without = pushImage(c, "team/re", "deb", {base});
    json a0 = waitScan(c, "team/re", "py");
    json b0 = waitScan(c, "team/re", "deb");
    // An image deleted and collected: its result goes at the next re-match.
    Pushed gone = pushImage(c, "team/re", "gone", {makeTar({{"var/lib/dpkg/status", kOldStatus}, {"x", "gone"}})});
    waitScan(c, "team/re", "gone");
    REQUIRE(call(c, "DELETE", "/v2/team/re/manifests/" + gone.digest).status == 202);
    auto gc = call(c, "POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                   json{{"kind", "gc"}, {"params", {{"untagged_older_than", "0s"}, {"grace", "0s"}}}}.dump());
    INFO(gc.body);
    REQUIRE(gc.status == 202);
    json gc_job = jobWait(c, parse(gc)["id"]);
    INFO(gc_job.dump(1));
    REQUIRE(gc_job["state"] == "succeeded");
    uint64_t read_before = metric(c, "wharf_scan_layers_total{source=\"read\"}");
    auto events_before = parse(call(c, "GET", "/api/v1/events?type=scan.updated"));
    writeOsv(osv, "PYSEC-2023-74", kPysec);
    auto r = call(c, "POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                  json{{"kind", "vulndb-update"}, {"params", json::object()}}.dump());
    REQUIRE(r.status == 202);
    json job = jobWait(c, parse(r)["id"]);
    INFO(job.dump(1));
    REQUIRE(job["state"] == "succeeded");
    json now = vulndb(c);
    CHECK(now["generation"].get<uint64_t>() > generation);
    CHECK(now["advisories"] == 8);
    CHECK(job["result"]["imported"]["removed"] == 1);
    INFO(gc_job.dump(1));
    json a1 = waitScan(c, "team/re", "py");
    CHECK(findingOf(a1, "PYSEC-2023-74") != nullptr);
    CHECK(a1["db_generation"] == now["generation"]);
    json b1 = waitScan(c, "team/re", "deb");
    CHECK(b1["findings"] == b0["findings"]);
    // No layer was read again; the changed image got an event, the other none.
    CHECK(metric(c, "wharf_scan_layers_total{source=\"read\"}") == read_before);
    json events;
    REQUIRE(waitFor([&] {
      events = parse(call(c, "GET", "/api/v1/events?type=scan.updated"));
      return events["events"].size() > events_before["events"].size();
    }));
    std::set<std::string> updated;
    for (const auto& e : events["events"]) updated.insert(e["target"].value("digest", ""));
    CHECK(updated.count(with_requests.digest) == 1);
    CHECK(updated.count(without.digest) == 0);

    // Nothing changed: the next update imports nothing.
    r = call(c, "POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
             json{{"kind", "vulndb-update"}, {"params", json::object()}}.dump());
    job = jobWait(c, parse(r)["id"]);
    CHECK(job["state"] == "succeeded");
    CHECK(vulndb(c)["generation"] == now["generation"]);
    (void)a0;
  }

  SECTION("an uploaded zip is a source of its own; a bad one switches nothing") {
    std::string zip = makeZip({{"PYSEC-2023-74.json", kPysec}, {"README.txt", "not an advisory"}});
    auto r = call(c, "POST", "/api/v1/vulndb", {{"Content-Type", "application/zip"}}, zip);
    INFO(r.body);
    REQUIRE(r.status == 202);
    json job = jobWait(c, parse(r)["job"]);
    INFO(job.dump(1));
    REQUIRE(job["state"] == "succeeded");
    json now = vulndb(c);
    CHECK(now["advisories"] == 8);  // the configured source's 7 and the upload's 1
    CHECK(now["sources"].contains("upload"));
    uint64_t good = now["generation"];

    r = call(c, "POST", "/api/v1/vulndb", {{"Content-Type", "application/zip"}}, "this is not a zip");
    REQUIRE(r.status == 202);
    job = jobWait(c, parse(r)["job"]);
    CHECK(job["state"] == "failed");
    CHECK(job["error"].get<std::string>().find("not switched") != std::string::npos);
    CHECK(vulndb(c)["generation"] == good);
    CHECK(vulndb(c)["advisories"] == 8);
    r = call(c, "POST", "/api/v1/vulndb", {{"Content-Type", "application/zip"}},
             makeZip({{"bad.json", "{\"id\": 12}"}, {"worse.json", "[1,2"}}));
    job = jobWait(c, parse(r)["job"]);
    CHECK(job["state"] == "failed");
    CHECK(vulndb(c)["generation"] == good);
  }

  SECTION("a vulnerability policy refuses pulls of images with fixable findings, exemptions let them through") {
    Pushed img = pushImage(c, "gate/app", "v1", {base});
    pushImage(c, "other/app", "v1", {base});
    json s = waitScan(c, "gate/app", "v1");
    waitScan(c, "other/app", "v1");
    REQUIRE(findingOf(s, "DEBIAN-CVE-2023-45853") != nullptr);
    auto setPolicy = [&](const std::string& scope, const json& p) {
      auto r = call(c, "PUT", "/api/v1/policies/" + scope, {{"Content-Type", "application/json"}}, p.dump());
      INFO(r.body);
      REQUIRE(r.status == 200);
    };
    auto pull = [&](const std::string& repo) {
      return call(c, "GET", "/v2/" + repo + "/manifests/v1", {{"Accept", "application/vnd.oci.image.manifest.v1+json"}});
    };
    REQUIRE(pull("gate/app").status == 200);
    setPolicy("gate/*", {{"scan", {{"block_severity", "CRITICAL"}}}});
    auto r = pull("gate/app");
    CHECK(r.status == 403);
    CHECK(r.body.find("DENIED") != std::string::npos);
    CHECK(r.body.find("DEBIAN-CVE-2023-45853 (CVE-2023-45853) in libminizip1 1.1-8, CRITICAL, fixed in 1.1-8+deb12u1") !=
          std::string::npos);
    CHECK(call(c, "GET", "/v2/gate/app/manifests/" + img.digest).status == 403);
    CHECK(call(c, "HEAD", "/v2/gate/app/manifests/v1").status == 200);  // the pull is the GET
    CHECK(pull("other/app").status == 200);  // no policy there
    // Exempted by its CVE id until tomorrow: the next worst is HIGH, under the bar.
    setPolicy("gate/*", {{"scan", {{"block_severity", "CRITICAL"},
                                   {"exemptions", {{{"advisory", "CVE-2023-45853"}, {"reason", "minizip is not used"},
                                                    {"expires", "2999-01-01T00:00:00Z"}}}}}}});
    CHECK(pull("gate/app").status == 200);
    // A repository opts out of its namespace's policy with NONE.
    setPolicy("gate/*", {{"scan", {{"block_severity", "CRITICAL"}}}});
    CHECK(pull("gate/app").status == 403);
    setPolicy("gate/app", {{"scan", {{"block_severity", "NONE"}}}});
    CHECK(pull("gate/app").status == 200);
    // HIGH: the glibc and openssl advisories block it; an expired exemption counts for nothing.
    setPolicy("gate/app", {{"scan", {{"block_severity", "HIGH"},
                                     {"exemptions", {{{"advisory", "DSA-5514-1"}, {"reason", "old"},
                                                      {"expires", "2001-01-01T00:00:00Z"}}}}}}});
    r = pull("gate/app");
    CHECK(r.status == 403);
    CHECK(r.body.find("gate/app (HIGH and above") != std::string::npos);
    auto bad = call(c, "PUT", "/api/v1/policies/gate/app", {{"Content-Type", "application/json"}},
                    R"({"scan":{"block_severity":"HIGH","exemptions":[{"advisory":"X"}]}})");
    CHECK(bad.status == 400);
    CHECK(call(c, "DELETE", "/api/v1/policies/gate/app").status == 204);
    CHECK(call(c, "DELETE", "/api/v1/policies/gate/*").status == 204);
    CHECK(pull("gate/app").status == 200);
  }

  SECTION("hostile layers end their scan with a clear error; the core goes on") {
    std::string escape = makeTar({{"../../etc/passwd", "root:x:0:0"}});
    pushImage(c, "team/bad", "escape", {escape});
    json s = waitScan(c, "team/bad", "escape");
    CHECK(s["status"] == "failed");
    CHECK(s["error"].get<std::string>().find("..") != std::string::npos);
    // A gzip stream corrupted in the middle (pushed as is: its digest is of these bytes).
    std::string gz = gzip(makeTar({{"var/lib/dpkg/status", std::string(200000, 'x')}}));
    for (size_t i = gz.size() / 2; i < gz.size() / 2 + 64; ++i) gz[i] = char(gz[i] ^ 0x5a);
    pushBlobs(c, "team/bad", "corrupt", {gz});
    s = waitScan(c, "team/bad", "corrupt");
    CHECK(s["status"] == "failed");
    CHECK(!s["error"].get<std::string>().empty());
    // The event follows the stored result (the log commits in batches).
    CHECK(waitFor([&] { return parse(call(c, "GET", "/api/v1/events?type=scan.failed"))["events"].size() == 2; }));
    // Still serving, and still scanning.
    pushImage(c, "team/bad", "fine", {base});
    CHECK(waitScan(c, "team/bad", "fine")["status"] == "completed");
  }
}

TEST_CASE("scanning: edges drop the images a vulnerability policy refuses", "[scan][edge]") {
  const char* password = "edge-admin-password";  // EdgeServer's default
  TempDir tmp;
  writeOsv(tmp.path() + "/osv", "DEBIAN-CVE-2023-45853", kMinizip);
  ::setenv("WHARF_ADMIN_PASSWORD", password, 1);
  CoreServer core("", {"--auth", "token", "--vulndb-sources", tmp.path() + "/osv", "--scan-on-push", "true"});
  ::unsetenv("WHARF_ADMIN_PASSWORD");
  EdgeServer edge(core, {"--tag-ttl", "1h"});
  HttpClient c("127.0.0.1", core.port());
  HeaderList admin = {{"Authorization", basicAuthorization("admin", password)}, {"Content-Type", "application/json"}};
  REQUIRE(waitFor([&] { return vulndb(c, admin)["generation"].get<uint64_t>() >= 1; }, 30000));
  HeaderList push = {{"Authorization", "Bearer " + registryToken(core.port(), "admin", password,
                                                                 "repository:acme/app:push,pull")}};
  Pushed img = pushImage(c, "acme/app", "v1",
                         {makeTar({{"etc/os-release", kDebianOsRelease}, {"var/lib/dpkg/status", kOldStatus}})}, push);
  REQUIRE(findingOf(waitScan(c, "acme/app", "v1", admin), "DEBIAN-CVE-2023-45853") != nullptr);

  // Cached at the edge (the tag for an hour, the manifest by digest for good).
  HttpClient e("127.0.0.1", edge.port());
  HeaderList pull = {{"Authorization", "Bearer " + registryToken(core.port(), "admin", password, "repository:acme/app:pull")},
                     {"Accept", "application/vnd.oci.image.manifest.v1+json"}};
  REQUIRE(call(e, "GET", "/v2/acme/app/manifests/v1", pull).status == 200);
  REQUIRE(call(e, "GET", "/v2/acme/app/manifests/" + img.digest, pull).status == 200);

  // A policy refuses it: the edges drop it and ask the core, which refuses.
  auto r = call(c, "PUT", "/api/v1/policies/acme/*", admin, R"({"scan":{"block_severity":"CRITICAL"}})");
  REQUIRE(r.status == 200);
  CHECK(waitFor([&] { return call(e, "GET", "/v2/acme/app/manifests/v1", pull).status == 403; }, 20000));
  CHECK(call(e, "GET", "/v2/acme/app/manifests/" + img.digest, pull).status == 403);
  // Exempted: served again (fetched from the core).
  r = call(c, "PUT", "/api/v1/policies/acme/*", admin,
           R"({"scan":{"block_severity":"CRITICAL","exemptions":[{"advisory":"CVE-2023-45853","reason":"unused",)"
           R"("expires":"2999-01-01T00:00:00Z"}]}})");
  REQUIRE(r.status == 200);
  CHECK(call(e, "GET", "/v2/acme/app/manifests/v1", pull).status == 200);
  CHECK(call(e, "GET", "/v2/acme/app/manifests/" + img.digest, pull).status == 200);  // cached again

  // A database update finds a new advisory: the re-match drops the image from the edges.
  r = call(c, "PUT", "/api/v1/policies/acme/*", admin,
           R"({"scan":{"block_severity":"HIGH","exemptions":[{"advisory":"CVE-2023-45853","reason":"unused",)"
           R"("expires":"2999-01-01T00:00:00Z"}]}})");
  REQUIRE(r.status == 200);
  CHECK(call(e, "GET", "/v2/acme/app/manifests/" + img.digest, pull).status == 200);
  writeOsv(tmp.path() + "/osv", "DSA-5532-1", kOpenssl);
  r = call(c, "POST", "/api/v1/jobs", admin, json{{"kind", "vulndb-update"}, {"params", json::object()}}.dump());
  REQUIRE(r.status == 202);
  REQUIRE(jobWait(c, parse(r)["id"], admin)["state"] == "succeeded");
  CHECK(waitFor([&] { return call(e, "GET", "/v2/acme/app/manifests/" + img.digest, pull).status == 403; }, 20000));
}

TEST_CASE("scanning: the SBOM as an OCI referrer, once per image", "[scan]") {
  CoreServer core("", {"--scan-attach-sbom", "true", "--scan-on-push", "true"});
  HttpClient c("127.0.0.1", core.port());
  Pushed img = pushImage(c, "team/sbom", "v1",
                         {makeTar({{"etc/os-release", kDebianOsRelease}, {"var/lib/dpkg/status", kOldStatus}})});
  REQUIRE(waitScan(c, "team/sbom", "v1")["status"] == "completed");
  json refs;
  auto spdxReferrers = [&] {
    refs = parse(call(c, "GET", "/v2/team/sbom/referrers/" + img.digest + "?artifactType=application/spdx%2Bjson"));
    return refs["manifests"].size();
  };
  REQUIRE(waitFor([&] { return spdxReferrers() == 1; }));
  std::string ref = refs["manifests"][0]["digest"];
  json m = parse(call(c, "GET", "/v2/team/sbom/manifests/" + ref, {{"Accept", "application/vnd.oci.image.manifest.v1+json"}}));
  CHECK(m["subject"]["digest"] == img.digest);
  CHECK(m["artifactType"] == "application/spdx+json");
  auto blob = call(c, "GET", "/v2/team/sbom/blobs/" + m["layers"][0]["digest"].get<std::string>());
  REQUIRE(blob.status == 200);
  json doc = parse(blob);
  CHECK(doc["spdxVersion"] == "SPDX-2.3");
  CHECK(doc["packages"].size() == 5);  // the image and its four packages
  // Scanned again on demand: still one SBOM referrer.
  auto r = call(c, "POST", "/api/v1/repositories/team/sbom/manifests/v1/scan");
  REQUIRE(r.status == 202);
  REQUIRE(jobWait(c, parse(r)["job"])["state"] == "succeeded");
  CHECK(spdxReferrers() == 1);
}

TEST_CASE("scanning: this machine's dpkg database pushed with skopeo equals dpkg-query's list", "[scan][clients]") {
  if (!haveCommand("skopeo") || !haveCommand("dpkg-query")) {
    WARN("skopeo or dpkg-query missing: skipped");
    return;
  }
  std::string status;
  REQUIRE(readFile("/var/lib/dpkg/status", &status).isOk());
  std::string os_release;
  REQUIRE(readFile("/etc/os-release", &os_release).isOk());
  TempDir tmp;
  // The same files as a tree for dpkg-query, and as an image for the core.
  REQUIRE(makeDirs(tmp.path() + "/root/var/lib/dpkg").isOk());
  REQUIRE(writeFileDurable(tmp.path() + "/root/var/lib/dpkg/status", status).isOk());
  ImageSpec spec;
  spec.layers.push_back({{"etc/os-release", os_release}, {"var/lib/dpkg/status", status}});
  writeOciLayout(tmp.path() + "/layout", "host", {spec});
  CoreServer core("", {"--scan-on-push", "true"});
  auto pushed = run({"skopeo", "copy", "--dest-tls-verify=false", "oci:" + tmp.path() + "/layout:host",
                     "docker://" + core.address() + "/debian/host:12"});
  INFO(pushed.output);
  REQUIRE(pushed.exit_code == 0);
  HttpClient c("127.0.0.1", core.port());
  json s = waitScan(c, "debian/host", "12");
  REQUIRE(s["status"] == "completed");

  auto q = run({"dpkg-query", "--admindir=" + tmp.path() + "/root/var/lib/dpkg", "-W", "-f",
                "${db:Status-Status}\\t${Package}\\t${Version}\\n"});
  REQUIRE(q.exit_code == 0);
  std::multiset<std::string> expected, got;
  std::istringstream lines(q.output);
  for (std::string line; std::getline(lines, line);) {
    auto tab = line.find('\t');
    std::string state = line.substr(0, tab);
    if (state == "not-installed" || state == "config-files") continue;
    expected.insert(line.substr(tab + 1));
  }
  for (const auto& p : s["packages"]) got.insert(p["name"].get<std::string>() + "\t" + p["version"].get<std::string>());
  CHECK(expected.size() > 100);
  CHECK(got == expected);
  CHECK(s["os"]["id"] == "debian");
}

TEST_CASE("scanning: results follow pull permission; wharfctl scan and vulndb", "[scan][auth]") {
  const char* password = "scan-admin-password";
  setenv("WHARF_ADMIN_PASSWORD", password, 1);
  TempDir tmp;
  CoreServer core("", {"--auth", "token", "--scan-on-push", "true"});
  unsetenv("WHARF_ADMIN_PASSWORD");
  HttpClient c("127.0.0.1", core.port());
  HeaderList admin = {{"Authorization", basicAuthorization("admin", password)}};
  auto r = call(c, "POST", "/api/v1/users", {admin[0], {"Content-Type", "application/json"}},
                json{{"name", "eve"}, {"password", "eve-long-password"}}.dump());
  REQUIRE(r.status == 201);
  // Push as admin with a registry token.
  auto tok = call(c, "GET", "/auth/token?service=wharf&scope=repository:team/app:push,pull", admin);
  REQUIRE(tok.status == 200);
  HeaderList bearer = {{"Authorization", "Bearer " + parse(tok)["token"].get<std::string>()}};
  std::string tar = makeTar({{"etc/os-release", kDebianOsRelease}, {"var/lib/dpkg/status", kOldStatus}});
  pushImage(c, "team/app", "v1", {tar}, bearer);
  // The same image in a second repository.
  auto tok2 = call(c, "GET", "/auth/token?service=wharf&scope=repository:team/other:push,pull", admin);
  pushImage(c, "team/other", "v1", {tar}, {{"Authorization", "Bearer " + parse(tok2)["token"].get<std::string>()}});
  json s = waitScan(c, "team/app", "v1", admin);
  CHECK(waitScan(c, "team/other", "v1", admin)["status"] == "completed");
  CHECK(s["packages"].size() == 4);

  std::string path = "/api/v1/repositories/team/app/manifests/v1/scan";
  CHECK(call(c, "GET", path).status == 401);  // private: credentials first
  HeaderList eve = {{"Authorization", basicAuthorization("eve", "eve-long-password")}};
  CHECK(call(c, "GET", path, eve).status == 404);  // unknown to whoever may not pull it
  CHECK(call(c, "POST", path, eve).status == 404);
  CHECK(call(c, "POST", "/api/v1/vulndb", eve, "PK").status == 403);
  auto eve_db = call(c, "GET", "/api/v1/vulndb", eve);
  CHECK(eve_db.status == 200);
  CHECK(!parse(eve_db).contains("sources_configured"));  // where the data comes from is the administrators'
  CHECK(parse(call(c, "GET", "/api/v1/vulndb", admin)).contains("sources_configured"));
  // A registry token is held to its scopes here too: pull on team/app only.
  auto scoped = call(c, "GET", "/auth/token?service=wharf&scope=repository:team/app:pull", admin);
  REQUIRE(scoped.status == 200);
  HeaderList pull_only = {{"Authorization", "Bearer " + parse(scoped)["token"].get<std::string>()}};
  CHECK(call(c, "GET", path, pull_only).status == 200);
  CHECK(call(c, "POST", path, pull_only).status == 403);  // no push in the token, admin or not
  CHECK(call(c, "GET", "/api/v1/repositories/team/other/manifests/v1/scan", pull_only).status == 404);
  CHECK(call(c, "GET", "/api/v1/vulndb").status == 401);
  REQUIRE(call(c, "PATCH", "/api/v1/repositories/team/app", {admin[0], {"Content-Type", "application/json"}},
               R"({"public":true})").status == 200);
  CHECK(call(c, "GET", path).status == 200);  // public: anyone may pull, so anyone may read
  CHECK(call(c, "POST", path, eve).status == 403);  // but scanning on demand needs push

  // wharfctl against the same core.
  std::string cfg = tmp.path() + "/wharfctl.json";
  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {wharfctlBinary(), "--config", cfg};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  auto login = ctl({"login", core.url(), "-u", "admin", "-p", password});
  INFO(login.output);
  REQUIRE(login.exit_code == 0);
  auto show = ctl({"scan", "show", "team/app:v1"});
  INFO(show.output);
  CHECK(show.exit_code == 0);
  CHECK(show.output.find("os: Debian GNU/Linux 12 (bookworm)") != std::string::npos);
  CHECK(show.output.find("packages: 4") != std::string::npos);
  auto pk = ctl({"scan", "show", "team/app:v1", "--packages"});
  CHECK(pk.output.find("pkg:deb/debian/libminizip1@1.1-8?arch=amd64&distro=debian-12&upstream=minizip") != std::string::npos);
  std::string zip = tmp.path() + "/db.zip";
  REQUIRE(writeFileDurable(zip, makeZip({{"DSA-5514-1.json", kGlibc}})).isOk());
  auto imp = ctl({"vulndb", "import", zip, "-f"});
  INFO(imp.output);
  CHECK(imp.exit_code == 0);
  auto dbshow = ctl({"vulndb", "show"});
  INFO("vulndb show: " << dbshow.exit_code << " " << dbshow.output);
  CHECK(dbshow.output.find("advisories: 1") != std::string::npos);
  show = ctl({"scan", "show", "team/app:v1"});
  CHECK(show.output.find("DSA-5514-1") != std::string::npos);
  CHECK(show.output.find("2.36-9+deb12u3") != std::string::npos);
  auto sbom = ctl({"scan", "sbom", "team/app:v1", "--format", "cyclonedx"});
  CHECK(sbom.exit_code == 0);
  CHECK(sbom.output.find("\"specVersion\": \"1.5\"") != std::string::npos);
  auto runscan = ctl({"scan", "run", "team/app:v1", "-f"});
  INFO(runscan.output);
  CHECK(runscan.exit_code == 0);
  CHECK(ctl({"scan", "show", "nope"}).exit_code != 0);
}

TEST_CASE("scan on PostgreSQL: a database uploaded to one replica is imported there, and every replica loads it",
          "[scan][pg][scale-out]") {
  if (!PostgresServer::available()) {
    WARN("PostgreSQL is not installed: skipped");
    return;
  }
  std::string db = PostgresServer::shared().freshDatabase();
  TempDir blobs;
  std::vector<std::string> shared = {"--metadata", db, "--blobs", "file://" + blobs.path()};
  CoreServer a("", shared), b("", shared);
  HttpClient ca("127.0.0.1", a.port()), cb("127.0.0.1", b.port());
  CHECK(vulndb(cb)["loaded_generation"] == 0);
  // Uploaded to b: the zip is a file of b's, so b's runner imports it, whoever polls first.
  for (int round = 1; round <= 3; ++round) {
    std::string zip = makeZip({{"DSA-5514-1.json", kGlibc}, {"DSA-5532-1.json", kOpenssl}});
    auto r = call(cb, "POST", "/api/v1/vulndb", {{"Content-Type", "application/zip"}}, zip);
    INFO(r.body);
    REQUIRE(r.status == 202);
    json job = jobWait(ca, parse(r)["job"]);
    INFO(job.dump(1));
    REQUIRE(job["state"] == "succeeded");
    CHECK(job["pinned"].get<std::string>().find("/" + std::to_string(b.process().pid()) + "/") != std::string::npos);
  }
  json on_b = vulndb(cb);
  CHECK(on_b["loaded_generation"] == on_b["generation"]);
  // a switches to it within a few seconds, without a restart.
  CHECK(waitFor([&] { return vulndb(ca)["loaded_generation"] == on_b["generation"]; }, 15000));
}

}  // namespace scan_test
