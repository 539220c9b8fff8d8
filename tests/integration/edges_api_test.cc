// Edge registration against the real wharf-core: join tokens (administrators only,
// single use, expiring), registration, the edge's credential and /self, settings,
// removal (revocation), persistence across a restart, audit, and wharfctl edge.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <ctime>

#include "core/auth/identity_store.h"
#include "core/auth/lmdb_identity_store.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace edges_api_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

const char* kAdminPassword = "edges-admin-password";

CoreServer authCore(const std::string& data_dir = "", std::vector<std::string> extra = {}) {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  extra.insert(extra.begin(), {"--auth", "token"});
  return CoreServer(data_dir, extra);
}

HttpResponse call(HttpClient& c, const std::string& method, const std::string& path, HeaderList headers,
                  const json& body = nullptr) {
  std::string b;
  if (!body.is_null()) {
    headers.push_back({"Content-Type", "application/json"});
    b = body.dump();
  }
  auto r = c.request(method, path, headers, b);
  REQUIRE(r.isOk());
  return *r;
}

HttpResponse admin(HttpClient& c, const std::string& method, const std::string& path, const json& body = nullptr) {
  return call(c, method, path, {{"Authorization", basicAuthorization("admin", kAdminPassword)}}, body);
}

HttpResponse asEdge(HttpClient& c, const std::string& credential) {
  return call(c, "GET", "/api/v1/edges/self", {{"Authorization", "Bearer " + credential}});
}

HttpResponse registerWith(HttpClient& c, const std::string& join_token) {
  return call(c, "POST", "/api/v1/edges/register", {}, {{"join_token", join_token}});
}

std::string errorCode(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "(no error body: " + r.body + ")";
  return j["errors"][0].value("code", "");
}

std::string errorMessage(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "";
  return j["errors"][0].value("message", "");
}

// Adds an edge as the administrator and returns the join token.
std::string addEdge(HttpClient& c, const std::string& name, json extra = json::object()) {
  extra["name"] = name;
  if (!extra.contains("site")) extra["site"] = "Site " + name;
  auto r = admin(c, "POST", "/api/v1/edges", extra);
  INFO(r.body);
  REQUIRE(r.status == 201);
  return json::parse(r.body)["join_token"].get<std::string>();
}

// Registers with a fresh join token and returns the credential.
std::string registerEdge(HttpClient& c, const std::string& join_token) {
  auto r = registerWith(c, join_token);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body)["credential"].get<std::string>();
}

// The realm of the core's Bearer challenge.
std::string challengeRealm(HttpClient& c) {
  auto r = c.request("GET", "/v2/");
  REQUIRE(r.isOk());
  REQUIRE(r->status == 401);
  std::string h = r->header("www-authenticate");
  auto start = h.find("realm=\"");
  REQUIRE(start != std::string::npos);
  start += 7;
  return h.substr(start, h.find('"', start) - start);
}

json edgeNamed(HttpClient& c, const std::string& name) {
  auto r = admin(c, "GET", "/api/v1/edges");
  REQUIRE(r.status == 200);
  json list = json::parse(r.body);
  for (const auto& e : list["edges"]) {
    if (e["name"] == name) return e;
  }
  return nullptr;
}

int64_t parseRfc3339(const std::string& s) {
  std::tm tm{};
  REQUIRE(strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  return static_cast<int64_t>(timegm(&tm));
}

json auditItems(HttpClient& c, const std::string& action) {
  auto r = admin(c, "GET", "/api/v1/audit?action=" + action);
  REQUIRE(r.status == 200);
  return json::parse(r.body)["items"];
}

}  // namespace

