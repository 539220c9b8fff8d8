#include <catch2/catch.hpp>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/oci/digest.h"
#include "shared/oci/manifest.h"
#include "shared/oci/media_types.h"

// Each file's own names: the test binaries are unity builds.
namespace manifest_test {

using namespace wharf;
using nlohmann::json;

namespace {

const std::string kOciManifest(media::kOciManifest);
const std::string kOciIndex(media::kOciIndex);
const std::string kDockerManifest(media::kDockerManifest);
const std::string kDockerList(media::kDockerManifestList);
const std::string kLayerType = "application/vnd.oci.image.layer.v1.tar+gzip";

json desc(const std::string& media_type, const std::string& content) {
  return {{"mediaType", media_type}, {"digest", digestOf(content).str()}, {"size", content.size()}};
}

json imageManifest(const std::string& media_type = kOciManifest) {
  json m = {{"schemaVersion", 2},
            {"config", desc(std::string(media::kOciConfig), "config")},
            {"layers", json::array({desc(kLayerType, "layer1"), desc(kLayerType, "layer2")})}};
  if (!media_type.empty()) m["mediaType"] = media_type;
  return m;
}

json imageIndex(const std::string& media_type = kOciIndex) {
  json m = {{"schemaVersion", 2},
            {"manifests", json::array({desc(kOciManifest, "m1"), desc(kOciManifest, "m2")})}};
  if (!media_type.empty()) m["mediaType"] = media_type;
  return m;
}

Status parseStatus(const json& doc, std::string_view ct) { return parseManifest(doc.dump(), ct).status(); }

}  // namespace

TEST_CASE("an OCI image manifest parses into its descriptors") {
  auto m = parseManifest(imageManifest().dump(), kOciManifest);
  REQUIRE(m.isOk());
  CHECK(m->media_type == kOciManifest);
  CHECK_FALSE(m->is_index);
  REQUIRE(m->config.has_value());
  CHECK(m->config->media_type == media::kOciConfig);
  CHECK(m->config->digest == digestOf("config"));
  CHECK(m->config->size == 6);
  REQUIRE(m->layers.size() == 2);
  CHECK(m->layers[1].digest == digestOf("layer2"));
  CHECK(m->layers[0].media_type == kLayerType);
  CHECK(m->manifests.empty());
  CHECK_FALSE(m->subject.has_value());
  CHECK(m->artifact_type.empty());
  CHECK(m->effectiveArtifactType() == media::kOciConfig);
}

TEST_CASE("a Docker v2 manifest and its Content-Type with parameters") {
  json doc = imageManifest(kDockerManifest);
  doc["config"]["mediaType"] = std::string(media::kDockerConfig);
  auto m = parseManifest(doc.dump(2), kDockerManifest + "; charset=utf-8");
  REQUIRE(m.isOk());
  CHECK(m->media_type == kDockerManifest);
  CHECK_FALSE(m->is_index);
  CHECK(m->effectiveArtifactType() == media::kDockerConfig);
  // Docker manifests must have layers.
  doc.erase("layers");
  CHECK(parseStatus(doc, kDockerManifest).code() == Code::kManifestInvalid);
}

TEST_CASE("an OCI index and a Docker manifest list") {
  auto i = parseManifest(imageIndex().dump(), kOciIndex);
  REQUIRE(i.isOk());
  CHECK(i->is_index);
  CHECK(i->media_type == kOciIndex);
  REQUIRE(i->manifests.size() == 2);
  CHECK(i->manifests[0].digest == digestOf("m1"));
  CHECK_FALSE(i->config.has_value());
  CHECK(i->layers.empty());
  CHECK(i->effectiveArtifactType().empty());

  auto d = parseManifest(imageIndex(kDockerList).dump(), kDockerList);
  REQUIRE(d.isOk());
  CHECK(d->is_index);
  CHECK(d->media_type == kDockerList);

  // An index needs its manifests array.
  json empty = {{"schemaVersion", 2}, {"mediaType", kOciIndex}};
  CHECK(parseStatus(empty, kOciIndex).code() == Code::kManifestInvalid);
  json not_array = imageIndex();
  not_array["manifests"] = json::object();
  CHECK(parseStatus(not_array, kOciIndex).code() == Code::kManifestInvalid);
}

TEST_CASE("without mediaType the type comes from Content-Type or the document's shape") {
  auto byCt = parseManifest(imageManifest("").dump(), kDockerManifest);
  REQUIRE(byCt.isOk());
  CHECK(byCt->media_type == kDockerManifest);

  auto byShape = parseManifest(imageManifest("").dump(), "");
  REQUIRE(byShape.isOk());
  CHECK(byShape->media_type == kOciManifest);

  auto indexByShape = parseManifest(imageIndex("").dump(), "application/json");
  REQUIRE(indexByShape.isOk());
  CHECK(indexByShape->is_index);
  CHECK(indexByShape->media_type == kOciIndex);

  // Content-Type says index but the document has layers.
  CHECK(parseStatus(imageManifest(""), kOciIndex).code() == Code::kManifestInvalid);
  // Content-Type says manifest but the document has manifests.
  CHECK(parseStatus(imageIndex(""), kOciManifest).code() == Code::kManifestInvalid);
}

TEST_CASE("an artifact with artifactType and subject") {
  json doc = {{"schemaVersion", 2},
              {"mediaType", kOciManifest},
              {"artifactType", "application/vnd.example.sbom+json"},
              {"config", desc(std::string(media::kOciEmpty), "{}")},
              {"layers", json::array({desc("application/spdx+json", "sbom")})},
              {"subject", desc(kOciManifest, "the image")},
              {"annotations", {{"org.opencontainers.image.created", "2024-01-01T00:00:00Z"}}}};
  auto m = parseManifest(doc.dump(), kOciManifest);
  REQUIRE(m.isOk());
  CHECK(m->artifact_type == "application/vnd.example.sbom+json");
  CHECK(m->effectiveArtifactType() == "application/vnd.example.sbom+json");
  REQUIRE(m->subject.has_value());
  CHECK(m->subject->digest == digestOf("the image"));
  CHECK(m->subject->media_type == kOciManifest);
  CHECK(m->annotations["org.opencontainers.image.created"] == "2024-01-01T00:00:00Z");

  // Without artifactType the config media type is the artifact type.
  doc.erase("artifactType");
  auto n = parseManifest(doc.dump(), kOciManifest);
  REQUIRE(n.isOk());
  CHECK(n->effectiveArtifactType() == media::kOciEmpty);

  // An index may have a subject and an artifactType too.
  json idx = imageIndex();
  idx["subject"] = desc(kOciManifest, "the image");
  idx["artifactType"] = "application/vnd.example.sig";
  auto i = parseManifest(idx.dump(), kOciIndex);
  REQUIRE(i.isOk());
  CHECK(i->effectiveArtifactType() == "application/vnd.example.sig");
  REQUIRE(i->subject.has_value());

  // A null subject is no subject; a bad one is refused.
  doc["subject"] = nullptr;
  auto s = parseManifest(doc.dump(), kOciManifest);
  REQUIRE(s.isOk());
  CHECK_FALSE(s->subject.has_value());
  doc["subject"] = "sha256:abc";
  CHECK(parseStatus(doc, kOciManifest).code() == Code::kManifestInvalid);
  doc["subject"] = desc(kOciManifest, "x");
  doc["subject"]["digest"] = "sha256:1234";
  CHECK(parseStatus(doc, kOciManifest).code() == Code::kManifestInvalid);
  doc["subject"] = desc(kOciManifest, "x");
  doc["artifactType"] = 5;
  CHECK(parseStatus(doc, kOciManifest).code() == Code::kManifestInvalid);
}

TEST_CASE("Docker schema 1 is refused") {
  json v1 = {{"schemaVersion", 1}, {"name", "a"}, {"tag", "latest"}, {"fsLayers", json::array()}};
  CHECK(parseStatus(v1, "").code() == Code::kManifestInvalid);
  CHECK(parseStatus(v1, media::kDockerSchema1).code() == Code::kManifestInvalid);
  Status signed_ct = parseStatus(imageManifest(""), media::kDockerSchema1Signed);
  CHECK(signed_ct.code() == Code::kManifestInvalid);
  CHECK(signed_ct.message().find("schema 1") != std::string::npos);
}

TEST_CASE("schemaVersion must be the integer 2") {
  for (json v : {json(3), json(0), json(-2), json("2"), json(2.0), json(nullptr), json::array({2})}) {
    json doc = imageManifest();
    doc["schemaVersion"] = v;
    INFO("schemaVersion: " << v.dump());
    CHECK(parseStatus(doc, kOciManifest).code() == Code::kManifestInvalid);
  }
  json missing = imageManifest();
  missing.erase("schemaVersion");
  CHECK(parseStatus(missing, kOciManifest).code() == Code::kManifestInvalid);
}

TEST_CASE("mediaType must agree with a Content-Type that makes a claim") {
  CHECK(parseStatus(imageManifest(kOciManifest), kDockerManifest).code() == Code::kManifestInvalid);
  CHECK(parseStatus(imageManifest(kDockerManifest), kOciManifest).code() == Code::kManifestInvalid);
  CHECK(parseStatus(imageIndex(kOciIndex), kDockerList).code() == Code::kManifestInvalid);
  // application/json (with or without parameters), octet-stream and no Content-Type make no claim.
  CHECK(parseManifest(imageManifest(kDockerManifest).dump(), "application/json").isOk());
  CHECK(parseManifest(imageManifest(kDockerManifest).dump(), "application/json; charset=utf-8").isOk());
  CHECK(parseManifest(imageManifest(kOciManifest).dump(), "application/octet-stream").isOk());
  CHECK(parseManifest(imageManifest(kOciManifest).dump(), "").isOk());
  // An unknown media type is refused either way.
  CHECK(parseStatus(imageManifest("application/vnd.example+json"), "").code() == Code::kManifestInvalid);
  CHECK(parseStatus(imageManifest(""), "text/plain").code() == Code::kManifestInvalid);
  json bad_type = imageManifest();
  bad_type["mediaType"] = 42;
  CHECK(parseStatus(bad_type, kOciManifest).code() == Code::kManifestInvalid);
}

TEST_CASE("a document with both layers and manifests is ambiguous") {
  json doc = imageManifest();
  doc["manifests"] = json::array({desc(kOciManifest, "m1")});
  Status st = parseStatus(doc, kOciManifest);
  CHECK(st.code() == Code::kManifestInvalid);
  CHECK(st.message().find("ambiguous") != std::string::npos);
  doc.erase("mediaType");
  CHECK(parseStatus(doc, "").code() == Code::kManifestInvalid);
  json cfg_and_manifests = imageIndex();
  cfg_and_manifests["config"] = desc(std::string(media::kOciConfig), "c");
  CHECK(parseStatus(cfg_and_manifests, kOciIndex).code() == Code::kManifestInvalid);
}

TEST_CASE("bad descriptors are refused") {
  auto withLayer = [](const std::function<void(json&)>& edit) {
    json doc = imageManifest();
    edit(doc["layers"][1]);
    return parseStatus(doc, kOciManifest);
  };
  CHECK(withLayer([](json& d) { d["size"] = -1; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["size"] = 1.5; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["size"] = "10"; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d.erase("size"); }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["size"] = 18446744073709551615ull; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["digest"] = "sha256:nothex"; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["digest"] = "md5:d41d8cd98f00b204e9800998ecf8427e"; }).code() ==
        Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["digest"] = 7; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d.erase("digest"); }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d.erase("mediaType"); }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["mediaType"] = ""; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["mediaType"] = 1; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["annotations"] = {{"k", 1}}; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["annotations"] = {{"k", {{"nested", "x"}}}}; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["annotations"] = json::array({"k"}); }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["artifactType"] = json::array(); }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d["urls"] = "http://x"; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d = "sha256:abc"; }).code() == Code::kManifestInvalid);
  CHECK(withLayer([](json& d) { d = nullptr; }).code() == Code::kManifestInvalid);

  json no_config = imageManifest();
  no_config.erase("config");
  CHECK(parseStatus(no_config, kOciManifest).code() == Code::kManifestInvalid);
  json layers_object = imageManifest();
  layers_object["layers"] = json::object();
  CHECK(parseStatus(layers_object, kOciManifest).code() == Code::kManifestInvalid);
  json bad_child = imageIndex();
  bad_child["manifests"][0]["size"] = -5;
  CHECK(parseStatus(bad_child, kOciIndex).code() == Code::kManifestInvalid);
  json top_annotations = imageManifest();
  top_annotations["annotations"] = "text";
  CHECK(parseStatus(top_annotations, kOciManifest).code() == Code::kManifestInvalid);
}

