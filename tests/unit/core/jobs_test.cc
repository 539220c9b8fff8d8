// The job system: JobStore (LMDB, and PostgreSQL where it is installed), JobRunner
// (states, cancel, retry, restart, exclusive kinds, progress, logs, retention, leases
// across replicas) and Scheduler (cron on a FakeClock, once per slot across replicas).
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "core/jobs/job_runner.h"
#include "core/jobs/job_store.h"
#include "core/jobs/scheduler.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "tests/unit/core/metadata_backends.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace jobs_test {

using namespace wharf;
using nlohmann::json;
using wharf::test::MetadataBackend;
using wharf::test::TempDir;
using wharf::test::waitFor;

namespace {

// The store on a backend: LMDB in a temp dir, or a fresh PostgreSQL database (pg_url set
// to share it: another Stores on it is another replica).
struct Stores {
  TempDir dir;
  MetadataBackend backend;
  std::string pg_url;
  std::shared_ptr<LmdbEnv> env;
  std::unique_ptr<JobStore> store;
  explicit Stores(MetadataBackend b = MetadataBackend::kLmdb, std::string url = "")
      : backend(b), pg_url(std::move(url)) {
    open();
  }
  const char* name() const { return backend == MetadataBackend::kPostgres ? "backend: PostgreSQL" : "backend: LMDB"; }
  void open() {
    if (backend == MetadataBackend::kPostgres) {
      if (pg_url.empty()) pg_url = wharf::test::PostgresServer::shared().freshDatabase();
      auto db = PgPool::open(pg_url, 4);
      INFO(db.status().toString());
      REQUIRE(db.isOk());
      auto st = openPgJobStore(std::shared_ptr<PgPool>(std::move(db).value()));
      INFO(st.status().toString());
      REQUIRE(st.isOk());
      store = std::move(st).value();
      return;
    }
    LmdbMetadataOptions o;
    o.map_size = 64ull << 20;
    o.durable = false;
    auto e = openMetadataEnv(dir / "meta.lmdb", o);
    REQUIRE(e.isOk());
    env = *e;
    auto s = openLmdbJobStore(env);
    REQUIRE(s.isOk());
    store = std::move(s).value();
  }
  // A restart: the store and environment are closed and opened again.
  void reopen() {
    store.reset();
    env.reset();
    open();
  }
};

// Holds jobs until opened; a held job returns when cancelled.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Returns false if the job was cancelled first.
  bool pass(JobContext& ctx) {
    std::unique_lock lock(mu_);
    ++waiting_;
    while (!open_) {
      if (ctx.cancelled()) {
        ++cancelled_;
        return false;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(5));
    }
    return true;
  }
  int waiting() {
    std::lock_guard lock(mu_);
    return waiting_;
  }
  int cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
  int cancelled_ = 0;
};

// A job function that waits for the gate and counts how many run at once (now, and the
// most seen).
struct Concurrency {
  std::atomic<int> now{0}, most{0};
  JobFn held(Gate& gate) {
    return [this, &gate](JobContext& ctx) -> Result<json> {
      int n = ++now;
      int m = most.load();
      while (n > m && !most.compare_exchange_weak(m, n)) {
      }
      bool passed = gate.pass(ctx);
      --now;
      if (!passed) return Status(Code::kCancelled, "cancelled");
      return json::object();
    };
  }
};

JobRunnerOptions fastOptions() {
  JobRunnerOptions o;
  o.workers = 2;
  o.flush_interval_ms = 10;
  o.progress_interval_ms = 0;
  o.poll_ms = 20;
  return o;
}

Job waitDone(JobRunner& r, const std::string& id) {
  auto j = r.wait(id, 10'000);
  REQUIRE(j.isOk());
  REQUIRE(jobFinished(j->state));
  return *j;
}

std::vector<std::string> lineTexts(const std::vector<JobLogLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.line);
  return out;
}

