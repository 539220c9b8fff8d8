// The distribution API at the HTTP level: every status code and header the spec names.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "shared/oci/digest.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace api_test {

using namespace wharf;
using namespace wharf::test;

namespace {

std::string sha(const std::string& data) { return digestOf(data).str(); }

std::string errorCode(const HttpResponse& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "";
  return j["errors"][0].value("code", "");
}

// Pushes a blob monolithically; returns its digest.
std::string pushBlob(HttpClient& c, const std::string& repo, const std::string& data) {
  std::string d = sha(data);
  auto r = c.request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + d, {}, data);
  REQUIRE(r.isOk());
  REQUIRE(r->status == 201);
  return d;
}

struct Image {
  std::string config, layer, manifest, digest;
};

Image pushImage(HttpClient& c, const std::string& repo, const std::string& tag, const std::string& seed) {
  Image img;
  img.config = R"({"architecture":"amd64","os":"linux","seed":")" + seed + "\"}";
  img.layer = randomData(3000, std::hash<std::string>{}(seed));
  std::string cd = pushBlob(c, repo, img.config);
  std::string ld = pushBlob(c, repo, img.layer);
  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                      {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd}, {"size", img.config.size()}}},
                      {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", ld}, {"size", img.layer.size()}}}}};
  img.manifest = m.dump();
  img.digest = sha(img.manifest);
  auto r = c.request("PUT", "/v2/" + repo + "/manifests/" + tag,
                     {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, img.manifest);
  REQUIRE(r.isOk());
  REQUIRE(r->status == 201);
  CHECK(r->header("docker-content-digest") == img.digest);
  return img;
}

}  // namespace

TEST_CASE("base endpoint, health and metrics", "[api]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  auto r = c.request("GET", "/v2/");
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  CHECK(r->header("docker-distribution-api-version") == "registry/2.0");
  CHECK(r->body == "{}");
  r = c.request("GET", "/healthz");
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  r = c.request("GET", "/metrics");
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  CHECK(r->body.find("wharf_http_requests_total") != std::string::npos);
  r = c.request("GET", "/nope");
  REQUIRE(r.isOk());
  CHECK(r->status == 404);
}

TEST_CASE("blobs: monolithic push, GET, HEAD, Range, DELETE", "[api]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  std::string data = randomData(100000, 7);
  std::string d = pushBlob(c, "lib/app", data);

  auto r = c.request("GET", "/v2/lib/app/blobs/" + d);
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  CHECK(r->body == data);
  CHECK(r->header("docker-content-digest") == d);
  CHECK(r->header("etag") == "\"" + d + "\"");
  CHECK(r->header("content-length") == "100000");

  r = c.request("HEAD", "/v2/lib/app/blobs/" + d);
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  CHECK(r->header("content-length") == "100000");
  CHECK(r->body.empty());

  r = c.request("GET", "/v2/lib/app/blobs/" + d, {{"Range", "bytes=10-19"}});
  REQUIRE(r.isOk());
  CHECK(r->status == 206);
  CHECK(r->body == data.substr(10, 10));
  CHECK(r->header("content-range") == "bytes 10-19/100000");

  r = c.request("GET", "/v2/lib/app/blobs/" + d, {{"Range", "bytes=-5"}});
  REQUIRE(r.isOk());
  CHECK(r->status == 206);
  CHECK(r->body == data.substr(99995));

  r = c.request("GET", "/v2/lib/app/blobs/" + d, {{"Range", "bytes=200000-"}});
  REQUIRE(r.isOk());
  CHECK(r->status == 416);
  CHECK(r->header("content-range") == "bytes */100000");

  // Blobs are visible only in repositories they are linked to.
  r = c.request("GET", "/v2/other/blobs/" + d);
  REQUIRE(r.isOk());
  CHECK(r->status == 404);
  CHECK(errorCode(*r) == "BLOB_UNKNOWN");

  r = c.request("GET", "/v2/lib/app/blobs/sha256:" + std::string(64, 'a'));
  REQUIRE(r.isOk());
  CHECK(r->status == 404);
  CHECK(errorCode(*r) == "BLOB_UNKNOWN");

  r = c.request("GET", "/v2/lib/app/blobs/sha256:xyz");
  REQUIRE(r.isOk());
  CHECK(r->status == 400);
  CHECK(errorCode(*r) == "DIGEST_INVALID");

  r = c.request("DELETE", "/v2/lib/app/blobs/" + d);
  REQUIRE(r.isOk());
  CHECK(r->status == 202);
  r = c.request("GET", "/v2/lib/app/blobs/" + d);
  REQUIRE(r.isOk());
  CHECK(r->status == 404);
  r = c.request("DELETE", "/v2/lib/app/blobs/" + d);
  REQUIRE(r.isOk());
  CHECK(r->status == 404);
}

