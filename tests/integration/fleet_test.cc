// The edge fleet run from the core: commands down each edge's channel (exactly once,
// across restarts of either side), drain and resume, purge and pin, and the edges'
// reports of what they served.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <csignal>

#include "edge/link/site_peers.h"
#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/support/edge_server.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace fleet_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

constexpr const char* kPassword = "fleet-admin-password";

class Admin {
 public:
  explicit Admin(int port) : c_("127.0.0.1", port) {}
  HttpResponse call(const std::string& method, const std::string& path, const json& body = nullptr) {
    HeaderList h = {{"Authorization", basicAuthorization("admin", kPassword)}};
    if (!body.is_null()) h.push_back({"Content-Type", "application/json"});
    auto r = c_.request(method, path, h, body.is_null() ? "" : body.dump());
    if (!r.isOk()) throw std::runtime_error(method + " " + path + ": " + r.status().message());
    return *r;
  }
  // Queues a command; returns its id.
  uint64_t command(const std::string& edge, const std::string& kind, const json& args = json::object()) {
    auto r = call("POST", "/api/v1/edges/" + edge + "/commands", {{"kind", kind}, {"args", args}});
    INFO(r.body);
    REQUIRE(r.status == 202);
    return json::parse(r.body)["id"].get<uint64_t>();
  }
  json commandState(const std::string& edge, uint64_t id) {
    auto r = call("GET", "/api/v1/edges/" + edge + "/commands/" + std::to_string(id));
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
  // Waits until the command has an outcome; returns it.
  json awaitCommand(const std::string& edge, uint64_t id, int deadline_ms = 20000) {
    json c;
    bool done = waitFor(
        [&] {
          c = commandState(edge, id);
          return c["state"] == "succeeded" || c["state"] == "failed";
        },
        deadline_ms);
    INFO(c.dump());
    REQUIRE(done);
    return c;
  }

 private:
  HttpClient c_;
};

EdgeServer::Options edgeOptions(std::vector<std::string> extra = {}, std::string site = "test site") {
  EdgeServer::Options o;
  o.extra = std::move(extra);
  o.admin_password = kPassword;
  o.site = std::move(site);
  return o;
}

}  // namespace

TEST_CASE("fleet: commands reach an edge exactly once, across edge and core restarts", "[fleet]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kPassword, 1);
  TempDir dir;
  auto core = std::make_unique<CoreServer>(dir / "core", std::vector<std::string>{"--auth", "token"});
  EdgeServer edge(*core, edgeOptions());
  Admin admin(core->port());
  std::string d = pushBlob(core->port(), kPassword, "admin/app", randomData(50000, 1));
  std::string pull = registryToken(core->port(), "admin", kPassword, "repository:admin/app:pull");
  HeaderList auth = {{"Authorization", "Bearer " + pull}};
  HttpClient e("127.0.0.1", edge.port());
  REQUIRE(e.request("GET", "/v2/admin/app/blobs/" + d, auth)->status == 200);

  // Delivered at once over the waiting channel, with its outcome recorded.
  uint64_t inv = admin.command(edge.name(), "inventory", {{"top", 5}});
  json done = admin.awaitCommand(edge.name(), inv, 5000);
  CHECK(done["state"] == "succeeded");
  CHECK(done["deliveries"] == 1);
  CHECK(done["result"]["blobs"] == 1);
  REQUIRE(done["result"]["top_repositories"].size() == 1);
  CHECK(done["result"]["top_repositories"][0]["name"] == "admin/app");
  CHECK(done["result"]["top_repositories"][0]["bytes"] == 50000);

  // Queued while the edge is away; delivered when it is back, once.
  edge.process().signal(SIGTERM);
  REQUIRE(edge.process().wait() == 0);
  uint64_t drain = admin.command(edge.name(), "drain", {{"retry_after", 7}});
  // Not done while the edge is away ("delivered" when the edge's last poll, its
  // connection already closed, was still waiting at the core and took it).
  std::string away_state = admin.commandState(edge.name(), drain)["state"];
  CHECK((away_state == "queued" || away_state == "delivered"));
  REQUIRE(edge.start({}));
  done = admin.awaitCommand(edge.name(), drain);
  CHECK(done["state"] == "succeeded");
  HttpClient e2("127.0.0.1", edge.port());
  auto drained = e2.request("GET", "/v2/admin/app/blobs/" + d, auth);
  CHECK(drained->status == 503);
  CHECK(drained->header("retry-after") == "7");
  CHECK(e2.request("GET", "/healthz")->status == 503);

  // The drain survives an edge restart; the core restarting (same port) loses nothing
  // queued, and the edge reconnects by itself.
  edge.process().signal(SIGTERM);
  REQUIRE(edge.process().wait() == 0);
  REQUIRE(edge.start({}));
  HttpClient e3("127.0.0.1", edge.port());
  CHECK(e3.request("GET", "/v2/admin/app/blobs/" + d, auth)->status == 503);
  int port = core->port();
  REQUIRE(core->terminate() == 0);
  core.reset();
  core = std::make_unique<CoreServer>(dir / "core",
                                      std::vector<std::string>{"--auth", "token", "--listen", "127.0.0.1:" + std::to_string(port)});
  REQUIRE(core->port() == port);
  Admin admin2(core->port());
  uint64_t resume = admin2.command(edge.name(), "resume");
  done = admin2.awaitCommand(edge.name(), resume, 90000);  // the edge's backoff after the outage
  CHECK(done["state"] == "succeeded");
  CHECK(e3.request("GET", "/v2/admin/app/blobs/" + d, auth)->status == 200);

  // Each command ran once on the edge, across every restart.
  std::string log = edge.log();
  for (uint64_t id : {inv, drain, resume}) {
    INFO("command " << id);
    CHECK(countLogLines(log, {"\"msg\":\"edge command\"", "\"id\":" + std::to_string(id) + ","}) == 1);
  }
  // The list, newest first, for review.
  auto listed = admin2.call("GET", "/api/v1/edges/" + edge.name() + "/commands");
  REQUIRE(listed.status == 200);
  auto cmds = json::parse(listed.body)["commands"];
  REQUIRE(cmds.size() == 3);
  CHECK(cmds[0]["id"] == resume);
  CHECK(cmds[2]["kind"] == "inventory");
  CHECK(cmds[2]["actor"] == "admin");
}

