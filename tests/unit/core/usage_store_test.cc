// UsageStore on both backends (LmdbUsageStore, and PgUsageStore where PostgreSQL is
// installed): deltas between cumulative reports, duplicates, new epochs, clamped
// counters, attribution to the hour and UTC day of receipt (injected clock), retention,
// group commit under many threads, state kept across a reopen, forgetting an edge; on
// PostgreSQL, two replicas ingesting at once.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/fleet/lmdb_usage_store.h"
#include "core/fleet/pg_usage_store.h"
#include "shared/base/clock.h"
#include "shared/store/pg.h"
#include "tests/support/postgres.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/core/metadata_backends.h"

// Each file's own names: the test binaries are unity builds.
namespace usage_store_test {

using namespace wharf;
using wharf::test::MetadataBackend;
using wharf::test::TempDir;
using wharf::test::waitFor;

namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 86'400'000;
constexpr int64_t kJan1 = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

std::shared_ptr<LmdbEnv> openEnv(const std::string& path) {
  LmdbEnv::Options o;
  o.map_size = 256ull << 20;
  o.durable = false;
  auto env = LmdbEnv::open(path, o);
  INFO(env.status().toString());
  REQUIRE(env.isOk());
  return std::shared_ptr<LmdbEnv>(std::move(env).value());
}

// The store on a backend (the metadata store's: test::metadataBackends()): LMDB at path,
// or PostgreSQL in a database of the test binary's server, a fresh one unless pg_url
// names one (to open the same database again, as a restart or another replica).
struct Store {
  MetadataBackend backend;
  std::string path;    // LMDB: the environment
  std::string pg_url;  // PostgreSQL: the database (set at the first open)
  size_t pool_size = 4;
  std::unique_ptr<LmdbUsageStore> lmdb;
  std::unique_ptr<PgUsageStore> pg;

  struct Stats {
    uint64_t reports = 0, duplicates = 0, batches = 0, failed = 0;
  };

  Store(const std::string& path, MetadataBackend backend, Clock& clock, LmdbUsageOptions o = {},
        std::string pg_url = "", size_t pool_size = 4)
      : backend(backend), path(path), pg_url(std::move(pg_url)), pool_size(pool_size) {
    open(clock, o);
  }
  void open(Clock& clock, LmdbUsageOptions o) {
    if (backend == MetadataBackend::kPostgres) {
      if (pg_url.empty()) pg_url = test::PostgresServer::shared().freshDatabase();
      auto db = PgPool::open(pg_url, pool_size);
      INFO(db.status().toString());
      REQUIRE(db.isOk());
      auto s = PgUsageStore::open(std::shared_ptr<PgPool>(std::move(db).value()), clock, o);
      INFO(s.status().toString());
      REQUIRE(s.isOk());
      pg = std::move(s).value();
      return;
    }
    auto s = LmdbUsageStore::open(openEnv(path), clock, o);
    INFO(s.status().toString());
    REQUIRE(s.isOk());
    lmdb = std::move(s).value();
  }
  UsageStore& operator*() { return lmdb ? static_cast<UsageStore&>(*lmdb) : *pg; }
  UsageStore* operator->() { return &**this; }
  size_t prune() { return lmdb ? lmdb->prune() : pg->prune(); }
  Stats stats() const {
    if (lmdb) {
      auto s = lmdb->stats();
      return {s.reports, s.duplicates, s.batches, s.failed};
    }
    auto s = pg->stats();
    return {s.reports, s.duplicates, s.batches, s.failed};
  }
  const char* name() const { return backend == MetadataBackend::kPostgres ? "backend: PostgreSQL" : "backend: LMDB"; }
};

RepoCounters rc(uint64_t served, uint64_t hit = 0, uint64_t fetched = 0, uint64_t requests = 0) {
  RepoCounters c;
  c.requests = requests;
  c.served_bytes = served;
  c.hit_bytes = hit;
  c.fetched_bytes = fetched;
  return c;
}

EdgeReport report(uint64_t seq, const std::string& epoch, std::map<std::string, RepoCounters> repos,
                  EdgeCounters counters = {}) {
  EdgeReport r;
  r.seq = seq;
  r.epoch = epoch;
  r.version = "1.2.3";
  r.cache_used = 1000 * seq;
  r.cache_budget = 1 << 20;
  r.repos = std::move(repos);
  r.counters = std::move(counters);
  return r;
}

IngestResult ingest(UsageStore& s, const std::string& edge, EdgeReport r) {
  auto res = ingestAndWait(s, edge, std::move(r));
  INFO(res.status().toString());
  REQUIRE(res.isOk());
  return *res;
}

// Everything in the store's retention, grouped as asked.
UsageResult everything(UsageStore& s, UsageGroup g, UsageResolution res = UsageResolution::kDay,
                       const std::string& edge = "") {
  UsageQuery q;
  if (!edge.empty()) q.edges = std::set<std::string>{edge};
  q.group = g;
  q.resolution = res;
  q.from_ms = 0;
  q.to_ms = INT64_MAX / 2;
  auto r = s.query(q);
  INFO(r.status().toString());
  REQUIRE(r.isOk());
  return *r;
}

std::map<std::string, RepoCounters> byRepo(UsageStore& s, const std::string& edge = "",
                                           UsageResolution res = UsageResolution::kDay) {
  std::map<std::string, RepoCounters> out;
  for (const auto& row : everything(s, UsageGroup::kRepo, res, edge).rows) out[row.key] = row.totals.repos;
  return out;
}

}  // namespace