TEST_CASE("good descriptor extras: annotations, urls, artifactType, toJson") {
  json doc = imageManifest();
  doc["layers"][0]["annotations"] = {{"a", "b"}};
  doc["layers"][0]["urls"] = json::array({"https://example.com/layer"});
  doc["layers"][0]["mediaType"] = std::string(media::kDockerForeignLayer);
  doc["layers"][1]["annotations"] = nullptr;
  doc["layers"][1]["artifactType"] = "application/x";
  doc["layers"][1]["unknownField"] = {1, 2, 3};
  auto m = parseManifest(doc.dump(), kOciManifest);
  REQUIRE(m.isOk());
  CHECK(m->layers[0].has_urls);
  CHECK(media::isNonDistributable(m->layers[0].media_type));
  CHECK(m->layers[0].annotations["a"] == "b");
  CHECK_FALSE(m->layers[1].has_urls);
  CHECK(m->layers[1].artifact_type == "application/x");

  json j = m->layers[1].toJson();
  CHECK(j["mediaType"] == kLayerType);
  CHECK(j["digest"] == digestOf("layer2").str());
  CHECK(j["size"] == 6);
  CHECK(j["artifactType"] == "application/x");
  CHECK_FALSE(j.contains("annotations"));
  json k = m->layers[0].toJson();
  CHECK(k["annotations"]["a"] == "b");
  CHECK_FALSE(k.contains("artifactType"));
}

