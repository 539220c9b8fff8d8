#include "core/fleet/pg_usage_store.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <future>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "shared/base/log.h"
#include "shared/metrics/metrics.h"

namespace wharf {

const std::vector<PgMigration>& usageMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "edge report state and statuses, hourly and daily usage series per edge and per repository",
       R"sql(
CREATE FUNCTION wharf_usage_add(a bigint, b bigint) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS 'SELECT CASE WHEN b > 9223372036854775807 - a THEN 9223372036854775807 ELSE a + b END';
CREATE TABLE usage_edges (edge text COLLATE "C" PRIMARY KEY, received_ms bigint NOT NULL, status text NOT NULL,
                          state text NOT NULL);
CREATE TABLE usage_hour (bucket_ms bigint NOT NULL, edge text COLLATE "C" NOT NULL,
                         requests bigint NOT NULL, hits bigint NOT NULL, misses bigint NOT NULL,
                         served_bytes bigint NOT NULL, hit_bytes bigint NOT NULL, fetched_bytes bigint NOT NULL,
                         prefetched_bytes bigint NOT NULL, prefetch_used_bytes bigint NOT NULL,
                         prefetch_wasted_bytes bigint NOT NULL,
                         evictions bigint NOT NULL, evicted_bytes bigint NOT NULL, stale_serves bigint NOT NULL,
                         scrub_checked bigint NOT NULL, scrub_corrupt bigint NOT NULL,
                         PRIMARY KEY (bucket_ms, edge));
CREATE TABLE usage_day (bucket_ms bigint NOT NULL, edge text COLLATE "C" NOT NULL,
                        requests bigint NOT NULL, hits bigint NOT NULL, misses bigint NOT NULL,
                        served_bytes bigint NOT NULL, hit_bytes bigint NOT NULL, fetched_bytes bigint NOT NULL,
                        prefetched_bytes bigint NOT NULL, prefetch_used_bytes bigint NOT NULL,
                        prefetch_wasted_bytes bigint NOT NULL,
                        evictions bigint NOT NULL, evicted_bytes bigint NOT NULL, stale_serves bigint NOT NULL,
                        scrub_checked bigint NOT NULL, scrub_corrupt bigint NOT NULL,
                        PRIMARY KEY (bucket_ms, edge));
CREATE TABLE usage_hour_errors (bucket_ms bigint NOT NULL, edge text COLLATE "C" NOT NULL,
                                kind text COLLATE "C" NOT NULL, n bigint NOT NULL,
                                PRIMARY KEY (bucket_ms, edge, kind));
CREATE TABLE usage_day_errors (bucket_ms bigint NOT NULL, edge text COLLATE "C" NOT NULL,
                               kind text COLLATE "C" NOT NULL, n bigint NOT NULL,
                               PRIMARY KEY (bucket_ms, edge, kind));
CREATE TABLE usage_hour_repo (bucket_ms bigint NOT NULL, edge text COLLATE "C" NOT NULL,
                              repository text COLLATE "C" NOT NULL,
                              requests bigint NOT NULL, hits bigint NOT NULL, misses bigint NOT NULL,
                              served_bytes bigint NOT NULL, hit_bytes bigint NOT NULL, fetched_bytes bigint NOT NULL,
                              prefetched_bytes bigint NOT NULL, prefetch_used_bytes bigint NOT NULL,
                              prefetch_wasted_bytes bigint NOT NULL,
                              PRIMARY KEY (bucket_ms, edge, repository));
CREATE TABLE usage_day_repo (bucket_ms bigint NOT NULL, edge text COLLATE "C" NOT NULL,
                             repository text COLLATE "C" NOT NULL,
                             requests bigint NOT NULL, hits bigint NOT NULL, misses bigint NOT NULL,
                             served_bytes bigint NOT NULL, hit_bytes bigint NOT NULL, fetched_bytes bigint NOT NULL,
                             prefetched_bytes bigint NOT NULL, prefetch_used_bytes bigint NOT NULL,
                             prefetch_wasted_bytes bigint NOT NULL,
                             PRIMARY KEY (bucket_ms, edge, repository));
)sql"},
  };
  return all;
}

