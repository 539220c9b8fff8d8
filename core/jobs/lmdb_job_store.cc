// The JobStore in the core's LMDB metadata environment (layout in job_store.h).
#include <algorithm>
#include <mutex>
#include <set>

#include "core/jobs/job_store.h"
#include "shared/base/clock.h"

namespace wharf {
// The helpers' own namespace: wharf_core_lib is a unity build.
namespace lmdb_job_store {
namespace {

using nlohmann::json;

std::string jobKey(uint64_t seq) { return bigEndian64(~seq); }
std::string logKey(uint64_t seq, uint64_t line) { return bigEndian64(seq) + bigEndian64(line); }

template <typename F>
Status writeTxn(LmdbEnv& env, F&& fn) {
  auto txn = env.write();
  if (!txn.isOk()) return txn.status();
  WHARF_RETURN_IF_ERROR(fn(*txn));
  return txn->commit();
}

Result<Job> getJob(const Txn& t, Dbi dbi, uint64_t seq, const std::string& id) {
  std::string_view v;
  if (!t.get(dbi, jobKey(seq), &v).isOk()) return Status(Code::kNotFound, "no job " + id);
  return Job::fromRecord(v);
}

class LmdbJobStore final : public JobStore {
 public:
  explicit LmdbJobStore(std::shared_ptr<LmdbEnv> env) : env_(std::move(env)) {}

  Status init() {
    for (auto [name, dbi] : {std::pair{"jobs", &jobs_}, {"jobs_unfinished", &unfinished_}, {"job_logs", &logs_},
                             {"schedules", &schedules_}}) {
      auto d = env_->openDb(name);
      if (!d.isOk()) return d.status();
      *dbi = *d;
    }
    // The index of unfinished jobs, made again from the jobs (a store written before
    // the index existed has none).
    return writeTxn(*env_, [&](WriteTxn& t) -> Status {
      std::vector<std::string> stale;
      {
        auto c = t.cursor(unfinished_);
        for (bool ok = c.first(); ok; ok = c.next()) stale.emplace_back(c.key());
      }
      for (const auto& k : stale) WHARF_RETURN_IF_ERROR(t.del(unfinished_, k));
      auto c = t.cursor(jobs_);
      bool first = true;
      for (bool ok = c.first(); ok; ok = c.next()) {
        uint64_t seq = ~fromBigEndian64(c.key());
        if (first) next_seq_ = seq + 1;  // the newest job comes first
        first = false;
        auto j = Job::fromRecord(c.value());
        if (j.isOk() && !jobFinished(j->state)) WHARF_RETURN_IF_ERROR(t.put(unfinished_, bigEndian64(seq), ""));
      }
      return Status::ok();
    });
  }

  bool shared() const override { return false; }

  Result<std::string> create(Job job) override {
    uint64_t seq;
    {
      std::lock_guard lock(seq_mu_);
      seq = next_seq_++;
    }
    job.id = jobIdOf(seq);
    WHARF_RETURN_IF_ERROR(writeTxn(*env_, [&](WriteTxn& t) { return putJob(t, seq, job); }));
    return job.id;
  }

  Status importJob(const Job& job, const std::vector<JobLogLine>& lines) override {
    auto seq = jobSeqOf(job.id);
    if (!seq.isOk()) return seq.status();
    std::lock_guard lock(seq_mu_);
    WHARF_RETURN_IF_ERROR(writeTxn(*env_, [&](WriteTxn& t) -> Status {
      auto there = getJob(t, jobs_, *seq, job.id);
      if (there.isOk()) {
        return sameJob(*there, job) ? Status::ok() : Status(Code::kConflict, "job " + job.id + " is another job here");
      }
      for (const auto& l : lines) {
        WHARF_RETURN_IF_ERROR(t.put(logs_, logKey(*seq, l.seq),
                                    json{{"ts", l.ts_ms}, {"line", l.line}}.dump(-1, ' ', false,
                                                                                json::error_handler_t::replace)));
      }
      return putJob(t, *seq, job);
    }));
    next_seq_ = std::max(next_seq_, *seq + 1);
    return Status::ok();
  }

  Result<Job> get(const std::string& id) const override {
    auto seq = jobSeqOf(id);
    if (!seq.isOk()) return seq.status();
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    return getJob(*txn, jobs_, *seq, id);
  }

  Result<Job> update(const std::string& id, const std::function<Status(Job&)>& fn) override {
    auto seq = jobSeqOf(id);
    if (!seq.isOk()) return seq.status();
    Job out;
    WHARF_RETURN_IF_ERROR(writeTxn(*env_, [&](WriteTxn& t) -> Status {
      auto j = getJob(t, jobs_, *seq, id);
      if (!j.isOk()) return j.status();
      WHARF_RETURN_IF_ERROR(fn(*j));
      out = std::move(j).value();
      return putJob(t, *seq, out);
    }));
    return out;
  }

