#include "core/jobs/job_store.h"

#include <algorithm>

#include "shared/base/clock.h"
#include "shared/base/json_body.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr std::string_view kStateNames[] = {"queued", "running", "succeeded", "failed", "cancelled"};

std::string jobKey(uint64_t seq) { return bigEndian64(~seq); }
std::string logKey(uint64_t seq, uint64_t line) { return bigEndian64(seq) + bigEndian64(line); }

std::string idOf(uint64_t seq) {
  std::string digits = std::to_string(seq);
  return digits.size() >= 10 ? digits : std::string(10 - digits.size(), '0') + digits;
}

Result<uint64_t> seqOf(const std::string& id) {
  if (id.empty() || id.size() > 19 || id.find_first_not_of("0123456789") != std::string::npos) {
    return Status(Code::kInvalidArgument, "\"" + id + "\" is not a job id (a number such as 0000000042)");
  }
  uint64_t v = std::stoull(id);
  if (v == 0) return Status(Code::kInvalidArgument, "\"" + id + "\" is not a job id (they start at 1)");
  return v;
}


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

}  // namespace

std::string_view jobStateName(JobState s) { return kStateNames[static_cast<size_t>(s)]; }

bool parseJobState(std::string_view s, JobState* out) {
  for (size_t i = 0; i < std::size(kStateNames); ++i) {
    if (s == kStateNames[i]) {
      *out = static_cast<JobState>(i);
      return true;
    }
  }
  return false;
}

// --- records ---------------------------------------------------------------------

