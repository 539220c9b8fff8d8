#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "edge/pull/pull_handler.h"
#include "edge/pull/upstreams.h"
#include "shared/base/fs.h"
#include "shared/oci/names.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace upstreams_test {

using namespace wharf;
using namespace wharf::test;

namespace {

void checkInvalid(const std::string& json, const std::string& message_part) {
  INFO(json);
  auto r = UpstreamSet::parseSpecs(json);
  REQUIRE_FALSE(r.isOk());
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::Contains(message_part));
}

UpstreamSpec spec(const std::string& prefix, const std::string& url) {
  UpstreamSpec s;
  s.prefix = prefix;
  s.url = url;
  return s;
}

}  // namespace

TEST_CASE("upstreams: parseSpecs reads a valid array", "[edge][upstreams]") {
  TempDir dir;
  REQUIRE(writeFileAtomic(dir / "hub.pw", "s3cret\r\n").isOk());
  std::string json = R"([
    {"prefix": "hub/", "url": "https://registry-1.docker.io", "username": "bob",
     "password_file": ")" + (dir / "hub.pw") + R"(", "ca_file": "/etc/ca.pem", "insecure": true},
    {"prefix": "ghcr/team/", "url": "http://127.0.0.1:5000"}
  ])";
  auto r = UpstreamSet::parseSpecs(json);
  REQUIRE(r.isOk());
  REQUIRE(r->size() == 2);
  const auto& hub = (*r)[0];
  CHECK(hub.prefix == "hub/");
  CHECK(hub.url == "https://registry-1.docker.io");
  CHECK(hub.username == "bob");
  CHECK(hub.password == "s3cret");  // the file's line ending is not part of it
  CHECK(hub.ca_file == "/etc/ca.pem");
  CHECK(hub.insecure);
  const auto& ghcr = (*r)[1];
  CHECK(ghcr.prefix == "ghcr/team/");
  CHECK(ghcr.url == "http://127.0.0.1:5000");
  CHECK(ghcr.username.empty());
  CHECK(ghcr.password.empty());
  CHECK_FALSE(ghcr.insecure);

  // No setting, or an empty array: no other upstreams.
  auto none = UpstreamSet::parseSpecs("");
  REQUIRE(none.isOk());
  CHECK(none->empty());
  auto empty = UpstreamSet::parseSpecs("[]");
  REQUIRE(empty.isOk());
  CHECK(empty->empty());
}

