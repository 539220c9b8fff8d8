// Scale-out: several wharf-core processes sharing one registry index on a real PostgreSQL
// (--metadata postgres://...) and one blob store: a directory (--blobs file:///...) or a
// real S3 store, Ceph's radosgw (--blobs s3://...): what one core acknowledged the others
// serve, byte for byte, at once and after it died.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <deque>
#include <map>
#include <sstream>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <thread>
#include <tuple>

#include "shared/oci/digest.h"
#include "tests/support/edge_server.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/tuf_fixtures.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "tests/support/ceph.h"
#include "tests/support/postgres.h"
#include "tests/support/process.h"
#include "tests/support/sse_client.h"
#include "shared/tls/crypto.h"

// Each file's own names: the test binaries are unity builds.
namespace scale_out_test {

using namespace wharf;
using namespace wharf::test;

namespace {

std::string sha(const std::string& data) { return digestOf(data).str(); }

std::string pushBlob(HttpClient& c, const std::string& repo, const std::string& data) {
  auto r = c.request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + sha(data), {}, data);
  REQUIRE(r.isOk());
  REQUIRE(r->status == 201);
  return sha(data);
}

// Pushes a one-layer image; returns its manifest.
std::string pushImage(HttpClient& c, const std::string& repo, const std::string& tag, const std::string& layer) {
  std::string config = R"({"architecture":"amd64","os":"linux"})";
  std::string cd = pushBlob(c, repo, config), ld = pushBlob(c, repo, layer);
  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                      {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd}, {"size", config.size()}}},
                      {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", ld}, {"size", layer.size()}}}}};
  auto r = c.request("PUT", "/v2/" + repo + "/manifests/" + tag, {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                     m.dump());
  REQUIRE(r.isOk());
  REQUIRE(r->status == 201);
  return m.dump();
}

constexpr const char* kAccept = "application/vnd.oci.image.manifest.v1+json";

bool haveEngines(bool s3) {
  if (!PostgresServer::available()) {
    WARN("PostgreSQL is not installed: skipped");
    return false;
  }
  if (s3 && !MicroCeph::available()) {
    WARN("Ceph is not installed: skipped (apt-get install ceph-mon ceph-osd radosgw)");
    return false;
  }
  return true;
}

// A chunked upload: each chunk on the next client in turn, the PUT on the last one.
HttpResponse chunkedUpload(std::vector<HttpClient*> clients, const std::string& repo, const std::string& data,
                           size_t chunk) {
  auto start = clients[0]->request("POST", "/v2/" + repo + "/blobs/uploads/");
  REQUIRE(start.isOk());
  REQUIRE(start->status == 202);
  std::string location = start->header("location");
  size_t i = 0;
  for (size_t off = 0; off < data.size(); off += chunk, ++i) {
    size_t n = std::min(chunk, data.size() - off);
    auto r = clients[i % clients.size()]->request(
        "PATCH", location,
        {{"Content-Type", "application/octet-stream"},
         {"Content-Range", std::to_string(off) + "-" + std::to_string(off + n - 1)}},
        data.substr(off, n));
    REQUIRE(r.isOk());
    INFO(r->body);
    REQUIRE(r->status == 202);
    CHECK(r->header("range") == "0-" + std::to_string(off + n - 1));
    location = r->header("location");
  }
  auto done = clients[i % clients.size()]->request(
      "PUT", location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + sha(data));
  REQUIRE(done.isOk());
  return *done;
}

}  // namespace

