#include <catch2/catch.hpp>

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edge/cache/cache_index.h"
#include "edge/cache/fill_coordinator.h"
#include "edge/cache/manifest_cache.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "tests/support/oci_layout.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace manifest_cache_test {

using namespace wharf;
using namespace wharf::test;

namespace {

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kTtl = 60'000;
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";

struct Edge {
  TempDir dir;
  FakeClock clock;
  CacheBudget budget;
  std::unique_ptr<FillCoordinator> fills;
  std::unique_ptr<CacheIndex> index;
  std::unique_ptr<ManifestCache> manifests;

  Edge() {
    auto f = FillCoordinator::open(dir / "cache");
    REQUIRE(f.isOk());
    fills = std::move(f).value();
    reopen();
  }
  void reopen() {
    manifests.reset();
    index.reset();
    auto i = CacheIndex::open(dir / "index.lmdb", *fills, dir / "manifests", clock, budget);
    REQUIRE(i.isOk());
    index = std::move(i).value();
    auto m = ManifestCache::open(*index, clock, kTtl);
    REQUIRE(m.isOk());
    manifests = std::move(m).value();
  }
  std::string commit(const std::string& data) {
    Digest d = digestOf(data);
    REQUIRE(writeFileAtomic(fills->blobPath(d), data).isOk());
    index->committed(d.str(), data.size());
    return d.str();
  }
  bool cached(const std::string& digest) {
    auto d = Digest::parse(digest);
    REQUIRE(d.isOk());
    return index->blob(digest).has_value() && ::access(fills->blobPath(*d).c_str(), F_OK) == 0;
  }
  std::string manifestFile(const std::string& digest) {
    auto d = Digest::parse(digest);
    REQUIRE(d.isOk());
    return dir / ("manifests/" + d->hex());
  }
};

nlohmann::json descriptor(const std::string& media_type, const std::string& digest, size_t size) {
  return {{"mediaType", media_type}, {"digest", digest}, {"size", size}};
}

ManifestCache::Entry imageManifest(const std::string& config, const std::vector<std::string>& layers) {
  nlohmann::json j;
  j["schemaVersion"] = 2;
  j["mediaType"] = kOciManifest;
  j["config"] = descriptor("application/vnd.oci.image.config.v1+json", config, 100);
  j["layers"] = nlohmann::json::array();
  for (const auto& l : layers) j["layers"].push_back(descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l, 100));
  std::string body = j.dump();
  return ManifestCache::Entry{digestOf(body).str(), kOciManifest, body};
}

ManifestCache::Entry indexManifest(const std::vector<std::string>& children) {
  nlohmann::json j;
  j["schemaVersion"] = 2;
  j["mediaType"] = kOciIndex;
  j["manifests"] = nlohmann::json::array();
  for (const auto& c : children) j["manifests"].push_back(descriptor(kOciManifest, c, 100));
  std::string body = j.dump();
  return ManifestCache::Entry{digestOf(body).str(), kOciIndex, body};
}

}  // namespace

TEST_CASE("manifest cache: store refuses a body that does not hash to its digest", "[edge][manifest_cache]") {
  Edge e;
  auto m = imageManifest(digestOf("c").str(), {digestOf("l").str()});
  ManifestCache::Entry wrong = m;
  wrong.digest = digestOf("something else").str();
  Status st = e.manifests->store("lib/app", "v1", wrong);
  CHECK(st.code() == Code::kCorruption);
  CHECK_FALSE(e.manifests->byDigest("lib/app", wrong.digest));
  CHECK_FALSE(e.index->linked("lib/app", wrong.digest));
  CHECK_FALSE(e.index->tag("lib/app", "v1"));
  bool fresh = true;
  CHECK_FALSE(e.manifests->byTag("lib/app", "v1", &fresh));

  ManifestCache::Entry bad_digest = m;
  bad_digest.digest = "sha256:nothex";
  CHECK_FALSE(e.manifests->store("lib/app", "v1", bad_digest).isOk());
  CHECK_FALSE(e.index->tag("lib/app", "v1"));

  // The right one is accepted.
  REQUIRE(e.manifests->store("lib/app", "v1", m).isOk());
  CHECK(e.manifests->byDigest("lib/app", m.digest));
}

