// The job system against the real wharf-core: upload-purge through the API, logs and
// their Server-Sent Events stream, cancel, kill -9 and SIGTERM during a job then retry,
// schedules, administrators only, audit, and wharfctl job / schedule.
//
// Slow jobs use the `sleep` kind, which the core registers only when its environment
// has WHARF_TEST_JOBS=1 (set here before each core starts).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace jobs_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

const char* kAdminPassword = "jobs-admin-password";

HttpResponse call(HttpClient& c, const std::string& method, const std::string& path, const json& body = nullptr,
                  HeaderList headers = {}) {
  std::string b;
  if (!body.is_null()) {
    headers.push_back({"Content-Type", "application/json"});
    b = body.dump();
  }
  auto r = c.request(method, path, headers, b);
  REQUIRE(r.isOk());
  return *r;
}

HeaderList adminAuth() { return {{"Authorization", basicAuthorization("admin", kAdminPassword)}}; }

json body(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  INFO(r.body);
  REQUIRE(!j.is_discarded());
  return j;
}

std::string errorMessage(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "(no error body: " + r.body + ")";
  return j["errors"][0].value("message", "");
}

// Submits a job (open core) and returns its id.
std::string submit(HttpClient& c, const std::string& kind, const json& params, const HeaderList& auth = {}) {
  auto r = call(c, "POST", "/api/v1/jobs", {{"kind", kind}, {"params", params}}, auth);
  INFO(r.body);
  REQUIRE(r.status == 202);
  std::string id = body(r)["id"].get<std::string>();
  CHECK(r.header("location") == "/api/v1/jobs/" + id);
  return id;
}

json job(HttpClient& c, const std::string& id, const HeaderList& auth = {}) {
  auto r = call(c, "GET", "/api/v1/jobs/" + id, nullptr, auth);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return body(r);
}

