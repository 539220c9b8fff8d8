// wharfctl: the command line for a Wharf core's admin API.
//
//   wharfctl login https://registry.example.com -u alice [--password-stdin]
//   wharfctl user list | org create acme | repo set acme/api --public | ...
//
// login trades the password for a personal access token once and keeps only the token,
// in ~/.config/wharf/wharfctl.json (mode 0600).
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/fs.h"
#include "shared/http/blocking_client.h"
#include "shared/http/client.h"
#include "shared/http/url.h"
#include "shared/tls/crypto.h"
#include "shared/tls/tls.h"

using namespace wharf;
using nlohmann::json;

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
Storage (administrators; wharfctl gc --help, wharfctl policy --help):
  gc [--dry-run] [--untagged-older-than 7d] [--grace 1h] [--no-retention] [--yield N] [-f]
  policy ls | policy show SCOPE | policy rm SCOPE
  policy set SCOPE [--immutable PATTERN]... [--keep-last N] [--keep-days D] [--match PATTERN]
  usage [SCOPE]                                        bytes used by team/app, team/* or * (all)
Jobs and schedules (administrators; wharfctl job --help, wharfctl schedule --help):
  job ls [--kind K] [--state S] | job show ID | job log ID [-f] | job kinds
  job run KIND [--param k=v]... [-f] | job cancel ID | job retry ID
  schedule ls | schedule show NAME | schedule rm NAME
  schedule set NAME --cron EXPR --kind K [--param k=v]... [--disable | --enable]
)";

// Help for each edge subcommand ("" is the overview).
const std::map<std::string, std::string> kEdgeHelp = {
    {"", R"(Usage: wharfctl edge COMMAND ...   (administrators)

  add --name N --site S [--ttl 24h] [SETTINGS] [--data-dir DIR]
                       register a new edge: prints its single-use join token
  ls                   list edges (state pending until the edge registers)
  show N               one edge
  rm N                 remove an edge; its join token and credential stop working at once
  set N [SETTINGS] [--unset KEY]...
                       change an edge's settings (the others are kept)

SETTINGS (sent to the edge when it registers and when it asks again):
  --tag-ttl DURATION         how long a tag is served from cache (60s, 5m, 1h)
  --cache-budget SIZE        bytes of blobs the edge may hold (10GiB, 512m)
  --high-watermark PERCENT   evict above this percentage of the budget (1-100)
  --low-watermark PERCENT    evict down to this percentage (1-100, below the high one)

wharfctl edge COMMAND --help shows one command.
)"},
    {"add", R"(Usage: wharfctl edge add --name N --site S [--ttl DURATION] [SETTINGS] [--data-dir DIR]

Adds the edge N (lower-case letters, digits and '-', up to 63 characters) at site S and
prints its join token (shown once) and the command to run on the edge host:
  wharf-edge --core <this core's URL> --join-token <token> --data-dir DIR
The token works once and expires after --ttl (default 24h, 60s to 30d).
DIR is only printed (default /var/lib/wharf-edge).
SETTINGS: --tag-ttl 5m --cache-budget 20GiB --high-watermark 90 --low-watermark 80
)"},
    {"ls", R"(Usage: wharfctl edge ls [--json]

Lists every edge: name, site, state (pending or registered), when it was added and
registered, when it last asked the core for its settings, and its settings.
)"},
    {"show", R"(Usage: wharfctl edge show N [--json]

Shows the edge N.
)"},
    {"rm", R"(Usage: wharfctl edge rm N

Removes the edge N. Its join token (if unused) and its credential stop working at once;
adding it again gives a new join token.
)"},
    {"set", R"(Usage: wharfctl edge set N [--tag-ttl DURATION] [--cache-budget SIZE]
                          [--high-watermark PERCENT] [--low-watermark PERCENT] [--unset KEY]...

Changes the named settings of the edge N and keeps the others; --unset KEY (tag_ttl,
cache_budget, high_watermark, low_watermark) removes one, so the edge uses its own default.
)"},
};

// Help for each job and schedule subcommand ("" is the overview).
const std::map<std::string, std::string> kJobHelp = {
    {"", R"(Usage: wharfctl job COMMAND ...   (administrators)

  ls [--kind K] [--state S] [--actor A] [--limit N] [--before ID]
                       list jobs, newest first
  show ID              one job: state, times, progress, result or error
  log ID [-f]          its log; -f follows it until the job ends (exit 0 if it succeeded)
  run KIND [--param k=v]... [-f]
                       start a job (-f: follow its log)
  cancel ID            cancel a queued job at once, or ask a running one to stop
  retry ID             run a failed or cancelled job again (a new job)
  kinds                the kinds of job this core runs

wharfctl job COMMAND --help shows one command. Schedules: wharfctl schedule --help.
)"},
    {"ls", R"(Usage: wharfctl job ls [--kind K] [--state S] [--actor A] [--limit N] [--before ID] [--json]

Lists jobs, newest first (50 unless --limit, at most 1000). --state is one of queued,
running, succeeded, failed, cancelled; --actor is a user name or schedule:<name>. When
there are more, the last line says which --before ID shows the next page.
)"},
    {"show", R"(Usage: wharfctl job show ID [--json]

Shows the job ID (leading zeros may be left out: 42 is 0000000042): kind, state, actor,
params, times, progress, result or error, whether it was interrupted by a restart, and
the job it retries.
)"},
    {"log", R"(Usage: wharfctl job log ID [-f | --follow] [--json]

Prints the job's log, one line per entry with its time. With -f, keeps printing lines as
they arrive until the job ends (polling twice a second), then exits 0 if the job
succeeded and 1 otherwise. With --json, each line is printed as a JSON object.
)"},
    {"run", R"(Usage: wharfctl job run KIND [--param KEY=VALUE]... [-f | --follow]

Starts a job of KIND (wharfctl job kinds lists them) and prints its id. Each --param
sets a field of its params: VALUE is taken as JSON when it parses as such (numbers,
true, false), else as a string. -f follows the log as job log -f does.
  wharfctl job run upload-purge --param max_age=12h -f
)"},
    {"cancel", R"(Usage: wharfctl job cancel ID

Cancels the job ID: a queued job is cancelled at once; a running one is asked to stop
and ends as cancelled when it does (follow it with job log ID -f).
)"},
    {"retry", R"(Usage: wharfctl job retry ID

Runs a failed or cancelled job again: a new job with the same kind and params, whose
retry_of is ID. Prints the new id.
)"},
    {"kinds", R"(Usage: wharfctl job kinds [--json]

Lists the kinds of job this core runs, and whether each runs one at a time.
)"},
};

const std::map<std::string, std::string> kScheduleHelp = {
    {"", R"(Usage: wharfctl schedule COMMAND ...   (administrators)

  ls                   list schedules: cron, kind, params, next and last run
  show NAME            one schedule
  set NAME --cron EXPR --kind K [--param KEY=VALUE]... [--disable | --enable]
                       create or change a schedule
  rm NAME              remove a schedule

wharfctl schedule COMMAND --help shows one command.
)"},
    {"ls", R"(Usage: wharfctl schedule ls [--json]

Lists schedules: name, cron expression, kind, enabled, next run, last run and its job,
origin (config: follows the core's configuration; api: set with schedule set), params.
)"},
    {"show", R"(Usage: wharfctl schedule show NAME [--json]

Shows the schedule NAME.
)"},
    {"set", R"(Usage: wharfctl schedule set NAME [--cron EXPR] [--kind K] [--param KEY=VALUE]...
                             [--disable | --enable]

Creates the schedule NAME (1-63 of a-z, 0-9, '.', '_', '-'), or changes it: options not
given keep their values (--param replaces all params). EXPR is five cron fields in UTC,
minute hour day-of-month month day-of-week (*, lists 1,5, ranges 1-5, steps */15,
names jan..dec and sun..sat), or @hourly, @daily, @weekly, @monthly, @yearly, or
@every DURATION (90s, 30m, 6h). A run missed while the core was down runs once at start.
A schedule set here is no longer changed by the core's configuration.
  wharfctl schedule set nightly-purge --cron '30 3 * * *' --kind upload-purge --param max_age=12h
)"},
    {"rm", R"(Usage: wharfctl schedule rm NAME

Removes the schedule NAME. The configuration's schedules (upload-purge, ldap-sync) come
back at the next start: disable them with schedule set NAME --disable instead.
)"},
};

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
bool isSwitch(const std::string& f) {
  return f == "json" || f == "insecure" || f == "admin" || f == "public" || f == "private" || f == "password-stdin" ||
         f == "help" || f == "f" || f == "follow" || f == "disable" || f == "enable" || f == "dry-run" ||
         f == "no-retention";
}