// The helpers' own namespace: wharf_core_lib is a unity build (sources batched into one
// translation unit), where anonymous namespaces of different files are one.
namespace pg_usage_store {
namespace {

using nlohmann::json;

// The columns of migration 1 are the fields' names: a field added to either list needs a
// migration adding its columns (and these counts updated).
static_assert(std::size(kRepoCounterFields) == 9, "a new RepoCounters field needs a usage migration");
static_assert(std::size(kEdgeCounterFields) == 5, "a new EdgeCounters field needs a usage migration");
constexpr size_t kRepoN = std::size(kRepoCounterFields);
constexpr size_t kEdgeN = std::size(kEdgeCounterFields);

constexpr size_t kBatchMax = 2000;          // reports per transaction
constexpr size_t kBatchRepoMax = 100'000;   // and repository entries (bounds the statements' size)
constexpr int64_t kPruneChunk = 10'000;     // deletes per statement
constexpr int kEdgeLock = 1490;             // advisory lock class: (1490, hashtext(edge))
constexpr uint64_t kMaxCount = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

struct PgUsageMetrics {
  Counter& accepted;
  Counter& duplicates;
  Counter& failed;
  Counter& pruned;
  Histogram& commit_seconds;
  Gauge& queue_depth;
  Gauge& last_batch;
  // The LMDB store's series (one store runs in a process): the same dashboards.
  static PgUsageMetrics& get() {
    auto& r = MetricsRegistry::global();
    static PgUsageMetrics m{
        r.counter("wharf_usage_reports_total", "Edge reports ingested, by result.", "result=\"accepted\""),
        r.counter("wharf_usage_reports_total", "Edge reports ingested, by result.", "result=\"duplicate\""),
        r.counter("wharf_usage_reports_total", "Edge reports ingested, by result.", "result=\"failed\""),
        r.counter("wharf_usage_pruned_rows_total", "Usage rows removed by retention."),
        r.histogram("wharf_usage_commit_seconds", "Time to apply and commit one batch of edge reports."),
        r.gauge("wharf_usage_queue_depth", "Edge reports waiting for the usage writer."),
        r.gauge("wharf_usage_last_batch_size", "Edge reports in the last committed batch."),
    };
    return m;
  }
};

// --- text PostgreSQL can hold -------------------------------------------------------------

// --- numbers ------------------------------------------------------------------------------

std::string num(int64_t v) { return std::to_string(v); }
// A counter as a bigint parameter: above 2^63-1 it is stored as 2^63-1.
std::string count(uint64_t v) { return std::to_string(std::min(v, kMaxCount)); }
// a + b, stopping at 2^63-1 (what a bigint column holds).
uint64_t satAdd(uint64_t a, uint64_t b) {
  a = std::min(a, kMaxCount);
  b = std::min(b, kMaxCount);
  return std::min(a + b, kMaxCount);  // no wrap: both are below 2^63
}
// A sum PostgreSQL returns (numeric, possibly beyond 2^63): saturates at 2^64-1.
uint64_t unsignedOf(std::string_view text) {
  std::string s(text);
  return s.empty() || s[0] == '-' ? 0 : std::strtoull(s.c_str(), nullptr, 10);
}
int64_t signedOf(std::string_view text) { return std::strtoll(std::string(text).c_str(), nullptr, 10); }

// A bucket as LMDB keys it: the bucket number is clamped to 0 .. 2^32-1.
uint32_t bucketOf(UsageResolution r, int64_t t_ms) {
  int64_t b = usageBucketStart(r, t_ms) / usageBucketMs(r);
  return static_cast<uint32_t>(std::clamp<int64_t>(b, 0, UINT32_MAX));
}
int64_t bucketMsOf(UsageResolution r, int64_t t_ms) {
  return static_cast<int64_t>(bucketOf(r, t_ms)) * usageBucketMs(r);
}

// --- the counter state: the cumulative counters of an edge's last accepted report -----------

json repoArray(const RepoCounters& c) {
  json a = json::array();
  for (const auto& f : kRepoCounterFields) a.push_back(c.*f.member);
  return a;
}

std::string encodeState(const UsageCounterState& s) {
  json edge = json::array();
  for (const auto& f : kEdgeCounterFields) edge.push_back(s.counters.*f.member);
  json repos = json::object();
  for (const auto& [name, c] : s.repos) repos[name] = repoArray(c);
  json j = {{"epoch", s.epoch}, {"seq", s.seq}, {"counters", std::move(edge)}, {"errors", s.counters.errors},
            {"repos", std::move(repos)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Numbers of a list in field order: those beyond the fields this build knows are skipped,
// missing ones stay 0 (as LMDB's encoding reads).
template <typename T, typename Fields>
bool readFields(const json& a, T* out, const Fields& fields) {
  if (!a.is_array()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number_unsigned()) return false;
    if (i < std::size(fields)) out->*fields[i].member = a[i].get<uint64_t>();
  }
  return true;
}

bool decodeState(std::string_view text, UsageCounterState* s) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return false;
  auto epoch = j.find("epoch"), seq = j.find("seq"), counters = j.find("counters"), errors = j.find("errors"),
       repos = j.find("repos");
  if (epoch == j.end() || !epoch->is_string() || seq == j.end() || !seq->is_number_unsigned()) return false;
  s->epoch = epoch->get<std::string>();
  s->seq = seq->get<uint64_t>();
  if (counters != j.end() && !readFields(*counters, &s->counters, kEdgeCounterFields)) return false;
  if (errors != j.end()) {
    if (!errors->is_object()) return false;
    for (auto it = errors->begin(); it != errors->end(); ++it) {
      if (!it->is_number_unsigned()) return false;
      s->counters.errors[it.key()] = it->get<uint64_t>();
    }
  }
  if (repos != j.end()) {
    if (!repos->is_object()) return false;
    for (auto it = repos->begin(); it != repos->end(); ++it) {
      if (!readFields(*it, &s->repos[it.key()], kRepoCounterFields)) return false;
    }
  }
  return true;
}

// statusFromJson, with the lifetime counters read exactly: statusFromJson reads them
// through JsonBody, which takes a number above 2^63-1 as 0 and more than 64 error kinds
// as none. LMDB reads the JSON only at open; this store reads it for every batch.
EdgeStatus statusOf(const std::string& edge, std::string_view text) {
  json j = json::parse(text, nullptr, false);
  EdgeStatus s = statusFromJson(edge, j);
  if (!j.is_object()) return s;
  auto l = j.find("lifetime");
  if (l == j.end() || !l->is_object()) return s;
  auto number = [](const json& o, const char* key) {
    auto v = o.find(key);
    return v != o.end() && v->is_number_unsigned() ? v->get<uint64_t>() : uint64_t{0};
  };
  s.lifetime = UsageTotals{};
  if (auto r = l->find("repos"); r != l->end() && r->is_object()) {
    for (const auto& f : kRepoCounterFields) s.lifetime.repos.*f.member = number(*r, f.name);
  }
  if (auto e = l->find("edge"); e != l->end() && e->is_object()) {
    for (const auto& f : kEdgeCounterFields) s.lifetime.edge.*f.member = number(*e, f.name);
    if (auto errors = e->find("errors"); errors != e->end() && errors->is_object()) {
      for (auto it = errors->begin(); it != errors->end(); ++it) {
        if (it->is_number_unsigned()) s.lifetime.edge.errors[it.key()] = it->get<uint64_t>();
      }
    }
  }
  return s;
}

bool emptyEdge(const EdgeCounters& c) {
  bool zero = std::all_of(c.errors.begin(), c.errors.end(), [](const auto& e) { return e.second == 0; });
  for (const auto& f : kEdgeCounterFields) zero = zero && c.*f.member == 0;
  return zero;
}

// --- the series a batch adds to, summed per row before they are written ------------------

struct Series {
  // (bucket_ms, edge) -> the RepoCounters fields, then the EdgeCounters fields
  std::map<std::pair<int64_t, std::string>, std::array<uint64_t, kRepoN + kEdgeN>> totals;
  std::map<std::tuple<int64_t, std::string, std::string>, uint64_t> errors;  // (bucket_ms, edge, kind)
  std::map<std::tuple<int64_t, std::string, std::string>, std::array<uint64_t, kRepoN>> repos;  // (.., repository)

  void addTotals(int64_t bucket, const std::string& edge, const UsageTotals& d) {
    auto [it, added] = totals.try_emplace({bucket, edge});
    if (added) it->second.fill(0);
    auto& row = it->second;
    for (size_t i = 0; i < kRepoN; ++i) row[i] = satAdd(row[i], d.repos.*kRepoCounterFields[i].member);
    for (size_t i = 0; i < kEdgeN; ++i) row[kRepoN + i] = satAdd(row[kRepoN + i], d.edge.*kEdgeCounterFields[i].member);
    for (const auto& [kind, n] : d.edge.errors) {
      if (n == 0) continue;
      uint64_t& e = errors[{bucket, edge, pgStorableText(kind)}];
      e = satAdd(e, n);
    }
  }
  void addRepo(int64_t bucket, const std::string& edge, const std::string& repo, const RepoCounters& d) {
    auto [it, added] = repos.try_emplace({bucket, edge, repo});
    if (added) it->second.fill(0);
    for (size_t i = 0; i < kRepoN; ++i) it->second[i] = satAdd(it->second[i], d.*kRepoCounterFields[i].member);
  }
};

struct Tables {
  const char* totals;
  const char* errors;
  const char* repo;
};
constexpr Tables kHourTables{"usage_hour", "usage_hour_errors", "usage_hour_repo"};
constexpr Tables kDayTables{"usage_day", "usage_day_errors", "usage_day_repo"};
const Tables& tablesOf(UsageResolution r) { return r == UsageResolution::kHour ? kHourTables : kDayTables; }

struct KeyColumn {
  const char* name;
  const char* type;
};

// INSERT of rows given as one array per column (keys, then counters), adding each counter
// to the row's when it exists. Built from the constant names above, never from values.
std::string upsertSql(const std::string& table, const std::vector<KeyColumn>& keys,
                      const std::vector<std::string>& counters) {
  std::string cols, arrays, conflict, sets;
  int p = 0;
  for (const auto& k : keys) {
    cols += std::string(cols.empty() ? "" : ", ") + k.name;
    arrays += std::string(arrays.empty() ? "" : ", ") + "$" + std::to_string(++p) + "::" + k.type + "[]";
    conflict += std::string(conflict.empty() ? "" : ", ") + k.name;
  }
  for (const auto& c : counters) {
    cols += ", " + c;
    arrays += ", $" + std::to_string(++p) + "::bigint[]";
    sets += std::string(sets.empty() ? "" : ", ") + c + " = wharf_usage_add(t." + c + ", EXCLUDED." + c + ")";
  }
  return "INSERT INTO " + table + " AS t (" + cols + ") SELECT * FROM unnest(" + arrays + ") ON CONFLICT (" +
         conflict + ") DO UPDATE SET " + sets;
}

std::vector<std::string> repoColumns() {
  std::vector<std::string> out;
  for (const auto& f : kRepoCounterFields) out.emplace_back(f.name);
  return out;
}

std::vector<std::string> totalsColumns() {
  std::vector<std::string> out = repoColumns();
  for (const auto& f : kEdgeCounterFields) out.emplace_back(f.name);
  return out;
}

// "a, b, ..."
std::string join(const std::vector<std::string>& cols) {
  std::string out;
  for (const auto& c : cols) out += std::string(out.empty() ? "" : ", ") + c;
  return out;
}

// "sum(a), sum(b), ..."
std::string sums(const std::vector<std::string>& cols) {
  std::string out;
  for (const auto& c : cols) out += std::string(out.empty() ? "" : ", ") + "sum(" + c + ")";
  return out;
}

Status writeSeries(PgConn& c, const Tables& t, const Series& s) {
  if (!s.totals.empty()) {
    static const std::string hour = upsertSql(kHourTables.totals, {{"bucket_ms", "bigint"}, {"edge", "text"}}, totalsColumns());
    static const std::string day = upsertSql(kDayTables.totals, {{"bucket_ms", "bigint"}, {"edge", "text"}}, totalsColumns());
    std::vector<std::vector<std::string>> cols(2 + kRepoN + kEdgeN);
    for (const auto& [key, row] : s.totals) {
      cols[0].push_back(num(key.first));
      cols[1].push_back(key.second);
      for (size_t i = 0; i < row.size(); ++i) cols[2 + i].push_back(count(row[i]));
    }
    PgParams params;
    for (const auto& col : cols) params.emplace_back(pgArray(col));
    WHARF_RETURN_IF_ERROR(c.exec(&t == &kHourTables ? hour : day, params).status());
  }
  if (!s.errors.empty()) {
    static const std::string hour =
        upsertSql(kHourTables.errors, {{"bucket_ms", "bigint"}, {"edge", "text"}, {"kind", "text"}}, {"n"});
    static const std::string day =
        upsertSql(kDayTables.errors, {{"bucket_ms", "bigint"}, {"edge", "text"}, {"kind", "text"}}, {"n"});
    std::vector<std::string> buckets, edges, kinds, ns;
    for (const auto& [key, n] : s.errors) {
      buckets.push_back(num(std::get<0>(key)));
      edges.push_back(std::get<1>(key));
      kinds.push_back(std::get<2>(key));
      ns.push_back(count(n));
    }
    WHARF_RETURN_IF_ERROR(
        c.exec(&t == &kHourTables ? hour : day, {pgArray(buckets), pgArray(edges), pgArray(kinds), pgArray(ns)}).status());
  }
  if (!s.repos.empty()) {
    static const std::string hour = upsertSql(
        kHourTables.repo, {{"bucket_ms", "bigint"}, {"edge", "text"}, {"repository", "text"}}, repoColumns());
    static const std::string day = upsertSql(
        kDayTables.repo, {{"bucket_ms", "bigint"}, {"edge", "text"}, {"repository", "text"}}, repoColumns());
    std::vector<std::vector<std::string>> cols(3 + kRepoN);
    for (const auto& [key, row] : s.repos) {
      cols[0].push_back(num(std::get<0>(key)));
      cols[1].push_back(std::get<1>(key));
      cols[2].push_back(std::get<2>(key));
      for (size_t i = 0; i < row.size(); ++i) cols[3 + i].push_back(count(row[i]));
    }
    PgParams params;
    for (const auto& col : cols) params.emplace_back(pgArray(col));
    WHARF_RETURN_IF_ERROR(c.exec(&t == &kHourTables ? hour : day, params).status());
  }
  return Status::ok();
}

// What an edge's row holds, as read under its lock (and changed by the batch so far).
struct EdgeRow {
  EdgeStatus status;
  UsageCounterState last;
  bool have_last = false;  // false: the state was unreadable, the next report counts from zero
};

// The counters of a row of sums, from column first on.
RepoCounters repoOf(const PgResult& r, int row, int first) {
  RepoCounters c;
  for (size_t i = 0; i < kRepoN; ++i) c.*kRepoCounterFields[i].member = unsignedOf(r.text(row, first + static_cast<int>(i)));
  return c;
}

UsageTotals totalsOf(const PgResult& r, int row, int first) {
  UsageTotals t;
  t.repos = repoOf(r, row, first);
  for (size_t i = 0; i < kEdgeN; ++i) {
    t.edge.*kEdgeCounterFields[i].member = unsignedOf(r.text(row, first + static_cast<int>(kRepoN + i)));
  }
  return t;
}

}  // namespace
}  // namespace pg_usage_store