TEST_CASE("fleet: purge and pin from the core; bad commands are refused", "[fleet]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core, edgeOptions({"--cache-budget", "300k", "--high-watermark", "90", "--low-watermark", "50"},
                                    "berlin"));
  EdgeServer other(core, edgeOptions({}, "berlin"));
  Admin admin(core.port());
  std::string creds = std::string("admin:") + kPassword;

  // An image pulled through the edge with skopeo.
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1", {ImageSpec{"amd64", {{{"f", randomData(100000, 3)}}}}});
  auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:" + work / "src" + ":v1",
                "docker://" + core.address() + "/admin/pinned:v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = run({"skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds,
           "docker://" + edge.address() + "/admin/pinned:v1", "oci:" + work / "back" + ":v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  // Pinned: it stays while other content pushes the cache over its budget.
  uint64_t pin = admin.command(edge.name(), "pin", {{"repository", "admin/pinned"}, {"reference", "v1"}});
  json done = admin.awaitCommand(edge.name(), pin);
  INFO(done.dump());
  REQUIRE(done["state"] == "succeeded");
  CHECK(done["result"]["bytes"].get<uint64_t>() >= 100000);  // held whole: pinned at once
  std::string pull_all = registryToken(core.port(), "admin", kPassword, "repository:admin/filler:pull");
  HttpClient e("127.0.0.1", edge.port());
  for (int i = 0; i < 4; ++i) {
    std::string d = pushBlob(core.port(), kPassword, "admin/filler", randomData(90000, 100 + i));
    REQUIRE(e.request("GET", "/v2/admin/filler/blobs/" + d, {{"Authorization", "Bearer " + pull_all}})->status == 200);
  }
  uint64_t inv = admin.command(edge.name(), "inventory");
  json inventory = admin.awaitCommand(edge.name(), inv)["result"];
  INFO(inventory.dump());
  CHECK(inventory["pins"].contains("admin/pinned:v1"));
  CHECK(inventory["used"].get<uint64_t>() <= 300u << 10);
  bool layer_kept = false;
  for (const auto& repo : inventory["top_repositories"]) {
    if (repo["name"] == "admin/pinned") layer_kept = repo["bytes"].get<uint64_t>() >= 100000;
  }
  CHECK(layer_kept);

  // Purged: the repository's content is gone from the edge (the next pull asks the core).
  uint64_t purge = admin.command(edge.name(), "purge", {{"repository", "admin/pinned"}});
  done = admin.awaitCommand(edge.name(), purge);
  REQUIRE(done["state"] == "succeeded");
  CHECK(done["result"]["blobs"].get<int>() >= 2);
  CHECK(done["result"]["tags"] == 1);

  // The same from wharfctl: a command to a site, waited for, and the edge's command list.
  std::string cfg = work / "wharfctl.json";
  auto ctl = [&](const std::string& args) { return shell(wharfctlBinary() + " --config " + cfg + " " + args + " 2>&1"); };
  REQUIRE(shell("echo " + std::string(kPassword) + " | " + wharfctlBinary() + " --config " + cfg + " login " +
                core.url() + " -u admin --password-stdin 2>&1")
              .exit_code == 0);
  auto out = ctl("edge drain --site berlin --retry-after 30 --wait");
  INFO(out.output);
  CHECK(out.exit_code == 0);
  CHECK(countLogLines(out.output, {"drain", "succeeded"}) == 2);
  HttpClient drained("127.0.0.1", other.port());
  CHECK(drained.request("GET", "/v2/admin/filler/blobs/sha256:" + std::string(64, 'a'))->header("retry-after") == "30");
  out = ctl("edge resume --site berlin --wait");
  CHECK(out.exit_code == 0);
  out = ctl("edge pin " + edge.name() + " --repo admin/never --ref v9 --wait");
  CHECK(out.exit_code == 1);  // not here, and the core has no such image: the outcome says so
  CHECK(out.output.find("is not in admin/never") != std::string::npos);
  out = ctl("edge cmd ls " + edge.name());
  INFO(out.output);
  CHECK(out.output.find("resume") != std::string::npos);
  CHECK(out.output.find("inventory") != std::string::npos);
  // Settings for a whole site: each edge keeps its other settings.
  out = ctl("edge set --site berlin --repositories 'admin/*,team/app' --prefetch '{\"recent_days\":3,\"rate\":\"1m\"}'");
  INFO(out.output);
  CHECK(out.exit_code == 0);
  for (const auto* e : {&edge, &other}) {
    json settings = json::parse(admin.call("GET", "/api/v1/edges/" + e->name()).body)["settings"];
    CHECK(settings["repositories"] == json({"admin/*", "team/app"}));
    CHECK(settings["prefetch"]["recent_days"] == 3);
  }
  CHECK(ctl("edge set --site berlin --prefetch '{\"window\":\"later\"}'").exit_code != 0);
  CHECK(ctl("edge set --site nowhere --tag-ttl 5m").exit_code == 1);

  // A site command goes to every edge of the site.
  auto site = admin.call("POST", "/api/v1/sites/berlin/commands", {{"kind", "inventory"}});
  INFO(site.body);
  REQUIRE(site.status == 202);
  auto queued = json::parse(site.body)["commands"];
  REQUIRE(queued.size() == 2);
  for (const auto& c : queued) CHECK(admin.awaitCommand(c["edge"], c["id"])["state"] == "succeeded");
  CHECK(admin.call("POST", "/api/v1/sites/nowhere/commands", {{"kind", "inventory"}}).status == 404);

  // Bad commands: a clear 400, nothing queued.
  for (const json& bad : {json{{"kind", "explode"}},
                          json{{"kind", "purge"}, {"args", {{"repository", "../etc"}}}},
                          json{{"kind", "pin"}, {"args", {{"repository", "admin/x"}}}},
                          json{{"kind", "drain"}, {"args", {{"retry_after", 0}}}},
                          json{{"kind", "purge"}, {"args", {{"digest", "sha256:xyz"}}}},
                          json{{"kind", "inventory"}, {"args", {{"top", 5}, {"extra", 1}}}}}) {
    auto refused = admin.call("POST", "/api/v1/edges/" + edge.name() + "/commands", bad);
    INFO(bad.dump() << " -> " << refused.body);
    CHECK(refused.status == 400);
  }
  CHECK(admin.call("POST", "/api/v1/edges/nope/commands", {{"kind", "inventory"}}).status == 404);
  // Only administrators, and an edge only hears its own commands.
  HttpClient anon("127.0.0.1", core.port());
  CHECK(anon.request("GET", "/api/v1/edges/" + edge.name() + "/commands")->status == 401);
  CHECK(anon.request("GET", "/api/v1/edges/self/channel?wait=0")->status == 401);
  CHECK(anon.request("GET", "/api/v1/edges/self/channel?wait=0", {{"Authorization", "Bearer wharf_edge_forged"}})
            ->status == 401);
}