int64_t at(const std::string& s) {
  std::tm tm{};
  REQUIRE(std::sscanf(s.c_str(), "%d-%d-%dT%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min) == 5);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

}  // namespace

TEST_CASE("JobStore: ids, newest-first pages, filters, logs, prune, schedules", "[jobs]") {
  Stores s(GENERATE(from_range(wharf::test::metadataBackends())));
  INFO(s.name());
  CHECK(*JobStore::normalizeId("42") == "0000000042");
  CHECK_FALSE(JobStore::normalizeId("abc").isOk());
  CHECK_FALSE(JobStore::normalizeId("0").isOk());
  CHECK_FALSE(JobStore::normalizeId("").isOk());

  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    Job j;
    j.kind = i % 2 == 0 ? "even" : "odd";
    j.actor = "alice";
    j.created_ms = 1000 + i;
    auto id = s.store->create(j);
    REQUIRE(id.isOk());
    ids.push_back(*id);
  }
  CHECK(ids.front() == "0000000001");
  CHECK(ids.back() == "0000000005");
  std::string next;
  auto page = s.store->list({}, 2, "", &next);
  REQUIRE(page.size() == 2);
  CHECK(page[0].id == "0000000005");
  CHECK(page[1].id == "0000000004");
  CHECK(next == "0000000004");
  page = s.store->list({}, 2, next, &next);
  REQUIRE(page.size() == 2);
  CHECK(page[0].id == "0000000003");
  page = s.store->list({}, 2, next, &next);
  REQUIRE(page.size() == 1);
  CHECK(page[0].id == "0000000001");
  CHECK(next.empty());
  JobFilter even;
  even.kind = "even";
  page = s.store->list(even, 10, "", &next);
  CHECK(page.size() == 3);
  JobFilter failed;
  failed.state = JobState::kFailed;
  CHECK(s.store->list(failed, 10, "", &next).empty());

  // Lines in order, after a sequence number; the record counts them.
  JobWrite w{"0000000002", {{1, 10, "one"}, {2, 11, "two"}, {3, 12, "three"}}, [](Job& j) { j.progress.done = 7; },
             nullptr};
  REQUIRE(s.store->commit({w}).isOk());
  CHECK(lineTexts(s.store->logs("0000000002", 0, 10)) == std::vector<std::string>{"one", "two", "three"});
  // A guarded write happens only when its condition holds; seq 0 numbers after the last.
  REQUIRE(s.store->commit({JobWrite{"2", {{0, 13, "not written"}}, nullptr, [](const Job& j) { return j.log_lines > 3; }},
                           JobWrite{"2", {{0, 14, "four"}}, nullptr, [](const Job& j) { return j.log_lines == 3; }}})
              .isOk());
  CHECK(lineTexts(s.store->logs("2", 3, 10)) == std::vector<std::string>{"four"});
  CHECK(s.store->get("2")->log_lines == 4);
  CHECK(lineTexts(s.store->logs("2", 1, 1)) == std::vector<std::string>{"two"});
  CHECK(s.store->logs("0000000001", 0, 10).empty());
  CHECK(s.store->get("2")->progress.done == 7);
  CHECK(s.store->get("99").status().code() == Code::kNotFound);

  // Only finished jobs older than the cutoff go, with their logs.
  REQUIRE(s.store->update("2", [](Job& j) {
    j.state = JobState::kSucceeded;
    j.finished_ms = 5000;
    return Status::ok();
  }).isOk());
  REQUIRE(s.store->update("3", [](Job& j) {
    j.state = JobState::kFailed;
    j.finished_ms = 9000;
    return Status::ok();
  }).isOk());
  CHECK(*s.store->prune(6000) == 1);
  CHECK_FALSE(s.store->get("2").isOk());
  CHECK(s.store->logs("2", 0, 10).empty());
  CHECK(s.store->get("3").isOk());
  CHECK(s.store->unfinished().size() == 3);  // 1, 4, 5 are queued
  CHECK(s.store->unfinished().front().id == "0000000001");

  // Claims: the oldest queued job of a kind asked for, unless its exclusive kind runs.
  JobClaim c{{"odd"}, {"odd"}, "r1", 100, 200};
  auto got = s.store->claim(c);
  REQUIRE(got.isOk());
  REQUIRE(got->has_value());
  CHECK((*got)->id == "0000000004");
  CHECK((*got)->state == JobState::kRunning);
  CHECK((*got)->owner == "r1");
  CHECK((*got)->lease_until_ms == 200);
  CHECK((*got)->runs == 1);
  CHECK(s.store->get("4")->state == JobState::kRunning);
  CHECK_FALSE(s.store->claim(c)->has_value());  // odd is exclusive and 4 runs
  c.kinds = {"even", "odd"};
  got = s.store->claim(c);
  REQUIRE(got->has_value());
  CHECK((*got)->id == "0000000001");
  got = s.store->claim(c);
  REQUIRE(got->has_value());
  CHECK((*got)->id == "0000000005");
  CHECK_FALSE(s.store->claim(c)->has_value());
  CHECK(s.store->unfinished().size() == 3);  // now running
  // Sequence numbers continue after a restart.
  s.reopen();
  Job j;
  j.kind = "even";
  CHECK(*s.store->create(j) == "0000000006");

  Schedule sc;
  sc.name = "nightly";
  sc.cron = "0 3 * * *";
  sc.kind = "even";
  REQUIRE(s.store->putSchedule(sc).isOk());
  CHECK(s.store->schedule("nightly")->cron == "0 3 * * *");
  CHECK(s.store->schedules().size() == 1);
  CHECK(s.store->deleteSchedule("nightly").isOk());
  CHECK(s.store->deleteSchedule("nightly").code() == Code::kNotFound);
}

TEST_CASE("JobStore: an imported job keeps its id and log; a run again leaves it; another job's id is refused",
          "[jobs]") {
  Stores s(GENERATE(from_range(wharf::test::metadataBackends())));
  INFO(s.name());
  Job done;
  done.id = "0000000007";
  done.kind = "gc";
  done.actor = "alice";
  done.state = JobState::kSucceeded;
  done.created_ms = 1000;
  done.finished_ms = 2000;
  done.log_lines = 2;
  done.result = {{"freed", 3}};
  std::vector<JobLogLine> lines = {{1, 1100, "marking"}, {2, 1900, "swept 3 blobs"}};
  REQUIRE(s.store->importJob(done, lines).isOk());
  Job queued;
  queued.id = "0000000003";
  queued.kind = "scan";
  queued.created_ms = 900;
  REQUIRE(s.store->importJob(queued, {}).isOk());
  REQUIRE(s.store->importJob(done, lines).isOk());  // run again
  auto got = s.store->get("7");
  REQUIRE(got.isOk());
  CHECK(got->state == JobState::kSucceeded);
  CHECK(got->result == done.result);
  auto log = s.store->logs("7", 0, 10);
  REQUIRE(log.size() == 2);
  CHECK(log[1].line == "swept 3 blobs");
  CHECK(log[1].ts_ms == 1900);
  // The queued one is there to run; new jobs are numbered after the highest.
  auto unfinished = s.store->unfinished();
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].id == "0000000003");
  Job fresh;
  fresh.kind = "gc";
  fresh.created_ms = 3000;
  CHECK(*s.store->create(fresh) == "0000000008");
  s.reopen();
  CHECK(*s.store->create(fresh) == "0000000009");
  // Job 3 of another store is not this one's job 3.
  Job other = queued;
  other.kind = "gc";
  CHECK(s.store->importJob(other, {}).code() == Code::kConflict);
  CHECK(s.store->get("3")->kind == "scan");
}