TEST_CASE("edges: only administrators create join tokens, with checked names and settings", "[edges][auth]") {
  CoreServer core = authCore();
  HttpClient c("127.0.0.1", core.port());
  auto r = admin(c, "POST", "/api/v1/users", {{"name", "dev"}, {"password", "dev-password-1"}});
  REQUIRE(r.status == 201);

  json body = {{"name", "site-a"}, {"site", "Site A"}, {"settings", {{"tag_ttl", "5m"}}}};
  r = call(c, "POST", "/api/v1/edges", {}, body);
  CHECK(r.status == 401);
  CHECK(errorCode(r) == "UNAUTHORIZED");
  r = call(c, "POST", "/api/v1/edges", {{"Authorization", basicAuthorization("dev", "dev-password-1")}}, body);
  CHECK(r.status == 403);
  CHECK(errorCode(r) == "DENIED");
  r = call(c, "GET", "/api/v1/edges", {{"Authorization", basicAuthorization("dev", "dev-password-1")}});
  CHECK(r.status == 403);
  r = call(c, "POST", "/api/v1/edges", {{"Authorization", basicAuthorization("admin", "wrong")}}, body);
  CHECK(r.status == 401);

  for (const char* bad : {"Site-A", "-a", "a_b", "register", "self", ""}) {
    INFO(bad);
    r = admin(c, "POST", "/api/v1/edges", {{"name", bad}, {"site", "x"}});
    CHECK(r.status == 400);
    CHECK(errorCode(r) == "NAME_INVALID");
  }
  r = admin(c, "POST", "/api/v1/edges", {{"name", std::string(64, 'a')}});
  CHECK(r.status == 400);

  int64_t before = static_cast<int64_t>(std::time(nullptr));
  r = admin(c, "POST", "/api/v1/edges", body);
  INFO(r.body);
  REQUIRE(r.status == 201);
  CHECK(r.header("cache-control") == "no-store");
  json created = json::parse(r.body);
  CHECK(created["name"] == "site-a");
  CHECK(created["site"] == "Site A");
  std::string token = created["join_token"];
  CHECK(token.rfind("wharf_join_", 0) == 0);
  CHECK(token.size() >= 11 + 43);
  int64_t expires = parseRfc3339(created["expires_at"]);
  CHECK(expires >= before + 24 * 3600 - 5);
  CHECK(expires <= static_cast<int64_t>(std::time(nullptr)) + 24 * 3600 + 5);

  r = admin(c, "POST", "/api/v1/edges", {{"name", "site-a"}, {"site", "again"}});
  CHECK(r.status == 409);
  CHECK(errorCode(r) == "CONFLICT");

  // Settings are checked on creation too; the message names the key.
  r = admin(c, "POST", "/api/v1/edges", {{"name", "site-b"}, {"settings", {{"colour", "blue"}}}});
  CHECK(r.status == 400);
  CHECK(errorMessage(r).find("colour") != std::string::npos);
  r = admin(c, "POST", "/api/v1/edges", {{"name", "site-b"}, {"settings", {{"high_watermark", "90"}}}});
  CHECK(r.status == 400);
  CHECK(errorMessage(r).find("high_watermark") != std::string::npos);
  r = admin(c, "POST", "/api/v1/edges", {{"name", "site-b"}, {"settings", "5m"}});
  CHECK(r.status == 400);
  r = admin(c, "POST", "/api/v1/edges", {{"name", "site-b"}, {"surprise", true}});
  CHECK(r.status == 400);
  CHECK(errorMessage(r).find("surprise") != std::string::npos);
  // ttl_seconds: 60 s to 30 days.
  for (json ttl : {json(59), json(30 * 86400 + 1), json("3600"), json(60.5)}) {
    INFO(ttl.dump());
    r = admin(c, "POST", "/api/v1/edges", {{"name", "site-b"}, {"ttl_seconds", ttl}});
    CHECK(r.status == 400);
  }
  CHECK(admin(c, "GET", "/api/v1/edges/site-b").status == 404);  // nothing was stored
  before = static_cast<int64_t>(std::time(nullptr));
  r = admin(c, "POST", "/api/v1/edges", {{"name", "site-b"}, {"ttl_seconds", 60}});
  REQUIRE(r.status == 201);
  expires = parseRfc3339(json::parse(r.body)["expires_at"]);
  CHECK(expires >= before + 60 - 2);
  CHECK(expires <= static_cast<int64_t>(std::time(nullptr)) + 60 + 2);

  // Listed as pending; GET one; 404 for unknown.
  json a = edgeNamed(c, "site-a");
  REQUIRE(a.is_object());
  CHECK(a["state"] == "pending");
  CHECK(a["site"] == "Site A");
  CHECK(a["registered_at"].is_null());
  CHECK(a["last_seen"].is_null());
  CHECK(a["settings"] == json({{"tag_ttl", "5m"}}));
  CHECK(a["created_at"].is_string());
  r = admin(c, "GET", "/api/v1/edges/site-a");
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body) == a);
  r = admin(c, "GET", "/api/v1/edges/nope");
  CHECK(r.status == 404);
  CHECK(errorCode(r) == "NOT_FOUND");

  // Audited with the actor; the secret is never written to the audit log or the log.
  json items = auditItems(c, "edge.add");
  REQUIRE(items.size() == 2);
  CHECK(items[0]["actor"] == "admin");
  CHECK(items[0]["object"] == "site-a");
  CHECK(items.dump().find(token.substr(11)) == std::string::npos);
  CHECK(core.log().find(token.substr(11)) == std::string::npos);
}

