#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "edge/agent/pull_history.h"
#include "shared/base/fs.h"
#include "shared/fleet/prefetch_policy.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace prefetch_policy_test {

using namespace wharf;
using nlohmann::json;

namespace {
constexpr int64_t kDay = 86'400'000;
constexpr int64_t kMidnight = 1'700'006'400'000;  // 2023-11-15T00:00:00Z
int64_t at(int h, int m) { return kMidnight + (h * 60 + m) * 60'000ll; }
}  // namespace

TEST_CASE("prefetch policy: tag globs", "[fleet][prefetch]") {
  CHECK(tagGlobMatches("*", "anything"));
  CHECK(tagGlobMatches("v*", "v1.2"));
  CHECK_FALSE(tagGlobMatches("v*", "latest"));
  CHECK(tagGlobMatches("*-prod", "2024-prod"));
  CHECK_FALSE(tagGlobMatches("*-prod", "2024-prod-x"));
  CHECK(tagGlobMatches("v*-*", "v1-rc"));
  CHECK(tagGlobMatches("latest", "latest"));
  CHECK_FALSE(tagGlobMatches("latest", "latest2"));
  CHECK(tagGlobMatches("a*b*c", "aXbYbZc"));
  CHECK_FALSE(tagGlobMatches("a*b*c", "aXbYbZ"));
}

TEST_CASE("prefetch policy: defaults, rules and the follow-the-previous-tag rule", "[fleet][prefetch]") {
  auto p = PrefetchPolicy::fromJson(json());
  REQUIRE(p.isOk());
  CHECK(p->recent_days == 1);
  CHECK(p->min_pulls == 3);
  CHECK(p->rate == PrefetchPolicy::kDefaultRate);
  CHECK_FALSE(p->window);
  int64_t now = at(12, 0);
  CHECK_FALSE(p->wants("acme/api", "v2", 0, 0, now));                   // never pulled here
  CHECK(p->wants("acme/api", "latest", now - 20 * 3'600'000, 3, now));  // pulled 3 times, lately
  CHECK_FALSE(p->wants("acme/api", "latest", now - 20 * 3'600'000, 2, now));  // not often enough
  CHECK_FALSE(p->wants("acme/api", "latest", now - 2 * kDay, 9, now));        // too long ago

  p = PrefetchPolicy::fromJson({{"rules", {{{"repository", "acme/*"}, {"tag", "v*"}}}}, {"min_pulls", 0}});
  REQUIRE(p.isOk());
  CHECK(p->wants("acme/api", "v3", 0, 0, now));
  CHECK_FALSE(p->wants("acme/api", "latest", 0, 0, now));
  CHECK_FALSE(p->wants("other/api", "v3", 0, 0, now));
  CHECK_FALSE(p->wants("acme/api", "latest", now - 1000, 50, now));  // the pull rule off
  p = PrefetchPolicy::fromJson({{"recent_days", 3}, {"min_pulls", 1}});
  REQUIRE(p.isOk());
  CHECK(p->wants("acme/api", "latest", now - 2 * kDay, 1, now));
}

TEST_CASE("prefetch policy: the window, across midnight and not", "[fleet][prefetch]") {
  auto night = PrefetchPolicy::fromJson({{"window", "20:00-06:00"}});
  REQUIRE(night.isOk());
  CHECK(night->waitForWindow(at(21, 0)) == 0);
  CHECK(night->waitForWindow(at(3, 0)) == 0);
  CHECK(night->waitForWindow(at(20, 0)) == 0);
  CHECK(night->waitForWindow(at(6, 0)) == 14 * 3'600'000);  // the end is excluded
  CHECK(night->waitForWindow(at(12, 30)) == 7 * 3'600'000 + 30 * 60'000);
  auto day = PrefetchPolicy::fromJson({{"window", "09:15-10:00"}});
  REQUIRE(day.isOk());
  CHECK(day->waitForWindow(at(9, 30)) == 0);
  CHECK(day->waitForWindow(at(10, 0)) == kDay - 45 * 60'000);
  CHECK(day->waitForWindow(at(9, 0)) == 15 * 60'000);
}

TEST_CASE("prefetch policy: platforms", "[fleet][prefetch]") {
  auto p = PrefetchPolicy::fromJson({{"platforms", {"linux/amd64", "linux/arm/v7"}}});
  REQUIRE(p.isOk());
  CHECK(p->wantsPlatform("linux", "amd64", ""));
  CHECK(p->wantsPlatform("linux", "arm", "v7"));
  CHECK_FALSE(p->wantsPlatform("linux", "arm", "v6"));
  CHECK_FALSE(p->wantsPlatform("unknown", "unknown", ""));  // attestation manifests
  CHECK(PrefetchPolicy::fromJson(json::object())->wantsPlatform("linux", "amd64", ""));
}

TEST_CASE("prefetch policy: bad settings name their field", "[fleet][prefetch]") {
  struct Bad {
    json j;
    std::string field;
  };
  for (const auto& b : std::vector<Bad>{{json::array(), "prefetch"},
                                        {{{"rules", "acme/*"}}, "rules"},
                                        {{{"rules", {{{"tag", "v*"}}}}}, "repository"},
                                        {{{"rules", {{{"repository", "Acme/*"}}}}}, "repository"},
                                        {{{"rules", {{{"repository", "acme/*"}, {"tag", "v/1"}}}}}, "tag"},
                                        {{{"rules", {{{"repository", "a"}, {"colour", "x"}}}}}, "colour"},
                                        {{{"recent_days", -1}}, "recent_days"},
                                        {{{"recent_days", 400}}, "recent_days"},
                                        {{{"rate", "fast"}}, "rate"},
                                        {{{"rate", "10"}}, "rate"},
                                        {{{"window", "20:00"}}, "window"},
                                        {{{"window", "25:00-06:00"}}, "window"},
                                        {{{"window", "06:00-06:00"}}, "window"},
                                        {{{"platforms", {"amd64"}}}, "platforms"},
                                        {{{"platforms", {"linux/arm/v7/x"}}}, "platforms"},
                                        {{{"speed", 1}}, "speed"}}) {
    INFO(b.j.dump());
    auto p = PrefetchPolicy::fromJson(b.j);
    REQUIRE_FALSE(p.isOk());
    CHECK(p.status().code() == Code::kInvalidArgument);
    CHECK(p.status().message().find(b.field) != std::string::npos);
  }
  CHECK(PrefetchPolicy::fromJson({{"rate", "512k"}})->rate == 512u << 10);
}

TEST_CASE("pull history: pulls per tag since it moved, across a restart, bounded, an unreadable file starts afresh",
          "[fleet][prefetch]") {
  test::TempDir dir;
  FakeClock clock(at(12, 0));
  std::string path = dir / "pulls.json";
  {
    auto h = PullHistory::open(path, clock);
    REQUIRE(h.isOk());
    CHECK((*h)->get("acme/api", "latest").count == 0);
    (*h)->pulled("acme/api", "latest");
    clock.advance(30'000);
    (*h)->pulled("acme/api", "latest");
    (*h)->pulled("acme/api", "v1");
    CHECK((*h)->get("acme/api", "latest").count == 2);
    CHECK((*h)->get("acme/api", "latest").last_ms == at(12, 0) + 30'000);
    CHECK((*h)->get("acme/api", "v1").count == 1);
    REQUIRE((*h)->save().isOk());
  }
  auto again = PullHistory::open(path, clock);
  REQUIRE(again.isOk());
  CHECK((*again)->get("acme/api", "latest").count == 2);
  // The tag moved: the pulls so far were of the previous image; counting starts again.
  auto before = (*again)->moved("acme/api", "latest");
  CHECK(before.count == 2);
  CHECK(before.last_ms == at(12, 0) + 30'000);
  CHECK((*again)->get("acme/api", "latest").count == 0);
  CHECK((*again)->moved("acme/api", "never").count == 0);
  for (size_t i = 0; i < PullHistory::kMaxTags + 5; ++i) {
    clock.advance(1);
    (*again)->pulled("r/" + std::to_string(i), "latest");
  }
  CHECK((*again)->get("acme/api", "v1").count == 0);  // the oldest went first
  CHECK((*again)->get("r/" + std::to_string(PullHistory::kMaxTags + 4), "latest").count == 1);
  REQUIRE(writeFileDurable(path, "not json").isOk());
  auto fresh = PullHistory::open(path, clock);
  REQUIRE(fresh.isOk());
  CHECK((*fresh)->get("acme/api", "latest").count == 0);
  REQUIRE(writeFileDurable(path, R"({"acme/api": 12345, "acme/api:latest": [5, 4]})").isOk());  // an older layout
  auto mixed = PullHistory::open(path, clock);
  REQUIRE(mixed.isOk());
  CHECK((*mixed)->get("acme/api", "latest").count == 4);
}

}  // namespace prefetch_policy_test