TEST_CASE("upstreams: parseSpecs rejects malformed settings", "[edge][upstreams]") {
  checkInvalid(R"({"prefix": "hub/", "url": "http://127.0.0.1:1"})", "JSON array");
  checkInvalid("not json", "JSON array");
  checkInvalid(R"(["hub/"])", "object");
  checkInvalid(R"([{"prefix": "hub/", "url": "http://127.0.0.1:1", "token": "x"}])", "unknown key \"token\"");
  checkInvalid(R"([{"prefix": "hub/"}])", "no url");
  checkInvalid(R"([{"prefix": "hub/", "url": ""}])", "no url");
  checkInvalid(R"([{"url": "http://127.0.0.1:1"}])", "prefix");
  checkInvalid(R"([{"prefix": "hub", "url": "http://127.0.0.1:1"}])", "ending in '/'");
  checkInvalid(R"([{"prefix": "Hub/", "url": "http://127.0.0.1:1"}])", "prefix \"Hub/\"");
  checkInvalid(R"([{"prefix": "hub//", "url": "http://127.0.0.1:1"}])", "prefix \"hub//\"");
  checkInvalid(R"([{"prefix": "/", "url": "http://127.0.0.1:1"}])", "prefix \"/\"");
  checkInvalid(R"([{"prefix": "/hub/", "url": "http://127.0.0.1:1"}])", "prefix \"/hub/\"");
  checkInvalid(R"([{"prefix": "hub/", "url": "http://127.0.0.1:1"}, {"prefix": "hub/", "url": "http://127.0.0.1:2"}])",
               "mapped twice");
  checkInvalid(R"([{"prefix": "hub/", "url": "http://127.0.0.1:1", "insecure": "true"}])", "\"insecure\" must be");
  checkInvalid(R"([{"prefix": "hub/", "url": "http://127.0.0.1:1", "insecure": 1}])", "\"insecure\" must be");
  checkInvalid(R"([{"prefix": "hub/", "url": 5}])", "\"url\" must be a string");
  checkInvalid(R"([{"prefix": "hub/", "url": "http://127.0.0.1:1", "password_file": "/nonexistent/wharf/pw"}])",
               "password_file /nonexistent/wharf/pw");
}

TEST_CASE("upstreams: route sends each repository to its longest matching prefix", "[edge][upstreams]") {
  // Given shortest first: create() must still try the longest first.
  std::vector<UpstreamSpec> others{spec("hub/", "http://127.0.0.1:2/"), spec("hub/library/", "http://127.0.0.1:3"),
                                   spec("quay/", "http://127.0.0.1:4")};
  auto set = UpstreamSet::create(spec("", "http://127.0.0.1:1"), others);
  REQUIRE(set.isOk());
  const UpstreamSet& s = **set;
  CHECK(s.size() == 4);
  CHECK(s.core().is_core);
  CHECK(s.core().prefix.empty());
  CHECK(s.core().base_url == "http://127.0.0.1:1");
  CHECK(s.core().auth == nullptr);  // the core gets the client's own token

  std::string name;
  const UpstreamTarget* t = &s.route("hub/library/alpine", &name);
  CHECK(t->prefix == "hub/library/");
  CHECK(t->base_url == "http://127.0.0.1:3");
  CHECK_FALSE(t->is_core);
  CHECK(t->auth != nullptr);
  CHECK(name == "alpine");

  t = &s.route("hub/bitnami/redis", &name);
  CHECK(t->prefix == "hub/");
  CHECK(t->base_url == "http://127.0.0.1:2");  // trailing '/' dropped
  CHECK(name == "bitnami/redis");

  t = &s.route("hub/library", &name);  // not under hub/library/
  CHECK(t->prefix == "hub/");
  CHECK(name == "library");

  t = &s.route("quay/org/app", &name);
  CHECK(t->prefix == "quay/");
  CHECK(name == "org/app");

  // Everything else goes to the core, named as it is.
  t = &s.route("team/app", &name);
  CHECK(t->is_core);
  CHECK(t == &s.core());
  CHECK(name == "team/app");
  t = &s.route("hubx/app", &name);
  CHECK(t->is_core);
  CHECK(name == "hubx/app");
  t = &s.route("hub", &name);
  CHECK(t->is_core);
  CHECK(name == "hub");
  // The prefix alone names no repository there.
  t = &s.route("hub/", &name);
  CHECK(t->is_core);
  CHECK(name == "hub/");

  // Each target knows its position (client pools are per upstream).
  std::vector<bool> seen(s.size(), false);
  for (const char* repo : {"x/y", "hub/a", "hub/library/a", "quay/a"}) {
    const UpstreamTarget& target = s.route(repo, &name);
    REQUIRE(target.index < s.size());
    CHECK_FALSE(seen[target.index]);
    seen[target.index] = true;
  }
  CHECK(s.core().index == 0);
}

TEST_CASE("upstreams: create keeps each upstream's TLS options and fails on a bad url", "[edge][upstreams]") {
  UpstreamSpec hub = spec("hub/", "http://127.0.0.1:2");
  hub.ca_file = "/etc/hub-ca.pem";
  hub.insecure = true;
  auto set = UpstreamSet::create(spec("", "http://127.0.0.1:1"), {hub});
  REQUIRE(set.isOk());
  std::string name;
  const UpstreamTarget& t = (*set)->route("hub/app", &name);
  CHECK(t.options.ca_file == "/etc/hub-ca.pem");
  CHECK(t.options.insecure);
  CHECK_FALSE((*set)->core().options.insecure);
  // No challenge was read yet: no header at hand, and no network was needed to say so.
  CHECK_FALSE(t.auth->cached("app"));

  auto bad = UpstreamSet::create(spec("", "http://127.0.0.1:1"), {spec("hub/", "ftp://127.0.0.1:2")});
  CHECK_FALSE(bad.isOk());
  auto bad_core = UpstreamSet::create(spec("", "not a url"), {});
  CHECK_FALSE(bad_core.isOk());
}

TEST_CASE("upstreams: stale-if-error repository patterns", "[edge][upstreams]") {
  CHECK(anyRepositoryPatternMatches({"*"}, "team/app"));
  CHECK(anyRepositoryPatternMatches({"*"}, "app"));

  CHECK(anyRepositoryPatternMatches({"team/app"}, "team/app"));
  CHECK_FALSE(anyRepositoryPatternMatches({"team/app"}, "team/app2"));
  CHECK_FALSE(anyRepositoryPatternMatches({"team/app"}, "team/ap"));
  CHECK_FALSE(anyRepositoryPatternMatches({"team/app"}, "other/team/app"));

  CHECK(anyRepositoryPatternMatches({"team/*"}, "team/app"));
  CHECK(anyRepositoryPatternMatches({"team/*"}, "team/a/b"));
  CHECK_FALSE(anyRepositoryPatternMatches({"team/*"}, "team"));
  CHECK_FALSE(anyRepositoryPatternMatches({"team/*"}, "team/"));
  CHECK_FALSE(anyRepositoryPatternMatches({"team/*"}, "teamx/app"));
  CHECK_FALSE(anyRepositoryPatternMatches({"team/*"}, "other/team/app"));

  CHECK_FALSE(anyRepositoryPatternMatches({}, "team/app"));
  CHECK_FALSE(anyRepositoryPatternMatches({}, ""));
  // Any one pattern is enough.
  CHECK(anyRepositoryPatternMatches({"a/b", "team/*"}, "team/x"));
  CHECK(anyRepositoryPatternMatches({"team/*", "a/b"}, "a/b"));
  CHECK_FALSE(anyRepositoryPatternMatches({"team/*", "a/b"}, "a/c"));
}

}  // namespace upstreams_test