[[noreturn]] void die(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "wharfctl: %s\n", msg.c_str());
  std::exit(code);
}

std::string configPath(const Args& a) {
  if (a.has("config")) return a.get("config");
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.config/wharf/wharfctl.json";
}

struct Session {
  std::string url, user, token, token_id, cacert;
  bool insecure = false;
};

Session loadSession(const Args& a) {
  std::string text;
  Session s;
  if (readFile(configPath(a), &text).isOk()) {
    json j = json::parse(text, nullptr, false);
    if (j.is_object()) {
      s.url = j.value("url", "");
      s.user = j.value("user", "");
      s.token = j.value("token", "");
      s.token_id = j.value("token_id", "");
      s.cacert = j.value("cacert", "");
      s.insecure = j.value("insecure", false);
    }
  }
  if (a.has("cacert")) s.cacert = a.get("cacert");
  if (a.has("insecure")) s.insecure = true;
  return s;
}

class Api {
 public:
  Api(const Session& s, std::string authorization) : auth_(std::move(authorization)) {
    auto url = parseBaseUrl(s.url);
    if (!url.isOk()) die(url.status().message(), 2);
    client_ = std::make_unique<BlockingClient>(url->host, url->port);
    if (url->tls) client_->useTls(s.cacert, s.insecure);
  }

  json call(const std::string& method, const std::string& path, const json& body = nullptr) {
    HeaderList h = {{"Authorization", auth_}};
    std::string b;
    if (!body.is_null()) {
      h.push_back({"Content-Type", "application/json"});
      b = body.dump();
    }
    auto r = client_->request(method, "/api/v1" + path, h, b);
    if (!r.isOk()) die(r.status().message());
    if (r->status == 204) return json::object();
    json j = json::parse(r->body, nullptr, false);
    if (r->status >= 400) {
      std::string msg = "HTTP " + std::to_string(r->status);
      if (j.is_object() && j.contains("errors") && !j["errors"].empty()) {
        msg += ": " + j["errors"][0].value("message", "");
      }
      die(msg);
    }
    return j;
  }

 private:
  std::string auth_;
  std::unique_ptr<BlockingClient> client_;
};

std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) {
      if (!out.empty()) out += ',';
      out += cell(x);
    }
    return out;
  }
  return v.dump();
}

// Prints a list of objects as a table (or the JSON itself with --json).
void print(const json& j, bool as_json) {
  if (as_json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  json rows = j.contains("items") ? j["items"] : j;
  if (!rows.is_array()) {
    for (auto it = j.begin(); it != j.end(); ++it) std::cout << it.key() << ": " << cell(it.value()) << "\n";
    return;
  }
  if (rows.empty()) {
    std::cout << "(none)\n";
    return;
  }
  std::vector<std::string> cols;
  if (rows[0].is_object()) {
    for (auto it = rows[0].begin(); it != rows[0].end(); ++it) cols.push_back(it.key());
  } else {
    cols.push_back("name");
    json objs = json::array();
    for (const auto& r : rows) objs.push_back({{"name", r}});
    rows = objs;
  }
  std::vector<size_t> width(cols.size());
  for (size_t c = 0; c < cols.size(); ++c) {
    width[c] = cols[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], cell(r.value(cols[c], json())).size());
  }
  auto line = [&](auto value) {
    for (size_t c = 0; c < cols.size(); ++c) {
      std::string v = value(c);
      std::cout << v << (c + 1 < cols.size() ? std::string(width[c] - v.size() + 2, ' ') : "");
    }
    std::cout << "\n";
  };
  line([&](size_t c) {
    std::string up = cols[c];
    for (char& ch : up) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return up;
  });
  for (const auto& r : rows) line([&](size_t c) { return cell(r.value(cols[c], json())); });
}

