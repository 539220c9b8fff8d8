#include <catch2/catch.hpp>

#include "shared/metrics/metrics.h"

// Each file's own names: the test binaries are unity builds.
namespace metrics_test {

using namespace wharf;

TEST_CASE("metrics: counters, gauges and histograms render in the text format", "[metrics]") {
  MetricsRegistry r;
  r.counter("test_requests_total", "Requests.", "code=\"200\"").inc(3);
  r.counter("test_requests_total", "Requests.", "code=\"404\"").inc();
  r.gauge("test_open", "Open things.").set(7);
  auto& h = r.histogram("test_seconds", "Durations.");
  h.observe(0.0001);
  h.observe(0.2);
  h.observe(100);
  std::string out = r.render();
  CHECK(out.find("# TYPE test_requests_total counter") != std::string::npos);
  CHECK(out.find("test_requests_total{code=\"200\"} 3") != std::string::npos);
  CHECK(out.find("test_requests_total{code=\"404\"} 1") != std::string::npos);
  CHECK(out.find("test_open 7") != std::string::npos);
  CHECK(out.find("test_seconds_bucket{le=\"0.0005\"} 1") != std::string::npos);
  CHECK(out.find("test_seconds_bucket{le=\"0.25\"} 2") != std::string::npos);
  CHECK(out.find("test_seconds_bucket{le=\"+Inf\"} 3") != std::string::npos);
  CHECK(out.find("test_seconds_count 3") != std::string::npos);
  // The same name and labels give the same counter.
  CHECK(&r.counter("test_requests_total", "Requests.", "code=\"200\"") ==
        &r.counter("test_requests_total", "Requests.", "code=\"200\""));
}

}  // namespace metrics_test