Result<std::unique_ptr<PgUsageStore>> PgUsageStore::open(std::shared_ptr<PgPool> db, Clock& clock,
                                                          LmdbUsageOptions options) {
  auto applied = applyMigrations(*db, "usage", usageMigrations());
  if (!applied.isOk()) return applied.status();
  std::unique_ptr<PgUsageStore> store(new PgUsageStore(std::move(db), clock, options));
  store->prune();
  store->thread_ = std::thread([s = store.get()] { s->run(); });
  return store;
}

PgUsageStore::PgUsageStore(std::shared_ptr<PgPool> db, Clock& clock, LmdbUsageOptions options)
    : db_(std::move(db)), clock_(clock), options_(options) {}

PgUsageStore::~PgUsageStore() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status PgUsageStore::ingest(const std::string& edge, EdgeReport report, IngestCallback done) {
  namespace u = pg_usage_store;
  Op op{edge, std::move(report), clock_.nowMillis(), std::move(done)};
  {
    std::lock_guard lock(mu_);
    if (stop_) return Status(Code::kUnavailable, "the usage store is closing");
    if (queue_.size() >= options_.queue_max) {
      return Status(Code::kUnavailable, "too many edge reports waiting to be written; send it again later");
    }
    queue_.push_back(std::move(op));
    u::PgUsageMetrics::get().queue_depth.set(static_cast<int64_t>(queue_.size()));
  }
  cv_.notify_one();
  return Status::ok();
}