TEST_CASE("usage store: a report adds its difference with the last one", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1 + 10 * kHour);
  Store store(dir / "usage.lmdb", GENERATE(from_range(test::metadataBackends())), clock);
  INFO(store.name());

  auto r = ingest(*store, "edge-a", report(1, "e1", {{"team/app", rc(100, 60, 40, 2)}}));
  CHECK(r.seq == 1);
  CHECK_FALSE(r.duplicate);
  r = ingest(*store, "edge-a", report(2, "e1", {{"team/app", rc(250, 100, 150, 5)}, {"team/lib", rc(10, 10)}}));
  CHECK(r.seq == 2);
  CHECK_FALSE(r.duplicate);

  auto repos = byRepo(*store);
  REQUIRE(repos.size() == 2);
  CHECK(repos["team/app"].served_bytes == 250);
  CHECK(repos["team/app"].hit_bytes == 100);
  CHECK(repos["team/app"].fetched_bytes == 150);
  CHECK(repos["team/app"].requests == 5);
  CHECK(repos["team/lib"].served_bytes == 10);
  auto total = everything(*store, UsageGroup::kTime).totals;
  CHECK(total.repos.served_bytes == 260);
  CHECK(total.repos.savedBytes() == 110);

  auto st = store->status("edge-a");
  REQUIRE(st.has_value());
  CHECK(st->seq == 2);
  CHECK(st->epoch == "e1");
  CHECK(st->version == "1.2.3");
  CHECK(st->cache_used == 2000);
  CHECK(st->received_ms == kJan1 + 10 * kHour);
  CHECK(st->lifetime.repos.served_bytes == 260);
  CHECK_FALSE(store->status("edge-b").has_value());
}

TEST_CASE("usage store: repeated and older reports are duplicates and count nothing", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1);
  Store store(dir / "usage.lmdb", GENERATE(from_range(test::metadataBackends())), clock);
  INFO(store.name());
  ingest(*store, "edge-a", report(1, "e1", {{"a/x", rc(100)}}));
  ingest(*store, "edge-a", report(3, "e1", {{"a/x", rc(300)}}));  // seq 2 was lost: 3 covers it
  auto dup = ingest(*store, "edge-a", report(3, "e1", {{"a/x", rc(300)}}));
  CHECK(dup.duplicate);
  CHECK(dup.seq == 3);
  dup = ingest(*store, "edge-a", report(2, "e1", {{"a/x", rc(200)}}));
  CHECK(dup.duplicate);
  CHECK(dup.seq == 3);
  CHECK(byRepo(*store)["a/x"].served_bytes == 300);
  CHECK(store->status("edge-a")->seq == 3);
  CHECK(store.stats().duplicates == 2);

  // A repository missing from one report keeps its last counters: when it shows again
  // only its growth counts.
  ingest(*store, "edge-a", report(4, "e1", {{"a/y", rc(5)}}));
  ingest(*store, "edge-a", report(5, "e1", {{"a/x", rc(310)}, {"a/y", rc(5)}}));
  auto repos = byRepo(*store);
  CHECK(repos["a/x"].served_bytes == 310);
  CHECK(repos["a/y"].served_bytes == 5);
}

