// The JobStore on PostgreSQL (openPgJobStore in job_store.h). Tables (component "jobs"):
//
//   jobs (seq, kind, state, actor, finished_ms, record): the record is Job::record();
//        kind, state, actor and finished_ms repeat it for the queries; ids from the
//        sequence job_ids
//   job_logs (seq, line, ts_ms, text), deleted with their job
//   schedules (name, record)
//
// Where LMDB's single writer made a check-then-write atomic:
// * update, commit and updateSchedule read their rows FOR UPDATE: two replicas changing
//   one job (a renewal and a cancel, a lease taken over) or firing one schedule go one
//   after the other, the second seeing the first's change.
// * claim picks the oldest queued job it may take FOR UPDATE SKIP LOCKED (a candidate
//   another replica is taking is passed over, not waited for). Exclusive kinds: the
//   pick leaves out kinds with a running job, and since two replicas may each pick a
//   different job of the same kind at once, the claim of an exclusive kind then takes
//   the kind's advisory lock (1481, hashtext(kind)) until commit and checks again that
//   no job of the kind runs: the second claim waits for the first to commit and sees
//   its running job.
//
// Text PostgreSQL cannot hold (not UTF-8, or a NUL byte) is stored with such bytes
// replaced by U+FFFD (records are JSON dumped with replacement; schedule names are
// validated before they get here).
#include <algorithm>

#include "core/jobs/job_store.h"
#include "shared/base/clock.h"

namespace wharf {

const std::vector<PgMigration>& jobMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "jobs with their logs, and schedules",
       R"sql(
CREATE SEQUENCE job_ids AS bigint START 1 CACHE 1;
CREATE TABLE jobs (seq bigint PRIMARY KEY, kind text COLLATE "C" NOT NULL, state text NOT NULL,
                   actor text COLLATE "C" NOT NULL, finished_ms bigint NOT NULL, record text NOT NULL);
CREATE INDEX jobs_unfinished ON jobs (seq) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_finished ON jobs (finished_ms) WHERE state NOT IN ('queued', 'running');
CREATE TABLE job_logs (seq bigint NOT NULL REFERENCES jobs ON DELETE CASCADE, line bigint NOT NULL,
                       ts_ms bigint NOT NULL, text text NOT NULL, PRIMARY KEY (seq, line));
CREATE TABLE schedules (name text COLLATE "C" PRIMARY KEY, record text NOT NULL);
)sql"},
  };
  return all;
}

namespace pg_job_store {
namespace {

using nlohmann::json;

constexpr int kKindLock = 1481;  // advisory lock class: (1481, hashtext(kind))

std::string num(int64_t v) { return std::to_string(v); }


Status putJob(PgConn& c, uint64_t seq, const Job& j) {
  return c
      .exec("UPDATE jobs SET kind = $2, state = $3, actor = $4, finished_ms = $5::bigint, record = $6 "
            "WHERE seq = $1::bigint",
            {num(static_cast<int64_t>(seq)), pgStorableText(j.kind), std::string(jobStateName(j.state)),
             pgStorableText(j.actor), num(j.finished_ms), j.record()})
      .status();
}

Result<Job> lockedJob(PgConn& c, uint64_t seq, const std::string& id) {
  auto r = c.exec("SELECT record FROM jobs WHERE seq = $1::bigint FOR UPDATE", {num(static_cast<int64_t>(seq))});
  if (!r.isOk()) return r.status();
  if (r->rows() == 0) return Status(Code::kNotFound, "no job " + id);
  return Job::fromRecord(r->text(0, 0));
}

class PgJobStore final : public JobStore {
 public:
  explicit PgJobStore(std::shared_ptr<PgPool> db) : db_(std::move(db)) {}

  bool shared() const override { return true; }

  Result<std::string> create(Job job) override {
    std::string id;
    Status st = db_->transact([&](PgConn& c) -> Status {
      auto r = c.exec("SELECT nextval('job_ids')");
      if (!r.isOk()) return r.status();
      uint64_t seq = static_cast<uint64_t>(r->integer(0, 0));
      job.id = jobIdOf(seq);
      id = job.id;
      return c
          .exec("INSERT INTO jobs (seq, kind, state, actor, finished_ms, record) VALUES ($1::bigint, $2, $3, $4, "
                "$5::bigint, $6)",
                {num(static_cast<int64_t>(seq)), pgStorableText(job.kind), std::string(jobStateName(job.state)),
                 pgStorableText(job.actor), num(job.finished_ms), job.record()})
          .status();
    });
    if (!st.isOk()) return st;
    return id;
  }