TEST_CASE("manifest cache: byDigest serves only repositories the upstream served it for", "[edge][manifest_cache]") {
  Edge e;
  auto m = imageManifest(digestOf("c").str(), {digestOf("l").str()});
  REQUIRE(e.manifests->store("lib/app", "", m).isOk());
  auto got = e.manifests->byDigest("lib/app", m.digest);
  REQUIRE(got);
  CHECK(got->digest == m.digest);
  CHECK(got->body == m.body);
  CHECK(got->media_type == kOciManifest);
  CHECK_FALSE(e.manifests->byDigest("other/app", m.digest));
  CHECK_FALSE(e.manifests->byDigest("lib/app", digestOf("unknown").str()));
  // No tag was given: none is recorded.
  bool fresh = false;
  CHECK_FALSE(e.manifests->byTag("lib/app", "", &fresh));

  // Once the upstream serves it for other/app too, it is served there.
  REQUIRE(e.manifests->store("other/app", "", m).isOk());
  CHECK(e.manifests->byDigest("other/app", m.digest));

  // Links survive a restart (after a flush).
  REQUIRE(e.index->flush().isOk());
  e.reopen();
  CHECK(e.manifests->byDigest("lib/app", m.digest));
  CHECK(e.manifests->byDigest("other/app", m.digest));
  CHECK_FALSE(e.manifests->byDigest("third/app", m.digest));
}

TEST_CASE("manifest cache: a tag is fresh within its TTL, stale but served after it", "[edge][manifest_cache]") {
  Edge e;
  auto m = imageManifest(digestOf("c").str(), {digestOf("l").str()});
  REQUIRE(e.manifests->store("lib/app", "v1", m).isOk());

  bool fresh = false;
  auto got = e.manifests->byTag("lib/app", "v1", &fresh);
  REQUIRE(got);
  CHECK(fresh);
  CHECK(got->digest == m.digest);
  CHECK(got->body == m.body);

  e.clock.advance(kTtl - 1);
  fresh = false;
  REQUIRE(e.manifests->byTag("lib/app", "v1", &fresh));
  CHECK(fresh);

  e.clock.advance(1);
  fresh = true;
  got = e.manifests->byTag("lib/app", "v1", &fresh);
  REQUIRE(got);  // stale, still there for stale-if-error
  CHECK_FALSE(fresh);
  CHECK(got->body == m.body);

  // Other repositories and tags know nothing of it.
  CHECK_FALSE(e.manifests->byTag("other/app", "v1", &fresh));
  CHECK_FALSE(e.manifests->byTag("lib/app", "v2", &fresh));

  // The upstream confirmed it (304): fresh again for another TTL.
  e.clock.advance(kHour);
  e.manifests->revalidated("lib/app", "v1", m.digest);
  fresh = false;
  REQUIRE(e.manifests->byTag("lib/app", "v1", &fresh));
  CHECK(fresh);
  e.clock.advance(kTtl);
  REQUIRE(e.manifests->byTag("lib/app", "v1", &fresh));
  CHECK_FALSE(fresh);

  // A shorter TTL applies to tags already cached.
  e.manifests->revalidated("lib/app", "v1", m.digest);
  e.clock.advance(1000);
  e.manifests->setTagTtl(500);
  REQUIRE(e.manifests->byTag("lib/app", "v1", &fresh));
  CHECK_FALSE(fresh);
}

TEST_CASE("manifest cache: a tag moved by a new store points at the new manifest", "[edge][manifest_cache]") {
  Edge e;
  auto m1 = imageManifest(digestOf("c1").str(), {digestOf("l1").str()});
  auto m2 = imageManifest(digestOf("c2").str(), {digestOf("l2").str()});
  REQUIRE(e.manifests->store("lib/app", "latest", m1).isOk());
  REQUIRE(e.manifests->store("lib/app", "latest", m2).isOk());
  bool fresh = false;
  auto got = e.manifests->byTag("lib/app", "latest", &fresh);
  REQUIRE(got);
  CHECK(got->digest == m2.digest);
  CHECK(e.manifests->byDigest("lib/app", m1.digest));  // still cached by digest
}