TEST_CASE("usage store: a new epoch counts from zero; counters that went down add 0", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1);
  Store store(dir / "usage.lmdb", GENERATE(from_range(test::metadataBackends())), clock);
  INFO(store.name());
  EdgeCounters c1;
  c1.stale_serves = 2;
  c1.errors = {{"upstream", 2}};
  ingest(*store, "edge-a", report(7, "e1", {{"a/x", rc(300, 100)}}, c1));
  // The edge lost its state: seq starts again at 1, which is not a duplicate.
  EdgeCounters c2;
  c2.stale_serves = 1;
  c2.errors = {{"upstream", 1}, {"disk", 1}};
  auto r = ingest(*store, "edge-a", report(1, "e2", {{"a/x", rc(40, 40)}}, c2));
  CHECK_FALSE(r.duplicate);
  CHECK(r.seq == 1);
  CHECK(byRepo(*store)["a/x"].served_bytes == 340);

  // Within an epoch a lower counter adds 0 and the next report counts from it.
  ingest(*store, "edge-a", report(2, "e2", {{"a/x", rc(30, 45)}}));
  CHECK(byRepo(*store)["a/x"].served_bytes == 340);
  CHECK(byRepo(*store)["a/x"].hit_bytes == 145);
  EdgeCounters c3;
  c3.stale_serves = 4;
  c3.errors = {{"upstream", 5}};  // "disk" missing: kept at 1, not counted again later
  ingest(*store, "edge-a", report(3, "e2", {{"a/x", rc(50, 45)}}, c3));
  EdgeCounters c4 = c3;
  c4.errors["disk"] = 1;
  ingest(*store, "edge-a", report(4, "e2", {{"a/x", rc(50, 45)}}, c4));
  auto t = everything(*store, UsageGroup::kTime).totals;
  CHECK(t.repos.served_bytes == 360);
  CHECK(t.edge.stale_serves == 2 + 1 + 4);  // report 2 said 0 (added 0): report 3 counts from there
  CHECK(t.edge.errors["upstream"] == 2 + 1 + 4);
  CHECK(t.edge.errors["disk"] == 1);
  CHECK(store->status("edge-a")->lifetime.edge.errors["upstream"] == 7);
}

