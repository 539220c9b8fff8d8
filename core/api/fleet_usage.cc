// Edge reports and bandwidth (core/fleet/usage_store.h):
//
//   POST /api/v1/edges/self/reports   Authorization: Bearer <edge credential>
//        <EdgeReport JSON>  -> 200 {"seq": <the last seq the core holds>, "duplicate": bool}
//        (400 naming the field of a bad report; 503 when the writer is behind: send again)
//   GET  /api/v1/edges/<name>/usage?from=&to=&by=hour|day|repo[&resolution=hour|day][&repository=][&format=csv]
//   GET  /api/v1/fleet/usage?from=&to=&by=hour|day|repo|edge|site[&resolution=hour|day][&site=][&repository=][&format=csv]
//        administrators -> {"edge"?, "from", "to", "by", "resolution", "rows":[...], "totals":{...}}
//        site=: only the edges of that site (404 when it has none); repository=: only
//        that repository's counters (rows and totals then carry no edge counters)
//
// from and to: RFC 3339, milliseconds since the epoch, "now", or a time back from now
// ("90m", "24h", "7d", "2w"); default the last 24 hours. by=hour reads hourly rows, by=day
// day rows (UTC days), by=repo|edge|site day rows unless resolution=hour; the range is
// rounded out to whole buckets and clamped to the rows' retention (the answer's from and
// to say what was read). Rows: by=hour|day every bucket in time order (empty ones
// included), keyed "time"; by=repo "repository", by=edge "edge" (and "site"), by=site
// "site" (and "edges"), largest served_bytes first. Each row and the totals carry the
// RepoCounters fields, saved_bytes (served - fetched - prefetched) and hit_ratio
// (hit_bytes / served_bytes, null when nothing was served); the totals also the edges'
// own counters (stale_serves, evictions, errors by kind, ...). format=csv (or Accept:
// text/csv): the rows as CSV with a header line, without the totals.
//
// The edge list and an edge's GET carry "status" (addEdgeStatus), and /metrics the
// per-edge series (renderEdgeMetrics).
#include <strings.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/api/api.h"
#include "core/events/event_log.h"
#include "core/fleet/usage_store.h"
#include "shared/oci/names.h"
#include "shared/base/clock.h"
#include "shared/metrics/metrics.h"

