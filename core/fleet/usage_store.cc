#include "core/fleet/usage_store.h"

#include <future>

namespace wharf {

void UsageTotals::add(const UsageTotals& o) {
  repos.add(o.repos);
  edge.add(o.edge);
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