Status PgUsageStore::forgetEdge(const std::string& edge) {
  // Through the queue: ordered after every report queued before it (on this core).
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  Op op{edge, std::nullopt, clock_.nowMillis(), [promise](Result<IngestResult> r) { promise->set_value(r.status()); }};
  {
    std::lock_guard lock(mu_);
    if (stop_) return Status(Code::kUnavailable, "the usage store is closing");
    queue_.push_back(std::move(op));
  }
  cv_.notify_one();
  return future.get();
}

void PgUsageStore::run() {
  namespace u = pg_usage_store;
  int64_t last_prune = monotonicMillis();
  std::unique_lock lock(mu_);
  for (;;) {
    int64_t wait_ms = std::max<int64_t>(0, last_prune + options_.prune_interval_ms - monotonicMillis());
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return stop_ || !queue_.empty(); });
    // What waits goes in one transaction (at most kBatchMax reports and about
    // kBatchRepoMax repository entries, at least one report).
    std::deque<Op> batch;
    size_t weight = 0;
    while (!queue_.empty() && batch.size() < u::kBatchMax) {
      size_t w = 1 + (queue_.front().report ? queue_.front().report->repos.size() : 0);
      if (!batch.empty() && weight + w > u::kBatchRepoMax) break;
      weight += w;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    bool stopping = stop_;
    u::PgUsageMetrics::get().queue_depth.set(static_cast<int64_t>(queue_.size()));
    lock.unlock();
    if (!batch.empty()) {
      auto& m = u::PgUsageMetrics::get();
      int64_t start = monotonicMillis();
      std::vector<std::optional<Result<IngestResult>>> results;
      Status st = writeBatch(batch, results);
      uint64_t reports = 0, accepted = 0, duplicates = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!batch[i].report) continue;
        ++reports;
        if (st.isOk() && results[i] && results[i]->isOk()) ++((*results[i])->duplicate ? duplicates : accepted);
      }
      if (st.isOk()) {
        m.commit_seconds.observe(static_cast<double>(monotonicMillis() - start) / 1000.0);
        m.last_batch.set(static_cast<int64_t>(batch.size()));
      } else {
        logError("usage store write failed", {{"error", st.toString()}, {"reports", reports}});
      }
      m.accepted.inc(accepted);
      m.duplicates.inc(duplicates);
      m.failed.inc(reports - accepted - duplicates);
      {
        std::lock_guard l(mu_);
        ++stats_.batches;
        stats_.reports += reports;
        stats_.duplicates += duplicates;
        if (!st.isOk()) stats_.failed += reports;
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!batch[i].done) continue;
        if (results[i]) {
          batch[i].done(std::move(*results[i]));  // its own answer (a refused op's even when the batch failed)
        } else if (!st.isOk()) {
          batch[i].done(st);
        } else {
          batch[i].done(Status(Code::kInternal, "the usage store did not answer a report"));
        }
      }
    }
    if (monotonicMillis() - last_prune >= options_.prune_interval_ms) {
      last_prune = monotonicMillis();
      prune();
    }
    lock.lock();
    if (stopping && queue_.empty()) return;
  }
}