  Status commit(const std::vector<JobWrite>& writes) override {
    if (writes.empty()) return Status::ok();
    return writeTxn(*env_, [&](WriteTxn& t) -> Status {
      for (const auto& w : writes) {
        auto seq = jobSeqOf(w.id);
        if (!seq.isOk()) return seq.status();
        auto j = getJob(t, jobs_, *seq, w.id);
        if (!j.isOk()) {
          if (j.status().code() == Code::kNotFound) continue;  // pruned meanwhile
          return j.status();
        }
        if (w.when && !w.when(*j)) continue;
        for (const auto& l : w.lines) {
          uint64_t line = l.seq == 0 ? j->log_lines + 1 : l.seq;
          WHARF_RETURN_IF_ERROR(t.put(logs_, logKey(*seq, line),
                                      json{{"ts", l.ts_ms}, {"line", l.line}}.dump(-1, ' ', false,
                                                                                  json::error_handler_t::replace)));
          j->log_lines = std::max(j->log_lines, line);
        }
        if (w.fn) w.fn(*j);
        WHARF_RETURN_IF_ERROR(putJob(t, *seq, *j));
      }
      return Status::ok();
    });
  }

  Result<std::optional<Job>> claim(const JobClaim& c) override {
    std::optional<Job> out;
    Status st = writeTxn(*env_, [&](WriteTxn& t) -> Status {
      std::set<std::string> running;  // kinds
      std::vector<Job> queued;
      auto cur = t.cursor(unfinished_);
      for (bool ok = cur.first(); ok; ok = cur.next()) {
        uint64_t seq = fromBigEndian64(cur.key());
        auto j = getJob(t, jobs_, seq, jobIdOf(seq));
        if (!j.isOk()) continue;
        if (j->state == JobState::kRunning) running.insert(j->kind);
        if (j->state == JobState::kQueued) queued.push_back(std::move(j).value());
      }
      auto has = [](const std::vector<std::string>& v, const std::string& k) {
        return std::find(v.begin(), v.end(), k) != v.end();
      };
      for (Job& j : queued) {
        if (!has(c.kinds, j.kind) || (has(c.exclusive, j.kind) && running.count(j.kind))) continue;
        if (!j.pinned.empty() && j.pinned != c.owner) continue;
        j.state = JobState::kRunning;
        j.started_ms = c.now_ms;
        j.owner = c.owner;
        j.lease_until_ms = c.lease_until_ms;
        j.runs++;
        auto seq = jobSeqOf(j.id);
        if (!seq.isOk()) return seq.status();
        WHARF_RETURN_IF_ERROR(putJob(t, *seq, j));
        out = std::move(j);
        return Status::ok();
      }
      return Status::ok();
    });
    if (!st.isOk()) return st;
    return out;
  }

  std::vector<Job> list(const JobFilter& f, size_t limit, const std::string& before, std::string* next) const override {
    std::vector<Job> out;
    std::string more;  // next may alias before: written last
    auto txn = env_->read();
    if (!txn.isOk() || limit == 0) {
      if (next != nullptr) next->clear();
      return out;
    }
    auto c = txn->cursor(jobs_);
    bool ok;
    if (before.empty()) {
      ok = c.first();
    } else {
      auto seq = jobSeqOf(before);
      if (!seq.isOk()) {
        if (next != nullptr) next->clear();
        return out;
      }
      std::string key = jobKey(*seq);
      ok = c.seek(key);
      if (ok && c.key() == key) ok = c.next();
    }
    for (; ok && fillJobPage(out, Job::fromRecord(c.value()), f, limit, &more); ok = c.next()) {
    }
    if (next != nullptr) *next = more;
    return out;
  }

  std::vector<Job> unfinished() const override {
    std::vector<Job> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(unfinished_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      uint64_t seq = fromBigEndian64(c.key());
      auto j = getJob(*txn, jobs_, seq, jobIdOf(seq));
      if (j.isOk() && !jobFinished(j->state)) out.push_back(std::move(j).value());
    }
    return out;
  }

  std::vector<JobLogLine> logs(const std::string& id, uint64_t after, size_t limit) const override {
    std::vector<JobLogLine> out;
    auto seq = jobSeqOf(id);
    if (!seq.isOk()) return out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    std::string prefix = bigEndian64(*seq);
    auto c = txn->cursor(logs_);
    for (bool ok = c.seek(logKey(*seq, after + 1)); ok && out.size() < limit && c.key().substr(0, 8) == prefix;
         ok = c.next()) {
      json v = json::parse(c.value(), nullptr, false);
      JobLogLine l;
      l.seq = fromBigEndian64(c.key().substr(8));
      if (v.is_object()) {
        auto ts = v.find("ts");
        auto line = v.find("line");
        if (ts != v.end() && ts->is_number_integer()) l.ts_ms = ts->get<int64_t>();
        if (line != v.end() && line->is_string()) l.line = line->get<std::string>();
      }
      out.push_back(std::move(l));
    }
    return out;
  }