TEST_CASE("edges: a join token registers once; the credential reads /self until the edge is removed",
          "[edges][auth]") {
  CoreServer core = authCore();
  HttpClient c("127.0.0.1", core.port());
  std::string token = addEdge(c, "site-a", {{"site", "Site A"}, {"settings", {{"cache_budget", "10GiB"}}}});

  // Wrong tokens and malformed bodies.
  auto r = registerWith(c, "wharf_join_" + std::string(43, 'A'));
  CHECK(r.status == 401);
  CHECK(errorCode(r) == "UNAUTHORIZED");
  CHECK(errorMessage(r) == "join token unknown, used or expired");
  r = registerWith(c, token.substr(0, token.size() - 1));
  CHECK(r.status == 401);
  r = call(c, "POST", "/api/v1/edges/register", {}, json::object());
  CHECK(r.status == 400);
  r = c.request("POST", "/api/v1/edges/register", {}, "not json").value();
  CHECK(r.status == 400);
  r = call(c, "GET", "/api/v1/edges/register", {});
  CHECK(r.status == 405);
  CHECK(edgeNamed(c, "site-a")["state"] == "pending");

  r = registerWith(c, token);
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.header("cache-control") == "no-store");
  json reg = json::parse(r.body);
  CHECK(reg["name"] == "site-a");
  CHECK(reg["site"] == "Site A");
  std::string credential = reg["credential"];
  CHECK(credential.rfind("wharf_edge_", 0) == 0);
  CHECK(credential.size() >= 11 + 43);
  auto keys = c.request("GET", "/auth/keys");
  REQUIRE(keys.isOk());
  CHECK(reg["keys"] == json::parse(keys->body));
  CHECK(reg["keys"]["keys"].size() >= 1);
  CHECK(reg["realm"] == challengeRealm(c));
  CHECK(reg["realm"] == "http://" + core.address() + "/auth/token");
  CHECK(reg["service"] == "wharf");
  CHECK(reg["settings"] == json({{"cache_budget", "10g"}}));  // stored in the form the edge's parseSize reads

  // Single use.
  r = registerWith(c, token);
  CHECK(r.status == 401);
  CHECK(errorCode(r) == "UNAUTHORIZED");
  CHECK(errorMessage(r) == "join token unknown, used or expired");

  json listed = edgeNamed(c, "site-a");
  CHECK(listed["state"] == "registered");
  CHECK(listed["registered_at"].is_string());
  CHECK(listed["last_seen"].is_string());

  // /self with the credential.
  r = asEdge(c, credential);
  INFO(r.body);
  REQUIRE(r.status == 200);
  json self = json::parse(r.body);
  CHECK(self["name"] == "site-a");
  CHECK(self["site"] == "Site A");
  CHECK(self["realm"] == reg["realm"]);
  CHECK(self["service"] == "wharf");
  CHECK(self["keys"] == json::parse(keys->body));
  CHECK(self["settings"] == json({{"cache_budget", "10g"}}));
  CHECK_FALSE(self.contains("credential"));

  // Garbage, a join token, or nothing: 401 with the error body.
  for (const std::string& bad : {std::string("wharf_edge_garbage"), std::string("garbage"), token,
                                 credential.substr(0, credential.size() - 1)}) {
    r = asEdge(c, bad);
    CHECK(r.status == 401);
    CHECK(errorCode(r) == "UNAUTHORIZED");
  }
  r = call(c, "GET", "/api/v1/edges/self", {});
  CHECK(r.status == 401);
  CHECK(errorCode(r) == "UNAUTHORIZED");
  r = call(c, "GET", "/api/v1/edges/self", {{"Authorization", basicAuthorization("admin", kAdminPassword)}});
  CHECK(r.status == 401);  // /self is for edges

  // The credential grants nothing else.
  CHECK(call(c, "GET", "/api/v1/whoami", {{"Authorization", "Bearer " + credential}}).status == 401);
  CHECK(call(c, "GET", "/api/v1/edges", {{"Authorization", "Bearer " + credential}}).status == 401);
  CHECK(call(c, "GET", "/api/v1/whoami", {{"Authorization", basicAuthorization("site-a", credential)}}).status == 401);
  CHECK(call(c, "GET", "/v2/", {{"Authorization", "Bearer " + credential}}).status == 401);
  r = call(c, "GET", "/auth/token?service=wharf&scope=repository:admin/app:pull",
           {{"Authorization", basicAuthorization("site-a", credential)}});
  CHECK(r.status == 401);

  // Settings changes reach /self.
  json next = {{"tag_ttl", "60s"}, {"high_watermark", 95}, {"low_watermark", 85}};
  r = admin(c, "PATCH", "/api/v1/edges/site-a", {{"settings", next}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["settings"] == next);
  r = asEdge(c, credential);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["settings"] == next);

  // Removal revokes at once.
  r = admin(c, "DELETE", "/api/v1/edges/site-a");
  CHECK(r.status == 204);
  r = asEdge(c, credential);
  CHECK(r.status == 401);
  CHECK(errorCode(r) == "UNAUTHORIZED");
  CHECK(admin(c, "GET", "/api/v1/edges/site-a").status == 404);
  CHECK(admin(c, "DELETE", "/api/v1/edges/site-a").status == 404);
  CHECK(edgeNamed(c, "site-a").is_null());

  // A pending edge's join token dies with it too.
  std::string pending = addEdge(c, "site-p");
  CHECK(admin(c, "DELETE", "/api/v1/edges/site-p").status == 204);
  CHECK(registerWith(c, pending).status == 401);

  // Audit: register (as the edge), failed registrations, settings, remove (as admin).
  json items = auditItems(c, "edge.register");
  int successes = 0, failures = 0;
  for (const auto& e : items) {
    if (e["outcome"] == "success") {
      ++successes;
      CHECK(e["actor"] == "edge:site-a");
      CHECK(e["object"] == "site-a");
    } else {
      ++failures;
    }
  }
  CHECK(successes == 1);
  CHECK(failures >= 4);
  items = auditItems(c, "edge.settings");
  REQUIRE(items.size() == 1);
  CHECK(items[0]["actor"] == "admin");
  CHECK(items[0]["object"] == "site-a");
  items = auditItems(c, "edge.remove");
  REQUIRE(items.size() == 2);
  CHECK(items[0]["object"] == "site-a");
  CHECK(items[0]["actor"] == "admin");
  // Neither secret reaches the audit log or the core's log.
  std::string all = admin(c, "GET", "/api/v1/audit?limit=1000").body;
  CHECK(all.find(credential.substr(11)) == std::string::npos);
  CHECK(all.find(token.substr(11)) == std::string::npos);
  CHECK(core.log().find(credential.substr(11)) == std::string::npos);
  CHECK(core.log().find(token.substr(11)) == std::string::npos);
}

