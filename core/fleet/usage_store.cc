#include "core/fleet/usage_store.h"

#include <future>

namespace wharf {

void addCounters(RepoCounters& to, const RepoCounters& more) {
  for (auto f : kRepoCounterFields) to.*f += more.*f;
}

RepoCounters counterDelta(const RepoCounters& now, const RepoCounters& before) {
  RepoCounters d;
  for (auto f : kRepoCounterFields) d.*f = now.*f > before.*f ? now.*f - before.*f : 0;
  return d;
}

void UsageTotals::add(const UsageTotals& o) {
  addCounters(repos, o.repos);
  edge.evictions += o.edge.evictions;
  edge.evicted_bytes += o.edge.evicted_bytes;
  edge.stale_serves += o.edge.stale_serves;
  edge.scrub_checked += o.edge.scrub_checked;
  edge.scrub_corrupt += o.edge.scrub_corrupt;
  for (const auto& [kind, n] : o.edge.errors) edge.errors[kind] += n;
}

const char* edgeState(const EdgeStatus* status, int64_t now_ms, int64_t unreachable_after_ms) {
  if (status == nullptr || status->received_ms == 0) return "never";
  return now_ms - status->received_ms <= unreachable_after_ms ? "online" : "unreachable";
}

Result<IngestResult> ingestAndWait(UsageStore& store, const std::string& edge, EdgeReport report) {
  auto promise = std::make_shared<std::promise<Result<IngestResult>>>();
  auto future = promise->get_future();
  Status st = store.ingest(edge, std::move(report), [promise](Result<IngestResult> r) { promise->set_value(std::move(r)); });
  if (!st.isOk()) return st;
  return future.get();
}

int64_t usageBucketMs(UsageResolution r) { return r == UsageResolution::kHour ? 3'600'000 : 86'400'000; }

int64_t usageBucketStart(UsageResolution r, int64_t t_ms) {
  int64_t b = usageBucketMs(r);
  int64_t q = t_ms / b;
  if (t_ms < 0 && q * b != t_ms) --q;  // floor, also before 1970
  return q * b;
}

}  // namespace wharf