std::string Job::record() const {
  return json{{"id", id},
              {"kind", kind},
              {"state", jobStateName(state)},
              {"actor", actor},
              {"params", params},
              {"created", created_ms},
              {"started", started_ms},
              {"finished", finished_ms},
              {"progress", {{"done", progress.done}, {"total", progress.total}, {"message", progress.message}}},
              {"result", result},
              {"error", error},
              {"error_code", error_code},
              {"retry_of", retry_of},
              {"interrupted", interrupted},
              {"cancel_requested", cancel_requested},
              {"log_lines", log_lines}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Job> Job::fromRecord(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Status(Code::kCorruption, "job record is not a JSON object");
  try {
    Job out;
    out.id = j.value("id", "");
    out.kind = j.value("kind", "");
    if (!parseJobState(j.value("state", ""), &out.state)) return Status(Code::kCorruption, "job record: bad state");
    out.actor = j.value("actor", "");
    out.params = j.value("params", json::object());
    out.created_ms = j.value("created", int64_t{0});
    out.started_ms = j.value("started", int64_t{0});
    out.finished_ms = j.value("finished", int64_t{0});
    json p = j.value("progress", json::object());
    out.progress.done = p.value("done", uint64_t{0});
    out.progress.total = p.value("total", uint64_t{0});
    out.progress.message = p.value("message", "");
    out.result = j.value("result", json());
    out.error = j.value("error", "");
    out.error_code = j.value("error_code", "");
    out.retry_of = j.value("retry_of", "");
    out.interrupted = j.value("interrupted", false);
    out.cancel_requested = j.value("cancel_requested", false);
    out.log_lines = j.value("log_lines", uint64_t{0});
    return out;
  } catch (const json::exception& e) {
    return Status(Code::kCorruption, std::string("job record: ") + e.what());
  }
}

Status Job::failure() const {
  if (state != JobState::kFailed && state != JobState::kCancelled) return Status::ok();
  Code code = state == JobState::kCancelled ? Code::kCancelled : Code::kInternal;
  for (int c = 1; c <= static_cast<int>(Code::kMethodNotAllowed); ++c) {
    if (codeName(static_cast<Code>(c)) == error_code) code = static_cast<Code>(c);
  }
  return Status(code, error.empty() ? "job " + std::string(jobStateName(state)) : error);
}

json Job::toJson() const {
  json j = {{"id", id},
            {"kind", kind},
            {"state", jobStateName(state)},
            {"actor", actor},
            {"params", params},
            {"created_at", rfc3339OrNull(created_ms)},
            {"started_at", rfc3339OrNull(started_ms)},
            {"finished_at", rfc3339OrNull(finished_ms)},
            {"progress", {{"done", progress.done}, {"total", progress.total}, {"message", progress.message}}},
            {"result", result},
            {"error", error.empty() ? json(nullptr) : json(error)},
            {"retry_of", retry_of.empty() ? json(nullptr) : json(retry_of)},
            {"interrupted", interrupted},
            {"cancel_requested", cancel_requested},
            {"log_lines", log_lines}};
  if (started_ms > 0 && finished_ms >= started_ms) j["duration_ms"] = finished_ms - started_ms;
  return j;
}

json JobLogLine::toJson() const { return {{"seq", seq}, {"ts", formatRfc3339(ts_ms)}, {"line", line}}; }

std::string Schedule::record() const {
  return json{{"name", name},         {"cron", cron},           {"kind", kind},
              {"params", params},     {"enabled", enabled},     {"last_run", last_run_ms},
              {"next_run", next_run_ms}, {"last_job", last_job}, {"origin", origin},
              {"updated_by", updated_by}, {"updated", updated_ms}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Schedule> Schedule::fromRecord(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Status(Code::kCorruption, "schedule record is not a JSON object");
  try {
    Schedule s;
    s.name = j.value("name", "");
    s.cron = j.value("cron", "");
    s.kind = j.value("kind", "");
    s.params = j.value("params", json::object());
    s.enabled = j.value("enabled", true);
    s.last_run_ms = j.value("last_run", int64_t{0});
    s.next_run_ms = j.value("next_run", int64_t{0});
    s.last_job = j.value("last_job", "");
    s.origin = j.value("origin", "api");
    s.updated_by = j.value("updated_by", "");
    s.updated_ms = j.value("updated", int64_t{0});
    return s;
  } catch (const json::exception& e) {
    return Status(Code::kCorruption, std::string("schedule record: ") + e.what());
  }
}

json Schedule::toJson() const {
  return {{"name", name},
          {"cron", cron},
          {"kind", kind},
          {"params", params},
          {"enabled", enabled},
          {"last_run", rfc3339OrNull(last_run_ms)},
          {"next_run", enabled ? rfc3339OrNull(next_run_ms) : json(nullptr)},
          {"last_job", last_job.empty() ? json(nullptr) : json(last_job)},
          {"origin", origin},
          {"updated_by", updated_by},
          {"updated_at", rfc3339OrNull(updated_ms)}};
}

bool JobFilter::matches(const Job& j) const {
  return (kind.empty() || j.kind == kind) && (actor.empty() || j.actor == actor) && (!state || j.state == *state);
}

// --- store -----------------------------------------------------------------------

Result<std::unique_ptr<JobStore>> JobStore::open(std::shared_ptr<LmdbEnv> env) {
  std::unique_ptr<JobStore> s(new JobStore(std::move(env)));
  WHARF_RETURN_IF_ERROR(s->init());
  return s;
}

Status JobStore::init() {
  for (auto [name, dbi] : {std::pair{"jobs", &jobs_}, {"job_logs", &logs_}, {"schedules", &schedules_}}) {
    auto d = env_->openDb(name);
    if (!d.isOk()) return d.status();
    *dbi = *d;
  }
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  auto c = txn->cursor(jobs_);
  if (c.first()) next_seq_ = ~fromBigEndian64(c.key()) + 1;  // the newest job comes first
  return Status::ok();
}

Result<std::string> JobStore::normalizeId(const std::string& id) {
  auto seq = seqOf(id);
  if (!seq.isOk()) return seq.status();
  return idOf(*seq);
}

Result<std::string> JobStore::create(Job job) {
  uint64_t seq;
  {
    std::lock_guard lock(seq_mu_);
    seq = next_seq_++;
  }
  job.id = idOf(seq);
  WHARF_RETURN_IF_ERROR(writeTxn(*env_, [&](WriteTxn& t) { return t.put(jobs_, jobKey(seq), job.record()); }));
  return job.id;
}

Result<Job> JobStore::get(const std::string& id) const {
  auto seq = seqOf(id);
  if (!seq.isOk()) return seq.status();
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  return getJob(*txn, jobs_, *seq, id);
}

Result<Job> JobStore::update(const std::string& id, const std::function<Status(Job&)>& fn) {
  auto seq = seqOf(id);
  if (!seq.isOk()) return seq.status();
  Job out;
  WHARF_RETURN_IF_ERROR(writeTxn(*env_, [&](WriteTxn& t) -> Status {
    auto j = getJob(t, jobs_, *seq, id);
    if (!j.isOk()) return j.status();
    WHARF_RETURN_IF_ERROR(fn(*j));
    out = std::move(j).value();
    return t.put(jobs_, jobKey(*seq), out.record());
  }));
  return out;
}

Status JobStore::commit(const std::vector<JobWrite>& writes) {
  if (writes.empty()) return Status::ok();
  return writeTxn(*env_, [&](WriteTxn& t) -> Status {
    for (const auto& w : writes) {
      auto seq = seqOf(w.id);
      if (!seq.isOk()) return seq.status();
      auto j = getJob(t, jobs_, *seq, w.id);
      if (!j.isOk()) {
        if (j.status().code() == Code::kNotFound) continue;  // pruned meanwhile
        return j.status();
      }
      for (const auto& l : w.lines) {
        WHARF_RETURN_IF_ERROR(t.put(logs_, logKey(*seq, l.seq),
                                    json{{"ts", l.ts_ms}, {"line", l.line}}.dump(-1, ' ', false,
                                                                                json::error_handler_t::replace)));
        j->log_lines = std::max(j->log_lines, l.seq);
      }
      if (w.fn) w.fn(*j);
      WHARF_RETURN_IF_ERROR(t.put(jobs_, jobKey(*seq), j->record()));
    }
    return Status::ok();
  });
}

std::vector<Job> JobStore::list(const JobFilter& f, size_t limit, const std::string& before, std::string* next) const {
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
    auto seq = seqOf(before);
    if (!seq.isOk()) {
      if (next != nullptr) next->clear();
      return out;
    }
    std::string key = jobKey(*seq);
    ok = c.seek(key);
    if (ok && c.key() == key) ok = c.next();
  }
  for (; ok; ok = c.next()) {
    auto j = Job::fromRecord(c.value());
    if (!j.isOk() || !f.matches(*j)) continue;
    if (out.size() == limit) {
      more = out.back().id;
      break;
    }
    out.push_back(std::move(j).value());
  }
  if (next != nullptr) *next = more;
  return out;
}

std::vector<Job> JobStore::unfinished() const {
  std::vector<Job> out;
  auto txn = env_->read();
  if (!txn.isOk()) return out;
  auto c = txn->cursor(jobs_);
  for (bool ok = c.first(); ok; ok = c.next()) {
    auto j = Job::fromRecord(c.value());
    if (j.isOk() && !jobFinished(j->state)) out.push_back(std::move(j).value());
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<JobLogLine> JobStore::logs(const std::string& id, uint64_t after, size_t limit) const {
  std::vector<JobLogLine> out;
  auto seq = seqOf(id);
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

Result<size_t> JobStore::prune(int64_t finished_before_ms) {
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

Result<Schedule> JobStore::schedule(const std::string& name) const {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  if (!txn->get(schedules_, name, &v).isOk()) return Status(Code::kNotFound, "no schedule " + name);
  return Schedule::fromRecord(v);
}

std::vector<Schedule> JobStore::schedules() const {
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

Status JobStore::putSchedule(const Schedule& s) {
  return writeTxn(*env_, [&](WriteTxn& t) { return t.put(schedules_, s.name, s.record()); });
}

Status JobStore::deleteSchedule(const std::string& name) {
  return writeTxn(*env_, [&](WriteTxn& t) -> Status {
    Status st = t.del(schedules_, name);
    if (st.code() == Code::kNotFound) return Status(Code::kNotFound, "no schedule " + name);
    return st;
  });
}

Result<Schedule> JobStore::updateSchedule(const std::string& name, const std::function<Status(Schedule&)>& fn) {
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

}  // namespace wharf
