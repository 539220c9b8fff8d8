#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include "edge/cache/cache_index.h"
#include "edge/cache/fill_coordinator.h"
#include "edge/cache/scrubber.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/digest.h"
#include "tests/support/oci_layout.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace scrubber_test {

using namespace wharf;
using namespace wharf::test;

namespace {

struct Cache {
  TempDir dir;
  FakeClock clock;
  std::unique_ptr<FillCoordinator> fills;
  std::unique_ptr<CacheIndex> index;

  Cache() {
    auto f = FillCoordinator::open(dir / "cache");
    REQUIRE(f.isOk());
    fills = std::move(f).value();
    auto i = CacheIndex::open(dir / "index.lmdb", *fills, dir / "manifests", clock, CacheBudget{});
    REQUIRE(i.isOk());
    index = std::move(i).value();
  }
  std::string commit(const std::string& data) {
    Digest d = digestOf(data);
    REQUIRE(writeFileAtomic(fills->blobPath(d), data).isOk());
    if (!index->committed(d.str(), data.size())) {
      // A large blob is kept at its second miss (the cache policy's admission).
      REQUIRE(writeFileAtomic(fills->blobPath(d), data).isOk());
      REQUIRE(index->committed(d.str(), data.size()));
    }
    return d.str();
  }
  std::string path(const std::string& digest) {
    auto d = Digest::parse(digest);
    REQUIRE(d.isOk());
    return fills->blobPath(*d);
  }
  bool fileExists(const std::string& digest) { return ::access(path(digest).c_str(), F_OK) == 0; }
  // Rot: overwrite a few bytes of the committed file in place (same size).
  void corrupt(const std::string& digest, uint64_t offset) {
    Fd fd(::open(path(digest).c_str(), O_WRONLY | O_CLOEXEC));
    REQUIRE(fd.valid());
    REQUIRE(::pwrite(fd.get(), "\xde\xad\xbe\xef", 4, static_cast<off_t>(offset)) == 4);
  }
};

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("scrubber: a pass drops the corrupt blob and only it", "[edge][scrubber]") {
  Cache c;
  std::string good = c.commit(randomData(300'000, 1));
  std::string bad = c.commit(randomData(300'000, 2));
  c.index->link("lib/app", bad);
  c.corrupt(bad, 150'000);
  std::vector<std::pair<std::string, std::vector<std::string>>> handed;  // to fetch again
  Scrubber scrub(*c.index, *c.fills,
                 Scrubber::Options{1ull << 30, 3600'000, {},
                                   [&](const std::string& d, const std::vector<std::string>& repos) {
                                     handed.emplace_back(d, repos);
                                   }});

  CHECK(scrub.scrubOnce() == 1);
  REQUIRE(handed.size() == 1);
  CHECK(handed[0].first == bad);
  CHECK(handed[0].second == std::vector<std::string>{"lib/app"});
  CHECK_FALSE(c.fileExists(bad));
  CHECK_FALSE(c.index->blob(bad));
  CHECK_FALSE(c.index->linked("lib/app", bad));
  CHECK(c.fileExists(good));
  CHECK(c.index->blob(good));
  CHECK(c.index->used() == 300'000);

  // A second pass finds nothing more.
  CHECK(scrub.scrubOnce() == 0);
  CHECK(c.fileExists(good));
  CHECK(c.index->blobCount() == 1);
}

TEST_CASE("scrubber: a truncated blob is corrupt; a blob evicted meanwhile is not", "[edge][scrubber]") {
  Cache c;
  std::string good = c.commit(randomData(1000, 3));
  std::string truncated = c.commit(randomData(1000, 4));
  std::string evicted = c.commit(randomData(1000, 5));
  REQUIRE(::truncate(c.path(truncated).c_str(), 500) == 0);
  REQUIRE(::unlink(c.path(evicted).c_str()) == 0);  // its file went; its entry is still there
  Scrubber scrub(*c.index, *c.fills, Scrubber::Options{1ull << 30, 3600'000, {}, {}});

  CHECK(scrub.scrubOnce() == 1);
  CHECK_FALSE(c.index->blob(truncated));
  CHECK(c.index->blob(good));
  CHECK(c.index->blob(evicted));  // not the scrub's business
}

TEST_CASE("scrubber: a pass reads at most rate_bytes_per_s", "[edge][scrubber]") {
  Cache c;
  // 4 MiB at 4 MiB/s: about a second, however fast the disk.
  c.commit(randomData(2 << 20, 6));
  c.commit(randomData(2 << 20, 7));
  Scrubber scrub(*c.index, *c.fills, Scrubber::Options{4ull << 20, 3600'000, {}, {}});
  auto start = std::chrono::steady_clock::now();
  CHECK(scrub.scrubOnce() == 0);
  double took = secondsSince(start);
  INFO("the pass took " << took << " s");
  CHECK(took >= 0.8);
  CHECK(took < 10.0);  // generous: a shared machine
  CHECK(c.index->blobCount() == 2);
}

TEST_CASE("scrubber: stop() during a slow pass returns promptly", "[edge][scrubber]") {
  Cache c;
  // 8 MiB at 1 MiB/s: an 8 s pass.
  std::string blob = c.commit(randomData(8 << 20, 8));
  Counter& scrubbed = MetricsRegistry::global().counter("wharf_edge_scrub_bytes_total", "Bytes re-hashed by the scrub.");
  uint64_t before = scrubbed.value();
  Scrubber scrub(*c.index, *c.fills, Scrubber::Options{1ull << 20, 3600'000, {}, {}});
  scrub.start();
  // The pass is under way (it has read something) before we stop it.
  REQUIRE(waitFor([&] { return scrubbed.value() > before; }, 5000));
  auto start = std::chrono::steady_clock::now();
  scrub.stop();
  double took = secondsSince(start);
  INFO("stop() took " << took << " s");
  CHECK(took < 2.0);
  CHECK(scrubbed.value() - before < (8ull << 20));  // the pass was cut short
  // An interrupted pass drops nothing.
  CHECK(c.index->blob(blob));
  CHECK(c.fileExists(blob));
}

TEST_CASE("scrubber: stop() of a scrubber between passes returns promptly", "[edge][scrubber]") {
  Cache c;
  c.commit(randomData(1000, 9));
  Counter& checked = MetricsRegistry::global().counter("wharf_edge_scrub_checked_total", "Cached blobs re-hashed.");
  uint64_t before = checked.value();
  Scrubber scrub(*c.index, *c.fills, Scrubber::Options{1ull << 30, 3600'000, {}, {}});
  scrub.start();
  REQUIRE(waitFor([&] { return checked.value() > before; }, 5000));  // first pass done; now waiting an hour
  auto start = std::chrono::steady_clock::now();
  scrub.stop();
  CHECK(secondsSince(start) < 2.0);
}

}  // namespace scrubber_test
