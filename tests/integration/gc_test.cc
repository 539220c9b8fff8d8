// Online garbage collection against the real core: while pushes and pulls go on, after
// a kill -9 in the middle of a run, and the storage policies around it.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <dirent.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "shared/oci/digest.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace gc_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

std::string sha(const std::string& data) { return digestOf(data).str(); }

std::string errorCode(const HttpResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "";
  return j["errors"][0].value("code", "");
}

struct Image {
  std::string config, layer, manifest, digest;
};

// Pushes an image; a push that races the collection of its blobs fails with
// MANIFEST_BLOB_UNKNOWN and is simply retried (uploading the blobs again), as clients do.
Image pushImage(HttpClient& c, const std::string& repo, const std::string& tag, const std::string& seed,
                std::atomic<int>* blob_unknown = nullptr) {
  Image img;
  img.config = R"({"architecture":"amd64","os":"linux","seed":")" + seed + "\"}";
  img.layer = randomData(2000 + std::hash<std::string>{}(seed) % 3000, std::hash<std::string>{}(seed));
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", sha(img.config)},
                        {"size", img.config.size()}}},
            {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", sha(img.layer)},
                         {"size", img.layer.size()}}}}};
  img.manifest = m.dump();
  img.digest = sha(img.manifest);
  for (int attempt = 0; attempt < 20; ++attempt) {
    for (const std::string* b : {&img.config, &img.layer}) {
      auto r = c.request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + sha(*b), {}, *b);
      REQUIRE(r.isOk());
      REQUIRE(r->status == 201);
    }
    auto r = c.request("PUT", "/v2/" + repo + "/manifests/" + tag,
                       {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, img.manifest);
    REQUIRE(r.isOk());
    if (r->status == 201) return img;
    INFO(r->body);
    REQUIRE(r->status == 400);
    REQUIRE(errorCode(*r) == "MANIFEST_BLOB_UNKNOWN");  // the only acceptable failure
    if (blob_unknown) ++*blob_unknown;
  }
  FAIL("the push never succeeded");
  return img;
}

// Submits a gc job and waits for it to end; returns the job.
json runGc(int port, const json& params, int timeout_ms = 120000) {
  HttpClient c("127.0.0.1", port);
  auto r = c.request("POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                     json{{"kind", "gc"}, {"params", params}}.dump());
  REQUIRE(r.isOk());
  INFO(r->body);
  REQUIRE(r->status == 202);
  std::string id = json::parse(r->body)["id"];
  json job;
  bool done = waitFor(
      [&] {
        auto g = c.request("GET", "/api/v1/jobs/" + id);
        if (!g.isOk() || g->status != 200) return false;
        job = json::parse(g->body);
        return job["state"] != "queued" && job["state"] != "running";
      },
      timeout_ms);
  REQUIRE(done);
  return job;
}

// Content files in the core's blob store.
std::set<std::string> storedDigests(const std::string& data_dir) {
  std::set<std::string> out;
  std::string top = data_dir + "/blobs/sha256";
  DIR* d1 = ::opendir(top.c_str());
  if (d1 == nullptr) return out;
  while (dirent* e1 = ::readdir(d1)) {
    if (e1->d_name[0] == '.') continue;
    DIR* d2 = ::opendir((top + "/" + e1->d_name).c_str());
    if (d2 == nullptr) continue;
    while (dirent* e2 = ::readdir(d2)) {
      if (e2->d_name[0] != '.') out.insert(std::string("sha256:") + e2->d_name);
    }
    ::closedir(d2);
  }
  ::closedir(d1);
  return out;
}

// Every tagged image pulls whole and verifies.
void checkPulls(HttpClient& c, const std::map<std::string, Image>& tagged) {
  for (const auto& [ref, img] : tagged) {
    auto slash = ref.rfind(':');
    std::string repo = ref.substr(0, slash), tag = ref.substr(slash + 1);
    auto m = c.request("GET", "/v2/" + repo + "/manifests/" + tag,
                       {{"Accept", "application/vnd.oci.image.manifest.v1+json"}});
    REQUIRE(m.isOk());
    INFO(ref << " " << m->body);
    REQUIRE(m->status == 200);
    CHECK(sha(m->body) == img.digest);
    for (const std::string* b : {&img.config, &img.layer}) {
      auto got = c.request("GET", "/v2/" + repo + "/blobs/" + sha(*b));
      REQUIRE(got.isOk());
      CHECK(got->status == 200);
      CHECK(got->body == *b);
    }
  }
}

}  // namespace