std::string need(const Args& a, size_t i, const char* what) {
  if (a.pos.size() <= i) die(std::string("missing ") + what + " (see --help)", 2);
  return a.pos[i];
}

std::string readPassword(const Args& a) {
  if (a.has("p")) return a.get("p");
  if (a.has("password")) return a.get("password");
  std::string pw;
  if (a.has("password-stdin") || !isatty(0)) {
    std::getline(std::cin, pw);
    return pw;
  }
  std::fprintf(stderr, "Password: ");
  termios old{};
  tcgetattr(0, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(0, TCSANOW, &quiet);
  std::getline(std::cin, pw);
  tcsetattr(0, TCSANOW, &old);
  std::fprintf(stderr, "\n");
  return pw;
}

int login(const Args& a) {
  Session s = loadSession(a);
  s.url = need(a, 1, "URL");
  s.user = a.has("u") ? a.get("u") : a.get("username");
  if (s.user.empty()) die("login needs -u USER", 2);
  std::string pw = readPassword(a);
  Api api(s, basicAuthorization(s.user, pw));
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  json t = api.call("POST", "/users/" + s.user + "/tokens", {{"name", std::string("wharfctl@") + host}});
  s.token = t.value("secret", "");
  s.token_id = t.value("id", "");
  std::string path = configPath(a);
  if (Status st = makeDirs(dirName(path)); !st.isOk()) die(st.message());
  json j = {{"url", s.url}, {"user", s.user}, {"token", s.token}, {"token_id", s.token_id}, {"cacert", s.cacert},
            {"insecure", s.insecure}};
  if (Status st = writeFileDurable(path, j.dump(2) + "\n", 0600); !st.isOk()) die(st.message());
  std::cout << "Logged in to " << s.url << " as " << s.user << "\n";
  return 0;
}

// Settings flags (--tag-ttl ...) into an edge settings object, over `settings`.
json edgeSettings(const Args& a, json settings) {
  for (const char* flag : {"tag-ttl", "cache-budget", "high-watermark", "low-watermark"}) {
    if (!a.has(flag)) continue;
    std::string key = flag;
    for (char& c : key) c = c == '-' ? '_' : c;
    std::string v = a.get(flag);
    bool number = key.find("watermark") != std::string::npos && !v.empty() && v.size() < 10 &&
                  v.find_first_not_of("0123456789") == std::string::npos;
    settings[key] = number ? json(std::atoll(v.c_str())) : json(v);  // the core checks the values
  }
  if (a.has("unset")) {
    for (const auto& k : a.flags.at("unset")) settings.erase(k);
  }
  return settings;
}

// "24h" -> seconds; plain digits are seconds.
int64_t ttlSeconds(const std::string& v) {
  if (v.empty()) die("--ttl needs a duration such as 24h", 2);
  size_t i = v.find_first_not_of("0123456789");
  bool digits_then_unit = i != 0 && (i == std::string::npos || i + 1 == v.size());
  if (!digits_then_unit || v.size() > 12) die("--ttl: \"" + v + "\" is not a duration such as 24h", 2);
  int64_t n = std::atoll(v.substr(0, i).c_str());
  if (i == std::string::npos) return n;
  switch (v[i]) {
    case 's': return n;
    case 'm': return n * 60;
    case 'h': return n * 3600;
    case 'd': return n * 86400;
  }
  die("--ttl: \"" + v + "\" is not a duration such as 24h (units s, m, h, d)", 2);
}

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

// A fixed-column table of edges.
void printEdges(const json& edges) {
  printColumns(edges,
               {{"NAME", "name"}, {"SITE", "site"}, {"STATE", "state"}, {"CREATED", "created_at"},
                {"REGISTERED", "registered_at"}, {"LAST SEEN", "last_seen"}, {"SETTINGS", "settings"}},
               [](const json& e, const std::string& k) {
                 if (!e.contains(k) || e[k].is_null()) return std::string("-");
                 if (k == "settings") return e[k].empty() ? std::string("-") : e[k].dump();
                 return cell(e[k]);
               });
}

int edge(const Args& a, Api& api, const Session& s) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  if (sub == "ls" || sub == "list") {
    json r = api.call("GET", "/edges");
    if (js) return print(r, true), 0;
    return printEdges(r.value("edges", json::array())), 0;
  }
  if (sub == "add") {
    std::string name = a.has("name") ? a.get("name") : (a.pos.size() > 2 ? a.pos[2] : "");
    if (name.empty()) die("edge add needs --name N (see wharfctl edge add --help)", 2);
    json body = {{"name", name}, {"site", a.get("site")}};
    json settings = edgeSettings(a, json::object());
    if (!settings.empty()) body["settings"] = settings;
    if (a.has("ttl")) body["ttl_seconds"] = ttlSeconds(a.get("ttl"));
    json r = api.call("POST", "/edges", body);
    if (js) return print(r, true), 0;
    std::string token = r.value("join_token", "");
    std::cout << "Edge " << r.value("name", name) << " added (site \"" << r.value("site", "") << "\").\n"
              << "Join token (shown once; works once; expires " << r.value("expires_at", "") << "):\n"
              << "  " << token << "\n"
              << "Run on the edge host:\n"
              << "  wharf-edge --core " << s.url << " --join-token " << token << " --data-dir "
              << a.get("data-dir", "/var/lib/wharf-edge") << "\n";
    return 0;
  }
  std::string name = need(a, 2, "edge name");
  if (sub == "show") return print(api.call("GET", "/edges/" + percentEncode(name)), js), 0;
  if (sub == "rm" || sub == "remove" || sub == "delete") {
    api.call("DELETE", "/edges/" + percentEncode(name));
    std::cout << "Edge " << name << " removed; its join token and credential no longer work.\n";
    return 0;
  }
  if (sub == "set") {
    json current = api.call("GET", "/edges/" + percentEncode(name));
    json settings = edgeSettings(a, current.value("settings", json::object()));
    return print(api.call("PATCH", "/edges/" + percentEncode(name), {{"settings", settings}}), js), 0;
  }
  die("unknown edge command (see wharfctl edge --help)", 2);
}

