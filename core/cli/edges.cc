// wharfctl's edges (administrators): add (a join token), ls, show, rm, set, report, and
// commands to edges (purge, pin, unpin, prefetch, drain, resume, inventory; cmd ls/show).
#include <chrono>
#include <cstdio>
#include <thread>
#include <cstdlib>

#include "core/cli/cli.h"
#include "shared/http/url.h"

namespace wharf::cli {

// Help for each edge subcommand ("" is the overview).
const std::map<std::string, std::string> kEdgeHelp = {
    {"", R"(Usage: wharfctl edge COMMAND ...   (administrators)

  add --name N --site S [--ttl 24h] [SETTINGS] [--data-dir DIR]
                       register a new edge: prints its single-use join token
  ls                   list edges: state, last report, version, cache, hit ratio and
                       WAN bytes saved over the last 24 hours
  show N               one edge
  report [N] [--since 7d] [--until T] [--by repo|day|hour|edge|site] [--csv]
                       bandwidth figures of edge N, or of the whole fleet
  rm N                 remove an edge; its join token and credential stop working at once
  set N [SETTINGS] [--unset KEY]...
                       change an edge's settings (the others are kept)

Commands to edges (queued while an edge is away, run once, audited; TARGET is an edge
name or --site S for every edge of a site; --wait waits up to 60s for the outcome):
  purge TARGET --repo R [--ref TAG|DIGEST] | --digest D
                       drop a repository, an image or a digest from the cache
  pin TARGET --repo R --ref REF      never evict the image (fetched first if not all here)
  unpin TARGET --repo R --ref REF
  prefetch TARGET --repo R --ref REF fetch the image into the cache now (the outcome comes
                                     when it is fetched)
  drain TARGET [--retry-after SECONDS]   serve 503 + Retry-After (clients use the core)
  resume TARGET                      serve again
  inventory TARGET [--top N]         top repositories and images by bytes, pins
  cmd ls N [--limit 50]              the edge's commands, newest first, with outcomes
  cmd show N ID

SETTINGS (sent to the edge when it registers and when it asks again):
  --tag-ttl DURATION         how long a tag is served from cache (60s, 5m, 1h)
  --cache-budget SIZE        bytes of blobs the edge may hold (10GiB, 512m)
  --high-watermark PERCENT   evict above this percentage of the budget (1-100)
  --low-watermark PERCENT    evict down to this percentage (1-100, below the high one)
  --repositories PATTERNS    what the edge's own pull credential covers (prefetch, pins,
                             refetches), comma-separated: "*", "team/*", "team/app"
  --prefetch JSON            the prefetch policy, e.g. '{"rules":[{"repository":"acme/*",
                             "tag":"v*"}],"recent_days":7,"rate":"10m","window":"20:00-06:00",
                             "platforms":["linux/amd64"]}' (see the README's fleet section)

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

