// EventLog: order and sequence numbers, batching under concurrent appends, coalescing
// of pulls, query filters and pagination, retention, the live subscription.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/events/event_log.h"
#include "core/events/event_store.h"
#include "shared/base/clock.h"
#include "tests/support/loop_thread.h"
#include "tests/unit/core/metadata_backends.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace event_log_test {

using namespace wharf;
using wharf::test::LoopThread;
using wharf::test::TempDir;
using wharf::test::MetadataBackend;
using wharf::test::metadataBackends;
using wharf::test::PostgresServer;

namespace {

// Where a test's log keeps its events: LMDB at a path, or a PostgreSQL database (the
// same one each time it is opened).
struct Backing {
  MetadataBackend backend;
  std::shared_ptr<LmdbEnv> env;
  std::string pg_url;
};

Backing openEnv(MetadataBackend backend, const std::string& path) {
  Backing b{backend, nullptr, ""};
  if (backend == MetadataBackend::kPostgres) {
    b.pg_url = PostgresServer::shared().freshDatabase();
    return b;
  }
  LmdbEnv::Options o;
  o.map_size = 256ull << 20;
  o.durable = false;
  auto env = LmdbEnv::open(path, o);
  INFO(env.status().toString());
  REQUIRE(env.isOk());
  b.env = std::shared_ptr<LmdbEnv>(std::move(env).value());
  return b;
}

std::unique_ptr<EventStore> openStore(const Backing& b) {
  Result<std::unique_ptr<EventStore>> store = Status(Code::kInternal, "");
  if (b.backend == MetadataBackend::kPostgres) {
    auto db = PgPool::open(b.pg_url, 4);
    INFO(db.status().toString());
    REQUIRE(db.isOk());
    store = openPgEventStore(std::shared_ptr<PgPool>(std::move(db).value()));
  } else {
    store = openLmdbEventStore(b.env);
  }
  INFO(store.status().toString());
  REQUIRE(store.isOk());
  return std::move(store).value();
}

std::unique_ptr<EventLog> openLog(const Backing& b, Clock& clock, EventLogOptions o = {}) {
  auto log = EventLog::open(openStore(b), clock, o);
  INFO(log.status().toString());
  REQUIRE(log.isOk());
  return std::move(log).value();
}

Event ev(const std::string& type, const std::string& repo, const std::string& actor = "alice",
         const std::string& digest = "sha256:aaaa", int64_t ts = 0) {
  Event e;
  e.type = type;
  e.repository = repo;
  e.actor = actor;
  e.target.digest = digest;
  e.target.media_type = "application/vnd.oci.image.manifest.v1+json";
  e.target.size = 123;
  e.addr = "10.0.0.1";
  e.method = "PUT";
  e.ts_ms = ts;
  return e;
}

std::vector<Event> all(EventLog& log, const EventFilter& f = {}) {
  std::vector<Event> out;
  uint64_t since = 0;
  for (;;) {
    auto page = log.query(f, since, 1000);
    REQUIRE(page.isOk());
    for (auto& e : page->events) out.push_back(std::move(e));
    if (!page->next) break;
    since = *page->next;
  }
  return out;
}

}  // namespace