TEST_CASE("fleet: a delete at the core stops every edge serving it within seconds", "[fleet]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer a(core, edgeOptions());
  EdgeServer b(core, edgeOptions());
  std::string creds = std::string("admin:") + kPassword;
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1", {ImageSpec{"amd64", {{{"f", randomData(60000, 5)}}}}});
  auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:" + work / "src" + ":v1",
                "docker://" + core.address() + "/admin/gone:v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::string blob = pushBlob(core.port(), kPassword, "admin/leak", randomData(70000, 6));
  std::string pull = registryToken(core.port(), "admin", kPassword, "repository:admin/gone:pull");
  std::string pull_leak = registryToken(core.port(), "admin", kPassword, "repository:admin/leak:pull");
  std::string del = registryToken(core.port(), "admin", kPassword, "repository:admin/gone:delete");
  std::string del_leak = registryToken(core.port(), "admin", kPassword, "repository:admin/leak:delete");

  // Both edges cache the image (by tag and digest) and the blob.
  for (EdgeServer* edge : {&a, &b}) {
    HttpClient e("127.0.0.1", edge->port());
    HeaderList h = {{"Authorization", "Bearer " + pull}, {"Accept", "application/vnd.oci.image.manifest.v1+json"}};
    REQUIRE(e.request("GET", "/v2/admin/gone/manifests/v1", h)->status == 200);
    for (const auto& d : layout.blobs) REQUIRE(e.request("GET", "/v2/admin/gone/blobs/" + d, h)->status == 200);
    REQUIRE(e.request("GET", "/v2/admin/leak/blobs/" + blob, {{"Authorization", "Bearer " + pull_leak}})->status == 200);
  }

  // Deleted at the core: every edge refuses within seconds, with the core still up.
  HttpClient c("127.0.0.1", core.port());
  REQUIRE(c.request("DELETE", "/v2/admin/leak/blobs/" + blob, {{"Authorization", "Bearer " + del_leak}})->status == 202);
  REQUIRE(c.request("DELETE", "/v2/admin/gone/manifests/" + layout.digest, {{"Authorization", "Bearer " + del}})
              ->status == 202);
  for (EdgeServer* edge : {&a, &b}) {
    INFO(edge->name());
    HttpClient e("127.0.0.1", edge->port());
    HeaderList h = {{"Authorization", "Bearer " + pull}, {"Accept", "application/vnd.oci.image.manifest.v1+json"}};
    bool blob_refused = waitFor([&] {
      return e.request("GET", "/v2/admin/leak/blobs/" + blob, {{"Authorization", "Bearer " + pull_leak}})->status == 404;
    }, 5000);
    CHECK(blob_refused);
    bool manifest_refused = waitFor([&] {
      return e.request("GET", "/v2/admin/gone/manifests/" + layout.digest, h)->status == 404 &&
             e.request("GET", "/v2/admin/gone/manifests/v1", h)->status == 404;
    }, 5000);
    CHECK(manifest_refused);
  }
  // Content the garbage collector removes goes from the edges too.
  std::string loose = pushBlob(core.port(), kPassword, "admin/loose", randomData(20000, 7));
  std::string pull_loose = registryToken(core.port(), "admin", kPassword, "repository:admin/loose:pull");
  HttpClient ea("127.0.0.1", a.port());
  REQUIRE(ea.request("GET", "/v2/admin/loose/blobs/" + loose, {{"Authorization", "Bearer " + pull_loose}})->status == 200);
  Admin gc_admin(core.port());
  auto job = gc_admin.call("POST", "/api/v1/jobs", {{"kind", "gc"}, {"params", {{"grace", "0s"}}}});
  INFO(job.body);
  REQUIRE(job.status == 202);
  std::string job_id = json::parse(job.body)["id"];
  CHECK(waitFor([&] {
    return json::parse(gc_admin.call("GET", "/api/v1/jobs/" + job_id).body)["state"] == "succeeded";
  }, 20000));
  CHECK(waitFor([&] {
    return ea.request("GET", "/v2/admin/loose/blobs/" + loose, {{"Authorization", "Bearer " + pull_loose}})->status ==
           404;
  }, 15000));  // the event, the invalidator, the channel and the edge: seconds, more on a loaded machine

  // The purges are there for review, from the system.
  Admin admin(core.port());
  auto listed = json::parse(admin.call("GET", "/api/v1/edges/" + a.name() + "/commands").body)["commands"];
  REQUIRE(listed.size() >= 2);
  CHECK(listed[0]["actor"] == "system");
  CHECK(listed[0]["kind"] == "purge");
}

