// Access control end to end: Docker token auth with real clients, accounts,
// organizations, teams, grants, access tokens, audit, and the abuse cases.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace auth_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

const char* kAdminPassword = "admin-password-1";

std::string basic(const std::string& user, const std::string& pw) { return basicAuthorization(user, pw); }

struct AuthCore {
  AuthCore() : core(make()) {}
  static CoreServer make() {
    ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
    return CoreServer({}, {"--auth", "token"});
  }
  CoreServer core;
};

// Calls the admin API as user:pw.
HttpResponse api(HttpClient& c, const std::string& method, const std::string& path, const std::string& user,
                 const std::string& pw, const json& body = nullptr) {
  HeaderList h = {{"Authorization", basic(user, pw)}};
  std::string b;
  if (!body.is_null()) {
    h.push_back({"Content-Type", "application/json"});
    b = body.dump();
  }
  auto r = c.request(method, path, h, b);
  REQUIRE(r.isOk());
  return *r;
}

// A token for the scopes (space-separated) as user (empty: anonymous).
std::string token(HttpClient& c, const std::string& user, const std::string& pw, const std::string& scope) {
  HeaderList h;
  if (!user.empty()) h.push_back({"Authorization", basic(user, pw)});
  std::string q = "/auth/token?service=wharf";
  size_t start = 0;
  while (start < scope.size()) {
    size_t end = scope.find(' ', start);
    if (end == std::string::npos) end = scope.size();
    q += "&scope=" + scope.substr(start, end - start);
    start = end + 1;
  }
  auto r = c.request("GET", q, h);
  REQUIRE(r.isOk());
  INFO(r->body);
  REQUIRE(r->status == 200);
  return json::parse(r->body)["token"].get<std::string>();
}

json accessOf(const std::string& jwt) {
  auto p = jwt.find('.');
  auto q = jwt.find('.', p + 1);
  auto payload = base64UrlDecode(jwt.substr(p + 1, q - p - 1));
  REQUIRE(payload.isOk());
  return json::parse(*payload)["access"];
}

HttpResponse withToken(HttpClient& c, const std::string& method, const std::string& path, const std::string& tok,
                       const std::string& body = "", HeaderList extra = {}) {
  extra.push_back({"Authorization", "Bearer " + tok});
  auto r = c.request(method, path, extra, body);
  REQUIRE(r.isOk());
  return *r;
}

void createUser(HttpClient& c, const std::string& name, const std::string& pw) {
  auto r = api(c, "POST", "/api/v1/users", "admin", kAdminPassword, {{"name", name}, {"password", pw}});
  INFO(r.body);
  REQUIRE(r.status == 201);
}

CommandResult client(const std::string& cmd) { return containerClient(cmd); }

}  // namespace