Status PgUsageStore::writeBatch(const std::deque<Op>& batch, std::vector<std::optional<Result<IngestResult>>>& results) {
  namespace u = pg_usage_store;
  results.assign(batch.size(), std::nullopt);
  // What the database cannot hold fails alone (an edge never named so has nothing to
  // forget), never the batch.
  std::vector<bool> skip(batch.size(), false);
  std::vector<std::string> edges;  // the batch's edges, each once
  {
    std::set<std::string> seen;
    for (size_t i = 0; i < batch.size(); ++i) {
      const Op& op = batch[i];
      bool ok = pgStorable(op.edge);
      if (ok && op.report) {
        ok = std::all_of(op.report->repos.begin(), op.report->repos.end(),
                         [](const auto& r) { return pgStorable(r.first); });
      }
      if (!ok) {
        skip[i] = true;
        if (op.report) {
          results[i] = Status(Code::kInvalidArgument,
                              "an edge or repository name that is not UTF-8 text (or holds a NUL byte) cannot be stored");
        } else {
          results[i] = IngestResult{};
        }
        continue;
      }
      if (seen.insert(op.edge).second) edges.push_back(op.edge);
    }
  }
  if (edges.empty()) return Status::ok();
  const std::string edge_array = pgArray(edges);

  std::vector<std::optional<Result<IngestResult>>> answers;
  Status st = db_->transact([&](PgConn& c) -> Status {
    answers = results;  // from scratch when a deadlock makes it run again
    // The edges' locks, in ascending key order: batches of several replicas touching the
    // same edges take them in the same order. Held to commit: from here the statements
    // see what the previous holders committed, and no one else writes these edges' rows.
    WHARF_RETURN_IF_ERROR(c.exec("SELECT pg_advisory_xact_lock(" + std::to_string(u::kEdgeLock) +
                                     ", h) FROM (SELECT DISTINCT hashtext(e) AS h FROM unnest($1::text[]) AS e "
                                     "ORDER BY h) AS locks",
                                 {edge_array})
                              .status());
    auto loaded = c.exec("SELECT edge, status, state FROM usage_edges WHERE edge = ANY($1::text[])", {edge_array});
    if (!loaded.isOk()) return loaded.status();
    std::map<std::string, std::optional<u::EdgeRow>> rows;  // nullopt: no row (never reported, or forgotten)
    for (int i = 0; i < loaded->rows(); ++i) {
      std::string edge(loaded->text(i, 0));
      u::EdgeRow row;
      row.status = u::statusOf(edge, loaded->text(i, 1));
      row.have_last = u::decodeState(loaded->text(i, 2), &row.last);
      if (!row.have_last) {
        logWarn("unreadable usage counter state: the edge's next report counts from zero", {{"edge", edge}});
        row.last = UsageCounterState{};
      }
      rows[edge] = std::move(row);
    }

    std::set<std::string> touched;
    u::Series hour, day;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (skip[i]) continue;
      const Op& op = batch[i];
      const std::string& edge = op.edge;
      std::optional<u::EdgeRow>& row = rows[edge];
      if (!op.report) {
        row.reset();
        touched.insert(edge);
        answers[i] = IngestResult{};
        continue;
      }
      const EdgeReport& r = *op.report;
      // Reports of one edge in one batch apply in order: each sees the state the previous left.
      bool have = row && row->have_last;
      const UsageCounterState empty;
      const UsageCounterState& last = have ? row->last : empty;
      bool same_epoch = have && last.epoch == r.epoch;
      if (same_epoch && r.seq <= last.seq) {
        answers[i] = IngestResult{last.seq, true};
        continue;
      }
      // The delta, and the new state: repositories and error kinds missing from this
      // report keep their last counters within the epoch, so that one reappearing later
      // is not counted again from zero.
      UsageTotals delta;
      std::map<std::string, RepoCounters> repo_deltas;
      UsageCounterState next;
      next.epoch = r.epoch;
      next.seq = r.seq;
      if (same_epoch) next.repos = last.repos;
      for (const auto& [name, rc] : r.repos) {
        RepoCounters d = rc;
        if (same_epoch) {
          if (auto it = next.repos.find(name); it != next.repos.end()) d = rc.minus(it->second);
        }
        if (!d.empty()) {
          delta.repos.add(d);
          repo_deltas.emplace(name, d);
        }
        next.repos[name] = rc;
      }
      delta.edge = same_epoch ? r.counters.minus(last.counters) : r.counters;
      for (auto it = delta.edge.errors.begin(); it != delta.edge.errors.end();) {
        it = it->second == 0 ? delta.edge.errors.erase(it) : std::next(it);
      }
      next.counters = r.counters;
      if (same_epoch) {
        for (const auto& [kind, n] : last.counters.errors) next.counters.errors.emplace(kind, n);
      }

      int64_t hour_ms = u::bucketMsOf(UsageResolution::kHour, op.received_ms);
      int64_t day_ms = u::bucketMsOf(UsageResolution::kDay, op.received_ms);
      for (const auto& [repo, d] : repo_deltas) {
        hour.addRepo(hour_ms, edge, repo, d);
        day.addRepo(day_ms, edge, repo, d);
      }
      if (!repo_deltas.empty() || !u::emptyEdge(delta.edge)) {
        hour.addTotals(hour_ms, edge, delta);
        day.addTotals(day_ms, edge, delta);
      }

      EdgeStatus s = row ? row->status : EdgeStatus{};
      s.edge = edge;
      s.received_ms = op.received_ms;
      s.epoch = r.epoch;
      s.seq = r.seq;
      s.report_time_ms = r.time_ms;
      s.version = r.version;
      s.uptime_s = r.uptime_s;
      s.final = r.final;
      s.draining = r.draining;
      s.cache_used = r.cache_used;
      s.cache_budget = r.cache_budget;
      s.cache_blobs = r.cache_blobs;
      s.pinned_bytes = r.pinned_bytes;
      s.fills_in_flight = r.fills_in_flight;
      s.lifetime.add(delta);
      row = u::EdgeRow{std::move(s), std::move(next), true};
      touched.insert(edge);
      answers[i] = IngestResult{r.seq, false};
    }

    // The edges' rows as the batch left them.
    std::vector<std::string> put_edges, put_received, put_status, put_state, gone;
    for (const auto& edge : touched) {
      const auto& row = rows[edge];
      if (!row) {
        gone.push_back(edge);
        continue;
      }
      put_edges.push_back(edge);
      put_received.push_back(u::num(row->status.received_ms));
      put_status.push_back(statusToJson(row->status).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      put_state.push_back(u::encodeState(row->last));
    }
    if (!gone.empty()) {
      WHARF_RETURN_IF_ERROR(c.exec("DELETE FROM usage_edges WHERE edge = ANY($1::text[])", {pgArray(gone)}).status());
    }
    if (!put_edges.empty()) {
      WHARF_RETURN_IF_ERROR(
          c.exec("INSERT INTO usage_edges (edge, received_ms, status, state) "
                 "SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) "
                 "ON CONFLICT (edge) DO UPDATE SET received_ms = EXCLUDED.received_ms, status = EXCLUDED.status, "
                 "state = EXCLUDED.state",
                 {pgArray(put_edges), pgArray(put_received), pgArray(put_status), pgArray(put_state)})
              .status());
    }
    WHARF_RETURN_IF_ERROR(u::writeSeries(c, u::kHourTables, hour));
    return u::writeSeries(c, u::kDayTables, day);
  });
  if (st.isOk()) results = std::move(answers);
  return st;
}

