#include <catch2/catch.hpp>

#include <algorithm>

#include "edge/cache/eviction.h"

using namespace wharf;

namespace {
bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }
}  // namespace

TEST_CASE("eviction: nothing goes below the high watermark", "[edge][eviction]") {
  CacheBudget budget{1000, 0.9, 0.8};
  std::vector<CachedBlob> blobs = {{"a", 500, 0, 0, 0, false, ""}, {"b", 400, 0, 0, 0, false, ""}};
  CHECK(EvictionPolicy::choose(blobs, 900, budget, 1000).empty());
}

TEST_CASE("eviction: shared layers outlive single-image ones, hot outlives cold", "[edge][eviction]") {
  CacheBudget budget{1000, 0.9, 0.6};
  int64_t now = 10 * 3600 * 1000;
  std::vector<CachedBlob> blobs = {
      {"shared-base", 300, now - 3600 * 1000, 2, 3, false, ""},  // used by three images
      {"hot-single", 300, now, 50, 1, false, ""},                // one image, but hot
      {"cold-single", 300, now - 8 * 3600 * 1000, 1, 1, false, ""},
      {"orphan", 100, now, 0, 0, false, ""},                     // no cached image uses it
  };
  auto victims = EvictionPolicy::choose(blobs, 1000, budget, now);
  // 1000 -> at most 600: the orphan and the cold single go first; that is enough.
  CHECK(victims == std::vector<std::string>{"orphan", "cold-single"});
  CHECK_FALSE(contains(victims, "shared-base"));
  CHECK_FALSE(contains(victims, "hot-single"));
}

TEST_CASE("eviction: pinned blobs are never chosen, even when the budget cannot be met", "[edge][eviction]") {
  CacheBudget budget{1000, 0.9, 0.5};
  std::vector<CachedBlob> blobs = {{"pinned", 900, 0, 0, 0, true, ""}, {"other", 100, 0, 0, 0, false, ""}};
  auto victims = EvictionPolicy::choose(blobs, 1000, budget, 1000);
  CHECK(victims == std::vector<std::string>{"other"});
}
