// Blob upload sessions: chunks, ranges, resumption, digests, mounts, purge.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "shared/oci/digest.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace uploads_test {

using namespace wharf;
using namespace wharf::test;

namespace {

std::string errorCode(const HttpResponse& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "";
  return j["errors"][0].value("code", "");
}

std::string startUpload(HttpClient& c, const std::string& repo) {
  auto r = c.request("POST", "/v2/" + repo + "/blobs/uploads/");
  REQUIRE(r.isOk());
  REQUIRE(r->status == 202);
  CHECK(r->header("range") == "0-0");
  CHECK_FALSE(r->header("docker-upload-uuid").empty());
  std::string loc = r->header("location");
  REQUIRE(loc.rfind("/v2/" + repo + "/blobs/uploads/", 0) == 0);
  return loc;
}

}  // namespace

TEST_CASE("chunked upload with Content-Range, status, out-of-order chunk, finish", "[uploads]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  std::string data = randomData(300000, 11);
  std::string digest = digestOf(data).str();
  std::string loc = startUpload(c, "up/a");

  auto r = c.request("PATCH", loc, {{"Content-Range", "0-99999"}, {"Content-Type", "application/octet-stream"}},
                     data.substr(0, 100000));
  REQUIRE(r.isOk());
  CHECK(r->status == 202);
  CHECK(r->header("range") == "0-99999");
  CHECK(r->header("location") == loc);

  // Out of order: 416 with the current range.
  r = c.request("PATCH", loc, {{"Content-Range", "200000-299999"}}, data.substr(200000));
  REQUIRE(r.isOk());
  CHECK(r->status == 416);
  CHECK(r->header("range") == "0-99999");
  // Overlapping: also 416.
  r = c.request("PATCH", loc, {{"Content-Range", "50000-149999"}}, data.substr(50000, 100000));
  REQUIRE(r.isOk());
  CHECK(r->status == 416);
  CHECK(r->header("range") == "0-99999");

  r = c.request("GET", loc);
  REQUIRE(r.isOk());
  CHECK(r->status == 204);
  CHECK(r->header("range") == "0-99999");

  // A streamed chunk without Content-Range (chunked transfer encoding).
  std::string chunk = data.substr(100000, 100000);
  char len[32];
  std::snprintf(len, sizeof len, "%zx", chunk.size());
  std::string raw = "PATCH " + loc + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + len + "\r\n" + chunk +
                    "\r\n0\r\n\r\n";
  r = c.raw(raw);
  REQUIRE(r.isOk());
  CHECK(r->status == 202);
  CHECK(r->header("range") == "0-199999");

  // The last chunk goes with the PUT.
  r = c.request("PUT", loc + "?digest=" + digest, {{"Content-Range", "200000-299999"}}, data.substr(200000));
  REQUIRE(r.isOk());
  CHECK(r->status == 201);
  CHECK(r->header("docker-content-digest") == digest);
  CHECK(r->header("location") == "/v2/up/a/blobs/" + digest);

  r = c.request("GET", "/v2/up/a/blobs/" + digest);
  REQUIRE(r.isOk());
  CHECK(r->body == data);
  // The finished upload is gone.
  r = c.request("GET", loc);
  REQUIRE(r.isOk());
  CHECK(r->status == 404);
  CHECK(errorCode(*r) == "BLOB_UPLOAD_UNKNOWN");
}