TEST_CASE("scale-out: cores on one PostgreSQL and one blob directory serve each other's pushes", "[pg][scale-out]") {
  if (!PostgresServer::available()) {
    WARN("PostgreSQL is not installed: skipped");
    return;
  }
  std::string db = PostgresServer::shared().freshDatabase();
  TempDir blobs;
  std::vector<std::string> shared = {"--metadata", db, "--blobs", "file://" + blobs.path()};
  CoreServer a("", shared), b("", shared);
  HttpClient ca("127.0.0.1", a.port()), cb("127.0.0.1", b.port());

  // Pushed to a, pulled from b.
  std::string layer = randomData(200000, 7);
  std::string manifest = pushImage(ca, "team/app", "v1", layer);
  auto m = cb.request("GET", "/v2/team/app/manifests/v1", {{"Accept", kAccept}});
  REQUIRE(m.isOk());
  REQUIRE(m->status == 200);
  CHECK(m->body == manifest);
  auto blob = cb.request("GET", "/v2/team/app/blobs/" + sha(layer));
  REQUIRE(blob->status == 200);
  CHECK(blob->body == layer);
  auto tags = cb.request("GET", "/v2/team/app/tags/list");
  CHECK(nlohmann::json::parse(tags->body)["tags"] == nlohmann::json::array({"v1"}));

  // A tag moved on b is what a serves right after b acknowledged it.
  std::string moved = pushImage(cb, "team/app", "v1", randomData(1000, 8));
  CHECK(ca.request("GET", "/v2/team/app/manifests/v1", {{"Accept", kAccept}})->body == moved);

  // A chunked upload started on a, finished on b.
  std::string big = randomData(300000, 9);
  auto start = ca.request("POST", "/v2/team/app/blobs/uploads/");
  REQUIRE(start->status == 202);
  std::string location = start->header("location");
  auto first = ca.request("PATCH", location,
                          {{"Content-Type", "application/octet-stream"}, {"Content-Range", "0-149999"}}, big.substr(0, 150000));
  REQUIRE(first->status == 202);
  location = first->header("location");
  auto second = cb.request("PATCH", location,
                           {{"Content-Type", "application/octet-stream"}, {"Content-Range", "150000-299999"}},
                           big.substr(150000));
  INFO(second->body);
  REQUIRE(second->status == 202);
  location = second->header("location");
  auto done = cb.request("PUT", location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + sha(big));
  INFO(done->body);
  REQUIRE(done->status == 201);
  CHECK(ca.request("GET", "/v2/team/app/blobs/" + sha(big))->body == big);

  // A policy set on a binds b at once: b cached the policies (none) on its pushes above,
  // and a notification from the database drops that cache.
  std::string before_policy = cb.request("GET", "/v2/team/app/manifests/v1", {{"Accept", kAccept}})->body;
  auto set = ca.request("PUT", "/api/v1/policies/team/app", {{"Content-Type", "application/json"}}, R"({"immutable":["v1"]})");
  REQUIRE(set->status == 200);
  std::string layer2 = randomData(1000, 10);
  bool refused = waitFor([&] {
    std::string config = R"({"architecture":"amd64","os":"linux"})";
    std::string cd = pushBlob(cb, "team/app", config), ld = pushBlob(cb, "team/app", layer2);
    nlohmann::json m = {{"schemaVersion", 2},
                        {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                        {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd}, {"size", config.size()}}},
                        {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", ld}, {"size", layer2.size()}}}}};
    auto r = cb.request("PUT", "/v2/team/app/manifests/v1", {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                        m.dump());
    return r->status == 403;
  }, 5000);
  CHECK(refused);
  CHECK(ca.request("GET", "/v2/team/app/manifests/v1", {{"Accept", kAccept}})->body == before_policy);
  CHECK(ca.request("DELETE", "/api/v1/policies/team/app")->status == 204);

  // Collection runs on a shared index (the content locks are cluster-wide): nothing
  // referenced goes.
  auto gc = cb.request("POST", "/api/v1/jobs", {{"Content-Type", "application/json"}}, R"({"kind":"gc","params":{}})");
  REQUIRE(gc->status == 202);
  std::string gc_id = nlohmann::json::parse(gc->body)["id"];
  nlohmann::json job;
  REQUIRE(waitFor([&] {
    job = nlohmann::json::parse(cb.request("GET", "/api/v1/jobs/" + gc_id)->body);
    return job["state"] == "failed" || job["state"] == "succeeded";
  }, 20000));
  INFO(job.dump());
  CHECK(job["state"] == "succeeded");

  // a dies: b serves everything a acknowledged.
  a.kill9();
  CHECK(cb.request("GET", "/v2/team/app/manifests/v1", {{"Accept", kAccept}})->body == moved);
  CHECK(cb.request("GET", "/v2/team/app/blobs/" + sha(layer))->body == layer);
  CHECK(cb.request("GET", "/v2/_catalog")->body.find("team/app") != std::string::npos);
}

TEST_CASE("scale-out: jobs run once in the cluster, a schedule fires once a tick, a job whose replica died "
          "runs again on another, a cancel crosses replicas",
          "[pg][scale-out][jobs]") {
  if (!haveEngines(false)) return;
  using nlohmann::json;
  std::string db = PostgresServer::shared().freshDatabase();
  TempDir blobs;
  ::setenv("WHARF_TEST_JOBS", "1", 1);
  std::vector<std::string> shared = {"--metadata", db,           "--blobs",        "file://" + blobs.path(),
                                     "--job-lease", "3s",         "--scan-on-push", "true"};
  auto a = std::make_unique<CoreServer>("", shared);
  auto b = std::make_unique<CoreServer>("", shared);
  ::unsetenv("WHARF_TEST_JOBS");
  HttpClient ca("127.0.0.1", a->port()), cb("127.0.0.1", b->port());
  auto submit = [](HttpClient& c, const json& params) {
    auto r = c.request("POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                       json{{"kind", "sleep"}, {"params", params}}.dump());
    REQUIRE(r.isOk());
    INFO(r->body);
    REQUIRE(r->status == 202);
    return json::parse(r->body)["id"].get<std::string>();
  };
  auto job = [](HttpClient& c, const std::string& id) {
    auto r = c.request("GET", "/api/v1/jobs/" + id);
    REQUIRE(r.isOk());
    REQUIRE(r->status == 200);
    return json::parse(r->body);
  };
  auto log = [](HttpClient& c, const std::string& id) {
    std::vector<std::string> lines;
    auto r = c.request("GET", "/api/v1/jobs/" + id + "/log");
    REQUIRE(r.isOk());
    INFO(r->body);
    REQUIRE(r->status == 200);
    json page = json::parse(r->body);  // kept: a temporary's element would dangle in the loop
    for (const auto& l : page["items"]) lines.push_back(l["line"].get<std::string>());
    return lines;
  };

  // Scan on push: both replicas follow the shared event log, one scan job per push.
  auto scanJobs = [&] {
    auto r = ca.request("GET", "/api/v1/jobs?kind=scan&limit=100");
    REQUIRE(r.isOk());
    return json::parse(r->body)["items"].size();
  };
  for (int i = 0; i < 4; ++i) pushImage(i % 2 ? ca : cb, "team/scanned", "v" + std::to_string(i), randomData(5000, 40 + i));
  REQUIRE(waitFor([&] { return scanJobs() >= 4; }, 20000));
  pushImage(ca, "team/scanned", "last", randomData(5000, 50));
  REQUIRE(waitFor([&] { return scanJobs() >= 5; }, 20000));
  CHECK(scanJobs() == 5);

  // Jobs submitted to either replica run once each, on either.
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(submit(i % 2 ? ca : cb, {{"seconds", 0.1}}));
  for (const auto& id : ids) {
    REQUIRE(waitFor([&] { return job(ca, id)["state"] == "succeeded"; }, 20000));
    auto lines = log(cb, id);
    CHECK(std::count(lines.begin(), lines.end(), "job succeeded") == 1);
    CHECK(std::count(lines.begin(), lines.end(), "sleeping 0.1s") == 1);
    CHECK(job(cb, id)["runs"] == 1);
  }

  // A schedule every second, set on a: each tick fires once in the cluster.
  auto put = ca.request("PUT", "/api/v1/schedules/fast", {{"Content-Type", "application/json"}},
                        json{{"cron", "@every 1s"}, {"kind", "sleep"}, {"params", {{"seconds", 0}}}}.dump());
  REQUIRE(put.isOk());
  REQUIRE(put->status == 201);
  json fired;
  REQUIRE(waitFor([&] {
    fired = json::parse(cb.request("GET", "/api/v1/jobs?actor=schedule:fast")->body)["items"];
    return fired.size() >= 5;
  }, 20000));
  REQUIRE(ca.request("DELETE", "/api/v1/schedules/fast")->status == 204);
  std::vector<int64_t> created;
  for (const auto& j : fired) {
    // "2026-12-07T12:43:32Z"
    std::tm tm{};
    REQUIRE(std::sscanf(j["created_at"].get<std::string>().c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon,
                        &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    created.push_back(static_cast<int64_t>(timegm(&tm)));
  }
  std::sort(created.begin(), created.end());
  for (size_t i = 1; i < created.size(); ++i) {
    // A slot fired twice would be two jobs in one second.
    CHECK(created[i] > created[i - 1]);
  }

  // A long job; the replica running it is killed: the other runs it again once the lease
  // (3 s) has run out.
  std::string long_id = submit(ca, {{"seconds", 300}});
  json j;
  REQUIRE(waitFor([&] {
    j = job(ca, long_id);
    return j["state"] == "running";
  }, 10000));
  std::string runner = j["runner"];
  int pid = std::stoi(runner.substr(runner.find('/') + 1));
  bool on_a = pid == a->process().pid();
  REQUIRE((on_a || pid == b->process().pid()));
  std::unique_ptr<CoreServer>& victim = on_a ? a : b;
  HttpClient& survivor = on_a ? cb : ca;
  victim->kill9();
  REQUIRE(waitFor([&] {
    j = job(survivor, long_id);
    return j["state"] == "running" && j["runs"] == 2;
  }, 20000));
  CHECK(j["runner"] != runner);
  auto lines = log(survivor, long_id);
  CHECK(std::count(lines.begin(), lines.end(),
                   "interrupted: " + runner + " stopped renewing its lease; queued again (run 2 of 3)") == 1);

  // Restarted, the dead replica's successor cancels it through its own API: the replica
  // running it hears of it at its next renewal.
  victim = std::make_unique<CoreServer>("", shared);
  HttpClient cv("127.0.0.1", victim->port());
  auto cancel = cv.request("POST", "/api/v1/jobs/" + long_id + "/cancel");
  REQUIRE(cancel.isOk());
  CHECK(cancel->status == 200);
  REQUIRE(waitFor([&] { return job(cv, long_id)["state"] == "cancelled"; }, 10000));
  CHECK(job(survivor, long_id)["error"] == "cancelled by anonymous");
}

TEST_CASE("scale-out on S3: cores on PostgreSQL and Ceph serve each other's pushes; the store away fails pushes cleanly",
          "[pg][s3][scale-out]") {
  if (!haveEngines(true)) return;
  ::setenv("WHARF_ADMIN_PASSWORD", "edge-admin-password", 1);  // the replica with authentication, below
  auto& ceph = MicroCeph::shared();
  std::string db = PostgresServer::shared().freshDatabase();
  std::string blobs = ceph.freshBlobsUrl("part_size_mb=5");
  std::vector<std::string> shared = {"--metadata", db, "--blobs", blobs};
  CoreServer a("", shared), b("", shared);
  HttpClient ca("127.0.0.1", a.port()), cb("127.0.0.1", b.port());
  CHECK(countLogLines(a.log(), {"blob store", "s3://"}) == 1);

  // skopeo pushes to a and pulls from b, byte for byte. Its PATCH announces the 7 MiB
  // layer (Content-Length): one streamed PUT to the store, no parts.
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1",
                               {ImageSpec{"amd64", {{{"a.txt", "alpha"}}, {{"big.bin", randomData(7 << 20, 21)}}}}});
  auto r = containerClient("skopeo copy --dest-tls-verify=false oci:" + work / "src" + ":v1 docker://" + a.address() +
                           "/team/app:v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // (and one more: the probe at start, whether the store takes streamed PUTs)
  CHECK(metricOf(a.port(), "wharf_s3_request_seconds_count{op=\"put_streamed\"}") == 2);
  CHECK(metricOf(a.port(), "wharf_s3_request_seconds_count{op=\"put_part\"}") == 0);
  r = containerClient("skopeo copy --src-tls-verify=false docker://" + b.address() + "/team/app:v1 oci:" + work / "back" +
                      ":v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const auto& blob : layout.blobs) {
    std::string sent, got;
    REQUIRE(readFile(work / "src/blobs/sha256/" + blob.substr(7), &sent).isOk());
    REQUIRE(readFile(work / "back/blobs/sha256/" + blob.substr(7), &got).isOk());
    CHECK(sent == got);
  }

  // A chunked upload whose chunks alternate between the replicas, 12 MiB in 3 MiB chunks.
  std::string big = randomData(12 << 20, 22);
  auto done = chunkedUpload({&ca, &cb}, "team/app", big, 3 << 20);
  INFO(done.body);
  REQUIRE(done.status == 201);
  auto got = cb.request("GET", "/v2/team/app/blobs/" + sha(big));
  REQUIRE(got->status == 200);
  CHECK(got->body == big);
  auto range = ca.request("GET", "/v2/team/app/blobs/" + sha(big), {{"Range", "bytes=5242870-5242889"}});
  REQUIRE(range->status == 206);
  CHECK(range->body == big.substr(5242870, 20));

  // A replica that redirects blob GETs to presigned URLs: clients fetch from the store,
  // edges (X-Wharf-Edge) still from the core.
  std::vector<std::string> redirecting = shared;
  redirecting.insert(redirecting.end(), {"--blob-redirect", "60s"});
  CoreServer c("", redirecting);
  HttpClient cc("127.0.0.1", c.port());
  auto redirect = cc.request("GET", "/v2/team/app/blobs/" + sha(big));
  REQUIRE(redirect->status == 307);
  std::string location = redirect->header("location");
  CHECK(location.rfind(ceph.endpoint() + "/", 0) == 0);
  CHECK(location.find("X-Amz-Signature=") != std::string::npos);
  std::string path = location.substr(ceph.endpoint().size());
  HttpClient store("127.0.0.1", std::stoi(ceph.endpoint().substr(ceph.endpoint().rfind(':') + 1)));
  auto direct = store.request("GET", path);
  REQUIRE(direct->status == 200);
  CHECK(direct->body == big);
  auto edge = cc.request("GET", "/v2/team/app/blobs/" + sha(big), {{"X-Wharf-Edge", "1"}});
  CHECK(edge->status == 200);
  CHECK(edge->body == big);
  // An edge in front of a redirecting replica (edges need authentication on) follows the
  // redirect too: the store serves its fill, with the client's token checked by the core.
  {
    std::vector<std::string> with_auth = redirecting;
    with_auth.insert(with_auth.end(), {"--auth", "token"});
    CoreServer d("", with_auth);
    EdgeServer edge(d);
    std::string pull = registryToken(d.port(), "admin", "edge-admin-password", "repository:team/app:pull");
    HttpClient e("127.0.0.1", edge.port(), 30000);
    auto through = e.request("GET", "/v2/team/app/blobs/" + sha(big), {{"Authorization", "Bearer " + pull}});
    REQUIRE(through.isOk());
    CHECK(through->status == 200);
    CHECK(through->body == big);
    CHECK(metricOf(edge.port(), "wharf_edge_fill_redirects_total") == 1);
    CHECK(metricOf(edge.port(), "wharf_edge_fill_redirect_fallbacks_total") == 0);
    auto anonymous = e.request("GET", "/v2/team/app/blobs/" + sha(big));
    CHECK(anonymous->status == 401);
  }
  r = containerClient("skopeo copy --src-tls-verify=false docker://" + c.address() + "/team/app:v1 oci:" +
                      work / "redirected" + ":v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const auto& blob : layout.blobs) {
    std::string sent, got;
    REQUIRE(readFile(work / "src/blobs/sha256/" + blob.substr(7), &sent).isOk());
    REQUIRE(readFile(work / "redirected/blobs/sha256/" + blob.substr(7), &got).isOk());
    CHECK(sent == got);
  }

  // The store away: pushes and pulls fail with 503 and nothing half-written shows up;
  // the store back, both go on by themselves.
  RgwDown down(ceph);
  std::string refused = randomData(100000, 23);
  auto push = ca.request("POST", "/v2/team/app/blobs/uploads/?digest=" + sha(refused), {}, refused);
  REQUIRE(push.isOk());
  CHECK(push->status == 503);
  auto open = cb.request("POST", "/v2/team/app/blobs/uploads/");
  CHECK(open->status == 503);
  auto pull = cb.request("GET", "/v2/team/app/blobs/" + sha(big));
  CHECK(pull->status == 503);
  CHECK(pull->header("retry-after") == "5");
  down.back();
  CHECK(ca.request("HEAD", "/v2/team/app/blobs/" + sha(refused))->status == 404);
  CHECK(cb.request("GET", "/v2/team/app/blobs/" + sha(big))->body == big);
  pushBlob(ca, "team/app", refused);
  CHECK(cb.request("GET", "/v2/team/app/blobs/" + sha(refused))->body == refused);

  // a dies: b serves everything a acknowledged.
  a.kill9();
  CHECK(cb.request("GET", "/v2/team/app/blobs/" + sha(big))->body == big);
}

TEST_CASE("scale-out with authentication: replicas share users, signing keys, tokens, revocations and the live event feed",
          "[pg][s3][scale-out][auth]") {
  if (!haveEngines(true)) return;
  const std::string admin_pw = "scale-admin-password";
  ::setenv("WHARF_ADMIN_PASSWORD", admin_pw.c_str(), 1);
  std::string db = PostgresServer::shared().freshDatabase();
  TempDir keys;
  // Every replica holds the same sealing key (it seals the shared signing keys).
  REQUIRE(writeFileDurable(keys / "sealing.key", randomBytes(32), 0600).isOk());
  std::vector<std::string> shared = {"--metadata", db,     "--blobs", MicroCeph::shared().freshBlobsUrl(),
                                     "--auth",     "token", "--trust-key-file", keys / "sealing.key"};
  // Started together: one of them makes the first administrator and the first key.
  std::unique_ptr<CoreServer> a, b;
  std::thread ta([&] { a = std::make_unique<CoreServer>("", shared); });
  std::thread tb([&] { b = std::make_unique<CoreServer>("", shared); });
  ta.join();
  tb.join();
  HttpClient ca("127.0.0.1", a->port()), cb("127.0.0.1", b->port());
  auto jwks_a = nlohmann::json::parse(ca.request("GET", "/auth/keys")->body);
  auto jwks_b = nlohmann::json::parse(cb.request("GET", "/auth/keys")->body);
  REQUIRE(jwks_a["keys"].size() == 1);
  CHECK(jwks_a == jwks_b);

  HeaderList admin = {{"Authorization", basicAuthorization("admin", admin_pw)}, {"Content-Type", "application/json"}};
  // A user made on a signs in on b.
  auto created = ca.request("POST", "/api/v1/users", admin, R"({"name":"alice","password":"alice-password-1"})");
  REQUIRE(created->status == 201);
  auto tokenFrom = [&](HttpClient& c) {
    auto r = c.request("GET", "/auth/token?service=wharf&scope=repository:alice/app:pull,push",
                       {{"Authorization", basicAuthorization("alice", "alice-password-1")}});
    REQUIRE(r.isOk());
    INFO(r->body);
    REQUIRE(r->status == 200);
    return nlohmann::json::parse(r->body)["token"].get<std::string>();
  };
  std::string tok = tokenFrom(cb);

  // b's live feed, from now on.
  uint64_t last = nlohmann::json::parse(cb.request("GET", "/api/v1/events?limit=1", admin)->body)["last_seq"];
  SseClient feed(b->port(), "/api/v1/events/stream?since=" + std::to_string(last),
                 {{"Authorization", basicAuthorization("admin", admin_pw)}});

  // Pushed to a with b's token.
  HeaderList bearer = {{"Authorization", "Bearer " + tok}};
  std::string layer = randomData(3000, 41), config = R"({"architecture":"amd64","os":"linux"})";
  for (const std::string* blob : {&layer, &config}) {
    auto r = ca.request("POST", "/v2/alice/app/blobs/uploads/?digest=" + sha(*blob), bearer, *blob);
    INFO(r->body);
    REQUIRE(r->status == 201);
  }
  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                      {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", sha(config)}, {"size", config.size()}}},
                      {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", sha(layer)}, {"size", layer.size()}}}}};
  HeaderList put = bearer;
  put.push_back({"Content-Type", "application/vnd.oci.image.manifest.v1+json"});
  REQUIRE(ca.request("PUT", "/v2/alice/app/manifests/v1", put, m.dump())->status == 201);

  // b's follower sees a's push.
  REQUIRE(feed.readUntil([&] {
    for (const auto& e : feed.events()) {
      if (e.type == "tag.push" && e.data["repository"] == "alice/app") return true;
    }
    return false;
  }));
  // Unknown on a, the token is refused on both: nobody else's token is accepted.
  CHECK(cb.request("GET", "/v2/alice/app/manifests/v1", {{"Authorization", "Bearer x.y.z"}})->status == 401);

  // A rotation on a: b signs with the new key at once, and a accepts what b signs.
  auto rotated = ca.request("POST", "/api/v1/auth/keys/rotate", admin, R"({"overlap_seconds":600})");
  REQUIRE(rotated->status == 200);
  REQUIRE(waitFor([&] { return nlohmann::json::parse(cb.request("GET", "/auth/keys")->body)["keys"].size() == 2; }));
  std::string after = tokenFrom(cb);
  HeaderList pull = {{"Authorization", "Bearer " + after}, {"Accept", kAccept}};
  auto got = ca.request("GET", "/v2/alice/app/manifests/v1", pull);
  CHECK(got->status == 200);
  CHECK(got->body == m.dump());
  // The token from before the rotation still works within the overlap.
  CHECK(cb.request("GET", "/v2/alice/app/manifests/v1", {{"Authorization", "Bearer " + tok}, {"Accept", kAccept}})->status == 200);

  // Alice disabled on a: her tokens stop working on b too (the revocation list is
  // shared, and b hears of the change).
  auto disabled = ca.request("PATCH", "/api/v1/users/alice", admin, R"({"disabled":true})");
  REQUIRE(disabled->status == 200);
  CHECK(waitFor([&] {
    return cb.request("GET", "/v2/alice/app/manifests/v1", {{"Authorization", "Bearer " + after}, {"Accept", kAccept}})
               ->status == 401;
  }));

  // Failed sign-ins count on every replica together: ten wrong passwords for carol, five
  // on each, and the eleventh attempt is refused on either (429), before any check.
  auto signIn = [&](HttpClient& c, const std::string& pw) {
    return c.request("GET", "/auth/token?service=wharf", {{"Authorization", basicAuthorization("carol", pw)}})->status;
  };
  for (int i = 0; i < 10; ++i) CHECK(signIn(i % 2 ? ca : cb, "wrong-password-" + std::to_string(i)) == 401);
  CHECK(signIn(ca, "wrong-password-x") == 429);
  CHECK(signIn(cb, "wrong-password-y") == 429);

  // A replica with another sealing key is refused at start, and says why.
  REQUIRE(writeFileDurable(keys / "other.key", randomBytes(32), 0600).isOk());
  TempDir dir;
  auto r = run({coreBinary(), "--data-dir", dir / "data", "--listen", "127.0.0.1:0", "--metadata", db, "--auth", "token",
                "--trust-key-file", keys / "other.key"},
               30000);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("sealing key") != std::string::npos);
}

TEST_CASE("scale-out: garbage collection on one replica while another pushes and deletes loses no acknowledged image",
          "[pg][s3][scale-out][gc]") {
  if (!haveEngines(true)) return;
  std::string db = PostgresServer::shared().freshDatabase();
  std::vector<std::string> shared = {"--metadata", db, "--blobs", MicroCeph::shared().freshBlobsUrl()};
  CoreServer a("", shared), b("", shared);
  std::atomic<bool> stop{false};
  std::map<std::string, std::string> kept;  // tag -> manifest, acknowledged and not deleted
  int refused = 0;
  std::mutex failures_mu;
  std::vector<std::string> failures;  // what the pusher was refused (refusals are allowed; losses are not)
  std::thread pusher([&] {
    HttpClient c("127.0.0.1", b.port());
    std::deque<std::pair<std::string, std::string>> recent;  // tag, digest: deleted two pushes later
    for (int i = 0; !stop; ++i) {
      std::string tag = "keep-" + std::to_string(i);
      // A layer shared with other images (a client skips what the registry has; all the
      // images using it may have been deleted, so that it is old garbage the collector
      // takes at any moment), and content of its own.
      std::string shared_layer = randomData(30000, 500 + i % 4), own = randomData(20000, 1000 + i);
      std::string config = R"({"architecture":"amd64","os":"linux","i":)" + std::to_string(i) + "}";
      bool ok = true;
      for (const std::string* blob : {&shared_layer, &own, &config}) {
        auto head = c.request("HEAD", "/v2/gc/app/blobs/" + sha(*blob));
        if (head.isOk() && head->status == 200) continue;
        auto r = c.request("POST", "/v2/gc/app/blobs/uploads/?digest=" + sha(*blob), {}, *blob);
        if (!r.isOk() || r->status != 201) {
          ok = false;
          std::lock_guard lock(failures_mu);
          failures.push_back(r.isOk() ? std::to_string(r->status) + " " + r->body : r.status().toString());
        }
      }
      if (!ok) continue;
      nlohmann::json m = {{"schemaVersion", 2},
                          {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                          {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", sha(config)}, {"size", config.size()}}},
                          {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", sha(shared_layer)}, {"size", shared_layer.size()}},
                                      {{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", sha(own)}, {"size", own.size()}}}}};
      auto put = c.request("PUT", "/v2/gc/app/manifests/" + tag, {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                           m.dump());
      if (!put.isOk() || put->status != 201) {
        ++refused;  // the shared layer collected between the HEAD and the PUT: refused, never half-stored
        std::lock_guard lock(failures_mu);
        failures.push_back("manifest " + (put.isOk() ? std::to_string(put->status) + " " + put->body : put.status().toString()));
        continue;
      }
      // Most images are deleted again two pushes later (garbage); every fifth stays.
      if (i % 5 == 0) {
        kept[tag] = m.dump();
      } else {
        recent.emplace_back(tag, put->header("docker-content-digest"));
      }
      if (recent.size() > 2) {
        (void)c.request("DELETE", "/v2/gc/app/manifests/" + recent.front().second);
        recent.pop_front();
      }
    }
  });
  // Meanwhile a collects with a grace of 1 s: what was unreferenced and older when it
  // looks may go, the shared layers among it, while b pushes images that use them.
  HttpClient ca("127.0.0.1", a.port());
  int runs = 0, deleted = 0;
  int64_t until = monotonicMillis() + 8000;
  while (monotonicMillis() < until) {
    auto gc = ca.request("POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                         R"({"kind":"gc","params":{"grace":"1s","untagged_older_than":"0s"}})");
    REQUIRE(gc->status == 202);
    std::string id = nlohmann::json::parse(gc->body)["id"];
    nlohmann::json job;
    REQUIRE(waitFor([&] {
      job = nlohmann::json::parse(ca.request("GET", "/api/v1/jobs/" + id)->body);
      return job["state"] == "failed" || job["state"] == "succeeded";
    }, 30000));
    INFO(job.dump());
    REQUIRE(job["state"] == "succeeded");
    ++runs;
    deleted += job["result"].value("blobs_deleted", 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the collection's pace, not a sync
  }
  stop = true;
  pusher.join();
  INFO("gc runs " << runs << ", blobs deleted " << deleted << ", images kept " << kept.size() << ", refused " << refused
                   << ", first refusal: " << (failures.empty() ? "-" : failures.front()));
  CHECK(runs >= 2);
  CHECK(deleted > 0);
  CHECK(kept.size() >= 5);
  // One last collection with nothing pushing, then every kept image, whole, from both.
  for (HttpClient* c : {&ca}) {
    auto gc = c->request("POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                         R"({"kind":"gc","params":{"grace":"0s","untagged_older_than":"0s"}})");
    std::string id = nlohmann::json::parse(gc->body)["id"];
    REQUIRE(waitFor([&] {
      auto j = nlohmann::json::parse(c->request("GET", "/api/v1/jobs/" + id)->body);
      return j["state"] == "succeeded";
    }, 30000));
  }
  HttpClient cb("127.0.0.1", b.port());
  for (HttpClient* c : {&ca, &cb}) {
    for (const auto& [tag, manifest] : kept) {
      auto m = c->request("GET", "/v2/gc/app/manifests/" + tag, {{"Accept", kAccept}});
      REQUIRE(m.isOk());
      CHECK(m->status == 200);
      CHECK(m->body == manifest);
      auto j = nlohmann::json::parse(manifest);
      std::vector<std::string> digests = {j["config"]["digest"]};
      for (const auto& l : j["layers"]) digests.push_back(l["digest"]);
      for (const auto& d : digests) {
        auto blob = c->request("GET", "/v2/gc/app/blobs/" + d);
        REQUIRE(blob.isOk());
        INFO(tag << " " << d);
        CHECK(blob->status == 200);
        CHECK(sha(blob->body) == d);
      }
    }
  }
}

TEST_CASE("scale-out: three cores on PostgreSQL and S3 behind HAProxy; pushers go on while replicas are killed and "
          "restarted; real clients through the balancer",
          "[pg][s3][scale-out][haproxy]") {
  if (!haveEngines(true)) return;
  if (!haveCommand("haproxy")) {
    WARN("HAProxy is not installed: skipped");
    return;
  }
  std::string db = PostgresServer::shared().freshDatabase();
  TempDir dirs;
  std::vector<std::string> shared = {"--metadata", db, "--blobs", MicroCeph::shared().freshBlobsUrl("part_size_mb=5")};
  // Fixed ports: HAProxy names them, and a restarted replica comes back on its own.
  std::vector<int> ports = {freePort(), freePort(), freePort()};
  std::vector<std::unique_ptr<CoreServer>> cores(3);
  auto startCore = [&](int i) {
    std::vector<std::string> extra = shared;
    extra.insert(extra.end(), {"--listen", "127.0.0.1:" + std::to_string(ports[i])});
    cores[i] = std::make_unique<CoreServer>(dirs / ("core" + std::to_string(i)), extra);
  };
  for (int i = 0; i < 3; ++i) startCore(i);

  // The shipped configuration, as it is, with the addresses in its environment.
  int lb_port = freePort();
  std::string lb = "127.0.0.1:" + std::to_string(lb_port);
  ::setenv("WHARF_LB_BIND", lb.c_str(), 1);
  for (int i = 0; i < 3; ++i) {
    std::string k = "WHARF_CORE" + std::to_string(i + 1), v = "127.0.0.1:" + std::to_string(ports[i]);
    ::setenv(k.c_str(), v.c_str(), 1);
  }
  Process haproxy({"/usr/sbin/haproxy", "-db", "-f", std::string(WHARF_SOURCE_DIR) + "/appliance/haproxy.cfg"},
                  dirs / "haproxy.log");
  HttpClient via("127.0.0.1", lb_port);
  bool routed = waitFor([&] {
    auto r = via.request("GET", "/v2/");
    return r.isOk() && r->status == 200;
  }, 20000);
  if (!routed) {
    std::ifstream in(dirs / "haproxy.log");
    std::stringstream ss;
    ss << in.rdbuf();
    FAIL("HAProxy does not route: " << ss.str());
  }

  // Four pushers through the balancer; every second push acknowledged is recorded.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, std::string> acknowledged;  // tag -> manifest
  std::atomic<int> attempts{0};
  std::vector<std::thread> pushers;
  for (int t = 0; t < 4; ++t) {
    pushers.emplace_back([&, t] {
      HttpClient c("127.0.0.1", lb_port);
      for (int i = 0; !stop; ++i) {
        ++attempts;
        std::string tag = "p" + std::to_string(t) + "-" + std::to_string(i);
        std::string layer = randomData(20000 + i, static_cast<uint64_t>(t * 100000 + i));
        std::string config = R"({"architecture":"amd64","os":"linux","tag":")" + tag + "\"}";
        auto put = [&](const std::string& data) {
          auto r = c.request("POST", "/v2/team/app/blobs/uploads/?digest=" + sha(data), {}, data);
          return r.isOk() && r->status == 201;
        };
        if (!put(config) || !put(layer)) continue;  // refused or cut: never acknowledged
        nlohmann::json m = {{"schemaVersion", 2},
                            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                            {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", sha(config)}, {"size", config.size()}}},
                            {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", sha(layer)}, {"size", layer.size()}}}}};
        auto r = c.request("PUT", "/v2/team/app/manifests/" + tag, {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                           m.dump());
        if (r.isOk() && r->status == 201) {
          std::lock_guard lock(mu);
          acknowledged[tag] = m.dump();
        }
      }
    });
  }
  // Meanwhile a replica is killed (-9) every 2 s, and restarted.
  for (int round = 0; round < 4; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));  // the load runs: this is its length, not a sync
    int victim = round % 3;
    cores[victim]->kill9();
    cores[victim].reset();
    startCore(victim);
  }
  stop = true;
  for (auto& t : pushers) t.join();

  // Every acknowledged push is there, byte for byte, from every replica.
  INFO("attempts " << attempts << ", acknowledged " << acknowledged.size());
  CHECK(acknowledged.size() >= 20);
  for (int i = 0; i < 3; ++i) {
    HttpClient c("127.0.0.1", ports[i]);
    for (const auto& [tag, manifest] : acknowledged) {
      auto r = c.request("GET", "/v2/team/app/manifests/" + tag, {{"Accept", kAccept}});
      REQUIRE(r.isOk());
      CHECK(r->status == 200);
      CHECK(r->body == manifest);
    }
  }
  // And a layer of the last one, through the balancer.
  auto last = nlohmann::json::parse(acknowledged.rbegin()->second);
  auto blob = via.request("GET", "/v2/team/app/blobs/" + last["layers"][0]["digest"].get<std::string>());
  CHECK(blob->status == 200);
  CHECK(sha(blob->body) == last["layers"][0]["digest"]);

  // Real clients through the balancer (leastconn spreads their requests over the
  // replicas): skopeo pushes an image and a multi-arch index and pulls them back byte for
  // byte, podman pulls.
  TempDir work;
  auto layout = writeOciLayout(work / "src", "v1",
                               {ImageSpec{"amd64", {{{"a.txt", "alpha"}}, {{"big.bin", randomData(6 << 20, 31)}}}}});
  auto r = containerClient("skopeo copy --dest-tls-verify=false oci:" + work / "src" + ":v1 docker://" + lb + "/lb/app:v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = containerClient("skopeo copy --src-tls-verify=false docker://" + lb + "/lb/app:v1 oci:" + work / "back" + ":v1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const auto& b : layout.blobs) {
    std::string sent, got;
    REQUIRE(readFile(work / "src/blobs/sha256/" + b.substr(7), &sent).isOk());
    REQUIRE(readFile(work / "back/blobs/sha256/" + b.substr(7), &got).isOk());
    CHECK(sent == got);
  }
  auto index = writeOciLayout(work / "multi", "m", {ImageSpec{"amd64", {{{"f", "amd"}}}}, ImageSpec{"arm64", {{{"f", "arm"}}}}});
  r = containerClient("skopeo copy --all --dest-tls-verify=false oci:" + work / "multi" + ":m docker://" + lb + "/lb/multi:m");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = containerClient("skopeo inspect --raw --tls-verify=false docker://" + lb + "/lb/multi:m | sha256sum");
  REQUIRE(r.exit_code == 0);
  CHECK("sha256:" + r.output.substr(0, 64) == index.digest);
  std::string podman = "podman --root " + work / "root" + " --runroot " + work / "run" +
                       " --storage-driver vfs --events-backend file --cgroup-manager cgroupfs";
  r = containerClient(podman + " pull --tls-verify=false " + lb + "/lb/app:v1");
  INFO(r.output);
  CHECK(r.exit_code == 0);
}

TEST_CASE("scale-out: PostgreSQL down: 503 with Retry-After, nothing half-written; back: the core recovers by itself",
          "[pg][scale-out]") {
  if (!PostgresServer::available()) return;
  PostgresServer pg;  // its own, to stop
  CoreServer core("", {"--metadata", pg.freshDatabase()});
  HttpClient c("127.0.0.1", core.port());
  std::string before = pushImage(c, "team/app", "v1", randomData(5000, 11));

  pg.stop();
  auto m = c.request("GET", "/v2/team/app/manifests/v1", {{"Accept", kAccept}});
  REQUIRE(m.isOk());
  CHECK(m->status == 503);
  CHECK(m->header("retry-after") == "5");
  CHECK(m->body.find("UNAVAILABLE") != std::string::npos);
  std::string layer = randomData(4000, 12);
  auto push = c.request("POST", "/v2/team/app/blobs/uploads/?digest=" + sha(layer), {}, layer);
  CHECK(push->status == 503);
  auto tags = c.request("GET", "/v2/team/app/tags/list");
  CHECK(tags->status == 503);

  pg.start();
  REQUIRE(waitFor([&] { return c.request("GET", "/v2/team/app/manifests/v1", {{"Accept", kAccept}})->status == 200; },
                  20000));
  CHECK(c.request("GET", "/v2/team/app/manifests/v1", {{"Accept", kAccept}})->body == before);
  // The refused push left nothing: the blob is unknown until pushed again.
  CHECK(c.request("HEAD", "/v2/team/app/blobs/" + sha(layer))->status == 404);
  pushBlob(c, "team/app", layer);
  CHECK(c.request("HEAD", "/v2/team/app/blobs/" + sha(layer))->status == 200);
}

TEST_CASE("scale-out: a bad --metadata stops the core at start with a message that hides the password", "[pg][scale-out]") {
  TempDir dir;
  auto r = run({coreBinary(), "--data-dir", dir / "data", "--listen", "127.0.0.1:0", "--metadata",
                "postgres://wharf:s3cret@127.0.0.1:" + std::to_string(freePort()) + "/wharf"},
               30000);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("metadata") != std::string::npos);
  CHECK(r.output.find("s3cret") == std::string::npos);
  CHECK(r.output.find("***") != std::string::npos);
}

TEST_CASE("scale-out: wharfctl db migrate lists, then applies, the index's migrations", "[pg][scale-out][wharfctl]") {
  if (!PostgresServer::available()) return;
  std::string db = PostgresServer::shared().freshDatabase();
  auto dry = run({wharfctlBinary(), "db", "migrate", "--metadata", db, "--dry-run"});
  INFO(dry.output);
  CHECK(dry.exit_code == 0);
  CHECK(dry.output.find("version 0") != std::string::npos);
  CHECK(dry.output.find("would apply 1: the registry's index") != std::string::npos);
  auto applied = run({wharfctlBinary(), "db", "migrate", "--metadata", db});
  INFO(applied.output);
  CHECK(applied.exit_code == 0);
  CHECK(applied.output.find("applied 1:") != std::string::npos);
  auto again = run({wharfctlBinary(), "db", "migrate", "--metadata", db, "--dry-run"});
  CHECK(again.output.find("(current)") != std::string::npos);
  // A core starts on the migrated database as it is.
  CoreServer core("", {"--metadata", db});
  HttpClient c("127.0.0.1", core.port());
  CHECK(c.request("GET", "/v2/")->status == 200);
  auto bad = run({wharfctlBinary(), "db", "migrate"});
  CHECK(bad.exit_code == 2);
}

TEST_CASE("scale-out: wharfctl migrate moves an embedded installation to PostgreSQL and S3; run again, it finds "
          "everything there",
          "[pg][s3][scale-out][wharfctl]") {
  if (!haveEngines(true)) return;
  using nlohmann::json;
  TempDir data;
  std::map<std::string, std::string> manifests;  // repo:tag -> manifest
  std::string trust_gun;
  std::map<std::string, std::string> trust_files;  // what the embedded core served
  std::string layer = randomData(3 << 20, 71), layer2 = randomData(100000, 72);
  std::string index, referrer;
  {
    CoreServer embedded(data / "d");
    HttpClient c("127.0.0.1", embedded.port());
    manifests["team/app:v1"] = pushImage(c, "team/app", "v1", layer);
    manifests["team/app:v2"] = pushImage(c, "team/app", "v2", layer2);
    manifests["other/lib:latest"] = pushImage(c, "other/lib", "latest", layer);
    // An index of both images, and an artifact whose subject is v1 (a referrer).
    json idx = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests", json::array()}};
    for (const char* t : {"team/app:v1", "team/app:v2"}) {
      const std::string& m = manifests[t];
      idx["manifests"].push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                  {"digest", sha(m)},
                                  {"size", m.size()},
                                  {"platform", {{"architecture", t[13] == '1' ? "amd64" : "arm64"}, {"os", "linux"}}}});
    }
    index = idx.dump();
    auto put = c.request("PUT", "/v2/team/app/manifests/multi", {{"Content-Type", "application/vnd.oci.image.index.v1+json"}},
                         index);
    REQUIRE(put->status == 201);
    std::string empty = "{}";
    pushBlob(c, "team/app", empty);
    json art = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                {"artifactType", "application/vnd.example.sbom"},
                {"config", {{"mediaType", "application/vnd.oci.empty.v1+json"}, {"digest", sha(empty)}, {"size", 2}}},
                {"layers", json::array()},
                {"subject", {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"digest", sha(manifests["team/app:v1"])},
                             {"size", manifests["team/app:v1"].size()}}}};
    referrer = art.dump();
    put = c.request("PUT", "/v2/team/app/manifests/" + sha(referrer),
                    {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, referrer);
    REQUIRE(put->status == 201);
    REQUIRE(c.request("PUT", "/api/v1/policies/team/app", {{"Content-Type", "application/json"}},
                      R"({"immutable":["v1"]})")
                ->status == 200);
    // Trust data for team/app (root, targets and snapshot posted as the notary CLI makes
    // them, the timestamp the server's), published twice.
    trust_gun = embedded.address() + "/team/app";
    std::string base = "/v2/" + trust_gun + "/_trust/tuf/";
    auto ts_key = c.request("GET", base + "timestamp.key");
    REQUIRE(ts_key->status == 200);
    trust_files["timestamp.key"] = ts_key->body;
    int64_t now = RealClock::instance().nowMillis();
    TufKey root = tufRootKey(trust_gun, now), targets = tufEcdsaKey(), snapshot = tufEcdsaKey();
    std::string r1 = tufEnvelope(tufRootBody({&root}, targets.tuf, snapshot.tuf, json::parse(ts_key->body), 1), {&root});
    for (int v = 1; v <= 2; ++v) {
      std::string t = tufEnvelope(tufTargetsBody(v, {}, "2099-01-01T00:00:00Z"), {&targets});
      json meta = {{"root", tufFileMeta(r1)}, {"targets", tufFileMeta(t)}};
      std::string snap = tufEnvelope(
          {{"_type", "Snapshot"}, {"version", v}, {"expires", "2099-01-01T00:00:00Z"}, {"meta", meta}}, {&snapshot});
      std::map<std::string, std::string> parts = {{"targets", t}, {"snapshot", snap}};
      if (v == 1) parts["root"] = r1;
      auto posted = c.request("POST", base, {{"Content-Type", "multipart/form-data; boundary=BOUNDARY"}},
                              tufMultipart(parts));
      INFO(posted->body);
      REQUIRE(posted->status == 200);
      if (v == 1) trust_files["targets.1.json"] = t;
    }
    for (const char* f : {"root.json", "targets.json", "snapshot.json", "timestamp.json"}) {
      trust_files[f] = c.request("GET", base + f)->body;
    }
    CHECK(embedded.terminate() == 0);
  }
  // Accounts and access, made on the same installation with authentication on.
  const std::string admin_pw = "migrate-admin-password";
  std::string alice_token, bob_token, ldap_config, scan_v1, hook_id;
  json audit, events, jobs, deliveries;  // as the embedded core lists them
  ::setenv("WHARF_ADMIN_PASSWORD", admin_pw.c_str(), 1);
  HeaderList admin = {{"Authorization", basicAuthorization("admin", admin_pw)}, {"Content-Type", "application/json"}};
  {
    CoreServer embedded(data / "d", {"--auth", "token", "--webhook-allow-private", "true"});
    HttpClient c("127.0.0.1", embedded.port());
    for (auto [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"POST", "/api/v1/users", R"({"name":"alice","password":"alice-password-1"})"},
             {"POST", "/api/v1/orgs", R"({"name":"acme"})"},
             {"POST", "/api/v1/orgs/acme/teams", R"({"name":"builders"})"},
             {"PUT", "/api/v1/orgs/acme/teams/builders/members/alice", "{}"},
             {"PUT", "/api/v1/repositories/team/app/permissions/users/alice", R"({"role":"write"})"},
             {"POST", "/api/v1/webhooks",
              R"({"scope":"team/*","url":"http://127.0.0.1:9/hook","events":["manifest.push"],"secret":"hook-secret"})"}}) {
      auto r = c.request(method, path, admin, body);
      INFO(method << " " << path << ": " << r->body);
      REQUIRE(r->status / 100 == 2);
    }
    // A push the webhook tries to deliver (to a port where nothing listens): a delivery
    // record, and a cursor short of the log's end.
    auto push_token = c.request("GET", "/auth/token?service=wharf&scope=repository:team/app:pull,push",
                                {{"Authorization", basicAuthorization("admin", admin_pw)}});
    REQUIRE(push_token->status == 200);
    auto pushed = c.request("PUT", "/v2/team/app/manifests/v3",
                            {{"Content-Type", kAccept},
                             {"Authorization", "Bearer " + json::parse(push_token->body)["token"].get<std::string>()}},
                            manifests["team/app:v2"]);
    REQUIRE(pushed->status == 201);
    manifests["team/app:v3"] = manifests["team/app:v2"];
    hook_id = json::parse(c.request("GET", "/api/v1/webhooks", admin)->body)["webhooks"][0]["id"].get<std::string>();
    REQUIRE(waitFor(
        [&] {
          deliveries = json::parse(c.request("GET", "/api/v1/webhooks/" + hook_id + "/deliveries", admin)->body)["deliveries"];
          return !deliveries.empty();
        },
        30000));
    // Tokens of two readers; bob is deleted afterwards, which revokes his.
    REQUIRE(c.request("POST", "/api/v1/users", admin, R"({"name":"bob","password":"bob-password-12"})")->status == 201);
    REQUIRE(c.request("PUT", "/api/v1/repositories/team/app/permissions/users/bob", admin, R"({"role":"read"})")
                ->status / 100 == 2);
    auto tokenOf = [&](const std::string& user, const std::string& pw) {
      auto t = c.request("GET", "/auth/token?service=wharf&scope=repository:team/app:pull",
                         {{"Authorization", basicAuthorization(user, pw)}});
      REQUIRE(t->status == 200);
      return json::parse(t->body)["token"].get<std::string>();
    };
    alice_token = tokenOf("alice", "alice-password-1");
    bob_token = tokenOf("bob", "bob-password-12");
    REQUIRE(c.request("DELETE", "/api/v1/users/bob", admin)->status == 204);
    CHECK(c.request("GET", "/v2/team/app/manifests/v1", {{"Authorization", "Bearer " + bob_token}, {"Accept", kAccept}})
              ->status == 401);
    json directory = {{"url", "ldap://127.0.0.1:1"}, {"user_base", "dc=x"},           {"user_filter", "(uid={user})"},
                      {"bind_password", "directory-secret"}, {"enabled", false}};
    auto ldap = c.request("PUT", "/api/v1/ldap", admin, directory.dump());
    REQUIRE(ldap->status == 200);
    ldap_config = ldap->body;
    // A scan of v1, run to its end: completed, or failed (the layers are random bytes).
    auto scan = c.request("POST", "/api/v1/repositories/team/app/manifests/v1/scan", admin, "");
    INFO(scan->body);
    REQUIRE(scan->status == 202);
    bool scanned = waitFor(
        [&] {
          auto r = c.request("GET", "/api/v1/repositories/team/app/manifests/v1/scan", admin);
          scan_v1 = r->body;
          std::string status = json::parse(r->body).value("status", "");
          return r->status == 200 && (status == "completed" || status == "failed");
        },
        60000);
    INFO(scan_v1);
    REQUIRE(scanned);
    REQUIRE(waitFor([&] { return json::parse(c.request("GET", "/api/v1/jobs?state=queued", admin)->body)["items"].empty() &&
                                 json::parse(c.request("GET", "/api/v1/jobs?state=running", admin)->body)["items"].empty(); },
                    60000));
    audit = json::parse(c.request("GET", "/api/v1/audit?limit=1000", admin)->body)["items"];
    events = json::parse(c.request("GET", "/api/v1/events?limit=1000", admin)->body)["events"];
    jobs = json::parse(c.request("GET", "/api/v1/jobs?limit=100", admin)->body)["items"];
    CHECK(embedded.terminate() == 0);
  }
  REQUIRE(audit.size() >= 8);
  REQUIRE(events.size() >= 8);
  REQUIRE(jobs.size() >= 1);  // the scan
  std::string db = PostgresServer::shared().freshDatabase();
  std::string blobs = MicroCeph::shared().freshBlobsUrl();
  std::vector<std::string> cmd = {wharfctlBinary(), "migrate", "--from", data / "d", "--to", db, "--blobs", blobs};

  auto dry = run({wharfctlBinary(), "migrate", "--from", data / "d", "--to", db, "--blobs", blobs, "--dry-run"});
  INFO(dry.output);
  REQUIRE(dry.exit_code == 0);
  // 8 blobs: the config, three layers' worth ({} and two layers), four manifests (the
  // image in other/lib is v1's manifest, stored once).
  CHECK(dry.output.find("blobs: 8 to copy") != std::string::npos);
  auto first = run(cmd);
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  CHECK(first.output.find("blobs: 8 copied, digests checked") != std::string::npos);
  CHECK(first.output.find("2 repositories, 6 links, 5 manifests, 5 tags, 1 policies written") != std::string::npos);
  auto second = run(cmd);
  INFO(second.output);
  REQUIRE(second.exit_code == 0);
  CHECK(second.output.find("blobs: 0 copied, digests checked (0 B), 8 already there") != std::string::npos);

  CHECK(first.output.find("trust: 1 repositories, 7 metadata files, 1 server keys written") != std::string::npos);
  CHECK(first.output.find("webhooks: 1 written") != std::string::npos);
  // A core on the destination, with the installation's sealing key, serves it all, byte
  // for byte.
  CoreServer core("", {"--metadata", db, "--blobs", blobs, "--trust-key-file", data / "d/trust.key"});
  HttpClient c("127.0.0.1", core.port());
  // The trust data: every file as before, an older version by number, and the server's
  // own timestamp key (it opens with the sealing key).
  std::string tuf = "/v2/" + trust_gun + "/_trust/tuf/";
  for (const char* f : {"root.json", "targets.json", "snapshot.json", "timestamp.json", "timestamp.key"}) {
    auto got = c.request("GET", tuf + f);
    INFO(f << " " << got->body);
    CHECK(got->status == 200);
    CHECK(got->body == trust_files[f]);
  }
  CHECK(c.request("GET", tuf + "1.targets.json")->body == trust_files["targets.1.json"]);

  for (const auto& [ref, m] : manifests) {
    auto colon = ref.find(':');
    auto r = c.request("GET", "/v2/" + ref.substr(0, colon) + "/manifests/" + ref.substr(colon + 1), {{"Accept", kAccept}});
    REQUIRE(r.isOk());
    INFO(ref << " " << r->body);
    CHECK(r->status == 200);
    CHECK(r->body == m);
  }
  auto r = c.request("GET", "/v2/team/app/manifests/multi", {{"Accept", "application/vnd.oci.image.index.v1+json"}});
  CHECK(r->body == index);
  CHECK(c.request("GET", "/v2/team/app/blobs/" + sha(layer))->body == layer);
  CHECK(c.request("GET", "/v2/other/lib/blobs/" + sha(layer))->body == layer);
  CHECK(c.request("GET", "/v2/team/app/blobs/" + sha(layer2))->body == layer2);
  r = c.request("GET", "/v2/team/app/referrers/" + sha(manifests["team/app:v1"]));
  REQUIRE(r->status == 200);
  json refs = json::parse(r->body);
  REQUIRE(refs["manifests"].size() == 1);
  CHECK(refs["manifests"][0]["digest"] == sha(referrer));
  CHECK(refs["manifests"][0]["artifactType"] == "application/vnd.example.sbom");
  // The policy came along: v1 is immutable.
  r = c.request("PUT", "/v2/team/app/manifests/v1", {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                manifests["team/app:v2"]);
  CHECK(r->status == 403);

  // Accounts and access came along: alice logs in with her password, her team and grant.
  CHECK(first.output.find("access: 2 users, 0 access tokens, 1 organizations, 1 teams, 1 grants, 0 edges written") !=
        std::string::npos);
  CoreServer secured("", {"--metadata", db, "--blobs", blobs, "--auth", "token", "--trust-key-file",
                          data / "d/trust.key"});
  ::unsetenv("WHARF_ADMIN_PASSWORD");
  HttpClient cs("127.0.0.1", secured.port());
  // The webhook came along, with its secret (sealed again, with the same key).
  auto listed_hooks = cs.request("GET", "/api/v1/webhooks", admin);
  INFO(listed_hooks->body);
  auto hooks = json::parse(listed_hooks->body);
  REQUIRE(hooks["webhooks"].size() == 1);
  CHECK(hooks["webhooks"][0]["scope"] == "team/*");
  CHECK(hooks["webhooks"][0]["has_secret"] == true);
  auto login = cs.request("GET", "/auth/token?service=wharf&scope=repository:team/app:pull,push",
                          {{"Authorization", basicAuthorization("alice", "alice-password-1")}});
  REQUIRE(login.isOk());
  CHECK(login->status == 200);
  auto wrong = cs.request("GET", "/auth/token?service=wharf", {{"Authorization", basicAuthorization("alice", "nope-nope-1")}});
  CHECK(wrong->status == 401);
  r = cs.request("GET", "/api/v1/orgs/acme/teams/builders/members", admin);
  CHECK(json::parse(r->body)["items"] == json::array({"alice"}));
  r = cs.request("GET", "/api/v1/repositories/team/app/permissions", admin);
  REQUIRE(r->status == 200);
  json grants = json::parse(r->body)["items"];
  REQUIRE(grants.size() == 1);
  CHECK(grants[0]["name"] == "alice");
  CHECK(grants[0]["role"] == "write");

  // The token signing keys came along (a token the embedded core issued is good here),
  // and so did the revocations (bob's is not).
  HeaderList manifest_accept = {{"Accept", kAccept}};
  auto as = [&](const std::string& token) {
    HeaderList h = manifest_accept;
    h.push_back({"Authorization", "Bearer " + token});
    return cs.request("GET", "/v2/team/app/manifests/v1", h)->status;
  };
  CHECK(as(alice_token) == 200);
  CHECK(as(bob_token) == 401);
  // The directory's configuration (its bind password too: redacted in both answers).
  CHECK(cs.request("GET", "/api/v1/ldap", admin)->body == ldap_config);
  CHECK(first.output.find("settings: 1 settings") != std::string::npos);
  // The audit log, the event log and the jobs, under their numbers.
  auto moved_audit = json::parse(cs.request("GET", "/api/v1/audit?limit=" + std::to_string(audit.size()), admin)->body)["items"];
  CHECK(moved_audit == audit);
  auto moved_events = json::parse(cs.request("GET", "/api/v1/events?limit=" + std::to_string(events.size()), admin)->body)["events"];
  CHECK(moved_events == events);
  auto moved_jobs = json::parse(cs.request("GET", "/api/v1/jobs?limit=100", admin)->body)["items"];
  std::map<std::string, json> jobs_here;
  for (const auto& j : moved_jobs) jobs_here[j["id"].get<std::string>()] = j;
  for (const auto& j : jobs) {
    INFO(j.dump());
    REQUIRE(jobs_here.count(j["id"].get<std::string>()) == 1);
    CHECK(jobs_here[j["id"].get<std::string>()] == j);
  }
  auto job_log = cs.request("GET", "/api/v1/jobs/" + jobs[0]["id"].get<std::string>() + "/log", admin);
  CHECK(job_log->status == 200);
  // The scan result, as it was (not scanned again).
  CHECK(cs.request("GET", "/api/v1/repositories/team/app/manifests/v1/scan", admin)->body == scan_v1);
  // The webhook's delivery log came along (this core may have tried again since).
  auto moved_deliveries =
      json::parse(cs.request("GET", "/api/v1/webhooks/" + hook_id + "/deliveries?limit=100", admin)->body)["deliveries"];
  for (const auto& d : deliveries) {
    INFO(d.dump() << " in " << moved_deliveries.dump());
    CHECK(std::find(moved_deliveries.begin(), moved_deliveries.end(), d) != moved_deliveries.end());
  }
  CHECK(second.output.find("webhook deliveries: 0 records") != std::string::npos);
  // Run again, each part finds what it wrote and counts the same.
  auto line = [](const std::string& out, const std::string& head) {
    auto at = out.find("\n" + head);
    return at == std::string::npos ? std::string() : out.substr(at + 1, out.find('\n', at + 1) - at - 1);
  };
  for (const char* part : {"audit log: ", "jobs: ", "events: ", "scans: ", "settings: ", "usage: "}) {
    INFO(part);
    CHECK(!line(first.output, part).empty());
    CHECK(line(first.output, part) == line(second.output, part));
  }

  auto bad = run({wharfctlBinary(), "migrate", "--from", data / "d"});
  CHECK(bad.exit_code == 2);
  // The store migrate made has this version's layout already.
  auto layout = run({wharfctlBinary(), "blobstore", "upgrade", "--blobs", blobs});
  INFO(layout.output);
  CHECK(layout.exit_code == 0);
  CHECK(layout.output.find("already at layout 2") != std::string::npos);
  CHECK(run({wharfctlBinary(), "blobstore", "upgrade"}).exit_code == 2);

  // Into a database a core has used: its audit log has entries of its own (a refused
  // sign-in), which the installation's are not mixed with; the rest is moved.
  std::string used = PostgresServer::shared().freshDatabase();
  {
    CoreServer other("", {"--metadata", used, "--blobs", MicroCeph::shared().freshBlobsUrl(), "--auth", "token",
                          "--trust-key-file", data / "d/trust.key"});
    HttpClient co("127.0.0.1", other.port());
    CHECK(co.request("GET", "/auth/token?service=wharf", {{"Authorization", basicAuthorization("alice", "nope-nope-1")}})
              ->status == 401);
    CHECK(other.terminate() == 0);
  }
  auto mixed = run({wharfctlBinary(), "migrate", "--from", data / "d", "--to", used, "--blobs", blobs});
  INFO(mixed.output);
  CHECK(mixed.exit_code == 1);
  CHECK(mixed.output.find("the audit log not moved: audit entry 1 is another entry here") != std::string::npos);
  CHECK(line(mixed.output, "jobs: ") == line(first.output, "jobs: "));
  CHECK(line(mixed.output, "events: ") == line(first.output, "events: "));
}

}  // namespace scale_out_test