TEST_CASE("event log: sequence numbers follow append order and fields survive the round trip", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  FakeClock clock;
  auto log = openLog(openEnv(backend, dir / "events.lmdb"), clock);
  CHECK(log->lastSeq() == 0);
  const std::vector<std::string> types = {event_type::kBlobPush, event_type::kManifestPush, event_type::kTagPush,
                                          event_type::kManifestDelete, event_type::kRepositoryDelete};
  for (const auto& t : types) log->append(ev(t, "team/app"));
  Event moved = ev(event_type::kTagMove, "team/app", "bob", "sha256:bbbb");
  moved.target.tag = "latest";
  moved.target.previous_digest = "sha256:aaaa";
  log->append(moved);
  log->flush();
  auto got = all(*log);
  REQUIRE(got.size() == 6);
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].seq == i + 1);
    CHECK(got[i].ts_ms == clock.nowMillis());
  }
  for (size_t i = 0; i < types.size(); ++i) CHECK(got[i].type == types[i]);
  CHECK(got[5].type == "tag.move");
  CHECK(got[5].actor == "bob");
  CHECK(got[5].target.tag == "latest");
  CHECK(got[5].target.previous_digest == "sha256:aaaa");
  CHECK(got[5].target.digest == "sha256:bbbb");
  CHECK(got[5].target.size == 123);
  CHECK(got[5].addr == "10.0.0.1");
  CHECK(got[5].method == "PUT");
  CHECK(log->lastSeq() == 6);
  auto j = got[5].toJson();
  CHECK(j["seq"] == 6);
  CHECK(j["target"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json");
  CHECK(j["request"]["addr"] == "10.0.0.1");
  CHECK(j["count"] == 1);
}

TEST_CASE("event log: sequence numbers continue after a reopen", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  FakeClock clock;
  auto env = openEnv(backend, dir / "events.lmdb");
  std::string instance;
  {
    auto log = openLog(env, clock);
    instance = log->instanceId();
    for (int i = 0; i < 3; ++i) log->append(ev(event_type::kBlobPush, "a/b"));
  }  // the destructor commits what is queued
  auto log = openLog(env, clock);
  CHECK(log->lastSeq() == 3);
  CHECK(log->instanceId() == instance);
  log->append(ev(event_type::kBlobPush, "a/b"));
  log->flush();
  auto got = all(*log);
  REQUIRE(got.size() == 4);
  CHECK(got.back().seq == 4);
}

TEST_CASE("event log: imported events keep their numbers and the log's instance; a run again skips them", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  INFO((backend == MetadataBackend::kPostgres ? "PostgreSQL" : "LMDB"));
  auto env = openEnv(backend, dir / "events.lmdb");
  FakeClock clock;
  const int64_t t0 = clock.nowMillis() - 1000;
  std::vector<Event> moved;
  for (uint64_t seq : {5, 6, 9}) {  // a log pruned below 5
    Event e = ev(event_type::kManifestPush, "team/app", "alice", "sha256:aaaa", t0 + static_cast<int64_t>(seq));
    e.seq = seq;
    moved.push_back(e);
  }
  {
    auto store = openStore(env);
    REQUIRE(store->import("the-old-log", {moved[0], moved[1]}).isOk());
    REQUIRE(store->import("the-old-log", moved).isOk());  // a run again: 5 and 6 skipped, 9 added
    CHECK(*store->lastSeq() == 9);
    CHECK(store->instanceId() == "the-old-log");
    // Another log's events are not mixed in.
    CHECK(store->import("another-log", moved).code() == Code::kConflict);
  }
  auto log = openLog(env, clock);
  CHECK(log->instanceId() == "the-old-log");
  log->append(ev(event_type::kBlobPush, "a/b"));
  log->flush();
  auto got = all(*log);
  REQUIRE(got.size() == 4);
  CHECK(got[0].seq == 5);
  CHECK(got[2].seq == 9);
  CHECK(got[2].ts_ms == t0 + 9);
  CHECK(got[2].target.digest == "sha256:aaaa");
  CHECK(got[3].seq == 10);
  // A log with events of its own takes none.
  TempDir other_dir;
  auto other = openStore(openEnv(backend, other_dir / "events.lmdb"));
  std::vector<Event> own = {ev(event_type::kBlobPush, "x/y")};
  REQUIRE(other->append(own).isOk());
  CHECK(other->import("the-old-log", moved).code() == Code::kConflict);
  CHECK(*other->lastSeq() == 1);
}

TEST_CASE("event log: concurrent appends are batched, each exactly once, in each thread's order", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  FakeClock clock;
  EventLogOptions o;
  o.batch_max = 512;
  auto log = openLog(openEnv(backend, dir / "events.lmdb"), clock, o);
  constexpr int kThreads = 8, kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Pushes are never coalesced: each must be there.
        log->append(ev(event_type::kBlobPush, "t" + std::to_string(t) + "/r", "u", "sha256:" + std::to_string(i)));
      }
    });
  }
  for (auto& th : threads) th.join();
  log->flush();
  auto got = all(*log);
  REQUIRE(got.size() == static_cast<size_t>(kThreads * kPerThread));
  std::map<std::string, int> next;
  for (size_t i = 0; i < got.size(); ++i) {
    REQUIRE(got[i].seq == i + 1);
    int n = std::stoi(got[i].target.digest.substr(7));
    REQUIRE(n == next[got[i].repository]++);
  }
  auto stats = log->stats();
  CHECK(stats.written == static_cast<uint64_t>(kThreads * kPerThread));
  CHECK(stats.dropped == 0);
  // One transaction per batch, not per event.
  CHECK(stats.batches < stats.written / 4);
}

