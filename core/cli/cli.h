// wharfctl's shared pieces: the parsed command line, the stored session, the admin API
// client and the output helpers every command family uses. One file per command family
// (users.cc, orgs.cc, repos.cc, audit.cc, edges.cc, jobs.cc, storage.cc, events.cc,
// scans.cc; db.cc, migrate.cc and blobstore.cc work on the stores directly);
// main.cc parses the arguments and dispatches.
#pragma once

#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/http/blocking_client.h"

namespace wharf::cli {

using nlohmann::json;

// The command line: positional words and --flags (each flag's values in order).
struct Args {
  std::vector<std::string> pos;
  std::map<std::string, std::vector<std::string>> flags;
  bool has(const std::string& k) const { return flags.count(k) > 0; }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = flags.find(k);
    return it == flags.end() || it->second.empty() ? def : it->second.back();
  }
};

// Flags that take no value.
bool isSwitch(const std::string& f);

// Prints "wharfctl: msg" to stderr and exits with code (2: a usage error).
[[noreturn]] void die(const std::string& msg, int code = 1);

// The i-th positional word; dies naming `what` when it is missing.
std::string need(const Args& a, size_t i, const char* what);

// --config, else ~/.config/wharf/wharfctl.json.
std::string configPath(const Args& a);

// What login stored, with --cacert and --insecure applied.
struct Session {
  std::string url, user, token, token_id, cacert;
  bool insecure = false;
};

Session loadSession(const Args& a);

// The core's admin API (/api/v1). call() returns the JSON body ({} for 204) and dies with
// "HTTP <status>: <message>" on an error status or a transport failure.
class Api {
 public:
  Api(const Session& s, std::string authorization);
  json call(const std::string& method, const std::string& path, const json& body = nullptr);
  // The body as text (a CSV answer); dies as call() does.
  std::string text(const std::string& method, const std::string& path);
  // POSTs the file at file as the body (streamed, not read into memory); dies as call() does.
  json upload(const std::string& path, const std::string& file, const std::string& content_type);

 private:
  std::string auth_;
  std::string host_;
  std::unique_ptr<BlockingClient> client_;
};

// --- output -----------------------------------------------------------------------------
// Human output: lists are tables with a fixed column order (printTable), single objects
// "key: value" lines (printFields), times local RFC 3339, sizes in binary units. --json
// prints the API's JSON as it is (printJson).

// A JSON value as text: strings as they are, arrays comma-joined, null empty.
std::string cell(const json& v);

// A millisecond timestamp as local time, RFC 3339 to the second with the local offset:
// "2026-12-05T13:04:05+01:00" (TZ decides the zone; UTC is "+00:00").
std::string localTime(int64_t millis);

// An API time as local time: epoch milliseconds (a number) or an RFC 3339 string. `none`
// for null and 0; any other value (a string that is not RFC 3339) as cell() shows it.
std::string localTime(const json& v, const std::string& none = "-");

// Whether an API object's key holds a time (time, ts, created, expires, *_at, last_seen,
// last_run, next_run).
bool isTimeKey(const std::string& key);

// Bytes in binary units with one decimal: "512 B", "1.0 KiB", "1.5 GiB".
std::string humanSize(uint64_t bytes);

// One table column: its title and how a row (a JSON object) shows in it.
struct Column {
  std::string title;
  std::function<std::string(const json& row)> value;
};

// row[key] as cell() shows it; "-" when missing, null or empty.
Column field(std::string title, std::string key);

// row[key] as local time; `none` when missing, null or 0.
Column timeField(std::string title, std::string key, std::string none = "-");

// Prints rows as a table: a header of the titles, then one line per row, the columns in
// the order given and padded to their widest cell. "(none)" when there are no rows.
void printTable(const json& rows, const std::vector<Column>& cols);

// The JSON itself, indented (what --json prints).
void printJson(const json& j);

// An object as "key: value" lines, in key order; time keys (isTimeKey) as local time.
void printFields(const json& obj);

// With as_json, printJson. Else a list of names (an array of strings, or an object whose
// "items" is one) as a one-column NAME table, and an object as printFields. Lists of
// objects have their own tables (printTable); one reaching here prints one JSON line per item.
void print(const json& j, bool as_json);

// A command family's help: the subcommand's when it has its own, else the overview; to
// stdout for --help, to stderr (exit 2) for a family named without a subcommand.
int familyHelp(const Args& a, const std::map<std::string, std::string>& help);

// --- command families: each returns the exit status, or dies ---------------------------

// users.cc: the session, users and access tokens.
int login(const Args& a);
int logout(const Args& a, Api& api, const Session& s);
int whoami(const Args& a, Api& api);
int user(const Args& a, Api& api);
int token(const Args& a, Api& api, const Session& s);

// orgs.cc: organizations, their members and teams.
int org(const Args& a, Api& api);
int team(const Args& a, Api& api);

// repos.cc: repositories and their permissions.
int repo(const Args& a, Api& api);
int perm(const Args& a, Api& api);

// audit.cc: the audit log and the token-signing keys.
int audit(const Args& a, Api& api);
int keys(const Args& a, Api& api);

// edges.cc
extern const std::map<std::string, std::string> kEdgeHelp;
int edge(const Args& a, Api& api, const Session& s);

// jobs.cc: jobs and schedules.
extern const std::map<std::string, std::string> kJobHelp;
extern const std::map<std::string, std::string> kScheduleHelp;
int job(const Args& a, Api& api);
int schedule(const Args& a, Api& api);
// Prints the log of job id; with follow, until the job ends. Returns the exit status:
// with follow, 0 if the job succeeded, else 1.
int jobLog(Api& api, const std::string& id, bool follow, bool js);

// scans.cc: scan results, SBOMs and the vulnerability database.
extern const std::map<std::string, std::string> kScanHelp;
extern const std::map<std::string, std::string> kVulnDbHelp;
int scan(const Args& a, Api& api);
int vulndb(const Args& a, Api& api);
// db.cc: the scale-out database itself (no session: it connects to PostgreSQL).
extern const char* kDbHelp;
int db(const Args& a);
extern const char* kMigrateHelp;
int migrate(const Args& a);
extern const char* kBlobstoreHelp;
int blobstore(const Args& a);

// storage.cc: garbage collection, storage policies, usage.
extern const char* const kGcHelp;
extern const char* const kPolicyHelp;
int gc(const Args& a, Api& api);
int policy(const Args& a, Api& api);
int usage(const Args& a, Api& api);

// events.cc: the event log and webhooks.
extern const char* const kEventsHelp;
extern const std::map<std::string, std::string> kWebhookHelp;
int events(const Args& a, Api& api, const Session& s);
int webhook(const Args& a, Api& api);

}  // namespace wharf::cli
