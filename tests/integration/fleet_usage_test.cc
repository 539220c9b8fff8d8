// Edge reports and bandwidth against the real wharf-core: registered edges POST reports
// (a repeat, a gap, a new epoch, bad ones), and the usage API (JSON and CSV, per edge and
// for the fleet), the edge list's status, /metrics and wharfctl show the figures; they
// survive a hard kill of the core.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <sys/stat.h>

#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace fleet_usage_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

const char* kAdminPassword = "fleet-admin-password";

CoreServer authCore(const std::string& data_dir = "") {
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  return CoreServer(data_dir, {"--auth", "token"});
}

HttpResponse call(HttpClient& c, const std::string& method, const std::string& path, HeaderList headers,
                  const std::string& body = "") {
  if (!body.empty()) headers.push_back({"Content-Type", "application/json"});
  auto r = c.request(method, path, headers, body);
  REQUIRE(r.isOk());
  return *r;
}

HttpResponse admin(HttpClient& c, const std::string& method, const std::string& path, const json& body = nullptr,
                   HeaderList extra = {}) {
  extra.push_back({"Authorization", basicAuthorization("admin", kAdminPassword)});
  return call(c, method, path, extra, body.is_null() ? "" : body.dump());
}

json adminJson(HttpClient& c, const std::string& path) {
  auto r = admin(c, "GET", path);
  INFO(path << ": " << r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

// Adds and registers an edge; returns its credential.
std::string enroll(HttpClient& c, const std::string& name, const std::string& site) {
  auto r = admin(c, "POST", "/api/v1/edges", {{"name", name}, {"site", site}});
  INFO(r.body);
  REQUIRE(r.status == 201);
  std::string token = json::parse(r.body)["join_token"];
  r = call(c, "POST", "/api/v1/edges/register", {}, json({{"join_token", token}}).dump());
  INFO(r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body)["credential"];
}

HttpResponse post(HttpClient& c, const std::string& credential, const std::string& body) {
  return call(c, "POST", "/api/v1/edges/self/reports", {{"Authorization", "Bearer " + credential}}, body);
}

json repo(uint64_t requests, uint64_t hits, uint64_t served, uint64_t hit_bytes, uint64_t fetched,
          uint64_t prefetched = 0) {
  return {{"requests", requests}, {"hits", hits},         {"misses", requests - hits},
          {"served_bytes", served}, {"hit_bytes", hit_bytes}, {"fetched_bytes", fetched},
          {"prefetched_bytes", prefetched}};
}

json report(uint64_t seq, const std::string& epoch, json repos, json counters = json::object()) {
  return {{"seq", seq},
          {"epoch", epoch},
          {"time_ms", 1'767'225'600'000},
          {"version", "1.4.0"},
          {"uptime_s", 60 * seq},
          {"cache", {{"used", 1000}, {"budget", 10000}, {"blobs", 3}, {"pinned_bytes", 100}, {"fills_in_flight", 1}}},
          {"counters", counters},
          {"repos", repos}};
}

json accepted(HttpClient& c, const std::string& credential, const json& body) {
  auto r = post(c, credential, body.dump());
  INFO(r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

json rowNamed(const json& rows, const char* key, const std::string& value) {
  for (const auto& row : rows) {
    if (row.value(key, json()) == value) return row;
  }
  return nullptr;
}

json edgeNamed(HttpClient& c, const std::string& name) {
  return rowNamed(adminJson(c, "/api/v1/edges")["edges"], "name", name);
}

std::string errorMessage(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "";
  return j["errors"][0].value("message", "");
}

// The value of one sample line of the exposition text ("name{labels}"); -1 when absent.
double sample(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::atof(text.c_str() + at + series.size() + 2);
}

}  // namespace

TEST_CASE("fleet usage: reports become per-edge and fleet figures, status and metrics", "[fleet][edges]") {
  TempDir dir;
  std::string data = dir / "data";
  CoreServer core = authCore(data);
  HttpClient c("127.0.0.1", core.port());
  std::string a = enroll(c, "site-a", "Site A");
  std::string b = enroll(c, "site-b", "Site, B");
  auto r = admin(c, "POST", "/api/v1/edges", {{"name", "site-c"}, {"site", "Site C"}});
  REQUIRE(r.status == 201);

  struct stat st {};
  REQUIRE(::stat((data + "/usage.lmdb").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // Before any report: the state says so.
  json e = edgeNamed(c, "site-a");
  CHECK(e["state"] == "registered");
  CHECK(e["status"]["state"] == "never");
  CHECK(e["status"]["last_report"].is_null());

  json r1 = report(1, "ep1", {{"team/app", repo(10, 8, 1000, 800, 200)}, {"team/lib", repo(1, 0, 50, 0, 50)}},
                   {{"stale_serves", 1}, {"errors", {{"upstream", 2}}}});
  CHECK(accepted(c, a, r1) == json({{"seq", 1}, {"duplicate", false}}));
  CHECK(accepted(c, a, r1) == json({{"seq", 1}, {"duplicate", true}}));
  // seq 2 was lost: 3 carries everything since 1.
  json r3 = report(3, "ep1", {{"team/app", repo(30, 25, 4000, 3500, 500, 100)}, {"team/lib", repo(1, 0, 50, 0, 50)}},
                   {{"stale_serves", 3}, {"errors", {{"upstream", 2}, {"verify", 1}}}});
  CHECK(accepted(c, a, r3) == json({{"seq", 3}, {"duplicate", false}}));
  CHECK(accepted(c, a, report(2, "ep1", json::object())) == json({{"seq", 3}, {"duplicate", true}}));
  CHECK(accepted(c, b, report(1, "b1", {{"team/app", repo(5, 0, 500, 0, 500)}}))["duplicate"] == false);

  SECTION("bad reports and callers are refused with a clear answer") {
    r = post(c, a, "not json");
    CHECK(r.status == 400);
    r = post(c, a, R"({"epoch":"x"})");
    CHECK(r.status == 400);
    CHECK(errorMessage(r).find("seq") != std::string::npos);
    r = post(c, a, report(9, "ep1", {{"Bad Repo", repo(1, 1, 1, 1, 0)}}).dump());
    CHECK(r.status == 400);
    CHECK(errorMessage(r).find("repos") != std::string::npos);
    r = post(c, a, report(9, "ep1", {{"team/app", {{"served_bytes", -5}}}}).dump());
    CHECK(r.status == 400);
    CHECK(errorMessage(r).find("served_bytes") != std::string::npos);
    r = post(c, a, report(9, "bad epoch!", json::object()).dump());
    CHECK(r.status == 400);
    r = post(c, "wharf_edge_nope", r1.dump());
    CHECK(r.status == 401);
    CHECK(r.header("www-authenticate").find("wharf-edge") != std::string::npos);
    r = call(c, "POST", "/api/v1/edges/self/reports", {{"Authorization", basicAuthorization("admin", kAdminPassword)}},
             r1.dump());
    CHECK(r.status == 401);
    r = call(c, "GET", "/api/v1/edges/self/reports", {{"Authorization", "Bearer " + a}});
    CHECK(r.status == 405);
    // Nothing of that counted.
    CHECK(adminJson(c, "/api/v1/edges/site-a/usage")["totals"]["served_bytes"] == 4050);

    CHECK(admin(c, "GET", "/api/v1/edges/site-a/usage?by=edge").status == 400);
    CHECK(admin(c, "GET", "/api/v1/fleet/usage?by=week").status == 400);
    r = admin(c, "GET", "/api/v1/fleet/usage?from=yesterday");
    CHECK(r.status == 400);
    CHECK(errorMessage(r).find("from") != std::string::npos);
    CHECK(admin(c, "GET", "/api/v1/fleet/usage?from=1h&to=2h").status == 400);
    CHECK(admin(c, "GET", "/api/v1/fleet/usage?format=xml").status == 400);
    CHECK(admin(c, "GET", "/api/v1/fleet/usage?by=hour&resolution=day").status == 400);
    CHECK(admin(c, "GET", "/api/v1/edges/site-z/usage").status == 404);
    CHECK(admin(c, "GET", "/api/v1/fleet/other").status == 404);
    CHECK(call(c, "GET", "/api/v1/fleet/usage", {}).status == 401);
    CHECK(call(c, "GET", "/api/v1/fleet/usage", {{"Authorization", "Bearer " + a}}).status == 401);
    REQUIRE(admin(c, "POST", "/api/v1/users", {{"name", "dev"}, {"password", "dev-password-1"}}).status == 201);
    CHECK(call(c, "GET", "/api/v1/fleet/usage", {{"Authorization", basicAuthorization("dev", "dev-password-1")}}).status ==
          403);
  }

  SECTION("per edge and fleet figures, JSON and CSV") {
    json u = adminJson(c, "/api/v1/edges/site-a/usage?by=repo&from=7d");
    CHECK(u["edge"] == "site-a");
    CHECK(u["by"] == "repo");
    CHECK(u["resolution"] == "day");
    REQUIRE(u["rows"].size() == 2);
    json app = u["rows"][0];  // largest served first
    CHECK(app["repository"] == "team/app");
    CHECK(app["requests"] == 30);
    CHECK(app["hits"] == 25);
    CHECK(app["misses"] == 5);
    CHECK(app["served_bytes"] == 4000);
    CHECK(app["hit_bytes"] == 3500);
    CHECK(app["fetched_bytes"] == 500);
    CHECK(app["prefetched_bytes"] == 100);
    CHECK(app["saved_bytes"] == 3400);
    CHECK(app["hit_ratio"].get<double>() == Approx(0.875));
    json lib = u["rows"][1];
    CHECK(lib["repository"] == "team/lib");
    CHECK(lib["saved_bytes"] == 0);
    CHECK(lib["hit_ratio"].get<double>() == 0);
    json t = u["totals"];
    CHECK(t["served_bytes"] == 4050);
    CHECK(t["saved_bytes"] == 3400);
    CHECK(t["stale_serves"] == 3);
    CHECK(t["errors"] == json({{"upstream", 2}, {"verify", 1}}));

    // by=hour: every hour of the last 24 (25 buckets: the current one is partial).
    // (Summed: the reports and the query may straddle the turn of an hour or a day.)
    auto served = [](const json& rows) {
      uint64_t n = 0;
      for (const auto& row : rows) n += row["served_bytes"].get<uint64_t>();
      return n;
    };
    u = adminJson(c, "/api/v1/edges/site-a/usage?by=hour");
    CHECK(u["rows"].size() >= 24);
    CHECK(u["rows"].size() <= 25);
    CHECK(served(u["rows"]) == 4050);
    CHECK(u["rows"][0]["served_bytes"] == 0);
    CHECK(u["rows"][0]["hit_ratio"].is_null());

    u = adminJson(c, "/api/v1/fleet/usage?by=edge&from=30d");
    REQUIRE(u["rows"].size() == 2);
    CHECK(u["rows"][0]["edge"] == "site-a");
    CHECK(u["rows"][0]["site"] == "Site A");
    CHECK(u["rows"][0]["served_bytes"] == 4050);
    CHECK(u["rows"][1]["edge"] == "site-b");
    CHECK(u["rows"][1]["served_bytes"] == 500);
    CHECK(u["totals"]["served_bytes"] == 4550);
    CHECK(u["totals"]["fetched_bytes"] == 1050);
    u = adminJson(c, "/api/v1/fleet/usage?by=site");
    CHECK(rowNamed(u["rows"], "site", "Site, B")["served_bytes"] == 500);
    CHECK(rowNamed(u["rows"], "site", "Site A")["edges"] == 1);
    u = adminJson(c, "/api/v1/fleet/usage?by=repo");
    CHECK(rowNamed(u["rows"], "repository", "team/app")["served_bytes"] == 4500);
    u = adminJson(c, "/api/v1/fleet/usage?by=day&from=2d");
    CHECK(u["rows"].size() == 3);
    CHECK(served(u["rows"]) == 4550);
    // Over time for one site (its edges) or one repository (the web UI's charts).
    u = adminJson(c, "/api/v1/fleet/usage?by=hour&site=Site%2C%20B");
    CHECK(served(u["rows"]) == 500);
    u = adminJson(c, "/api/v1/fleet/usage?by=day&from=2d&repository=team/app");
    CHECK(served(u["rows"]) == 4500);
    CHECK(u["totals"]["served_bytes"] == 4500);
    u = adminJson(c, "/api/v1/edges/site-a/usage?by=hour&repository=team/lib");
    CHECK(served(u["rows"]) == 50);
    CHECK(admin(c, "GET", "/api/v1/fleet/usage?site=nowhere").status == 404);
    CHECK(admin(c, "GET", "/api/v1/fleet/usage?repository=..%2Fx").status == 400);
    CHECK(admin(c, "GET", "/api/v1/edges/site-a/usage?site=Site%20A").status == 400);

    r = admin(c, "GET", "/api/v1/edges/site-a/usage?by=repo&format=csv");
    REQUIRE(r.status == 200);
    CHECK(r.header("content-type").find("text/csv") == 0);
    CHECK(r.body ==
          "repository,requests,hits,misses,served_bytes,hit_bytes,fetched_bytes,prefetched_bytes,prefetch_used_bytes,"
          "prefetch_wasted_bytes,saved_bytes,hit_ratio\r\n"
          "team/app,30,25,5,4000,3500,500,100,0,0,3400,0.875\r\n"
          "team/lib,1,0,1,50,0,50,0,0,0,0,0\r\n");
    r = admin(c, "GET", "/api/v1/fleet/usage?by=site", nullptr, {{"Accept", "text/csv"}});
    REQUIRE(r.status == 200);
    CHECK(r.body.rfind("site,edges,requests,", 0) == 0);
    CHECK(r.body.find("\"Site, B\",1,5,0,5,500,0,500,0,0,0,0,0\r\n") != std::string::npos);
  }

  SECTION("the edge list's status, /metrics, a new epoch, removal") {
    json s = edgeNamed(c, "site-a")["status"];
    CHECK(s["state"] == "online");
    CHECK(s["version"] == "1.4.0");
    CHECK(s["uptime_s"] == 180);
    CHECK(s["cache"] == json({{"used", 1000}, {"budget", 10000}, {"blobs", 3}, {"pinned_bytes", 100}}));
    CHECK(s["fills_in_flight"] == 1);
    CHECK(s["draining"] == false);
    CHECK(s["last_report"].is_string());
    CHECK(s["last_24h"]["served_bytes"] == 4050);
    CHECK(s["last_24h"]["saved_bytes"] == 3400);
    CHECK(s["last_24h"]["hit_ratio"].get<double>() == Approx(3500.0 / 4050));
    CHECK(s["last_24h"]["stale_serves"] == 3);
    CHECK(s["last_24h"]["errors"] == json({{"upstream", 2}, {"verify", 1}}));
    CHECK(edgeNamed(c, "site-c")["status"]["state"] == "never");
    json one = adminJson(c, "/api/v1/edges/site-b");
    CHECK(one["status"]["state"] == "online");
    CHECK(one["status"]["last_24h"]["served_bytes"] == 500);

    auto m = c.request("GET", "/metrics");
    REQUIRE(m.isOk());
    std::string text = m->body;
    CHECK(sample(text, "wharf_edge_bytes_served_total{edge=\"site-a\",source=\"cache\"}") == 3500);
    CHECK(sample(text, "wharf_edge_bytes_served_total{edge=\"site-a\",source=\"upstream\"}") == 550);
    CHECK(sample(text, "wharf_edge_bytes_fetched_total{edge=\"site-a\",purpose=\"client\"}") == 550);
    CHECK(sample(text, "wharf_edge_bytes_fetched_total{edge=\"site-a\",purpose=\"prefetch\"}") == 100);
    CHECK(sample(text, "wharf_edge_requests_total{edge=\"site-a\",result=\"hit\"}") == 25);
    CHECK(sample(text, "wharf_edge_requests_total{edge=\"site-a\",result=\"miss\"}") == 6);
    CHECK(sample(text, "wharf_edge_errors_total{edge=\"site-a\",kind=\"verify\"}") == 1);
    CHECK(sample(text, "wharf_edge_stale_serves_total{edge=\"site-a\"}") == 3);
    CHECK(sample(text, "wharf_edge_cache_used_bytes{edge=\"site-b\"}") == 1000);
    CHECK(sample(text, "wharf_edge_last_report_timestamp_seconds{edge=\"site-a\"}") > 1.7e9);
    CHECK(sample(text, "wharf_edge_bytes_served_total{edge=\"site-c\",source=\"cache\"}") == -1);
    CHECK(sample(text, "wharf_edge_report_seconds_count") >= 5);

    // The edge lost its counter state: a new epoch counts from zero.
    CHECK(accepted(c, a, report(1, "ep2", {{"team/app", repo(1, 1, 100, 100, 0)}}))["duplicate"] == false);
    CHECK(adminJson(c, "/api/v1/edges/site-a/usage?by=day")["totals"]["served_bytes"] == 4150);
    text = c.request("GET", "/metrics")->body;
    CHECK(sample(text, "wharf_edge_bytes_served_total{edge=\"site-a\",source=\"cache\"}") == 3600);

    // Removal drops the status; the fleet keeps what the edge served.
    REQUIRE(admin(c, "DELETE", "/api/v1/edges/site-a").status == 204);
    CHECK(post(c, a, report(2, "ep2", json::object()).dump()).status == 401);
    json u = adminJson(c, "/api/v1/fleet/usage?by=edge");
    CHECK(rowNamed(u["rows"], "edge", "site-a")["site"].is_null());
    CHECK(u["totals"]["served_bytes"] == 4650);
    text = c.request("GET", "/metrics")->body;
    CHECK(sample(text, "wharf_edge_bytes_served_total{edge=\"site-a\",source=\"cache\"}") == -1);
    a = enroll(c, "site-a", "Site A");
    CHECK(edgeNamed(c, "site-a")["status"]["state"] == "never");
  }

  SECTION("acknowledged reports survive a hard kill") {
    core.kill9();
    CoreServer again = authCore(data);
    HttpClient c2("127.0.0.1", again.port());
    CHECK(adminJson(c2, "/api/v1/edges/site-a/usage")["totals"]["served_bytes"] == 4050);
    CHECK(accepted(c2, a, r3) == json({{"seq", 3}, {"duplicate", true}}));
    CHECK(edgeNamed(c2, "site-a")["status"]["state"] == "online");
  }
}

TEST_CASE("fleet usage: wharfctl edge ls and edge report", "[fleet][wharfctl]") {
  CoreServer core = authCore();
  HttpClient c("127.0.0.1", core.port());
  std::string a = enroll(c, "site-a", "Site A");
  REQUIRE(admin(c, "POST", "/api/v1/edges", {{"name", "site-p"}, {"site", "Site P"}}).status == 201);
  accepted(c, a, report(1, "ep1", {{"team/app", repo(4, 3, 3 << 20, 2 << 20, 1 << 20)}}));

  TempDir home;
  std::string cfg = home / "wharfctl.json";
  auto ctl = [&](const std::string& args) { return shell(wharfctlBinary() + " --config " + cfg + " " + args + " 2>&1"); };
  auto r = shell("echo " + std::string(kAdminPassword) + " | " + wharfctlBinary() + " --config " + cfg + " login " +
                 core.url() + " -u admin --password-stdin 2>&1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(ctl("edge report --help").output.find("--by") != std::string::npos);

  r = ctl("edge ls");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const char* title : {"NAME", "SITE", "STATE", "LAST SEEN", "VERSION", "CACHE", "HIT RATIO", "SAVED"}) {
    CHECK(r.output.find(title) != std::string::npos);
  }
  CHECK(r.output.find("online") != std::string::npos);
  CHECK(r.output.find("pending") != std::string::npos);
  CHECK(r.output.find("1000 B/9.8 KiB") != std::string::npos);
  CHECK(r.output.find("66.7%") != std::string::npos);
  CHECK(r.output.find("2.0 MiB") != std::string::npos);

  r = ctl("edge report site-a --since 7d --by repo");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("team/app") != std::string::npos);
  CHECK(r.output.find("TOTAL") != std::string::npos);
  CHECK(r.output.find("3.0 MiB") != std::string::npos);
  r = ctl("edge report --by site --csv");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.rfind("site,edges,requests", 0) == 0);
  CHECK(r.output.find("Site A,1,4,3,") != std::string::npos);
  r = ctl("edge report site-a --by edge");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("400") != std::string::npos);
}

}  // namespace fleet_usage_test
