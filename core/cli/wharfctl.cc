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
)";

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
    for (const auto& x : v) out += (out.empty() ? "" : ",") + cell(x);
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

int run(const Args& a) {
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