TEST_CASE("a wrong digest stores nothing", "[uploads]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  std::string data = randomData(5000, 12);
  std::string wrong = digestOf("something else").str();
  std::string loc = startUpload(c, "up/b");
  REQUIRE(c.request("PATCH", loc, {}, data)->status == 202);
  auto r = c.request("PUT", loc + "?digest=" + wrong);
  REQUIRE(r.isOk());
  CHECK(r->status == 400);
  CHECK(errorCode(*r) == "DIGEST_INVALID");
  CHECK(c.request("GET", "/v2/up/b/blobs/" + wrong)->status == 404);
  CHECK(c.request("GET", "/v2/up/b/blobs/" + digestOf(data).str())->status == 404);
  // Monolithic with a wrong digest too.
  r = c.request("POST", "/v2/up/b/blobs/uploads/?digest=" + wrong, {}, data);
  REQUIRE(r.isOk());
  CHECK(r->status == 400);
  CHECK(errorCode(*r) == "DIGEST_INVALID");
  // Missing and malformed digests on PUT.
  loc = startUpload(c, "up/b");
  r = c.request("PUT", loc);
  CHECK(r->status == 400);
  CHECK(errorCode(*r) == "DIGEST_INVALID");
  r = c.request("PUT", loc + "?digest=md5:abc");
  CHECK(r->status == 400);
  CHECK(errorCode(*r) == "DIGEST_INVALID");
}

TEST_CASE("uploads are bound to their repository; cancel removes them", "[uploads]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  std::string loc = startUpload(c, "owner/repo");
  std::string id = loc.substr(loc.rfind('/') + 1);
  for (const char* method : {"GET", "PATCH", "PUT", "DELETE"}) {
    std::string target = "/v2/other/repo/blobs/uploads/" + id;
    if (std::string(method) == "PUT") target += "?digest=" + digestOf("").str();
    auto r = c.request(method, target, {}, std::string(method) == "PATCH" ? "x" : "");
    REQUIRE(r.isOk());
    CHECK(r->status == 404);
    CHECK(errorCode(*r) == "BLOB_UPLOAD_UNKNOWN");
  }
  auto r = c.request("GET", "/v2/owner/repo/blobs/uploads/not-a-uuid");
  CHECK(r->status == 404);
  r = c.request("DELETE", loc);
  REQUIRE(r.isOk());
  CHECK(r->status == 204);
  CHECK(c.request("GET", loc)->status == 404);
}

TEST_CASE("cross-repository mount, with and without from", "[uploads]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  std::string data = randomData(4096, 13);
  std::string d = digestOf(data).str();
  REQUIRE(c.request("POST", "/v2/src/app/blobs/uploads/?digest=" + d, {}, data)->status == 201);

  auto r = c.request("POST", "/v2/dst/app/blobs/uploads/?mount=" + d + "&from=src/app");
  REQUIRE(r.isOk());
  CHECK(r->status == 201);
  CHECK(r->header("location") == "/v2/dst/app/blobs/" + d);
  CHECK(c.request("GET", "/v2/dst/app/blobs/" + d)->body == data);

  r = c.request("POST", "/v2/third/app/blobs/uploads/?mount=" + d);
  REQUIRE(r.isOk());
  CHECK(r->status == 201);

  // Not in `from`: an upload session starts instead.
  r = c.request("POST", "/v2/fourth/app/blobs/uploads/?mount=" + digestOf("nope").str() + "&from=src/app");
  REQUIRE(r.isOk());
  CHECK(r->status == 202);
  CHECK_FALSE(r->header("location").empty());
  r = c.request("POST", "/v2/fourth/app/blobs/uploads/?mount=bad");
  CHECK(r->status == 400);
}

TEST_CASE("stale uploads are purged", "[uploads]") {
  CoreServer core({}, {"--upload-purge-after", "1s", "--upload-purge-interval", "1s"});
  HttpClient c("127.0.0.1", core.port());
  std::string loc = startUpload(c, "stale/one");
  REQUIRE(c.request("PATCH", loc, {}, "abc")->status == 202);
  CHECK(waitFor([&] { return c.request("GET", loc)->status == 404; }, 15000));
  CHECK(core.log().find("purged stale uploads") != std::string::npos);
}

TEST_CASE("an empty blob can be pushed and pulled", "[uploads]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  std::string d = digestOf("").str();
  auto r = c.request("POST", "/v2/e/e/blobs/uploads/?digest=" + d, {{"Content-Length", "0"}});
  REQUIRE(r.isOk());
  CHECK(r->status == 201);
  r = c.request("GET", "/v2/e/e/blobs/" + d);
  CHECK(r->status == 200);
  CHECK(r->body.empty());
}

}  // namespace uploads_test
