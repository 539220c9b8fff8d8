#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "shared/http/url.h"

// Each file's own names: the test binaries are unity builds.
namespace url_test {

using namespace wharf;

namespace {
Status split(const std::string& target, std::string* path, std::string* query) {
  return splitTarget(target, path, query);
}
Code splitCode(const std::string& target) {
  std::string p, q;
  return splitTarget(target, &p, &q).code();
}
}  // namespace

TEST_CASE("splitTarget separates path and query and decodes the path") {
  std::string path, query;
  REQUIRE(split("/v2/a/tags/list?n=10&last=b", &path, &query).isOk());
  CHECK(path == "/v2/a/tags/list");
  CHECK(query == "n=10&last=b");

  REQUIRE(split("/v2/", &path, &query).isOk());
  CHECK(path == "/v2/");
  CHECK(query.empty());

  REQUIRE(split("/", &path, &query).isOk());
  CHECK(path == "/");

  REQUIRE(split("/v2/a%2Db/manifests/%6c%61test", &path, &query).isOk());
  CHECK(path == "/v2/a-b/manifests/latest");

  // The query stays raw (it is decoded per parameter) and loses a fragment.
  REQUIRE(split("/x?a=%2F&b=c%20d#frag", &path, &query).isOk());
  CHECK(path == "/x");
  CHECK(query == "a=%2F&b=c%20d");

  // An empty query, a '?' inside the query.
  REQUIRE(split("/x?", &path, &query).isOk());
  CHECK(path == "/x");
  CHECK(query.empty());
  REQUIRE(split("/x?a=1?2", &path, &query).isOk());
  CHECK(query == "a=1?2");

  // Dots inside a segment are fine.
  REQUIRE(split("/v2/a.b/...c/..d/e../manifests/v1.0", &path, &query).isOk());
  CHECK(path == "/v2/a.b/...c/..d/e../manifests/v1.0");
}

TEST_CASE("splitTarget refuses non-origin forms") {
  for (const char* t : {"", "*", "http://host/v2/", "v2/", "//host/v2"}) {
    INFO("target: \"" << t << "\"");
    CHECK(splitCode(t) == Code::kInvalidArgument);
  }
}

TEST_CASE("splitTarget refuses encoded separators and bad escapes") {
  for (const char* t : {"/v2/a%2fb/manifests/x", "/v2/a%2Fb/manifests/x", "/v2/a%5cb", "/v2/a%5Cb", "/v2/a%00b",
                        "/v2/%", "/v2/%4", "/v2/a%zz", "/v2/a%g0", "/v2/a%0g", "/v2/%%41", "/v2/a%-1b",
                        "/v2/a%0a", "/v2/a%1F", "/v2/a%7f", "/v2/a%7F"}) {
    INFO("target: \"" << t << "\"");
    CHECK(splitCode(t) == Code::kInvalidArgument);
  }
  // A valid escape at the very end.
  std::string path, query;
  REQUIRE(split("/v2/a%41", &path, &query).isOk());
  CHECK(path == "/v2/aA");
  REQUIRE(split("/v2/%41?q", &path, &query).isOk());
  CHECK(path == "/v2/A");
}

TEST_CASE("splitTarget refuses dot segments, empty segments and control characters") {
  for (const std::string& t : std::vector<std::string>{"/v2/../etc", "/v2/./a", "/..", "/.", "/v2/a/..", "/v2/a/.", "/v2/%2e%2e/a", "/v2/%2E/a",
                        "/v2/.%2e/a", "/v2//a", "//", "/v2/a//", "/v2/a\\b", "/v2/a#b", std::string("/v2/a\0b", 7),
                        "/v2/a\tb", "/v2/a\rb", "/v2/a\nb", "/v2/a\x7f" "b", "/v2/a\x01"}) {
    INFO("target: \"" << t << "\"");
    CHECK(splitCode(t) == Code::kInvalidArgument);
  }
  // A trailing slash is one empty last segment, not "//".
  std::string path, query;
  CHECK(split("/v2/a/blobs/uploads/", &path, &query).isOk());
}

TEST_CASE("splitTarget passes non-ASCII bytes through") {
  std::string path, query;
  REQUIRE(split("/v2/%C3%A9", &path, &query).isOk());
  CHECK(path == "/v2/\xC3\xA9");
}

TEST_CASE("parseQuery decodes keys and values, '+' as space") {
  auto q = parseQuery("n=10&last=a%2Fb&x=a+b&flag&&empty=&=v&k=1=2");
  REQUIRE(q.size() == 7);
  CHECK(q[0] == std::pair<std::string, std::string>{"n", "10"});
  CHECK(q[1] == std::pair<std::string, std::string>{"last", "a/b"});
  CHECK(q[2] == std::pair<std::string, std::string>{"x", "a b"});
  CHECK(q[3] == std::pair<std::string, std::string>{"flag", ""});
  CHECK(q[4] == std::pair<std::string, std::string>{"empty", ""});
  CHECK(q[5] == std::pair<std::string, std::string>{"", "v"});
  CHECK(q[6] == std::pair<std::string, std::string>{"k", "1=2"});
  CHECK(parseQuery("").empty());
  CHECK(parseQuery("&&&").empty());
  auto dup = parseQuery("a=1&a=2");
  REQUIRE(dup.size() == 2);
  CHECK(dup[1].second == "2");
}

TEST_CASE("percentDecode leaves bad escapes alone; percentEncode keeps unreserved characters") {
  CHECK(percentDecode("a%20b", false) == "a b");
  CHECK(percentDecode("a+b", false) == "a+b");
  CHECK(percentDecode("a+b", true) == "a b");
  CHECK(percentDecode("%2b", true) == "+");
  CHECK(percentDecode("100%", false) == "100%");
  CHECK(percentDecode("%4", false) == "%4");
  CHECK(percentDecode("%zz", false) == "%zz");
  CHECK(percentDecode("%41%42", false) == "AB");
  CHECK(percentDecode("%00", false) == std::string(1, '\0'));

  CHECK(percentEncode("AZaz09-._~") == "AZaz09-._~");
  CHECK(percentEncode("a/b c+d") == "a%2Fb%20c%2Bd");
  CHECK(percentEncode("sha256:ab") == "sha256%3Aab");
  CHECK(percentEncode("\xff") == "%FF");
  CHECK(percentEncode("") == "");
  // Round trip over every byte.
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  CHECK(percentDecode(percentEncode(all), false) == all);
  CHECK(percentDecode(percentEncode(all), true) == all);
}

}  // namespace url_test
