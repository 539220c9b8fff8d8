// wharfctl's session (login, logout, whoami), users and access tokens.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/cli/cli.h"
#include "shared/base/fs.h"
#include "shared/tls/crypto.h"

namespace wharf::cli {
namespace {

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

}  // namespace

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

int logout(const Args& a, Api& api, const Session& s) {
  if (!s.token_id.empty()) api.call("DELETE", "/users/" + s.user + "/tokens/" + s.token_id);
  ::unlink(configPath(a).c_str());
  std::cout << "Logged out\n";
  return 0;
}

int whoami(const Args& a, Api& api) { return print(api.call("GET", "/whoami"), a.has("json")), 0; }

int user(const Args& a, Api& api) {
  bool js = a.has("json");
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub == "list") {
    json r = api.call("GET", "/users");
    if (js) return printJson(r), 0;
    printTable(r.value("items", json::array()), {field("NAME", "name"), field("EMAIL", "email"), field("ADMIN", "admin"),
                                                 field("DISABLED", "disabled"), field("SOURCE", "source"),
                                                 timeField("CREATED", "created")});
    return 0;
  }
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
  die("unknown command (see --help)", 2);
}

int token(const Args& a, Api& api, const Session& s) {
  bool js = a.has("json");
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub == "list") {
    json r = api.call("GET", "/users/" + (a.pos.size() > 2 ? a.pos[2] : s.user) + "/tokens");
    if (js) return printJson(r), 0;
    printTable(r.value("items", json::array()),
               {field("ID", "id"), field("NAME", "name"), field("USER", "user"),
                {"SCOPES", [](const json& t) {
                   std::string scopes = cell(t.value("scopes", json::array()));
                   return scopes.empty() ? std::string("all") : scopes;  // no scopes: all of the user's access
                 }},
                timeField("CREATED", "created"), timeField("EXPIRES", "expires", "never")});
    return 0;
  }
  if (sub == "create") {
    json body = {{"name", a.get("name", "wharfctl")}};
    if (a.has("scope")) body["scopes"] = a.flags.at("scope");
    if (a.has("expires-days")) body["expires_in_days"] = std::atoll(a.get("expires-days").c_str());
    json t = api.call("POST", "/users/" + s.user + "/tokens", body);
    if (!js) std::cout << "Token (shown once): " << t.value("secret", "") << "\n";
    return print(t, js), 0;
  }
  if (sub == "revoke") return api.call("DELETE", "/users/" + s.user + "/tokens/" + need(a, 2, "token id")), 0;
  die("unknown command (see --help)", 2);
}

}  // namespace wharf::cli