TEST_CASE("fleet: narrowed access revokes issued tokens at the core and at every edge", "[fleet]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core, edgeOptions());
  Admin admin(core.port());
  for (const char* user : {"solo", "dev", "dis", "ci"}) {
    REQUIRE(admin.call("POST", "/api/v1/users", {{"name", user}, {"password", std::string(user) + "-password"}}).status ==
            201);
  }
  REQUIRE(admin.call("POST", "/api/v1/orgs", {{"name", "acme"}}).status == 201);
  REQUIRE(admin.call("POST", "/api/v1/orgs/acme/teams", {{"name", "builders"}}).status == 201);
  REQUIRE(admin.call("PUT", "/api/v1/orgs/acme/teams/builders/members/dev").status == 200);
  for (const char* repo : {"acme/app", "acme/pub"}) {
    REQUIRE(admin.call("POST", "/api/v1/repositories", {{"name", repo}}).status == 201);
  }
  REQUIRE(admin.call("PUT", "/api/v1/repositories/acme/app/permissions/teams/builders", {{"role", "read"}}).status == 200);
  for (const char* user : {"solo", "dis", "ci"}) {
    REQUIRE(admin.call("PUT", std::string("/api/v1/repositories/acme/app/permissions/users/") + user, {{"role", "read"}})
                .status == 200);
  }
  REQUIRE(admin.call("PATCH", "/api/v1/repositories/acme/pub", {{"public", true}}).status == 200);
  std::string app = pushBlob(core.port(), kPassword, "acme/app", randomData(30000, 11));
  std::string pub = pushBlob(core.port(), kPassword, "acme/pub", randomData(30000, 12));
  HttpClient c("127.0.0.1", core.port());
  HttpClient e("127.0.0.1", edge.port());
  auto get = [&](HttpClient& client, const std::string& token, const std::string& repo, const std::string& d) {
    return client.request("GET", "/v2/" + repo + "/blobs/" + d, {{"Authorization", "Bearer " + token}})->status;
  };
  // Served by both (so the edge has it cached) before the change; refused by the core at
  // once after it, and by the edge within seconds (one channel round trip).
  auto check = [&](const std::string& what, const std::string& token, const std::string& repo, const std::string& d,
                   const std::function<void()>& change) {
    INFO(what);
    REQUIRE(get(c, token, repo, d) == 200);
    REQUIRE(get(e, token, repo, d) == 200);
    change();
    CHECK(get(c, token, repo, d) == 401);
    CHECK(waitFor([&] { return get(e, token, repo, d) == 401; }, 5000));
  };

  std::string solo = registryToken(core.port(), "solo", "solo-password", "repository:acme/app:pull");
  check("grant removed", solo, "acme/app", app,
        [&] { REQUIRE(admin.call("DELETE", "/api/v1/repositories/acme/app/permissions/users/solo").status == 200); });
  check("team membership removed", registryToken(core.port(), "dev", "dev-password", "repository:acme/app:pull"),
        "acme/app", app,
        [&] { REQUIRE(admin.call("DELETE", "/api/v1/orgs/acme/teams/builders/members/dev").status == 204); });
  check("user disabled", registryToken(core.port(), "dis", "dis-password", "repository:acme/app:pull"), "acme/app", app,
        [&] { REQUIRE(admin.call("PATCH", "/api/v1/users/dis", {{"disabled", true}}).status == 200); });
  auto pat = admin.call("POST", "/api/v1/users/ci/tokens", {{"name", "pipeline"}});
  REQUIRE(pat.status == 201);
  std::string pat_secret = json::parse(pat.body)["secret"];
  std::string pat_id = json::parse(pat.body)["id"];
  check("access token revoked", registryToken(core.port(), "ci", pat_secret, "repository:acme/app:pull"), "acme/app", app,
        [&] { REQUIRE(admin.call("DELETE", "/api/v1/users/ci/tokens/" + pat_id).status == 204); });
  check("repository made private", registryToken(core.port(), "", "", "repository:acme/pub:pull"), "acme/pub", pub,
        [&] { REQUIRE(admin.call("PATCH", "/api/v1/repositories/acme/pub", {{"public", false}}).status == 200); });

  // What still holds after the changes holds with a new token: ci's password still pulls.
  std::string fresh = registryToken(core.port(), "ci", "ci-password", "repository:acme/app:pull");
  CHECK(get(c, fresh, "acme/app", app) == 200);
  CHECK(get(e, fresh, "acme/app", app) == 200);
  // The edge keeps the list across a restart, also with the core out of reach.
  REQUIRE(core.terminate() == 0);
  edge.process().signal(SIGTERM);
  REQUIRE(edge.process().wait() == 0);
  REQUIRE(edge.start({}));
  HttpClient e2("127.0.0.1", edge.port());
  CHECK(get(e2, solo, "acme/app", app) == 401);
  CHECK(get(e2, fresh, "acme/app", app) == 200);
}