TEST_CASE("JobRunner: a job succeeds or fails with its function's answer", "[jobs]") {
  Stores s;
  FakeClock clock(1'700'000'000'000);
  JobRunner r(*s.store, clock, fastOptions());
  r.registerKind("ok", "succeeds", [](JobContext& ctx) -> Result<json> {
    ctx.log("working on " + ctx.params().value("what", ""));
    return json{{"count", 3}, {"actor", ctx.actor()}};
  });
  r.registerKind("bad", "fails", [](JobContext&) -> Result<json> { return Status(Code::kIoError, "disk on fire"); });
  r.registerKind("throws", "throws", [](JobContext&) -> Result<json> { throw std::runtime_error("boom"); });
  r.setParamsCheck("ok", [](const json& p) {
    return p.contains("what") ? Status::ok() : Status(Code::kInvalidArgument, "params.what is required");
  });
  r.start();

  auto id = r.submit("ok", {{"what", "things"}}, "alice");
  REQUIRE(id.isOk());
  Job j = waitDone(r, *id);
  CHECK(j.state == JobState::kSucceeded);
  CHECK(j.result == json{{"count", 3}, {"actor", "alice"}});
  CHECK(j.actor == "alice");
  CHECK(j.created_ms == 1'700'000'000'000);
  CHECK(j.started_ms == 1'700'000'000'000);
  CHECK(j.finished_ms == 1'700'000'000'000);
  CHECK(lineTexts(r.logs(*id, 0, 10)) == std::vector<std::string>{"working on things", "job succeeded"});

  j = waitDone(r, *r.submit("bad", json::object(), "bob"));
  CHECK(j.state == JobState::kFailed);
  CHECK(j.error == "disk on fire");
  CHECK(j.failure().code() == Code::kIoError);
  CHECK_FALSE(j.interrupted);

  j = waitDone(r, *r.submit("throws", nullptr, "bob"));
  CHECK(j.state == JobState::kFailed);
  CHECK(j.error.find("boom") != std::string::npos);

  // Bad submissions are refused at once.
  CHECK(r.submit("nope", json::object(), "bob").status().code() == Code::kInvalidArgument);
  CHECK(r.submit("nope", json::object(), "bob").status().message().find("known: bad, ok, throws") != std::string::npos);
  CHECK(r.submit("ok", json::object(), "bob").status().message() == "params.what is required");
  CHECK(r.submit("ok", json::array(), "bob").status().code() == Code::kInvalidArgument);
}

TEST_CASE("JobRunner: cancel a queued job and a running one", "[jobs]") {
  Stores s;
  FakeClock clock;
  JobRunner r(*s.store, clock, fastOptions());
  Gate gate;
  std::atomic<int> ran{0};
  r.registerKind("held", "waits for the gate", [&](JobContext& ctx) -> Result<json> {
    ++ran;
    if (!gate.pass(ctx)) return Status(Code::kCancelled, "gave up");
    return json::object();
  });
  r.start();
  auto first = *r.submit("held", json::object(), "alice");
  REQUIRE(waitFor([&] { return gate.waiting() == 1; }));
  auto second = *r.submit("held", json::object(), "alice");  // exclusive: queued behind the first
  CHECK(r.get(second)->state == JobState::kQueued);

  REQUIRE(r.cancel(second, "carol").isOk());
  Job q = *r.get(second);
  CHECK(q.state == JobState::kCancelled);  // at once
  CHECK(q.error.find("carol") != std::string::npos);
  CHECK(r.cancel(second, "carol").code() == Code::kConflict);

  REQUIRE(r.cancel(first, "carol").isOk());
  Job j = waitDone(r, first);
  CHECK(j.state == JobState::kCancelled);
  CHECK(j.cancel_requested);
  CHECK(j.error == "cancelled by carol");
  CHECK(ran == 1);  // the queued one never ran
  auto lines = lineTexts(r.logs(first, 0, 10));
  CHECK(std::find(lines.begin(), lines.end(), "cancel requested by carol") != lines.end());
  CHECK(r.cancel("12345", "carol").code() == Code::kNotFound);
}

TEST_CASE("JobRunner: retry runs the same kind and params again", "[jobs]") {
  Stores s;
  FakeClock clock;
  JobRunner r(*s.store, clock, fastOptions());
  std::atomic<int> calls{0};
  r.registerKind("flaky", "fails once", [&](JobContext& ctx) -> Result<json> {
    if (++calls == 1) return Status(Code::kUnavailable, "upstream down");
    return json{{"n", ctx.params()["n"]}};
  });
  r.start();
  auto id = *r.submit("flaky", {{"n", 7}}, "alice");
  CHECK(waitDone(r, id).state == JobState::kFailed);
  auto again = r.retry(id, "bob");
  REQUIRE(again.isOk());
  CHECK(*again != id);
  Job j = waitDone(r, *again);
  CHECK(j.state == JobState::kSucceeded);
  CHECK(j.retry_of == id);
  CHECK(j.actor == "bob");
  CHECK(j.result == json{{"n", 7}});
  CHECK(r.retry(*again, "bob").status().code() == Code::kConflict);  // it succeeded
  CHECK(r.retry("999", "bob").status().code() == Code::kNotFound);
}

