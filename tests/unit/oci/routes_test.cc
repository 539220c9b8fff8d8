#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "shared/oci/routes.h"

// Each file's own names: the test binaries are unity builds.
namespace routes_test {

using namespace wharf;

namespace {
const std::string kDigest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string kUuid = "123e4567-e89b-42d3-a456-426614174000";

Route mustParse(const std::string& path) {
  auto r = parseRoute(path);
  INFO("path: " << path << " -> " << r.status().toString());
  REQUIRE(r.isOk());
  return *r;
}
}  // namespace

TEST_CASE("parseRoute: base and catalog") {
  CHECK(mustParse("/v2/").kind == RouteKind::kBase);
  CHECK(mustParse("/v2").kind == RouteKind::kBase);
  Route c = mustParse("/v2/_catalog");
  CHECK(c.kind == RouteKind::kCatalog);
  CHECK(c.name.empty());
  CHECK(routeName(RouteKind::kCatalog) == "catalog");
  CHECK(routeName(RouteKind::kBase) == "base");
}

TEST_CASE("parseRoute: manifests, blobs, tags, referrers") {
  Route m = mustParse("/v2/library/ubuntu/manifests/latest");
  CHECK(m.kind == RouteKind::kManifest);
  CHECK(m.name == "library/ubuntu");
  CHECK(m.reference == "latest");

  Route md = mustParse("/v2/a/manifests/" + kDigest);
  CHECK(md.kind == RouteKind::kManifest);
  CHECK(md.reference == kDigest);

  Route b = mustParse("/v2/a/b/c/blobs/" + kDigest);
  CHECK(b.kind == RouteKind::kBlob);
  CHECK(b.name == "a/b/c");
  CHECK(b.reference == kDigest);

  Route t = mustParse("/v2/org/img/tags/list");
  CHECK(t.kind == RouteKind::kTagsList);
  CHECK(t.name == "org/img");
  CHECK(t.reference.empty());

  Route r = mustParse("/v2/org/img/referrers/" + kDigest);
  CHECK(r.kind == RouteKind::kReferrers);
  CHECK(r.name == "org/img");
  CHECK(r.reference == kDigest);
  CHECK(routeName(RouteKind::kReferrers) == "referrers");
  CHECK(routeName(RouteKind::kManifest) == "manifest");
  CHECK(routeName(RouteKind::kBlob) == "blob");
  CHECK(routeName(RouteKind::kTagsList) == "tags");
}

TEST_CASE("parseRoute: uploads with and without a trailing slash") {
  Route s1 = mustParse("/v2/a/blobs/uploads/");
  CHECK(s1.kind == RouteKind::kUploadStart);
  CHECK(s1.name == "a");
  CHECK(s1.reference.empty());
  Route s2 = mustParse("/v2/a/b/blobs/uploads");
  CHECK(s2.kind == RouteKind::kUploadStart);
  CHECK(s2.name == "a/b");
  Route u = mustParse("/v2/a/b/blobs/uploads/" + kUuid);
  CHECK(u.kind == RouteKind::kUpload);
  CHECK(u.name == "a/b");
  CHECK(u.reference == kUuid);
  CHECK(routeName(RouteKind::kUploadStart) == "upload");
  CHECK(routeName(RouteKind::kUpload) == "upload");
}

TEST_CASE("parseRoute: names whose components are 'blobs', 'manifests', 'tags', 'uploads'") {
  Route a = mustParse("/v2/my/blobs/repo/blobs/" + kDigest);
  CHECK(a.kind == RouteKind::kBlob);
  CHECK(a.name == "my/blobs/repo");

  Route b = mustParse("/v2/manifests/manifests/latest");
  CHECK(b.kind == RouteKind::kManifest);
  CHECK(b.name == "manifests");
  CHECK(b.reference == "latest");

  Route c = mustParse("/v2/a/manifests/b/manifests/v1");
  CHECK(c.kind == RouteKind::kManifest);
  CHECK(c.name == "a/manifests/b");
  CHECK(c.reference == "v1");

  Route d = mustParse("/v2/a/blobs/manifests/v1");
  CHECK(d.kind == RouteKind::kManifest);
  CHECK(d.name == "a/blobs");

  Route e = mustParse("/v2/a/manifests/x/blobs/" + kDigest);
  CHECK(e.kind == RouteKind::kBlob);
  CHECK(e.name == "a/manifests/x");

  Route f = mustParse("/v2/blobs/uploads/blobs/uploads/");
  CHECK(f.kind == RouteKind::kUploadStart);
  CHECK(f.name == "blobs/uploads");

  Route g = mustParse("/v2/a/blobs/uploads/x/manifests/latest");
  CHECK(g.kind == RouteKind::kManifest);
  CHECK(g.name == "a/blobs/uploads/x");

  Route h = mustParse("/v2/tags/tags/list");
  CHECK(h.kind == RouteKind::kTagsList);
  CHECK(h.name == "tags");

  Route i = mustParse("/v2/referrers/blobs/uploads/" + kUuid);
  CHECK(i.kind == RouteKind::kUpload);
  CHECK(i.name == "referrers");
}

TEST_CASE("parseRoute: paths outside the API are kNotFound") {
  for (const char* p : {"/", "", "/v1/", "/v2x", "/v3/a/manifests/latest", "/V2/", "/v2/a", "/v2/a/",
                        "/v2/a/manifests", "/v2/a/manifests/", "/v2/a/blobs/", "/v2/a/referrers/",
                        "/v2/a/tags", "/v2/a/tags/", "/v2/a/tags/list/", "/v2/tags/list", "/v2/_catalog/",
                        "/v2/a/unknown/x", "/v2/a/manifests/a/b", "/v2/a/blobs/uploads/x/y",
                        "/v2/a/blobs/uploads//", "/v2//blobs/uploads/", "/v2/a/uploads/x"}) {
    INFO("path: \"" << p << "\"");
    auto r = parseRoute(p);
    CHECK_FALSE(r.isOk());
    CHECK(r.status().code() == Code::kNotFound);
  }
}

TEST_CASE("parseRoute: a bad repository name is kNameInvalid") {
  for (const std::string& p : std::vector<std::string>{"/v2/Upper/manifests/latest", "/v2/a..b/blobs/" + kDigest, "/v2/-a/tags/list",
                        "/v2/a//b/manifests/x", "/v2/a_/blobs/uploads/", "/v2/_catalog/manifests/latest", "/v2/a/./b/referrers/" + kDigest,
                        "/v2/" + std::string(256, 'a') + "/manifests/latest"}) {
    INFO("path: \"" << p << "\"");
    auto r = parseRoute(p);
    CHECK_FALSE(r.isOk());
    CHECK(r.status().code() == Code::kNameInvalid);
  }
  CHECK(parseRoute("/v2/" + std::string(255, 'a') + "/manifests/latest").isOk());
}

}  // namespace routes_test
