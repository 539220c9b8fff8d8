// The trust server with the real notary CLI (Debian's notary 0.7) against a running core
// with token auth: init, add, publish, list, and a second user without push refused.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <string>

#include "shared/base/clock.h"
#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tuf_fixtures.h"

namespace trust_test {

using namespace wharf;
using namespace wharf::test;

TEST_CASE("trust: the notary CLI inits, publishes and lists through the core", "[trust][clients]") {
  if (!haveCommand("notary")) {
    WARN("notary is not installed: skipped");
    return;
  }
  const std::string password = "trust-admin-password";
  ::setenv("WHARF_ADMIN_PASSWORD", password.c_str(), 1);
  CoreServer core("", {"--auth", "token"});
  ::unsetenv("WHARF_ADMIN_PASSWORD");
  TempDir tmp;
  std::string gun = core.address() + "/team/app";
  REQUIRE(writeFileDurable(tmp.path() + "/artifact", "the image's bytes").isOk());
  auto notaryIn = [&](const std::string& dir, const std::string& user, const std::string& pw, const std::string& args) {
    std::string env = "NOTARY_AUTH=" + base64Encode(user + ":" + pw) +
                      " NOTARY_ROOT_PASSPHRASE=root-pass NOTARY_TARGETS_PASSPHRASE=targets-pass"
                      " NOTARY_SNAPSHOT_PASSPHRASE=snapshot-pass NOTARY_DELEGATION_PASSPHRASE=delegation-pass ";
    return shell(env + "notary -s " + core.url() + " -d " + tmp.path() + "/" + dir + " " + args + " 2>&1", 120000);
  };
  auto notary = [&](const std::string& user, const std::string& pw, const std::string& args) {
    return notaryIn("trust", user, pw, args);
  };
  auto init = notary("admin", password, "init " + gun);
  INFO(init.output);
  REQUIRE(init.exit_code == 0);
  auto add = notary("admin", password, "add " + gun + " v1 " + tmp.path() + "/artifact");
  INFO(add.output);
  REQUIRE(add.exit_code == 0);
  auto publish = notary("admin", password, "publish " + gun);
  INFO(publish.output);
  REQUIRE(publish.exit_code == 0);
  auto list = notary("admin", password, "list " + gun);
  INFO(list.output);
  REQUIRE(list.exit_code == 0);
  CHECK(list.output.find("v1") != std::string::npos);
  // Fresh trust directory, same GUN: the client fetches and verifies everything again.
  auto lookup = notaryIn("fresh", "admin", password, "list " + gun);
  INFO(lookup.output);
  CHECK(lookup.output.find("v1") != std::string::npos);

  // Without a token: the challenge, before anything is said of the GUN.
  HttpClient c("127.0.0.1", core.port());
  auto r = c.request("GET", "/v2/" + gun + "/_trust/tuf/timestamp.json");
  REQUIRE(r.isOk());
  CHECK(r->status == 401);
  CHECK(r->header("www-authenticate").find("repository:" + gun + ":pull") != std::string::npos);
  // The wrong password: refused, and v2 is not published.
  REQUIRE(notary("admin", password, "add " + gun + " v2 " + tmp.path() + "/artifact").exit_code == 0);
  auto wrong_publish = notary("admin", "not-the-password", "publish " + gun);
  INFO(wrong_publish.output);
  CHECK(wrong_publish.exit_code != 0);
  CHECK(wrong_publish.output.find("unauthorized") != std::string::npos);
  CHECK(notaryIn("fresh", "admin", password, "list " + gun).output.find("v2") == std::string::npos);
  // Then with it: published.
  auto second = notary("admin", password, "publish " + gun);
  INFO(second.output);
  CHECK(second.exit_code == 0);
  CHECK(notaryIn("fresh", "admin", password, "list " + gun).output.find("v2") != std::string::npos);
}

}  // namespace trust_test