TEST_CASE("usage store: deltas go to the hour and UTC day the core received them", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1 + 23 * kHour + 30 * 60'000);  // 2026-01-01T23:30Z
  Store store(dir / "usage.lmdb", GENERATE(from_range(test::metadataBackends())), clock);
  INFO(store.name());
  ingest(*store, "edge-a", report(1, "e1", {{"a/x", rc(100)}}));
  clock.advance(40 * 60'000);  // 2026-01-02T00:10Z
  ingest(*store, "edge-a", report(2, "e1", {{"a/x", rc(250)}}));
  ingest(*store, "edge-b", report(1, "e1", {{"a/x", rc(7)}}));

  UsageQuery q;
  q.resolution = UsageResolution::kHour;
  q.group = UsageGroup::kTime;
  q.from_ms = kJan1 + 22 * kHour + 5 * 60'000;  // rounded down to 22:00
  q.to_ms = kJan1 + 26 * kHour;                 // clamped to the end of the current hour
  auto r = store->query(q);
  REQUIRE(r.isOk());
  CHECK(r->from_ms == kJan1 + 22 * kHour);
  CHECK(r->to_ms == kJan1 + 25 * kHour);
  REQUIRE(r->rows.size() == 3);
  CHECK(r->rows[0].bucket_ms == kJan1 + 22 * kHour);
  CHECK(r->rows[0].totals.repos.served_bytes == 0);
  CHECK(r->rows[1].totals.repos.served_bytes == 100);
  CHECK(r->rows[2].totals.repos.served_bytes == 150 + 7);
  CHECK(r->totals.repos.served_bytes == 257);

  q.edges = std::set<std::string>{"edge-a"};
  r = store->query(q);
  REQUIRE(r.isOk());
  REQUIRE(r->rows.size() == 3);
  CHECK(r->rows[2].totals.repos.served_bytes == 150);

  auto days = everything(*store, UsageGroup::kTime, UsageResolution::kDay, "edge-a");
  std::map<int64_t, uint64_t> served;
  for (const auto& row : days.rows) {
    if (row.totals.repos.served_bytes > 0) served[row.bucket_ms] = row.totals.repos.served_bytes;
  }
  CHECK(served == std::map<int64_t, uint64_t>{{kJan1, 100}, {kJan1 + kDay, 150}});

  auto edges = everything(*store, UsageGroup::kEdge, UsageResolution::kHour);
  REQUIRE(edges.rows.size() == 2);
  CHECK(edges.rows[0].key == "edge-a");
  CHECK(edges.rows[0].totals.repos.served_bytes == 250);
  CHECK(edges.rows[1].key == "edge-b");
  CHECK(edges.rows[1].totals.repos.served_bytes == 7);
}

TEST_CASE("usage store: time series of some edges (a site) and of one repository", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1 + 10 * kHour);
  Store store(dir / "usage.lmdb", GENERATE(from_range(test::metadataBackends())), clock);
  INFO(store.name());
  ingest(*store, "edge-a", report(1, "e1", {{"a/x", rc(100)}, {"a/y", rc(10)}}));
  ingest(*store, "edge-b", report(1, "e1", {{"a/x", rc(7)}}));
  ingest(*store, "edge-c", report(1, "e1", {{"a/x", rc(1000)}, {"a/y", rc(20)}}));
  clock.advance(kHour);
  ingest(*store, "edge-a", report(2, "e1", {{"a/x", rc(130)}, {"a/y", rc(10)}}));
  ingest(*store, "edge-c", report(2, "e1", {{"a/x", rc(1000)}, {"a/y", rc(25)}}));

  UsageQuery q;
  q.resolution = UsageResolution::kHour;
  q.group = UsageGroup::kTime;
  q.from_ms = kJan1 + 10 * kHour;
  q.to_ms = kJan1 + 12 * kHour;
  auto served = [&](const UsageResult& r) {
    std::vector<uint64_t> v;
    for (const auto& row : r.rows) v.push_back(row.totals.repos.served_bytes);
    return v;
  };

  q.edges = std::set<std::string>{"edge-a", "edge-b"};  // a site of two
  auto r = store->query(q);
  REQUIRE(r.isOk());
  CHECK(served(*r) == std::vector<uint64_t>{117, 30});
  CHECK(r->totals.repos.served_bytes == 147);

  q.edges.reset();
  q.repository = "a/y";
  r = store->query(q);
  REQUIRE(r.isOk());
  CHECK(served(*r) == std::vector<uint64_t>{30, 5});
  CHECK(r->totals.repos.served_bytes == 35);

  q.edges = std::set<std::string>{"edge-a", "edge-b"};
  r = store->query(q);
  REQUIRE(r.isOk());
  CHECK(served(*r) == std::vector<uint64_t>{10, 0});

  q.edges = std::set<std::string>{};  // a site without edges: nothing
  q.repository = "";
  r = store->query(q);
  REQUIRE(r.isOk());
  CHECK(served(*r) == std::vector<uint64_t>{0, 0});

  q.edges.reset();
  q.repository = "a/x";
  q.group = UsageGroup::kEdge;
  r = store->query(q);
  REQUIRE(r.isOk());
  REQUIRE(r->rows.size() == 3);
  CHECK(r->rows[2].key == "edge-c");
  CHECK(r->rows[2].totals.repos.served_bytes == 1000);
}

TEST_CASE("usage store: retention drops hourly rows, then day rows", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1 + 12 * kHour);
  LmdbUsageOptions o;
  o.hourly_retention_ms = 2 * kDay;
  o.daily_retention_ms = 5 * kDay;
  const MetadataBackend backend = GENERATE(from_range(test::metadataBackends()));
  std::string pg_url;
  {
    Store store(dir / "usage.lmdb", backend, clock, o);
    INFO(store.name());
    pg_url = store.pg_url;
    ingest(*store, "edge-a", report(1, "e1", {{"a/x", rc(100)}, {"a/y", rc(1)}}));
    CHECK(store.prune() == 0);
    clock.advance(3 * kDay);
    ingest(*store, "edge-a", report(2, "e1", {{"a/x", rc(150)}, {"a/y", rc(1)}}));
    // Jan 1's hour: its total and two repository rows.
    CHECK(store.prune() == 3);
    CHECK(byRepo(*store, "", UsageResolution::kHour)["a/x"].served_bytes == 50);
    CHECK(byRepo(*store, "", UsageResolution::kDay)["a/x"].served_bytes == 150);
    clock.advance(3 * kDay);  // Jan 7, 12:00: Jan 1's day rows and Jan 4's hour rows go
    CHECK(store.prune() == 3 + 2);
    CHECK(byRepo(*store, "", UsageResolution::kDay)["a/x"].served_bytes == 50);
  }
  // Gone from the database, not only hidden by the queries' horizon.
  LmdbUsageOptions forever;
  forever.hourly_retention_ms = 1000 * kDay;
  forever.daily_retention_ms = 1000 * kDay;
  Store store(dir / "usage.lmdb", backend, clock, forever, pg_url);
  INFO(store.name());
  CHECK(byRepo(*store, "", UsageResolution::kDay)["a/x"].served_bytes == 50);
  CHECK(byRepo(*store, "", UsageResolution::kHour).empty());
}

