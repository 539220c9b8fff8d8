// The trust server with the real notary CLI (Debian's notary 0.7) against a running core
// with token auth: init, add, publish, list, lookup, verify, remove, delegations published
// by a delegate, key and root rotations, users without push refused, delete; and updates
// tampered with by hand, each refused with Notary's error and nothing changed.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <string>

#include "shared/base/clock.h"
#include "shared/tls/crypto.h"
#include "tests/support/edge_server.h"
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
    return notaryCli(core.url(), tmp.path() + "/" + dir, user, pw, args);
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

TEST_CASE("trust: the notary CLI's life cycle: delegates, key and root rotations, other users, delete",
          "[trust][clients]") {
  if (!haveCommand("notary") || !haveCommand("openssl")) {
    WARN("notary or openssl is not installed: skipped");
    return;
  }
  const std::string password = "trust-admin-password";
  ::setenv("WHARF_ADMIN_PASSWORD", password.c_str(), 1);
  CoreServer core("", {"--auth", "token"});
  ::unsetenv("WHARF_ADMIN_PASSWORD");
  TempDir tmp;
  std::string gun = core.address() + "/team/app";
  REQUIRE(writeFileDurable(tmp.path() + "/artifact", "the image's bytes").isOk());
  REQUIRE(writeFileDurable(tmp.path() + "/other", "other bytes").isOk());
  // The repository exists (a blob pushed), alice may write it, bob only read it.
  pushBlob(core.port(), password, "team/app", "a blob");
  HttpClient api("127.0.0.1", core.port());
  HeaderList admin = {{"Authorization", basicAuthorization("admin", password)}, {"Content-Type", "application/json"}};
  for (const auto& [user, role] : {std::pair<std::string, std::string>{"alice", "write"}, {"bob", "read"}}) {
    REQUIRE(api.request("POST", "/api/v1/users", admin, "{\"name\":\"" + user + "\",\"password\":\"" + user + "-password\"}")->status == 201);
    REQUIRE(api.request("PUT", "/api/v1/repositories/team/app/permissions/users/" + user, admin, "{\"role\":\"" + role + "\"}")
                ->status == 200);
  }
  // Other names ("fresh", "new"): bob's credentials with a trust directory of their own
  // (nothing pinned yet).
  auto as = [&](const std::string& user, const std::string& args, const std::string& input = "") {
    std::string account = user == "admin" || user == "alice" ? user : "bob";
    std::string pw = account == "admin" ? password : account + "-password";
    return notaryCli(core.url(), tmp.path() + "/trust-" + user, account, pw, args, input);
  };
  auto ok = [&](const std::string& user, const std::string& args, const std::string& input = "") {
    auto r = as(user, args, input);
    INFO(user << ": notary " << args << "\n" << r.output);
    REQUIRE(r.exit_code == 0);
    return r.output;
  };
  auto listed = [&](const std::string& user) { return ok(user, "list " + gun); };

  ok("admin", "init " + gun);
  ok("admin", "add " + gun + " v1 " + tmp.path() + "/artifact");
  ok("admin", "add " + gun + " v2 " + tmp.path() + "/artifact");
  ok("admin", "publish " + gun);
  CHECK(ok("admin", "lookup " + gun + " v1").find("v1 sha256:" + sha256Hex("the image's bytes")) != std::string::npos);
  ok("admin", "verify " + gun + " v1 -q -i " + tmp.path() + "/artifact");
  auto mismatch = as("admin", "verify " + gun + " v1 -q -i " + tmp.path() + "/other");
  CHECK(mismatch.exit_code != 0);
  CHECK(mismatch.output.find("did not match") != std::string::npos);
  ok("admin", "remove " + gun + " v2");
  ok("admin", "publish " + gun);
  CHECK(listed("bob").find("v2") == std::string::npos);

  // Server-held keys rotate (timestamp, then snapshot, which the server then signs); the
  // targets key and the root key rotate on the client. Readers with the old root pinned
  // (bob) and without any (a fresh directory) follow.
  ok("admin", "key rotate " + gun + " timestamp -r");
  ok("admin", "key rotate " + gun + " snapshot -r");
  ok("admin", "key rotate " + gun + " targets");
  ok("admin", "key rotate " + gun + " root", "yes");
  CHECK(listed("bob").find("v1") != std::string::npos);
  CHECK(listed("fresh").find("v1") != std::string::npos);
  auto root = api.request("GET", "/v2/" + gun + "/_trust/tuf/root.json",
                          {{"Authorization", "Bearer " + registryToken(core.port(), "admin", password, "repository:" + gun + ":pull")}});
  REQUIRE(root->status == 200);
  CHECK(nlohmann::json::parse(root->body)["signed"]["version"] == 5);  // one root per rotation

  // A delegation: alice holds the key of targets/releases and publishes through it (the
  // server makes the snapshot); bob, who may only pull, cannot publish.
  REQUIRE(shell("cd " + tmp.path() + " && openssl ecparam -name prime256v1 -genkey -noout -out d.key && "
                "openssl req -new -x509 -key d.key -out d.crt -days 365 -subj /CN=releases 2>&1").exit_code == 0);
  ok("admin", "delegation add " + gun + " targets/releases " + tmp.path() + "/d.crt --all-paths -p");
  ok("alice", "key import " + tmp.path() + "/d.key --role targets/releases");
  ok("alice", "add " + gun + " v3 " + tmp.path() + "/artifact --roles targets/releases");
  ok("alice", "publish " + gun);
  auto list = listed("fresh");
  CHECK(list.find("targets/releases") != std::string::npos);
  CHECK(list.find("v3") != std::string::npos);
  ok("bob", "key import " + tmp.path() + "/d.key --role targets/releases");
  ok("bob", "add " + gun + " v4 " + tmp.path() + "/artifact --roles targets/releases");
  auto refused = as("bob", "publish " + gun);
  INFO(refused.output);
  CHECK(refused.exit_code != 0);
  CHECK(refused.output.find("not authorized") != std::string::npos);
  CHECK(listed("fresh").find("v4") == std::string::npos);

  // Deleting needs "*": bob is refused, the administrator deletes.
  CHECK(as("bob", "delete " + gun + " --remote").exit_code != 0);
  ok("admin", "delete " + gun + " --remote");
  auto gone = as("new", "list " + gun);
  INFO(gone.output);
  CHECK(gone.exit_code != 0);
  CHECK(gone.output.find("does not have trust data") != std::string::npos);
}

}  // namespace trust_test