TEST_CASE("gc: pushers and pullers while GC loops; every tagged image survives, nothing unreferenced stays",
          "[gc][stress]") {
  CoreServer core;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, Image> tagged;  // repo:tag -> image (latest push wins)
  std::atomic<int> pushes{0}, pulls{0}, blob_unknown{0}, bad_pulls{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < 3; ++p) {
    threads.emplace_back([&, p] {
      HttpClient c("127.0.0.1", core.port(), 30000);
      for (int i = 0; !stop; ++i) {
        std::string repo = "team/app" + std::to_string(p);
        std::string tag = "t" + std::to_string(i % 4);  // tags move: old images become untagged
        Image img = pushImage(c, repo, tag, std::to_string(p) + "-" + std::to_string(i), &blob_unknown);
        std::lock_guard lock(mu);
        tagged[repo + ":" + tag] = img;
        ++pushes;
      }
    });
  }
  threads.emplace_back([&] {
    HttpClient c("127.0.0.1", core.port(), 30000);
    while (!stop) {
      std::map<std::string, Image> snapshot;
      {
        std::lock_guard lock(mu);
        snapshot = tagged;
      }
      for (const auto& [ref, img] : snapshot) {
        auto slash = ref.rfind(':');
        // Pull by digest: a tag may have moved since the snapshot, a digest is stable
        // until collected, and an image tagged when we read it must still be there.
        auto m = c.request("GET", "/v2/" + ref.substr(0, slash) + "/manifests/" + img.digest);
        if (!m.isOk()) continue;
        ++pulls;
        if (m->status == 200 && sha(m->body) != img.digest) ++bad_pulls;
      }
    }
  });
  // GC loops while they work: retention off, untagged manifests collected at once,
  // no grace period (the hardest setting for the pushers).
  int runs = 0;
  uint64_t freed = 0;
  // At least 20 runs, and until the pushers have made enough history to race with.
  while (runs < 20 || pushes < 400) {
    json job = runGc(core.port(), {{"untagged_older_than", "0s"}, {"grace", "0s"}});
    INFO(job.dump());
    REQUIRE(job["state"] == "succeeded");
    freed += job["result"]["bytes_freed"].get<uint64_t>();
    ++runs;
  }
  stop = true;
  for (auto& t : threads) t.join();
  INFO("pushes " << pushes << ", pulls " << pulls << ", pushes retried after a collected blob " << blob_unknown);
  CHECK(pushes >= 400);
  CHECK(bad_pulls == 0);
  CHECK(freed > 0);

  // Every tagged image pulls and verifies, with the HTTP API and with skopeo.
  HttpClient c("127.0.0.1", core.port(), 30000);
  checkPulls(c, tagged);
  TempDir work;
  auto r = run({"skopeo", "copy", "--src-tls-verify=false", "docker://" + core.address() + "/team/app0:t0",
                "oci:" + work / "copy" + ":t0"});
  INFO(r.output);
  CHECK(r.exit_code == 0);

  // A last run with nothing racing: what is left on disk is exactly the tagged images.
  json job = runGc(core.port(), {{"untagged_older_than", "0s"}, {"grace", "0s"}});
  REQUIRE(job["state"] == "succeeded");
  std::set<std::string> expected;
  for (const auto& [ref, img] : tagged) {
    expected.insert(img.digest);
    expected.insert(sha(img.config));
    expected.insert(sha(img.layer));
  }
  CHECK(storedDigests(core.dataDir()) == expected);
  json again = runGc(core.port(), {{"untagged_older_than", "0s"}, {"grace", "0s"}, {"dry_run", true}});
  CHECK(again["result"]["blobs_deleted"] == 0);
  CHECK(again["result"]["manifests_deleted"] == 0);
}

