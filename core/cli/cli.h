// wharfctl's shared pieces: the parsed command line, the stored session, the admin API
// client and the output helpers every command family uses. One file per command family
// (users.cc, orgs.cc, repos.cc, audit.cc, edges.cc, jobs.cc, storage.cc, events.cc);
// main.cc parses the arguments and dispatches.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
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

 private:
  std::string auth_;
  std::unique_ptr<BlockingClient> client_;
};

// A JSON value as table text: strings as they are, arrays comma-joined, null empty.
std::string cell(const json& v);

// Prints j: with as_json the JSON itself; else a list as a table, an object as key: value lines.
void print(const json& j, bool as_json);

// A table of the given columns (title, key); value(row, key) renders a cell.
template <typename F>
void printColumns(const json& rows, const std::vector<std::pair<std::string, std::string>>& cols, F value) {
  if (rows.empty()) {
    std::cout << "(none)\n";
    return;
  }
  std::vector<size_t> width;
  for (const auto& [title, key] : cols) {
    size_t w = title.size();
    for (const auto& r : rows) w = std::max(w, value(r, key).size());
    width.push_back(w);
  }
  auto line = [&](auto get) {
    std::string out;
    for (size_t c = 0; c < cols.size(); ++c) {
      std::string v = get(c);
      out += v;
      if (c + 1 < cols.size()) out += std::string(width[c] - v.size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line([&](size_t c) { return cols[c].first; });
  for (const auto& r : rows) line([&](size_t c) { return value(r, cols[c].second); });
}

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