  Result<size_t> prune(int64_t finished_before_ms) override {
    size_t removed = 0;
    Status st = writeTxn(*env_, [&](WriteTxn& t) -> Status {
      std::vector<std::string> keys;
      std::vector<uint64_t> seqs;
      {
        auto c = t.cursor(jobs_);
        for (bool ok = c.first(); ok; ok = c.next()) {
          auto j = Job::fromRecord(c.value());
          if (!j.isOk() || !jobFinished(j->state) || j->finished_ms >= finished_before_ms) continue;
          keys.emplace_back(c.key());
          seqs.push_back(~fromBigEndian64(c.key()));
        }
      }
      for (size_t i = 0; i < keys.size(); ++i) {
        WHARF_RETURN_IF_ERROR(t.del(jobs_, keys[i]));
        std::vector<std::string> lines;
        std::string prefix = bigEndian64(seqs[i]);
        auto c = t.cursor(logs_);
        for (bool ok = c.seek(prefix); ok && c.key().substr(0, 8) == prefix; ok = c.next()) lines.emplace_back(c.key());
        for (const auto& k : lines) WHARF_RETURN_IF_ERROR(t.del(logs_, k));
      }
      removed = keys.size();
      return Status::ok();
    });
    if (!st.isOk()) return st;
    return removed;
  }

  Result<Schedule> schedule(const std::string& name) const override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(schedules_, name, &v).isOk()) return Status(Code::kNotFound, "no schedule " + name);
    return Schedule::fromRecord(v);
  }

  std::vector<Schedule> schedules() const override {
    std::vector<Schedule> out;
    auto txn = env_->read();
    if (!txn.isOk()) return out;
    auto c = txn->cursor(schedules_);
    for (bool ok = c.first(); ok; ok = c.next()) {
      auto s = Schedule::fromRecord(c.value());
      if (s.isOk()) out.push_back(std::move(s).value());
    }
    return out;
  }

  Status putSchedule(const Schedule& s) override {
    return writeTxn(*env_, [&](WriteTxn& t) { return t.put(schedules_, s.name, s.record()); });
  }

  Status deleteSchedule(const std::string& name) override {
    return writeTxn(*env_, [&](WriteTxn& t) -> Status {
      Status st = t.del(schedules_, name);
      if (st.code() == Code::kNotFound) return Status(Code::kNotFound, "no schedule " + name);
      return st;
    });
  }

  Result<Schedule> updateSchedule(const std::string& name, const std::function<Status(Schedule&)>& fn) override {
    Schedule out;
    WHARF_RETURN_IF_ERROR(writeTxn(*env_, [&](WriteTxn& t) -> Status {
      std::string_view v;
      if (!t.get(schedules_, name, &v).isOk()) return Status(Code::kNotFound, "no schedule " + name);
      auto s = Schedule::fromRecord(v);
      if (!s.isOk()) return s.status();
      WHARF_RETURN_IF_ERROR(fn(*s));
      out = std::move(s).value();
      return t.put(schedules_, name, out.record());
    }));
    return out;
  }

 private:
  // The record and its place in the index of unfinished jobs.
  Status putJob(WriteTxn& t, uint64_t seq, const Job& j) {
    WHARF_RETURN_IF_ERROR(t.put(jobs_, jobKey(seq), j.record()));
    if (!jobFinished(j.state)) return t.put(unfinished_, bigEndian64(seq), "");
    Status st = t.del(unfinished_, bigEndian64(seq));
    return st.code() == Code::kNotFound ? Status::ok() : st;
  }

  std::shared_ptr<LmdbEnv> env_;
  Dbi jobs_ = 0, unfinished_ = 0, logs_ = 0, schedules_ = 0;
  std::mutex seq_mu_;
  uint64_t next_seq_ = 1;  // GUARDED_BY(seq_mu_)
};

}  // namespace
}  // namespace lmdb_job_store

Result<std::unique_ptr<JobStore>> openLmdbJobStore(std::shared_ptr<LmdbEnv> env) {
  auto s = std::make_unique<lmdb_job_store::LmdbJobStore>(std::move(env));
  WHARF_RETURN_IF_ERROR(s->init());
  return std::unique_ptr<JobStore>(std::move(s));
}

}  // namespace wharf
