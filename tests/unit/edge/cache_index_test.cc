#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>

#include "edge/cache/cache_index.h"
#include "edge/cache/fill_coordinator.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "shared/store/lmdb.h"
#include "tests/support/oci_layout.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace cache_index_test {

using namespace wharf;
using namespace wharf::test;

namespace {

constexpr int64_t kHour = 3600 * 1000;

// A cache root (FillCoordinator) and its index, reopened at will.
struct Cache {
  TempDir dir;
  FakeClock clock;
  CacheBudget budget{1ull << 30, 0.9, 0.8};
  std::unique_ptr<FillCoordinator> fills;
  std::unique_ptr<CacheIndex> index;

  Cache() {
    auto f = FillCoordinator::open(dir / "cache");
    REQUIRE(f.isOk());
    fills = std::move(f).value();
    reopen();
  }
  std::string indexPath() const { return dir / "index.lmdb"; }
  // Closes the index without flushing (the destructor does not flush: a crash), then opens it.
  void reopen() {
    index.reset();
    auto i = CacheIndex::open(indexPath(), *fills, dir / "manifests", clock, budget);
    REQUIRE(i.isOk());
    index = std::move(i).value();
  }
  void close() { index.reset(); }
  // A committed blob file, written straight into blobs/ (the index is not told).
  std::string putFile(const std::string& data) {
    Digest d = digestOf(data);
    REQUIRE(writeFileAtomic(fills->blobPath(d), data).isOk());
    return d.str();
  }
  // A blob committed as the edge does it: a file, then committed().
  std::string commit(const std::string& data) {
    std::string d = putFile(data);
    index->committed(d, data.size());
    return d;
  }
  // A file whose entry claims another size (the index must believe the file).
  std::string commitClaiming(const std::string& data, uint64_t claimed) {
    std::string d = putFile(data);
    index->committed(d, claimed);
    return d;
  }
  std::string path(const std::string& digest) const {
    auto d = Digest::parse(digest);
    REQUIRE(d.isOk());
    return fills->blobPath(*d);
  }
  bool fileExists(const std::string& digest) const { return ::access(path(digest).c_str(), F_OK) == 0; }
};

std::string fakeManifestDigest(const std::string& name) { return digestOf("manifest " + name).str(); }

}  // namespace

TEST_CASE("cache index: committed, accessed, used and blobCount", "[edge][cache_index]") {
  Cache c;
  CHECK(c.index->used() == 0);
  CHECK(c.index->blobCount() == 0);

  // One blob through a real fill (join, append, finish), one written directly.
  std::string a_data = randomData(100, 1);
  Digest a = digestOf(a_data);
  auto j = c.fills->join(a, a_data.size());
  REQUIRE(j.isOk());
  REQUIRE(j->role == FillCoordinator::Role::kLeader);
  REQUIRE(j->leader->append(a_data).isOk());
  REQUIRE(j->leader->finish().isOk());
  c.index->committed(a.str(), a_data.size());
  int64_t t0 = c.clock.nowMillis();
  std::string b = c.commit(randomData(250, 2));

  CHECK(c.index->used() == 350);
  CHECK(c.index->blobCount() == 2);
  auto ba = c.index->blob(a.str());
  REQUIRE(ba);
  CHECK(ba->size == 100);
  CHECK(ba->hits == 0);
  CHECK(ba->last_access_ms == t0);

  c.clock.advance(5000);
  c.index->accessed(a.str());
  c.index->accessed(a.str());
  ba = c.index->blob(a.str());
  REQUIRE(ba);
  CHECK(ba->hits == 2);
  CHECK(ba->last_access_ms == t0 + 5000);
  CHECK(c.index->blob(b)->hits == 0);
  CHECK(c.index->blob(b)->last_access_ms == t0);

  // Committing a blob the index already holds does not count its bytes twice.
  c.index->committed(b, 250);
  CHECK(c.index->used() == 350);
  CHECK(c.index->blobCount() == 2);

  // Accessing an unknown blob creates nothing.
  std::string unknown = digestOf("never cached").str();
  c.index->accessed(unknown);
  CHECK_FALSE(c.index->blob(unknown));
  CHECK(c.index->blobCount() == 2);

  auto digests = c.index->blobDigests();
  std::sort(digests.begin(), digests.end());
  std::vector<std::string> expected{a.str(), b};
  std::sort(expected.begin(), expected.end());
  CHECK(digests == expected);
}