TEST_CASE("fleet: reports count what clients pulled, once, across a kill -9 of the edge", "[fleet]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer edge(core, edgeOptions({"--report-interval", "200ms"}));
  Admin admin(core.port());
  std::string a = pushBlob(core.port(), kPassword, "admin/one", randomData(100000, 21));
  std::string b = pushBlob(core.port(), kPassword, "admin/two", randomData(40000, 22));
  std::string pull = registryToken(core.port(), "admin", kPassword, "repository:admin/one:pull&scope=repository:admin/two:pull");
  uint64_t client_bytes = 0;
  auto fetch = [&](const std::string& repo, const std::string& d) {
    HttpClient e("127.0.0.1", edge.port());
    auto r = e.request("GET", "/v2/" + repo + "/blobs/" + d, {{"Authorization", "Bearer " + pull}});
    REQUIRE(r.isOk());
    REQUIRE(r->status == 200);
    client_bytes += r->body.size();  // counted on the client side
  };
  auto totals = [&] {
    auto r = admin.call("GET", "/api/v1/edges/" + edge.name() + "/usage?by=repo");
    REQUIRE(r.status == 200);
    return json::parse(r.body)["totals"];
  };
  auto servedReaches = [&](uint64_t want) {
    return waitFor([&] { return totals()["served_bytes"].get<uint64_t>() >= want; }, 10000);
  };
  // Blobs committed to the cache (a fill commits just after its last byte is sent).
  auto cached = [&](uint64_t n) {
    return waitFor([&] {
      HttpClient e("127.0.0.1", edge.port());
      std::string page = e.request("GET", "/metrics")->body;
      auto at = page.find("\nwharf_edge_cache_blobs ");
      return at != std::string::npos && std::stoull(page.substr(at + 24)) >= n;
    });
  };
  fetch("admin/one", a);  // miss: over the WAN once
  REQUIRE(cached(1));
  fetch("admin/one", a);  // hit
  fetch("admin/two", b);  // miss
  REQUIRE(cached(2));
  REQUIRE(servedReaches(client_bytes));
  json t = totals();
  INFO(t.dump());
  CHECK(t["served_bytes"] == client_bytes);
  CHECK(t["hit_bytes"] == 100000);
  CHECK(t["fetched_bytes"] == 140000);
  CHECK(t["saved_bytes"] == 100000);

  // kill -9, restart, more pulls: the totals are what the clients got, never counted twice.
  edge.process().signal(SIGKILL);
  edge.process().wait();
  REQUIRE(edge.start({"--report-interval", "200ms"}));
  fetch("admin/one", a);
  fetch("admin/two", b);
  REQUIRE(servedReaches(client_bytes));
  // A few more report rounds change nothing.
  auto reportsSent = [&] {
    HttpClient e("127.0.0.1", edge.port());
    std::string page = e.request("GET", "/metrics")->body;
    std::string name = "wharf_edge_reports_total{outcome=\"sent\"} ";
    auto at = page.find(name);
    return at == std::string::npos ? 0ull : std::stoull(page.substr(at + name.size()));
  };
  uint64_t sent = reportsSent();
  REQUIRE(waitFor([&] { return reportsSent() >= sent + 3; }, 10000));
  t = totals();
  INFO(t.dump());
  CHECK(t["served_bytes"] == client_bytes);
  CHECK(t["fetched_bytes"] == 140000);
  CHECK(t["hit_bytes"] == 240000);
  // Per repository, and the edge's state in the list.
  auto by_repo = json::parse(admin.call("GET", "/api/v1/edges/" + edge.name() + "/usage?by=repo").body)["rows"];
  REQUIRE(by_repo.size() == 2);
  CHECK(by_repo[0]["repository"] == "admin/one");
  CHECK(by_repo[0]["served_bytes"] == 300000);
  auto listed = json::parse(admin.call("GET", "/api/v1/edges/" + edge.name()).body);
  CHECK(listed["status"]["state"] == "online");
}

