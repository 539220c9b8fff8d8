// wharfctl's repositories and their permissions.
#include "core/cli/cli.h"

namespace wharf::cli {

int repo(const Args& a, Api& api) {
  bool js = a.has("json");
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub == "list") {
    json r = api.call("GET", "/repositories");
    if (js) return printJson(r), 0;
    printTable(r.value("items", json::array()),
               {field("NAME", "name"), field("PUBLIC", "public"), field("DESCRIPTION", "description")});
    return 0;
  }
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
  die("unknown command (see --help)", 2);
}

int perm(const Args& a, Api& api) {
  bool js = a.has("json");
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  std::string repo = need(a, 2, "repository");
  if (sub == "list") {
    json r = api.call("GET", "/repositories/" + repo + "/permissions");
    if (js) return printJson(r), 0;
    printTable(r.value("items", json::array()), {field("KIND", "kind"), field("NAME", "name"), field("ROLE", "role")});
    return 0;
  }
  std::string kind = need(a, 3, "user or team");
  std::string who = need(a, 4, "name");
  if (kind != "user" && kind != "team") die("perm: say user or team", 2);
  std::string path = "/repositories/" + repo + "/permissions/" + kind + "s/" + who;
  if (sub == "set") return print(api.call("PUT", path, {{"role", need(a, 5, "role")}}), js), 0;
  if (sub == "remove") return print(api.call("DELETE", path), js), 0;
  die("unknown command (see --help)", 2);
}

}  // namespace wharf::cli
