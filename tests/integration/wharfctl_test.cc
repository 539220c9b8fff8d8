// wharfctl against a real core: login, accounts, organizations, repositories,
// permissions, tokens, audit, logout.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "tests/support/process.h"

using namespace wharf::test;
using nlohmann::json;

TEST_CASE("wharfctl manages a core end to end", "[wharfctl][auth]") {
  ::setenv("WHARF_ADMIN_PASSWORD", "ctl-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  TempDir home;
  std::string cfg = home / "wharfctl.json";
  auto ctl = [&](const std::string& args) {
    return shell(wharfctlBinary() + " --config " + cfg + " " + args + " 2>&1");
  };
  CHECK(ctl("whoami").exit_code == 2);  // not logged in yet
  CHECK(ctl("--help").output.find("login URL") != std::string::npos);
  auto r = shell("echo wrong | " + wharfctlBinary() + " --config " + cfg + " login " + core.url() +
                 " -u admin --password-stdin 2>&1");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("401") != std::string::npos);
  r = shell("echo ctl-admin-password | " + wharfctlBinary() + " --config " + cfg + " login " + core.url() +
            " -u admin --password-stdin 2>&1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // Only the token is kept, readable by the owner alone.
  CHECK(shell("stat -c %a " + cfg).output == "600\n");
  CHECK(shell("grep -c ctl-admin-password " + cfg).output == "0\n");

  CHECK(ctl("user create dev --password dev-password-1").exit_code == 0);
  CHECK(ctl("org create acme").exit_code == 0);
  CHECK(ctl("team create acme builders").exit_code == 0);
  CHECK(ctl("team member-add acme builders dev").exit_code == 0);
  CHECK(ctl("repo create acme/api --description 'the api'").exit_code == 0);
  CHECK(ctl("perm set acme/api team builders write").exit_code == 0);

  r = ctl("--json perm list acme/api");
  REQUIRE(r.exit_code == 0);
  auto perms = json::parse(r.output)["items"];
  REQUIRE(perms.size() == 1);
  CHECK(perms[0]["name"] == "acme/builders");
  CHECK(perms[0]["role"] == "write");
  r = ctl("repo list");
  CHECK(r.output.find("acme/api") != std::string::npos);
  CHECK(r.output.find("NAME") != std::string::npos);  // a table
  r = ctl("--json team members acme builders");
  CHECK(json::parse(r.output)["items"] == json({"dev"}));

  r = ctl("token create --name ci --scope 'repository:acme/*:pull'");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("wharf_pat_") != std::string::npos);
  r = ctl("--json audit --action team.member.add");
  auto items = json::parse(r.output)["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["object"] == "acme/builders/dev");
  // Errors are clear and non-zero.
  r = ctl("user show nobody");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("no user nobody") != std::string::npos);
  CHECK(ctl("logout").exit_code == 0);
  CHECK(ctl("whoami").exit_code == 2);
}
