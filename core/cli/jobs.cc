// wharfctl's jobs and schedules (administrators).
#include <unistd.h>

#include <cstdio>

#include "core/cli/cli.h"
#include "shared/http/url.h"

namespace wharf::cli {

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

namespace {

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

// A job table's cell: progress as done/total, the duration in seconds, the state with
// " (interrupted)"; "-" for what is not there.
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

}  // namespace

int jobLog(Api& api, const std::string& id, bool follow, bool js) {
  uint64_t after = 0;
  for (;;) {
    json r = api.call("GET", "/jobs/" + percentEncode(id) + "/log?limit=1000&after=" + std::to_string(after));
    const json& items = r.value("items", json::array());
    for (const auto& l : items) {
      if (js) {
        std::cout << l.dump() << "\n";
      } else {
        std::cout << localTime(l.value("ts", json())) << "  " << l.value("line", "") << "\n";
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
    if (js) return printJson(r), 0;
    auto col = [](std::string title, std::string key) {
      return Column{std::move(title), [key = std::move(key)](const json& j) { return jobCell(j, key); }};
    };
    printTable(r.value("items", json::array()),
               {col("ID", "id"), col("KIND", "kind"), col("STATE", "state"), col("ACTOR", "actor"),
                timeField("CREATED", "created_at"), col("DURATION", "duration_ms"), col("PROGRESS", "progress"),
                col("ERROR", "error")});
    if (r.contains("next")) std::cout << "(more: wharfctl job ls --before " << r["next"].get<std::string>() << ")\n";
    return 0;
  }
  if (sub == "kinds") {
    json r = api.call("GET", "/jobs/kinds");
    if (js) return printJson(r), 0;
    printTable(r.value("items", json::array()),
               {field("KIND", "kind"), field("EXCLUSIVE", "exclusive"), field("DESCRIPTION", "description")});
    return 0;
  }
  if (sub == "run") {
    std::string kind = need(a, 2, "job kind");
    json r = api.call("POST", "/jobs", {{"kind", kind}, {"params", paramsFrom(a)}});
    std::string id = r.value("id", "");
    if (js && !follow) return printJson(r), 0;
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
    if (js) return printJson(r), 0;
    std::cout << "Job " << r.value("id", id) << ": " << r.value("state", "")
              << (r.value("state", "") == "running" ? " (asked to stop)" : "") << "\n";
    return 0;
  }
  if (sub == "retry") {
    json r = api.call("POST", path + "/retry");
    if (js) return printJson(r), 0;
    std::cerr << "Job " << r.value("id", "") << " queued (retry of " << r.value("retry_of", id) << ").\n";
    std::cout << r.value("id", "") << "\n";
    return 0;
  }
  die("unknown job command (see wharfctl job --help)", 2);
}

int schedule(const Args& a, Api& api) {
  std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  bool js = a.has("json");
  if (sub == "ls" || sub == "list") {
    json r = api.call("GET", "/schedules");
    if (js) return printJson(r), 0;
    printTable(r.value("items", json::array()),
               {field("NAME", "name"), field("CRON", "cron"), field("KIND", "kind"), field("ENABLED", "enabled"),
                timeField("NEXT RUN", "next_run"), timeField("LAST RUN", "last_run"), field("LAST JOB", "last_job"),
                field("ORIGIN", "origin"), {"PARAMS", [](const json& s) {
                  const json& p = s.value("params", json::object());
                  return p.empty() ? std::string("-") : p.dump();
                }}});
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

}  // namespace wharf::cli