namespace trust_test_http {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

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
    auto r = c.request("POST", base, {{"Content-Type", "multipart/form-data; boundary=BOUNDARY"}}, tufMultipart(parts));
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

  // The change feed: the two accepted updates (and none of the refused), then a deletion.
  auto feed = [&](const std::string& path) {
    auto r = c.request("GET", path);
    REQUIRE(r.isOk());
    REQUIRE(r->status == 200);
    return json::parse(r->body);
  };
  json changes = feed("/v2/" + gun + "/_trust/changefeed?change_id=0&records=100");
  INFO(changes.dump());
  REQUIRE(changes["count"] == 2);
  CHECK(changes["records"][0]["GUN"] == gun);
  CHECK(changes["records"][0]["Category"] == "update");
  CHECK(changes["records"][1]["Version"] == 2);  // the timestamp's
  CHECK(changes["records"][1]["SHA256"] == sha256Hex(c.request("GET", base + "timestamp.json")->body));
  std::string first = changes["records"][0]["ID"];
  CHECK(feed("/v2/" + gun + "/_trust/changefeed?change_id=" + first)["count"] == 1);
  REQUIRE(c.request("DELETE", base)->status == 200);
  json all = feed("/v2/_trust/changefeed");
  REQUIRE(all["count"] == 3);
  CHECK(all["records"][2]["Category"] == "deletion");
  CHECK(c.request("GET", "/v2/" + gun + "/_trust/changefeed?records=0")->status == 400);
}

}  // namespace trust_test_http