Result<UsageResult> PgUsageStore::query(const UsageQuery& q) {
  namespace u = pg_usage_store;
  const UsageResolution res = q.resolution;
  const int64_t bucket_ms = usageBucketMs(res);
  int64_t now = clock_.nowMillis();
  // Rows before the retention horizon are gone (or about to be), and none lie beyond the
  // current bucket: the range is clamped to both, which also bounds the rows of kTime.
  int64_t retention = res == UsageResolution::kHour ? options_.hourly_retention_ms : options_.daily_retention_ms;
  int64_t from = std::max(usageBucketStart(res, q.from_ms), usageBucketStart(res, now - retention));
  int64_t to = std::min(usageBucketStart(res, q.to_ms - 1) + bucket_ms, usageBucketStart(res, now) + bucket_ms);
  UsageResult out;
  out.from_ms = from;
  out.to_ms = std::max(to, from);
  if (to <= from) return out;
  const uint32_t from_b = u::bucketOf(res, from), to_b = u::bucketOf(res, to);
  const u::Tables& t = u::tablesOf(res);

  // NULL: every edge. A name PostgreSQL cannot hold has no rows.
  std::optional<std::string> edges;
  if (q.edges) {
    std::vector<std::string> names;
    for (const auto& e : *q.edges)
      if (pgStorable(e)) names.push_back(e);
    edges = pgArray(names);
  }
  const PgParams range = {u::num(static_cast<int64_t>(from_b) * bucket_ms), u::num(static_cast<int64_t>(to_b) * bucket_ms),
                          edges};
  const std::string where = " WHERE bucket_ms >= $1::bigint AND bucket_ms < $2::bigint"
                            " AND ($3::text[] IS NULL OR edge = ANY($3::text[]))";
  const bool repo_rows = q.group == UsageGroup::kRepo || !q.repository.empty();
  const bool repo_storable = pgStorable(q.repository);
  // What rows are grouped by: kRepo's edge totals only go to the totals.
  const char* totals_key = q.group == UsageGroup::kTime ? "bucket_ms" : "edge";
  const char* repo_key = q.group == UsageGroup::kTime ? "bucket_ms" : q.group == UsageGroup::kEdge ? "edge" : "repository";

  std::vector<UsageRow> time_rows;
  std::map<std::string, UsageTotals> grouped;  // kRepo, kEdge
  UsageTotals totals;
  // The row a grouped result goes to: the bucket's (kTime), the key's (kEdge, or kRepo's
  // repository rows), or none.
  auto rowOf = [&](std::string_view key, bool repo) -> UsageTotals* {
    if (q.group == UsageGroup::kTime) {
      int64_t b = u::signedOf(key) / bucket_ms - static_cast<int64_t>(from_b);
      return b >= 0 && b < static_cast<int64_t>(time_rows.size()) ? &time_rows[static_cast<size_t>(b)].totals : nullptr;
    }
    if (q.group == UsageGroup::kEdge || repo) return &grouped[std::string(key)];
    return nullptr;
  };

  // One snapshot, as LMDB reads in one transaction.
  Status st = db_->transact(
      [&](PgConn& c) -> Status {
        time_rows.clear();
        grouped.clear();
        totals = UsageTotals{};
        if (q.group == UsageGroup::kTime) {
          for (uint32_t b = from_b; b < to_b; ++b) time_rows.push_back(UsageRow{"", static_cast<int64_t>(b) * bucket_ms, {}});
        }
        // Edge totals: the rows of kTime and kEdge, and every grouping's totals (not wanted
        // for one repository: its figures are in the repository rows).
        if (q.repository.empty()) {
          auto r = c.exec(std::string("SELECT ") + totals_key + ", " + u::sums(u::totalsColumns()) + " FROM " + t.totals +
                              where + " GROUP BY 1",
                          range);
          if (!r.isOk()) return r.status();
          for (int i = 0; i < r->rows(); ++i) {
            UsageTotals sum = u::totalsOf(*r, i, 1);
            totals.add(sum);
            if (UsageTotals* row = rowOf(r->text(i, 0), false)) row->add(sum);
          }
          auto e = c.exec(std::string("SELECT ") + totals_key + ", kind, sum(n) FROM " + t.errors + where + " GROUP BY 1, 2",
                          range);
          if (!e.isOk()) return e.status();
          for (int i = 0; i < e->rows(); ++i) {
            std::string kind(e->text(i, 1));
            uint64_t n = u::unsignedOf(e->text(i, 2));
            totals.edge.errors[kind] += n;
            if (UsageTotals* row = rowOf(e->text(i, 0), false)) row->edge.errors[kind] += n;
          }
        }
        if (repo_rows) {
          // Repository rows replace the totals' repository counters (the same sums).
          totals.repos = RepoCounters{};
          if (!repo_storable) return Status::ok();
          PgParams params = range;
          params.emplace_back(q.repository);
          auto r = c.exec(std::string("SELECT ") + repo_key + ", " + u::sums(u::repoColumns()) + " FROM " + t.repo + where +
                              " AND ($4::text = '' OR repository = $4::text) GROUP BY 1",
                          params);
          if (!r.isOk()) return r.status();
          for (int i = 0; i < r->rows(); ++i) {
            RepoCounters sum = u::repoOf(*r, i, 1);
            totals.repos.add(sum);
            if (UsageTotals* row = rowOf(r->text(i, 0), true)) row->repos.add(sum);
          }
        }
        return Status::ok();
      },
      PgIsolation::kSnapshot);
  if (!st.isOk()) return st;
  out.totals = std::move(totals);
  out.rows = std::move(time_rows);
  for (auto& [key, sum] : grouped) out.rows.push_back(UsageRow{key, 0, std::move(sum)});
  return out;
}

