// Every field of every /api/v1 body, sent with every wrong type, against the real
// wharf-core: each answer is a 400 naming the field (and what it expected), never a
// crash. Before the typed reader, a string where a number was expected (and the like)
// threw on a worker thread and the process died; a signed-in user reached it through
// their own token endpoint.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace api_bodies_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

const char* kAdminPassword = "bodies-admin-password";
const char* kDevPassword = "bodies-dev-password";

enum class Type { kString, kBool, kInt, kStrings, kObject };

struct Field {
  const char* name;
  Type type;
};

struct Endpoint {
  const char* method;
  std::string path;
  json valid;                 // a body every field of which is right (the others stay right)
  std::vector<Field> fields;
  bool as_dev = false;        // sent by a plain user, not an administrator
};

// The wrong values for a field of type t: every JSON type it is not, a 1 MB string and
// nesting 10,000 deep.
std::vector<std::pair<std::string, std::string>> wrongValues(Type t) {
  std::vector<std::pair<std::string, std::string>> out;
  if (t != Type::kString) out.push_back({"a string", "\"x\""});
  if (t != Type::kInt) out.push_back({"a number", "12345"});
  if (t != Type::kInt) out.push_back({"a negative float", "-1.5"});
  if (t != Type::kBool) out.push_back({"a boolean", "true"});
  out.push_back({"null", "null"});
  if (t != Type::kStrings) out.push_back({"an array", "[1,2]"});
  if (t != Type::kObject) out.push_back({"an object", "{\"a\":1}"});
  out.push_back({"a 1 MB string", "\"" + std::string(1'000'000, 'm') + "\""});
  out.push_back({"nesting 10,000 deep", std::string(10'000, '[') + std::string(10'000, ']')});
  return out;
}

// valid with field set to the raw JSON text value.
std::string bodyWith(const json& valid, const std::string& field, const std::string& value) {
  json rest = valid;
  rest.erase(field);
  std::string text = rest.dump();
  std::string member = "\"" + field + "\":" + value;
  return text == "{}" ? "{" + member + "}" : "{" + member + "," + text.substr(1);
}

}  // namespace