bool reaches(HttpClient& c, const std::string& id, const std::string& state, const HeaderList& auth = {},
             int deadline_ms = 15000) {
  return waitFor([&] { return job(c, id, auth)["state"] == state; }, deadline_ms);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("jobs: upload-purge through the API, its log, listing and bad input", "[jobs]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());

  // The configuration's schedule is there.
  auto r = call(c, "GET", "/api/v1/schedules");
  REQUIRE(r.status == 200);
  json items = body(r)["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["name"] == "upload-purge");
  CHECK(items[0]["cron"] == "@every 1h");
  CHECK(items[0]["params"] == json{{"max_age", "1d"}});
  CHECK(items[0]["origin"] == "config");

  // A stale upload, purged by a job with max_age 0.
  r = call(c, "POST", "/v2/stale/app/blobs/uploads/");
  REQUIRE(r.status == 202);
  std::string upload = r.header("location");
  std::string id = submit(c, "upload-purge", {{"max_age", 0}});
  REQUIRE(reaches(c, id, "succeeded"));
  json j = job(c, id);
  CHECK(j["result"]["removed"] == 1);
  CHECK(j["actor"] == "anonymous");
  CHECK(j["kind"] == "upload-purge");
  CHECK_FALSE(j["finished_at"].is_null());
  CHECK(call(c, "GET", upload).status == 404);

  r = call(c, "GET", "/api/v1/jobs/" + id + "/log");
  REQUIRE(r.status == 200);
  json log = body(r);
  CHECK(log["finished"] == true);
  CHECK(log["state"] == "succeeded");
  std::string lines;
  for (const auto& l : log["items"]) lines += l["line"].get<std::string>() + "\n";
  CHECK(contains(lines, "removed 1 stale upload(s)"));
  CHECK(contains(lines, "job succeeded"));
  r = call(c, "GET", "/api/v1/jobs/" + std::to_string(std::stoi(id)) + "/log?after=1");  // "1" is "0000000001"
  CHECK(body(r)["items"].size() == log["items"].size() - 1);

  // Newest first, in pages.
  std::vector<std::string> ids = {id};
  for (int i = 0; i < 3; ++i) ids.push_back(submit(c, "upload-purge", {{"max_age", "1h"}}));
  r = call(c, "GET", "/api/v1/jobs?limit=2");
  json page = body(r);
  REQUIRE(page["items"].size() == 2);
  CHECK(page["items"][0]["id"] == ids[3]);
  REQUIRE(page.contains("next"));
  r = call(c, "GET", "/api/v1/jobs?limit=2&before=" + page["next"].get<std::string>());
  json page2 = body(r);
  REQUIRE(page2["items"].size() == 2);
  CHECK(page2["items"][1]["id"] == ids[0]);
  CHECK_FALSE(page2.contains("next"));
  r = call(c, "GET", "/api/v1/jobs?kind=upload-purge&state=succeeded&actor=anonymous&limit=1");
  CHECK(body(r)["items"].size() == 1);
  CHECK(body(call(c, "GET", "/api/v1/jobs?kind=ldap-sync"))["items"].empty());

  // Bad input is a 400 that says what is wrong.
  r = call(c, "GET", "/api/v1/jobs?state=done");
  CHECK(r.status == 400);
  CHECK(contains(errorMessage(r), "queued, running"));
  r = call(c, "POST", "/api/v1/jobs", {{"kind", "nope"}});
  CHECK(r.status == 400);
  CHECK(contains(errorMessage(r), "unknown job kind \"nope\""));
  r = call(c, "POST", "/api/v1/jobs", {{"kind", "upload-purge"}, {"params", {{"max_age", "soon"}}}});
  CHECK(r.status == 400);
  CHECK(contains(errorMessage(r), "max_age"));
  CHECK(call(c, "POST", "/api/v1/jobs", {{"kind", "upload-purge"}, {"colour", 1}}).status == 400);
  CHECK(call(c, "POST", "/api/v1/jobs", json::array()).status == 400);
  CHECK(call(c, "GET", "/api/v1/jobs/abc").status == 404);
  CHECK(call(c, "GET", "/api/v1/jobs/424242").status == 404);
  CHECK(call(c, "DELETE", "/api/v1/jobs").status == 405);
  r = call(c, "POST", "/api/v1/jobs/" + id + "/retry");
  CHECK(r.status == 409);  // it succeeded
  CHECK(call(c, "POST", "/api/v1/jobs/" + id + "/cancel").status == 409);
  r = call(c, "GET", "/api/v1/jobs/kinds");
  CHECK(contains(r.body, "upload-purge"));
  CHECK(contains(r.body, "ldap-sync"));
  CHECK_FALSE(contains(r.body, "\"sleep\""));  // test kinds only with WHARF_TEST_JOBS=1

  CHECK(contains(call(c, "GET", "/metrics").body, "wharf_jobs_total{kind=\"upload-purge\",state=\"succeeded\"}"));
}

TEST_CASE("jobs: schedules CRUD, validation, and a schedule that fires", "[jobs]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  auto r = call(c, "PUT", "/api/v1/schedules/nightly",
                {{"cron", "30 3 * * *"}, {"kind", "upload-purge"}, {"params", {{"max_age", "12h"}}}});
  INFO(r.body);
  REQUIRE(r.status == 201);
  json s = body(r);
  CHECK(s["cron"] == "30 3 * * *");
  CHECK(s["origin"] == "api");
  CHECK(s["enabled"] == true);
  CHECK(contains(s["next_run"].get<std::string>(), "T03:30:00Z"));
  r = call(c, "PUT", "/api/v1/schedules/nightly",
           {{"cron", "30 3 * * *"}, {"kind", "upload-purge"}, {"params", {{"max_age", "12h"}}}, {"enabled", false}});
  CHECK(r.status == 200);
  s = body(call(c, "GET", "/api/v1/schedules/nightly"));
  CHECK(s["enabled"] == false);
  CHECK(s["next_run"].is_null());
  CHECK(body(call(c, "GET", "/api/v1/schedules"))["items"].size() == 2);  // and upload-purge

  r = call(c, "PUT", "/api/v1/schedules/x", {{"cron", "61 * * * *"}, {"kind", "upload-purge"}});
  CHECK(r.status == 400);
  CHECK(contains(errorMessage(r), "minute \"61\""));
  r = call(c, "PUT", "/api/v1/schedules/x", {{"cron", "0 0 * * mon-xyz"}, {"kind", "upload-purge"}});
  CHECK(r.status == 400);
  CHECK(contains(errorMessage(r), "day-of-week"));
  r = call(c, "PUT", "/api/v1/schedules/x", {{"kind", "upload-purge"}});
  CHECK(r.status == 400);
  CHECK(contains(errorMessage(r), "cron is required"));
  r = call(c, "PUT", "/api/v1/schedules/x", {{"cron", "@daily"}, {"kind", "nope"}});
  CHECK(r.status == 400);
  CHECK(contains(errorMessage(r), "unknown job kind"));
  r = call(c, "PUT", "/api/v1/schedules/x", {{"cron", "@daily"}, {"kind", "upload-purge"}});
  CHECK(r.status == 400);  // upload-purge needs max_age
  CHECK(contains(errorMessage(r), "max_age"));
  CHECK(call(c, "PUT", "/api/v1/schedules/Bad%20Name", {{"cron", "@daily"}, {"kind", "ldap-sync"}}).status == 400);
  CHECK(call(c, "PUT", "/api/v1/schedules/x", {{"cron", "@daily"}, {"kind", "ldap-sync"}, {"enabled", "yes"}}).status ==
        400);
  CHECK(call(c, "GET", "/api/v1/schedules/x").status == 404);

  CHECK(call(c, "DELETE", "/api/v1/schedules/nightly").status == 204);
  CHECK(call(c, "GET", "/api/v1/schedules/nightly").status == 404);
  CHECK(call(c, "DELETE", "/api/v1/schedules/nightly").status == 404);

  // A schedule that fires every second submits jobs as schedule:<name>.
  REQUIRE(call(c, "PUT", "/api/v1/schedules/fast",
               {{"cron", "@every 1s"}, {"kind", "upload-purge"}, {"params", {{"max_age", "1h"}}}})
              .status == 201);
  CHECK(waitFor([&] {
    json page = body(call(c, "GET", "/api/v1/jobs?actor=schedule:fast&state=succeeded"));
    return page["items"].size() >= 2;
  }));
  s = body(call(c, "GET", "/api/v1/schedules/fast"));
  CHECK_FALSE(s["last_job"].is_null());
  CHECK_FALSE(s["last_run"].is_null());
}

TEST_CASE("jobs: cancel, the log as Server-Sent Events, kill -9 and SIGTERM mid-job run it again, retry",
          "[jobs]") {
  ::setenv("WHARF_TEST_JOBS", "1", 1);
  TempDir data;
  std::string running_id;
  {
    CoreServer core(data / "d", {"--job-workers", "1"});
    HttpClient c("127.0.0.1", core.port());
    // One runner thread: the second job waits, and is cancelled at once.
    std::string a = submit(c, "sleep", {{"seconds", 60}});
    REQUIRE(reaches(c, a, "running"));
    std::string b = submit(c, "sleep", {{"seconds", 60}});
    CHECK(job(c, b)["state"] == "queued");
    auto r = call(c, "POST", "/api/v1/jobs/" + b + "/cancel");
    CHECK(r.status == 200);
    CHECK(body(r)["state"] == "cancelled");
    // A running job is asked to stop, then ends as cancelled.
    r = call(c, "POST", "/api/v1/jobs/" + a + "/cancel");
    CHECK(r.status == 200);
    CHECK(body(r)["cancel_requested"] == true);
    REQUIRE(reaches(c, a, "cancelled"));
    CHECK(job(c, a)["error"] == "cancelled by anonymous");

    // The log followed as SSE, from a job still running to its end.
    std::string f = submit(c, "sleep", {{"seconds", 1.2}});
    REQUIRE(reaches(c, f, "running"));
    HttpClient follower("127.0.0.1", core.port());
    r = call(follower, "GET", "/api/v1/jobs/" + f + "/log?follow=1");
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "text/event-stream");
    CHECK(contains(r.body, "id: 1\ndata: {"));
    CHECK(contains(r.body, "\"line\":\"step 20 of 24\""));  // written a second after the start
    CHECK(contains(r.body, "\"line\":\"job succeeded\""));
    auto end = r.body.find("event: end\ndata: ");
    REQUIRE(end != std::string::npos);
    json last = json::parse(r.body.substr(end + 17, r.body.find('\n', end + 17) - end - 17), nullptr, false);
    CHECK(last["state"] == "succeeded");
    CHECK(last["id"] == f);
    // Resumed after Last-Event-ID: only the later lines.
    r = call(follower, "GET", "/api/v1/jobs/" + f + "/log?follow=1", nullptr, {{"Last-Event-ID", "2"}});
    CHECK_FALSE(contains(r.body, "id: 1\n"));
    CHECK_FALSE(contains(r.body, "id: 2\n"));
    CHECK(contains(r.body, "id: 3\n"));
    CHECK(contains(r.body, "event: end"));

    // Killed while a job runs.
    running_id = submit(c, "sleep", {{"seconds", 300}});
    REQUIRE(reaches(c, running_id, "running"));
    core.kill9();
  }
  {
    // The job runs again at the next start (run 2 of 3), and its log says why.
    CoreServer core(data / "d", {"--job-workers", "1"});
    HttpClient c("127.0.0.1", core.port());
    REQUIRE(reaches(c, running_id, "running"));
    json j = job(c, running_id);
    CHECK(j["runs"] == 2);
    CHECK(j["runner"].is_string());
    json log = body(call(c, "GET", "/api/v1/jobs/" + running_id + "/log"));
    bool said = false;
    for (const auto& l : log["items"]) said = said || l["line"] == "interrupted by a restart; queued again (run 2 of 3)";
    CHECK(said);
    // A clean stop interrupts it too: it runs again at the start after (run 3 of 3).
    CHECK(core.terminate() == 0);
  }
  {
    CoreServer core(data / "d", {"--job-workers", "1"});
    HttpClient c("127.0.0.1", core.port());
    REQUIRE(reaches(c, running_id, "running"));
    CHECK(job(c, running_id)["runs"] == 3);
    core.kill9();
  }
  {
    // Three runs spent: failed as interrupted, and retryable by hand.
    CoreServer core(data / "d", {"--job-workers", "1"});
    HttpClient c("127.0.0.1", core.port());
    json j = job(c, running_id);
    CHECK(j["state"] == "failed");
    CHECK(j["interrupted"] == true);
    CHECK(j["error"] == "interrupted by a restart (3 runs)");
    auto r = call(c, "GET", "/api/v1/jobs?state=failed");
    CHECK(body(r)["items"][0]["id"] == running_id);
    r = call(c, "POST", "/api/v1/jobs/" + running_id + "/retry");
    INFO(r.body);
    REQUIRE(r.status == 202);
    std::string retry_id = body(r)["id"].get<std::string>();
    CHECK(body(r)["retry_of"] == running_id);
    REQUIRE(reaches(c, retry_id, "running"));
    json retried = job(c, retry_id);
    CHECK(retried["retry_of"] == running_id);
    CHECK(retried["params"] == json{{"seconds", 300}});
    CHECK(retried["runs"] == 1);
  }
  ::unsetenv("WHARF_TEST_JOBS");
}