TEST_CASE("top-level annotations must map strings to strings", "[regression]") {
  // parseManifest checks only that top-level "annotations" is an object; the values end
  // up in the referrers descriptor (Registry::putManifest copies them) unchecked.
  json doc = imageManifest();
  doc["annotations"] = {{"k", 1}};
  CHECK(parseStatus(doc, kOciManifest).code() == Code::kManifestInvalid);
}

TEST_CASE("malformed JSON and non-objects are refused") {
  for (const char* body : {"", "{", "not json", "[]", "\"string\"", "2", "null", "{\"schemaVersion\":2,}",
                           "{\"schemaVersion\":2}{}"}) {
    INFO("body: " << body);
    CHECK(parseManifest(body, kOciManifest).status().code() == Code::kManifestInvalid);
  }
}

TEST_CASE("manifests over 4 MiB are refused, up to 4 MiB accepted") {
  std::string body = imageManifest().dump();
  std::string padded = body + std::string(kMaxManifestBytes - body.size(), ' ');
  REQUIRE(padded.size() == kMaxManifestBytes);
  CHECK(parseManifest(padded, kOciManifest).isOk());
  padded.push_back(' ');
  auto r = parseManifest(padded, kOciManifest);
  CHECK_FALSE(r.isOk());
  CHECK(r.status().code() == Code::kTooLarge);
}