TEST_CASE("gc: kill -9 in the middle of a run leaves a consistent store; the next run finishes", "[gc]") {
  TempDir dir;  // outlives both cores (a CoreServer's own temp dir goes with it)
  std::string data = dir / "data";
  auto core = std::make_unique<CoreServer>(data);
  HttpClient c("127.0.0.1", core->port(), 30000);
  std::map<std::string, Image> tagged;
  for (int i = 0; i < 5; ++i) tagged["keep/app:v" + std::to_string(i)] = pushImage(c, "keep/app", "v" + std::to_string(i), "k" + std::to_string(i));
  // Lots of unreferenced content for the sweep to chew on.
  std::set<std::string> garbage;
  for (int i = 0; i < 4000; ++i) {
    std::string b = "garbage " + std::to_string(i);
    auto r = c.request("POST", "/v2/junk/blobs/uploads/?digest=" + sha(b), {}, b);
    REQUIRE(r->status == 201);
    garbage.insert(sha(b));
  }
  HttpClient api("127.0.0.1", core->port());
  auto submitted = api.request("POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                               json{{"kind", "gc"}, {"params", {{"grace", "0s"}}}}.dump());
  REQUIRE(submitted->status == 202);
  std::string id = json::parse(submitted->body)["id"];
  // Kill it once the sweep is under way (or, on a fast machine, as late as we can see).
  waitFor([&] {
    auto g = api.request("GET", "/api/v1/jobs/" + id);
    if (!g.isOk()) return false;
    auto j = json::parse(g->body);
    return j["progress"]["message"] == "sweep" && j["progress"]["done"].get<uint64_t>() > 0;
  }, 30000);
  core->kill9();
  core.reset();
  core = std::make_unique<CoreServer>(data);
  HttpClient c2("127.0.0.1", core->port(), 30000);
  // Consistent: every tagged image pulls whole.
  checkPulls(c2, tagged);
  // The killed job runs again by itself (run 2), and finishes.
  json job;
  CHECK(waitFor([&] {
    auto g = c2.request("GET", "/api/v1/jobs/" + id);
    if (!g.isOk()) return false;
    job = json::parse(g->body, nullptr, false);
    return job.is_object() && job["state"] == "succeeded";
  }, 60000));
  CHECK((job["runs"] == 2 || job["runs"] == 1));  // 1: it had finished before the kill
  // Another run finds nothing more: no garbage left, in the records or on disk.
  json done = runGc(core->port(), {{"grace", "0s"}});
  REQUIRE(done["state"] == "succeeded");
  std::set<std::string> left = storedDigests(data);
  for (const auto& g : garbage) CHECK(left.count(g) == 0);
  std::set<std::string> expected;
  for (const auto& [ref, img] : tagged) expected.insert({img.digest, sha(img.config), sha(img.layer)});
  CHECK(left == expected);
  checkPulls(c2, tagged);
}

TEST_CASE("gc: dry run, policies, immutable tags and usage through the API", "[gc]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port(), 30000);
  Image v1 = pushImage(c, "team/app", "v1", "one");
  Image latest = pushImage(c, "team/app", "latest", "two");
  std::string lone = "pushed but never used";
  REQUIRE(c.request("POST", "/v2/team/app/blobs/uploads/?digest=" + sha(lone), {}, lone)->status == 201);

  // Dry run: what would go and how many bytes; nothing goes.
  json dry = runGc(core.port(), {{"dry_run", true}, {"grace", "0s"}});
  REQUIRE(dry["state"] == "succeeded");
  CHECK(dry["result"]["blobs_deleted"] == 1);
  CHECK(dry["result"]["bytes_freed"] == lone.size());
  CHECK(c.request("GET", "/v2/team/app/blobs/" + sha(lone))->status == 200);
  // Bad parameters are refused up front.
  auto bad = c.request("POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                       json{{"kind", "gc"}, {"params", {{"grace", "soon"}}}}.dump());
  CHECK(bad->status == 400);

  // Immutable tags: 403 DENIED naming the rule, for overwrite and delete.
  auto put = c.request("PUT", "/api/v1/policies/team/*", {{"Content-Type", "application/json"}},
                       R"({"immutable":["v*"],"retention":{"match":"*","keep_last":5}})");
  INFO(put->body);
  REQUIRE(put->status == 200);
  CHECK(json::parse(c.request("GET", "/api/v1/policies")->body)["items"].size() == 1);
  // Policy changes are in the event log.
  bool evented = waitFor([&] {
    auto e = c.request("GET", "/api/v1/events?type=policy.set");
    return e.isOk() && e->status == 200 && json::parse(e->body)["events"].size() == 1;
  });
  CHECK(evented);
  auto moved = c.request("PUT", "/v2/team/app/manifests/v1", {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                         latest.manifest);
  CHECK(moved->status == 403);
  CHECK(errorCode(*moved) == "DENIED");
  CHECK(moved->body.find("v*") != std::string::npos);
  CHECK(c.request("DELETE", "/v2/team/app/manifests/v1")->status == 403);
  CHECK(c.request("DELETE", "/v2/team/app/manifests/" + v1.digest)->status == 403);
  CHECK(c.request("PUT", "/api/v1/policies/team/*", {{"Content-Type", "application/json"}},
                  R"({"retention":{"keep_last":-3}})")->status == 400);
  CHECK(c.request("PUT", "/api/v1/policies/Team", {{"Content-Type", "application/json"}}, "{}")->status == 400);

  // Usage: the shared layer once per namespace.
  pushImage(c, "team/copy", "v1", "one");  // the same content in a second repository
  auto usage = json::parse(c.request("GET", "/api/v1/usage?scope=team/*")->body);
  auto app = json::parse(c.request("GET", "/api/v1/usage?scope=team/app")->body);
  CHECK(usage["repositories"] == 2);
  CHECK(usage["bytes"] == app["bytes"]);  // team/copy adds nothing new
  CHECK(c.request("DELETE", "/api/v1/policies/team/*")->status == 204);
  CHECK(c.request("DELETE", "/v2/team/app/manifests/v1")->status == 202);
}

TEST_CASE("gc: wharfctl gc, policy and usage", "[gc][wharfctl]") {
  ::setenv("WHARF_ADMIN_PASSWORD", "gc-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  TempDir home;
  std::string cfg = home / "wharfctl.json";
  auto ctl = [&](const std::string& args) { return shell(wharfctlBinary() + " --config " + cfg + " " + args + " 2>&1"); };
  auto r = shell("echo gc-admin-password | " + wharfctlBinary() + " --config " + cfg + " login " + core.url() +
                 " -u admin --password-stdin 2>&1");
  REQUIRE(r.exit_code == 0);
  CHECK(ctl("gc --help").output.find("--untagged-older-than") != std::string::npos);
  CHECK(ctl("policy --help").output.find("--keep-last") != std::string::npos);
  r = ctl("policy set 'admin/*' --immutable 'v*' --keep-last 3 --match 'ci-*'");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  r = ctl("--json policy show 'admin/*'");
  REQUIRE(r.exit_code == 0);
  auto p = json::parse(r.output);
  CHECK(p["immutable"] == json::array({"v*"}));
  CHECK(p["retention"]["keep_last"] == 3);
  CHECK(ctl("policy set Bad/Scope --immutable x").exit_code != 0);
  r = ctl("gc --dry-run --grace 0s -f");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("would be freed") != std::string::npos);
  r = ctl("--json usage 'admin/*'");
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(r.output)["scope"] == "admin/*");
  CHECK(ctl("policy rm 'admin/*'").exit_code == 0);
  CHECK(json::parse(ctl("--json policy ls").output)["items"].empty());
  CHECK(ctl("gc --grace soon").exit_code != 0);  // refused at submit, with the reason
}

}  // namespace gc_test
