#include "edge/cache/scrubber.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <vector>

#include "shared/base/clock.h"
#include "shared/base/log.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/digest.h"

namespace wharf {
namespace {

struct ScrubMetrics {
  Counter& checked = MetricsRegistry::global().counter("wharf_edge_scrub_checked_total", "Cached blobs re-hashed.");
  Counter& bytes = MetricsRegistry::global().counter("wharf_edge_scrub_bytes_total", "Bytes re-hashed by the scrub.");
  Counter& corrupt = MetricsRegistry::global().counter("wharf_edge_scrub_corrupt_total",
                                                       "Cached blobs that no longer matched their digest (dropped).");
  static ScrubMetrics& get() {
    static ScrubMetrics m;
    return m;
  }
};

}  // namespace

void Scrubber::start() {
  thread_ = std::thread([this] { run(); });
}

void Scrubber::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Scrubber::waitFor(int64_t ms) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void Scrubber::run() {
  while (true) {
    int64_t started = RealClock::instance().nowMillis();
    scrubOnce();
    int64_t elapsed = RealClock::instance().nowMillis() - started;
    if (!waitFor(std::max<int64_t>(options_.interval_ms - elapsed, 1000))) return;
  }
}

size_t Scrubber::scrubOnce() {
  size_t corrupt = 0, checked = 0;
  uint64_t bytes_total = 0;
  std::vector<char> buf(1 << 20);
  int64_t pass_start = RealClock::instance().nowMillis();
  for (const auto& d : index_.blobDigests()) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    auto digest = Digest::parse(d);
    if (!digest.isOk()) continue;
    Fd fd(::open(fills_.blobPath(*digest).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) continue;  // evicted meanwhile
    Hasher h(digest->algorithm());
    bool read_ok = true;
    while (true) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        read_ok = false;
        break;
      }
      if (n == 0) break;
      h.update(std::string_view(buf.data(), static_cast<size_t>(n)));
      bytes_total += static_cast<uint64_t>(n);
      ScrubMetrics::get().bytes.inc(static_cast<uint64_t>(n));
      // The rate bound: sleep off any lead over rate_bytes_per_s.
      int64_t due_ms = static_cast<int64_t>(bytes_total * 1000 / std::max<uint64_t>(options_.rate_bytes_per_s, 1));
      int64_t ahead = due_ms - (RealClock::instance().nowMillis() - pass_start);
      if (ahead > 0 && !waitFor(ahead)) return corrupt;
    }
    ++checked;
    ScrubMetrics::get().checked.inc();
    if (read_ok && h.digest() == *digest) continue;
    // Unreadable or not what it claims: drop it; the next pull (or on_corrupt) fetches it again.
    std::vector<std::string> repos = index_.linkedRepositories(d);
    if (index_.drop(d)) {
      if (options_.on_corrupt) options_.on_corrupt(d, repos);
      ++corrupt;
      ScrubMetrics::get().corrupt.inc();
      logWarn("scrub dropped a corrupt cached blob", {{"digest", d}, {"readable", read_ok}});
    }
  }
  if (checked > 0) logInfo("scrub pass done", {{"blobs", checked}, {"bytes", bytes_total}, {"corrupt", corrupt}});
  if (options_.on_pass) options_.on_pass(checked, corrupt);
  return corrupt;
}

}  // namespace wharf