  Status importJob(const Job& job, const std::vector<JobLogLine>& lines) override {
    auto seq = jobSeqOf(job.id);
    if (!seq.isOk()) return seq.status();
    if (*seq > static_cast<uint64_t>(INT64_MAX)) return Status(Code::kInvalidArgument, "job id out of range");
    std::string s = num(static_cast<int64_t>(*seq));
    return db_->transact([&](PgConn& c) -> Status {
      auto ins = c.exec("INSERT INTO jobs (seq, kind, state, actor, finished_ms, record) VALUES ($1::bigint, $2, $3, $4, "
                        "$5::bigint, $6) ON CONFLICT (seq) DO NOTHING",
                        {s, pgStorableText(job.kind), std::string(jobStateName(job.state)), pgStorableText(job.actor),
                         num(job.finished_ms), job.record()});
      if (!ins.isOk()) return ins.status();
      if (ins->affected() == 0) {
        auto there = lockedJob(c, *seq, job.id);
        if (!there.isOk()) return there.status();
        return sameJob(*there, job) ? Status::ok() : Status(Code::kConflict, "job " + job.id + " is another job here");
      }
      if (!lines.empty()) {
        std::vector<std::string> numbers, stamps, texts;
        for (const auto& l : lines) {
          numbers.push_back(num(static_cast<int64_t>(l.seq)));
          stamps.push_back(num(l.ts_ms));
          texts.push_back(pgStorableText(l.line));
        }
        WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO job_logs (seq, line, ts_ms, text) SELECT $1::bigint, l, t, x "
                                     "FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS n(l, t, x)",
                                     {s, pgArray(numbers), pgArray(stamps), pgArray(texts)})
                                  .status());
      }
      // The next id follows (the sequence is not transactional: a rollback keeps it moved).
      return c.exec("SELECT setval('job_ids', greatest($1::bigint, (SELECT last_value FROM job_ids)))", {s}).status();
    });
  }

