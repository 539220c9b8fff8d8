// wharfctl's edges (administrators): add (a join token), ls, show, rm, set.
#include <cstdlib>

#include "core/cli/cli.h"
#include "shared/http/url.h"

namespace wharf::cli {

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

namespace {

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

// A fixed-column table of edges, times local.
void printEdges(const json& edges) {
  printTable(edges, {field("NAME", "name"), field("SITE", "site"), field("STATE", "state"),
                     timeField("CREATED", "created_at"), timeField("REGISTERED", "registered_at"),
                     timeField("LAST SEEN", "last_seen"), {"SETTINGS", [](const json& e) {
                       const json& s = e.value("settings", json::object());
                       return s.empty() ? std::string("-") : s.dump();
                     }}});
}

}  // namespace

int edge(const Args& a, Api& api, const Session& s) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  if (sub == "ls" || sub == "list") {
    json r = api.call("GET", "/edges");
    if (js) return printJson(r), 0;
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
    if (js) return printJson(r), 0;
    std::string token = r.value("join_token", "");
    std::cout << "Edge " << r.value("name", name) << " added (site \"" << r.value("site", "") << "\").\n"
              << "Join token (shown once; works once; expires " << localTime(r.value("expires_at", json())) << "):\n"
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

}  // namespace wharf::cli
