// LDAP directory login and sync against a real OpenLDAP slapd that the test starts
// (on a free loopback port, in a temp dir) and seeds.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "shared/base/fs.h"
#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace ldap_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

class Slapd {
 public:
  Slapd() : port_(freePort()) {
    REQUIRE(makeDirs(dir_ / "db").isOk());
    std::ofstream conf(dir_ / "slapd.conf");
    conf << "include /etc/ldap/schema/core.schema\n"
            "include /etc/ldap/schema/cosine.schema\n"
            "include /etc/ldap/schema/inetorgperson.schema\n"
            "modulepath /usr/lib/ldap\n"
            "moduleload back_mdb\n"
            "pidfile " << dir_ / "slapd.pid" << "\n"
            "database mdb\n"
            "suffix \"dc=example,dc=com\"\n"
            "rootdn \"cn=admin,dc=example,dc=com\"\n"
            "rootpw admin-secret\n"
            "directory " << dir_ / "db" << "\n";
    conf.close();
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/slapd", "-f", dir_ / "slapd.conf", "-h",
                                 "ldap://127.0.0.1:" + std::to_string(port_) + "/", "-d", "0"},
        dir_ / "slapd.log");
    bool up = waitFor([&] { return ldap("ldapsearch -x -LLL -s base -b '' namingContexts").exit_code == 0; }, 15000);
    REQUIRE(up);
    add(R"(dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=dana,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dana
cn: Dana
sn: D
mail: dana@example.com
userPassword: dana-directory-pw

dn: uid=eve,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: eve
cn: Eve
sn: E
mail: eve@example.com
userPassword: eve-directory-pw

dn: cn=developers,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: developers
member: uid=dana,ou=people,dc=example,dc=com
member: uid=eve,ou=people,dc=example,dc=com
)");
  }
  int port() const { return port_; }
  CommandResult ldap(const std::string& cmd) {
    return shell(cmd + " -H ldap://127.0.0.1:" + std::to_string(port_) + " 2>&1", 10000);
  }
  void add(const std::string& ldif) {
    REQUIRE(writeFileDurable(dir_ / "in.ldif", ldif).isOk());
    auto r = ldap("ldapadd -x -D cn=admin,dc=example,dc=com -w admin-secret -f " + dir_ / "in.ldif");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  }
  void modify(const std::string& ldif) {
    REQUIRE(writeFileDurable(dir_ / "mod.ldif", ldif).isOk());
    auto r = ldap("ldapmodify -x -D cn=admin,dc=example,dc=com -w admin-secret -f " + dir_ / "mod.ldif");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
};

std::string basic(const std::string& user, const std::string& pw) { return basicAuthorization(user, pw); }

int tokenStatus(HttpClient& c, const std::string& user, const std::string& pw) {
  auto r = c.request("GET", "/auth/token?service=wharf", {{"Authorization", basic(user, pw)}});
  REQUIRE(r.isOk());
  return r->status;
}

HttpResponse api(HttpClient& c, const std::string& method, const std::string& path, const json& body = nullptr) {
  HeaderList h = {{"Authorization", basic("admin", "ldap-admin-pw")}};
  std::string b;
  if (!body.is_null()) {
    h.push_back({"Content-Type", "application/json"});
    b = body.dump();
  }
  auto r = c.request(method, path, h, b);
  REQUIRE(r.isOk());
  return *r;
}

}  // namespace

TEST_CASE("directory users log in by binding, and the sync keeps users and teams in step", "[ldap][auth]") {
  if (!haveCommand("/usr/sbin/slapd") || !haveCommand("ldapadd")) {
    WARN("skipping: slapd and ldap-utils are not installed");
    return;
  }
  Slapd slapd;
  ::setenv("WHARF_ADMIN_PASSWORD", "ldap-admin-pw", 1);
  CoreServer core({}, {"--auth", "token"});
  HttpClient c("127.0.0.1", core.port());
  REQUIRE(api(c, "POST", "/api/v1/orgs", {{"name", "acme"}}).status == 201);
  json config = {{"url", "ldap://127.0.0.1:" + std::to_string(slapd.port())},
                 {"bind_dn", "cn=admin,dc=example,dc=com"},
                 {"bind_password", "admin-secret"},
                 {"user_base", "ou=people,dc=example,dc=com"},
                 {"group_base", "ou=groups,dc=example,dc=com"},
                 {"team_map", {{"developers", "acme/devs"}}}};
  auto r = api(c, "PUT", "/api/v1/ldap", config);
  INFO(r.body);
  REQUIRE(r.status == 200);
  // The bind password is write-only.
  r = api(c, "GET", "/api/v1/ldap");
  CHECK(r.body.find("admin-secret") == std::string::npos);
  CHECK(api(c, "POST", "/api/v1/ldap/test").status == 200);
  CHECK(api(c, "PUT", "/api/v1/ldap", {{"url", "http://x"}, {"user_base", "o=x"}}).status == 400);

  // Sync: users created, team membership from the group.
  r = api(c, "POST", "/api/v1/ldap/sync");
  INFO(r.body);
  REQUIRE(r.status == 200);
  json report = json::parse(r.body);
  CHECK(report["created"] == 2);
  CHECK(report["members_added"] == 2);
  r = api(c, "GET", "/api/v1/users/dana");
  CHECK(json::parse(r.body)["source"] == "ldap");
  CHECK(json::parse(r.body)["email"] == "dana@example.com");
  r = api(c, "GET", "/api/v1/orgs/acme/teams/devs/members");
  CHECK(json::parse(r.body)["items"] == json({"dana", "eve"}));

  // Login binds as the user; the password is never stored.
  CHECK(tokenStatus(c, "dana", "dana-directory-pw") == 200);
  CHECK(tokenStatus(c, "dana", "wrong") == 401);
  CHECK(tokenStatus(c, "dana", "") == 401);
  CHECK(tokenStatus(c, "nobody", "dana-directory-pw") == 401);
  // Filter injection in the user name is escaped (and refused).
  CHECK(tokenStatus(c, "*", "dana-directory-pw") == 401);
  CHECK(tokenStatus(c, "dana)(uid=*", "dana-directory-pw") == 401);
  CHECK(tokenStatus(c, "*)(|(uid=*", "eve-directory-pw") == 401);
  CHECK(core.log().find("dana-directory-pw") == std::string::npos);

  // eve leaves the group and dana leaves the directory: the next sync follows.
  slapd.modify("dn: cn=developers,ou=groups,dc=example,dc=com\nchangetype: modify\ndelete: member\n"
               "member: uid=eve,ou=people,dc=example,dc=com\n");
  auto del = slapd.ldap("ldapdelete -x -D cn=admin,dc=example,dc=com -w admin-secret uid=dana,ou=people,dc=example,dc=com");
  REQUIRE(del.exit_code == 0);
  r = api(c, "POST", "/api/v1/ldap/sync");
  report = json::parse(r.body);
  CHECK(report["disabled"] == 1);
  CHECK(report["members_removed"] == 2);
  CHECK(json::parse(api(c, "GET", "/api/v1/users/dana").body)["disabled"] == true);
  CHECK(json::parse(api(c, "GET", "/api/v1/orgs/acme/teams/devs/members").body)["items"].empty());
  CHECK(tokenStatus(c, "dana", "dana-directory-pw") == 401);
  CHECK(tokenStatus(c, "eve", "eve-directory-pw") == 200);
  // The sync is audited.
  r = api(c, "GET", "/api/v1/audit?action=ldap.sync");
  CHECK(json::parse(r.body)["items"].size() == 2);
}

}  // namespace ldap_test