TEST_CASE("usage store: reports from many threads share commits and all count once", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1);
  Store store(dir / "usage.lmdb", GENERATE(from_range(test::metadataBackends())), clock);
  INFO(store.name());
  constexpr int kThreads = 16, kEdges = 4, kReports = 25;  // per thread: edges, reports each
  std::atomic<int> answered{0}, errors{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Queued without waiting (as the API does): reports of one edge go in order.
      for (int n = 1; n <= kReports; ++n) {
        for (int e = 0; e < kEdges; ++e) {
          std::string edge = "edge-" + std::to_string(t) + "-" + std::to_string(e);
          Status st = store->ingest(edge, report(static_cast<uint64_t>(n), "e1", {{"a/x", rc(10u * n)}}),
                                    [&](Result<IngestResult> r) {
                                      if (!r.isOk()) ++errors;
                                      if (r.isOk() && r->duplicate) ++duplicates;
                                      ++answered;
                                    });
          if (!st.isOk()) ++errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  constexpr int kTotal = kThreads * kEdges * kReports;
  REQUIRE(waitFor([&] { return answered.load() == kTotal; }, 60000));
  CHECK(errors == 0);
  CHECK(duplicates == 0);
  auto stats = store.stats();
  CHECK(stats.reports == static_cast<uint64_t>(kTotal));
  CHECK(stats.batches < stats.reports);
  auto t = everything(*store, UsageGroup::kTime).totals;
  CHECK(t.repos.served_bytes == static_cast<uint64_t>(kThreads * kEdges * 10 * kReports));
  CHECK(store->statuses().size() == static_cast<size_t>(kThreads * kEdges));
  CHECK(store->status("edge-3-2")->seq == kReports);
}

TEST_CASE("usage store: what was acknowledged survives a reopen, and repeats stay duplicates", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1);
  std::atomic<int> acked{0};
  const MetadataBackend backend = GENERATE(from_range(test::metadataBackends()));
  std::string pg_url;
  {
    Store store(dir / "usage.lmdb", backend, clock);
    INFO(store.name());
    pg_url = store.pg_url;
    ingest(*store, "edge-a", report(1, "e1", {{"a/x", rc(100)}}));
    // Queued and not waited for: closing the store commits them before it returns.
    for (uint64_t n = 2; n <= 50; ++n) {
      REQUIRE(store->ingest("edge-a", report(n, "e1", {{"a/x", rc(100 * n)}}), [&](Result<IngestResult> r) {
        if (r.isOk()) ++acked;
      }).isOk());
    }
  }
  CHECK(acked == 49);
  Store store(dir / "usage.lmdb", backend, clock, {}, pg_url);
  INFO(store.name());
  auto st = store->status("edge-a");
  REQUIRE(st.has_value());
  CHECK(st->seq == 50);
  CHECK(st->lifetime.repos.served_bytes == 5000);
  CHECK(ingest(*store, "edge-a", report(50, "e1", {{"a/x", rc(5000)}})).duplicate);
  CHECK_FALSE(ingest(*store, "edge-a", report(51, "e1", {{"a/x", rc(5100)}})).duplicate);
  CHECK(byRepo(*store)["a/x"].served_bytes == 5100);
}

TEST_CASE("usage store: forgetting an edge drops its status and state, not its history", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1);
  Store store(dir / "usage.lmdb", GENERATE(from_range(test::metadataBackends())), clock);
  INFO(store.name());
  ingest(*store, "edge-a", report(5, "e1", {{"a/x", rc(100)}}));
  REQUIRE(store->forgetEdge("edge-a").isOk());
  CHECK_FALSE(store->status("edge-a").has_value());
  CHECK(store->statuses().empty());
  CHECK(byRepo(*store)["a/x"].served_bytes == 100);
  // The same name again counts from zero, even with the old epoch and seq.
  CHECK_FALSE(ingest(*store, "edge-a", report(5, "e1", {{"a/x", rc(100)}})).duplicate);
  CHECK(byRepo(*store)["a/x"].served_bytes == 200);
  CHECK(store->forgetEdge("never-seen").isOk());
}

