// Trust policies end to end: pulls by tag need signatures, at the core and at an edge,
// with the core up and down (Notary signatures made with the real notary CLI, pulls with
// skopeo); cosign signatures made with OpenSSL as tags and as referrers.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/support/edge_server.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tuf_fixtures.h"

namespace trust_policy_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

const std::string kPassword = "edge-admin-password";  // EdgeServer's default administrator password
const std::string kAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

HttpResponse call(int port, const std::string& method, const std::string& target, const HeaderList& headers = {},
                  const std::string& body = "") {
  HttpClient c("127.0.0.1", port);
  auto r = c.request(method, target, headers, body);
  if (!r.isOk()) return HttpResponse{0, {}, r.status().message(), true};
  return *r;
}

// Pushes to a core without authentication.
std::string pushBlob(int port, const std::string& repo, const std::string& data) {
  std::string d = digestOf(data).str();
  auto r = call(port, "POST", "/v2/" + repo + "/blobs/uploads/?digest=" + d, {}, data);
  REQUIRE(r.status == 201);
  return d;
}

std::string pushManifest(int port, const std::string& repo, const std::string& ref, const json& m) {
  std::string body = m.dump();
  auto r = call(port, "PUT", "/v2/" + repo + "/manifests/" + ref, {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                body);
  INFO(r.body);
  REQUIRE(r.status == 201);
  return digestOf(body).str();
}

// An image of one layer holding content, tagged; its manifest's bytes go to *bytes.
std::string pushImage(int port, const std::string& repo, const std::string& tag, const std::string& content,
                      std::string* bytes = nullptr) {
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  std::string layer = gzip(makeTar({{"f", content}}));
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", pushBlob(port, repo, config)}, {"size", config.size()}}},
            {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", pushBlob(port, repo, layer)}, {"size", layer.size()}}}}};
  if (bytes != nullptr) *bytes = m.dump();
  return pushManifest(port, repo, tag, m);
}

}  // namespace

TEST_CASE("trust policy: pulls by tag need a Notary signature, at the core and at an edge with the core down",
          "[trust][edge][clients]") {
  if (!haveCommand("notary") || !haveCommand("skopeo")) {
    WARN("notary or skopeo is not installed: skipped");
    return;
  }
  ::setenv("WHARF_ADMIN_PASSWORD", kPassword.c_str(), 1);
  CoreServer core({}, {"--auth", "token"});
  ::unsetenv("WHARF_ADMIN_PASSWORD");
  TempDir work;
  std::string creds = "admin:" + kPassword;
  auto push = [&](const std::string& tag, uint64_t seed) {
    auto layout = writeOciLayout(work / ("src-" + tag), tag, {ImageSpec{"amd64", {{{"f", randomData(5000, seed)}}}}});
    auto r = run({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:" + work / ("src-" + tag) + ":" + tag,
                  "docker://" + core.address() + "/team/app:" + tag});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    return layout.digest;
  };
  std::string d1 = push("v1", 1), d2 = push("v2", 2);
  std::string pull_token = registryToken(core.port(), "admin", kPassword, "repository:team/app:pull");
  auto manifestBytes = [&](const std::string& tag) {
    auto r = call(core.port(), "GET", "/v2/team/app/manifests/" + tag,
                  {{"Authorization", "Bearer " + pull_token}, {"Accept", kAccept}});
    REQUIRE(r.status == 200);
    return r.body;
  };
  std::string m1 = manifestBytes("v1");
  REQUIRE(digestOf(m1).str() == d1);
  REQUIRE(writeFileDurable(work / "v1.json", m1).isOk());

  // Signed with the notary CLI: v1 for its own manifest; v2 for v1's (a mismatch).
  std::string gun = core.address() + "/team/app";
  auto notary = [&](const std::string& args) {
    auto r = notaryCli(core.url(), work / "trust", "admin", kPassword, args);
    INFO(args << ": " << r.output);
    REQUIRE(r.exit_code == 0);
    return r.output;
  };
  notary("init " + gun);
  notary("add " + gun + " v1 " + work / "v1.json");
  notary("add " + gun + " v2 " + work / "v1.json");
  notary("publish " + gun);

  // An edge caches both tags before any policy exists.
  EdgeServer edge(core, {"--tag-ttl", "1s"});
  auto skopeoInspect = [&](const std::string& host, const std::string& tag) {
    return run({"skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, "docker://" + host + "/team/app:" + tag});
  };
  for (const char* tag : {"v1", "v2"}) {
    auto r = skopeoInspect(edge.address(), tag);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  }

  // The policy: team/* requires Notary signatures.
  HeaderList admin = {{"Authorization", basicAuthorization("admin", kPassword)}, {"Content-Type", "application/json"}};
  auto put = call(core.port(), "PUT", "/api/v1/policies/team/*", admin, R"({"trust":{"require":"notary"}})");
  INFO(put.body);
  REQUIRE(put.status == 200);
  auto bad = call(core.port(), "PUT", "/api/v1/policies/team/*", admin, R"({"trust":{"require":"cosign"}})");
  CHECK(bad.status == 400);  // cosign without keys
  CHECK(bad.body.find("cosign_keys") != std::string::npos);

  // At the core: v1 pulls (skopeo), v2 names another digest than its signature.
  auto r = skopeoInspect(core.address(), "v1");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(digestOf(r.output).str() == d1);
  r = skopeoInspect(core.address(), "v2");
  INFO(r.output);
  CHECK(r.exit_code != 0);
  auto refused = call(core.port(), "GET", "/v2/team/app/manifests/v2", {{"Authorization", "Bearer " + pull_token}, {"Accept", kAccept}});
  CHECK(refused.status == 403);
  CHECK(refused.body.find("DENIED") != std::string::npos);
  CHECK(refused.body.find("trust policy of team/*") != std::string::npos);
  CHECK(call(core.port(), "HEAD", "/v2/team/app/manifests/v2", {{"Authorization", "Bearer " + pull_token}}).status == 403);
  // By digest: not checked (clients that verify resolve the tag through trust data).
  CHECK(call(core.port(), "GET", "/v2/team/app/manifests/" + d2, {{"Authorization", "Bearer " + pull_token}, {"Accept", kAccept}})
            .status == 200);
  // What signs v1's image: the targets role, the policy satisfied.
  auto status = call(core.port(), "GET", "/api/v1/repositories/team/app/manifests/v1/trust", admin);
  REQUIRE(status.status == 200);
  json st = json::parse(status.body);
  INFO(st.dump());
  CHECK(st["signed"] == true);
  REQUIRE(st["notary"].size() == 2);  // v1 and v2 both name it
  CHECK(st["notary"][0]["gun"] == gun);
  CHECK(st["notary"][0]["role"] == "targets");
  CHECK(st["policy"]["satisfied"] == true);
  json st2 = json::parse(call(core.port(), "GET", "/api/v1/repositories/team/app/manifests/" + d2 + "/trust", admin).body);
  CHECK(st2["signed"] == false);
  CHECK(st2["policy"]["satisfied"] == false);

  // At the edge, core up: the policy reached it (a refresh command), v2 is refused.
  CHECK(waitFor([&] { return skopeoInspect(edge.address(), "v2").exit_code != 0; }, 20000));
  r = skopeoInspect(edge.address(), "v1");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(digestOf(r.output).str() == d1);

  // The core stops: the edge still decides, from the metadata it verified itself.
  std::string edge_token = registryToken(core.port(), "admin", kPassword, "repository:team/app:pull");
  core.kill9();
  auto viaEdge = [&](const std::string& method, const std::string& tag) {
    return call(edge.port(), method, "/v2/team/app/manifests/" + tag, {{"Authorization", "Bearer " + edge_token}, {"Accept", kAccept}});
  };
  auto served = viaEdge("GET", "v1");
  INFO(served.body);
  CHECK(served.status == 200);
  CHECK(digestOf(served.body).str() == d1);
  auto at_edge = viaEdge("GET", "v2");
  INFO(at_edge.body);
  CHECK(at_edge.status == 403);
  CHECK(at_edge.body.find("at the edge") != std::string::npos);
  CHECK(viaEdge("HEAD", "v2").status == 403);
  CHECK(metricOf(edge.port(), "wharf_edge_trust_refused_total") >= 2);

  // The edge restarts with the core still down: the policy (edge.json) and the metadata it
  // verified (trust/) were kept, so it decides the same.
  REQUIRE(edge.start({"--tag-ttl", "1s"}));
  CHECK(viaEdge("GET", "v1").status == 200);
  auto after_restart = viaEdge("GET", "v2");
  INFO(after_restart.body);
  CHECK(after_restart.status == 403);
  CHECK(after_restart.body.find("at the edge") != std::string::npos);
}

TEST_CASE("trust policy: cosign signatures as tags and as referrers, checked against the policy's keys", "[trust]") {
  CoreServer core;
  int port = core.port();
  // A signature manifest: one simple-signing layer; as the tag sha256-<hex>.sig, or as a
  // referrer (subject) of the image.
  auto signature = [&](const std::string& repo, const std::string& payload, const std::string& sig,
                       const std::string& subject, bool as_referrer) {
    std::string pd = pushBlob(port, repo, payload);
    std::string cfg = "{}";
    json m = {{"schemaVersion", 2},
              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
              {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", pushBlob(port, repo, cfg)}, {"size", cfg.size()}}},
              {"layers", {{{"mediaType", "application/vnd.dev.cosign.simplesigning.v1+json"}, {"digest", pd}, {"size", payload.size()},
                           {"annotations", {{"dev.cosignproject.cosign/signature", sig}}}}}}};
    if (as_referrer) {
      m["artifactType"] = "application/vnd.dev.cosign.artifact.sig.v1+json";
      m["subject"] = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"}, {"digest", subject},
                      {"size", call(port, "GET", "/v2/" + repo + "/manifests/" + subject, {{"Accept", kAccept}}).body.size()}};
      std::string body = m.dump();
      return pushManifest(port, repo, digestOf(body).str(), m);
    }
    return pushManifest(port, repo, std::string("sha256-") + subject.substr(7) + ".sig", m);
  };
  CosignSigner key, other;
  std::string good = pushImage(port, "sig/app", "good", "good");
  std::string by_ref = pushImage(port, "sig/app", "byref", "byref");
  std::string wrong_key = pushImage(port, "sig/app", "otherkey", "otherkey");
  std::string wrong_digest = pushImage(port, "sig/app", "otherdigest", "otherdigest");
  std::string tampered = pushImage(port, "sig/app", "tampered", "tampered");
  pushImage(port, "sig/app", "unsigned", "unsigned");
  auto payloadFor = [](const std::string& d) { return cosignPayload("127.0.0.1/sig/app", d); };
  signature("sig/app", payloadFor(good), key.sign(payloadFor(good)), good, false);
  signature("sig/app", payloadFor(by_ref), key.sign(payloadFor(by_ref)), by_ref, true);
  signature("sig/app", payloadFor(wrong_key), other.sign(payloadFor(wrong_key)), wrong_key, false);
  signature("sig/app", payloadFor(good), key.sign(payloadFor(good)), wrong_digest, false);  // signs another image
  std::string t = payloadFor(tampered);
  std::string changed = t;
  changed.replace(changed.find("sig/app"), 7, "sig/evil");
  signature("sig/app", changed, key.sign(t), tampered, false);

  json policy = {{"trust", {{"require", "cosign"}, {"cosign_keys", {key.public_pem}}}}};
  REQUIRE(call(port, "PUT", "/api/v1/policies/sig/app", {{"Content-Type", "application/json"}}, policy.dump()).status == 200);
  auto pull = [&](const std::string& tag) { return call(port, "GET", "/v2/sig/app/manifests/" + tag, {{"Accept", kAccept}}); };
  CHECK(pull("good").status == 200);
  CHECK(pull("byref").status == 200);
  for (const char* tag : {"otherkey", "otherdigest", "tampered", "unsigned"}) {
    auto r = pull(tag);
    INFO(tag << ": " << r.body);
    CHECK(r.status == 403);
    CHECK(r.body.find("no cosign signature") != std::string::npos);
  }
  json s = json::parse(call(port, "GET", "/api/v1/repositories/sig/app/manifests/good/trust").body);
  INFO(s.dump());
  CHECK(s["signed"] == true);
  REQUIRE(s["cosign"].size() == 1);
  CHECK(s["cosign"][0]["source"] == "tag");
  CHECK(s["cosign"][0]["verified"] == true);
  CHECK(s["cosign"][0]["key"].get<std::string>().rfind("sha256:", 0) == 0);
  json r = json::parse(call(port, "GET", "/api/v1/repositories/sig/app/manifests/byref/trust").body);
  REQUIRE(r["cosign"].size() == 1);
  CHECK(r["cosign"][0]["source"] == "referrer");
  json w = json::parse(call(port, "GET", "/api/v1/repositories/sig/app/manifests/otherdigest/trust").body);
  CHECK(w["signed"] == false);
  REQUIRE(w["cosign"].size() == 1);
  CHECK(w["cosign"][0]["error"].get<std::string>().find("signs " + good) != std::string::npos);

  // "both" needs Notary too (there is none here); "either" is met by cosign alone.
  policy["trust"]["require"] = "both";
  REQUIRE(call(port, "PUT", "/api/v1/policies/sig/app", {{"Content-Type", "application/json"}}, policy.dump()).status == 200);
  CHECK(pull("good").status == 403);
  policy["trust"]["require"] = "either";
  REQUIRE(call(port, "PUT", "/api/v1/policies/sig/app", {{"Content-Type", "application/json"}}, policy.dump()).status == 200);
  CHECK(pull("good").status == 200);
  CHECK(pull("unsigned").status == 403);
  // A repository opting out of its namespace's policy.
  REQUIRE(call(port, "PUT", "/api/v1/policies/sig/*", {{"Content-Type", "application/json"}}, policy.dump()).status == 200);
  REQUIRE(call(port, "PUT", "/api/v1/policies/sig/app", {{"Content-Type", "application/json"}}, R"({"trust":{"require":"none"}})").status == 200);
  CHECK(pull("unsigned").status == 200);
}

TEST_CASE("trust policy: only the roles and keys the policy names count; expiry and deletion withdraw", "[trust]") {
  CoreServer core;
  int port = core.port();
  std::string m1, m2;
  std::string d1 = pushImage(port, "rel/app", "v1", "one", &m1);
  std::string d2 = pushImage(port, "rel/app", "v2", "two", &m2);
  // Trust data posted as the notary CLI would: v1 signed in targets, v2 by the release
  // team's delegation, targets/releases (its own key).
  std::string gun = core.address() + "/rel/app";
  std::string base = "/v2/" + gun + "/_trust/tuf/";
  auto ts_key = call(port, "GET", base + "timestamp.key");
  REQUIRE(ts_key.status == 200);
  int64_t now = RealClock::instance().nowMillis();
  TufRepoKeys keys{tufRootKey(gun, now), tufEcdsaKey(), tufEcdsaKey(), TufKey{nullptr, json::parse(ts_key.body), ""}};
  TufKey release = tufEcdsaKey();
  auto files = tufRepoFiles(keys, {{"v1", tufFileMeta(m1)}}, {{"targets/releases", &release, {{"v2", tufFileMeta(m2)}}}},
                            "2099-01-01T00:00:00Z");
  auto posted = call(port, "POST", base, {{"Content-Type", "multipart/form-data; boundary=BOUNDARY"}}, tufMultipart(files));
  INFO(posted.body);
  REQUIRE(posted.status == 200);
  CHECK(waitFor([&] {  // the event log writes behind
    auto events = json::parse(call(port, "GET", "/api/v1/events?repository=rel/app&type=trust.published").body, nullptr, false);
    return events.is_object() && events["events"].size() == 1;
  }));

  auto setPolicy = [&](const json& trust) {
    auto r = call(port, "PUT", "/api/v1/policies/rel/app", {{"Content-Type", "application/json"}}, json{{"trust", trust}}.dump());
    INFO(r.body);
    REQUIRE(r.status == 200);
  };
  auto pull = [&](const std::string& tag) { return call(port, "GET", "/v2/rel/app/manifests/" + tag, {{"Accept", kAccept}}).status; };
  setPolicy({{"require", "notary"}});
  CHECK(pull("v1") == 200);
  CHECK(pull("v2") == 200);
  setPolicy({{"require", "notary"}, {"roles", {"targets/releases"}}});
  CHECK(pull("v1") == 403);
  CHECK(pull("v2") == 200);
  setPolicy({{"require", "notary"}, {"keys", {release.id}}});
  CHECK(pull("v1") == 403);
  CHECK(pull("v2") == 200);
  setPolicy({{"require", "notary"}, {"keys", {tufEcdsaKey().id}}});
  CHECK(pull("v2") == 403);
  auto st = json::parse(call(port, "GET", "/api/v1/repositories/rel/app/manifests/v2/trust").body);
  INFO(st.dump());
  REQUIRE(st["notary"].size() == 1);
  CHECK(st["notary"][0]["role"] == "targets/releases");
  CHECK(st["notary"][0]["keys"] == json{release.id});
  CHECK(st["notary"][0]["accepted_by_policy"] == false);
  // Bad policies are refused with the field named.
  for (const json& bad : {json{{"require", "sometimes"}}, json{{"require", "notary"}, {"roles", {"releases"}}},
                          json{{"require", "notary"}, {"keys", {"not-a-key-id"}}},
                          json{{"require", "cosign"}, {"cosign_keys", {"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}}}}) {
    auto r = call(port, "PUT", "/api/v1/policies/rel/app", {{"Content-Type", "application/json"}}, json{{"trust", bad}}.dump());
    INFO(bad.dump() << " -> " << r.body);
    CHECK(r.status == 400);
    CHECK(r.body.find("trust.") != std::string::npos);
  }

  // Targets that expire sign nothing after that (the core also refuses to store them
  // expired, so they are made to expire soon and the test waits for it).
  setPolicy({{"require", "notary"}});
  std::string soon = formatRfc3339(RealClock::instance().nowMillis() + 2000);
  auto next = tufRepoFiles(keys, {{"v1", tufFileMeta(m1)}}, {{"targets/releases", &release, {{"v2", tufFileMeta(m2)}}}}, soon, 2);
  // Over the stored root's exact bytes (a root made again would be other bytes).
  next["root"] = files["root"];
  json meta = json::object();
  for (const char* role : {"root", "targets", "targets/releases"}) meta[role] = tufFileMeta(next[role]);
  next["snapshot"] = tufEnvelope({{"_type", "Snapshot"}, {"version", 2}, {"expires", soon}, {"meta", meta}}, {&keys.snapshot});
  REQUIRE(call(port, "POST", base, {{"Content-Type", "multipart/form-data; boundary=BOUNDARY"}}, tufMultipart(next)).status == 200);
  CHECK(pull("v1") == 200);
  CHECK(waitFor([&] { return pull("v1") == 403; }, 10000));
  // Garbage collection keeps what trust data signs: v1 and v2 untagged, v1 still signed
  // (by the expired targets too), a third image untagged and unsigned.
  std::string d3 = pushImage(port, "rel/app", "v3", "three");
  for (const char* tag : {"v1", "v3"}) REQUIRE(call(port, "DELETE", "/v2/rel/app/manifests/" + std::string(tag)).status == 202);
  auto job = call(port, "POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                  json{{"kind", "gc"}, {"params", {{"untagged_older_than", "0s"}, {"grace", "0s"}}}}.dump());
  REQUIRE(job.status == 202);
  std::string id = json::parse(job.body)["id"];
  REQUIRE(waitFor([&] {
    auto j = json::parse(call(port, "GET", "/api/v1/jobs/" + id).body, nullptr, false);
    return j.is_object() && j.value("state", "") == "succeeded";
  }, 30000));
  CHECK(call(port, "GET", "/v2/rel/app/manifests/" + d1, {{"Accept", kAccept}}).status == 200);
  CHECK(call(port, "GET", "/v2/rel/app/manifests/" + d3, {{"Accept", kAccept}}).status == 404);
  // Deleting the trust data withdraws every signature.
  setPolicy({{"require", "notary"}});
  CHECK(call(port, "DELETE", base).status == 200);
  CHECK(pull("v2") == 403);
  CHECK(d1 != d2);
}

}  // namespace trust_policy_test
