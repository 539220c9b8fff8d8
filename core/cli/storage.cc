// wharfctl's storage commands (administrators): gc, policy, usage.
#include <cstdlib>

#include "core/cli/cli.h"
#include "shared/http/url.h"

namespace wharf::cli {

const char* const kGcHelp = R"(Usage: wharfctl gc [OPTIONS]   (administrators)

Runs garbage collection as a job (kind gc) and prints its id, or follows its log with -f.
Pushes and pulls go on meanwhile. In order: tags the retention policies no longer keep,
untagged manifests older than --untagged-older-than (except the children of kept indexes
and the referrers of kept images), then content no manifest references.

  --dry-run                   report what would go and how many bytes; delete nothing
  --untagged-older-than DUR   also delete untagged manifests older than DUR (7d, 12h, ...)
  --grace DUR                 never collect content younger than DUR (default 1h)
  --no-retention              do not apply the retention policies
  --yield N                   pause after each batch of deletions N times its duration
                              (default 2; 0: full speed, for maintenance windows)
  -f, --follow                follow the job's log until it ends (exit 0 if it succeeded)

Recurring: wharfctl schedule set gc-weekly --cron '0 3 * * 0' --kind gc --param untagged_older_than=14d
)";

const char* const kPolicyHelp = R"(Usage: wharfctl policy COMMAND ...   (administrators)

Storage policies per repository (team/app) or namespace (team/*):

  ls                        every policy
  show SCOPE
  set SCOPE [--immutable PATTERN]... [--keep-last N] [--keep-days D] [--match PATTERN]
        --immutable   tags matching PATTERN (v*, release-*) can be neither overwritten nor
                      deleted: pushes get 403 DENIED naming the rule
        --keep-last   retention: keep the N most recently pushed tags matching --match
        --keep-days   retention: keep the tags matching --match pushed within D days
        --match       which tags retention applies to (default *); other tags are kept
      Retention runs at push time and in every gc job; immutable tags are never expired.
  rm SCOPE
)";

int gc(const Args& a, Api& api) {
  json params = json::object();
  if (a.has("dry-run")) params["dry_run"] = true;
  if (a.has("no-retention")) params["retention"] = false;
  if (a.has("untagged-older-than")) params["untagged_older_than"] = a.get("untagged-older-than");
  if (a.has("grace")) params["grace"] = a.get("grace");
  if (a.has("yield")) params["yield"] = std::atof(a.get("yield").c_str());
  json r = api.call("POST", "/jobs", {{"kind", "gc"}, {"params", params}});
  std::string id = r.value("id", "");
  bool follow = a.has("f") || a.has("follow");
  if (!follow) {
    if (a.has("json")) return printJson(r), 0;
    std::cerr << "Garbage collection job " << id << " queued (wharfctl job log " << id << " -f).\n";
    std::cout << id << "\n";
    return 0;
  }
  return jobLog(api, id, true, a.has("json"));
}

int policy(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  if (sub == "ls" || sub == "list") {
    json r = api.call("GET", "/policies");
    if (js) return printJson(r), 0;
    // Retention's parts as columns; "-" where a policy has none.
    auto retention = [](std::string title, std::string key) {
      return Column{std::move(title), [key = std::move(key)](const json& p) {
                      const json& r = p.value("retention", json::object());
                      return r.contains(key) ? cell(r[key]) : std::string("-");
                    }};
    };
    printTable(r.value("items", json::array()),
               {field("SCOPE", "scope"), field("IMMUTABLE", "immutable"), retention("MATCH", "match"),
                retention("KEEP LAST", "keep_last"), retention("KEEP DAYS", "keep_days")});
    return 0;
  }
  std::string scope = need(a, 2, "scope (team/app or team/*)");
  std::string path = "/policies/" + scope;
  if (sub == "show") return print(api.call("GET", path), js), 0;
  if (sub == "rm" || sub == "remove" || sub == "delete") {
    api.call("DELETE", path);
    std::cout << "Policy " << scope << " removed.\n";
    return 0;
  }
  if (sub == "set") {
    json body = json::object();
    if (a.has("immutable")) body["immutable"] = a.flags.at("immutable");
    if (a.has("keep-last") || a.has("keep-days")) {
      json r = {{"match", a.get("match", "*")}};
      if (a.has("keep-last")) r["keep_last"] = std::atoll(a.get("keep-last").c_str());
      if (a.has("keep-days")) r["keep_days"] = std::atoll(a.get("keep-days").c_str());
      body["retention"] = r;
    }
    return print(api.call("PUT", path, body), js), 0;
  }
  die("unknown policy command (see wharfctl policy --help)", 2);
}

// A one-row table: SCOPE, SIZE (binary units; BYTES, exact, with --bytes), BLOBS,
// MANIFESTS, REPOSITORIES.
int usage(const Args& a, Api& api) {
  json r = api.call("GET", "/usage?scope=" + percentEncode(a.pos.size() > 1 ? a.pos[1] : "*"));
  if (a.has("json")) return printJson(r), 0;
  bool raw = a.has("bytes");
  printTable(json::array({r}), {field("SCOPE", "scope"),
                                {raw ? "BYTES" : "SIZE",
                                 [raw](const json& u) {
                                   uint64_t bytes = u.value("bytes", uint64_t{0});
                                   return raw ? std::to_string(bytes) : humanSize(bytes);
                                 }},
                                field("BLOBS", "blobs"), field("MANIFESTS", "manifests"),
                                field("REPOSITORIES", "repositories")});
  return 0;
}

}  // namespace wharf::cli