TEST_CASE("usage store: a snapshot written into another store gives the same figures; reports count on", "[usage]") {
  TempDir dir;
  FakeClock clock(kJan1 + 10 * kHour);
  auto from_backend = GENERATE(from_range(test::metadataBackends()));
  auto to_backend = GENERATE(from_range(test::metadataBackends()));
  Store from(dir / "from.lmdb", from_backend, clock);
  Store to(dir / "to.lmdb", to_backend, clock);
  INFO(from.name() << " to " << to.name());
  EdgeCounters counters;
  counters.evictions = 3;
  counters.errors["upstream"] = 2;
  ingest(*from, "edge-a", report(1, "e1", {{"team/app", rc(100, 60, 40, 2)}}, counters));
  clock.advance(30 * kHour);  // another hour, another day
  ingest(*from, "edge-a", report(2, "e1", {{"team/app", rc(250, 100, 150, 5)}, {"team/lib", rc(10, 10)}}, counters));
  ingest(*from, "edge-b", report(7, "x", {{"team/lib", rc(5)}}));
  auto snap = from->snapshot();
  INFO(snap.status().toString());
  REQUIRE(snap.isOk());
  CHECK(snap->edges.size() == 2);
  REQUIRE(to->restore(*snap).isOk());
  // The same figures, hour by hour and day by day, per repository and per edge.
  for (auto res : {UsageResolution::kHour, UsageResolution::kDay}) {
    for (auto g : {UsageGroup::kTime, UsageGroup::kRepo, UsageGroup::kEdge}) {
      auto a = everything(*from, g, res), b = everything(*to, g, res);
      CHECK(a.totals == b.totals);
      REQUIRE(a.rows.size() == b.rows.size());
      for (size_t i = 0; i < a.rows.size(); ++i) {
        CHECK(a.rows[i].key == b.rows[i].key);
        CHECK(a.rows[i].bucket_ms == b.rows[i].bucket_ms);
        CHECK(a.rows[i].totals == b.rows[i].totals);
      }
    }
  }
  CHECK(everything(*to, UsageGroup::kTime).totals.edge.errors["upstream"] == 2);
  CHECK(to->statuses() == from->statuses());
  // The counter state came along: the next report adds its difference, not its whole,
  // and a repeat is still a duplicate.
  ingest(*to, "edge-a", report(3, "e1", {{"team/app", rc(300, 100, 200, 6)}, {"team/lib", rc(10, 10)}}, counters));
  CHECK(byRepo(*to)["team/app"].served_bytes == 300);
  CHECK(ingest(*to, "edge-b", report(7, "x", {{"team/lib", rc(5)}})).duplicate);
  // A store edges reported to takes no snapshot.
  CHECK(to->restore(*snap).code() == Code::kConflict);
  CHECK(byRepo(*to)["team/lib"].served_bytes == 15);
}

