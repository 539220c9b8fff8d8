#include "shared/fleet/edge_report.h"

#include "shared/oci/names.h"

namespace wharf {
namespace {

using nlohmann::json;

uint64_t sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

uint64_t u64(JsonBody& b, std::string_view key) {
  return static_cast<uint64_t>(b.integer(key, {.min = 0}).value_or(0));
}

bool validEpoch(const std::string& e) {
  if (e.empty() || e.size() > 64) return false;
  for (char c : e) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

}  // namespace

RepoCounters RepoCounters::minus(const RepoCounters& earlier) const {
  RepoCounters out;
  for (const auto& f : kRepoCounterFields) out.*f.member = sub(this->*f.member, earlier.*f.member);
  return out;
}

void RepoCounters::add(const RepoCounters& other) {
  for (const auto& f : kRepoCounterFields) this->*f.member += other.*f.member;
}

bool RepoCounters::empty() const {
  for (const auto& f : kRepoCounterFields) {
    if (this->*f.member != 0) return false;
  }
  return true;
}

int64_t RepoCounters::savedBytes() const {
  return static_cast<int64_t>(served_bytes) - static_cast<int64_t>(fetched_bytes) -
         static_cast<int64_t>(prefetched_bytes);
}

json RepoCounters::toJson() const {
  json j = json::object();
  for (const auto& f : kRepoCounterFields) j[f.name] = this->*f.member;
  return j;
}

RepoCounters RepoCounters::fromJson(JsonBody& body) {
  RepoCounters c;
  for (const auto& f : kRepoCounterFields) c.*f.member = u64(body, f.name);
  return c;
}

EdgeCounters EdgeCounters::minus(const EdgeCounters& earlier) const {
  EdgeCounters out = *this;
  for (const auto& f : kEdgeCounterFields) out.*f.member = sub(this->*f.member, earlier.*f.member);
  for (auto& [kind, n] : out.errors) {
    auto it = earlier.errors.find(kind);
    if (it != earlier.errors.end()) n = sub(n, it->second);
  }
  return out;
}

void EdgeCounters::add(const EdgeCounters& other) {
  for (const auto& f : kEdgeCounterFields) this->*f.member += other.*f.member;
  for (const auto& [kind, n] : other.errors) errors[kind] += n;
}

json EdgeCounters::toJson() const {
  json j = json::object();
  for (const auto& f : kEdgeCounterFields) j[f.name] = this->*f.member;
  j["errors"] = errors;
  return j;
}

EdgeCounters EdgeCounters::fromJson(JsonBody& body) {
  EdgeCounters c;
  for (const auto& f : kEdgeCounterFields) c.*f.member = u64(body, f.name);
  if (auto errors = body.rawObject("errors")) {
    if (errors->size() > EdgeReport::kMaxErrorKinds) {
      body.fail("errors", "at most " + std::to_string(EdgeReport::kMaxErrorKinds) + " kinds");
      return c;
    }
    for (auto it = errors->begin(); it != errors->end(); ++it) {
      if (!it->is_number_unsigned() || it.key().empty() || it.key().size() > 64) {
        body.fail("errors", "expected {kind: count} with kinds of 1 to 64 characters and counts >= 0");
        return c;
      }
      c.errors[it.key()] = it->get<uint64_t>();
    }
  }
  return c;
}

json EdgeReport::toJson() const {
  json r = json::object();
  for (const auto& [name, c] : repos) r[name] = c.toJson();
  return {{"seq", seq},
          {"epoch", epoch},
          {"time_ms", time_ms},
          {"version", version},
          {"uptime_s", uptime_s},
          {"final", final},
          {"draining", draining},
          {"cache",
           {{"used", cache_used},
            {"budget", cache_budget},
            {"blobs", cache_blobs},
            {"pinned_bytes", pinned_bytes},
            {"fills_in_flight", fills_in_flight}}},
          {"counters", counters.toJson()},
          {"repos", r}};
}

Result<EdgeReport> EdgeReport::fromJson(std::string_view text) {
  auto parsed = JsonBody::parse(text);
  if (!parsed.isOk()) return parsed.status();
  JsonBody& b = *parsed;
  EdgeReport r;
  r.seq = static_cast<uint64_t>(b.integer("seq", {.required = true, .min = 1}).value_or(0));
  r.epoch = b.string("epoch", {.required = true, .max = 64, .non_empty = true}).value_or("");
  if (b.status().isOk() && !validEpoch(r.epoch)) b.fail("epoch", "expected 1 to 64 characters of [A-Za-z0-9_-]");
  r.time_ms = b.integer("time_ms", {.min = 0}).value_or(0);
  r.version = b.string("version", {.max = 64}).value_or("");
  r.uptime_s = b.integer("uptime_s", {.min = 0}).value_or(0);
  r.final = b.boolean("final").value_or(false);
  r.draining = b.boolean("draining").value_or(false);
  if (auto cache = b.object("cache")) {
    r.cache_used = u64(*cache, "used");
    r.cache_budget = u64(*cache, "budget");
    r.cache_blobs = u64(*cache, "blobs");
    r.pinned_bytes = u64(*cache, "pinned_bytes");
    r.fills_in_flight = u64(*cache, "fills_in_flight");
    WHARF_RETURN_IF_ERROR(cache->finish());
  }
  if (auto counters = b.object("counters")) {
    r.counters = EdgeCounters::fromJson(*counters);
    WHARF_RETURN_IF_ERROR(counters->finish());
  }
  if (auto repos = b.rawObject("repos")) {
    if (repos->size() > kMaxRepos) {
      return Status(Code::kInvalidArgument, "repos: at most " + std::to_string(kMaxRepos) + " repositories");
    }
    for (auto it = repos->begin(); it != repos->end(); ++it) {
      if (Status st = validateRepositoryName(it.key()); !st.isOk()) {
        return Status(Code::kInvalidArgument, "repos: " + st.message());
      }
      if (!it->is_object()) return Status(Code::kInvalidArgument, "repos." + it.key() + ": expected an object");
      JsonBody repo(*it, "repos." + it.key());
      r.repos[it.key()] = RepoCounters::fromJson(repo);
      WHARF_RETURN_IF_ERROR(repo.finish());
    }
  }
  WHARF_RETURN_IF_ERROR(b.finish());
  return r;
}

}  // namespace wharf