TEST_CASE("event log: repeated pulls within a batch become one event with a count", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  FakeClock clock;
  EventLogOptions o;
  o.batch_interval_ms = 60'000;  // only flush() writes: the whole test is one batch
  auto log = openLog(openEnv(backend, dir / "events.lmdb"), clock, o);
  auto pull = [](const std::string& actor, const std::string& digest) {
    Event e = ev(event_type::kManifestPull, "team/app", actor, digest);
    e.method = "GET";
    e.target.tag = "v1";
    return e;
  };
  for (int i = 0; i < 100; ++i) {
    log->append(pull("alice", "sha256:aaaa"));
    if (i == 50) log->append(ev(event_type::kTagPush, "team/app"));
  }
  log->append(pull("bob", "sha256:aaaa"));
  log->append(pull("alice", "sha256:cccc"));
  log->flush();
  auto got = all(*log);
  REQUIRE(got.size() == 4);
  CHECK(got[0].type == "manifest.pull");
  CHECK(got[0].actor == "alice");
  CHECK(got[0].count == 100);
  CHECK(got[1].type == "tag.push");
  CHECK(got[1].count == 1);
  CHECK(got[2].actor == "bob");
  CHECK(got[2].count == 1);
  CHECK(got[3].target.digest == "sha256:cccc");
  CHECK(log->stats().coalesced == 99);
  // The next batch starts afresh.
  log->append(pull("alice", "sha256:aaaa"));
  log->flush();
  got = all(*log);
  REQUIRE(got.size() == 5);
  CHECK(got[4].count == 1);
}

TEST_CASE("event log: filters, visibility and pagination", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  FakeClock clock(1'700'000'000'000);
  EventLogOptions o;
  o.max_scan = 1000;
  auto log = openLog(openEnv(backend, dir / "events.lmdb"), clock, o);
  int64_t t0 = clock.nowMillis();
  log->append(ev(event_type::kManifestPush, "a/x", "alice", "sha256:1", t0));
  log->append(ev(event_type::kTagPush, "a/x", "alice", "sha256:1", t0 + 1000));
  log->append(ev(event_type::kManifestPush, "a/y", "bob", "sha256:2", t0 + 2000));
  log->append(ev(event_type::kBlobPush, "b/z", "bob", "sha256:3", t0 + 3000));
  log->append(ev(event_type::kManifestDelete, "ab/w", "carol", "sha256:4", t0 + 4000));
  log->append(ev(event_type::kManifestPull, "a/x", "carol", "sha256:1", t0 + 5000));
  log->flush();
  auto seqs = [&](EventFilter f) {
    std::vector<uint64_t> out;
    for (const auto& e : all(*log, f)) out.push_back(e.seq);
    return out;
  };
  EventFilter f;
  f.repository = "a/x";
  CHECK(seqs(f) == std::vector<uint64_t>{1, 2, 6});
  f = {};
  f.ns = "a";  // not "ab/w"
  CHECK(seqs(f) == std::vector<uint64_t>{1, 2, 3, 6});
  f = {};
  f.types = {"manifest.*"};
  CHECK(seqs(f) == std::vector<uint64_t>{1, 3, 5, 6});
  f.types = {"tag.push", "blob.push"};
  CHECK(seqs(f) == std::vector<uint64_t>{2, 4});
  f = {};
  f.actor = "bob";
  CHECK(seqs(f) == std::vector<uint64_t>{3, 4});
  f = {};
  f.from_ms = t0 + 2000;
  f.to_ms = t0 + 4000;
  CHECK(seqs(f) == std::vector<uint64_t>{3, 4, 5});
  // Visibility is asked once per repository.
  std::map<std::string, int> asked;
  f = {};
  f.visible = [&](const std::string& repo) {
    ++asked[repo];
    return repo != "b/z";
  };
  CHECK(seqs(f) == std::vector<uint64_t>{1, 2, 3, 5, 6});
  CHECK(asked == std::map<std::string, int>{{"a/x", 1}, {"a/y", 1}, {"ab/w", 1}, {"b/z", 1}});

  // Pages of 2: next is the cursor until the log has no more.
  f = {};
  auto p1 = log->query(f, 0, 2);
  REQUIRE(p1.isOk());
  REQUIRE(p1->events.size() == 2);
  REQUIRE(p1->next);
  CHECK(*p1->next == 2);
  auto p2 = log->query(f, *p1->next, 2);
  REQUIRE(p2.isOk());
  CHECK(p2->events.front().seq == 3);
  auto p3 = log->query(f, 4, 2);
  REQUIRE(p3.isOk());
  CHECK(p3->events.size() == 2);
  CHECK(!p3->next);
  auto p4 = log->query(f, 6, 2);
  REQUIRE(p4.isOk());
  CHECK(p4->events.empty());
  CHECK(!p4->next);
}

