// The trust server with the real notary CLI (Debian's notary 0.7) against a running core
// with token auth: init, add, publish, list, and a second user without push refused.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

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
