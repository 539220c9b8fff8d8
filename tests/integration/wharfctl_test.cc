// wharfctl against a real core: login, accounts, organizations, repositories,
// permissions, tokens, audit, logout; the human output (tables in reading order, local
// RFC 3339 times, human sizes).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <ctime>
#include <sstream>
#include <vector>

#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/support/http_client.h"
#include "tests/support/oci_layout.h"
#include "tests/support/process.h"

// Each file's own names: the test binaries are unity builds.
namespace wharfctl_test {

using namespace wharf;
using namespace wharf::test;
using nlohmann::json;

namespace {

// Line n (0-based) of text, without its newline; "" past the end.
std::string lineOf(const std::string& text, size_t n) {
  std::istringstream in(text);
  std::string line;
  for (size_t i = 0; i <= n; ++i) {
    if (!std::getline(in, line)) return "";
  }
  return line;
}

// The whitespace-separated words of a line.
std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// A millisecond timestamp as RFC 3339 at a fixed offset east of UTC, computed here
// without the C library's zones: what wharfctl must print under TZ with that offset.
std::string rfc3339At(int64_t ms, int offset_s) {
  std::time_t t = static_cast<std::time_t>(ms / 1000 + offset_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  int off = std::abs(offset_s);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, offset_s < 0 ? '-' : '+', off / 3600, off % 3600 / 60);
  return buf;
}

// POSIX TZ values (no zone database needed) and their offsets east of UTC.
constexpr const char* kTzPlus0530 = "XST-5:30";
constexpr int kPlus0530 = 5 * 3600 + 30 * 60;
constexpr const char* kTzMinus3 = "YST3";
constexpr int kMinus3 = -3 * 3600;

// Pushes an image to repo:tag as user: a config, one layer of layer_size random bytes.
void pushImage(const CoreServer& core, const std::string& user, const std::string& pw, const std::string& repo,
               const std::string& tag, size_t layer_size) {
  HttpClient c("127.0.0.1", core.port());
  auto t = c.request("GET", "/auth/token?service=wharf&scope=repository:" + repo + ":pull,push",
                     {{"Authorization", basicAuthorization(user, pw)}});
  REQUIRE(t.isOk());
  REQUIRE(t->status == 200);
  HeaderList auth = {{"Authorization", "Bearer " + json::parse(t->body)["token"].get<std::string>()}};
  std::string config = R"({"architecture":"amd64","os":"linux"})";
  std::string layer = randomData(layer_size, 7);
  for (const std::string* b : {&config, &layer}) {
    auto r = c.request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + digestOf(*b).str(), auth, *b);
    REQUIRE(r.isOk());
    REQUIRE(r->status == 201);
  }
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", digestOf(config).str()},
                        {"size", config.size()}}},
            {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", digestOf(layer).str()},
                         {"size", layer.size()}}}}};
  auth.push_back({"Content-Type", "application/vnd.oci.image.manifest.v1+json"});
  auto r = c.request("PUT", "/v2/" + repo + "/manifests/" + tag, auth, m.dump());
  REQUIRE(r.isOk());
  INFO(r->body);
  REQUIRE(r->status == 201);
}

}  // namespace

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
  REQUIRE(items[0]["time"].is_number_integer());  // --json is the API's own: epoch milliseconds
  int64_t audit_ms = items[0]["time"];

  // The audit table: reading order, the object as TARGET, local time as RFC 3339, in
  // whatever zone TZ says; never the raw milliseconds.
  for (auto [tz, offset] : {std::pair{kTzPlus0530, kPlus0530}, std::pair{kTzMinus3, kMinus3}}) {
    r = shell(std::string("TZ=") + tz + " " + wharfctlBinary() + " --config " + cfg + " audit --action team.member.add");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(words(lineOf(r.output, 0)) == std::vector<std::string>{"TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME"});
    CHECK(words(lineOf(r.output, 1)) ==
          std::vector<std::string>{rfc3339At(audit_ms, offset), "admin", "team.member.add", "acme/builders/dev", "success"});
    CHECK(lineOf(r.output, 2).empty());
    CHECK(r.output.find(std::to_string(audit_ms / 1000)) == std::string::npos);
  }
  // DETAIL comes last, when an entry has one (token.create: the token's id).
  r = ctl("audit --action token.create");
  INFO(r.output);
  CHECK(words(lineOf(r.output, 0)) ==
        std::vector<std::string>{"TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAIL"});
  CHECK(words(lineOf(r.output, 1)).size() == 6);
  // Errors are clear and non-zero.
  r = ctl("user show nobody");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("no user nobody") != std::string::npos);
  CHECK(ctl("logout").exit_code == 0);
  CHECK(ctl("whoami").exit_code == 2);
}