TEST_CASE("the registry challenges, and the token endpoint grants the intersection", "[auth]") {
  AuthCore a;
  HttpClient c("127.0.0.1", a.core.port());
  auto r = c.request("GET", "/v2/");
  REQUIRE(r.isOk());
  CHECK(r->status == 401);
  CHECK(r->header("www-authenticate") ==
        "Bearer realm=\"http://" + a.core.address() + "/auth/token\",service=\"wharf\"");
  r = c.request("GET", "/v2/admin/app/manifests/v1");
  CHECK(r->status == 401);
  CHECK(r->header("www-authenticate").find("scope=\"repository:admin/app:pull\"") != std::string::npos);
  r = c.request("PUT", "/v2/admin/app/manifests/v1", {}, "{}");
  CHECK(r->header("www-authenticate").find("scope=\"repository:admin/app:pull,push\"") != std::string::npos);

  createUser(c, "alice", "alice-password");
  // alice asks for push on admin's repository and pull on her own: gets only her own.
  std::string t = token(c, "alice", "alice-password", "repository:admin/app:pull,push repository:alice/app:pull,push");
  json access = accessOf(t);
  REQUIRE(access.size() == 1);
  CHECK(access[0]["name"] == "alice/app");
  CHECK(access[0]["actions"] == json({"pull", "push"}));
  // The token works on /v2/ and for alice/app, not for admin/app.
  CHECK(withToken(c, "GET", "/v2/", t).status == 200);
  r = c.request("GET", "/v2/admin/app/tags/list", {{"Authorization", "Bearer " + t}});
  CHECK(r->status == 401);
  CHECK(r->header("www-authenticate").find("error=\"insufficient_scope\"") != std::string::npos);
  // Anonymous tokens carry nothing for private repositories.
  std::string anon = token(c, "", "", "repository:alice/app:pull");
  CHECK(accessOf(anon).empty());
  // Wrong password: 401 from the token endpoint.
  r = c.request("GET", "/auth/token?service=wharf&scope=repository:alice/app:pull",
                {{"Authorization", basic("alice", "wrong")}});
  CHECK(r->status == 401);
  // POST (OAuth2) password grant with a refresh token, then the refresh grant.
  r = c.request("POST", "/auth/token", {{"Content-Type", "application/x-www-form-urlencoded"}},
                "grant_type=password&username=alice&password=alice-password&service=wharf&access_type=offline"
                "&scope=repository%3Aalice%2Fapp%3Apull");
  REQUIRE(r->status == 200);
  json body = json::parse(r->body);
  REQUIRE(body.contains("refresh_token"));
  CHECK(body["expires_in"] == 300);
  r = c.request("POST", "/auth/token", {{"Content-Type", "application/x-www-form-urlencoded"}},
                "grant_type=refresh_token&service=wharf&scope=repository%3Aalice%2Fapp%3Apull&refresh_token=" +
                    body["refresh_token"].get<std::string>());
  REQUIRE(r->status == 200);
  CHECK(accessOf(json::parse(r->body)["access_token"])[0]["actions"] == json({"pull"}));
  // A refresh token is not an access token.
  CHECK(withToken(c, "GET", "/v2/", body["refresh_token"]).status == 401);
  // A new password ends the refresh tokens issued before it; a new sign-in gets one that works.
  auto refresh = [&](const std::string& rt) {
    return c.request("POST", "/auth/token", {{"Content-Type", "application/x-www-form-urlencoded"}},
                     "grant_type=refresh_token&service=wharf&refresh_token=" + rt)->status;
  };
  r = c.request("PATCH", "/api/v1/users/alice", {{"Authorization", basic("alice", "alice-password")}},
                R"({"password":"alice-new-password"})");
  REQUIRE(r->status == 200);
  CHECK(refresh(body["refresh_token"]) == 401);
  r = c.request("POST", "/auth/token", {{"Content-Type", "application/x-www-form-urlencoded"}},
                "grant_type=password&username=alice&password=alice-new-password&service=wharf&access_type=offline");
  REQUIRE(r->status == 200);
  CHECK(refresh(json::parse(r->body)["refresh_token"]) == 200);
  // The public keys are published.
  r = c.request("GET", "/auth/keys");
  REQUIRE(r->status == 200);
  CHECK(json::parse(r->body)["keys"][0]["kty"] == "EC");
}