TEST_CASE("edges: PATCH replaces settings and checks them", "[edges][auth]") {
  CoreServer core = authCore();
  HttpClient c("127.0.0.1", core.port());
  addEdge(c, "site-a", {{"settings", {{"tag_ttl", "5m"}, {"cache_budget", "1g"}}}});
  auto r = admin(c, "POST", "/api/v1/users", {{"name", "dev"}, {"password", "dev-password-1"}});
  REQUIRE(r.status == 201);

  struct Bad {
    json settings;
    std::string key;
  };
  for (const auto& b : std::vector<Bad>{{{{"unknown_key", 1}}, "unknown_key"},
                                        {{{"tag_ttl", 60}}, "tag_ttl"},
                                        {{{"tag_ttl", "sometimes"}}, "tag_ttl"},
                                        {{{"cache_budget", "lots"}}, "cache_budget"},
                                        {{{"cache_budget", 10}}, "cache_budget"},
                                        {{{"high_watermark", 0}}, "high_watermark"},
                                        {{{"high_watermark", 101}}, "high_watermark"},
                                        {{{"low_watermark", "80"}}, "low_watermark"},
                                        {{{"high_watermark", 80}, {"low_watermark", 80}}, "low_watermark"},
                                        {{{"high_watermark", 80}}, "high_watermark"}}) {
    INFO(b.settings.dump());
    r = admin(c, "PATCH", "/api/v1/edges/site-a", {{"settings", b.settings}});
    CHECK(r.status == 400);
    CHECK(errorMessage(r).find(b.key) != std::string::npos);
  }
  CHECK(admin(c, "PATCH", "/api/v1/edges/site-a", {{"settings", "x"}}).status == 400);
  CHECK(admin(c, "PATCH", "/api/v1/edges/site-a", json::object()).status == 400);
  CHECK(admin(c, "PATCH", "/api/v1/edges/site-a", {{"site", "elsewhere"}}).status == 400);
  CHECK(admin(c, "PATCH", "/api/v1/edges/nope", {{"settings", json::object()}}).status == 404);
  r = call(c, "PATCH", "/api/v1/edges/site-a", {{"Authorization", basicAuthorization("dev", "dev-password-1")}},
           {{"settings", json::object()}});
  CHECK(r.status == 403);
  // Nothing changed by the refusals.
  CHECK(edgeNamed(c, "site-a")["settings"] == json({{"tag_ttl", "5m"}, {"cache_budget", "1g"}}));

  json good = {{"tag_ttl", "90s"}, {"cache_budget", "20GiB"}, {"high_watermark", 90}, {"low_watermark", 70}};
  r = admin(c, "PATCH", "/api/v1/edges/site-a", {{"settings", good}});
  REQUIRE(r.status == 200);
  json e = json::parse(r.body);
  good["cache_budget"] = "20g";  // canonical
  CHECK(e["settings"] == good);
  CHECK(e["name"] == "site-a");
  CHECK(e["state"] == "pending");
  // Replaced, not merged.
  r = admin(c, "PATCH", "/api/v1/edges/site-a", {{"settings", {{"cache_budget", "1536MiB"}}}});
  REQUIRE(r.status == 200);
  CHECK(edgeNamed(c, "site-a")["settings"] == json({{"cache_budget", "1536m"}}));
  r = admin(c, "PATCH", "/api/v1/edges/site-a", {{"settings", json::object()}});
  REQUIRE(r.status == 200);
  CHECK(edgeNamed(c, "site-a")["settings"] == json::object());
}