  Result<Job> get(const std::string& id) const override {
    auto seq = jobSeqOf(id);
    if (!seq.isOk()) return seq.status();
    if (*seq > static_cast<uint64_t>(INT64_MAX)) return Status(Code::kNotFound, "no job " + id);
    auto r = db_->query("SELECT record FROM jobs WHERE seq = $1::bigint", {num(static_cast<int64_t>(*seq))});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kNotFound, "no job " + id);
    return Job::fromRecord(r->text(0, 0));
  }

  Result<Job> update(const std::string& id, const std::function<Status(Job&)>& fn) override {
    auto seq = jobSeqOf(id);
    if (!seq.isOk()) return seq.status();
    if (*seq > static_cast<uint64_t>(INT64_MAX)) return Status(Code::kNotFound, "no job " + id);
    Job out;
    Status st = db_->transact([&](PgConn& c) -> Status {
      auto j = lockedJob(c, *seq, id);
      if (!j.isOk()) return j.status();
      WHARF_RETURN_IF_ERROR(fn(*j));
      out = std::move(j).value();
      return putJob(c, *seq, out);
    });
    if (!st.isOk()) return st;
    return out;
  }

  Status commit(const std::vector<JobWrite>& writes) override {
    if (writes.empty()) return Status::ok();
    // Rows locked in id order: two commits of the same jobs never deadlock.
    std::vector<const JobWrite*> order;
    for (const auto& w : writes) order.push_back(&w);
    std::stable_sort(order.begin(), order.end(), [](const JobWrite* a, const JobWrite* b) { return a->id < b->id; });
    return db_->transact([&](PgConn& c) -> Status {
      for (const JobWrite* w : order) {
        auto seq = jobSeqOf(w->id);
        if (!seq.isOk()) return seq.status();
        if (*seq > static_cast<uint64_t>(INT64_MAX)) continue;
        auto j = lockedJob(c, *seq, w->id);
        if (!j.isOk()) {
          if (j.status().code() == Code::kNotFound) continue;  // pruned meanwhile
          return j.status();
        }
        if (w->when && !w->when(*j)) continue;
        if (!w->lines.empty()) {
          std::vector<std::string> lines, stamps, texts;
          for (const auto& l : w->lines) {
            uint64_t line = l.seq == 0 ? j->log_lines + 1 : l.seq;
            j->log_lines = std::max(j->log_lines, line);
            lines.push_back(num(static_cast<int64_t>(line)));
            stamps.push_back(num(l.ts_ms));
            texts.push_back(pgStorableText(l.line));
          }
          WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO job_logs (seq, line, ts_ms, text) SELECT $1::bigint, l, t, x "
                                       "FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS n(l, t, x) "
                                       "ON CONFLICT (seq, line) DO UPDATE SET ts_ms = EXCLUDED.ts_ms, text = EXCLUDED.text",
                                       {num(static_cast<int64_t>(*seq)), pgArray(lines), pgArray(stamps), pgArray(texts)})
                                    .status());
        }
        if (w->fn) w->fn(*j);
        WHARF_RETURN_IF_ERROR(putJob(c, *seq, *j));
      }
      return Status::ok();
    });
  }

  Result<std::optional<Job>> claim(const JobClaim& claim) override {
    std::optional<Job> out;
    std::vector<std::string> kinds;
    for (const auto& k : claim.kinds)
      if (pgStorable(k)) kinds.push_back(k);
    if (kinds.empty()) return out;
    const std::string kinds_array = pgArray(kinds), exclusive_array = pgArray(claim.exclusive);
    Status st = db_->transact([&](PgConn& c) -> Status {
      out.reset();
      auto r = c.exec(
          "SELECT j.seq, j.record FROM jobs AS j WHERE j.state = 'queued' AND j.kind = ANY($1::text[]) "
          "AND coalesce(j.record::jsonb->>'pinned', '') IN ('', $3) "
          "AND NOT (j.kind = ANY($2::text[]) AND EXISTS (SELECT 1 FROM jobs AS r WHERE r.state = 'running' "
          "AND r.kind = j.kind)) ORDER BY j.seq LIMIT 1 FOR UPDATE OF j SKIP LOCKED",
          {kinds_array, exclusive_array, pgStorableText(claim.owner)});
      if (!r.isOk()) return r.status();
      if (r->rows() == 0) return Status::ok();
      uint64_t seq = static_cast<uint64_t>(r->integer(0, 0));
      auto j = Job::fromRecord(r->text(0, 1));
      if (!j.isOk()) return j.status();
      if (std::find(claim.exclusive.begin(), claim.exclusive.end(), j->kind) != claim.exclusive.end()) {
        WHARF_RETURN_IF_ERROR(
            c.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kKindLock) + ", hashtext($1))", {j->kind}).status());
        auto running = c.exec("SELECT 1 FROM jobs WHERE state = 'running' AND kind = $1 LIMIT 1", {j->kind});
        if (!running.isOk()) return running.status();
        if (running->rows() > 0) return Status::ok();  // another replica took one first
      }
      j->state = JobState::kRunning;
      j->started_ms = claim.now_ms;
      j->owner = claim.owner;
      j->lease_until_ms = claim.lease_until_ms;
      j->runs++;
      WHARF_RETURN_IF_ERROR(putJob(c, seq, *j));
      out = std::move(j).value();
      return Status::ok();
    });
    if (!st.isOk()) return st;
    return out;
  }

  std::vector<Job> list(const JobFilter& f, size_t limit, const std::string& before, std::string* next) const override {
    std::vector<Job> out;
    if (next != nullptr && before.empty()) next->clear();
    int64_t below = INT64_MAX;
    if (!before.empty()) {
      auto seq = jobSeqOf(before);
      if (!seq.isOk()) {
        if (next != nullptr) next->clear();
        return out;
      }
      below = static_cast<int64_t>(std::min<uint64_t>(*seq, INT64_MAX));
    }
    if (limit == 0 || !pgStorable(f.kind) || !pgStorable(f.actor)) {
      if (next != nullptr) next->clear();
      return out;
    }
    auto r = db_->query(
        "SELECT record FROM jobs WHERE seq < $1::bigint AND ($2 = '' OR kind = $2) AND ($3 = '' OR actor = $3) "
        "AND ($4 = '' OR state = $4) ORDER BY seq DESC LIMIT $5::bigint",
        {num(below), f.kind, f.actor, f.state ? std::string(jobStateName(*f.state)) : std::string(),
         num(static_cast<int64_t>(std::min<uint64_t>(limit, 100'000)) + 1)});
    std::string more;
    if (r.isOk()) {
      for (int i = 0; i < r->rows() && fillJobPage(out, Job::fromRecord(r->text(i, 0)), f, limit, &more); ++i) {
      }
    }
    if (next != nullptr) *next = more;
    return out;
  }

  std::vector<Job> unfinished() const override {
    std::vector<Job> out;
    auto r = db_->query("SELECT record FROM jobs WHERE state IN ('queued', 'running') ORDER BY seq");
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      auto j = Job::fromRecord(r->text(i, 0));
      if (j.isOk()) out.push_back(std::move(j).value());
    }
    return out;
  }

  std::vector<JobLogLine> logs(const std::string& id, uint64_t after, size_t limit) const override {
    std::vector<JobLogLine> out;
    auto seq = jobSeqOf(id);
    if (!seq.isOk() || *seq > static_cast<uint64_t>(INT64_MAX) || after >= static_cast<uint64_t>(INT64_MAX)) return out;
    auto r = db_->query(
        "SELECT line, ts_ms, text FROM job_logs WHERE seq = $1::bigint AND line > $2::bigint ORDER BY line "
        "LIMIT $3::bigint",
        {num(static_cast<int64_t>(*seq)), num(static_cast<int64_t>(after)),
         num(static_cast<int64_t>(std::min<uint64_t>(limit, 1'000'000)))});
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      out.push_back(JobLogLine{static_cast<uint64_t>(r->integer(i, 0)), r->integer(i, 1), std::string(r->text(i, 2))});
    }
    return out;
  }

  Result<size_t> prune(int64_t finished_before_ms) override {
    auto r = db_->query("DELETE FROM jobs WHERE state NOT IN ('queued', 'running') AND finished_ms < $1::bigint",
                        {num(finished_before_ms)});
    if (!r.isOk()) return r.status();
    return static_cast<size_t>(r->affected());
  }

  Result<Schedule> schedule(const std::string& name) const override {
    if (!pgStorable(name)) return Status(Code::kNotFound, "no schedule " + name);
    auto r = db_->query("SELECT record FROM schedules WHERE name = $1", {name});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kNotFound, "no schedule " + name);
    return Schedule::fromRecord(r->text(0, 0));
  }

  std::vector<Schedule> schedules() const override {
    std::vector<Schedule> out;
    auto r = db_->query("SELECT record FROM schedules ORDER BY name");
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      auto s = Schedule::fromRecord(r->text(i, 0));
      if (s.isOk()) out.push_back(std::move(s).value());
    }
    return out;
  }

  Status putSchedule(const Schedule& s) override {
    if (!pgStorable(s.name)) return Status(Code::kInvalidArgument, "a schedule name must be UTF-8 text");
    return db_
        ->query("INSERT INTO schedules (name, record) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET record = "
                "EXCLUDED.record",
                {s.name, s.record()})
        .status();
  }

  Status deleteSchedule(const std::string& name) override {
    if (!pgStorable(name)) return Status(Code::kNotFound, "no schedule " + name);
    auto r = db_->query("DELETE FROM schedules WHERE name = $1", {name});
    if (!r.isOk()) return r.status();
    if (r->affected() == 0) return Status(Code::kNotFound, "no schedule " + name);
    return Status::ok();
  }

  Result<Schedule> updateSchedule(const std::string& name, const std::function<Status(Schedule&)>& fn) override {
    if (!pgStorable(name)) return Status(Code::kNotFound, "no schedule " + name);
    Schedule out;
    Status st = db_->transact([&](PgConn& c) -> Status {
      auto r = c.exec("SELECT record FROM schedules WHERE name = $1 FOR UPDATE", {name});
      if (!r.isOk()) return r.status();
      if (r->rows() == 0) return Status(Code::kNotFound, "no schedule " + name);
      auto s = Schedule::fromRecord(r->text(0, 0));
      if (!s.isOk()) return s.status();
      WHARF_RETURN_IF_ERROR(fn(*s));
      out = std::move(s).value();
      return c.exec("UPDATE schedules SET record = $2 WHERE name = $1", {name, out.record()}).status();
    });
    if (!st.isOk()) return st;
    return out;
  }

 private:
  std::shared_ptr<PgPool> db_;
};

}  // namespace
}  // namespace pg_job_store

Result<std::unique_ptr<JobStore>> openPgJobStore(std::shared_ptr<PgPool> db) {
  auto applied = applyMigrations(*db, "jobs", jobMigrations());
  if (!applied.isOk()) return applied.status();
  return std::unique_ptr<JobStore>(std::make_unique<pg_job_store::PgJobStore>(std::move(db)));
}

}  // namespace wharf