TEST_CASE("jobs: administrators only, audited; wharfctl job and schedule", "[jobs][wharfctl]") {
  ::setenv("WHARF_TEST_JOBS", "1", 1);
  ::setenv("WHARF_ADMIN_PASSWORD", kAdminPassword, 1);
  CoreServer core({}, {"--auth", "token"});
  ::unsetenv("WHARF_TEST_JOBS");
  HttpClient c("127.0.0.1", core.port());

  auto r = call(c, "GET", "/api/v1/jobs");
  CHECK(r.status == 401);
  CHECK(contains(r.header("www-authenticate"), "Basic"));
  CHECK(call(c, "GET", "/api/v1/schedules").status == 401);
  REQUIRE(call(c, "POST", "/api/v1/users", {{"name", "dev"}, {"password", "dev-password-1"}}, adminAuth()).status == 201);
  HeaderList dev = {{"Authorization", basicAuthorization("dev", "dev-password-1")}};
  r = call(c, "GET", "/api/v1/jobs", nullptr, dev);
  CHECK(r.status == 403);
  CHECK(call(c, "POST", "/api/v1/jobs", {{"kind", "upload-purge"}, {"params", {{"max_age", "1h"}}}}, dev).status ==
        403);
  CHECK(call(c, "PUT", "/api/v1/schedules/x", {{"cron", "@daily"}, {"kind", "ldap-sync"}}, dev).status == 403);
  CHECK(call(c, "GET", "/api/v1/jobs", nullptr, adminAuth()).status == 200);
  std::string id = submit(c, "upload-purge", {{"max_age", "1h"}}, adminAuth());
  REQUIRE(reaches(c, id, "succeeded", adminAuth()));
  CHECK(job(c, id, adminAuth())["actor"] == "admin");
  REQUIRE(call(c, "PUT", "/api/v1/schedules/weekly", {{"cron", "@weekly"}, {"kind", "ldap-sync"}}, adminAuth()).status ==
          201);
  CHECK(call(c, "DELETE", "/api/v1/schedules/weekly", nullptr, adminAuth()).status == 204);
  // The LDAP sync endpoint runs a job now: without a directory it still says so.
  r = call(c, "POST", "/api/v1/ldap/sync", nullptr, adminAuth());
  CHECK(r.status == 404);
  CHECK(contains(errorMessage(r), "no directory is configured"));

  // Mutations are audited with the actor.
  CHECK(waitFor([&] {
    json a = body(call(c, "GET", "/api/v1/audit?action=job.run", nullptr, adminAuth()));
    return a["items"].size() == 1 && a["items"][0]["actor"] == "admin" && a["items"][0]["object"] == id;
  }));
  CHECK(waitFor([&] {
    json a = body(call(c, "GET", "/api/v1/audit?object=weekly", nullptr, adminAuth()));
    return a["items"].size() == 2;  // schedule.set, schedule.remove
  }));

  // wharfctl.
  TempDir home;
  std::string cfg = home / "wharfctl.json";
  auto ctl = [&](const std::string& args) {
    return shell(wharfctlBinary() + " --config " + cfg + " " + args + " 2>&1", 60000);
  };
  auto login = shell("echo " + std::string(kAdminPassword) + " | " + wharfctlBinary() + " --config " + cfg +
                     " login " + core.url() + " -u admin --password-stdin 2>&1");
  INFO(login.output);
  REQUIRE(login.exit_code == 0);

  auto h = ctl("job --help");
  CHECK(h.exit_code == 0);
  CHECK(contains(h.output, "log ID [-f]"));
  for (const char* sub : {"ls", "show", "log", "run", "cancel", "retry", "kinds"}) {
    h = ctl(std::string("job ") + sub + " --help");
    INFO(sub);
    CHECK(h.exit_code == 0);
    CHECK(contains(h.output, std::string("Usage: wharfctl job ") + sub));
  }
  for (const char* sub : {"ls", "show", "set", "rm"}) {
    h = ctl(std::string("schedule ") + sub + " --help");
    INFO(sub);
    CHECK(h.exit_code == 0);
    CHECK(contains(h.output, std::string("Usage: wharfctl schedule ") + sub));
  }
  CHECK(contains(ctl("--help").output, "job run KIND"));

  auto x = ctl("job run sleep --param seconds=0.3 -f");
  INFO(x.output);
  CHECK(x.exit_code == 0);
  CHECK(contains(x.output, "job succeeded"));
  x = ctl("job run sleep --param seconds=0.1 --param fail=oops -f");
  INFO(x.output);
  CHECK(x.exit_code == 1);
  CHECK(contains(x.output, "job failed: oops"));
  x = ctl("--json job ls --state failed");
  json failed = json::parse(x.output, nullptr, false);
  REQUIRE(failed.is_object());
  REQUIRE(failed["items"].size() == 1);
  std::string failed_id = failed["items"][0]["id"].get<std::string>();
  x = ctl("job ls --kind sleep");
  CHECK(contains(x.output, "STATE"));
  CHECK(contains(x.output, "succeeded"));
  CHECK(contains(x.output, "failed"));
  x = ctl("job show " + failed_id);
  CHECK(contains(x.output, "state: failed"));
  CHECK(contains(x.output, "error: oops"));
  x = ctl("job log " + failed_id);
  CHECK(x.exit_code == 0);
  CHECK(contains(x.output, "oops"));
  x = ctl("job retry " + failed_id);
  INFO(x.output);
  REQUIRE(x.exit_code == 0);
  std::string retry_id = x.output.substr(x.output.rfind('\n', x.output.size() - 2) + 1);
  retry_id.pop_back();
  CHECK(contains(x.output, "retry of " + failed_id));
  x = ctl("job log " + retry_id + " -f");
  CHECK(x.exit_code == 1);  // it fails again the same way
  CHECK(contains(ctl("--json job show " + retry_id).output, "\"retry_of\": \"" + failed_id + "\""));

  x = ctl("job run sleep --param seconds=300");
  REQUIRE(x.exit_code == 0);
  std::string long_id = x.output.substr(x.output.rfind('\n', x.output.size() - 2) + 1);
  long_id.pop_back();
  REQUIRE(reaches(c, long_id, "running", adminAuth()));
  x = ctl("job cancel " + long_id);
  CHECK(x.exit_code == 0);
  CHECK(contains(x.output, "asked to stop"));
  x = ctl("job log " + long_id + " -f");
  CHECK(x.exit_code == 1);
  CHECK(contains(x.output, "cancel requested by admin"));
  CHECK(contains(x.output, "job cancelled"));
  x = ctl("job run nope");
  CHECK(x.exit_code == 1);
  CHECK(contains(x.output, "unknown job kind"));
  CHECK(ctl("job run upload-purge --param max_age").exit_code == 2);
  CHECK(contains(ctl("job kinds").output, "upload-purge"));

  x = ctl("schedule set nightly --cron '0 3 * * *' --kind upload-purge --param max_age=12h");
  INFO(x.output);
  CHECK(x.exit_code == 0);
  x = ctl("schedule ls");
  CHECK(contains(x.output, "nightly"));
  CHECK(contains(x.output, "0 3 * * *"));
  CHECK(contains(x.output, "upload-purge"));
  CHECK(ctl("schedule set nightly --disable").exit_code == 0);
  json shown = json::parse(ctl("--json schedule show nightly").output, nullptr, false);
  REQUIRE(shown.is_object());
  CHECK(shown["enabled"] == false);
  CHECK(shown["cron"] == "0 3 * * *");
  CHECK(shown["params"] == json{{"max_age", "12h"}});
  x = ctl("schedule set bad --cron '0 25 * * *' --kind upload-purge --param max_age=1h");
  CHECK(x.exit_code == 1);
  CHECK(contains(x.output, "hour \"25\""));
  CHECK(ctl("schedule set other --kind upload-purge").exit_code == 2);
  CHECK(ctl("schedule rm nightly").exit_code == 0);
  CHECK(ctl("schedule show nightly").exit_code == 1);
}

}  // namespace jobs_test