namespace wharf {
namespace {

using nlohmann::json;

// Room for a report of EdgeReport::kMaxRepos repositories with long names.
constexpr size_t kMaxReportBody = 16u << 20;
constexpr int64_t kDay = 86'400'000;

Histogram& reportLatency() {
  static Histogram& h = MetricsRegistry::global().histogram(
      "wharf_edge_report_seconds", "Edge report POSTs: from the whole body received to the answer after its commit.");
  return h;
}

ApiReply edgeFail(const Status& st) {
  ApiReply r = apiFail(st);
  if (r.status == 401) r.challenge = "Bearer realm=\"wharf-edge\"";
  return r;
}

Result<Edge> authenticateEdgeCaller(ApiContext& ctx, const Request& req) {
  const std::string* authz = req.headers.get("authorization");
  if (authz == nullptr || authz->size() <= 7 || strncasecmp(authz->c_str(), "Bearer ", 7) != 0) {
    return Status(Code::kUnauthorized, "edge credential required");
  }
  return ctx.auth->authenticateEdge(authz->substr(7));
}

// Runs on a worker: authenticates, parses and queues the report. Returns the answer when
// it is known now; nullopt when the store took the report (its callback answers).
std::optional<ApiReply> takeReport(ApiContext& ctx, const ExchangePtr& ex, const std::string& body, int64_t start) {
  const Request& req = ex->request();
  auto edge = authenticateEdgeCaller(ctx, req);
  if (!edge.isOk()) return edgeFail(edge.status());
  auto report = EdgeReport::fromJson(body);
  if (!report.isOk()) return apiFail(report.status());
  if (ctx.usage == nullptr) return apiFail(Status(Code::kUnavailable, "this core keeps no edge usage"));
  Status queued = ctx.usage->ingest(edge->name, std::move(report).value(), [ex, start](Result<IngestResult> r) {
    // On the store's writer thread: only hand the answer to the exchange's loop.
    ApiReply reply = r.isOk() ? apiOk({{"seq", r->seq}, {"duplicate", r->duplicate}}) : apiFail(r.status());
    ex->loop().post([ex, reply = std::move(reply), start]() mutable {
      reportLatency().observe(static_cast<double>(monotonicMillis() - start) / 1000.0);
      replyApi(ex, std::move(reply));
    });
  });
  if (!queued.isOk()) return apiFail(queued);
  return std::nullopt;
}

void handleReport(ApiContext& ctx, const ExchangePtr& ex) {
  if (ex->request().method != "POST") return replyApi(ex, apiFail(Status(Code::kMethodNotAllowed, "method not allowed")));
  ex->readFullBody(kMaxReportBody, [&ctx, ex](Status st, std::string body) {
    if (!st.isOk()) return replyError(ex, st);
    int64_t start = monotonicMillis();
    auto shared = std::make_shared<std::string>(std::move(body));
    // Not serveApi: a worker must not wait for the store's commit, so the answer comes
    // from the store's callback rather than from the handler's return.
    ctx.work.submit([&ctx, ex, shared, start] {
      std::optional<ApiReply> now;
      std::string failure;
      try {
        now = takeReport(ctx, ex, *shared, start);
      } catch (const std::exception& e) {
        failure = e.what();
      } catch (...) {
        failure = "unknown exception";
      }
      if (!failure.empty()) return ex->loop().post([ex, failure] { replyHandlerFailure(ex, failure); });
      if (now) ex->loop().post([ex, r = std::move(*now)]() mutable { replyApi(ex, std::move(r)); });
    });
  });
}

// --- queries --------------------------------------------------------------------------------

// "now", a duration back from now ("90m", "24h", "7d", "2w"), or an absolute time.
Result<int64_t> parseWhen(const std::string& name, const std::string& text, int64_t now) {
  if (text == "now") return now;
  size_t digits = text.find_first_not_of("0123456789");
  if (digits != std::string::npos && digits > 0 && digits <= 9 && digits + 1 == text.size()) {
    int64_t n = std::stoll(text.substr(0, digits));
    switch (text.back()) {
      case 's': return now - n * 1000;
      case 'm': return now - n * 60'000;
      case 'h': return now - n * 3'600'000;
      case 'd': return now - n * kDay;
      case 'w': return now - n * 7 * kDay;
    }
  }
  auto t = parseTimeBound(text);
  if (!t.isOk()) {
    return Status(Code::kInvalidArgument, name + ": \"" + text.substr(0, 64) +
                                              "\" is not a time (RFC 3339, milliseconds since the epoch, \"now\", "
                                              "or a time back from now such as 24h or 7d)");
  }
  return *t;
}

std::string ratioText(const RepoCounters& c) {
  if (c.served_bytes == 0) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(c.hit_bytes) / static_cast<double>(c.served_bytes));
  return buf;
}

json countersJson(const RepoCounters& c) {
  json j = c.toJson();
  j["saved_bytes"] = c.savedBytes();
  j["hit_ratio"] = c.served_bytes == 0 ? json(nullptr)
                                       : json(static_cast<double>(c.hit_bytes) / static_cast<double>(c.served_bytes));
  return j;
}

json totalsJson(const UsageTotals& t) {
  json j = countersJson(t.repos);
  json edge = t.edge.toJson();  // a named object: items() of a temporary would dangle
  for (auto& [k, v] : edge.items()) j[k] = v;
  return j;
}

std::string csvCell(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// One result row for the answer: its key fields, then the counters.
struct OutRow {
  std::vector<std::pair<std::string, json>> keys;  // ("time", "..."), ("edge", "...")...
  RepoCounters counters;
};

std::string toCsv(const std::vector<std::string>& key_columns, const std::vector<OutRow>& rows) {
  std::string out;
  for (const auto& k : key_columns) out += k + ",";
  for (const auto& f : kRepoCounterFields) out += std::string(f.name) + ",";
  out += "saved_bytes,hit_ratio\r\n";
  for (const auto& r : rows) {
    for (const auto& [k, v] : r.keys) out += csvCell(v.is_string() ? v.get<std::string>() : v.dump()) + ",";
    for (const auto& f : kRepoCounterFields) out += std::to_string(r.counters.*f.member) + ",";
    out += std::to_string(r.counters.savedBytes()) + "," + ratioText(r.counters) + "\r\n";
  }
  return out;
}

bool wantsCsv(const Request& req, Status* st) {
  if (auto f = req.queryParam("format")) {
    if (*f == "csv") return true;
    if (*f == "json") return false;
    *st = Status(Code::kInvalidArgument, "format: csv or json");
    return false;
  }
  const std::string* accept = req.headers.get("accept");
  return accept != nullptr && accept->find("text/csv") != std::string::npos;
}

ApiReply usageQuery(ApiContext& ctx, const Request& req, const std::string& edge) {
  if (req.method != "GET") return apiFail(Status(Code::kMethodNotAllowed, "method not allowed"));
  if (ctx.auth != nullptr) {
    auto who = authenticateApiCaller(ctx, req);
    if (!who.isOk()) return apiFail(who.status());
    if (!who->admin) return apiFail(Status(Code::kDenied, "only administrators see edge usage"));
  }
  if (ctx.usage == nullptr) return apiFail(Status(Code::kUnavailable, "this core keeps no edge usage"));
  if (!edge.empty() && ctx.identity != nullptr) {
    auto e = ctx.identity->edge(edge);
    if (!e.isOk()) return apiFail(e.status().code() == Code::kNotFound ? Status(Code::kNotFound, "no edge named " + edge) : e.status());
  }

  int64_t now = RealClock::instance().nowMillis();
  auto from = parseWhen("from", req.queryParam("from").value_or("24h"), now);
  if (!from.isOk()) return apiFail(from.status());
  auto to = parseWhen("to", req.queryParam("to").value_or("now"), now);
  if (!to.isOk()) return apiFail(to.status());
  if (*from >= *to) return apiFail(Status(Code::kInvalidArgument, "from must be before to"));
  std::string by = req.queryParam("by").value_or("hour");
  std::set<std::string> allowed = {"hour", "day", "repo"};
  if (edge.empty()) allowed.insert({"edge", "site"});
  if (allowed.count(by) == 0) {
    return apiFail(Status(Code::kInvalidArgument, edge.empty() ? "by: one of hour, day, repo, edge, site"
                                                                : "by: one of hour, day, repo"));
  }
  std::string resolution = by == "hour" ? "hour" : "day";
  if (auto r = req.queryParam("resolution")) {
    if (*r != "hour" && *r != "day") return apiFail(Status(Code::kInvalidArgument, "resolution: hour or day"));
    if ((by == "hour" || by == "day") && *r != by) {
      return apiFail(Status(Code::kInvalidArgument, "resolution: by=" + by + " reads " + by + " rows"));
    }
    resolution = *r;
  }
  auto site = req.queryParam("site");
  if (site && site->empty()) site.reset();
  std::map<std::string, std::string> sites;  // edge -> site, of the edges that exist (by=edge|site, site=)
  if ((by == "edge" || by == "site" || site) && ctx.identity != nullptr) {
    for (const auto& e : ctx.identity->edges()) sites[e.name] = e.site;
  }
  Status format_status;
  bool csv = wantsCsv(req, &format_status);
  if (!format_status.isOk()) return apiFail(format_status);

  UsageQuery q;
  if (!edge.empty()) q.edges = std::set<std::string>{edge};
  if (site) {
    if (!edge.empty()) return apiFail(Status(Code::kInvalidArgument, "site: not with one edge"));
    q.edges = std::set<std::string>{};
    for (const auto& [name, where] : sites)
      if (where == *site) q.edges->insert(name);
    if (q.edges->empty()) return apiFail(Status(Code::kNotFound, "no edges at site " + *site));
  }
  if (auto repo = req.queryParam("repository"); repo && !repo->empty()) {
    WHARF_RETURN_IF_ERROR_REPLY(validateRepositoryName(*repo));
    q.repository = *repo;
  }
  q.resolution = resolution == "hour" ? UsageResolution::kHour : UsageResolution::kDay;
  q.group = by == "repo" ? UsageGroup::kRepo : (by == "edge" || by == "site") ? UsageGroup::kEdge : UsageGroup::kTime;
  q.from_ms = *from;
  q.to_ms = *to;
  auto result = ctx.usage->query(q);
  if (!result.isOk()) return apiFail(result.status());

  std::vector<OutRow> rows;
  std::vector<std::string> key_columns;
  if (q.group == UsageGroup::kTime) {
    key_columns = {"time"};
    for (const auto& r : result->rows) rows.push_back(OutRow{{{"time", formatRfc3339(r.bucket_ms)}}, r.totals.repos});
  } else if (by == "repo") {
    key_columns = {"repository"};
    for (const auto& r : result->rows) rows.push_back(OutRow{{{"repository", r.key}}, r.totals.repos});
  } else if (by == "edge") {
    key_columns = {"edge", "site"};
    for (const auto& r : result->rows) {
      auto s = sites.find(r.key);
      // An edge removed since keeps its history: it shows with a null site.
      rows.push_back(OutRow{{{"edge", r.key}, {"site", s == sites.end() ? json(nullptr) : json(s->second)}},
                            r.totals.repos});
    }
  } else {
    key_columns = {"site", "edges"};
    std::map<std::string, std::pair<size_t, RepoCounters>> by_site;
    for (const auto& r : result->rows) {
      auto s = sites.find(r.key);
      auto& slot = by_site[s == sites.end() ? "" : s->second];
      ++slot.first;
      slot.second.add(r.totals.repos);
    }
    for (const auto& [site, v] : by_site) rows.push_back(OutRow{{{"site", site}, {"edges", v.first}}, v.second});
  }
  if (q.group != UsageGroup::kTime) {
    std::stable_sort(rows.begin(), rows.end(), [](const OutRow& a, const OutRow& b) {
      return a.counters.served_bytes > b.counters.served_bytes;
    });
  }

  if (csv) {
    ApiReply r;
    r.stream = [text = toCsv(key_columns, rows)](Loop&) { return Response::text(200, text, "text/csv; charset=utf-8"); };
    return r;
  }
  json items = json::array();
  for (const auto& r : rows) {
    json j = json::object();
    for (const auto& [k, v] : r.keys) j[k] = v;
    json counters = countersJson(r.counters);
    for (auto& [k, v] : counters.items()) j[k] = v;
    items.push_back(std::move(j));
  }
  json out = {{"from", formatRfc3339(result->from_ms)},
              {"to", formatRfc3339(result->to_ms)},
              {"by", by},
              {"resolution", resolution},
              {"rows", std::move(items)},
              {"totals", totalsJson(result->totals)}};
  if (!edge.empty()) out["edge"] = edge;
  return apiOk(std::move(out));
}

// --- status and metrics -----------------------------------------------------------------------

json statusJson(const EdgeStatus* s, int64_t now, int64_t unreachable_after_ms, const UsageTotals& day) {
  json j = {{"state", edgeState(s, now, unreachable_after_ms)}, {"last_report", nullptr}};
  if (s == nullptr) return j;
  j["last_report"] = formatRfc3339(s->received_ms);
  j["version"] = s->version;
  j["uptime_s"] = s->uptime_s;
  j["draining"] = s->draining;
  j["final"] = s->final;
  j["cache"] = {{"used", s->cache_used},
                {"budget", s->cache_budget},
                {"blobs", s->cache_blobs},
                {"pinned_bytes", s->pinned_bytes}};
  j["fills_in_flight"] = s->fills_in_flight;
  json d = countersJson(day.repos);
  j["last_24h"] = {{"served_bytes", day.repos.served_bytes},
                   {"hit_bytes", day.repos.hit_bytes},
                   {"hit_ratio", d["hit_ratio"]},
                   {"saved_bytes", day.repos.savedBytes()},
                   {"stale_serves", day.edge.stale_serves},
                   {"errors", day.edge.errors}};
  return j;
}

std::string labelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

bool isEdgeUsagePath(std::string_view path) {
  if (path == "/api/v1/edges/self/reports") return true;
  auto parts = splitPath(path);
  return parts.size() == 5 && parts[2] == "edges" && parts[4] == "usage";
}

void handleFleetUsage(ApiContext& ctx, const ExchangePtr& ex) {
  const std::string& path = ex->request().path;
  if (path == "/api/v1/edges/self/reports") {
    if (ctx.auth == nullptr) return replyError(ex, Status(Code::kNotFound, "edges need authentication on"));
    return handleReport(ctx, ex);
  }
  auto parts = splitPath(path);
  std::string edge;
  if (parts.size() == 5 && parts[2] == "edges" && parts[4] == "usage") {
    edge = parts[3];
  } else if (!(parts.size() == 4 && parts[2] == "fleet" && parts[3] == "usage")) {
    return replyError(ex, Status(Code::kNotFound, "no such endpoint"));
  }
  serveApi(ctx, ex, kMaxApiBody, [&ctx, ex, edge](std::string) { return usageQuery(ctx, ex->request(), edge); });
}

void addEdgeStatus(ApiContext& ctx, json& items) {
  if (ctx.usage == nullptr || !items.is_array() || items.empty()) return;
  int64_t now = RealClock::instance().nowMillis();
  // The last 24 hours from hourly rows, every edge's in one scan (or the one edge's).
  UsageQuery q;
  q.resolution = UsageResolution::kHour;
  q.group = UsageGroup::kEdge;
  q.from_ms = now - kDay;
  q.to_ms = now;
  if (items.size() == 1) q.edges = std::set<std::string>{items[0].value("name", "")};
  std::map<std::string, UsageTotals> day;
  if (auto r = ctx.usage->query(q); r.isOk()) {
    for (auto& row : r->rows) day[row.key] = std::move(row.totals);
  }
  for (auto& item : items) {
    std::string name = item.value("name", "");
    auto s = ctx.usage->status(name);
    item["status"] = statusJson(s ? &*s : nullptr, now, ctx.edge_unreachable_after_ms, day[name]);
  }
}

Status forgetEdgeUsage(ApiContext& ctx, const std::string& name) {
  if (ctx.usage == nullptr) return Status::ok();
  return ctx.usage->forgetEdge(name);
}

std::string renderEdgeMetrics(ApiContext& ctx) {
  if (ctx.usage == nullptr || ctx.identity == nullptr) return "";
  std::set<std::string> existing;
  for (const auto& e : ctx.identity->edges()) existing.insert(e.name);
  std::vector<EdgeStatus> statuses;
  for (auto& s : ctx.usage->statuses()) {
    // A report queued just before its edge was removed can leave a status behind.
    if (existing.count(s.edge) != 0) statuses.push_back(std::move(s));
  }
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto line = [&](const char* name, const std::string& edge, const std::string& extra, uint64_t v) {
    out += std::string(name) + "{edge=\"" + labelValue(edge) + "\"" + (extra.empty() ? "" : "," + extra) + "} " +
           std::to_string(v) + "\n";
  };
  // Counters are the sums of every delta the core accepted from the edge (they survive the
  // edge's restarts and new epochs, and the core's restarts).
  family("wharf_edge_bytes_served_total", "counter", "Bytes edges served to clients, from their cache or the upstream.");
  for (const auto& s : statuses) {
    const RepoCounters& c = s.lifetime.repos;
    line("wharf_edge_bytes_served_total", s.edge, "source=\"cache\"", c.hit_bytes);
    line("wharf_edge_bytes_served_total", s.edge, "source=\"upstream\"", c.served_bytes - std::min(c.served_bytes, c.hit_bytes));
  }
  family("wharf_edge_bytes_fetched_total", "counter", "Bytes edges received from their upstream, for clients or prefetches.");
  for (const auto& s : statuses) {
    line("wharf_edge_bytes_fetched_total", s.edge, "purpose=\"client\"", s.lifetime.repos.fetched_bytes);
    line("wharf_edge_bytes_fetched_total", s.edge, "purpose=\"prefetch\"", s.lifetime.repos.prefetched_bytes);
  }
  family("wharf_edge_requests_total", "counter", "Blob and manifest GETs edges answered, from their cache or not.");
  for (const auto& s : statuses) {
    line("wharf_edge_requests_total", s.edge, "result=\"hit\"", s.lifetime.repos.hits);
    line("wharf_edge_requests_total", s.edge, "result=\"miss\"", s.lifetime.repos.misses);
  }
  family("wharf_edge_errors_total", "counter", "Errors edges reported, by kind.");
  for (const auto& s : statuses) {
    for (const auto& [kind, n] : s.lifetime.edge.errors) line("wharf_edge_errors_total", s.edge, "kind=\"" + labelValue(kind) + "\"", n);
  }
  family("wharf_edge_stale_serves_total", "counter", "Manifests edges served stale because their upstream failed.");
  for (const auto& s : statuses) line("wharf_edge_stale_serves_total", s.edge, "", s.lifetime.edge.stale_serves);
  family("wharf_edge_cache_used_bytes", "gauge", "Bytes in each edge's cache, as of its last report.");
  for (const auto& s : statuses) line("wharf_edge_cache_used_bytes", s.edge, "", s.cache_used);
  family("wharf_edge_cache_budget_bytes", "gauge", "Each edge's cache budget, as of its last report.");
  for (const auto& s : statuses) line("wharf_edge_cache_budget_bytes", s.edge, "", s.cache_budget);
  family("wharf_edge_last_report_timestamp_seconds", "gauge", "When the core received each edge's last report.");
  for (const auto& s : statuses) line("wharf_edge_last_report_timestamp_seconds", s.edge, "", static_cast<uint64_t>(s.received_ms / 1000));
  return out;
}

}  // namespace wharf
