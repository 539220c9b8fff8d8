// wharfctl's organizations, their members and teams.
#include "core/cli/cli.h"

namespace wharf::cli {

int org(const Args& a, Api& api) {
  bool js = a.has("json");
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub == "list") return print(api.call("GET", "/orgs"), js), 0;
  std::string org = need(a, 2, "organization");
  if (sub == "show") return print(api.call("GET", "/orgs/" + org), js), 0;
  if (sub == "create") return print(api.call("POST", "/orgs", {{"name", org}}), js), 0;
  if (sub == "delete") return api.call("DELETE", "/orgs/" + org), 0;
  if (sub == "member-add") {
    return print(api.call("PUT", "/orgs/" + org + "/members/" + need(a, 3, "user"), {{"role", a.get("role", "member")}}), js), 0;
  }
  if (sub == "member-remove") return api.call("DELETE", "/orgs/" + org + "/members/" + need(a, 3, "user")), 0;
  die("unknown command (see --help)", 2);
}

int team(const Args& a, Api& api) {
  bool js = a.has("json");
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
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
  die("unknown command (see --help)", 2);
}

}  // namespace wharf::cli
