#include "core/fleet/lmdb_usage_store.h"

#include <algorithm>
#include <future>

#include "shared/base/log.h"
#include "shared/metrics/metrics.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr size_t kBatchMax = 2000;        // reports per transaction (bounds its dirty pages)
constexpr size_t kPruneChunk = 10'000;    // deletes per transaction

struct UsageMetrics {
  Counter& accepted;
  Counter& duplicates;
  Counter& failed;
  Counter& pruned;
  Histogram& commit_seconds;
  Gauge& queue_depth;
  Gauge& last_batch;
  static UsageMetrics& get() {
    auto& r = MetricsRegistry::global();
    static UsageMetrics m{
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

// --- binary encoding: LEB128 varints and length-prefixed strings ------------------------

constexpr auto& kRepoFields = kRepoCounterFields;
constexpr auto& kEdgeFields = kEdgeCounterFields;

class Enc {
 public:
  void u(uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  void str(std::string_view s) {
    u(s.size());
    out.append(s);
  }
  void repo(const RepoCounters& c) {
    u(std::size(kRepoFields));
    for (const auto& f : kRepoFields) u(c.*f.member);
  }
  void edge(const EdgeCounters& c) {
    u(std::size(kEdgeFields));
    for (const auto& f : kEdgeFields) u(c.*f.member);
    u(c.errors.size());
    for (const auto& [kind, n] : c.errors) {
      str(kind);
      u(n);
    }
  }
  std::string out;
};

class Dec {
 public:
  explicit Dec(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  std::string_view rest() const { return in_.substr(std::min(pos_, in_.size())); }
  uint64_t u() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) break;
      auto b = static_cast<unsigned char>(in_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok_ = false;
    return 0;
  }
  std::string str() {
    uint64_t n = u();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return "";
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  // Fields beyond the ones this build knows are skipped; missing ones stay 0.
  void repo(RepoCounters* c) {
    uint64_t n = u();
    for (uint64_t i = 0; ok_ && i < n; ++i) {
      uint64_t v = u();
      if (i < std::size(kRepoFields)) c->*kRepoFields[i].member = v;
    }
  }
  void edge(EdgeCounters* c) {
    uint64_t n = u();
    for (uint64_t i = 0; ok_ && i < n; ++i) {
      uint64_t v = u();
      if (i < std::size(kEdgeFields)) c->*kEdgeFields[i].member = v;
    }
    uint64_t kinds = u();
    for (uint64_t i = 0; ok_ && i < kinds; ++i) {
      std::string kind = str();
      uint64_t v = u();
      if (ok_) c->errors[kind] = v;
    }
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::string encodeLast(const UsageCounterState& s) {
  Enc e;
  e.str(s.epoch);
  e.u(s.seq);
  e.edge(s.counters);
  e.u(s.repos.size());
  for (const auto& [name, c] : s.repos) {
    e.str(name);
    e.repo(c);
  }
  return std::move(e.out);
}

bool decodeLast(std::string_view v, UsageCounterState* s) {
  Dec d(v);
  s->epoch = d.str();
  s->seq = d.u();
  d.edge(&s->counters);
  uint64_t n = d.u();
  for (uint64_t i = 0; d.ok() && i < n; ++i) {
    std::string name = d.str();
    d.repo(&s->repos[name]);
  }
  return d.ok();
}

std::string encodeTotals(const UsageTotals& t) {
  Enc e;
  e.repo(t.repos);
  e.edge(t.edge);
  return std::move(e.out);
}

bool decodeTotals(std::string_view v, UsageTotals* t) {
  Dec d(v);
  d.repo(&t->repos);
  d.edge(&t->edge);
  return d.ok();
}

std::string encodeRepo(const RepoCounters& c) {
  Enc e;
  e.repo(c);
  return std::move(e.out);
}

bool decodeRepo(std::string_view v, RepoCounters* c) {
  Dec d(v);
  d.repo(c);
  return d.ok();
}

// --- keys ---------------------------------------------------------------------------------

// A bucket number stored in 4 bytes: times before 1970 or after 2106 are clamped.
uint32_t bucketOf(UsageResolution r, int64_t t_ms) {
  int64_t b = usageBucketStart(r, t_ms) / usageBucketMs(r);
  return static_cast<uint32_t>(std::clamp<int64_t>(b, 0, UINT32_MAX));
}

std::string totalsKey(uint32_t bucket, std::string_view edge) { return bigEndian32(bucket).append(edge); }

std::string repoKey(uint32_t bucket, std::string_view edge, std::string_view repo) {
  std::string k = bigEndian32(bucket);
  k.reserve(5 + edge.size() + repo.size());
  k.append(edge).push_back('\0');
  k.append(repo);
  return k;
}

// usage_edges' record: the status JSON, then the counter state.
std::string encodeEdgeRecord(const std::string& status_json, const UsageCounterState& last) {
  Enc e;
  e.str(status_json);
  e.out += encodeLast(last);
  return std::move(e.out);
}

// Splits a record; false when it is not one.
bool splitEdgeRecord(std::string_view v, std::string_view* status_json, std::string_view* last) {
  Dec d(v);
  uint64_t n = d.u();
  size_t header = v.size() - d.rest().size();
  if (!d.ok() || n > v.size() - header) return false;
  *status_json = v.substr(header, n);
  *last = v.substr(header + n);
  return true;
}

bool emptyEdge(const EdgeCounters& c) {
  bool zero = c.errors.empty() || std::all_of(c.errors.begin(), c.errors.end(), [](const auto& e) { return e.second == 0; });
  for (const auto& f : kEdgeFields) zero = zero && c.*f.member == 0;
  return zero;
}

void addInto(RepoCounters& to, const RepoCounters& more) { to.add(more); }
void addInto(UsageTotals& to, const UsageTotals& more) { to.add(more); }

// Adds delta to the row at key (read, add, write: in the writer's transaction).
template <typename T, typename Decode, typename Encode>
Status addToRow(WriteTxn& txn, Dbi db, const std::string& key, const T& delta, Decode decode, Encode encode) {
  T row;
  std::string_view v;
  if (txn.get(db, key, &v).isOk() && !decode(v, &row)) row = T{};  // an unreadable row restarts at 0
  addInto(row, delta);
  return txn.put(db, key, encode(row));
}

}  // namespace

json statusToJson(const EdgeStatus& s) {
  return {{"received_ms", s.received_ms},
          {"epoch", s.epoch},
          {"seq", s.seq},
          {"time_ms", s.report_time_ms},
          {"version", s.version},
          {"uptime_s", s.uptime_s},
          {"final", s.final},
          {"draining", s.draining},
          {"cache",
           {{"used", s.cache_used},
            {"budget", s.cache_budget},
            {"blobs", s.cache_blobs},
            {"pinned_bytes", s.pinned_bytes},
            {"fills_in_flight", s.fills_in_flight}}},
          {"lifetime", {{"repos", s.lifetime.repos.toJson()}, {"edge", s.lifetime.edge.toJson()}}}};
}

EdgeStatus statusFromJson(const std::string& edge, const json& j) {
  // Written by statusToJson only: read leniently, a missing field is 0.
  EdgeStatus s;
  s.edge = edge;
  if (!j.is_object()) return s;
  auto u = [](const json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t{0};
  };
  auto i = [](const json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : int64_t{0};
  };
  auto str = [](const json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto b = [](const json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_boolean() && it->get<bool>();
  };
  s.received_ms = i(j, "received_ms");
  s.epoch = str(j, "epoch");
  s.seq = u(j, "seq");
  s.report_time_ms = i(j, "time_ms");
  s.version = str(j, "version");
  s.uptime_s = i(j, "uptime_s");
  s.final = b(j, "final");
  s.draining = b(j, "draining");
  if (auto c = j.find("cache"); c != j.end() && c->is_object()) {
    s.cache_used = u(*c, "used");
    s.cache_budget = u(*c, "budget");
    s.cache_blobs = u(*c, "blobs");
    s.pinned_bytes = u(*c, "pinned_bytes");
    s.fills_in_flight = u(*c, "fills_in_flight");
  }
  if (auto l = j.find("lifetime"); l != j.end() && l->is_object()) {
    if (auto r = l->find("repos"); r != l->end() && r->is_object()) {
      JsonBody body(*r);
      s.lifetime.repos = RepoCounters::fromJson(body);
    }
    if (auto e = l->find("edge"); e != l->end() && e->is_object()) {
      JsonBody body(*e);
      s.lifetime.edge = EdgeCounters::fromJson(body);
    }
  }
  return s;
}

Result<std::unique_ptr<LmdbUsageStore>> LmdbUsageStore::open(std::shared_ptr<LmdbEnv> env, Clock& clock,
                                                              LmdbUsageOptions options) {
  std::unique_ptr<LmdbUsageStore> store(new LmdbUsageStore(std::move(env), clock, options));
  WHARF_RETURN_IF_ERROR(store->openDbs());
  store->prune();
  store->thread_ = std::thread([s = store.get()] { s->run(); });
  return store;
}

LmdbUsageStore::LmdbUsageStore(std::shared_ptr<LmdbEnv> env, Clock& clock, LmdbUsageOptions options)
    : env_(std::move(env)), clock_(clock), options_(options) {}

Status LmdbUsageStore::openDbs() {
  struct Named {
    const char* name;
    Dbi* dbi;
  };
  for (Named n : {Named{"usage_meta", &meta_db_}, Named{"usage_edges", &edges_db_},
                  Named{"usage_hour", &hour_db_}, Named{"usage_day", &day_db_},
                  Named{"usage_hour_repo", &hour_repo_db_}, Named{"usage_day_repo", &day_repo_db_}}) {
    auto db = env_->openDb(n.name);
    if (!db.isOk()) return db.status();
    *n.dbi = *db;
  }
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  if (txn->get(meta_db_, "schema", &v).isOk()) {
    if (v != std::to_string(kUsageSchemaVersion)) {
      return Status(Code::kCorruption, "usage.lmdb has layout version " + std::string(v) + ", this build reads " +
                                           std::to_string(kUsageSchemaVersion));
    }
  } else {
    WHARF_RETURN_IF_ERROR(txn->put(meta_db_, "schema", std::to_string(kUsageSchemaVersion)));
  }
  std::map<std::string, EdgeStatus> loaded;
  auto c = txn->cursor(edges_db_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    std::string edge(c.key());
    std::string_view status, last;
    if (!splitEdgeRecord(c.value(), &status, &last)) continue;  // counts from zero at its next report
    loaded[edge] = statusFromJson(edge, json::parse(status, nullptr, false));
  }
  WHARF_RETURN_IF_ERROR(c.status());
  WHARF_RETURN_IF_ERROR(txn->commit());
  std::lock_guard lock(status_mu_);
  statuses_ = std::move(loaded);
  return Status::ok();
}

LmdbUsageStore::~LmdbUsageStore() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status LmdbUsageStore::ingest(const std::string& edge, EdgeReport report, IngestCallback done) {
  Op op{edge, std::move(report), clock_.nowMillis(), std::move(done)};
  {
    std::lock_guard lock(mu_);
    if (stop_) return Status(Code::kUnavailable, "the usage store is closing");
    if (queue_.size() >= options_.queue_max) {
      return Status(Code::kUnavailable, "too many edge reports waiting to be written; send it again later");
    }
    queue_.push_back(std::move(op));
    UsageMetrics::get().queue_depth.set(static_cast<int64_t>(queue_.size()));
  }
  cv_.notify_one();
  return Status::ok();
}

Status LmdbUsageStore::forgetEdge(const std::string& edge) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  Op op{edge, std::nullopt, clock_.nowMillis(),
        [promise](Result<IngestResult> r) { promise->set_value(r.status()); }};
  {
    std::lock_guard lock(mu_);
    if (stop_) return Status(Code::kUnavailable, "the usage store is closing");
    queue_.push_back(std::move(op));
  }
  cv_.notify_one();
  return future.get();
}

void LmdbUsageStore::run() {
  int64_t last_prune = monotonicMillis();
  std::unique_lock lock(mu_);
  for (;;) {
    int64_t wait_ms = std::max<int64_t>(0, last_prune + options_.prune_interval_ms - monotonicMillis());
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return stop_ || !queue_.empty(); });
    // Whatever waits (at most kBatchMax) goes in one transaction: the reports that arrived
    // during the previous commit share this one's fsync.
    std::deque<Op> batch;
    if (queue_.size() <= kBatchMax) {
      batch.swap(queue_);
    } else {
      for (size_t i = 0; i < kBatchMax; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    bool stopping = stop_;
    UsageMetrics::get().queue_depth.set(static_cast<int64_t>(queue_.size()));
    lock.unlock();
    if (!batch.empty()) {
      auto& m = UsageMetrics::get();
      int64_t start = monotonicMillis();
      std::vector<IngestResult> results;
      std::map<std::string, std::optional<EdgeStatus>> changed;
      Status st = writeBatch(batch, results, changed);
      uint64_t reports = 0, duplicates = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!batch[i].report) continue;
        ++reports;
        if (st.isOk() && results[i].duplicate) ++duplicates;
      }
      if (st.isOk()) {
        m.commit_seconds.observe(static_cast<double>(monotonicMillis() - start) / 1000.0);
        m.last_batch.set(static_cast<int64_t>(batch.size()));
        m.accepted.inc(reports - duplicates);
        m.duplicates.inc(duplicates);
        std::lock_guard s(status_mu_);
        for (auto& [edge, status] : changed) {
          if (status) {
            statuses_[edge] = std::move(*status);
          } else {
            statuses_.erase(edge);
          }
        }
      } else {
        m.failed.inc(reports);
        logError("usage store write failed", {{"error", st.toString()}, {"reports", reports}});
      }
      {
        std::lock_guard l(mu_);
        ++stats_.batches;
        stats_.reports += reports;
        stats_.duplicates += duplicates;
        if (!st.isOk()) stats_.failed += reports;
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!batch[i].done) continue;
        if (st.isOk()) {
          batch[i].done(results[i]);
        } else {
          batch[i].done(st);
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

Status LmdbUsageStore::writeBatch(std::deque<Op>& batch, std::vector<IngestResult>& results,
                                  std::map<std::string, std::optional<EdgeStatus>>& changed) {
  results.assign(batch.size(), IngestResult{});
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    const std::string& edge = op.edge;
    if (!op.report) {
      Status a = txn->del(edges_db_, edge);
      if (!a.isOk() && a.code() != Code::kNotFound) return a;
      changed[edge] = std::nullopt;
      continue;
    }
    EdgeReport& r = *op.report;
    // Reads below see this transaction's own writes: reports of one edge in one batch
    // apply in order.
    UsageCounterState last;
    std::string_view v;
    std::string_view status_json, last_bytes;
    bool have = txn->get(edges_db_, edge, &v).isOk();
    if (have && !(splitEdgeRecord(v, &status_json, &last_bytes) && decodeLast(last_bytes, &last))) {
      logWarn("unreadable usage counter state: the edge's next report counts from zero", {{"edge", edge}});
      have = false;
      last = UsageCounterState{};
    }
    bool same_epoch = have && last.epoch == r.epoch;
    if (same_epoch && r.seq <= last.seq) {
      results[i] = IngestResult{last.seq, true};
      continue;
    }
    // The delta, and the new state: repositories and error kinds missing from this report
    // keep their last counters within the epoch, so that one reappearing later is not
    // counted again from zero.
    UsageTotals delta;
    std::map<std::string, RepoCounters> repo_deltas;
    UsageCounterState next;
    next.epoch = r.epoch;
    next.seq = r.seq;
    if (same_epoch) next.repos = std::move(last.repos);
    for (auto& [name, c] : r.repos) {
      RepoCounters d = c;
      if (same_epoch) {
        if (auto it = next.repos.find(name); it != next.repos.end()) d = c.minus(it->second);
      }
      if (!d.empty()) {
        delta.repos.add(d);
        repo_deltas.emplace(name, d);
      }
      next.repos[name] = c;
    }
    delta.edge = same_epoch ? r.counters.minus(last.counters) : r.counters;
    for (auto it = delta.edge.errors.begin(); it != delta.edge.errors.end();) {
      it = it->second == 0 ? delta.edge.errors.erase(it) : std::next(it);
    }
    next.counters = r.counters;
    if (same_epoch) {
      for (const auto& [kind, n] : last.counters.errors) next.counters.errors.emplace(kind, n);
    }

    uint32_t hour = bucketOf(UsageResolution::kHour, op.received_ms);
    uint32_t day = bucketOf(UsageResolution::kDay, op.received_ms);
    for (const auto& [repo, d] : repo_deltas) {
      WHARF_RETURN_IF_ERROR(addToRow(*txn, hour_repo_db_, repoKey(hour, edge, repo), d, decodeRepo, encodeRepo));
      WHARF_RETURN_IF_ERROR(addToRow(*txn, day_repo_db_, repoKey(day, edge, repo), d, decodeRepo, encodeRepo));
    }
    if (!repo_deltas.empty() || !emptyEdge(delta.edge)) {
      WHARF_RETURN_IF_ERROR(addToRow(*txn, hour_db_, totalsKey(hour, edge), delta, decodeTotals, encodeTotals));
      WHARF_RETURN_IF_ERROR(addToRow(*txn, day_db_, totalsKey(day, edge), delta, decodeTotals, encodeTotals));
    }

    // The status as committed (the memory copy mirrors usage_status) or as changed
    // earlier in this batch.
    EdgeStatus s;
    if (auto it = changed.find(edge); it != changed.end()) {
      if (it->second) s = *it->second;
    } else {
      std::lock_guard lock(status_mu_);
      if (auto st = statuses_.find(edge); st != statuses_.end()) s = st->second;
    }
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
    std::string status_text = statusToJson(s).dump(-1, ' ', false, json::error_handler_t::replace);
    WHARF_RETURN_IF_ERROR(txn->put(edges_db_, edge, encodeEdgeRecord(status_text, next)));
    changed[edge] = std::move(s);
    results[i] = IngestResult{r.seq, false};
  }
  return txn->commit();
}

Result<UsageResult> LmdbUsageStore::query(const UsageQuery& q) {
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
  uint32_t from_b = bucketOf(res, from), to_b = bucketOf(res, to);

  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  Dbi totals_db = res == UsageResolution::kHour ? hour_db_ : day_db_;
  Dbi repo_db = res == UsageResolution::kHour ? hour_repo_db_ : day_repo_db_;

  std::map<std::string, UsageTotals> grouped;  // kRepo, kEdge
  if (q.group == UsageGroup::kTime) {
    for (uint32_t b = from_b; b < to_b; ++b) {
      out.rows.push_back(UsageRow{"", static_cast<int64_t>(b) * bucket_ms, {}});
    }
  }
  auto wanted = [&](std::string_view edge) { return !q.edges || q.edges->count(std::string(edge)) > 0; };
  // Edge totals: the rows of kTime and kEdge, and every grouping's totals (not wanted for
  // one repository: its figures are in the repository rows).
  auto visitTotals = [&](uint32_t b, std::string_view edge, std::string_view value) {
    UsageTotals t;
    if (!decodeTotals(value, &t)) return;
    out.totals.add(t);
    if (q.group == UsageGroup::kTime) out.rows[b - from_b].totals.add(t);
    if (q.group == UsageGroup::kEdge) grouped[std::string(edge)].add(t);
  };
  if (!q.repository.empty()) {
    // Only repository rows.
  } else if (q.edges) {
    // Some edges: a point read per bucket and edge (at most the retention's buckets each).
    for (const auto& edge : *q.edges) {
      for (uint32_t b = from_b; b < to_b; ++b) {
        std::string_view v;
        if (txn->get(totals_db, totalsKey(b, edge), &v).isOk()) visitTotals(b, edge, v);
      }
    }
  } else {
    auto c = txn->cursor(totals_db);
    for (bool ok = c.seek(bigEndian32(from_b)); ok; ok = c.next()) {
      if (c.key().size() < 4) continue;
      uint32_t b = fromBigEndian32(c.key());
      if (b >= to_b) break;
      visitTotals(b, c.key().substr(4), c.value());
    }
    WHARF_RETURN_IF_ERROR(c.status());
  }
  if (q.group == UsageGroup::kRepo || !q.repository.empty()) {
    // Repository rows replace the totals' repository counters (the same sums).
    out.totals.repos = RepoCounters{};
    auto c = txn->cursor(repo_db);
    // From start on, the rows of bucket b whose key starts so (one edge's, or the bucket's).
    auto scan = [&](uint32_t b, const std::string& start) {
      for (bool ok = c.seek(start); ok; ok = c.next()) {
        std::string_view k = c.key();
        if (k.size() < 4 || k.compare(0, start.size(), start) != 0 || fromBigEndian32(k) != b) break;
        size_t nul = k.find('\0', 4);
        if (nul == std::string_view::npos) continue;
        std::string_view edge = k.substr(4, nul - 4), repo = k.substr(nul + 1);
        if ((!q.repository.empty() && repo != q.repository) || !wanted(edge)) continue;
        RepoCounters rc;
        if (!decodeRepo(c.value(), &rc)) continue;
        if (q.group == UsageGroup::kTime) out.rows[b - from_b].totals.repos.add(rc);
        if (q.group == UsageGroup::kEdge) grouped[std::string(edge)].repos.add(rc);
        if (q.group == UsageGroup::kRepo) grouped[std::string(repo)].repos.add(rc);
        out.totals.repos.add(rc);
      }
    };
    for (uint32_t b = from_b; b < to_b; ++b) {
      if (!q.edges) {
        scan(b, bigEndian32(b));
      } else {
        for (const auto& edge : *q.edges) scan(b, bigEndian32(b) + edge + '\0');
      }
    }
    WHARF_RETURN_IF_ERROR(c.status());
  }
  for (auto& [key, t] : grouped) out.rows.push_back(UsageRow{key, 0, std::move(t)});
  return out;
}

std::optional<EdgeStatus> LmdbUsageStore::status(const std::string& edge) {
  std::lock_guard lock(status_mu_);
  auto it = statuses_.find(edge);
  if (it == statuses_.end()) return std::nullopt;
  return it->second;
}

std::vector<EdgeStatus> LmdbUsageStore::statuses() {
  std::lock_guard lock(status_mu_);
  std::vector<EdgeStatus> out;
  out.reserve(statuses_.size());
  for (const auto& [edge, s] : statuses_) out.push_back(s);
  return out;
}

Result<UsageSnapshot> LmdbUsageStore::snapshot() {
  UsageSnapshot out;
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  auto c = txn->cursor(edges_db_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    std::string edge(c.key());
    std::string_view status, last;
    if (!splitEdgeRecord(c.value(), &status, &last)) continue;
    UsageSnapshot::Edge e{statusFromJson(edge, json::parse(status, nullptr, false)), UsageCounterState{}};
    if (!decodeLast(last, &*e.counters)) e.counters.reset();
    out.edges.push_back(std::move(e));
  }
  WHARF_RETURN_IF_ERROR(c.status());
  for (auto r : {UsageResolution::kHour, UsageResolution::kDay}) {
    const int64_t bucket_ms = usageBucketMs(r);
    auto totals = txn->cursor(r == UsageResolution::kHour ? hour_db_ : day_db_);
    for (bool ok = totals.first(); ok; ok = totals.next()) {
      std::string_view k = totals.key();
      if (k.size() < 4) continue;
      UsageSnapshot::Row row{r, static_cast<int64_t>(fromBigEndian32(k)) * bucket_ms, std::string(k.substr(4)), "", {}};
      if (decodeTotals(totals.value(), &row.totals)) out.rows.push_back(std::move(row));
    }
    WHARF_RETURN_IF_ERROR(totals.status());
    auto repos = txn->cursor(r == UsageResolution::kHour ? hour_repo_db_ : day_repo_db_);
    for (bool ok = repos.first(); ok; ok = repos.next()) {
      std::string_view k = repos.key();
      auto nul = k.find('\0', 4);
      if (k.size() < 4 || nul == std::string_view::npos) continue;
      UsageSnapshot::Row row{r, static_cast<int64_t>(fromBigEndian32(k)) * bucket_ms, std::string(k.substr(4, nul - 4)),
                             std::string(k.substr(nul + 1)), {}};
      if (decodeRepo(repos.value(), &row.totals.repos)) out.rows.push_back(std::move(row));
    }
    WHARF_RETURN_IF_ERROR(repos.status());
  }
  return out;
}

Status LmdbUsageStore::restore(const UsageSnapshot& snapshot) {
  std::map<std::string, EdgeStatus> loaded;
  {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    auto c = txn->cursor(edges_db_);
    if (c.first()) return Status(Code::kConflict, "edges have reported here already");
    for (const auto& e : snapshot.edges) {
      std::string status_text = statusToJson(e.status).dump(-1, ' ', false, json::error_handler_t::replace);
      // Unreadable counters stay so (none after the status): the next report counts from zero.
      std::string record = e.counters ? encodeEdgeRecord(status_text, *e.counters) : [&] {
        Enc enc;
        enc.str(status_text);
        return std::move(enc.out);
      }();
      WHARF_RETURN_IF_ERROR(txn->put(edges_db_, e.status.edge, record));
      loaded[e.status.edge] = e.status;
    }
    for (const auto& row : snapshot.rows) {
      uint32_t b = bucketOf(row.resolution, row.bucket_ms);
      bool hour = row.resolution == UsageResolution::kHour;
      if (row.repository.empty()) {
        WHARF_RETURN_IF_ERROR(txn->put(hour ? hour_db_ : day_db_, totalsKey(b, row.edge), encodeTotals(row.totals)));
      } else {
        WHARF_RETURN_IF_ERROR(
            txn->put(hour ? hour_repo_db_ : day_repo_db_, repoKey(b, row.edge, row.repository), encodeRepo(row.totals.repos)));
      }
    }
    WHARF_RETURN_IF_ERROR(txn->commit());
  }
  std::lock_guard lock(status_mu_);
  for (auto& [edge, s] : loaded) statuses_[edge] = std::move(s);
  return Status::ok();
}

LmdbUsageStore::Stats LmdbUsageStore::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t LmdbUsageStore::prune() {
  std::lock_guard lock(prune_mu_);
  int64_t now = clock_.nowMillis();
  // A bucket goes once all of it is older than the retention.
  auto cutoff = [&](UsageResolution r, int64_t retention) {
    return static_cast<int64_t>(bucketOf(r, now - retention));
  };
  int64_t hour_cut = cutoff(UsageResolution::kHour, options_.hourly_retention_ms);
  int64_t day_cut = cutoff(UsageResolution::kDay, options_.daily_retention_ms);
  size_t n = prunePrefix(hour_db_, hour_cut) + prunePrefix(day_db_, day_cut) + prunePrefix(hour_repo_db_, hour_cut) +
             prunePrefix(day_repo_db_, day_cut);
  if (n > 0) {
    UsageMetrics::get().pruned.inc(n);
    logInfo("pruned usage rows", {{"removed", n}});
  }
  return n;
}

size_t LmdbUsageStore::prunePrefix(Dbi db, int64_t cutoff_bucket) {
  // Keys start with the bucket: what goes is a prefix of the database.
  size_t removed = 0;
  for (;;) {
    std::vector<std::string> keys;
    {
      auto txn = env_->read();
      if (!txn.isOk()) return removed;
      auto c = txn->cursor(db);
      for (bool ok = c.first(); ok && keys.size() < kPruneChunk; ok = c.next()) {
        if (static_cast<int64_t>(fromBigEndian32(c.key())) >= cutoff_bucket) break;
        keys.emplace_back(c.key());
      }
    }
    if (keys.empty()) return removed;
    auto txn = env_->write();
    if (!txn.isOk()) return removed;
    for (const auto& k : keys) (void)txn->del(db, k);
    if (!txn->commit().isOk()) return removed;
    removed += keys.size();
    if (keys.size() < kPruneChunk) return removed;
  }
}

}  // namespace wharf