TEST_CASE("cache index: flushed state survives close and reopen", "[edge][cache_index]") {
  Cache c;
  std::string a = c.commit(randomData(300, 3));
  std::string b = c.commit(randomData(200, 4));
  c.clock.advance(10 * kHour);
  int64_t t_access = c.clock.nowMillis();
  c.index->accessed(a);
  c.index->accessed(a);
  c.index->accessed(a);
  c.clock.advance(1000);
  int64_t t_tag = c.clock.nowMillis();
  std::string m = fakeManifestDigest("m");
  c.index->setTag("lib/app", "v1", m);
  c.index->link("lib/app", a);
  c.index->link("other/app", b);
  c.index->imageCached("acme/api", "v1", m, {a, b});
  REQUIRE(c.index->flush().isOk());

  c.clock.advance(kHour);
  c.reopen();
  CHECK(c.index->blobCount() == 2);
  CHECK(c.index->used() == 500);
  auto ba = c.index->blob(a);
  REQUIRE(ba);
  CHECK(ba->size == 300);
  CHECK(ba->hits == 3);
  CHECK(ba->last_access_ms == t_access);
  auto bb = c.index->blob(b);
  REQUIRE(bb);
  CHECK(bb->hits == 0);
  CHECK(bb->last_access_ms == t_access - 10 * kHour);

  auto t = c.index->tag("lib/app", "v1");
  REQUIRE(t);
  CHECK(t->digest == m);
  CHECK(t->fetched_ms == t_tag);
  CHECK_FALSE(c.index->tag("lib/app", "v2"));
  CHECK_FALSE(c.index->tag("other/app", "v1"));

  CHECK(c.index->linked("lib/app", a));
  CHECK(c.index->linked("other/app", b));
  CHECK_FALSE(c.index->linked("lib/app", b));
  CHECK_FALSE(c.index->linked("other/app", a));

  // The image survived too: a and b (in image m, but older than x) outlive x (in no
  // image). Without the image, a and b would be the ones evicted.
  c.clock.advance(10 * kHour);
  std::string x = c.commit(randomData(500, 5));  // fresh, no image
  c.index->setBudget(CacheBudget{1000, 0.9, 0.6});  // 1000 used > 900: down to 600
  CHECK(c.index->enforce() == 500);
  CHECK(c.index->blob(a));
  CHECK(c.index->blob(b));
  CHECK_FALSE(c.index->blob(x));
  CHECK_FALSE(c.fileExists(x));
  CHECK(c.fileExists(a));
}