TEST_CASE("names, tags and paths are validated before use", "[api]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  for (const char* bad : {"/v2/UPPER/tags/list", "/v2/a..b/tags/list", "/v2/-a/tags/list", "/v2/a__-b/tags/list"}) {
    auto r = c.request("GET", bad);
    REQUIRE(r.isOk());
    CHECK(r->status == 400);
    CHECK(errorCode(*r) == "NAME_INVALID");
  }
  for (const char* bad : {"/v2/a/../b/tags/list", "/v2/a%2Fb/tags/list", "/v2/a//b/tags/list", "/v2/a/%2e%2e/tags/list"}) {
    auto r = c.request("GET", bad);
    REQUIRE(r.isOk());
    CHECK(r->status == 400);
  }
  auto r = c.request("PUT", "/v2/a/manifests/bad:tag!", {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, "{}");
  REQUIRE(r.isOk());
  CHECK(r->status == 400);
  r = c.request("PUT", "/v2/a/manifests/-tag", {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, "{}");
  REQUIRE(r.isOk());
  CHECK(r->status == 400);
  CHECK(errorCode(*r) == "TAG_INVALID");
}

TEST_CASE("manifests: push, pull by tag and digest, HEAD, delete", "[api]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  Image img = pushImage(c, "team/web", "v1", "one");

  auto r = c.request("GET", "/v2/team/web/manifests/v1");
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  CHECK(r->body == img.manifest);  // byte-exact
  CHECK(r->header("content-type") == "application/vnd.oci.image.manifest.v1+json");
  CHECK(r->header("docker-content-digest") == img.digest);

  r = c.request("GET", "/v2/team/web/manifests/" + img.digest);
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  CHECK(r->body == img.manifest);

  r = c.request("HEAD", "/v2/team/web/manifests/v1");
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  CHECK(r->header("content-length") == std::to_string(img.manifest.size()));

  auto metrics = c.request("GET", "/metrics");
  REQUIRE(metrics.isOk());
  CHECK(metrics->body.find("wharf_registry_manifests_pushed_total 1") != std::string::npos);
  CHECK(metrics->body.find("wharf_registry_blobs_committed_total 2") != std::string::npos);

  r = c.request("GET", "/v2/team/web/manifests/nope");
  REQUIRE(r.isOk());
  CHECK(r->status == 404);
  CHECK(errorCode(*r) == "MANIFEST_UNKNOWN");

  // Push by digest must hash to it.
  r = c.request("PUT", "/v2/team/web/manifests/sha256:" + std::string(64, 'b'),
                {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, img.manifest);
  REQUIRE(r.isOk());
  CHECK(r->status == 400);
  CHECK(errorCode(*r) == "DIGEST_INVALID");
  r = c.request("PUT", "/v2/team/web/manifests/" + img.digest,
                {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, img.manifest);
  REQUIRE(r.isOk());
  CHECK(r->status == 201);

  // A second tag, then delete by tag removes only that tag.
  r = c.request("PUT", "/v2/team/web/manifests/v2", {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                img.manifest);
  REQUIRE(r.isOk());
  REQUIRE(r->status == 201);
  r = c.request("DELETE", "/v2/team/web/manifests/v2");
  REQUIRE(r.isOk());
  CHECK(r->status == 202);
  CHECK(c.request("GET", "/v2/team/web/manifests/v2")->status == 404);
  CHECK(c.request("GET", "/v2/team/web/manifests/v1")->status == 200);

  // Delete by digest removes the manifest and its tags.
  r = c.request("DELETE", "/v2/team/web/manifests/" + img.digest);
  REQUIRE(r.isOk());
  CHECK(r->status == 202);
  CHECK(c.request("GET", "/v2/team/web/manifests/v1")->status == 404);
  CHECK(c.request("GET", "/v2/team/web/manifests/" + img.digest)->status == 404);
  r = c.request("DELETE", "/v2/team/web/manifests/" + img.digest);
  REQUIRE(r.isOk());
  CHECK(r->status == 404);
}

TEST_CASE("manifests: validation", "[api]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  const std::string oci = "application/vnd.oci.image.manifest.v1+json";
  std::string cfg = pushBlob(c, "v/m", "{}");
  auto put = [&](const std::string& body, const std::string& ct) {
    auto r = c.request("PUT", "/v2/v/m/manifests/t", {{"Content-Type", ct}}, body);
    REQUIRE(r.isOk());
    return *r;
  };
  // A referenced blob that does not exist.
  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", oci},
                      {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cfg}, {"size", 2}}},
                      {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", "sha256:" + std::string(64, 'c')}, {"size", 5}}}}};
  auto r = put(m.dump(), oci);
  CHECK(r.status == 400);  // as distribution and the spec's error table use it
  CHECK(errorCode(r) == "MANIFEST_BLOB_UNKNOWN");
  // Not JSON; wrong schema; mediaType disagreeing with Content-Type; ambiguous.
  CHECK(errorCode(put("not json", oci)) == "MANIFEST_INVALID");
  CHECK(errorCode(put(R"({"schemaVersion":3})", oci)) == "MANIFEST_INVALID");
  m["layers"] = nlohmann::json::array();
  CHECK(errorCode(put(m.dump(), "application/vnd.docker.distribution.manifest.v2+json")) == "MANIFEST_INVALID");
  nlohmann::json amb = m;
  amb["manifests"] = nlohmann::json::array();
  CHECK(errorCode(put(amb.dump(), oci)) == "MANIFEST_INVALID");
  // An index whose child manifest is missing.
  nlohmann::json idx = {{"schemaVersion", 2},
                        {"mediaType", "application/vnd.oci.image.index.v1+json"},
                        {"manifests", {{{"mediaType", oci}, {"digest", "sha256:" + std::string(64, 'd')}, {"size", 10}}}}};
  r = put(idx.dump(), "application/vnd.oci.image.index.v1+json");
  CHECK(r.status == 400);
  CHECK(errorCode(r) == "MANIFEST_BLOB_UNKNOWN");
  // Over 4 MiB.
  r = put(std::string(4 * 1024 * 1024 + 1, ' '), oci);
  CHECK(r.status == 413);
  // A valid artifact with no layers is accepted.
  r = put(m.dump(), oci);
  CHECK(r.status == 201);
}

TEST_CASE("referrers: subject header and listing with filter", "[api]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  Image img = pushImage(c, "ref/app", "v1", "subject");
  std::string empty = pushBlob(c, "ref/app", "{}");
  auto artifact = [&](const std::string& type, const std::string& note) {
    nlohmann::json a = {{"schemaVersion", 2},
                        {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                        {"artifactType", type},
                        {"config", {{"mediaType", "application/vnd.oci.empty.v1+json"}, {"digest", empty}, {"size", 2}}},
                        {"layers", nlohmann::json::array()},
                        {"subject", {{"mediaType", "application/vnd.oci.image.manifest.v1+json"}, {"digest", img.digest}, {"size", img.manifest.size()}}},
                        {"annotations", {{"note", note}}}};
    std::string body = a.dump();
    auto r = c.request("PUT", "/v2/ref/app/manifests/" + sha(body),
                       {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, body);
    REQUIRE(r.isOk());
    CHECK(r->status == 201);
    CHECK(r->header("oci-subject") == img.digest);
    return sha(body);
  };
  std::string sig = artifact("application/vnd.example.signature", "a");
  std::string sbom = artifact("application/vnd.example.sbom", "b");

  auto r = c.request("GET", "/v2/ref/app/referrers/" + img.digest);
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  CHECK(r->header("content-type") == "application/vnd.oci.image.index.v1+json");
  auto j = nlohmann::json::parse(r->body);
  REQUIRE(j["manifests"].size() == 2);
  r = c.request("GET", "/v2/ref/app/referrers/" + img.digest + "?artifactType=application/vnd.example.sbom");
  REQUIRE(r.isOk());
  CHECK(r->header("oci-filters-applied") == "artifactType");
  j = nlohmann::json::parse(r->body);
  REQUIRE(j["manifests"].size() == 1);
  CHECK(j["manifests"][0]["digest"] == sbom);
  CHECK(j["manifests"][0]["annotations"]["note"] == "b");

  r = c.request("GET", "/v2/ref/app/manifests/" + sig);
  REQUIRE(r.isOk());
  CHECK(r->header("oci-subject") == img.digest);

  // Deleting a referrer removes it from the listing; none gives an empty index.
  CHECK(c.request("DELETE", "/v2/ref/app/manifests/" + sig)->status == 202);
  CHECK(c.request("DELETE", "/v2/ref/app/manifests/" + sbom)->status == 202);
  r = c.request("GET", "/v2/ref/app/referrers/" + img.digest);
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  CHECK(nlohmann::json::parse(r->body)["manifests"].empty());
}

TEST_CASE("tags list and catalog paginate with n, last and Link", "[api]") {
  CoreServer core({}, {"--max-page", "3"});
  HttpClient c("127.0.0.1", core.port());
  Image img = pushImage(c, "p/one", "a", "pages");
  for (const char* t : {"b", "c", "d", "e"}) {
    REQUIRE(c.request("PUT", std::string("/v2/p/one/manifests/") + t,
                      {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, img.manifest)->status == 201);
  }
  pushImage(c, "p/two", "x", "two");
  pushImage(c, "p/three", "x", "three");
  pushImage(c, "p/four", "x", "four");

  auto r = c.request("GET", "/v2/p/one/tags/list?n=2");
  REQUIRE(r.isOk());
  CHECK(r->status == 200);
  auto j = nlohmann::json::parse(r->body);
  CHECK(j["name"] == "p/one");
  CHECK(j["tags"] == nlohmann::json({"a", "b"}));
  CHECK(r->header("link") == "</v2/p/one/tags/list?n=2&last=b>; rel=\"next\"");
  r = c.request("GET", "/v2/p/one/tags/list?n=2&last=b");
  CHECK(nlohmann::json::parse(r->body)["tags"] == nlohmann::json({"c", "d"}));
  r = c.request("GET", "/v2/p/one/tags/list?n=2&last=d");
  CHECK(nlohmann::json::parse(r->body)["tags"] == nlohmann::json({"e"}));
  CHECK(r->header("link").empty());
  // n is capped by max_page.
  r = c.request("GET", "/v2/p/one/tags/list?n=100");
  CHECK(nlohmann::json::parse(r->body)["tags"].size() == 3);
  CHECK_FALSE(r->header("link").empty());
  r = c.request("GET", "/v2/p/one/tags/list?n=-1");
  CHECK(r->status == 400);
  r = c.request("GET", "/v2/p/none/tags/list");
  CHECK(r->status == 404);
  CHECK(errorCode(*r) == "NAME_UNKNOWN");

  r = c.request("GET", "/v2/_catalog?n=2");
  REQUIRE(r.isOk());
  CHECK(nlohmann::json::parse(r->body)["repositories"] == nlohmann::json({"p/four", "p/one"}));
  CHECK(r->header("link") == "</v2/_catalog?n=2&last=p%2Fone>; rel=\"next\"");
  r = c.request("GET", "/v2/_catalog?n=2&last=p/one");
  CHECK(nlohmann::json::parse(r->body)["repositories"] == nlohmann::json({"p/three", "p/two"}));
}

}  // namespace api_test
