// The job system: JobStore (LMDB), JobRunner (states, cancel, retry, restart, exclusive
// kinds, progress, logs, retention) and Scheduler (cron on a FakeClock).
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <stdexcept>

#include "core/jobs/job_runner.h"
#include "core/jobs/job_store.h"
#include "core/jobs/scheduler.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace jobs_test {

using namespace wharf;
using nlohmann::json;
using wharf::test::TempDir;
using wharf::test::waitFor;

namespace {

struct Stores {
  TempDir dir;
  std::shared_ptr<LmdbEnv> env;
  std::unique_ptr<JobStore> store;
  Stores() { open(); }
  void open() {
    LmdbMetadataOptions o;
    o.map_size = 64ull << 20;
    o.durable = false;
    auto e = openMetadataEnv(dir / "meta.lmdb", o);
    REQUIRE(e.isOk());
    env = *e;
    auto s = JobStore::open(env);
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
      if (ctx.cancelled()) return false;
      cv_.wait_for(lock, std::chrono::milliseconds(5));
    }
    return true;
  }
  int waiting() {
    std::lock_guard lock(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

JobRunnerOptions fastOptions() {
  JobRunnerOptions o;
  o.workers = 2;
  o.flush_interval_ms = 10;
  o.progress_interval_ms = 0;
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
  Stores s;
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
  JobWrite w{"0000000002", {{1, 10, "one"}, {2, 11, "two"}, {3, 12, "three"}}, [](Job& j) { j.progress.done = 7; }};
  REQUIRE(s.store->commit({w}).isOk());
  CHECK(lineTexts(s.store->logs("0000000002", 0, 10)) == std::vector<std::string>{"one", "two", "three"});
  CHECK(lineTexts(s.store->logs("2", 1, 1)) == std::vector<std::string>{"two"});
  CHECK(s.store->logs("0000000001", 0, 10).empty());
  CHECK(s.store->get("2")->log_lines == 3);
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

TEST_CASE("JobRunner: after a restart, running jobs are interrupted and queued ones run", "[jobs]") {
  Stores s;
  FakeClock clock;
  std::string running_id, queued_id;
  {
    // The previous process: one job had started, one waited; then it died.
    Job a;
    a.kind = "work";
    a.actor = "alice";
    a.params = {{"x", 1}};
    a.state = JobState::kRunning;
    a.started_ms = clock.nowMillis();
    running_id = *s.store->create(a);
    REQUIRE(s.store->commit({JobWrite{running_id, {{1, 1, "half way"}}, nullptr}}).isOk());
    Job b;
    b.kind = "work";
    b.actor = "alice";
    queued_id = *s.store->create(b);
  }
  s.reopen();
  clock.advance(60'000);
  JobRunner r(*s.store, clock, fastOptions());
  std::atomic<int> runs{0};
  r.registerKind("work", "", [&](JobContext&) -> Result<json> {
    ++runs;
    return json::object();
  });
  r.start();
  Job j = *r.get(running_id);
  CHECK(j.state == JobState::kFailed);
  CHECK(j.interrupted);
  CHECK(j.error == "interrupted by a restart");
  CHECK(j.finished_ms == clock.nowMillis());
  CHECK(lineTexts(r.logs(running_id, 0, 10)) == std::vector<std::string>{"half way", "interrupted by a restart"});
  CHECK(waitDone(r, queued_id).state == JobState::kSucceeded);
  auto again = r.retry(running_id, "alice");
  REQUIRE(again.isOk());
  Job k = waitDone(r, *again);
  CHECK(k.state == JobState::kSucceeded);
  CHECK(k.params == json{{"x", 1}});
  CHECK(runs == 2);
}

TEST_CASE("JobRunner: exclusive kinds run one at a time, others in parallel", "[jobs]") {
  Stores s;
  FakeClock clock;
  JobRunner r(*s.store, clock, fastOptions());
  Gate gate;
  std::atomic<int> now_running{0}, most{0};
  auto fn = [&](JobContext& ctx) -> Result<json> {
    int n = ++now_running;
    int m = most.load();
    while (n > m && !most.compare_exchange_weak(m, n)) {
    }
    bool passed = gate.pass(ctx);
    --now_running;
    if (!passed) return Status(Code::kCancelled, "cancelled");
    return json::object();
  };
  r.registerKind("solo", "", fn, /*exclusive=*/true);
  r.registerKind("many", "", fn, /*exclusive=*/false);
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
  CHECK(most == 1);

  Gate gate2;
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

TEST_CASE("JobRunner: stop() interrupts running jobs and keeps queued ones", "[jobs]") {
  Stores s;
  FakeClock clock;
  JobRunnerOptions o = fastOptions();
  o.workers = 1;
  std::string running, queued;
  {
    JobRunner r(*s.store, clock, o);
    Gate gate;
    r.registerKind("held", "", [&](JobContext& ctx) -> Result<json> {
      if (!gate.pass(ctx)) return Status(Code::kCancelled, "stopped");
      return json::object();
    });
    r.start();
    running = *r.submit("held", json::object(), "t");
    queued = *r.submit("held", json::object(), "t");
    REQUIRE(waitFor([&] { return gate.waiting() == 1; }));
    r.stop();
    CHECK(r.submit("held", json::object(), "t").status().code() == Code::kUnavailable);
  }
  Job j = *s.store->get(running);
  CHECK(j.state == JobState::kFailed);
  CHECK(j.interrupted);
  CHECK(j.error == "interrupted by a shutdown");
  CHECK(s.store->get(queued)->state == JobState::kQueued);
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

}  // namespace jobs_test