TEST_CASE("skopeo, podman and buildah log in, push and pull; anonymous and wrong passwords fail", "[auth][clients]") {
  if (!haveCommand("skopeo") || !haveCommand("podman") || !haveCommand("buildah")) return;
  AuthCore a;
  HttpClient c("127.0.0.1", a.core.port());
  createUser(c, "bob", "bob-password");
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1", {ImageSpec{"amd64", {{{"f", "auth"}}}}});
  std::string reg = a.core.address();
  std::string authfile = " --authfile " + work / "auth.json";
  // Anonymous push is refused.
  auto r = client("skopeo copy --dest-tls-verify=false oci:" + work / "src" + ":v1 docker://" + reg + "/bob/app:v1");
  CHECK(r.exit_code != 0);
  CHECK((r.output.find("unauthorized") != std::string::npos || r.output.find("denied") != std::string::npos));
  // Wrong password: login fails.
  r = client("skopeo login --tls-verify=false" + authfile + " -u bob -p nope " + reg);
  CHECK(r.exit_code != 0);
  // skopeo login, push, pull.
  r = client("skopeo login --tls-verify=false" + authfile + " -u bob -p bob-password " + reg + " && skopeo copy" +
             authfile + " --dest-tls-verify=false oci:" + work / "src" + ":v1 docker://" + reg + "/bob/app:v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // podman login and pull into a throwaway store.
  std::string podman = "podman --root " + work / "proot" + " --runroot " + work / "prun" +
                       " --storage-driver vfs --events-backend file --cgroup-manager cgroupfs";
  r = client(podman + " login --tls-verify=false" + authfile + " -u bob -p bob-password " + reg + " && " + podman +
             " pull" + authfile + " --tls-verify=false " + reg + "/bob/app:v1");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  // buildah login and push a second tag.
  std::string buildah = "buildah --root " + work / "broot" + " --runroot " + work / "brun" + " --storage-driver vfs";
  r = client(buildah + " login --tls-verify=false" + authfile + " -u bob -p bob-password " + reg + " && " + buildah +
             " pull" + authfile + " --tls-verify=false " + reg + "/bob/app:v1 >/dev/null && " + buildah + " push" +
             authfile + " --tls-verify=false " + reg + "/bob/app:v1 docker://" + reg + "/bob/app:v2");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  // Someone else's namespace: alice may not push into bob's.
  createUser(c, "alice", "alice-password");
  r = client("skopeo copy --dest-tls-verify=false --dest-creds alice:alice-password oci:" + work / "src" +
             ":v1 docker://" + reg + "/bob/evil:v1");
  CHECK(r.exit_code != 0);
  // A personal access token works as the password, and stops when revoked.
  auto t = api(c, "POST", "/api/v1/users/bob/tokens", "bob", "bob-password", {{"name", "ci"}});
  REQUIRE(t.status == 201);
  std::string pat = json::parse(t.body)["secret"];
  r = client("skopeo inspect --tls-verify=false --creds bob:" + pat + " docker://" + reg + "/bob/app:v1");
  CHECK(r.exit_code == 0);
  CHECK(api(c, "DELETE", "/api/v1/users/bob/tokens/" + json::parse(t.body)["id"].get<std::string>(), "bob",
            "bob-password").status == 204);
  r = client("skopeo inspect --tls-verify=false --creds bob:" + pat + " docker://" + reg + "/bob/app:v1");
  CHECK(r.exit_code != 0);
}

TEST_CASE("abuse: scope reuse, pull-to-push, path tricks, upload hijack, catalog, self-promotion", "[auth]") {
  AuthCore a;
  HttpClient c("127.0.0.1", a.core.port());
  createUser(c, "alice", "alice-password");
  createUser(c, "mallory", "mallory-password");
  // alice pushes a blob to alice/a.
  std::string tok = token(c, "alice", "alice-password", "repository:alice/a:pull,push");
  std::string data = "secret layer";
  std::string d = digestOf(data).str();
  CHECK(withToken(c, "POST", "/v2/alice/a/blobs/uploads/?digest=" + d, tok, data).status == 201);

  // A token for repository A used on B.
  CHECK(withToken(c, "GET", "/v2/alice/b/blobs/" + d, tok).status == 401);
  // A pull token used to push.
  std::string pull = token(c, "alice", "alice-password", "repository:alice/a:pull");
  CHECK(withToken(c, "GET", "/v2/alice/a/blobs/" + d, pull).status == 200);
  CHECK(withToken(c, "POST", "/v2/alice/a/blobs/uploads/", pull).status == 401);
  CHECK(withToken(c, "DELETE", "/v2/alice/a/blobs/" + d, pull).status == 401);
  // A tampered token (payload changed) fails.
  std::string bad = tok;
  bad[bad.find('.') + 5] = bad[bad.find('.') + 5] == 'A' ? 'B' : 'A';
  CHECK(withToken(c, "GET", "/v2/alice/a/blobs/" + d, bad).status == 401);
  // "alg: none".
  std::string none = base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." + tok.substr(tok.find('.') + 1);
  none = none.substr(0, none.rfind('.') + 1);
  CHECK(withToken(c, "GET", "/v2/alice/a/blobs/" + d, none).status == 401);

  // mallory: no access to alice's repository, whatever the path spelling.
  std::string mt = token(c, "mallory", "mallory-password", "repository:mallory/x:pull,push registry:catalog:*");
  for (const char* path : {"/v2/alice/a/blobs/", "/v2/alice%2Fa/blobs/", "/v2/mallory/../alice/a/blobs/",
                           "/v2/alice//a/blobs/", "/v2/mallory/x/../../alice/a/blobs/"}) {
    auto r = withToken(c, "GET", std::string(path) + d, mt);
    INFO(path);
    CHECK(r.status != 200);
    CHECK(r.body.find(data) == std::string::npos);
  }
  for (const char* path : {"/v2/_catalog/", "/v2/_catalog/../_catalog", "/v2/%5fcatalog"}) {
    auto r = withToken(c, "GET", path, mt);
    INFO(path);
    CHECK(r.body.find("alice") == std::string::npos);
  }
  // The catalog lists only what the caller may see.
  auto cat = withToken(c, "GET", "/v2/_catalog", mt);
  CHECK(cat.status == 200);
  CHECK(json::parse(cat.body)["repositories"].empty());
  std::string at = token(c, "alice", "alice-password", "registry:catalog:*");
  CHECK(json::parse(withToken(c, "GET", "/v2/_catalog", at).body)["repositories"] == json({"alice/a"}));

  // An upload session continues only for its repository and account: alice grants
  // mallory write on alice/a, but mallory cannot touch alice's session.
  auto g = api(c, "PUT", "/api/v1/repositories/alice/a/permissions/users/mallory", "alice", "alice-password",
               {{"role", "write"}});
  REQUIRE(g.status == 200);
  auto start = withToken(c, "POST", "/v2/alice/a/blobs/uploads/", tok);
  REQUIRE(start.status == 202);
  std::string loc = start.header("location");
  std::string mw = token(c, "mallory", "mallory-password", "repository:alice/a:pull,push");
  CHECK(withToken(c, "PATCH", loc, mw, "injected").status == 404);
  CHECK(withToken(c, "GET", loc, mw).status == 404);
  CHECK(withToken(c, "PATCH", loc, tok, "mine").status == 202);

  // Self-promotion is refused; changing one's own email is fine.
  auto r = api(c, "PATCH", "/api/v1/users/mallory", "mallory", "mallory-password", {{"admin", true}});
  CHECK(r.status == 403);
  r = api(c, "PATCH", "/api/v1/users/mallory", "mallory", "mallory-password", {{"email", "m@example.com"}});
  CHECK(r.status == 200);
  r = api(c, "PATCH", "/api/v1/users/alice", "mallory", "mallory-password", {{"email", "x@example.com"}});
  CHECK(r.status == 403);
  r = api(c, "PATCH", "/api/v1/users/mallory", "mallory", "mallory-password", {{"password_hash", "x"}});
  CHECK(r.status == 400);

  // Disabling a user stops their tokens.
  CHECK(withToken(c, "GET", "/v2/alice/a/blobs/" + d, pull).status == 200);
  CHECK(api(c, "PATCH", "/api/v1/users/alice", "admin", kAdminPassword, {{"disabled", true}}).status == 200);
  CHECK(withToken(c, "GET", "/v2/alice/a/blobs/" + d, pull).status == 401);
  CHECK(c.request("GET", "/auth/token?service=wharf", {{"Authorization", basic("alice", "alice-password")}})->status ==
        401);
}

TEST_CASE("organizations, teams, public repositories, rate limits and the audit log", "[auth]") {
  AuthCore a;
  HttpClient c("127.0.0.1", a.core.port());
  createUser(c, "olivia", "olivia-password");
  createUser(c, "dev", "dev-password");
  createUser(c, "outsider", "outsider-password");
  CHECK(api(c, "POST", "/api/v1/orgs", "olivia", "olivia-password", {{"name", "acme"}}).status == 201);
  CHECK(api(c, "POST", "/api/v1/orgs", "dev", "dev-password", {{"name", "olivia"}}).status == 409);  // a user's name
  CHECK(api(c, "POST", "/api/v1/orgs/acme/teams", "olivia", "olivia-password", {{"name", "builders"}}).status == 201);
  CHECK(api(c, "POST", "/api/v1/orgs/acme/teams", "dev", "dev-password", {{"name", "x"}}).status == 404);
  CHECK(api(c, "PUT", "/api/v1/orgs/acme/teams/builders/members/dev", "olivia", "olivia-password").status == 200);
  CHECK(api(c, "POST", "/api/v1/repositories", "olivia", "olivia-password", {{"name", "acme/api"}}).status == 201);
  CHECK(api(c, "POST", "/api/v1/repositories", "dev", "dev-password", {{"name", "acme/other"}}).status == 403);
  // The team has no access until granted.
  CHECK(accessOf(token(c, "dev", "dev-password", "repository:acme/api:pull,push")).empty());
  CHECK(api(c, "PUT", "/api/v1/repositories/acme/api/permissions/teams/builders", "olivia", "olivia-password",
            {{"role", "write"}}).status == 200);
  CHECK(accessOf(token(c, "dev", "dev-password", "repository:acme/api:pull,push,delete"))[0]["actions"] ==
        json({"pull", "push"}));
  CHECK(accessOf(token(c, "outsider", "outsider-password", "repository:acme/api:pull")).empty());
  // Public: anonymous pull, never push.
  CHECK(api(c, "PATCH", "/api/v1/repositories/acme/api", "dev", "dev-password", {{"public", true}}).status == 403);
  CHECK(api(c, "PATCH", "/api/v1/repositories/acme/api", "olivia", "olivia-password", {{"public", true}}).status == 200);
  CHECK(accessOf(token(c, "", "", "repository:acme/api:pull,push"))[0]["actions"] == json({"pull"}));
  // Unknown fields are refused.
  CHECK(api(c, "PATCH", "/api/v1/repositories/acme/api", "olivia", "olivia-password", {{"owner", "x"}}).status == 400);

  // Failed logins are limited per account: the right password is refused once limited.
  for (int i = 0; i < 10; ++i) {
    CHECK(c.request("GET", "/auth/token?service=wharf", {{"Authorization", basic("outsider", "bad")}})->status == 401);
  }
  auto limited = c.request("GET", "/auth/token?service=wharf", {{"Authorization", basic("outsider", "outsider-password")}});
  CHECK(limited->status == 429);
  CHECK(limited->body.find("TOOMANYREQUESTS") != std::string::npos);
  auto metrics = c.request("GET", "/metrics");
  REQUIRE(metrics.isOk());
  CHECK(metrics->body.find("wharf_auth_logins_total{method=\"password\",outcome=\"failure\"} 10") != std::string::npos);
  CHECK(metrics->body.find("wharf_auth_logins_total{method=\"any\",outcome=\"rate_limited\"} 1") != std::string::npos);

  // The audit log: logins (good and bad), token issues, changes; admins only.
  CHECK(api(c, "GET", "/api/v1/audit", "olivia", "olivia-password").status == 403);
  auto r = api(c, "GET", "/api/v1/audit?actor=outsider&action=login&outcome=failure", "admin", kAdminPassword);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["items"].size() >= 10);
  r = api(c, "GET", "/api/v1/audit?action=permission.set", "admin", kAdminPassword);
  auto items = json::parse(r.body)["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["actor"] == "olivia");
  CHECK(items[0]["object"] == "acme/api");
  CHECK(items[0]["source"] == "127.0.0.1");
  r = api(c, "GET", "/api/v1/audit?limit=2", "admin", kAdminPassword);
  auto page1 = json::parse(r.body);
  REQUIRE(page1["items"].size() == 2);
  r = api(c, "GET", "/api/v1/audit?limit=2&after=" + std::to_string(page1["next"].get<int64_t>()), "admin", kAdminPassword);
  CHECK(json::parse(r.body)["items"][0]["seq"].get<int64_t>() > page1["items"][1]["seq"].get<int64_t>());
  // No secret in the log.
  CHECK(a.core.log().find("outsider-password") == std::string::npos);
  CHECK(a.core.log().find(kAdminPassword) == std::string::npos);
}

}  // namespace auth_test