TEST_CASE("manifest cache: a manifest corrupted on disk is not served", "[edge][manifest_cache]") {
  Edge e;
  auto m = imageManifest(digestOf("c").str(), {digestOf("l").str()});
  REQUIRE(e.manifests->store("lib/app", "v1", m).isOk());
  REQUIRE(e.manifests->byDigest("lib/app", m.digest));

  SECTION("bytes changed") {
    std::string rotten = m.body;
    rotten[rotten.size() / 2] ^= 0x20;
    REQUIRE(writeFileAtomic(e.manifestFile(m.digest), rotten).isOk());
  }
  SECTION("truncated") {
    REQUIRE(writeFileAtomic(e.manifestFile(m.digest), m.body.substr(0, m.body.size() - 1)).isOk());
  }
  SECTION("deleted") {
    REQUIRE(::unlink(e.manifestFile(m.digest).c_str()) == 0);
  }
  SECTION("media type file deleted") {
    REQUIRE(::unlink((e.manifestFile(m.digest) + ".type").c_str()) == 0);
  }
  CHECK_FALSE(e.manifests->byDigest("lib/app", m.digest));
  bool fresh = false;
  CHECK_FALSE(e.manifests->byTag("lib/app", "v1", &fresh));

  // Storing it again (refetched from the upstream) heals it.
  REQUIRE(e.manifests->store("lib/app", "v1", m).isOk());
  auto got = e.manifests->byDigest("lib/app", m.digest);
  REQUIRE(got);
  CHECK(got->body == m.body);
}

TEST_CASE("manifest cache: store records what an image manifest references", "[edge][manifest_cache]") {
  Edge e;
  // The image's blobs are old (config the oldest); the unreferenced one is fresh.
  std::string config = e.commit(randomData(25000, 1));
  e.clock.advance(kHour);
  std::string layer1 = e.commit(randomData(25000, 2));
  e.clock.advance(kHour);
  std::string layer2 = e.commit(randomData(25000, 3));
  e.clock.advance(48 * kHour);
  std::string loose = e.commit(randomData(25000, 4));
  e.index->accessed(layer1);  // the config is the least used of the image's
  e.index->accessed(layer2);

  auto m = imageManifest(config, {layer1, layer2});
  REQUIRE(e.manifests->store("lib/app", "v1", m).isOk());
  REQUIRE(e.manifests->byDigest("lib/app", m.digest));  // a pull reads it first: a hit

  SECTION("in memory") {}
  SECTION("after a restart") {
    REQUIRE(e.index->flush().isOk());
    e.reopen();
  }
  e.index->setBudget(CacheBudget{100000, 0.9, 0.55});
  // Over 90,000 (the manifest counts too): down to 55,000. The unreferenced blob goes first (the tag's current image
  // uses the others), then the least used of the image's (config). Were the
  // references not recorded, loose and config would be worth the same as the layers.
  CHECK(e.index->enforce() == 50000);
  CHECK_FALSE(e.cached(loose));
  CHECK_FALSE(e.cached(config));
  CHECK(e.cached(layer1));
  CHECK(e.cached(layer2));
  CHECK(e.index->blobCount() == 3);  // and the manifest
}

TEST_CASE("manifest cache: store records the child manifests of an index", "[edge][manifest_cache]") {
  Edge e;
  e.index->setBudget(CacheBudget{100000, 0.9, 0.6});
  // Stand-ins for the children's bytes, as blobs (their digests are what the index lists).
  std::string child = e.commit(randomData(50000, 5));  // old
  e.clock.advance(48 * kHour);
  std::string loose = e.commit(randomData(50000, 6));  // fresh
  auto idx = indexManifest({child});
  REQUIRE(e.manifests->store("lib/app", "v1", idx).isOk());
  auto got = e.manifests->byDigest("lib/app", idx.digest);
  REQUIRE(got);
  CHECK(got->media_type == kOciIndex);

  CHECK(e.index->enforce() == 50000);
  CHECK(e.cached(child));
  CHECK_FALSE(e.cached(loose));
}