TEST_CASE("every field of every API body with every wrong type is a 400 naming it", "[hardening][api-bodies]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  CoreServer core("", {"--auth", "token", "--webhook-allow-private", "true"});
  HttpClient c("127.0.0.1", core.port());
  HeaderList admin = {{"Authorization", basicAuthorization("admin", kAdminPassword)},
                      {"Content-Type", "application/json"}};
  HeaderList dev = {{"Authorization", basicAuthorization("dev", kDevPassword)}, {"Content-Type", "application/json"}};
  auto setup = [&](const char* method, const std::string& path, const json& body, int want) {
    auto r = c.request(method, path, admin, body.dump());
    REQUIRE(r.isOk());
    INFO(method << " " << path << " -> " << r->body);
    REQUIRE(r->status == want);
    return json::parse(r->body, nullptr, false);
  };
  setup("POST", "/api/v1/users", {{"name", "dev"}, {"password", kDevPassword}}, 201);
  setup("POST", "/api/v1/orgs", {{"name", "acme"}}, 201);
  setup("POST", "/api/v1/repositories", {{"name", "acme/api"}}, 201);
  setup("POST", "/api/v1/edges", {{"name", "e1"}, {"site", "s"}}, 201);
  json hook = setup("POST", "/api/v1/webhooks",
                    {{"scope", "acme/*"}, {"url", "http://127.0.0.1:9/hook"}, {"events", {"manifest.push"}}}, 201);
  std::string hook_id = hook.value("id", "");
  REQUIRE_FALSE(hook_id.empty());

  std::vector<Endpoint> endpoints = {
      {"POST", "/api/v1/users", {{"name", "u2"}, {"password", "a-long-password"}},
       {{"name", Type::kString}, {"password", Type::kString}, {"email", Type::kString}, {"admin", Type::kBool}}},
      {"PATCH", "/api/v1/users/dev", json::object(),
       {{"email", Type::kString}, {"password", Type::kString}, {"admin", Type::kBool}, {"disabled", Type::kBool}}},
      {"PATCH", "/api/v1/users/dev", json::object(), {{"email", Type::kString}, {"password", Type::kString}}, true},
      {"POST", "/api/v1/users/dev/tokens", json::object(),
       {{"name", Type::kString}, {"scopes", Type::kStrings}, {"expires_in_days", Type::kInt}}, true},
      {"POST", "/api/v1/orgs", {{"name", "org2"}}, {{"name", Type::kString}}},
      {"PUT", "/api/v1/orgs/acme/members/dev", json::object(), {{"role", Type::kString}}},
      {"POST", "/api/v1/orgs/acme/teams", {{"name", "t1"}}, {{"name", Type::kString}, {"description", Type::kString}}},
      {"POST", "/api/v1/repositories", {{"name", "acme/r2"}},
       {{"name", Type::kString}, {"public", Type::kBool}, {"description", Type::kString}}},
      {"PATCH", "/api/v1/repositories/acme/api", json::object(),
       {{"public", Type::kBool}, {"description", Type::kString}}},
      {"PUT", "/api/v1/repositories/acme/api/permissions/users/dev", {{"role", "read"}}, {{"role", Type::kString}}},
      {"PUT", "/api/v1/policies/acme/*", {{"immutable", {"v*"}}},
       {{"immutable", Type::kStrings}, {"retention", Type::kObject}}},
      {"POST", "/api/v1/edges", {{"name", "e2"}},
       {{"name", Type::kString}, {"site", Type::kString}, {"settings", Type::kObject}, {"ttl_seconds", Type::kInt}}},
      {"PATCH", "/api/v1/edges/e1", json::object(), {{"settings", Type::kObject}}},
      {"POST", "/api/v1/edges/register", json::object(), {{"join_token", Type::kString}}},
      {"POST", "/api/v1/jobs", {{"kind", "gc"}, {"params", {{"dry_run", true}}}},
       {{"kind", Type::kString}, {"params", Type::kObject}}},
      {"PUT", "/api/v1/schedules/s1", {{"cron", "@daily"}, {"kind", "gc"}},
       {{"cron", Type::kString}, {"kind", Type::kString}, {"params", Type::kObject}, {"enabled", Type::kBool}}},
      {"POST", "/api/v1/webhooks", {{"scope", "acme/*"}, {"url", "http://127.0.0.1:9/x"}, {"events", {"tag.push"}}},
       {{"scope", Type::kString}, {"url", Type::kString}, {"events", Type::kStrings}, {"secret", Type::kString},
        {"enabled", Type::kBool}}},
      {"PATCH", "/api/v1/webhooks/" + hook_id, json::object(),
       {{"url", Type::kString}, {"events", Type::kStrings}, {"secret", Type::kString}, {"enabled", Type::kBool}}},
      {"POST", "/api/v1/auth/keys/rotate", json::object(), {{"overlap_seconds", Type::kInt}}},
      {"PUT", "/api/v1/ldap", {{"url", "ldap://127.0.0.1:1"}, {"user_base", "dc=x"}, {"user_filter", "(uid={user})"}},
       {{"url", Type::kString}, {"user_base", Type::kString}, {"user_filter", Type::kString},
        {"bind_password", Type::kString}, {"start_tls", Type::kBool}, {"enabled", Type::kBool},
        {"sync_interval_seconds", Type::kInt}, {"timeout_seconds", Type::kInt}, {"team_map", Type::kObject}}},
  };
  int sent = 0;
  for (const auto& e : endpoints) {
    for (const auto& f : e.fields) {
      for (const auto& [what, value] : wrongValues(f.type)) {
        INFO(e.method << " " << e.path << " with " << f.name << " = " << what << (e.as_dev ? " (as dev)" : ""));
        auto r = c.request(e.method, e.path, e.as_dev ? dev : admin, bodyWith(e.valid, f.name, value));
        REQUIRE(r.isOk());  // an answer, not a dead core
        ++sent;
        INFO("answer: " << r->body.substr(0, 300));
        CHECK(r->status == 400);
        auto j = json::parse(r->body, nullptr, false);
        std::string message =
            j.is_object() && j.contains("errors") && !j["errors"].empty() ? j["errors"][0].value("message", "") : "";
        CHECK(message.find(f.name) != std::string::npos);
        CHECK((message.find("expected") != std::string::npos || message.find("nested more than") != std::string::npos));
      }
    }
  }
  CHECK(sent > 300);
  // The core is alive, and nothing the refused bodies named was created.
  CHECK(core.process().running());
  auto users = c.request("GET", "/api/v1/users", admin);
  REQUIRE(users.isOk());
  CHECK(users->status == 200);
  CHECK(users->body.find("\"u2\"") == std::string::npos);
  auto edges = c.request("GET", "/api/v1/edges", admin);
  REQUIRE(edges.isOk());
  CHECK(edges->body.find("\"e2\"") == std::string::npos);
  // An unknown field is refused by name too, and a body that is not an object.
  auto typo = c.request("POST", "/api/v1/users/dev/tokens", dev, R"({"nmae":"ci"})");
  REQUIRE(typo.isOk());
  CHECK(typo->status == 400);
  CHECK(typo->body.find("nmae") != std::string::npos);
  auto array = c.request("POST", "/api/v1/orgs", admin, "[1,2,3]");
  REQUIRE(array.isOk());
  CHECK(array->status == 400);
}

}  // namespace api_bodies_test
