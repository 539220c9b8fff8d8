// The API behind the web UI's repository and image pages, and the UI's serving: tags
// with their digests, an image's view (history as Dockerfile lines, config, layers),
// access as in the registry API, / sent to /ui/, and the UI's security headers.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>

#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/support/edge_server.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

namespace browse_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

TEST_CASE("browse: tags and an image's view for whoever may pull; the UI's pages", "[browse][ui]") {
  const std::string password = "browse-admin-password";
  ::setenv("WHARF_ADMIN_PASSWORD", password.c_str(), 1);
  CoreServer core("", {"--auth", "token"});
  ::unsetenv("WHARF_ADMIN_PASSWORD");
  HttpClient c("127.0.0.1", core.port());
  // An image with a build history: one layer, three steps (two without a layer).
  json config = {{"architecture", "arm64"},
                 {"os", "linux"},
                 {"config", {{"Env", {"A=1"}}, {"Entrypoint", {"/app"}}, {"Labels", {{"team", "<b>x</b>"}}}}},
                 {"history",
                  {{{"created_by", "/bin/sh -c #(nop) ADD file:abc in / "}},
                   {{"created_by", "/bin/sh -c #(nop)  CMD [\"sh\"]"}, {"empty_layer", true}},
                   {{"created_by", "WORKDIR /srv"}, {"empty_layer", true}}}}};
  std::string cfg = config.dump(), layer = gzip(makeTar({{"f", "x"}}));
  std::string cd = pushBlob(core.port(), password, "team/app", cfg);
  std::string ld = pushBlob(core.port(), password, "team/app", layer);
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd}, {"size", cfg.size()}}},
            {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", ld}, {"size", layer.size()}}}}};
  std::string push = registryToken(core.port(), "admin", password, "repository:team/app:pull,push");
  auto put = c.request("PUT", "/v2/team/app/manifests/v1",
                       {{"Authorization", "Bearer " + push}, {"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, m.dump());
  REQUIRE(put->status == 201);
  std::string digest = digestOf(m.dump()).str();

  std::string pull = registryToken(core.port(), "admin", password, "repository:team/app:pull");
  auto tags = c.request("GET", "/api/v1/repositories/team/app/tags", {{"Authorization", "Bearer " + pull}});
  REQUIRE(tags->status == 200);
  json t = json::parse(tags->body);
  REQUIRE(t["tags"].size() == 1);
  CHECK(t["tags"][0]["tag"] == "v1");
  CHECK(t["tags"][0]["digest"] == digest);
  CHECK(t["tags"][0]["size"] == m.dump().size());
  CHECK(t["tags"][0]["total_size"] == layer.size());  // the compressed layers
  CHECK(t["tags"][0]["platforms"] == json::array({"linux/arm64"}));
  CHECK(t["tags"][0]["scan"]["status"] == "not_scanned");
  CHECK(t["tags"][0]["signatures"]["signed"] == false);
  CHECK(t["tags"][0]["signatures"]["cosign"] == 0);
  CHECK(t["may"] == json::array());  // a pull token: nothing more
  // What else the caller may do is what the token holds of it.
  std::string all = registryToken(core.port(), "admin", password, "repository:team/app:pull,push,delete");
  auto mine = c.request("GET", "/api/v1/repositories/team/app/tags", {{"Authorization", "Bearer " + all}});
  REQUIRE(mine->status == 200);
  CHECK(json::parse(mine->body)["may"] == json::array({"push", "delete"}));

  auto view = c.request("GET", "/api/v1/repositories/team/app/manifests/v1", {{"Authorization", "Bearer " + pull}});
  REQUIRE(view->status == 200);
  json v = json::parse(view->body);
  CHECK(v["digest"] == digest);
  CHECK(v["config"]["architecture"] == "arm64");
  CHECK(v["config"]["labels"]["team"] == "<b>x</b>");  // data, as it is
  REQUIRE(v["history"].size() == 3);
  CHECK(v["history"][0]["instruction"] == "ADD file:abc in /");
  CHECK(v["history"][0]["layer"] == ld);
  CHECK(v["history"][1]["instruction"] == "CMD [\"sh\"]");
  CHECK(v["history"][1]["empty_layer"] == true);
  CHECK_FALSE(v["history"][1].contains("layer"));
  CHECK(v["layers"][0]["digest"] == ld);
  CHECK(c.request("GET", "/api/v1/repositories/team/app/manifests/" + digest, {{"Authorization", "Bearer " + pull}})->status == 200);
  CHECK(c.request("GET", "/api/v1/repositories/team/app/manifests/nope", {{"Authorization", "Bearer " + pull}})->status == 404);

  // Access: a token for another repository sees nothing; without credentials, 401 — and
  // no Basic challenge for a browser script (it would prompt over the UI).
  std::string other = registryToken(core.port(), "admin", password, "repository:team/other:pull");
  CHECK(c.request("GET", "/api/v1/repositories/team/app/tags", {{"Authorization", "Bearer " + other}})->status == 404);
  auto anon = c.request("GET", "/api/v1/repositories/team/app/tags");
  CHECK(anon->status == 401);
  auto script = c.request("GET", "/api/v1/repositories", {{"Sec-Fetch-Dest", "empty"}});
  CHECK(script->status == 401);
  CHECK(script->header("www-authenticate").empty());
  CHECK(c.request("GET", "/api/v1/repositories")->header("www-authenticate").find("Basic") == 0);

  // The UI: / goes there; its pages carry a strict CSP.
  auto root = c.request("GET", "/");
  CHECK(root->status == 302);
  CHECK(root->header("location") == "/ui/");
  auto page = c.request("GET", "/ui/repositories/team/app");
  CHECK(page->header("content-security-policy").find("frame-ancestors 'none'") != std::string::npos);
  CHECK(page->header("x-content-type-options") == "nosniff");
  // The page itself, or (a core built without its UI) a 404 that says so.
  if (page->status == 200) {
    CHECK(page->body.find("<div id=\"app\">") != std::string::npos);
  } else {
    CHECK(page->status == 404);
    CHECK(page->body.find("not built") != std::string::npos);
  }
  CHECK(c.request("POST", "/ui/")->status == 405);
}

}  // namespace browse_test