// KEY=VALUE flags into a params object; VALUE is JSON when it parses as a scalar.
json paramsFrom(const Args& a) {
  json params = json::object();
  if (!a.has("param")) return params;
  for (const auto& kv : a.flags.at("param")) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) die("--param takes KEY=VALUE, not \"" + kv + "\"", 2);
    std::string v = kv.substr(eq + 1);
    json parsed = json::parse(v, nullptr, false);
    params[kv.substr(0, eq)] = !parsed.is_discarded() && !parsed.is_string() ? parsed : json(v);
  }
  return params;
}


std::string jobCell(const json& j, const std::string& k) {
  if (k == "progress") {
    const json& p = j.value("progress", json::object());
    uint64_t done = p.value("done", uint64_t{0}), total = p.value("total", uint64_t{0});
    if (done == 0 && total == 0) return "-";
    return std::to_string(done) + (total > 0 ? "/" + std::to_string(total) : "");
  }
  if (k == "duration_ms") {
    if (!j.contains(k)) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fs", j[k].get<double>() / 1000.0);
    return buf;
  }
  if (k == "state" && j.value("interrupted", false)) return cell(j[k]) + " (interrupted)";
  if (!j.contains(k) || j[k].is_null()) return "-";
  return cell(j[k]);
}

// Prints the log of job id after line `after`; with follow, until the job ends.
// Returns the exit status: with follow, 0 if the job succeeded, else 1.
int jobLog(Api& api, const std::string& id, bool follow, bool js) {
  uint64_t after = 0;
  for (;;) {
    json r = api.call("GET", "/jobs/" + percentEncode(id) + "/log?limit=1000&after=" + std::to_string(after));
    const json& items = r.value("items", json::array());
    for (const auto& l : items) {
      if (js) {
        std::cout << l.dump() << "\n";
      } else {
        std::cout << l.value("ts", "") << "  " << l.value("line", "") << "\n";
      }
    }
    std::cout.flush();
    after = r.value("last", after);
    if (!items.empty()) continue;  // more may be there already
    if (!follow) return 0;
    // "finished" was read before the lines: finished with nothing new is the end.
    if (r.value("finished", false)) return r.value("state", "") == "succeeded" ? 0 : 1;
    usleep(500'000);
  }
}

int job(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  bool follow = a.has("f") || a.has("follow");
  if (sub == "ls" || sub == "list") {
    std::string q;
    for (const char* k : {"kind", "state", "actor", "limit", "before"}) {
      if (a.has(k)) q += std::string(q.empty() ? "?" : "&") + k + "=" + percentEncode(a.get(k));
    }
    json r = api.call("GET", "/jobs" + q);
    if (js) return print(r, true), 0;
    printColumns(r.value("items", json::array()),
                 {{"ID", "id"}, {"KIND", "kind"}, {"STATE", "state"}, {"ACTOR", "actor"}, {"CREATED", "created_at"},
                  {"DURATION", "duration_ms"}, {"PROGRESS", "progress"}, {"ERROR", "error"}},
                 jobCell);
    if (r.contains("next")) std::cout << "(more: wharfctl job ls --before " << r["next"].get<std::string>() << ")\n";
    return 0;
  }
  if (sub == "kinds") {
    json r = api.call("GET", "/jobs/kinds");
    if (js) return print(r, true), 0;
    printColumns(r.value("items", json::array()),
                 {{"KIND", "kind"}, {"EXCLUSIVE", "exclusive"}, {"DESCRIPTION", "description"}},
                 [](const json& k, const std::string& key) { return cell(k.value(key, json())); });
    return 0;
  }
  if (sub == "run") {
    std::string kind = need(a, 2, "job kind");
    json r = api.call("POST", "/jobs", {{"kind", kind}, {"params", paramsFrom(a)}});
    std::string id = r.value("id", "");
    if (js && !follow) return print(r, true), 0;
    std::cerr << "Job " << id << " (" << kind << ") queued.\n";
    if (!follow) {
      std::cout << id << "\n";
      return 0;
    }
    return jobLog(api, id, true, js);
  }
  std::string id = need(a, 2, "job id");
  std::string path = "/jobs/" + percentEncode(id);
  if (sub == "show") return print(api.call("GET", path), js), 0;
  if (sub == "log") return jobLog(api, id, follow, js);
  if (sub == "cancel") {
    json r = api.call("POST", path + "/cancel");
    if (js) return print(r, true), 0;
    std::cout << "Job " << r.value("id", id) << ": " << r.value("state", "")
              << (r.value("state", "") == "running" ? " (asked to stop)" : "") << "\n";
    return 0;
  }
  if (sub == "retry") {
    json r = api.call("POST", path + "/retry");
    if (js) return print(r, true), 0;
    std::cerr << "Job " << r.value("id", "") << " queued (retry of " << r.value("retry_of", id) << ").\n";
    std::cout << r.value("id", "") << "\n";
    return 0;
  }
  die("unknown job command (see wharfctl job --help)", 2);
}

const char* kGcHelp = R"(Usage: wharfctl gc [OPTIONS]   (administrators)

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

const char* kPolicyHelp = R"(Usage: wharfctl policy COMMAND ...   (administrators)

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
    if (a.has("json")) return print(r, true), 0;
    std::cerr << "Garbage collection job " << id << " queued (wharfctl job log " << id << " -f).\n";
    std::cout << id << "\n";
    return 0;
  }
  return jobLog(api, id, true, a.has("json"));
}

