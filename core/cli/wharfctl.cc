// wharfctl: the command line for a Wharf core's admin API.
//
//   wharfctl login https://registry.example.com -u alice [--password-stdin]
//   wharfctl user list | org create acme | repo set acme/api --public | ...
//
// login trades the password for a personal access token once and keeps only the token,
// in ~/.config/wharf/wharfctl.json (mode 0600).
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
Edges (administrators; wharfctl edge --help for details):
  edge add --name N --site S [--ttl 24h] [SETTINGS]   prints the join token and the wharf-edge line
  edge ls | edge show N | edge rm N | edge set N [SETTINGS] [--unset KEY]
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
         f == "help";
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

// A fixed-column table of edges.
void printEdges(const json& edges) {
  if (edges.empty()) {
    std::cout << "(none)\n";
    return;
  }
  const std::vector<std::pair<std::string, std::string>> cols = {
      {"NAME", "name"}, {"SITE", "site"},           {"STATE", "state"},         {"CREATED", "created_at"},
      {"REGISTERED", "registered_at"}, {"LAST SEEN", "last_seen"}, {"SETTINGS", "settings"}};
  auto value = [](const json& e, const std::string& k) {
    if (!e.contains(k) || e[k].is_null()) return std::string("-");
    if (k == "settings") return e[k].empty() ? std::string("-") : e[k].dump();
    return cell(e[k]);
  };
  std::vector<size_t> width;
  for (const auto& [title, key] : cols) {
    size_t w = title.size();
    for (const auto& e : edges) w = std::max(w, value(e, key).size());
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
  for (const auto& e : edges) line([&](size_t c) { return value(e, cols[c].second); });
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

int run(const Args& a) {
  if (!a.pos.empty() && a.pos[0] == "edge" && (a.has("help") || a.pos.size() == 1)) {
    std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
    if (sub == "list") sub = "ls";
    if (sub == "remove" || sub == "delete") sub = "rm";
    auto it = kEdgeHelp.find(sub);
    std::fputs((it == kEdgeHelp.end() ? kEdgeHelp.at("") : it->second).c_str(), a.has("help") ? stdout : stderr);
    return a.has("help") ? 0 : 2;
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
