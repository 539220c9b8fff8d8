#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/auth/scope.h"
#include "shared/auth/token.h"

// Each file's own names: the test binaries are unity builds.
namespace scope_test {

using namespace wharf;

TEST_CASE("scope: parses type, name and sorted, de-duplicated actions", "[auth]") {
  auto s = parseScope("repository:team/app:push,pull,push");
  REQUIRE(s.isOk());
  CHECK(s->type == "repository");
  CHECK(s->name == "team/app");
  CHECK(s->actions == std::vector<std::string>{"pull", "push"});
  CHECK(s->str() == "repository:team/app:pull,push");
}

TEST_CASE("scope: a name may carry a host:port prefix", "[auth]") {
  auto s = parseScope("repository:localhost:5000/team/app:pull");
  REQUIRE(s.isOk());
  CHECK(s->type == "repository");
  CHECK(s->name == "localhost:5000/team/app");
  CHECK(s->actions == std::vector<std::string>{"pull"});
}

TEST_CASE("scope: registry catalog and wildcard actions", "[auth]") {
  auto s = parseScope("registry:catalog:*");
  REQUIRE(s.isOk());
  CHECK(s->type == "registry");
  CHECK(s->name == "catalog");
  CHECK(s->allows("*"));
  CHECK(s->allows("pull"));
  CHECK(s->allows("anything"));
}

TEST_CASE("scope: empty action entries are dropped", "[auth]") {
  auto s = parseScope("repository:app:,pull,,delete,");
  REQUIRE(s.isOk());
  CHECK(s->actions == std::vector<std::string>{"delete", "pull"});
  auto none = parseScope("repository:app:");
  REQUIRE(none.isOk());
  CHECK(none->actions.empty());
  CHECK_FALSE(none->allows("pull"));
}

TEST_CASE("scope: malformed scopes are refused", "[auth]") {
  for (const char* bad : {"", "repository", "repository:app", ":app:pull", "repository::pull", "::"}) {
    INFO(bad);
    auto s = parseScope(bad);
    CHECK_FALSE(s.isOk());
    CHECK(s.status().code() == Code::kInvalidArgument);
  }
  std::string huge = "repository:" + std::string(600, 'a') + ":pull";
  CHECK(parseScope(huge).status().code() == Code::kInvalidArgument);
}

TEST_CASE("scope: allows checks listed actions only", "[auth]") {
  Scope s{"repository", "a/b", {"pull"}};
  CHECK(s.allows("pull"));
  CHECK_FALSE(s.allows("push"));
  CHECK_FALSE(s.allows("delete"));
  CHECK_FALSE(s.allows("*"));
}

TEST_CASE("scope: toJson and scopeFromJson round-trip", "[auth]") {
  Scope s{"repository", "team/app", {"pull", "push"}};
  nlohmann::json j = s.toJson();
  CHECK(j["type"] == "repository");
  CHECK(j["name"] == "team/app");
  CHECK(j["actions"] == nlohmann::json::array({"pull", "push"}));
  auto back = scopeFromJson(j);
  REQUIRE(back.isOk());
  CHECK(back->type == s.type);
  CHECK(back->name == s.name);
  CHECK(back->actions == s.actions);
}

TEST_CASE("scope: malformed access entries are refused", "[auth]") {
  using nlohmann::json;
  const std::vector<json> bad = {
      json::array(),
      json("repository:a:pull"),
      json{{"name", "a"}, {"actions", json::array({"pull"})}},
      json{{"type", "repository"}, {"actions", json::array({"pull"})}},
      json{{"type", "repository"}, {"name", "a"}},
      json{{"type", 1}, {"name", "a"}, {"actions", json::array({"pull"})}},
      json{{"type", "repository"}, {"name", "a"}, {"actions", "pull"}},
      json{{"type", "repository"}, {"name", "a"}, {"actions", json::array({1})}},
  };
  for (const auto& j : bad) {
    INFO(j.dump());
    CHECK(scopeFromJson(j).status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("scope: bearer challenges", "[auth]") {
  CHECK(bearerChallenge("https://r.example/auth/token", "wharf", {}, false) ==
        "Bearer realm=\"https://r.example/auth/token\",service=\"wharf\"");
  std::vector<Scope> scopes = {{"repository", "a/b", {"pull"}}, {"repository", "c/d", {"pull", "push"}}};
  CHECK(bearerChallenge("https://r/t", "svc", scopes, false) ==
        "Bearer realm=\"https://r/t\",service=\"svc\",scope=\"repository:a/b:pull repository:c/d:pull,push\"");
  CHECK(bearerChallenge("https://r/t", "svc", {scopes[0]}, true) ==
        "Bearer realm=\"https://r/t\",service=\"svc\",scope=\"repository:a/b:pull\",error=\"insufficient_scope\"");
}

TEST_CASE("scope: TokenClaims::allows matches type, name and action", "[auth]") {
  TokenClaims c;
  c.access = {{"repository", "a/b", {"pull", "push"}}, {"registry", "catalog", {"*"}}};
  CHECK(c.allows("repository", "a/b", "pull"));
  CHECK(c.allows("repository", "a/b", "push"));
  CHECK_FALSE(c.allows("repository", "a/b", "delete"));
  CHECK_FALSE(c.allows("repository", "a/bc", "pull"));
  CHECK_FALSE(c.allows("registry", "a/b", "pull"));
  CHECK(c.allows("registry", "catalog", "*"));
  TokenClaims empty;
  CHECK_FALSE(empty.allows("repository", "a/b", "pull"));
}

}  // namespace scope_test