int policy(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  if (sub == "ls" || sub == "list") return print(api.call("GET", "/policies"), js), 0;
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

int schedule(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  if (sub == "ls" || sub == "list") {
    json r = api.call("GET", "/schedules");
    if (js) return print(r, true), 0;
    printColumns(r.value("items", json::array()),
                 {{"NAME", "name"}, {"CRON", "cron"}, {"KIND", "kind"}, {"ENABLED", "enabled"},
                  {"NEXT RUN", "next_run"}, {"LAST RUN", "last_run"}, {"LAST JOB", "last_job"},
                  {"ORIGIN", "origin"}, {"PARAMS", "params"}},
                 [](const json& s, const std::string& k) {
                   if (!s.contains(k) || s[k].is_null()) return std::string("-");
                   if (k == "params") return s[k].empty() ? std::string("-") : s[k].dump();
                   return cell(s[k]);
                 });
    return 0;
  }
  std::string name = need(a, 2, "schedule name");
  std::string path = "/schedules/" + percentEncode(name);
  if (sub == "show") return print(api.call("GET", path), js), 0;
  if (sub == "rm" || sub == "remove" || sub == "delete") {
    api.call("DELETE", path);
    std::cout << "Schedule " << name << " removed.\n";
    return 0;
  }
  if (sub == "set") {
    if (a.has("disable") && a.has("enable")) die("schedule set: --disable or --enable, not both", 2);
    json body = json::object();
    json list = api.call("GET", "/schedules").value("items", json::array());
    for (const auto& s : list) {
      if (s.value("name", "") == name) {
        body = {{"cron", s["cron"]}, {"kind", s["kind"]}, {"params", s["params"]}, {"enabled", s["enabled"]}};
      }
    }
    if (a.has("cron")) body["cron"] = a.get("cron");
    if (a.has("kind")) body["kind"] = a.get("kind");
    if (a.has("param")) body["params"] = paramsFrom(a);
    if (a.has("disable")) body["enabled"] = false;
    if (a.has("enable")) body["enabled"] = true;
    if (!body.contains("cron")) die("schedule set: a new schedule needs --cron EXPR (see --help)", 2);
    if (!body.contains("kind")) die("schedule set: a new schedule needs --kind K (see --help)", 2);
    return print(api.call("PUT", path, body), js), 0;
  }
  die("unknown schedule command (see wharfctl schedule --help)", 2);
}

// Help for events and each webhook subcommand ("" is the webhook overview).
const char* kEventsHelp = R"(Usage: wharfctl events [--repo R] [--namespace N] [--type T[,T...]] [--actor A]
                      [--since SEQ] [--from TIME] [--to TIME] [--limit N] [-f | --follow] [--json]

Lists the events of the repositories you may pull, oldest first, one line each: SEQ,
TIME, TYPE, ACTOR, REPOSITORY, TARGET (tag and digest) and, for pulls folded into one
event, xCOUNT. --type takes types (blob.push, manifest.push, tag.push, tag.move,
manifest.pull, manifest.delete, tag.delete, blob.delete, repository.delete, policy.set,
policy.remove) or patterns
(manifest.*). --since SEQ shows the events after that sequence number; TIME is RFC 3339
(2026-01-02T03:04:05Z) or epoch milliseconds. When there are more, the last line says
which --since shows the next page.

With -f, follows the live feed instead (from --since, else from now), printing a line
per event as it happens until interrupted; a dropped connection resumes where it left
off, so nothing is missed or printed twice. With --json, one JSON object per line.
)";