TEST_CASE("manifest cache: a manifest stored for a tag is its current image; one stored by digest is not",
          "[edge][manifest_cache]") {
  Edge e;
  e.index->setBudget(CacheBudget{100000, 0.9, 0.55});
  std::string c1 = e.commit(randomData(25000, 7)), l1 = e.commit(randomData(25000, 8));
  std::string c2 = e.commit(randomData(25000, 9)), l2 = e.commit(randomData(25000, 10));
  auto current = imageManifest(c1, {l1});
  auto old = imageManifest(c2, {l2, l2});  // listed twice: one image all the same
  REQUIRE(e.manifests->store("lib/app", "v1", current).isOk());
  REQUIRE(e.manifests->store("lib/app", "", old).isOk());  // pulled by digest

  CHECK(e.index->enforce() == 50000);
  CHECK(e.cached(c1));
  CHECK(e.cached(l1));
  CHECK_FALSE(e.cached(c2));
  CHECK_FALSE(e.cached(l2));
}

TEST_CASE("manifest cache: manifests count in the budget and are evicted like blobs", "[edge][manifest_cache]") {
  Edge e;
  std::vector<ManifestCache::Entry> ms;
  for (int i = 0; i < 40; ++i) {
    ms.push_back(imageManifest(digestOf("c" + std::to_string(i)).str(), {digestOf("l" + std::to_string(i)).str()}));
  }
  uint64_t each = ms[0].body.size();
  e.budget = CacheBudget{each * 20, 0.9, 0.5};  // room for 18 of them
  e.reopen();
  for (int i = 0; i < 40; ++i) {
    REQUIRE(e.manifests->store("lib/app", "v" + std::to_string(i), ms[static_cast<size_t>(i)]).isOk());
    e.clock.advance(1000);
  }
  CHECK(e.index->used() == 40 * each);  // counted, as blobs are
  // A read is a hit: the first manifest is worth keeping.
  bool fresh = false;
  for (int k = 0; k < 3; ++k) REQUIRE(e.manifests->byTag("lib/app", "v0", &fresh));
  uint64_t freed = e.index->enforce();
  CHECK(freed >= 20 * each);
  CHECK(e.index->used() <= 10 * each);
  CHECK(e.manifests->byTag("lib/app", "v0", &fresh));
  size_t kept = 0;
  for (int i = 0; i < 40; ++i) {
    bool here = ::access(e.manifestFile(ms[static_cast<size_t>(i)].digest).c_str(), F_OK) == 0;
    kept += here ? 1 : 0;
    // The index and the files agree; an evicted tag is asked of the upstream again.
    CHECK(here == e.manifests->byTag("lib/app", "v" + std::to_string(i), &fresh).has_value());
  }
  CHECK(kept * each == e.index->used());
  // The scrub hashes blob files only; manifests are checked at every read.
  CHECK(e.index->blobDigests().empty());

  // Across a restart: entries as flushed; a manifest file without an entry is adopted, a
  // half-written one (no .type) removed.
  REQUIRE(e.index->flush().isOk());
  auto stray = imageManifest(digestOf("stray").str(), {});
  auto hex = Digest::parse(stray.digest)->hex();
  REQUIRE(writeFileAtomic(e.dir / ("manifests/" + hex), stray.body).isOk());
  REQUIRE(writeFileAtomic(e.dir / ("manifests/" + hex + ".type"), kOciManifest).isOk());
  auto half = imageManifest(digestOf("half").str(), {});
  REQUIRE(writeFileAtomic(e.manifestFile(half.digest), half.body).isOk());
  e.reopen();
  CHECK(e.index->used() == kept * each + stray.body.size());
  CHECK(e.index->blob(stray.digest).has_value());
  CHECK(::access(e.manifestFile(half.digest).c_str(), F_OK) != 0);

  // A purge takes a manifest's files with its entry.
  auto p = e.index->purgeImage("lib/app", "v0");
  CHECK(p.blobs >= 1);
  CHECK(::access(e.manifestFile(ms[0].digest).c_str(), F_OK) != 0);
  CHECK(::access((e.manifestFile(ms[0].digest) + ".type").c_str(), F_OK) != 0);
}

}  // namespace manifest_cache_test