TEST_CASE("wharfctl tables: columns in reading order, local times, human sizes", "[wharfctl]") {
  ::setenv("WHARF_ADMIN_PASSWORD", "ctl-admin-password", 1);
  CoreServer core({}, {"--auth", "token"});
  TempDir home;
  std::string cfg = home / "wharfctl.json";
  auto ctl = [&](const std::string& args) {
    return shell(std::string("TZ=") + kTzPlus0530 + " " + wharfctlBinary() + " --config " + cfg + " " + args);
  };
  auto r = shell("echo ctl-admin-password | " + wharfctlBinary() + " --config " + cfg + " login " + core.url() +
                 " -u admin --password-stdin 2>&1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  // user list: NAME first, CREATED (local RFC 3339) last.
  REQUIRE(ctl("user create dev --password dev-password-1 --email dev@example.com").exit_code == 0);
  r = ctl("--json user show dev");
  REQUIRE(r.exit_code == 0);
  int64_t created_ms = json::parse(r.output)["created"];
  r = ctl("user list");
  INFO(r.output);
  CHECK(words(lineOf(r.output, 0)) ==
        std::vector<std::string>{"NAME", "EMAIL", "ADMIN", "DISABLED", "SOURCE", "CREATED"});
  bool found = false;
  for (size_t i = 1; !lineOf(r.output, i).empty(); ++i) {
    auto w = words(lineOf(r.output, i));
    if (w.empty() || w[0] != "dev") continue;
    found = true;
    REQUIRE(w.size() == 6);
    CHECK(w[1] == "dev@example.com");
    CHECK(w[5] == rfc3339At(created_ms, kPlus0530));
  }
  CHECK(found);
  // A single object keeps its key: value lines, its times local too.
  r = ctl("user show dev");
  CHECK(r.output.find("created: " + rfc3339At(created_ms, kPlus0530) + "\n") != std::string::npos);
  CHECK(r.output.find(std::to_string(created_ms)) == std::string::npos);

  // usage: a table with the size in binary units; --bytes the exact count; --json as the API has it.
  REQUIRE(ctl("org create acme").exit_code == 0);
  pushImage(core, "admin", "ctl-admin-password", "acme/api", "v1", 1536 * 1024);  // 1.5 MiB and a little
  r = ctl("--json usage 'acme/*'");
  REQUIRE(r.exit_code == 0);
  json u = json::parse(r.output);
  CHECK(u["scope"] == "acme/*");
  uint64_t bytes = u["bytes"];
  REQUIRE(bytes > 1536 * 1024);
  REQUIRE(bytes < 1536 * 1024 + 50 * 1024);  // so that it shows as 1.5 MiB
  r = ctl("usage 'acme/*'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(words(lineOf(r.output, 0)) == std::vector<std::string>{"SCOPE", "SIZE", "BLOBS", "MANIFESTS", "REPOSITORIES"});
  CHECK(words(lineOf(r.output, 1)) == std::vector<std::string>{"acme/*", "1.5", "MiB", "3", "1", "1"});
  CHECK(r.output.find(std::to_string(bytes)) == std::string::npos);
  r = ctl("usage 'acme/*' --bytes");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(words(lineOf(r.output, 0)) == std::vector<std::string>{"SCOPE", "BYTES", "BLOBS", "MANIFESTS", "REPOSITORIES"});
  CHECK(words(lineOf(r.output, 1)) == std::vector<std::string>{"acme/*", std::to_string(bytes), "3", "1", "1"});
  r = ctl("usage 'other/*'");  // nothing there
  CHECK(words(lineOf(r.output, 1)) == std::vector<std::string>{"other/*", "0", "B", "0", "0", "0"});

  // token list: reading order; a token without an expiry never expires.
  r = ctl("token create --name ci");
  REQUIRE(r.exit_code == 0);
  r = ctl("token list");
  INFO(r.output);
  CHECK(words(lineOf(r.output, 0)) == std::vector<std::string>{"ID", "NAME", "USER", "SCOPES", "CREATED", "EXPIRES"});
  CHECK(r.output.find(" never") != std::string::npos);
}

}  // namespace wharfctl_test