TEST_CASE("usage store: an edge is online until its last report is too old", "[usage]") {
  EdgeStatus s;
  CHECK(std::string(edgeState(nullptr, kJan1, 180'000)) == "never");
  s.received_ms = kJan1;
  CHECK(std::string(edgeState(&s, kJan1 + 180'000, 180'000)) == "online");
  CHECK(std::string(edgeState(&s, kJan1 + 180'001, 180'000)) == "unreachable");
  CHECK(usageBucketStart(UsageResolution::kDay, kJan1 + 5) == kJan1);
  CHECK(usageBucketStart(UsageResolution::kHour, kJan1 - 1) == kJan1 - kHour);
}

TEST_CASE("usage store on PostgreSQL: two replicas ingesting at once count every report once", "[usage][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  FakeClock clock(kJan1 + 10 * kHour);
  Store a(dir / "a", MetadataBackend::kPostgres, clock, {}, "", 8);
  Store b(dir / "b", MetadataBackend::kPostgres, clock, {}, a.pg_url, 8);
  UsageStore* replicas[] = {&*a, &*b};
  constexpr int kEdges = 6, kReports = 30;  // edges of each replica's own, reports each

  auto counters = [](int n) {
    EdgeCounters c;
    c.stale_serves = static_cast<uint64_t>(n);
    c.errors = {{"upstream", static_cast<uint64_t>(2 * n)}};
    return c;
  };
  std::atomic<int> answered{0}, errors{0};
  std::mutex mu;
  std::vector<uint64_t> shared_accepted;  // the shared edge's seqs either replica counted
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    // Edges of its own on each replica, queued without waiting: both writers commit
    // batches at once, into the same hour's and day's rows.
    threads.emplace_back([&, r] {
      for (int n = 1; n <= kReports; ++n) {
        for (int e = 0; e < kEdges; ++e) {
          std::string edge = "own-" + std::to_string(r) + "-" + std::to_string(e);
          auto rep = report(static_cast<uint64_t>(n), "e1", {{"a/x", rc(10u * n)}, {"a/y", rc(1u * n)}}, counters(n));
          Status st = replicas[r]->ingest(edge, std::move(rep), [&](Result<IngestResult> res) {
            if (!res.isOk() || res->duplicate) ++errors;
            ++answered;
          });
          if (!st.isOk()) {
            ++errors;
            ++answered;
          }
        }
      }
    });
    // One edge whose every report reaches both replicas at once (as when it retries
    // through another core): whichever commits first counts it, the other finds a repeat.
    threads.emplace_back([&, r] {
      for (int n = 1; n <= kReports; ++n) {
        auto res = ingestAndWait(*replicas[r], "shared",
                                 report(static_cast<uint64_t>(n), "e1", {{"a/x", rc(100u * n)}}, counters(n)));
        std::lock_guard lock(mu);
        if (!res.isOk()) {
          failures.push_back(res.status().toString());
        } else if (!res->duplicate) {
          shared_accepted.push_back(static_cast<uint64_t>(n));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  constexpr int kOwn = 2 * kEdges * kReports;
  REQUIRE(waitFor([&] { return answered.load() == kOwn; }, 60000));
  CHECK(errors == 0);
  CHECK(failures.empty());
  // No seq of the shared edge counted twice; the last one counted once.
  std::set<uint64_t> distinct(shared_accepted.begin(), shared_accepted.end());
  CHECK(distinct.size() == shared_accepted.size());
  CHECK(distinct.count(kReports) == 1);
  CHECK(a.stats().duplicates + b.stats().duplicates == 2 * kReports - shared_accepted.size());
  CHECK(a.stats().reports + b.stats().reports == static_cast<uint64_t>(kOwn + 2 * kReports));

  for (UsageStore* s : replicas) {
    auto t = everything(*s, UsageGroup::kTime, UsageResolution::kHour).totals;
    CHECK(t.repos.served_bytes == static_cast<uint64_t>(2 * kEdges * 11 * kReports + 100 * kReports));
    CHECK(t.edge.stale_serves == static_cast<uint64_t>((2 * kEdges + 1) * kReports));
    CHECK(t.edge.errors["upstream"] == static_cast<uint64_t>((2 * kEdges + 1) * 2 * kReports));
    auto repos = byRepo(*s);
    CHECK(repos["a/x"].served_bytes == static_cast<uint64_t>(2 * kEdges * 10 * kReports + 100 * kReports));
    CHECK(repos["a/y"].served_bytes == static_cast<uint64_t>(2 * kEdges * kReports));
    auto edges = everything(*s, UsageGroup::kEdge);
    REQUIRE(edges.rows.size() == static_cast<size_t>(2 * kEdges + 1));
    for (const auto& row : edges.rows) {
      INFO(row.key);
      CHECK(row.totals.repos.served_bytes ==
            static_cast<uint64_t>(row.key == "shared" ? 100 * kReports : 11 * kReports));
      CHECK(row.totals.edge.stale_serves == static_cast<uint64_t>(kReports));
    }
    auto st = s->status("shared");
    REQUIRE(st.has_value());
    CHECK(st->seq == static_cast<uint64_t>(kReports));
    CHECK(st->lifetime.repos.served_bytes == static_cast<uint64_t>(100 * kReports));
    CHECK(st->lifetime.edge.errors["upstream"] == static_cast<uint64_t>(2 * kReports));
    CHECK(s->statuses().size() == static_cast<size_t>(2 * kEdges + 1));
  }

  // Forgotten on one replica: gone for the other too, and the next report counts from zero.
  REQUIRE(b->forgetEdge("shared").isOk());
  CHECK_FALSE(a->status("shared").has_value());
  CHECK_FALSE(ingest(*a, "shared", report(kReports, "e1", {{"a/x", rc(100u * kReports)}})).duplicate);
  CHECK(byRepo(*b)["a/x"].served_bytes == static_cast<uint64_t>(2 * kEdges * 10 * kReports + 200 * kReports));
}

TEST_CASE("usage store on PostgreSQL: what the database cannot hold fails alone, never the batch", "[usage][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  FakeClock clock(kJan1);
  Store store(dir / "usage.lmdb", MetadataBackend::kPostgres, clock);
  // Queued together (one batch, unless the writer takes the first alone).
  std::mutex mu;
  std::map<std::string, Status> answers;
  std::atomic<int> answered{0};
  auto answer = [&](const std::string& edge) {
    return [&, edge](Result<IngestResult> r) {
      std::lock_guard lock(mu);
      answers[edge] = r.status();
      ++answered;
    };
  };
  const std::string bad_edge("bad\xff", 4), nul_repo("a/\0x", 4);
  REQUIRE(store->ingest("ok-1", report(1, "e1", {{"a/x", rc(10)}}), answer("ok-1")).isOk());
  REQUIRE(store->ingest(bad_edge, report(1, "e1", {{"a/x", rc(10)}}), answer("bad-edge")).isOk());
  REQUIRE(store->ingest("bad-repo", report(1, "e1", {{nul_repo, rc(10)}}), answer("bad-repo")).isOk());
  // Counters beyond what a bigint holds, twice queued together (a new epoch counts from
  // zero) and once after: the series stop at 2^63-1, in a batch's sums and in the rows'.
  EdgeCounters huge;
  huge.errors = {{"upstream", UINT64_MAX}, {std::string("k\0ind", 5), 3}};
  REQUIRE(store->ingest("ok-2", report(1, "e1", {{"a/x", rc(INT64_MAX)}}, huge), answer("ok-2")).isOk());
  REQUIRE(store->ingest("ok-2", report(1, "e2", {{"a/x", rc(INT64_MAX)}}, huge), answer("ok-2 again")).isOk());
  REQUIRE(waitFor([&] { return answered.load() == 5; }, 60000));
  CHECK(ingest(*store, "ok-2", report(1, "e3", {{"a/x", rc(INT64_MAX)}}, huge)).seq == 1);
  CHECK(answers["ok-1"].isOk());
  CHECK(answers["bad-edge"].code() == Code::kInvalidArgument);
  CHECK(answers["bad-repo"].code() == Code::kInvalidArgument);
  CHECK(answers["ok-2"].isOk());
  CHECK(answers["ok-2 again"].isOk());
  CHECK_FALSE(store->status(bad_edge).has_value());
  CHECK_FALSE(store->status("bad-repo").has_value());
  CHECK(store->forgetEdge(bad_edge).isOk());
  auto edges = everything(*store, UsageGroup::kEdge);
  REQUIRE(edges.rows.size() == 2);
  CHECK(edges.rows[0].key == "ok-1");
  CHECK(edges.rows[0].totals.repos.served_bytes == 10);
  CHECK(edges.rows[1].key == "ok-2");
  CHECK(edges.rows[1].totals.repos.served_bytes == static_cast<uint64_t>(INT64_MAX));
  CHECK(edges.rows[1].totals.edge.errors["upstream"] == static_cast<uint64_t>(INT64_MAX));
  // An error kind the database cannot hold is kept in the series with U+FFFD.
  CHECK(edges.rows[1].totals.edge.errors["k\xEF\xBF\xBDind"] == 9);
  auto st = store->status("ok-2");
  REQUIRE(st.has_value());
  CHECK(st->epoch == "e3");
  // The lifetime counters are uint64 sums, as LMDB's, read back exactly.
  CHECK(st->lifetime.repos.served_bytes == static_cast<uint64_t>(INT64_MAX) * 3);
  CHECK(st->lifetime.edge.errors["upstream"] == UINT64_MAX * 3);
  CHECK(st->lifetime.edge.errors[std::string("k\0ind", 5)] == 9);
  // More error kinds over its lifetime than one report may carry: all kept.
  for (int epoch = 0; epoch < 2; ++epoch) {
    EdgeCounters kinds;
    for (int k = 0; k < 40; ++k) kinds.errors["kind-" + std::to_string(epoch) + "-" + std::to_string(k)] = 1;
    CHECK_FALSE(ingest(*store, "ok-1", report(2, "x" + std::to_string(epoch), {}, kinds)).duplicate);
  }
  st = store->status("ok-1");
  REQUIRE(st.has_value());
  CHECK(st->lifetime.edge.errors.size() == 80);
  CHECK(store->statuses().size() == 2);
}

}  // namespace usage_store_test