TEST_CASE("edges: survive a restart; an expired join token is refused", "[edges][auth]") {
  TempDir dir;
  std::string data = dir / "data";
  std::string credential, pending_token, expiring_token;
  {
    CoreServer core = authCore(data);
    HttpClient c("127.0.0.1", core.port());
    credential = registerEdge(c, addEdge(c, "site-a", {{"settings", {{"tag_ttl", "5m"}}}}));
    pending_token = addEdge(c, "site-b");
    expiring_token = addEdge(c, "site-c", {{"ttl_seconds", 60}});
    REQUIRE(core.terminate() == 0);
  }
  // The core has no clock to move: move site-c's deadline into the past in its store
  // while it is stopped (the same record the core wrote, re-created with the same token).
  {
    LmdbMetadataOptions o{};
    auto env = openMetadataEnv(data + "/meta.lmdb", o);
    REQUIRE(env.isOk());
    auto ids = openLmdbIdentityStore(*env);
    REQUIRE(ids.isOk());
    auto e = (*ids)->edge("site-c");
    REQUIRE(e.isOk());
    CHECK(e->join_hash == sha256Hex(expiring_token));  // stored hashed, never in the clear
    e->join_expires_ms = static_cast<int64_t>(std::time(nullptr)) * 1000 - 1000;
    REQUIRE((*ids)->deleteEdge("site-c").isOk());
    REQUIRE((*ids)->createEdge(*e).isOk());
  }
  CoreServer core = authCore(data, {"--public-url", "https://registry.example.com"});
  HttpClient c("127.0.0.1", core.port());
  auto r = asEdge(c, credential);
  INFO(r.body);
  REQUIRE(r.status == 200);
  json self = json::parse(r.body);
  CHECK(self["name"] == "site-a");
  CHECK(self["settings"] == json({{"tag_ttl", "5m"}}));
  // With public_url the realm is the configured one, as in the challenge.
  CHECK(self["realm"] == "https://registry.example.com/auth/token");
  CHECK(self["realm"] == challengeRealm(c));

  r = registerWith(c, expiring_token);
  CHECK(r.status == 401);
  CHECK(errorMessage(r) == "join token unknown, used or expired");
  CHECK(edgeNamed(c, "site-c")["state"] == "pending");
  r = registerWith(c, pending_token);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["realm"] == "https://registry.example.com/auth/token");

  auto list = json::parse(admin(c, "GET", "/api/v1/edges").body)["edges"];
  REQUIRE(list.size() == 3);
  CHECK(list[0]["name"] == "site-a");
  CHECK(list[0]["state"] == "registered");
  CHECK(list[1]["name"] == "site-b");
  CHECK(list[1]["state"] == "registered");
  CHECK(list[2]["name"] == "site-c");
  CHECK(list[2]["state"] == "pending");
}