TEST_CASE("event log: a query stops after max_scan events and says where to go on", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  FakeClock clock;
  EventLogOptions o;
  o.max_scan = 10;
  auto log = openLog(openEnv(backend, dir / "events.lmdb"), clock, o);
  for (int i = 0; i < 25; ++i) log->append(ev(event_type::kBlobPush, "hidden/r"));
  log->append(ev(event_type::kBlobPush, "shown/r"));
  log->flush();
  EventFilter f;
  f.visible = [](const std::string& repo) { return repo == "shown/r"; };
  auto p = log->query(f, 0, 100);
  REQUIRE(p.isOk());
  CHECK(p->events.empty());
  REQUIRE(p->next);
  CHECK(*p->next == 10);
  auto got = all(*log, f);
  REQUIRE(got.size() == 1);
  CHECK(got[0].seq == 26);
}

TEST_CASE("event log: retention removes old events and never reuses sequence numbers", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  FakeClock clock(1'700'000'000'000);
  auto env = openEnv(backend, dir / "events.lmdb");
  EventLogOptions o;
  o.retention_ms = 3'600'000;
  auto log = openLog(env, clock, o);
  for (int i = 0; i < 5; ++i) log->append(ev(event_type::kBlobPush, "a/b"));
  log->flush();
  clock.advance(1'800'000);
  for (int i = 0; i < 3; ++i) log->append(ev(event_type::kBlobPush, "a/b"));
  log->flush();
  CHECK(log->prune() == 0);
  clock.advance(1'800'001);  // the first five are now older than an hour
  CHECK(log->prune() == 5);
  auto got = all(*log);
  REQUIRE(got.size() == 3);
  CHECK(got.front().seq == 6);
  clock.advance(3'600'001);
  CHECK(log->prune() == 3);
  CHECK(all(*log).empty());
  log->append(ev(event_type::kBlobPush, "a/b"));
  log->flush();
  got = all(*log);
  REQUIRE(got.size() == 1);
  CHECK(got[0].seq == 9);
  log.reset();
  log = openLog(env, clock, o);
  CHECK(log->lastSeq() == 9);
}

TEST_CASE("event log: max_events keeps the newest", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  FakeClock clock;
  EventLogOptions o;
  o.retention_ms = 0;
  o.max_events = 4;
  auto log = openLog(openEnv(backend, dir / "events.lmdb"), clock, o);
  for (int i = 0; i < 10; ++i) log->append(ev(event_type::kBlobPush, "a/b"));
  log->flush();
  CHECK(log->prune() == 6);
  auto got = all(*log);
  REQUIRE(got.size() == 4);
  CHECK(got.front().seq == 7);
  CHECK(got.back().seq == 10);
}