std::optional<EdgeStatus> PgUsageStore::status(const std::string& edge) {
  namespace u = pg_usage_store;
  if (!pgStorable(edge)) return std::nullopt;
  auto r = db_->query("SELECT status FROM usage_edges WHERE edge = $1", {edge});
  if (!r.isOk()) {
    logWarn("cannot read an edge's usage status", {{"edge", edge}, {"error", r.status().toString()}});
    return std::nullopt;
  }
  if (r->rows() == 0) return std::nullopt;
  return u::statusOf(edge, r->text(0, 0));
}

std::vector<EdgeStatus> PgUsageStore::statuses() {
  std::vector<EdgeStatus> out;
  auto r = db_->query("SELECT edge, status FROM usage_edges ORDER BY edge");
  if (!r.isOk()) {
    logWarn("cannot read the edges' usage statuses", {{"error", r.status().toString()}});
    return out;
  }
  out.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) {
    out.push_back(pg_usage_store::statusOf(std::string(r->text(i, 0)), r->text(i, 1)));
  }
  return out;
}

Result<UsageSnapshot> PgUsageStore::snapshot() {
  namespace u = pg_usage_store;
  UsageSnapshot out;
  Status st = db_->transact(
      [&](PgConn& c) -> Status {
        out = UsageSnapshot{};
        auto edges = c.exec("SELECT edge, status, state FROM usage_edges ORDER BY edge");
        if (!edges.isOk()) return edges.status();
        for (int i = 0; i < edges->rows(); ++i) {
          std::string edge(edges->text(i, 0));
          UsageSnapshot::Edge e{u::statusOf(edge, edges->text(i, 1)), UsageCounterState{}};
          if (!u::decodeState(edges->text(i, 2), &*e.counters)) e.counters.reset();
          out.edges.push_back(std::move(e));
        }
        for (auto res : {UsageResolution::kHour, UsageResolution::kDay}) {
          const u::Tables& t = u::tablesOf(res);
          std::map<std::pair<int64_t, std::string>, size_t> at;  // (bucket, edge) -> its totals row
          auto totals = c.exec(std::string("SELECT bucket_ms, edge, ") + u::join(u::totalsColumns()) + " FROM " + t.totals);
          if (!totals.isOk()) return totals.status();
          for (int i = 0; i < totals->rows(); ++i) {
            UsageSnapshot::Row row{res, totals->integer(i, 0), std::string(totals->text(i, 1)), "", u::totalsOf(*totals, i, 2)};
            at[{row.bucket_ms, row.edge}] = out.rows.size();
            out.rows.push_back(std::move(row));
          }
          auto errors = c.exec(std::string("SELECT bucket_ms, edge, kind, n FROM ") + t.errors);
          if (!errors.isOk()) return errors.status();
          for (int i = 0; i < errors->rows(); ++i) {
            auto row = at.find({errors->integer(i, 0), std::string(errors->text(i, 1))});
            if (row == at.end()) continue;  // kept with its totals row only
            out.rows[row->second].totals.edge.errors[std::string(errors->text(i, 2))] = u::unsignedOf(errors->text(i, 3));
          }
          auto repos = c.exec(std::string("SELECT bucket_ms, edge, repository, ") + u::join(u::repoColumns()) + " FROM " +
                              t.repo);
          if (!repos.isOk()) return repos.status();
          for (int i = 0; i < repos->rows(); ++i) {
            UsageSnapshot::Row row{res, repos->integer(i, 0), std::string(repos->text(i, 1)),
                                   std::string(repos->text(i, 2)), {}};
            row.totals.repos = u::repoOf(*repos, i, 3);
            out.rows.push_back(std::move(row));
          }
        }
        return Status::ok();
      },
      PgIsolation::kSnapshot);
  if (!st.isOk()) return st;
  return out;
}