const std::map<std::string, std::string> kWebhookHelp = {
    {"", R"(Usage: wharfctl webhook COMMAND ...

  add --scope S --url U --events T[,T...] [--secret-file F] [--disable]
                       deliver the events of S (team/app, team/* or *) to U
  ls                   the hooks you manage
  show ID              one hook
  set ID [--url U] [--events T,...] [--secret-file F] [--enable | --disable]
  rm ID                remove a hook (and its delivery log)
  deliveries ID [--limit N]   its delivery log, newest first
  test ID              send one test event now and show the outcome

Administrators manage every hook; namespace owners those of their namespace; repository
administrators those of their repositories. wharfctl webhook COMMAND --help shows one.
)"},
    {"add", R"(Usage: wharfctl webhook add --scope S --url U --events T[,T...] [--secret-file F] [--disable]

Creates a hook that POSTs the events of S -- a repository (team/app), a namespace
(team/*) or, for administrators, everything (*) -- of the given types (or patterns such
as manifest.*) to U, as distribution notification envelopes. With --secret-file, the
file's content (without its trailing newline; - reads standard input) signs each
delivery: X-Wharf-Signature: sha256=<hex HMAC-SHA256(secret, body)>. The secret is never
shown again. U must resolve to public addresses unless the core allows private targets
(webhook_allow_private). Prints the hook.
)"},
    {"ls", R"(Usage: wharfctl webhook ls [--json]

Lists the hooks you manage: id, scope, URL, event types, enabled, signed.
)"},
    {"show", R"(Usage: wharfctl webhook show ID [--json]

Shows the hook ID.
)"},
    {"set", R"(Usage: wharfctl webhook set ID [--url U] [--events T,...] [--secret-file F] [--enable | --disable]

Changes the hook ID. A new --url of a signed hook needs a --secret-file too (an empty
file, such as /dev/null, delivers unsigned): a stored secret never goes to another URL.
)"},
    {"rm", R"(Usage: wharfctl webhook rm ID

Removes the hook ID, its cursor and its delivery log.
)"},
    {"deliveries", R"(Usage: wharfctl webhook deliveries ID [--limit N] [--json]

The delivery log of hook ID, newest first (50 unless --limit): time, delivery id,
attempt, HTTP status, outcome (delivered, retrying, failed), the sequence numbers it
carried, duration and error.
)"},
    {"test", R"(Usage: wharfctl webhook test ID [--json]

Sends one "webhook.test" event to the hook's URL now (signed with its secret), once, and
prints the outcome; exits 1 if it was not delivered.
)"},
};

std::string eventLine(const json& e) {
  const json& t = e.value("target", json::object());
  std::string target = t.value("tag", "");
  std::string digest = t.value("digest", "");
  if (!digest.empty()) target += (target.empty() ? "" : "@") + digest;
  char buf[1024];
  std::snprintf(buf, sizeof buf, "%-7s %-20s %-17s %-12s %-24s %s", std::to_string(e.value("seq", 0ull)).c_str(),
                e.value("time", "").c_str(), e.value("type", "").c_str(), e.value("actor", "").c_str(),
                e.value("repository", "").c_str(), target.c_str());
  std::string line = buf;
  if (e.value("count", 1ull) > 1) line += " x" + std::to_string(e.value("count", 1ull));
  return line;
}

std::string eventsQuery(const Args& a, bool with_since) {
  std::string q;
  const std::vector<std::pair<const char*, const char*>> params = {
      {"repo", "repository"}, {"namespace", "namespace"}, {"type", "type"}, {"actor", "actor"},
      {"from", "from"},       {"to", "to"},               {"limit", "limit"}, {"since", "since"}};
  for (const auto& [flag, key] : params) {
    if (!with_since && std::string(key) == "since") continue;
    if (a.has(flag)) q += std::string(q.empty() ? "?" : "&") + key + "=" + percentEncode(a.get(flag));
  }
  return q;
}

// Follows /api/v1/events/stream, printing one line per event; reconnects with
// Last-Event-ID when the connection drops. Returns only on a refusal.
int followEvents(const Args& a, const Session& s, Api& api, const std::string& authorization) {
  bool js = a.has("json");
  uint64_t last = 0;
  if (a.has("since")) {
    last = std::strtoull(a.get("since").c_str(), nullptr, 10);
  } else {
    last = api.call("GET", "/events?limit=1").value("last_seq", 0ull);  // from now on
  }
  std::string q = eventsQuery(a, false);
  q.erase(0, q.empty() ? 0 : 1);
  auto url = parseBaseUrl(s.url);
  if (!url.isOk()) die(url.status().message(), 2);
  for (;;) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int fd = -1;
    if (getaddrinfo(url->host.c_str(), std::to_string(url->port).c_str(), &hints, &res) == 0) {
      for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
          ::close(fd);
          fd = -1;
        }
      }
      freeaddrinfo(res);
    }
    if (fd < 0) {
      std::fprintf(stderr, "wharfctl: cannot reach %s; retrying\n", s.url.c_str());
      ::sleep(2);
      continue;
    }
    timeval tv{60, 0};  // keepalives come every 15 s: a minute of silence is a dead connection
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::unique_ptr<TlsClient> tls;
    if (url->tls) {
      auto c = TlsClient::connect(fd, url->host, s.cacert, s.insecure);
      if (!c.isOk()) die(c.status().message());
      tls = std::move(c).value();
    }
    std::string req = "GET /api/v1/events/stream?since=" + std::to_string(last) + (q.empty() ? "" : "&" + q) +
                      " HTTP/1.1\r\nHost: " + url->host_header + "\r\nAuthorization: " + authorization +
                      "\r\nAccept: text/event-stream\r\n\r\n";
    bool sent = tls ? tls->write(req.data(), req.size()).isOk()
                    : ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
    std::string in, sse;
    bool headers_done = false;
    char buf[16384];
    while (sent) {
      ssize_t r;
      if (tls) {
        auto got = tls->read(buf, sizeof buf);
        r = got.isOk() ? static_cast<ssize_t>(*got) : -1;
      } else {
        r = ::recv(fd, buf, sizeof buf, 0);
      }
      if (r <= 0) break;
      in.append(buf, static_cast<size_t>(r));
      if (!headers_done) {
        size_t end = in.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        int status = in.size() > 12 ? std::atoi(in.c_str() + 9) : 0;
        if (status != 200) {
          std::string body = in.substr(end + 4);
          json j = json::parse(body.substr(body.find('{') == std::string::npos ? 0 : body.find('{')), nullptr, false);
          std::string msg = "HTTP " + std::to_string(status);
          if (j.is_object() && j.contains("errors") && !j["errors"].empty()) msg += ": " + j["errors"][0].value("message", "");
          die(msg);
        }
        headers_done = true;
        in.erase(0, end + 4);
      }
      // Chunked transfer coding: <hex size>\r\n<bytes>\r\n ...
      for (;;) {
        size_t eol = in.find("\r\n");
        if (eol == std::string::npos) break;
        size_t size = std::strtoull(in.substr(0, eol).c_str(), nullptr, 16);
        if (in.size() < eol + 2 + size + 2) break;
        sse.append(in, eol + 2, size);
        in.erase(0, eol + 2 + size + 2);
      }
      for (size_t end; (end = sse.find("\n\n")) != std::string::npos;) {
        std::string block = sse.substr(0, end);
        sse.erase(0, end + 2);
        std::string data;
        uint64_t id = 0;
        for (size_t start = 0; start < block.size();) {
          size_t nl = block.find('\n', start);
          std::string line = block.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
          start = nl == std::string::npos ? block.size() : nl + 1;
          if (line.rfind("id: ", 0) == 0) id = std::strtoull(line.c_str() + 4, nullptr, 10);
          if (line.rfind("data: ", 0) == 0) data = line.substr(6);
        }
        if (id == 0 || data.empty()) continue;  // a comment, a retry hint
        last = id;
        json e = json::parse(data, nullptr, false);
        std::cout << (js ? e.dump() : eventLine(e)) << std::endl;
      }
    }
    tls.reset();
    ::close(fd);
    std::fprintf(stderr, "wharfctl: the event feed was interrupted; resuming after %llu\n",
                 static_cast<unsigned long long>(last));
    ::sleep(1);
  }
}

int events(const Args& a, Api& api, const Session& s) {
  if (a.has("f") || a.has("follow")) return followEvents(a, s, api, basicAuthorization(s.user, s.token));
  json r = api.call("GET", "/events" + eventsQuery(a, true));
  bool js = a.has("json");
  if (js) return print(r, true), 0;
  const json& list = r.value("events", json::array());
  if (list.empty()) std::cout << "(none)\n";
  for (const auto& e : list) std::cout << eventLine(e) << "\n";
  if (r.contains("next") && !r["next"].is_null()) std::cout << "(more: --since " << r["next"].dump() << ")\n";
  return 0;
}

std::string readSecretFile(const std::string& path) {
  std::string secret;
  if (path == "-") {
    std::getline(std::cin, secret);
  } else if (Status st = readFile(path, &secret); !st.isOk()) {
    die("--secret-file: " + st.message(), 2);
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return secret;
}

json eventList(const std::string& csv) {
  json out = json::array();
  for (size_t start = 0; start <= csv.size();) {
    size_t end = csv.find(',', start);
    if (end == std::string::npos) end = csv.size();
    if (end > start) out.push_back(csv.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

void printHooks(const json& hooks) {
  json rows = json::array();
  for (const auto& h : hooks) {
    rows.push_back({{"id", h.value("id", "")},
                    {"scope", h.value("scope", "")},
                    {"url", h.value("url", "")},
                    {"events", h.value("events", json::array())},
                    {"enabled", h.value("enabled", false)},
                    {"signed", h.value("has_secret", false)}});
  }
  print(rows, false);
}

int webhook(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  if (sub == "ls" || sub == "list") {
    json r = api.call("GET", "/webhooks");
    if (js) return print(r, true), 0;
    return printHooks(r.value("webhooks", json::array())), 0;
  }
  if (sub == "add") {
    if (!a.has("scope") || !a.has("url") || !a.has("events")) {
      die("webhook add needs --scope, --url and --events (see wharfctl webhook add --help)", 2);
    }
    json body = {{"scope", a.get("scope")}, {"url", a.get("url")}, {"events", eventList(a.get("events"))}};
    if (a.has("secret-file")) body["secret"] = readSecretFile(a.get("secret-file"));
    if (a.has("disable")) body["enabled"] = false;
    json r = api.call("POST", "/webhooks", body);
    if (js) return print(r, true), 0;
    std::cout << "Webhook " << r.value("id", "") << " added: " << r.value("scope", "") << " -> " << r.value("url", "")
              << (r.value("has_secret", false) ? " (signed)" : " (unsigned)") << "\n";
    return 0;
  }
  std::string id = need(a, 2, "webhook id");
  std::string path = "/webhooks/" + percentEncode(id);
  if (sub == "show") return print(api.call("GET", path), js), 0;
  if (sub == "rm" || sub == "remove" || sub == "delete") {
    api.call("DELETE", path);
    std::cout << "Webhook " << id << " removed.\n";
    return 0;
  }
  if (sub == "set") {
    json body = json::object();
    if (a.has("url")) body["url"] = a.get("url");
    if (a.has("events")) body["events"] = eventList(a.get("events"));
    if (a.has("secret-file")) body["secret"] = readSecretFile(a.get("secret-file"));
    if (a.has("enable")) body["enabled"] = true;
    if (a.has("disable")) body["enabled"] = false;
    return print(api.call("PATCH", path, body), js), 0;
  }
  if (sub == "deliveries") {
    json r = api.call("GET", path + "/deliveries" + (a.has("limit") ? "?limit=" + percentEncode(a.get("limit")) : ""));
    if (js) return print(r, true), 0;
    json rows = json::array();
    for (const auto& d : r.value("deliveries", json::array())) {
      std::string seqs = d.value("first_seq", 0ull) == 0
                             ? "test"
                             : std::to_string(d.value("first_seq", 0ull)) + "-" + std::to_string(d.value("last_seq", 0ull));
      rows.push_back({{"time", d.value("time", "")},
                      {"delivery", d.value("delivery", "")},
                      {"attempt", d.value("attempt", 0)},
                      {"status", d.value("status", 0)},
                      {"outcome", d.value("outcome", "")},
                      {"seq", seqs},
                      {"ms", d.value("duration_ms", 0)},
                      {"error", d.value("error", "")}});
    }
    return print(rows, false), 0;
  }
  if (sub == "test") {
    json r = api.call("POST", path + "/test", json::object());
    if (js) {
      print(r, true);
    } else {
      std::cout << "Test delivery " << r.value("delivery", "") << ": " << r.value("outcome", "") << " (HTTP "
                << r.value("status", 0) << ", " << r.value("duration_ms", 0) << " ms"
                << (r.contains("error") ? ", " + r.value("error", "") : "") << ")\n";
    }
    return r.value("outcome", "") == "delivered" ? 0 : 1;
  }
  die("unknown webhook command (see wharfctl webhook --help)", 2);
}

// A command family's help: the subcommand's when it has its own, else the overview; to
// stdout for --help, to stderr (exit 2) for a family named without a subcommand.
int familyHelp(const Args& a, const std::map<std::string, std::string>& help) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub == "list") sub = "ls";
  if (sub == "remove" || sub == "delete") sub = "rm";
  auto it = help.find(sub);
  std::fputs((it == help.end() ? help.at("") : it->second).c_str(), a.has("help") ? stdout : stderr);
  return a.has("help") ? 0 : 2;
}

int run(const Args& a) {
  if (!a.pos.empty() && (a.pos[0] == "job" || a.pos[0] == "schedule") && (a.has("help") || a.pos.size() == 1)) {
    return familyHelp(a, a.pos[0] == "job" ? kJobHelp : kScheduleHelp);
  }
  if (!a.pos.empty() && a.pos[0] == "edge" && (a.has("help") || a.pos.size() == 1)) return familyHelp(a, kEdgeHelp);
  if (!a.pos.empty() && a.pos[0] == "events" && a.has("help")) return std::fputs(kEventsHelp, stdout), 0;
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
  Session s = loadSession(a);
  if (s.url.empty() || s.token.empty()) die("not logged in: run wharfctl login URL -u USER", 2);
  Api api(s, basicAuthorization(s.user, s.token));
  bool js = a.has("json");
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  auto enc = [](const std::string& x) { return percentEncode(x); };

  if (cmd == "logout") {
    if (!s.token_id.empty()) api.call("DELETE", "/users/" + s.user + "/tokens/" + s.token_id);
    ::unlink(configPath(a).c_str());
    std::cout << "Logged out\n";
    return 0;
  }
  if (cmd == "whoami") return print(api.call("GET", "/whoami"), js), 0;
  if (cmd == "user") {
    if (sub == "list") return print(api.call("GET", "/users"), js), 0;
    std::string name = need(a, 2, "user name");
    if (sub == "show") return print(api.call("GET", "/users/" + name), js), 0;
    if (sub == "create") {
      json body = {{"name", name}, {"password", readPassword(a)}};
      if (a.has("admin")) body["admin"] = true;
      if (a.has("email")) body["email"] = a.get("email");
      return print(api.call("POST", "/users", body), js), 0;
    }
    if (sub == "delete") return api.call("DELETE", "/users/" + name), 0;
    if (sub == "disable" || sub == "enable") return print(api.call("PATCH", "/users/" + name, {{"disabled", sub == "disable"}}), js), 0;
    if (sub == "passwd") return print(api.call("PATCH", "/users/" + name, {{"password", readPassword(a)}}), js), 0;
  } else if (cmd == "org") {
    if (sub == "list") return print(api.call("GET", "/orgs"), js), 0;
    std::string org = need(a, 2, "organization");
    if (sub == "show") return print(api.call("GET", "/orgs/" + org), js), 0;
    if (sub == "create") return print(api.call("POST", "/orgs", {{"name", org}}), js), 0;
    if (sub == "delete") return api.call("DELETE", "/orgs/" + org), 0;
    if (sub == "member-add") {
      return print(api.call("PUT", "/orgs/" + org + "/members/" + need(a, 3, "user"), {{"role", a.get("role", "member")}}), js), 0;
    }
    if (sub == "member-remove") return api.call("DELETE", "/orgs/" + org + "/members/" + need(a, 3, "user")), 0;
  } else if (cmd == "team") {
    std::string org = need(a, 2, "organization");
    if (sub == "list") return print(api.call("GET", "/orgs/" + org + "/teams"), js), 0;
    std::string team = need(a, 3, "team");
    if (sub == "create") {
      return print(api.call("POST", "/orgs/" + org + "/teams", {{"name", team}, {"description", a.get("description")}}), js), 0;
    }
    if (sub == "delete") return api.call("DELETE", "/orgs/" + org + "/teams/" + team), 0;
    if (sub == "members") return print(api.call("GET", "/orgs/" + org + "/teams/" + team + "/members"), js), 0;
    if (sub == "member-add") return print(api.call("PUT", "/orgs/" + org + "/teams/" + team + "/members/" + need(a, 4, "user")), js), 0;
    if (sub == "member-remove") return api.call("DELETE", "/orgs/" + org + "/teams/" + team + "/members/" + need(a, 4, "user")), 0;
  } else if (cmd == "repo") {
    if (sub == "list") return print(api.call("GET", "/repositories"), js), 0;
    std::string name = need(a, 2, "repository");
    if (sub == "show") return print(api.call("GET", "/repositories/" + name), js), 0;
    if (sub == "create") {
      json body = {{"name", name}, {"public", a.has("public")}};
      if (a.has("description")) body["description"] = a.get("description");
      return print(api.call("POST", "/repositories", body), js), 0;
    }
    if (sub == "set") {
      json body = json::object();
      if (a.has("public")) body["public"] = true;
      if (a.has("private")) body["public"] = false;
      if (a.has("description")) body["description"] = a.get("description");
      return print(api.call("PATCH", "/repositories/" + name, body), js), 0;
    }
    if (sub == "delete") return api.call("DELETE", "/repositories/" + name), 0;
  } else if (cmd == "perm") {
    std::string repo = need(a, 2, "repository");
    if (sub == "list") return print(api.call("GET", "/repositories/" + repo + "/permissions"), js), 0;
    std::string kind = need(a, 3, "user or team");
    std::string who = need(a, 4, "name");
    if (kind != "user" && kind != "team") die("perm: say user or team", 2);
    std::string path = "/repositories/" + repo + "/permissions/" + kind + "s/" + who;
    if (sub == "set") return print(api.call("PUT", path, {{"role", need(a, 5, "role")}}), js), 0;
    if (sub == "remove") return print(api.call("DELETE", path), js), 0;
  } else if (cmd == "token") {
    if (sub == "list") return print(api.call("GET", "/users/" + (a.pos.size() > 2 ? a.pos[2] : s.user) + "/tokens"), js), 0;
    if (sub == "create") {
      json body = {{"name", a.get("name", "wharfctl")}};
      if (a.has("scope")) body["scopes"] = a.flags.at("scope");
      if (a.has("expires-days")) body["expires_in_days"] = std::atoll(a.get("expires-days").c_str());
      json t = api.call("POST", "/users/" + s.user + "/tokens", body);
      if (!js) std::cout << "Token (shown once): " << t.value("secret", "") << "\n";
      return print(t, js), 0;
    }
    if (sub == "revoke") return api.call("DELETE", "/users/" + s.user + "/tokens/" + need(a, 2, "token id")), 0;
  } else if (cmd == "audit") {
    std::string q;
    for (const char* k : {"actor", "action", "object", "outcome", "limit", "after", "since", "until"}) {
      if (a.has(k)) q += std::string(q.empty() ? "?" : "&") + k + "=" + enc(a.get(k));
    }
    return print(api.call("GET", "/audit" + q), js), 0;
  } else if (cmd == "edge") {
    return edge(a, api, s);
  } else if (cmd == "events") {
    return events(a, api, s);
  } else if (cmd == "webhook") {
    return webhook(a, api);
  } else if (cmd == "gc") {
    return gc(a, api);
  } else if (cmd == "policy") {
    return policy(a, api);
  } else if (cmd == "usage") {
    return print(api.call("GET", "/usage?scope=" + enc(a.pos.size() > 1 ? a.pos[1] : "*")), js), 0;
  } else if (cmd == "job") {
    return job(a, api);
  } else if (cmd == "schedule") {
    return schedule(a, api);
  } else if (cmd == "keys" && sub == "rotate") {
    json body = json::object();
    if (a.has("overlap-seconds")) body["overlap_seconds"] = std::atoll(a.get("overlap-seconds").c_str());
    return print(api.call("POST", "/auth/keys/rotate", body), js), 0;
  }
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