namespace {

bool edgeHolds(const EdgeServer& edge, const std::string& digest) {
  auto d = Digest::parse(digest);
  return d.isOk() && ::access((edge.dataDir() + "/cache/blobs/sha256/" + d->hex()).c_str(), F_OK) == 0;
}

json edgeTotals(Admin& admin, const EdgeServer& edge) {
  auto r = admin.call("GET", "/api/v1/edges/" + edge.name() + "/usage?by=repo");
  REQUIRE(r.status == 200);
  return json::parse(r.body)["totals"];
}

std::string edgeCredential(const EdgeServer& edge) {
  std::string text;
  REQUIRE(readFile(edge.dataDir() + "/edge.json", &text).isOk());
  return json::parse(text)["credential"].get<std::string>();
}

}  // namespace

TEST_CASE("fleet: a tag's new image is prefetched where the tag was pulled, not elsewhere", "[fleet][prefetch]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  EdgeServer pulled(core, edgeOptions({"--report-interval", "200ms"}));
  EdgeServer idle(core, edgeOptions({"--report-interval", "200ms"}, "another site"));  // not a peer of `pulled`
  Admin admin(core.port());
  std::string creds = std::string("admin:") + kPassword;
  TempDir work;
  auto push = [&](const std::string& dir, const std::string& tag, uint64_t seed) {
    auto layout = writeOciLayout(work / dir, tag, {ImageSpec{"amd64", {{{"f", randomData(200000, seed)}}}}});
    auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds,
                  "oci:" + work / dir + ":" + tag, "docker://" + core.address() + "/admin/app:" + tag});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    return layout;
  };
  int pulls = 0;
  auto pull = [&](const EdgeServer& edge, const std::string& tag) {
    std::string dest = work / ("back-" + edge.name() + "-" + std::to_string(++pulls));
    auto r = run({"skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds,
                  "docker://" + edge.address() + "/admin/app:" + tag, "oci:" + dest + ":" + tag});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  };

  // The default rule follows a tag the site pulled at least 3 times in the last day: a
  // tag pulled twice, or a new tag, is not prefetched.
  push("v1", "latest", 51);
  pull(pulled, "latest");
  pull(pulled, "latest");
  pull(idle, "latest");
  push("other", "other", 53);
  pull(pulled, "latest");
  // The tag moves: where it was pulled 3 times, its new image is fetched (the blobs the
  // previous image did not have) within a channel round trip or so.
  auto v2 = push("v2", "latest", 52);
  bool prefetched = waitFor(
      [&] {
        for (const auto& b : v2.blobs) {
          if (!edgeHolds(pulled, b)) return false;
        }
        return true;
      },
      20000);
  INFO(pulled.log());
  REQUIRE(prefetched);
  // Counted as prefetch, not as client fetches; the other edge fetched nothing.
  REQUIRE(waitFor([&] { return edgeTotals(admin, pulled)["prefetched_bytes"].get<uint64_t>() >= 200000; }, 10000));
  json before = edgeTotals(admin, pulled);
  for (const auto& b : v2.blobs) CHECK_FALSE(edgeHolds(idle, b));
  CHECK(edgeTotals(admin, idle)["prefetched_bytes"] == 0);

  // A client pulling the tag there is served from the cache: prefetch used, no new WAN bytes.
  pull(pulled, "latest");
  REQUIRE(waitFor([&] { return edgeTotals(admin, pulled)["prefetch_used_bytes"].get<uint64_t>() >= 200000; }, 10000));
  json after = edgeTotals(admin, pulled);
  INFO(after.dump());
  CHECK(after["fetched_bytes"].get<uint64_t>() < before["fetched_bytes"].get<uint64_t>() + 10000);  // manifests at most
  CHECK(after["prefetch_wasted_bytes"] == 0);

  // The edge's own credential: pull-only, on what its settings allow.
  std::string cred = edgeCredential(idle);
  HttpClient c("127.0.0.1", core.port());
  auto tokenFor = [&](const std::string& repo) {
    return c.request("POST", "/api/v1/edges/self/token",
                     {{"Authorization", "Bearer " + cred}, {"Content-Type", "application/json"}},
                     json{{"repository", repo}}.dump());
  };
  auto t = tokenFor("admin/app");
  REQUIRE(t->status == 200);
  std::string edge_token = json::parse(t->body)["token"];
  CHECK(c.request("HEAD", "/v2/admin/app/blobs/" + v2.blobs[0], {{"Authorization", "Bearer " + edge_token}})->status ==
        200);
  auto upload = c.request("POST", "/v2/admin/app/blobs/uploads/", {{"Authorization", "Bearer " + edge_token}});
  CHECK((upload->status == 401 || upload->status == 403));  // never push
  CHECK(tokenFor("admin/app")->status == 200);
  CHECK(c.request("POST", "/api/v1/edges/self/token", {{"Authorization", "Bearer wharf_edge_nope"}}, "{}")->status ==
        401);

  // Narrowed to other repositories: a prefetch of admin/app is refused by the core.
  auto set = admin.call("PATCH", "/api/v1/edges/" + idle.name(), {{"settings", {{"repositories", {"other/*"}}}}});
  REQUIRE(set.status == 200);
  CHECK(tokenFor("admin/app")->status == 403);
  CHECK(c.request("HEAD", "/v2/admin/app/blobs/" + v2.blobs[0], {{"Authorization", "Bearer " + edge_token}})->status ==
        401);  // tokens issued before the change no longer count
  uint64_t refused = admin.command(idle.name(), "prefetch", {{"repository", "admin/app"}, {"reference", "latest"}});
  json done = admin.awaitCommand(idle.name(), refused);
  INFO(done.dump());
  CHECK(done["state"] == "failed");
  CHECK(done["error"].get<std::string>().find("does not let this edge pull admin/app") != std::string::npos);

  // Allowed again: prefetch now, and a pin of an image the edge never held fetches it.
  REQUIRE(admin.call("PATCH", "/api/v1/edges/" + idle.name(), {{"settings", {{"repositories", {"admin/*"}}}}}).status ==
          200);
  uint64_t now = admin.command(idle.name(), "prefetch", {{"repository", "admin/app"}, {"reference", "latest"}});
  done = admin.awaitCommand(idle.name(), now);
  INFO(done.dump());
  REQUIRE(done["state"] == "succeeded");
  CHECK(done["result"]["fetched_bytes"].get<uint64_t>() >= 200000);
  for (const auto& b : v2.blobs) CHECK(edgeHolds(idle, b));
  uint64_t pin = admin.command(idle.name(), "pin", {{"repository", "admin/app"}, {"reference", "other"}});
  done = admin.awaitCommand(idle.name(), pin);
  INFO(done.dump());
  REQUIRE(done["state"] == "succeeded");
  CHECK(done["result"]["label"] == "admin/app:other");
  uint64_t inv = admin.command(idle.name(), "inventory");
  json inventory = admin.awaitCommand(idle.name(), inv)["result"];
  CHECK(inventory["pins"].contains("admin/app:other"));
  // A client pull of it there is all hits now.
  json idle_before = edgeTotals(admin, idle);
  pull(idle, "other");
  REQUIRE(waitFor([&] { return edgeTotals(admin, idle)["hit_bytes"].get<uint64_t>() >= 200000; }, 10000));
  CHECK(edgeTotals(admin, idle)["fetched_bytes"].get<uint64_t>() < idle_before["fetched_bytes"].get<uint64_t>() + 10000);
}