Status PgUsageStore::restore(const UsageSnapshot& snapshot) {
  namespace u = pg_usage_store;
  u::Series hours, days;
  for (const auto& row : snapshot.rows) {
    u::Series& s = row.resolution == UsageResolution::kHour ? hours : days;
    int64_t bucket = u::bucketMsOf(row.resolution, row.bucket_ms);
    if (row.repository.empty()) {
      s.addTotals(bucket, pgStorableText(row.edge), row.totals);
    } else {
      s.addRepo(bucket, pgStorableText(row.edge), pgStorableText(row.repository), row.totals.repos);
    }
  }
  std::vector<std::string> names, received, statuses, states;
  for (const auto& e : snapshot.edges) {
    names.push_back(pgStorableText(e.status.edge));
    received.push_back(std::to_string(e.status.received_ms));
    statuses.push_back(statusToJson(e.status).dump(-1, ' ', false, json::error_handler_t::replace));
    states.push_back(e.counters ? u::encodeState(*e.counters) : "");  // "": unreadable, counts from zero
  }
  return db_->transact([&](PgConn& c) -> Status {
    // The table locked against reports: none lands between the check and the writes.
    WHARF_RETURN_IF_ERROR(c.exec("LOCK TABLE usage_edges IN EXCLUSIVE MODE").status());
    auto there = c.exec("SELECT 1 FROM usage_edges LIMIT 1");
    if (!there.isOk()) return there.status();
    if (there->rows() > 0) return Status(Code::kConflict, "edges have reported here already");
    WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO usage_edges (edge, received_ms, status, state) "
                                 "SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])",
                                 {pgArray(names), pgArray(received), pgArray(statuses), pgArray(states)})
                              .status());
    WHARF_RETURN_IF_ERROR(u::writeSeries(c, u::kHourTables, hours));
    return u::writeSeries(c, u::kDayTables, days);
  });
}

PgUsageStore::Stats PgUsageStore::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t PgUsageStore::prune() {
  namespace u = pg_usage_store;
  std::lock_guard lock(prune_mu_);
  int64_t now = clock_.nowMillis();
  // A bucket goes once all of it is older than the retention.
  int64_t hour_cut = u::bucketMsOf(UsageResolution::kHour, now - options_.hourly_retention_ms);
  int64_t day_cut = u::bucketMsOf(UsageResolution::kDay, now - options_.daily_retention_ms);
  size_t n = pruneTable(u::kHourTables.totals, hour_cut) + pruneTable(u::kDayTables.totals, day_cut) +
             pruneTable(u::kHourTables.repo, hour_cut) + pruneTable(u::kDayTables.repo, day_cut);
  // A totals row's error kinds (one LMDB value): not counted apart.
  (void)pruneTable(u::kHourTables.errors, hour_cut);
  (void)pruneTable(u::kDayTables.errors, day_cut);
  if (n > 0) {
    u::PgUsageMetrics::get().pruned.inc(n);
    logInfo("pruned usage rows", {{"removed", n}});
  }
  return n;
}

size_t PgUsageStore::pruneTable(const char* table, int64_t cutoff_ms) {
  namespace u = pg_usage_store;
  // At most kPruneChunk rows a statement (each its own transaction), oldest buckets first.
  const std::string sql = std::string("DELETE FROM ") + table + " WHERE ctid = ANY(ARRAY(SELECT ctid FROM " + table +
                          " WHERE bucket_ms < $1::bigint ORDER BY bucket_ms LIMIT " + std::to_string(u::kPruneChunk) + "))";
  size_t removed = 0;
  for (;;) {
    auto r = db_->query(sql, {u::num(cutoff_ms)});
    if (!r.isOk()) {
      logWarn("usage retention failed", {{"table", table}, {"error", r.status().toString()}});
      return removed;
    }
    removed += static_cast<size_t>(r->affected());
    // Fewer than a chunk: done (or another replica is deleting the same rows).
    if (r->affected() < u::kPruneChunk) return removed;
  }
}

Result<std::unique_ptr<UsageStore>> openPgUsageStore(std::shared_ptr<PgPool> db, Clock& clock,
                                                     LmdbUsageOptions options) {
  auto store = PgUsageStore::open(std::move(db), clock, options);
  if (!store.isOk()) return store.status();
  return std::unique_ptr<UsageStore>(std::move(store).value());
}

}  // namespace wharf