TEST_CASE("JobRunner: after a restart, a job left running runs again, up to max_runs; queued ones run", "[jobs]") {
  Stores s;
  FakeClock clock;
  std::string running_id, queued_id, spent_id;
  {
    // The previous process: one job had started, one waited, one had run three times;
    // then it died.
    Job a;
    a.kind = "work";
    a.actor = "alice";
    a.params = {{"x", 1}};
    a.state = JobState::kRunning;
    a.started_ms = clock.nowMillis();
    a.owner = "old/1/abc";
    a.runs = 1;
    running_id = *s.store->create(a);
    REQUIRE(s.store->commit({JobWrite{running_id, {{1, 1, "half way"}}, nullptr, nullptr}}).isOk());
    Job b;
    b.kind = "work";
    b.actor = "alice";
    queued_id = *s.store->create(b);
    a.runs = 3;
    spent_id = *s.store->create(a);
  }
  s.reopen();
  clock.advance(60'000);
  JobRunner r(*s.store, clock, fastOptions());
  std::atomic<int> runs{0};
  r.registerKind("work", "", [&](JobContext& ctx) -> Result<json> {
    ++runs;
    ctx.log("x is " + ctx.params()["x"].dump());
    return json::object();
  });
  r.start();
  Job j = waitDone(r, running_id);
  CHECK(j.state == JobState::kSucceeded);
  CHECK(j.runs == 2);
  CHECK(j.owner.empty());
  CHECK(lineTexts(r.logs(running_id, 0, 10)) ==
        std::vector<std::string>{"half way", "interrupted by a restart; queued again (run 2 of 3)", "x is 1",
                                 "job succeeded"});
  CHECK(waitDone(r, queued_id).state == JobState::kSucceeded);
  Job spent = *r.get(spent_id);
  CHECK(spent.state == JobState::kFailed);
  CHECK(spent.interrupted);
  CHECK(spent.error == "interrupted by a restart (3 runs)");
  CHECK(spent.finished_ms == clock.nowMillis());
  auto again = r.retry(spent_id, "alice");
  REQUIRE(again.isOk());
  Job k = waitDone(r, *again);
  CHECK(k.state == JobState::kSucceeded);
  CHECK(k.params == json{{"x", 1}});
  CHECK(runs == 3);
}

TEST_CASE("JobRunner: exclusive kinds run one at a time, others in parallel", "[jobs]") {
  Stores s;
  FakeClock clock;
  JobRunner r(*s.store, clock, fastOptions());
  Gate gate;
  Concurrency counted;
  r.registerKind("solo", "", counted.held(gate), /*exclusive=*/true);
  r.registerKind("many", "", counted.held(gate), /*exclusive=*/false);
  r.start();

  auto a = *r.submit("solo", json::object(), "t");
  auto b = *r.submit("solo", json::object(), "t");
  REQUIRE(waitFor([&] { return gate.waiting() == 1; }));
  // Two runner threads, yet the second solo job waits for the first.
  CHECK(r.get(b)->state == JobState::kQueued);
  CHECK(r.get(a)->state == JobState::kRunning);
  gate.open();
  Job ja = waitDone(r, a), jb = waitDone(r, b);
  CHECK(ja.state == JobState::kSucceeded);
  CHECK(jb.state == JobState::kSucceeded);
  CHECK(counted.most == 1);

  Gate gate2;
  r.stop();  // one runner on an unshared store
  JobRunner r2(*s.store, clock, fastOptions());
  r2.registerKind("many", "", [&](JobContext& ctx) -> Result<json> {
    if (!gate2.pass(ctx)) return Status(Code::kCancelled, "cancelled");
    return json::object();
  }, false);
  r2.start();
  auto c = *r2.submit("many", json::object(), "t");
  auto d = *r2.submit("many", json::object(), "t");
  CHECK(waitFor([&] { return gate2.waiting() == 2; }));  // both run at once
  gate2.open();
  CHECK(waitDone(r2, c).state == JobState::kSucceeded);
  CHECK(waitDone(r2, d).state == JobState::kSucceeded);
}

TEST_CASE("JobRunner: progress and log lines are persisted while the job runs", "[jobs]") {
  Stores s;
  FakeClock clock;
  JobRunner r(*s.store, clock, fastOptions());
  Gate gate;
  r.registerKind("steps", "", [&](JobContext& ctx) -> Result<json> {
    ctx.progress(5, 10, "half");
    ctx.log("did five");
    if (!gate.pass(ctx)) return Status(Code::kCancelled, "cancelled");
    ctx.progress(10, 10, "all");
    return json::object();
  });
  std::atomic<int> notified{0};
  r.start();
  auto id = *r.submit("steps", json::object(), "t");
  uint64_t sub = r.subscribe(id, [&] { ++notified; });
  // Read from the store itself, not the runner's live view.
  CHECK(waitFor([&] {
    auto j = s.store->get(id);
    return j.isOk() && j->progress.done == 5 && j->progress.total == 10 && j->progress.message == "half";
  }));
  CHECK(waitFor([&] { return lineTexts(s.store->logs(id, 0, 10)) == std::vector<std::string>{"did five"}; }));
  CHECK(notified > 0);
  CHECK(r.get(id)->state == JobState::kRunning);
  gate.open();
  Job j = waitDone(r, id);
  CHECK(j.progress.done == 10);
  CHECK(j.progress.message == "all");
  r.unsubscribe(sub);
}

TEST_CASE("JobRunner: a log keeps its first lines, then says it was truncated", "[jobs]") {
  Stores s;
  FakeClock clock;
  JobRunnerOptions o = fastOptions();
  o.max_log_lines = 5;
  JobRunner r(*s.store, clock, o);
  r.registerKind("chatty", "", [](JobContext& ctx) -> Result<json> {
    for (int i = 1; i <= 20; ++i) ctx.log("line " + std::to_string(i));
    return json::object();
  });
  r.start();
  auto id = *r.submit("chatty", json::object(), "t");
  Job j = waitDone(r, id);
  auto lines = lineTexts(r.logs(id, 0, 100));
  REQUIRE(lines.size() == 7);
  CHECK(lines[4] == "line 5");
  CHECK(lines[5].find("log truncated") == 0);
  CHECK(lines[6] == "job succeeded");  // the runner's closing line is always kept
  CHECK(j.log_lines == 7);
}

TEST_CASE("JobRunner: stop() interrupts running jobs, which run again at the next start; queued ones stay",
          "[jobs]") {
  Stores s;
  FakeClock clock;
  JobRunnerOptions o = fastOptions();
  o.workers = 1;
  o.max_runs = 2;
  std::string running, queued;
  auto held = [](Gate& gate) {
    return [&gate](JobContext& ctx) -> Result<json> {
      if (!gate.pass(ctx)) return Status(Code::kCancelled, "stopped");
      return json::object();
    };
  };
  for (int round = 1; round <= 2; ++round) {
    JobRunner r(*s.store, clock, o);
    Gate gate;
    r.registerKind("held", "", held(gate));
    r.start();
    if (round == 1) {
      running = *r.submit("held", json::object(), "t");
      queued = *r.submit("held", json::object(), "t");
    }
    REQUIRE(waitFor([&] { return gate.waiting() == 1; }));
    CHECK(r.get(running)->state == JobState::kRunning);
    CHECK(r.get(running)->runs == static_cast<uint32_t>(round));
    r.stop();
    CHECK(r.submit("held", json::object(), "t").status().code() == Code::kUnavailable);
    CHECK(s.store->get(queued)->state == JobState::kQueued);
  }
  // Stopped in both of its runs (max_runs = 2): failed, interrupted, retryable.
  Job j = *s.store->get(running);
  CHECK(j.state == JobState::kFailed);
  CHECK(j.interrupted);
  CHECK(j.error == "interrupted by a shutdown");
  auto lines = lineTexts(s.store->logs(running, 0, 10));
  CHECK(lines == std::vector<std::string>{"interrupted by a shutdown; queued again (run 2 of 2)",
                                          "job failed: interrupted by a shutdown"});
}

TEST_CASE("JobRunner: finished jobs past the retention are pruned", "[jobs]") {
  Stores s;
  FakeClock clock;
  JobRunnerOptions o = fastOptions();
  o.retention_ms = 86'400'000;
  JobRunner r(*s.store, clock, o);
  r.registerKind("quick", "", [](JobContext& ctx) -> Result<json> {
    ctx.log("hi");
    return json::object();
  });
  r.start();
  auto id = *r.submit("quick", json::object(), "t");
  waitDone(r, id);
  CHECK(r.prune() == 0);
  clock.advance(86'400'000 + 1);
  CHECK(r.prune() == 1);
  CHECK(r.get(id).status().code() == Code::kNotFound);
  CHECK(r.logs(id, 0, 10).empty());
}

TEST_CASE("JobContext: a standalone context records progress, lines and cancel", "[jobs]") {
  JobContext ctx("t1", {{"a", 1}}, "alice");
  ctx.progress(1, 2, "m");
  ctx.log("x");
  CHECK(ctx.lastProgress().done == 1);
  CHECK(ctx.lines() == std::vector<std::string>{"x"});
  CHECK_FALSE(ctx.cancelled());
  ctx.requestCancel();
  CHECK(ctx.cancelled());
  CHECK(ctx.params()["a"] == 1);
}

TEST_CASE("Scheduler: cron slots on a fake clock, once per slot, a missed run once", "[jobs][scheduler]") {
  Stores s;
  FakeClock clock(at("2024-01-01T00:07"));
  std::vector<std::string> ran;
  auto runner = std::make_unique<JobRunner>(*s.store, clock, fastOptions());
  runner->registerKind("count", "", [](JobContext&) -> Result<json> { return json::object(); });
  runner->start();
  auto sched = std::make_unique<Scheduler>(*s.store, *runner, clock);
  bool created = false;
  auto put = sched->put("every-15", "*/15 * * * *", "count", json::object(), true, "alice", &created);
  REQUIRE(put.isOk());
  CHECK(created);
  CHECK(put->next_run_ms == at("2024-01-01T00:15"));
  CHECK(put->origin == "api");

  CHECK(sched->tick().empty());  // 00:07: not due
  clock.set(at("2024-01-01T00:15"));
  auto ids = sched->tick();
  REQUIRE(ids.size() == 1);
  Job j = waitDone(*runner, ids[0]);
  CHECK(j.actor == "schedule:every-15");
  CHECK(sched->tick().empty());  // the same slot runs once
  auto sc = *sched->get("every-15");
  CHECK(sc.last_run_ms == at("2024-01-01T00:15"));
  CHECK(sc.last_job == ids[0]);
  CHECK(sc.next_run_ms == at("2024-01-01T00:30"));

  clock.set(at("2024-01-01T00:31"));
  ids = sched->tick();
  REQUIRE(ids.size() == 1);
  waitDone(*runner, ids[0]);
  CHECK(sched->get("every-15")->next_run_ms == at("2024-01-01T00:45"));

  // Down from 00:32 to 03:10: eleven slots missed, one run at the start, then 03:15.
  sched.reset();
  runner.reset();
  s.reopen();
  clock.set(at("2024-01-01T03:10"));
  runner = std::make_unique<JobRunner>(*s.store, clock, fastOptions());
  runner->registerKind("count", "", [](JobContext&) -> Result<json> { return json::object(); });
  runner->start();
  sched = std::make_unique<Scheduler>(*s.store, *runner, clock);
  ids = sched->tick();
  CHECK(ids.size() == 1);
  waitDone(*runner, ids.at(0));
  CHECK(sched->tick().empty());
  CHECK(sched->get("every-15")->next_run_ms == at("2024-01-01T03:15"));
  JobFilter f;
  f.actor = "schedule:every-15";
  std::string next;
  CHECK(runner->list(f, 100, "", &next).size() == 3);

  // Disabled: no runs; enabled again: planned from now, no catching up.
  REQUIRE(sched->put("every-15", "*/15 * * * *", "count", json::object(), false, "alice").isOk());
  clock.set(at("2024-01-01T04:00"));
  CHECK(sched->tick().empty());
  REQUIRE(sched->put("every-15", "*/15 * * * *", "count", json::object(), true, "alice", &created).isOk());
  CHECK_FALSE(created);
  CHECK(sched->get("every-15")->next_run_ms == at("2024-01-01T04:15"));
  CHECK(sched->tick().empty());
}

TEST_CASE("Scheduler: a slot is skipped while the previous job still runs", "[jobs][scheduler]") {
  Stores s;
  FakeClock clock(at("2024-01-01T00:00"));
  JobRunner runner(*s.store, clock, fastOptions());
  Gate gate;
  runner.registerKind("slow", "", [&](JobContext& ctx) -> Result<json> {
    if (!gate.pass(ctx)) return Status(Code::kCancelled, "cancelled");
    return json::object();
  });
  runner.start();
  Scheduler sched(*s.store, runner, clock);
  REQUIRE(sched.put("minutely", "* * * * *", "slow", json::object(), true, "t").isOk());
  clock.set(at("2024-01-01T00:01"));
  auto ids = sched.tick();
  REQUIRE(ids.size() == 1);
  REQUIRE(waitFor([&] { return gate.waiting() == 1; }));
  clock.set(at("2024-01-01T00:02"));
  CHECK(sched.tick().empty());
  CHECK(sched.get("minutely")->next_run_ms == at("2024-01-01T00:03"));
  CHECK(sched.get("minutely")->last_job == ids[0]);
  gate.open();
  waitDone(runner, ids[0]);
  clock.set(at("2024-01-01T00:03"));
  CHECK(sched.tick().size() == 1);
}

TEST_CASE("Scheduler: configuration defaults and validation", "[jobs][scheduler]") {
  Stores s;
  FakeClock clock(at("2024-01-01T00:00"));
  JobRunner runner(*s.store, clock, fastOptions());
  runner.registerKind("purge", "", [](JobContext&) -> Result<json> { return json::object(); });
  runner.start();
  Scheduler sched(*s.store, runner, clock);

  // Absent and disabled: not created. Absent and enabled: created with origin config.
  REQUIRE(sched.ensureDefault("sync", "@every 1h", "purge", json::object(), false).isOk());
  CHECK(sched.get("sync").status().code() == Code::kNotFound);
  REQUIRE(sched.ensureDefault("purge", "@every 1h", "purge", {{"max_age", "1d"}}, true).isOk());
  Schedule p = *sched.get("purge");
  CHECK(p.origin == "config");
  CHECK(p.next_run_ms == at("2024-01-01T01:00"));
  // Unchanged at the next start (three hours later): next_run is kept, so the missed
  // run happens once.
  clock.set(at("2024-01-01T03:00"));
  REQUIRE(sched.ensureDefault("purge", "@every 1h", "purge", {{"max_age", "1d"}}, true).isOk());
  CHECK(sched.get("purge")->next_run_ms == at("2024-01-01T01:00"));
  auto ids = sched.tick();
  CHECK(ids.size() == 1);
  CHECK(sched.get("purge")->next_run_ms == at("2024-01-01T04:00"));
  // A changed configuration updates it.
  REQUIRE(sched.ensureDefault("purge", "@every 2h", "purge", {{"max_age", "2d"}}, true).isOk());
  CHECK(sched.get("purge")->cron == "@every 2h");
  CHECK(sched.get("purge")->params == json{{"max_age", "2d"}});
  CHECK(sched.get("purge")->next_run_ms == at("2024-01-01T05:00"));
  // Once set through the API, the configuration leaves it alone.
  REQUIRE(sched.put("purge", "0 4 * * *", "purge", json::object(), true, "alice").isOk());
  REQUIRE(sched.ensureDefault("purge", "@every 1h", "purge", json::object(), true).isOk());
  CHECK(sched.get("purge")->cron == "0 4 * * *");
  CHECK(sched.get("purge")->origin == "api");

  auto bad = sched.put("x", "0 0 * * 9", "purge", json::object(), true, "t");
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(bad.status().message().find("day-of-week") != std::string::npos);
  CHECK(sched.put("x", "@daily", "nope", json::object(), true, "t").status().message().find("unknown job kind") !=
        std::string::npos);
  CHECK(sched.put("Bad Name", "@daily", "purge", json::object(), true, "t").status().code() ==
        Code::kInvalidArgument);
  CHECK(sched.remove("x").code() == Code::kNotFound);
  CHECK(sched.remove("purge").isOk());
  CHECK(sched.list().empty());
}

TEST_CASE("JobRunner on PostgreSQL: replicas share the queue; each job runs once, an exclusive kind one at a "
          "time in the cluster; a cancel reaches the replica running the job",
          "[jobs][pg]") {
  if (!wharf::test::PostgresServer::available()) return;
  Stores a(MetadataBackend::kPostgres);
  Stores b(MetadataBackend::kPostgres, a.pg_url);
  FakeClock clock;
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> ran;  // job id -> runners
  Concurrency solo;
  Gate gate;
  auto kinds = [&](JobRunner& r) {
    r.registerKind("count", "", [&, &r = r](JobContext& ctx) -> Result<json> {
      std::lock_guard lock(mu);
      ran[ctx.id()].push_back(r.owner());
      return json::object();
    }, /*exclusive=*/false);
    r.registerKind("solo", "", solo.held(gate));
  };
  JobRunnerOptions o = fastOptions();
  o.owner = "replica-a";
  JobRunner ra(*a.store, clock, o);
  o.owner = "replica-b";
  JobRunner rb(*b.store, clock, o);
  kinds(ra);
  kinds(rb);
  ra.start();
  rb.start();

  // Submitted on both replicas, run once each, by either.
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(*(i % 2 ? ra : rb).submit("count", json::object(), "t"));
  for (const auto& id : ids) CHECK(waitDone(ra, id).state == JobState::kSucceeded);
  {
    std::lock_guard lock(mu);
    CHECK(ran.size() == ids.size());
    for (const auto& [id, by] : ran) CHECK(by.size() == 1);
  }
  for (const auto& id : ids) CHECK(ra.get(id)->runs == 1);  // no job claimed twice

  // Exclusive across replicas: four solo jobs, four runner threads, one at a time.
  std::vector<std::string> solos;
  for (int i = 0; i < 4; ++i) solos.push_back(*(i % 2 ? ra : rb).submit("solo", json::object(), "t"));
  REQUIRE(waitFor([&] { return gate.waiting() == 1; }));
  int running = 0;
  std::string first;
  for (const auto& id : solos) {
    Job j = *ra.get(id);
    if (j.state == JobState::kRunning) {
      ++running;
      first = j.id;
    }
  }
  CHECK(running == 1);
  // Cancelled through the replica that does not run it: its runner hears of it.
  Job f = *ra.get(first);
  JobRunner& other = f.owner == "replica-a" ? rb : ra;
  REQUIRE(other.cancel(first, "carol").isOk());
  Job c = waitDone(other, first);
  CHECK(c.state == JobState::kCancelled);
  CHECK(c.error == "cancelled by carol");
  REQUIRE(waitFor([&] { return gate.waiting() == 2; }));
  gate.open();
  for (const auto& id : solos) {
    if (id != first) CHECK(waitDone(ra, id).state == JobState::kSucceeded);
  }
  CHECK(solo.most == 1);
}

TEST_CASE("JobRunner on PostgreSQL: a replica that died loses its job to another once the lease runs out",
          "[jobs][pg]") {
  if (!wharf::test::PostgresServer::available()) return;
  Stores a(MetadataBackend::kPostgres);
  FakeClock clock;
  // The dead replica's jobs: one in its first run, one in its last.
  Job j;
  j.kind = "work";
  j.actor = "t";
  j.state = JobState::kRunning;
  j.owner = "dead/1/000";
  j.lease_until_ms = clock.nowMillis() + 30'000;
  j.runs = 1;
  std::string first = *a.store->create(j);
  j.runs = 3;
  std::string last = *a.store->create(j);

  JobRunnerOptions o = fastOptions();
  o.owner = "replica-b";
  JobRunner rb(*a.store, clock, o);
  std::atomic<int> runs{0};
  rb.registerKind("work", "", [&](JobContext&) -> Result<json> {
    ++runs;
    return json::object();
  }, false);
  rb.start();
  // Its lease still holds: the job is left alone.
  CHECK_FALSE(waitFor([&] { return a.store->get(first)->state != JobState::kRunning; }, 300));
  CHECK(runs == 0);
  clock.advance(31'000);
  Job done = waitDone(rb, first);
  CHECK(done.state == JobState::kSucceeded);
  CHECK(done.runs == 2);
  auto lines = lineTexts(rb.logs(first, 0, 10));
  REQUIRE_FALSE(lines.empty());
  CHECK(lines[0] == "interrupted: dead/1/000 stopped renewing its lease; queued again (run 2 of 3)");
  Job spent = waitDone(rb, last);
  CHECK(spent.state == JobState::kFailed);
  CHECK(spent.interrupted);
  CHECK(spent.error == "interrupted: dead/1/000 stopped renewing its lease (3 runs)");
  CHECK(runs == 1);

  // A replica whose lease was taken over stops the job and writes nothing more of it.
  Gate gate;
  JobRunnerOptions oc = fastOptions();
  oc.owner = "replica-c";
  JobRunner rc(*a.store, clock, oc);
  rc.registerKind("held", "", [&](JobContext& ctx) -> Result<json> {
    if (!gate.pass(ctx)) return Status(Code::kCancelled, "stopped");
    return json::object();
  });
  rc.start();
  std::string held = *rc.submit("held", json::object(), "t");
  REQUIRE(waitFor([&] { return gate.waiting() == 1; }));
  REQUIRE(a.store->update(held, [](Job& x) {
    x.owner = "replica-x";
    return Status::ok();
  }).isOk());
  // rc sees the lease gone at its next renewal: the job's function is cancelled, and
  // nothing of rc's end reaches the record.
  CHECK(waitFor([&] { return gate.cancelled() == 1; }));
  rc.flush();
  Job taken = *a.store->get(held);
  CHECK(taken.state == JobState::kRunning);
  CHECK(taken.owner == "replica-x");
}

TEST_CASE("JobRunner on PostgreSQL: a job pinned to its core runs only there, and fails if that core went away",
          "[jobs][pg]") {
  if (!wharf::test::PostgresServer::available()) return;
  Stores a(MetadataBackend::kPostgres);
  Stores b(MetadataBackend::kPostgres, a.pg_url);
  FakeClock clock;
  std::mutex mu;
  std::vector<std::string> ran_on;
  JobRunnerOptions o = fastOptions();
  o.owner = "replica-a";
  JobRunner ra(*a.store, clock, o);
  o.owner = "replica-b";
  JobRunner rb(*b.store, clock, o);
  for (JobRunner* r : {&ra, &rb}) {
    r->registerKind("local", "", [&, r](JobContext&) -> Result<json> {
      std::lock_guard lock(mu);
      ran_on.push_back(r->owner());
      return json::object();
    }, false);
  }
  rb.start();  // b alone looks for work first: it must leave a's jobs alone
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(*ra.submit("local", json::object(), "t", /*here=*/true));
  CHECK(ra.get(ids[0])->pinned == "replica-a");
  CHECK_FALSE(waitFor([&] { return rb.get(ids[0])->state != JobState::kQueued; }, 300));
  ra.start();
  for (const auto& id : ids) CHECK(waitDone(ra, id).state == JobState::kSucceeded);
  {
    std::lock_guard lock(mu);
    CHECK(ran_on == std::vector<std::string>(5, "replica-a"));
  }

  // Pinned to a runner that died: queued, it fails once the runner has had its time;
  // running, it fails when the lease runs out (never run elsewhere).
  Job q;
  q.kind = "local";
  q.actor = "t";
  q.pinned = "dead/1/000";
  q.created_ms = clock.nowMillis();
  std::string queued = *a.store->create(q);
  Job r = q;
  r.state = JobState::kRunning;
  r.owner = "dead/1/000";
  r.lease_until_ms = clock.nowMillis() + 1000;
  r.runs = 1;
  std::string running = *a.store->create(r);
  clock.advance(3 * o.lease_ms + 1);
  Job fq = waitDone(rb, queued), fr = waitDone(rb, running);
  CHECK(fq.state == JobState::kFailed);
  CHECK(fq.error == "failed: dead/1/000, the core it needs (it holds that core's files), went away");
  CHECK(fr.state == JobState::kFailed);
  CHECK(fr.error == "interrupted: dead/1/000 stopped renewing its lease (it needs that core's files: not run elsewhere)");
  std::lock_guard lock(mu);
  CHECK(ran_on.size() == 5);
}

TEST_CASE("Scheduler on PostgreSQL: replicas ticking together fire each slot once", "[jobs][scheduler][pg]") {
  if (!wharf::test::PostgresServer::available()) return;
  Stores a(MetadataBackend::kPostgres);
  Stores b(MetadataBackend::kPostgres, a.pg_url);
  FakeClock clock(at("2024-01-01T00:00"));
  JobRunnerOptions o = fastOptions();
  JobRunner ra(*a.store, clock, o), rb(*b.store, clock, o);
  for (JobRunner* r : {&ra, &rb}) {
    r->registerKind("count", "", [](JobContext&) -> Result<json> { return json::object(); }, false);
    r->start();
  }
  Scheduler sa(*a.store, ra, clock), sb(*b.store, rb, clock);
  REQUIRE(sa.put("minutely", "* * * * *", "count", json::object(), true, "t").isOk());
  for (int minute = 1; minute <= 10; ++minute) {
    clock.set(at("2024-01-01T00:00") + minute * 60'000);
    std::vector<std::string> fired_a, fired_b;
    std::thread ta([&] { fired_a = sa.tick(); });
    std::thread tb([&] { fired_b = sb.tick(); });
    ta.join();
    tb.join();
    CHECK(fired_a.size() + fired_b.size() == 1);
    for (const auto& id : fired_a) waitDone(ra, id);
    for (const auto& id : fired_b) waitDone(rb, id);
  }
  JobFilter f;
  f.actor = "schedule:minutely";
  std::string next;
  CHECK(ra.list(f, 100, "", &next).size() == 10);
}

}  // namespace jobs_test