TEST_CASE("cache index: unflushed changes are lost, but the index matches the files", "[edge][cache_index]") {
  Cache c;
  std::string a = c.commit(randomData(100, 6));
  std::string d = c.commit(randomData(400, 7));
  int64_t t0 = c.clock.nowMillis();
  REQUIRE(c.index->flush().isOk());

  // Then, never flushed: access stats, a tag, a link, a new blob, a dropped blob.
  c.clock.advance(60'000);
  c.index->accessed(a);
  c.index->accessed(a);
  c.index->setTag("lib/app", "latest", a);
  c.index->link("lib/app", a);
  std::string b = c.commit(randomData(250, 8));
  REQUIRE(c.index->drop(d));
  REQUIRE_FALSE(c.fileExists(d));

  c.reopen();  // destroyed without flush(): a crash
  auto ba = c.index->blob(a);
  REQUIRE(ba);
  CHECK(ba->hits == 0);
  CHECK(ba->last_access_ms == t0);
  CHECK_FALSE(c.index->tag("lib/app", "latest"));
  CHECK_FALSE(c.index->linked("lib/app", a));
  // The files decide which blobs exist: b (its file is there) is adopted, d (gone) is not.
  auto bb = c.index->blob(b);
  REQUIRE(bb);
  CHECK(bb->size == 250);
  CHECK_FALSE(c.index->blob(d));
  CHECK(c.index->blobCount() == 2);
  CHECK(c.index->used() == 350);
}

TEST_CASE("cache index: open reconciles the index with the blob files", "[edge][cache_index]") {
  Cache c;
  std::string kept = c.commit(randomData(100, 9));
  std::string gone = c.commit(randomData(200, 10));
  std::string resized = c.commitClaiming(randomData(30, 11), 10);
  REQUIRE(c.index->flush().isOk());
  c.close();

  // While the edge is down: one file deleted, one file without an entry, strays.
  REQUIRE(::unlink(c.path(gone).c_str()) == 0);
  std::string adopted_data = randomData(777, 12);
  std::string adopted = c.putFile(adopted_data);
  std::string stray = c.fills->blobsDir() + "/sha256/not-a-digest";
  std::string stray_tmp = c.path(adopted) + ".tmp.123";
  REQUIRE(writeFileAtomic(stray, "junk").isOk());
  REQUIRE(writeFileAtomic(stray_tmp, "junk").isOk());
  std::string adopted512_data = randomData(64, 13);
  Digest adopted512 = digestOf(adopted512_data, DigestAlgorithm::kSha512);
  REQUIRE(writeFileAtomic(c.fills->blobPath(adopted512), adopted512_data).isOk());

  c.reopen();
  CHECK(c.index->blob(kept));
  CHECK_FALSE(c.index->blob(gone));
  auto a = c.index->blob(adopted);
  REQUIRE(a);
  CHECK(a->size == 777);
  CHECK(a->hits == 0);
  CHECK(a->last_access_ms > 0);  // the file's mtime
  auto a512 = c.index->blob(adopted512.str());
  REQUIRE(a512);
  CHECK(a512->size == 64);
  // The index never claims other than what the file holds.
  auto r = c.index->blob(resized);
  REQUIRE(r);
  CHECK(r->size == 30);
  CHECK(::access(stray.c_str(), F_OK) != 0);
  CHECK(::access(stray_tmp.c_str(), F_OK) != 0);
  CHECK(c.index->blobCount() == 4);
  CHECK(c.index->used() == 100 + 777 + 64 + 30);

  // open() wrote the reconciled state: another reopen (no flush) sees the same.
  c.reopen();
  CHECK(c.index->blobCount() == 4);
  CHECK(c.index->used() == 100 + 777 + 64 + 30);
  CHECK_FALSE(c.index->blob(gone));
}

TEST_CASE("cache index: drop removes the file, the entry and the blob's links", "[edge][cache_index]") {
  Cache c;
  std::string a = c.commit(randomData(100, 14));
  std::string b = c.commit(randomData(50, 15));
  c.index->link("r1", a);
  c.index->link("r2", a);
  c.index->link("r1", b);
  REQUIRE(c.index->flush().isOk());

  CHECK(c.index->drop(a));
  CHECK_FALSE(c.fileExists(a));
  CHECK_FALSE(c.index->blob(a));
  CHECK_FALSE(c.index->linked("r1", a));
  CHECK_FALSE(c.index->linked("r2", a));
  CHECK(c.index->linked("r1", b));
  CHECK(c.index->used() == 50);
  CHECK(c.index->blobCount() == 1);
  CHECK_FALSE(c.index->drop(a));  // no longer there
  CHECK_FALSE(c.index->drop("not a digest"));

  // The removal of the links is persisted too.
  REQUIRE(c.index->flush().isOk());
  c.reopen();
  CHECK_FALSE(c.index->blob(a));
  CHECK_FALSE(c.index->linked("r1", a));
  CHECK_FALSE(c.index->linked("r2", a));
  CHECK(c.index->linked("r1", b));
  CHECK(c.fileExists(b));
}

TEST_CASE("cache index: enforce evicts from above the high watermark down to the low one", "[edge][cache_index]") {
  Cache c;
  c.budget = CacheBudget{1000, 0.9, 0.5};
  c.index->setBudget(c.budget);
  std::vector<std::string> blobs;
  for (int i = 0; i < 10; ++i) {
    blobs.push_back(c.commit(randomData(100, 100 + static_cast<uint64_t>(i))));  // oldest first
    c.clock.advance(kHour);
  }
  REQUIRE(c.index->used() == 1000);
  CHECK(c.index->enforce() == 500);
  CHECK(c.index->used() == 500);
  CHECK(c.index->blobCount() == 5);
  // The five least recently used went, files and entries.
  for (size_t i = 0; i < 10; ++i) {
    INFO("blob " << i);
    CHECK(static_cast<bool>(c.index->blob(blobs[i])) == (i >= 5));
    CHECK(c.fileExists(blobs[i]) == (i >= 5));
  }
  // Now under the high watermark: nothing more to do.
  CHECK(c.index->enforce() == 0);
  CHECK(c.index->blobCount() == 5);
}

TEST_CASE("cache index: enforce frees nothing at or under the high watermark", "[edge][cache_index]") {
  Cache c;
  c.budget = CacheBudget{1000, 0.9, 0.5};
  c.reopen();
  std::vector<std::string> blobs;
  for (int i = 0; i < 9; ++i) blobs.push_back(c.commit(randomData(100, 200 + static_cast<uint64_t>(i))));
  REQUIRE(c.index->used() == 900);  // exactly the high watermark
  CHECK(c.index->enforce() == 0);
  CHECK(c.index->blobCount() == 9);
  for (const auto& b : blobs) CHECK(c.fileExists(b));

  // setBudget takes effect: a smaller budget puts the same cache over its watermark.
  c.index->setBudget(CacheBudget{800, 0.9, 0.5});  // high 720, low 400
  CHECK(c.index->enforce() == 500);
  CHECK(c.index->used() == 400);
  CHECK(c.index->blobCount() == 4);
}

TEST_CASE("cache index: when a tag moves, the old image's own layers go before the new image's", "[edge][cache_index]") {
  Cache c;
  c.index->setBudget(CacheBudget{1000, 0.9, 0.6});
  std::string old_own = c.commit(randomData(300, 16));
  std::string shared = c.commit(randomData(300, 17));
  std::string m1 = fakeManifestDigest("m1"), m2 = fakeManifestDigest("m2");
  c.index->setTag("acme/api", "latest", m1);  // as ManifestCache::store does
  c.index->imageCached("acme/api", "latest", m1, {old_own, shared});
  c.clock.advance(kHour);
  std::string new_own = c.commit(randomData(300, 18));
  c.index->setTag("acme/api", "latest", m2);
  c.index->imageCached("acme/api", "latest", m2, {shared, new_own});  // the tag moved
  std::string loose = c.commit(randomData(200, 19));                   // no image: 1100 bytes

  CHECK(c.index->enforce() == 500);  // down to 600
  CHECK_FALSE(c.index->blob(old_own));
  CHECK_FALSE(c.fileExists(old_own));
  CHECK_FALSE(c.index->blob(loose));
  CHECK(c.index->blob(shared));
  CHECK(c.index->blob(new_own));
  CHECK(c.fileExists(new_own));

  // Known after a restart too: the tags say which image is current.
  REQUIRE(c.index->flush().isOk());
  c.budget = CacheBudget{1000, 0.9, 0.6};
  c.reopen();
  std::string other = c.commit(randomData(400, 20));  // 1000
  CHECK(c.index->enforce() == 400);
  CHECK_FALSE(c.index->blob(other));
  CHECK(c.index->blob(shared));
  CHECK(c.index->blob(new_own));
}

TEST_CASE("cache index: a large blob fetched once is served but not kept; asked again, it is", "[edge][cache_index]") {
  Cache c;
  c.budget = CacheBudget{64ull << 20, 0.9, 0.8};
  c.reopen();
  std::string big(2 << 20, 'x');
  std::string d = c.putFile(big);
  CHECK_FALSE(c.index->committed(d, big.size()));
  CHECK_FALSE(c.index->blob(d));
  CHECK_FALSE(c.fileExists(d));  // removed: readers that have it open finish
  CHECK(c.index->used() == 0);
  c.putFile(big);
  CHECK(c.index->committed(d, big.size()));  // the ghost list remembers the first miss
  CHECK(c.index->blob(d));
  CHECK(c.fileExists(d));
  // Small blobs and pinned ones are always kept.
  std::string small = c.putFile(std::string(1000, 's'));
  CHECK(c.index->committed(small, 1000));
  std::string pinned_big(3 << 20, 'p');
  std::string p = c.putFile(pinned_big);
  c.index->pin("acme/api:v1", {p});
  CHECK(c.index->committed(p, pinned_big.size()));
}

TEST_CASE("cache index: a different schema on disk starts empty but adopts the files", "[edge][cache_index]") {
  Cache c;
  std::string a = c.commit(randomData(123, 18));
  c.clock.advance(kHour);
  c.index->accessed(a);
  c.index->setTag("lib/app", "v1", fakeManifestDigest("m"));
  c.index->link("lib/app", a);
  REQUIRE(c.index->flush().isOk());
  c.close();

  {
    LmdbEnv::Options options;
    options.map_size = 16ull << 30;
    options.max_dbs = 8;
    auto env = LmdbEnv::open(c.indexPath(), options);
    REQUIRE(env.isOk());
    auto meta = (*env)->openDb("meta");
    REQUIRE(meta.isOk());
    auto w = (*env)->write();
    REQUIRE(w.isOk());
    REQUIRE(w->put(*meta, "schema", "edge-cache-index-0").isOk());
    REQUIRE(w->commit().isOk());
  }

  c.reopen();
  auto b = c.index->blob(a);
  REQUIRE(b);  // adopted from its file
  CHECK(b->size == 123);
  CHECK(b->hits == 0);  // the old entry was not read
  CHECK_FALSE(c.index->tag("lib/app", "v1"));
  CHECK_FALSE(c.index->linked("lib/app", a));
  CHECK(c.index->blobCount() == 1);

  // The current schema is written back: what is flushed now survives.
  c.index->link("lib/app", a);
  REQUIRE(c.index->flush().isOk());
  c.reopen();
  CHECK(c.index->linked("lib/app", a));
}

TEST_CASE("cache index: purges by repository, image and digest keep what others still use", "[edge][cache_index]") {
  Cache c;
  std::string shared = c.commit(randomData(1000, 1));
  std::string own = c.commit(randomData(2000, 2));
  std::string other = c.commit(randomData(3000, 3));
  std::string m1 = fakeManifestDigest("one"), m2 = fakeManifestDigest("two");
  c.index->imageCached("acme/api", "", m1, {shared, own});
  c.index->imageCached("acme/api", "", m2, {shared, other});
  for (const auto& d : {m1, shared, own}) c.index->link("team/a", d);
  for (const auto& d : {m2, shared, other}) c.index->link("team/b", d);
  c.index->setTag("team/a", "v1", m1);
  c.index->setTag("team/b", "v1", m2);

  // An image of team/a: its tag and links go; the blob team/b still links stays.
  auto p = c.index->purgeImage("team/a", "v1");
  CHECK(p.tags == 1);
  CHECK(p.blobs == 1);
  CHECK(p.bytes == 2000);
  CHECK_FALSE(c.fileExists(own));
  CHECK(c.fileExists(shared));
  CHECK_FALSE(c.index->linked("team/a", shared));
  CHECK(c.index->linked("team/b", shared));
  CHECK_FALSE(c.index->tag("team/a", "v1"));

  // A digest everywhere.
  p = c.index->purgeDigest(shared);
  CHECK(p.blobs == 1);
  CHECK_FALSE(c.fileExists(shared));
  CHECK_FALSE(c.index->linked("team/b", shared));

  // A repository: the rest of team/b, and nothing survives a reopen (flushed).
  p = c.index->purgeRepository("team/b");
  CHECK(p.tags == 1);
  CHECK(p.blobs == 1);
  CHECK(c.index->used() == 0);
  REQUIRE(c.index->flush().isOk());
  c.reopen();
  CHECK(c.index->used() == 0);
  CHECK_FALSE(c.index->tag("team/b", "v1"));
  CHECK_FALSE(c.index->linked("team/b", other));
}

TEST_CASE("cache index: pinned blobs are never evicted, and pins survive a reopen", "[edge][cache_index]") {
  Cache c;
  c.budget = CacheBudget{10000, 0.9, 0.5};
  c.reopen();
  std::string pinned = c.commit(randomData(4000, 7));
  std::string m = fakeManifestDigest("pinned");
  c.index->imageCached("acme/api", "v1", m, {pinned});
  c.index->link("team/a", m);
  c.index->setTag("team/a", "v1", m);
  auto closure = c.index->closure("team/a", "v1");
  REQUIRE(closure.size() == 2);
  c.index->pin("team/a:v1", closure);
  REQUIRE(c.index->flush().isOk());
  c.reopen();
  CHECK(c.index->pins().count("team/a:v1") == 1);
  CHECK(c.index->pinnedBytes() == 4000);
  std::vector<std::string> others;
  uint64_t evicted = 0;
  c.index->setListener({[&](uint64_t bytes) { evicted += bytes; }, nullptr, nullptr});
  for (int i = 0; i < 3; ++i) {
    c.clock.advance(kHour);
    others.push_back(c.commit(randomData(2500, 10 + i)));
  }
  c.index->enforce();
  CHECK(c.fileExists(pinned));  // the oldest, single-image, but pinned
  CHECK(evicted > 0);
  CHECK(c.index->used() <= 5000 + 4000);
  // Unpinned, it is fair game.
  CHECK(c.index->unpin("team/a:v1"));
  CHECK_FALSE(c.index->unpin("team/a:v1"));
  c.index->setBudget(CacheBudget{1000, 0.9, 0.5});
  c.index->enforce();
  CHECK_FALSE(c.fileExists(pinned));
}

TEST_CASE("cache index: prefetched blobs count as used at the first client read, or wasted if evicted unread",
          "[edge][cache][prefetch]") {
  Cache c;
  c.budget = CacheBudget{1000, 0.9, 0.5};
  c.reopen();
  std::map<std::string, uint64_t> used, wasted;
  c.index->setListener({nullptr, [&](const std::string& repo, uint64_t bytes) { used[repo] += bytes; },
                        [&](const std::string& repo, uint64_t bytes) { wasted[repo] += bytes; }});
  std::string read = c.putFile(std::string(300, 'a'));
  std::string unread = c.putFile(std::string(300, 'b'));
  c.index->committedPrefetch(read, 300, "acme/api", 1);
  c.index->committedPrefetch(unread, 300, "acme/api", 1);
  c.index->link("acme/api", read);
  c.index->link("acme/api", unread);
  // Kept across a restart (the mark is in the index).
  REQUIRE(c.index->flush().isOk());
  c.reopen();
  c.index->setListener({nullptr, [&](const std::string& repo, uint64_t bytes) { used[repo] += bytes; },
                        [&](const std::string& repo, uint64_t bytes) { wasted[repo] += bytes; }});
  CHECK(c.index->blob(read)->prefetched_for == "acme/api");

  CHECK(c.index->hitIfLinked("acme/api", read));
  CHECK(used["acme/api"] == 300);
  CHECK(c.index->hitIfLinked("acme/api", read));
  CHECK(used["acme/api"] == 300);  // the first read only
  CHECK(c.index->blob(read)->prefetched_for.empty());

  // Over budget once its hold (a day) is over: the unread one goes (it is the least
  // valuable), and is waste.
  CHECK(c.index->blob(unread));
  c.clock.advance(25 * kHour);
  c.index->hitIfLinked("acme/api", read);
  std::string client = c.commit(std::string(400, 'c'));
  CHECK(c.index->enforce() > 0);
  CHECK_FALSE(c.index->blob(unread));
  CHECK(wasted["acme/api"] == 300);
  CHECK(c.index->blob(read));  // read, so no longer counted as prefetch either way
  (void)client;
  c.index->setListener({});
}

TEST_CASE("cache index: room for a prefetch never comes from pinned or recently used blobs",
          "[edge][cache][prefetch]") {
  Cache c;
  c.budget = CacheBudget{1000, 0.9, 0.5};  // high 900, low 500
  c.reopen();
  std::string old1 = c.commit(std::string(300, 'o'));
  std::string old2 = c.commit(std::string(200, 'p'));
  c.clock.advance(2 * 3'600'000);
  std::string recent = c.commit(std::string(300, 'r'));  // used 800
  int64_t hour_ago = c.clock.nowMillis() - 3'600'000;
  CHECK(c.index->roomFor(100, hour_ago));        // 900: under the high watermark as it is
  CHECK(c.index->roomFor(200, hour_ago));        // 1000, less the 500 old bytes: the low watermark
  CHECK_FALSE(c.index->roomFor(201, hour_ago));  // only by evicting the recent blob
  CHECK_FALSE(c.index->roomFor(600, hour_ago));  // more than the low watermark itself
  c.index->pin("acme/api:v1", {old2});
  CHECK_FALSE(c.index->roomFor(200, hour_ago));  // the pinned one stays
  c.index->unpin("acme/api:v1");

  // enforce() with the same protection evicts old content only, even when the policy
  // would rather keep it (old1 and old2 are the current image of a tag, recent is not).
  c.index->imageCached("acme/api", "v1", fakeManifestDigest("img"), {old1, old2});
  std::string prefetched = c.commit(std::string(200, 'n'));  // 1000
  CHECK(c.index->enforce(hour_ago) == 500);
  CHECK_FALSE(c.index->blob(old1));
  CHECK_FALSE(c.index->blob(old2));
  CHECK(c.index->blob(recent));
  CHECK(c.index->blob(prefetched));
}

}  // namespace cache_index_test