TEST_CASE("deeply nested documents are refused without parsing them") {
  auto nested = [](int depth) {
    // The document object is level 1; "x" adds depth-1 levels of arrays.
    json doc = imageManifest();
    std::string body = doc.dump();
    body.pop_back();
    body += ",\"x\":" + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}";
    return body;
  };
  CHECK(parseManifest(nested(64), kOciManifest).isOk());
  CHECK(parseManifest(nested(65), kOciManifest).status().code() == Code::kManifestInvalid);
  // Far deeper than any stack would survive in a recursive parser.
  std::string bomb = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  CHECK(parseManifest(bomb, kOciManifest).status().code() == Code::kManifestInvalid);
  std::string open_only = "{\"a\":" + std::string(2'000'000, '{');
  CHECK(parseManifest(open_only, kOciManifest).status().code() == Code::kManifestInvalid);
  // Brackets inside strings (escaped quotes included) do not count.
  json doc = imageManifest();
  doc["annotations"] = {{"k", "\\\"" + std::string(500, '[') + "\"{{{"}};
  CHECK(parseManifest(doc.dump(), kOciManifest).isOk());
}

TEST_CASE("stripParameters trims and drops parameters") {
  CHECK(media::stripParameters("a/b; charset=utf-8") == "a/b");
  CHECK(media::stripParameters("  a/b  ") == "a/b");
  CHECK(media::stripParameters("\ta/b\t;x") == "a/b");
  CHECK(media::stripParameters("") == "");
  CHECK(media::isManifest(media::kDockerManifest));
  CHECK(media::isIndex(media::kDockerManifestList));
  CHECK_FALSE(media::isIndex(media::kOciManifest));
  CHECK(media::isImageConfig(media::kDockerConfig));
  CHECK(media::isNonDistributable("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"));
  CHECK_FALSE(media::isNonDistributable(kLayerType));
}

TEST_CASE("media types are compared case-insensitively, as media_types.h promises", "[regression]") {
  // media_types.h: stripParameters returns the type "lower-cased"; it does not lower-case,
  // so a Content-Type differing only in case from the document's mediaType is refused.
  CHECK(media::stripParameters("Application/VND.OCI.Image.Manifest.v1+JSON; x=y") == kOciManifest);
  CHECK(parseManifest(imageManifest().dump(), "Application/vnd.oci.image.manifest.v1+json").isOk());
}

}  // namespace manifest_test