namespace {

// Which of the named edges owns a digest, as every edge of their site computes it.
std::string ownerOf(const std::vector<const EdgeServer*>& edges, const std::string& digest) {
  std::string best;
  uint64_t best_score = 0;
  for (const auto* e : edges) {
    uint64_t s = SitePeers::score(e->name(), digest);
    if (best.empty() || s > best_score) {
      best = e->name();
      best_score = s;
    }
  }
  return best;
}

}  // namespace

TEST_CASE("fleet: the edges of a site act as one cache: one fetch from the core per blob, peers verified, a peer "
          "down skipped",
          "[fleet][peers]") {
  ::setenv("WHARF_ADMIN_PASSWORD", kPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  auto named = [](const std::string& name, const std::string& site) {
    EdgeServer::Options o = edgeOptions({}, site);
    o.name = name;
    return o;
  };
  EdgeServer a(core, named("oslo-a", "oslo"));
  EdgeServer b(core, named("oslo-b", "oslo"));
  EdgeServer d(core, named("oslo-d", "oslo"));
  EdgeServer c(core, named("rome-c", "rome"));  // another site: not a peer
  std::vector<const EdgeServer*> oslo = {&a, &b, &d};
  // The core introduces the edges of a site to each other through their channels.
  bool introduced = waitFor(
      [&] {
        return metricOf(a.port(), "wharf_edge_site_peers") == 2 && metricOf(b.port(), "wharf_edge_site_peers") == 2 &&
               metricOf(d.port(), "wharf_edge_site_peers") == 2;
      },
      15000);
  INFO(metricOf(a.port(), "wharf_edge_site_peers") << " " << metricOf(b.port(), "wharf_edge_site_peers") << " " << metricOf(d.port(), "wharf_edge_site_peers") << d.log());
  REQUIRE(introduced);
  CHECK(metricOf(c.port(), "wharf_edge_site_peers") == 0);

  // An image of six layers under 1 MiB (admitted at their first miss), pushed to the core.
  std::string creds = std::string("admin:") + kPassword;
  TempDir work;
  std::vector<std::map<std::string, std::string>> layers;
  for (int i = 0; i < 6; ++i) layers.push_back({{"f", randomData(150000 + i * 1000, 700 + i)}});
  auto image = writeOciLayout(work / "src", "v1", {ImageSpec{"amd64", layers}});
  auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:" + work / "src" + ":v1",
                "docker://" + core.address() + "/admin/site:v1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  uint64_t total = 0;
  std::map<std::string, uint64_t> sizes;
  for (const auto& blob : image.blobs) {
    auto hex = Digest::parse(blob)->hex();
    std::string bytes;
    REQUIRE(readFile(work / "src/blobs/sha256" + "/" + hex, &bytes).isOk());
    sizes[blob] = bytes.size();
    total += bytes.size();
  }
  int pulls = 0;
  auto pull = [&](const EdgeServer& edge) {
    std::string dest = work / ("back-" + std::to_string(++pulls));
    return run({"skopeo", "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", creds,
                "docker://" + edge.address() + "/admin/site:v1", "oci:" + dest + ":v1"});
  };
  auto upstream = [&](const EdgeServer& e) { return metricOf(e.port(), "wharf_edge_bytes_from_upstream_total"); };
  auto fromPeers = [&](const EdgeServer& e) { return metricOf(e.port(), "wharf_edge_bytes_from_peers_total"); };

  // Pulled through two edges of the site: every blob came from the core once, through its
  // owner; each edge asked the owner of what it lacked.
  r = pull(a);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = pull(b);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(upstream(a) + upstream(b) + upstream(d) == total);
  uint64_t owned_by_a = 0, owned_by_b = 0, owned_by_d = 0;
  for (const auto& [blob, size] : sizes) {
    std::string owner = ownerOf(oslo, blob);
    (owner == a.name() ? owned_by_a : owner == b.name() ? owned_by_b : owned_by_d) += size;
    CHECK(edgeHolds(owner == a.name() ? a : owner == b.name() ? b : d, blob));
  }
  CHECK(upstream(a) == owned_by_a);
  CHECK(upstream(b) == owned_by_b);
  CHECK(upstream(d) == owned_by_d);
  CHECK(fromPeers(a) == total - owned_by_a);  // a asked b and d for their share
  CHECK(fromPeers(b) == total - owned_by_b);  // b asked a and d
  // Another site fetches on its own.
  r = pull(c);
  REQUIRE(r.exit_code == 0);
  CHECK(upstream(c) == total);
  CHECK(fromPeers(c) == 0);

  // A peer's bytes are verified like the core's: a layer b owns, corrupted in b's cache,
  // fails d's fill (never served as the layer), b is skipped, and the retry comes from the
  // core.
  std::string victim;
  for (const auto& [blob, size] : sizes) {
    if (ownerOf(oslo, blob) == b.name() && size > 100000) victim = blob;
  }
  REQUIRE_FALSE(victim.empty());  // the seeds give b a layer
  REQUIRE_FALSE(edgeHolds(d, victim));
  {
    std::string path = b.dataDir() + "/cache/blobs/sha256/" + Digest::parse(victim)->hex();
    std::string bytes;
    REQUIRE(readFile(path, &bytes).isOk());
    bytes[bytes.size() / 2] ^= 0x5a;
    REQUIRE(writeFileDurable(path, bytes).isOk());
  }
  uint64_t d_upstream = upstream(d);
  r = pull(d);
  INFO(r.output);
  CHECK(r.exit_code != 0);  // the damaged layer was cut off, not delivered
  CHECK(countLogLines(d.log(), {"a peer edge served a blob that does not verify", b.name()}) == 1);
  r = pull(d);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(upstream(d) == d_upstream + sizes[victim]);
  std::string kept;
  REQUIRE(readFile(d.dataDir() + "/cache/blobs/sha256/" + Digest::parse(victim)->hex(), &kept).isOk());
  CHECK(digestOf(kept).str() == victim);

  // A peer that is down is skipped: a pulls a new image while b is killed, and gets it all.
  b.process().signal(SIGKILL);
  b.process().wait();
  std::vector<std::map<std::string, std::string>> more;
  for (int i = 0; i < 6; ++i) more.push_back({{"g", randomData(120000 + i * 1000, 800 + i)}});
  auto image2 = writeOciLayout(work / "src2", "v2", {ImageSpec{"amd64", more}});
  r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:" + work / "src2" + ":v2",
           "docker://" + core.address() + "/admin/site:v2"});
  REQUIRE(r.exit_code == 0);
  bool b_owns_one = false;
  for (const auto& blob : image2.blobs) b_owns_one = b_owns_one || ownerOf(oslo, blob) == b.name();
  REQUIRE(b_owns_one);
  r = run({"skopeo", "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", creds,
           "docker://" + a.address() + "/admin/site:v2", "oci:" + work / "back-v2" + ":v2"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(metricOf(a.port(), "wharf_edge_peer_fallbacks_total") >= 1);
  for (const auto& blob : image2.blobs) {
    if (ownerOf(oslo, blob) == b.name()) CHECK(edgeHolds(a, blob));
  }
}

}  // namespace fleet_test