TEST_CASE("event log: subscribers hear of each committed batch on their loop, until they leave", "[events]") {
  TempDir dir;
  auto backend = GENERATE(from_range(metadataBackends()));
  FakeClock clock;
  auto log = openLog(openEnv(backend, dir / "events.lmdb"), clock);
  LoopThread lt;
  std::atomic<uint64_t> heard{0};
  std::atomic<int> calls{0};
  std::atomic<bool> on_loop{true};
  uint64_t id = log->subscribe(lt.loop, [&](uint64_t last) {
    if (!lt.loop.inLoopThread()) on_loop = false;
    heard = last;
    ++calls;
  });
  REQUIRE(id != 0);
  log->append(ev(event_type::kBlobPush, "a/b"));
  log->append(ev(event_type::kBlobPush, "a/b"));
  log->flush();
  REQUIRE(wharf::test::waitFor([&] { return heard.load() == 2; }));
  // By then the events are readable.
  CHECK(all(*log).size() == 2);
  log->unsubscribe(id);
  int before = calls.load();
  log->append(ev(event_type::kBlobPush, "a/b"));
  log->flush();
  // Notifications are posted before flush() returns; whatever was posted has run once
  // this marker has.
  lt.call([] { return 0; });
  CHECK(calls.load() == before);
  CHECK(on_loop.load());

  std::atomic<bool> closed{false};
  REQUIRE(log->subscribe(lt.loop, [&](uint64_t last) { closed = last == 0; }) != 0);
  log->closeSubscribers();
  REQUIRE(wharf::test::waitFor([&] { return closed.load(); }));
  CHECK(log->subscribe(lt.loop, [](uint64_t) {}) == 0);  // closed: refused
}

TEST_CASE("event log: type patterns and time bounds", "[events]") {
  CHECK(eventTypeMatches("*", "manifest.pull"));
  CHECK(eventTypeMatches("manifest.*", "manifest.pull"));
  CHECK(!eventTypeMatches("manifest.*", "manifestx.pull"));
  CHECK(!eventTypeMatches("tag.*", "manifest.push"));
  CHECK(eventTypeMatches("tag.move", "tag.move"));
  CHECK(!eventTypeMatches("tag.mov", "tag.move"));

  CHECK(*parseTimeBound("1700000000000") == 1'700'000'000'000);
  CHECK(*parseTimeBound("2023-11-14T22:13:20Z") == 1'700'000'000'000);
  CHECK(*parseTimeBound("2023-11-14T22:13:20.250Z") == 1'700'000'000'250);
  CHECK(*parseTimeBound("2023-11-15T00:13:20+02:00") == 1'700'000'000'000);
  CHECK(*parseTimeBound("2023-11-14T20:13:20-02:00") == 1'700'000'000'000);
  for (const char* bad : {"", "yesterday", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z",
                          "2023-11-14T22:13:20Zjunk", "-5", "2023-11-14T22:13:20+0200"}) {
    INFO(bad);
    CHECK(parseTimeBound(bad).status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("event log on PostgreSQL: replicas share one sequence, and each one's followers hear the others' events",
          "[events][pg]") {
  if (!PostgresServer::available()) return;
  TempDir dir;
  FakeClock clock;
  Backing shared = openEnv(MetadataBackend::kPostgres, "");
  auto a = openLog(shared, clock), b = openLog(shared, clock);
  CHECK(a->instanceId() == b->instanceId());
  LoopThread lt;
  std::atomic<uint64_t> heard{0};
  REQUIRE(b->subscribe(lt.loop, [&](uint64_t last) { heard = last; }) != 0);
  a->append(ev(event_type::kTagPush, "team/app"));
  a->flush();
  // b's follower hears of a's commit (a notification through PostgreSQL) and reads it.
  REQUIRE(wharf::test::waitFor([&] { return heard.load() == 1; }, 10000));
  CHECK(b->lastSeq() == 1);
  auto got = all(*b);
  REQUIRE(got.size() == 1);
  CHECK(got[0].type == event_type::kTagPush);

  // Writers on both replicas at once: one gapless sequence, each event once, each
  // thread's events in its order.
  constexpr int kThreads = 4, kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      EventLog& log = t % 2 == 0 ? *a : *b;
      for (int i = 0; i < kPerThread; ++i) {
        log.append(ev(event_type::kBlobPush, "t" + std::to_string(t) + "/r", "u", "sha256:" + std::to_string(i)));
      }
    });
  }
  for (auto& th : threads) th.join();
  a->flush();
  b->flush();
  got = all(*a);
  REQUIRE(got.size() == 1 + kThreads * kPerThread);
  std::map<std::string, int> next;
  for (size_t i = 0; i < got.size(); ++i) {
    REQUIRE(got[i].seq == i + 1);
    if (i == 0) continue;
    REQUIRE(std::stoi(got[i].target.digest.substr(7)) == next[got[i].repository]++);
  }
  REQUIRE(wharf::test::waitFor([&] { return heard.load() == got.size(); }, 10000));
}

}  // namespace event_log_test
