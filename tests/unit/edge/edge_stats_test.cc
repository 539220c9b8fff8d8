#include <catch2/catch.hpp>

#include "edge/agent/edge_stats.h"
#include "shared/base/fs.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace edge_stats_test {

using namespace wharf;
using namespace wharf::test;

TEST_CASE("edge stats: cumulative counters, seq saved before each report, kept across reopen", "[edge][stats]") {
  TempDir dir;
  std::string path = dir / "counters.json";
  auto s = EdgeStats::open(path);
  REQUIRE(s.isOk());
  std::string epoch = (*s)->epoch();
  (*s)->served("team/a", 100, true);
  (*s)->served("team/a", 50, false);
  (*s)->fetched("team/a", 50, false);
  (*s)->evicted(7);
  (*s)->error("upstream");
  auto r1 = (*s)->nextReport();
  REQUIRE(r1.isOk());
  CHECK(r1->epoch == epoch);
  CHECK(r1->repos["team/a"].served_bytes == 150);
  CHECK(r1->repos["team/a"].hit_bytes == 100);
  CHECK(r1->repos["team/a"].misses == 1);
  CHECK(r1->counters.evicted_bytes == 7);
  CHECK(r1->counters.errors["upstream"] == 1);
  // Counted after the report, saved by save(), then a "crash": the next report is
  // numbered above the last one sent and carries everything saved.
  (*s)->served("team/b", 10, true);
  REQUIRE((*s)->save().isOk());
  s->reset();
  auto again = EdgeStats::open(path);
  REQUIRE(again.isOk());
  CHECK((*again)->epoch() == epoch);
  auto r2 = (*again)->nextReport();
  REQUIRE(r2.isOk());
  CHECK(r2->seq > r1->seq);
  CHECK(r2->repos["team/a"].served_bytes == 150);
  CHECK(r2->repos["team/b"].served_bytes == 10);
  // The saved state reads as a report (the core's reader checks it).
  std::string text;
  REQUIRE(readFile(path, &text).isOk());
  CHECK(EdgeReport::fromJson(text).isOk());
  // Unreadable state: a new epoch, counting from zero.
  REQUIRE(writeFileAtomic(path, "{not json").isOk());
  auto fresh = EdgeStats::open(path);
  REQUIRE(fresh.isOk());
  CHECK((*fresh)->epoch() != epoch);
  CHECK((*fresh)->totals().served_bytes == 0);
}

TEST_CASE("edge stats: repositories past the report's limit share one line", "[edge][stats]") {
  TempDir dir;
  auto s = EdgeStats::open(dir / "counters.json");
  REQUIRE(s.isOk());
  for (size_t i = 0; i < EdgeReport::kMaxRepos + 10; ++i) (*s)->served("r/n" + std::to_string(i), 1, true);
  auto r = (*s)->nextReport();
  REQUIRE(r.isOk());
  CHECK(r->repos.size() <= EdgeReport::kMaxRepos);
  CHECK(r->repos.count(EdgeStats::kOverflowRepository) == 1);
  CHECK((*s)->totals().served_bytes == EdgeReport::kMaxRepos + 10);
  CHECK(EdgeReport::fromJson(r->toJson().dump()).isOk());
}

}  // namespace edge_stats_test
