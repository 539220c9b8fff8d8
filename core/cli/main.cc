// wharfctl: the command line for a Wharf core's admin API.
//
//   wharfctl login https://registry.example.com -u alice [--password-stdin]
//   wharfctl user list | org create acme | repo set acme/api --public | ...
//
// login trades the password for a personal access token once and keeps only the token,
// in ~/.config/wharf/wharfctl.json (mode 0600).
//
// This file parses the command line and dispatches to the command families (cli.h).
#include <cstdio>
#include <string>

#include "core/cli/cli.h"
#include "shared/tls/crypto.h"

using namespace wharf;
using namespace wharf::cli;

namespace {

const char* kUsage = R"(Usage: wharfctl [--json] [--config FILE] [--cacert FILE] [--insecure] COMMAND ...

Session:
  login URL -u USER [-p PASSWORD | --password-stdin]   store an access token for URL
  logout                                              forget it (and revoke it)
  whoami
Users (administrators):
  user list | user show NAME | user create NAME --password P [--admin] [--email E]
  user delete NAME | user disable NAME | user enable NAME | user passwd NAME --password P
Organizations and teams:
  org list | org show ORG | org create ORG | org delete ORG
  org member-add ORG USER [--role owner|member] | org member-remove ORG USER
  team list ORG | team create ORG TEAM [--description D] | team delete ORG TEAM
  team members ORG TEAM | team member-add ORG TEAM USER | team member-remove ORG TEAM USER
Repositories and permissions:
  repo list | repo show NAME | repo create NAME [--public] [--description D]
  repo set NAME [--public | --private] [--description D] | repo delete NAME
  perm list REPO | perm set REPO user|team NAME read|write|admin | perm remove REPO user|team NAME
Access tokens:
  token list [USER] | token create [--name N] [--scope repository:NAME:ACTIONS]... [--expires-days D]
  token revoke ID
Audit and keys (administrators):
  audit [--actor A] [--action X] [--object O] [--outcome O] [--limit N] [--after SEQ]
  keys rotate [--overlap-seconds S]
Events and webhooks (wharfctl events --help, wharfctl webhook --help):
  events [--repo R] [--type T] [--actor A] [--since SEQ] [-f]   list, or follow the live feed
  webhook add --scope S --url U --events T,... [--secret-file F] | webhook ls | webhook rm ID
  webhook show ID | webhook set ID ... | webhook deliveries ID | webhook test ID
Edges (administrators; wharfctl edge --help for details):
  edge add --name N --site S [--ttl 24h] [SETTINGS]   prints the join token and the wharf-edge line
  edge ls | edge show N | edge rm N | edge set N [SETTINGS] [--unset KEY]
  edge report [N] [--since 7d] [--by repo|day|hour|edge|site] [--csv]   bandwidth of an edge or the fleet
Storage (administrators; wharfctl gc --help, wharfctl policy --help):
  gc [--dry-run] [--untagged-older-than 7d] [--grace 1h] [--no-retention] [--yield N] [-f]
  policy ls | policy show SCOPE | policy rm SCOPE
  policy set SCOPE [--immutable PATTERN]... [--keep-last N] [--keep-days D] [--match PATTERN]
  usage [SCOPE] [--bytes]                              space used by team/app, team/* or * (all)
Scanning (wharfctl scan --help, wharfctl vulndb --help):
  scan show REPO:TAG|REPO@DIGEST [--packages] | scan run REF [-f] | scan sbom REF [--format spdx|cyclonedx]
  vulndb show | vulndb import FILE.zip [-f] | vulndb update [-f]
Jobs and schedules (administrators; wharfctl job --help, wharfctl schedule --help):
  job ls [--kind K] [--state S] | job show ID | job log ID [-f] | job kinds
  job run KIND [--param k=v]... [-f] | job cancel ID | job retry ID
  schedule ls | schedule show NAME | schedule rm NAME
  schedule set NAME --cron EXPR --kind K [--param k=v]... [--disable | --enable]
Scale-out database (wharfctl db --help):
  db migrate --metadata postgres://... [--dry-run]     apply (or list) the registry index's schema migrations
  migrate --from DATA_DIR --to postgres://... --blobs s3://...|file:///... [--dry-run]
                                                      move an embedded installation to the scale-out one
  blobstore upgrade --blobs s3://...                  move an S3 blob store to this version's layout
)";

int run(const Args& a) {
  if (!a.pos.empty() && (a.pos[0] == "job" || a.pos[0] == "schedule") && (a.has("help") || a.pos.size() == 1)) {
    return familyHelp(a, a.pos[0] == "job" ? kJobHelp : kScheduleHelp);
  }
  if (!a.pos.empty() && a.pos[0] == "edge" && (a.has("help") || a.pos.size() == 1)) return familyHelp(a, kEdgeHelp);
  if (!a.pos.empty() && a.pos[0] == "scan" && (a.has("help") || a.pos.size() == 1)) return familyHelp(a, kScanHelp);
  if (!a.pos.empty() && a.pos[0] == "vulndb" && (a.has("help") || a.pos.size() == 1)) return familyHelp(a, kVulnDbHelp);
  if (!a.pos.empty() && a.pos[0] == "events" && a.has("help")) return std::fputs(kEventsHelp, stdout), 0;
  if (!a.pos.empty() && a.pos[0] == "db" && (a.has("help") || a.pos.size() == 1)) {
    return std::fputs(kDbHelp, a.has("help") ? stdout : stderr), a.has("help") ? 0 : 2;
  }
  if (!a.pos.empty() && a.pos[0] == "migrate" && a.has("help")) return std::fputs(kMigrateHelp, stdout), 0;
  if (!a.pos.empty() && a.pos[0] == "blobstore" && (a.has("help") || a.pos.size() == 1)) {
    return std::fputs(kBlobstoreHelp, a.has("help") ? stdout : stderr), a.has("help") ? 0 : 2;
  }
  if (!a.pos.empty() && a.pos[0] == "gc" && a.has("help")) return std::fputs(kGcHelp, stdout), 0;
  if (!a.pos.empty() && a.pos[0] == "policy" && (a.has("help") || a.pos.size() == 1)) {
    return std::fputs(kPolicyHelp, a.has("help") ? stdout : stderr), a.has("help") ? 0 : 2;
  }
  if (!a.pos.empty() && a.pos[0] == "webhook" && (a.has("help") || a.pos.size() == 1)) {
    return familyHelp(a, kWebhookHelp);
  }
  if (a.pos.empty() || a.has("help")) {
    std::fputs(kUsage, a.pos.empty() && !a.has("help") ? stderr : stdout);
    return a.has("help") ? 0 : 2;
  }
  const std::string& cmd = a.pos[0];
  if (cmd == "login") return login(a);
  if (cmd == "db") return db(a);
  if (cmd == "migrate") return migrate(a);
  if (cmd == "blobstore") return blobstore(a);
  Session s = loadSession(a);
  if (s.url.empty() || s.token.empty()) die("not logged in: run wharfctl login URL -u USER", 2);
  Api api(s, basicAuthorization(s.user, s.token));
  if (cmd == "logout") return logout(a, api, s);
  if (cmd == "whoami") return whoami(a, api);
  if (cmd == "user") return user(a, api);
  if (cmd == "token") return token(a, api, s);
  if (cmd == "org") return org(a, api);
  if (cmd == "team") return team(a, api);
  if (cmd == "repo") return repo(a, api);
  if (cmd == "perm") return perm(a, api);
  if (cmd == "audit") return audit(a, api);
  if (cmd == "keys") return keys(a, api);
  if (cmd == "edge") return edge(a, api, s);
  if (cmd == "events") return events(a, api, s);
  if (cmd == "webhook") return webhook(a, api);
  if (cmd == "gc") return gc(a, api);
  if (cmd == "policy") return policy(a, api);
  if (cmd == "usage") return usage(a, api);
  if (cmd == "job") return job(a, api);
  if (cmd == "schedule") return schedule(a, api);
  if (cmd == "scan") return scan(a, api);
  if (cmd == "vulndb") return vulndb(a, api);
  die("unknown command (see --help)", 2);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 1 && s[0] == '-') {
      std::string name = s.substr(s[1] == '-' ? 2 : 1);
      std::string value;
      auto eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (!isSwitch(name)) {
        if (i + 1 >= argc) die("--" + name + " needs a value", 2);
        value = argv[++i];
      }
      if (name == "h") name = "help";
      a.flags[name].push_back(value);
    } else {
      a.pos.push_back(s);
    }
  }
  return run(a);
}