namespace trust_test_http {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

std::string multipart(const std::map<std::string, std::string>& parts) {
  std::string body;
  for (const auto& [role, bytes] : parts)
    body += "--BOUNDARY\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + role +
            "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + bytes + "\r\n";
  return body + "--BOUNDARY--\r\n";
}

TEST_CASE("trust: tampered updates posted by hand are refused with Notary's errors, changing nothing", "[trust]") {
  CoreServer core;
  HttpClient c("127.0.0.1", core.port());
  std::string gun = core.address() + "/team/app";
  std::string base = "/v2/" + gun + "/_trust/tuf/";
  auto key = c.request("GET", base + "timestamp.key");
  REQUIRE(key.isOk());
  REQUIRE(key->status == 200);
  json ts_key = json::parse(key->body);
  int64_t now = RealClock::instance().nowMillis();
  TufKey root = tufRootKey(gun, now), targets = tufEcdsaKey(), snapshot = tufEcdsaKey();
  auto rootBytes = [&](const TufKey& r, int version) {
    return tufEnvelope(tufRootBody({&r}, targets.tuf, snapshot.tuf, ts_key, version), {&r});
  };
  auto snapshotBytes = [&](int version, const std::map<std::string, std::string>& listed) {
    json meta = json::object();
    for (const auto& [role, bytes] : listed) meta[role] = tufFileMeta(bytes);
    return tufEnvelope({{"_type", "Snapshot"}, {"version", version}, {"expires", "2099-01-01T00:00:00Z"}, {"meta", meta}},
                       {&snapshot});
  };
  auto post = [&](const std::map<std::string, std::string>& parts) {
    auto r = c.request("POST", base, {{"Content-Type", "multipart/form-data; boundary=BOUNDARY"}}, multipart(parts));
    REQUIRE(r.isOk());
    return *r;
  };
  auto detail = [](const HttpResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("errors") ? j["errors"][0].value("code", "") + ": " + j["errors"][0].value("detail", "") : r.body;
  };
  std::string r1 = rootBytes(root, 1);
  std::string t1 = tufEnvelope(tufTargetsBody(1, {}, "2099-01-01T00:00:00Z"), {&targets});
  REQUIRE(post({{"root", r1}, {"targets", t1}, {"snapshot", snapshotBytes(1, {{"root", r1}, {"targets", t1}})}}).status == 200);
  auto stored = c.request("GET", base + "targets.json");
  REQUIRE(stored->status == 200);
  CHECK(stored->body == t1);  // verbatim
  auto ts = c.request("GET", base + "timestamp.json");
  REQUIRE(ts->status == 200);

  auto refused = [&](const std::map<std::string, std::string>& parts, const std::string& code, const std::string& why) {
    auto r = post(parts);
    INFO(detail(r));
    CHECK(r.status == 400);
    CHECK(detail(r).find(code) == 0);
    CHECK(detail(r).find(why) != std::string::npos);
    CHECK(c.request("GET", base + "targets.json")->body == t1);
    CHECK(c.request("GET", base + "timestamp.json")->body == ts->body);
  };
  std::string t2 = tufEnvelope(tufTargetsBody(2, {}, "2099-01-01T00:00:00Z"), {&targets});
  // A bad signature.
  json forged = json::parse(t2);
  forged["signed"]["targets"] = {{"evil", tufFileMeta("evil")}};
  refused({{"targets", forged.dump()}, {"snapshot", snapshotBytes(2, {{"root", r1}, {"targets", forged.dump()}})}},
          "INVALID_UPDATE", "below its threshold");
  // A replayed version.
  refused({{"targets", t1}, {"snapshot", snapshotBytes(2, {{"root", r1}, {"targets", t1}})}}, "INVALID_UPDATE", "not above");
  // Expired metadata.
  std::string old = tufEnvelope(tufTargetsBody(2, {}, "2001-01-01T00:00:00Z"), {&targets});
  refused({{"targets", old}, {"snapshot", snapshotBytes(2, {{"root", r1}, {"targets", old}})}}, "INVALID_UPDATE", "expired");
  // A snapshot whose checksums are not of the uploaded bytes.
  refused({{"targets", t2}, {"snapshot", snapshotBytes(2, {{"root", r1}, {"targets", t1}})}}, "INVALID_UPDATE", "targets");
  // A root for another GUN, and a root rotation not signed by the old root.
  TufKey other = tufRootKey(core.address() + "/team/other", now);
  std::string wrong_gun = rootBytes(other, 2);
  refused({{"root", wrong_gun}, {"snapshot", snapshotBytes(2, {{"root", wrong_gun}, {"targets", t1}})}}, "INVALID_UPDATE",
          "not " + gun);
  TufKey next = tufRootKey(gun, now);
  std::string unsigned_rotation = rootBytes(next, 2);
  refused({{"root", unsigned_rotation}, {"snapshot", snapshotBytes(2, {{"root", unsigned_rotation}, {"targets", t1}})}},
          "INVALID_UPDATE", "previous root");
  // Malformed uploads.
  auto r = c.request("POST", base, {{"Content-Type", "application/json"}}, "{}");
  CHECK(r->status == 400);
  CHECK(detail(*r).find("MALFORMED_UPLOAD") == 0);
  CHECK(c.request("GET", base + "nope.json")->status == 404);
  CHECK(detail(*c.request("GET", base + "nope.json")).find("METADATA_NOT_FOUND") == 0);
  // The good update after all that.
  CHECK(post({{"targets", t2}, {"snapshot", snapshotBytes(2, {{"root", r1}, {"targets", t2}})}}).status == 200);
  CHECK(c.request("GET", base + "targets.json")->body == t2);
  CHECK(c.request("GET", base + "1.targets.json")->body == t1);  // by version
}

}  // namespace trust_test_http