TEST_CASE("edges: wharfctl edge add, ls, set and rm", "[edges][wharfctl]") {
  CoreServer core = authCore();
  HttpClient c("127.0.0.1", core.port());
  TempDir home;
  std::string cfg = home / "wharfctl.json";
  auto ctl = [&](const std::string& args) {
    return shell(wharfctlBinary() + " --config " + cfg + " " + args + " 2>&1");
  };
  auto r = ctl("edge --help");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("add --name N --site S") != std::string::npos);
  r = ctl("edge add --help");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("--ttl") != std::string::npos);
  CHECK(r.output.find("wharf-edge --core") != std::string::npos);
  CHECK(ctl("edge rm --help").output.find("stop working at once") != std::string::npos);
  CHECK(ctl("edge set --help").output.find("--unset KEY") != std::string::npos);
  CHECK(ctl("--help").output.find("edge add") != std::string::npos);

  r = shell("echo " + std::string(kAdminPassword) + " | " + wharfctlBinary() + " --config " + cfg + " login " +
            core.url() + " -u admin --password-stdin 2>&1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  r = ctl("edge add --name site-a --site 'Site A' --ttl 1h --tag-ttl 5m --data-dir /srv/edge");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto at = r.output.find("wharf_join_");
  REQUIRE(at != std::string::npos);
  std::string token = r.output.substr(at, r.output.find_first_of(" \n", at) - at);
  CHECK(r.output.find("wharf-edge --core " + core.url() + " --join-token " + token + " --data-dir /srv/edge") !=
        std::string::npos);
  json a = edgeNamed(c, "site-a");
  REQUIRE(a.is_object());
  CHECK(a["site"] == "Site A");
  CHECK(a["settings"] == json({{"tag_ttl", "5m"}}));

  r = ctl("--json edge add --name site-b --ttl 2h");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  int64_t expires = parseRfc3339(json::parse(r.output)["expires_at"]);
  CHECK(std::llabs(expires - (static_cast<int64_t>(std::time(nullptr)) + 7200)) < 60);

  r = ctl("edge ls");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("NAME") != std::string::npos);
  CHECK(r.output.find("STATE") != std::string::npos);
  CHECK(r.output.find("site-a") != std::string::npos);
  CHECK(r.output.find("registered") == std::string::npos);

  // The printed token is the real one.
  std::string credential = registerEdge(c, token);
  r = ctl("edge ls");
  CHECK(r.output.find("never") != std::string::npos);  // registered, no report yet
  r = ctl("--json edge ls");
  REQUIRE(r.exit_code == 0);
  auto edges = json::parse(r.output)["edges"];
  REQUIRE(edges.size() == 2);
  CHECK(edges[0]["state"] == "registered");
  CHECK(edges[1]["state"] == "pending");

  // set merges into the current settings; bad values are refused with the key named.
  r = ctl("edge set site-a --cache-budget 20GiB --high-watermark 90 --low-watermark 75");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(edgeNamed(c, "site-a")["settings"] ==
        json({{"tag_ttl", "5m"}, {"cache_budget", "20g"}, {"high_watermark", 90}, {"low_watermark", 75}}));
  r = ctl("edge set site-a --unset tag_ttl");
  CHECK(r.exit_code == 0);
  CHECK(edgeNamed(c, "site-a")["settings"] == json({{"cache_budget", "20g"}, {"high_watermark", 90}, {"low_watermark", 75}}));
  r = ctl("edge set site-a --high-watermark 101");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("high_watermark") != std::string::npos);
  r = ctl("edge add --name Bad_Name");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("400") != std::string::npos);
  r = ctl("edge add --name site-a");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("409") != std::string::npos);
  r = ctl("edge add --name site-z --ttl soon");
  CHECK(r.exit_code == 2);
  CHECK(edgeNamed(c, "site-z").is_null());
  CHECK(asEdge(c, credential).status == 200);

  r = ctl("edge rm site-a");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(asEdge(c, credential).status == 401);
  CHECK(ctl("edge rm site-a").exit_code != 0);
  CHECK(ctl("edge rm site-b").exit_code == 0);
  r = ctl("edge ls");
  CHECK(r.output.find("(none)") != std::string::npos);
}

}  // namespace edges_api_test