Lists every edge: name, site, state, when it last reported (else when it last used its
credential), the wharf-edge version, its cache (used/budget), and over the last 24 hours
its hit ratio (bytes served from the cache / bytes served) and the WAN bytes it saved
(served - fetched from the upstream - prefetched).
State: pending (added, not registered yet), never (registered, no report yet), online
(reported within edge_unreachable_after, 3m by default) or unreachable.
--json prints the API's objects (state there is pending or registered; the report
state is status.state).
)"},
    {"report", R"(Usage: wharfctl edge report [N] [--since 7d] [--until T] [--by BY] [--csv] [--json]

Bandwidth figures of the edge N, or of the whole fleet without N, from the reports the
edges send every minute. --since and --until: a time back from now (90m, 24h, 7d, 2w)
or RFC 3339 (default: the last 24 hours, until now). --by:
  hour   one line per hour (hourly rows, kept usage_hourly_retention: 14d by default)
  day    one line per UTC day (day rows, kept usage_daily_retention: 400d)
  repo   one line per repository over the period (from day rows: whole UTC days)
  edge   one line per edge (fleet only; day rows)
  site   one line per site (fleet only; day rows)
Default: day. The period is rounded out to whole hours or days. SAVED is the WAN bytes
saved (served - fetched - prefetched; negative when prefetches were wasted); HIT is the
share of served bytes that came from the cache.
--csv prints the core's CSV (a header line, then one line per row, no total).
)"},
    {"show", R"(Usage: wharfctl edge show N [--json]

Shows the edge N.
)"},
    {"rm", R"(Usage: wharfctl edge rm N

Removes the edge N. Its join token (if unused) and its credential stop working at once;
adding it again gives a new join token.
)"},
    {"set", R"(Usage: wharfctl edge set (N | --site S) [--tag-ttl DURATION] [--cache-budget SIZE]
                          [--high-watermark PERCENT] [--low-watermark PERCENT]
                          [--repositories PATTERNS] [--prefetch JSON] [--unset KEY]...

Changes the named settings of the edge N (or of every edge of site S) and keeps the
others; --unset KEY (tag_ttl,
cache_budget, high_watermark, low_watermark, repositories, prefetch) removes one, so the
edge uses its own default.
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
  if (a.has("repositories")) {
    json patterns = json::array();
    std::string v = a.get("repositories");
    for (size_t start = 0; start <= v.size();) {
      size_t end = v.find(',', start);
      if (end == std::string::npos) end = v.size();
      if (end > start) patterns.push_back(v.substr(start, end - start));
      start = end + 1;
    }
    settings["repositories"] = patterns;
  }
  if (a.has("prefetch")) {
    json policy = json::parse(a.get("prefetch"), nullptr, /*allow_exceptions=*/false);
    if (!policy.is_object()) die("--prefetch: expected a JSON object", 2);
    settings["prefetch"] = policy;
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

// Bytes that may be negative (WAN bytes saved).
std::string signedSize(int64_t v) {
  return v < 0 ? "-" + humanSize(static_cast<uint64_t>(-v)) : humanSize(static_cast<uint64_t>(v));
}

std::string ratio(const json& v) {
  if (!v.is_number()) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", v.get<double>() * 100);
  return buf;
}

// A fixed-column table of edges, times local. The state of a registered edge is its
// report state (status.state: never, online, unreachable).
void printEdges(const json& edges) {
  auto status = [](const json& e) -> const json& {
    static const json none = json::object();
    auto it = e.find("status");
    return it != e.end() && it->is_object() ? *it : none;
  };
  printTable(edges, {field("NAME", "name"), field("SITE", "site"),
                     {"STATE", [&](const json& e) {
                        std::string state = e.value("state", "");
                        return state == "registered" ? status(e).value("state", state) : state;
                      }},
                     {"LAST SEEN", [&](const json& e) {
                        const json& s = status(e);
                        json when = s.contains("last_report") && !s["last_report"].is_null() ? s["last_report"]
                                                                                            : e.value("last_seen", json());
                        return localTime(when);
                      }},
                     {"VERSION", [&](const json& e) {
                        std::string v = status(e).value("version", "");
                        return v.empty() ? std::string("-") : v;
                      }},
                     {"CACHE", [&](const json& e) {
                        const json& s = status(e);
                        if (!s.contains("cache")) return std::string("-");
                        return humanSize(s["cache"].value("used", uint64_t{0})) + "/" +
                               humanSize(s["cache"].value("budget", uint64_t{0}));
                      }},
                     {"HIT RATIO", [&](const json& e) {
                        const json& s = status(e);
                        return s.contains("last_24h") ? ratio(s["last_24h"]["hit_ratio"]) : std::string("-");
                      }},
                     {"SAVED", [&](const json& e) {
                        const json& s = status(e);
                        return s.contains("last_24h") ? signedSize(s["last_24h"].value("saved_bytes", int64_t{0}))
                                                      : std::string("-");
                      }}});
}

// The commands an administrator sends to edges (core/fleet/edge_commands.h).
bool isEdgeCommand(const std::string& sub) {
  return sub == "purge" || sub == "pin" || sub == "unpin" || sub == "prefetch" || sub == "drain" || sub == "resume" ||
         sub == "inventory";
}

void printCommands(const json& cmds) {
  printTable(cmds, {field("ID", "id"), field("EDGE", "edge"), field("KIND", "kind"),
                    {"ARGS", [](const json& c) { return c.value("args", json::object()).dump(); }},
                    field("STATE", "state"), field("BY", "actor"),
                    {"CREATED", [](const json& c) { return localTime(c.value("created_at", json())); }},
                    {"OUTCOME", [](const json& c) {
                       if (c.contains("error") && c["error"].is_string()) return c["error"].get<std::string>();
                       return c.contains("result") && !c["result"].is_null() ? c["result"].dump() : std::string();
                     }}});
}

int sendCommand(const std::string& kind, const Args& a, Api& api) {
  json args = json::object();
  if (a.has("repo")) args["repository"] = a.get("repo");
  if (a.has("ref")) args["reference"] = a.get("ref");
  if (a.has("digest")) args["digest"] = a.get("digest");
  if (a.has("retry-after")) args["retry_after"] = std::atoll(a.get("retry-after").c_str());
  if (a.has("top")) args["top"] = std::atoll(a.get("top").c_str());
  json body = {{"kind", kind}, {"args", args}};
  json queued;
  if (a.has("site")) {
    queued = api.call("POST", "/sites/" + percentEncode(a.get("site")) + "/commands", body)["commands"];
  } else {
    queued = json::array({api.call("POST", "/edges/" + percentEncode(need(a, 2, "edge name (or --site S)")) +
                                       "/commands", body)});
  }
  if (a.has("wait")) {
    // Each outcome as it comes (an edge away keeps its command queued).
    for (auto& c : queued) {
      std::string path = "/edges/" + percentEncode(c["edge"].get<std::string>()) + "/commands/" +
                         std::to_string(c["id"].get<uint64_t>());
      for (int i = 0; i < 240 && c["state"] != "succeeded" && c["state"] != "failed"; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        c = api.call("GET", path);
      }
    }
  }
  if (a.has("json")) return printJson(queued), 0;
  printCommands(queued);
  for (const auto& c : queued) {
    if (c["state"] == "failed") return 1;
  }
  return 0;
}

// wharfctl edge report: the usage API's rows as a table, with a TOTAL line.
int report(const Args& a, Api& api) {
  std::string name = a.pos.size() > 2 ? a.pos[2] : "";
  std::string by = a.get("by", "day");
  std::string path = name.empty() ? "/fleet/usage" : "/edges/" + percentEncode(name) + "/usage";
  path += "?by=" + percentEncode(by) + "&from=" + percentEncode(a.get("since", "24h"));
  if (a.has("until")) path += "&to=" + percentEncode(a.get("until"));
  if (a.has("csv")) {
    std::cout << api.text("GET", path + "&format=csv");
    return 0;
  }
  json r = api.call("GET", path);
  if (a.has("json")) return printJson(r), 0;
  std::vector<Column> cols;
  if (by == "hour" || by == "day") {
    cols.push_back({by == "hour" ? "HOUR" : "DAY", [by](const json& row) {
                      std::string t = localTime(row.value("time", json()));
                      return by == "day" ? t.substr(0, 10) : t.substr(0, 16);
                    }});
  } else if (by == "repo") {
    cols.push_back(field("REPOSITORY", "repository"));
  } else if (by == "edge") {
    cols.push_back(field("EDGE", "edge"));
    cols.push_back(field("SITE", "site"));
  } else {
    cols.push_back(field("SITE", "site"));
    cols.push_back(field("EDGES", "edges"));
  }
  auto bytes = [](const char* key) {
    return [key](const json& row) { return humanSize(row.value(key, uint64_t{0})); };
  };
  cols.push_back(field("REQUESTS", "requests"));
  cols.push_back({"SERVED", bytes("served_bytes")});
  cols.push_back({"HIT", [](const json& row) { return ratio(row.value("hit_ratio", json())); }});
  cols.push_back({"FETCHED", bytes("fetched_bytes")});
  cols.push_back({"PREFETCHED", bytes("prefetched_bytes")});
  cols.push_back({"SAVED", [](const json& row) { return signedSize(row.value("saved_bytes", int64_t{0})); }});
  json rows = r.value("rows", json::array());
  if (!rows.empty()) {
    // The totals as the last line, under the first column.
    json total = r.value("totals", json::object());
    std::string first = by == "hour" || by == "day" ? "time" : by == "repo" ? "repository" : by;
    total[first] = "TOTAL";  // not a time: localTime() shows it as it is
    rows.push_back(total);
  }
  std::cout << (name.empty() ? "Fleet" : "Edge " + name) << ", " << localTime(r.value("from", json())) << " to "
            << localTime(r.value("to", json())) << ":\n";
  printTable(rows, cols);
  return 0;
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
  if (sub == "report") return report(a, api);
  if (isEdgeCommand(sub)) return sendCommand(sub, a, api);
  if (sub == "cmd") {
    std::string what = need(a, 2, "ls or show");
    std::string edge = need(a, 3, "edge name");
    if (what == "ls") {
      json r = api.call("GET", "/edges/" + percentEncode(edge) + "/commands?limit=" + a.get("limit", "50"));
      if (js) return printJson(r), 0;
      return printCommands(r.value("commands", json::array())), 0;
    }
    if (what == "show") return print(api.call("GET", "/edges/" + percentEncode(edge) + "/commands/" + need(a, 4, "command id")), js), 0;
    die("edge cmd: ls or show (see wharfctl edge --help)", 2);
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
  if (sub == "set" && a.has("site")) {
    // Every edge of the site, each keeping its other settings.
    json changed = json::array();
    json all = api.call("GET", "/edges");
    for (const auto& e : all.value("edges", json::array())) {
      if (e.value("site", "") != a.get("site")) continue;
      std::string each = e["name"].get<std::string>();
      json settings = edgeSettings(a, e.value("settings", json::object()));
      changed.push_back(api.call("PATCH", "/edges/" + percentEncode(each), {{"settings", settings}}));
    }
    if (changed.empty()) die("no edge has site \"" + a.get("site") + "\"", 1);
    if (js) return printJson(changed), 0;
    for (const auto& e : changed) std::cout << e["name"].get<std::string>() << ": " << e["settings"].dump() << "\n";
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
