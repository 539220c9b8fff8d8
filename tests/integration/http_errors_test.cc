// Errors of the HTTP layer itself against the real wharf-core: every malformed request
// gets the right status and the registry's JSON error body (not plain text or a bare
// close), request smuggling vectors are refused, and the core serves on afterwards.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cctype>

#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/raw_conn.h"

// Each file's own names: the test binaries are unity builds.
namespace http_errors_test {

using namespace wharf;
using namespace wharf::test;

namespace {

// The code of the first error in a raw response's JSON body ("" if none).
std::string ociCode(const std::string& response) {
  auto j = nlohmann::json::parse(bodyOf(response), nullptr, false);
  if (!j.is_object() || !j.contains("errors") || !j["errors"].is_array() || j["errors"].empty()) return "";
  const auto& e = j["errors"][0];
  return e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
}

struct Case {
  const char* what;
  std::string request;
  int status;
  const char* code;
};

}  // namespace

TEST_CASE("HTTP-layer errors answer with their status and the OCI error body", "[hardening][http-errors]") {
  CoreServer core;
  std::string host = "Host: 127.0.0.1\r\n";
  std::vector<Case> cases = {
      {"a malformed request line", "GET\r\n\r\n", 400, "UNSUPPORTED"},
      {"garbage", std::string("\x16\x03\x01\x02\x00\x01\x00", 7) + "\r\n\r\n", 400, "UNSUPPORTED"},
      {"HTTP/2 on a HTTP/1 port", "GET /v2/ HTTP/2.0\r\n" + host + "\r\n", 400, "UNSUPPORTED"},
      {"a URI over the limit", "GET /v2/" + std::string(9000, 'a') + " HTTP/1.1\r\n" + host + "\r\n", 414, "UNSUPPORTED"},
      {"a header over the limit", "GET /v2/ HTTP/1.1\r\n" + host + "X-Big: " + std::string(70000, 'b') + "\r\n\r\n", 431,
       "UNSUPPORTED"},
      {"too many headers", [&] {
         std::string r = "GET /v2/ HTTP/1.1\r\n" + host;
         for (int i = 0; i < 150; ++i) r += "X-" + std::to_string(i) + ": v\r\n";
         return r + "\r\n";
       }(), 431, "UNSUPPORTED"},
      {"a bad chunk size", "POST /v2/a/b/blobs/uploads/ HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
       400, "UNSUPPORTED"},
      {"an unsupported Transfer-Encoding", "POST /v2/a/b/blobs/uploads/ HTTP/1.1\r\n" + host +
                                              "Transfer-Encoding: gzip\r\n\r\n", 501, "UNSUPPORTED"},
      {"gzip before chunked", "POST /v2/a/b/blobs/uploads/ HTTP/1.1\r\n" + host +
                                 "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "UNSUPPORTED"},
      {"Content-Length with Transfer-Encoding (smuggling)", "POST /v2/a/b/blobs/uploads/ HTTP/1.1\r\n" + host +
                                 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "UNSUPPORTED"},
      {"two different Content-Lengths", "POST /v2/a/b/blobs/uploads/ HTTP/1.1\r\n" + host +
                                 "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400, "UNSUPPORTED"},
      {"obs-fold (a header continued on the next line)", "GET /v2/ HTTP/1.1\r\n" + host +
                                 "X-Folded: a\r\n b\r\n\r\n", 400, "UNSUPPORTED"},
      {"whitespace between a field name and its colon", "GET /v2/ HTTP/1.1\r\nHost : x\r\n\r\n", 400, "UNSUPPORTED"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    RawConn conn(core.port());
    REQUIRE(conn.valid());
    conn.send(c.request);
    std::string r = conn.readResponse(10000);
    CHECK(statusOf(r) == c.status);
    CHECK(ociCode(r) == c.code);
    std::string lower = r;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    CHECK(lower.find("\r\ncontent-type: application/json\r\n") != std::string::npos);
    CHECK(lower.find("\r\nx-request-id: ") != std::string::npos);
    // A stream that cannot be resynchronised is closed after the answer.
    conn.readUntilClosed(5000);
    CHECK(conn.closed());
  }
  // A body over the limit (a manifest over 4 MiB) is a 413 with the JSON body too.
  HttpClient client("127.0.0.1", core.port());
  auto big = client.request("PUT", "/v2/a/b/manifests/v1",
                            {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                            std::string(5 << 20, ' '));
  REQUIRE(big.isOk());
  CHECK(big->status == 413);
  CHECK(big->body.find("\"errors\"") != std::string::npos);
  // The core is alive and serves on.
  HttpClient after("127.0.0.1", core.port());
  auto ok = after.request("GET", "/v2/");
  REQUIRE(ok.isOk());
  CHECK(ok->status == 200);
  CHECK(core.process().running());
}

}  // namespace http_errors_test
