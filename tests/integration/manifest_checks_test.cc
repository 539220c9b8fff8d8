// Manifest validation against the real wharf-core: a descriptor's size must be the
// exact size of the content it names (config, layers, an index's manifests), a missing
// blob is MANIFEST_BLOB_UNKNOWN with 400, and GET/HEAD of a reference that is neither a
// tag nor a digest is a 404 (HEAD without a body), as the conformance suite expects.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "shared/oci/digest.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace manifest_checks_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

const char* kManifestType = "application/vnd.oci.image.manifest.v1+json";
const char* kIndexType = "application/vnd.oci.image.index.v1+json";

std::string sha(const std::string& data) { return digestOf(data).str(); }

std::string errorCode(const HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "(none: " + r.body + ")";
  return j["errors"][0].value("code", "");
}
std::string errorMessage(const HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "";
  return j["errors"][0].value("message", "");
}

std::string pushBlob(HttpClient& c, const std::string& repo, const std::string& data) {
  auto r = c.request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + sha(data), {}, data);
  REQUIRE(r.isOk());
  REQUIRE(r->status == 201);
  return sha(data);
}

json descriptor(const char* type, const std::string& data, int64_t size_delta = 0) {
  return {{"mediaType", type}, {"digest", sha(data)}, {"size", static_cast<int64_t>(data.size()) + size_delta}};
}

HttpResponse putManifest(HttpClient& c, const std::string& repo, const std::string& ref, const json& m,
                         const char* type) {
  auto r = c.request("PUT", "/v2/" + repo + "/manifests/" + ref, {{"Content-Type", type}}, m.dump());
  REQUIRE(r.isOk());
  return *r;
}

}  // namespace

TEST_CASE("manifest descriptors must give the exact size of their content", "[hardening][manifest]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  std::string config = R"({"architecture":"amd64","os":"linux"})";
  std::string layer = randomData(5000, 7);
  pushBlob(c, "size/app", config);
  pushBlob(c, "size/app", layer);
  auto image = [&](int64_t config_delta, int64_t layer_delta) {
    return json{{"schemaVersion", 2},
                {"mediaType", kManifestType},
                {"config", descriptor("application/vnd.oci.image.config.v1+json", config, config_delta)},
                {"layers", json::array({descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer, layer_delta)})}};
  };

  SECTION("a wrong config size") {
    auto r = putManifest(c, "size/app", "bad", image(+1, 0), kManifestType);
    CHECK(r.status == 400);
    CHECK(errorCode(r) == "MANIFEST_INVALID");
    CHECK(errorMessage(r).find("config") != std::string::npos);
  }
  SECTION("a wrong layer size, smaller or larger") {
    for (int64_t delta : {-1, +100}) {
      auto r = putManifest(c, "size/app", "bad", image(0, delta), kManifestType);
      CHECK(r.status == 400);
      CHECK(errorCode(r) == "MANIFEST_INVALID");
      CHECK(errorMessage(r).find("layers[0]") != std::string::npos);
      CHECK(errorMessage(r).find(sha(layer)) != std::string::npos);
    }
  }
  SECTION("an index whose child size is wrong; right sizes are accepted") {
    json good = image(0, 0);
    auto r = putManifest(c, "size/app", "v1", good, kManifestType);
    REQUIRE(r.status == 201);
    std::string child = good.dump();
    json index = {{"schemaVersion", 2},
                  {"mediaType", kIndexType},
                  {"manifests", json::array({descriptor(kManifestType, child, 3)})}};
    r = putManifest(c, "size/app", "multi", index, kIndexType);
    CHECK(r.status == 400);
    CHECK(errorCode(r) == "MANIFEST_INVALID");
    CHECK(errorMessage(r).find("manifests[0]") != std::string::npos);
    index["manifests"][0]["size"] = child.size();
    r = putManifest(c, "size/app", "multi", index, kIndexType);
    CHECK(r.status == 201);
  }
  SECTION("a blob the repository does not have is MANIFEST_BLOB_UNKNOWN with 400") {
    json m = image(0, 0);
    m["layers"][0] = descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "never pushed");
    auto r = putManifest(c, "size/app", "missing", m, kManifestType);
    CHECK(r.status == 400);
    CHECK(errorCode(r) == "MANIFEST_BLOB_UNKNOWN");
  }
  // Nothing refused was stored.
  auto tags = c.request("GET", "/v2/size/app/tags/list");
  REQUIRE(tags.isOk());
  CHECK(tags->body.find("bad") == std::string::npos);
  CHECK(tags->body.find("missing") == std::string::npos);
}

TEST_CASE("GET and HEAD of an invalid manifest reference are 404", "[hardening][manifest]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  pushBlob(c, "ref/app", "{}");
  for (const std::string& ref : std::vector<std::string>{"-not-a-tag", "sha256:short", "sha256:" + std::string(64, 'Z'), std::string(200, 't'),
                          "md5:0123456789abcdef0123456789abcdef"}) {
    INFO(ref);
    auto g = c.request("GET", "/v2/ref/app/manifests/" + ref);
    REQUIRE(g.isOk());
    CHECK(g->status == 404);
    CHECK(errorCode(*g) == "MANIFEST_UNKNOWN");
    auto h = c.request("HEAD", "/v2/ref/app/manifests/" + ref);
    REQUIRE(h.isOk());
    CHECK(h->status == 404);
    CHECK(h->body.empty());
  }
  // A PUT to an invalid tag is still refused as such.
  auto p = c.request("PUT", "/v2/ref/app/manifests/-bad", {{"Content-Type", kManifestType}}, "{}");
  REQUIRE(p.isOk());
  CHECK(p->status == 400);
}

}  // namespace manifest_checks_test
