// Garbage collection, retention and immutability over the real stores (LMDB and the
// filesystem) with a fake clock.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <string>

#include <nlohmann/json.hpp>

#include "core/gc/garbage_collector.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "tests/unit/core/metadata_backends.h"
#include "core/metadata/policy.h"
#include "core/registry/registry.h"
#include "shared/base/clock.h"
#include "shared/event/work_queue.h"
#include "shared/oci/media_types.h"
#include "shared/store/lmdb.h"
#include "tests/support/oci_layout.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace gc_test {

using namespace wharf;
using nlohmann::json;
using wharf::test::TempDir;

namespace {

constexpr int64_t kNow = 2'000'000'000'000;  // 2033: later than any real file mtime
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

json descriptor(std::string_view media_type, const std::string& content) {
  return {{"mediaType", media_type}, {"digest", digestOf(content).str()}, {"size", content.size()}};
}

// An OCI image manifest with one config and one layer.
json imageManifest(const std::string& config, const std::string& layer) {
  return {{"schemaVersion", 2},
          {"mediaType", media::kOciManifest},
          {"config", descriptor(media::kOciConfig, config)},
          {"layers", json::array({descriptor("application/vnd.oci.image.layer.v1.tar", layer)})}};
}

struct Gc {
  explicit Gc(test::MetadataBackend b = test::MetadataBackend::kLmdb) : clock(kNow), backend(b) { open(); }
  void open() {
    blobs = std::move(openFsBlobStore(dir / "blobs")).value();
    meta = test::openMetadataBackend(backend, dir / "meta", &pg_url);
    // On PostgreSQL the content locks are cluster-wide, as in a scale-out core.
    std::shared_ptr<PgPool> cluster;
    if (backend == test::MetadataBackend::kPostgres) cluster = std::shared_ptr<PgPool>(std::move(PgPool::open(pg_url, 4)).value());
    registry = std::make_unique<Registry>(*blobs, *meta, clock, cluster);
  }
  void reopen() {
    registry.reset();
    meta.reset();
    blobs.reset();
    open();
  }

  std::string blob(const std::string& repo, const std::string& content) {
    auto id = registry->startUpload(repo);
    REQUIRE(id.isOk());
    auto l = registry->sessions().acquire(*id);
    REQUIRE(l.isOk());
    REQUIRE(registry->append(**l, content, hashq).isOk());
    Digest d = digestOf(content);
    REQUIRE(registry->finishUpload(repo, **l, d, true).isOk());
    return d.str();
  }
  // An image (config + one layer) pushed to repo under reference; returns the manifest digest.
  std::string image(const std::string& repo, const std::string& reference, const std::string& layer,
                    const std::string& config = "{\"config\":1}", const json& subject = nullptr) {
    blob(repo, config);
    blob(repo, layer);
    json m = imageManifest(config, layer);
    if (!subject.is_null()) m["subject"] = subject;
    auto put = registry->putManifest(repo, reference, m.dump(), std::string(media::kOciManifest));
    INFO(put.status().toString());
    REQUIRE(put.isOk());
    return put->digest;
  }
  std::string index(const std::string& repo, const std::string& reference, const std::vector<std::string>& children) {
    json ms = json::array();
    for (const auto& c : children) {
      auto size = meta->manifest(repo, c);
      REQUIRE(size.isOk());
      ms.push_back({{"mediaType", media::kOciManifest}, {"digest", c}, {"size", size->size}});
    }
    json idx = {{"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", ms}};
    auto put = registry->putManifest(repo, reference, idx.dump(), std::string(media::kOciIndex));
    REQUIRE(put.isOk());
    return put->digest;
  }
  bool stored(const std::string& digest) {
    auto d = Digest::parse(digest);
    return meta->blobRecord(digest).isOk() && blobs->open(*d).isOk();
  }
  bool fileExists(const std::string& digest) { return blobs->open(*Digest::parse(digest)).isOk(); }
  GcReport run(GcOptions o, GcObserver obs = {}) {
    auto r = GarbageCollector(*registry).run(o, obs);
    INFO(r.status().toString());
    REQUIRE(r.isOk());
    return *r;
  }

  TempDir dir;
  FakeClock clock;
  test::MetadataBackend backend;
  std::string pg_url;  // PostgreSQL: the test's database (reopen() opens it again)
  WorkQueue hashq{1};
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<MetadataStore> meta;
  std::unique_ptr<Registry> registry;
};

}  // namespace

TEST_CASE("gc: unreferenced content past the grace period goes; referenced and young content stays", "[gc]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string kept_image = g.image("team/app", "v1", "layer-kept");
  std::string lone = g.blob("team/app", std::string(1000, 'x'));  // pushed, never used by a manifest
  g.clock.advance(2 * kHour);
  std::string young = g.blob("team/app", "young and unreferenced");

  GcOptions o;
  o.grace_ms = kHour;
  SECTION("a dry run reports and deletes nothing") {
    o.dry_run = true;
    GcReport r = g.run(o);
    CHECK(r.blobs_deleted == 1);
    CHECK(r.bytes_freed == 1000);
    CHECK(g.stored(lone));
  }
  SECTION("a real run deletes record, links and file") {
    GcReport r = g.run(o);
    CHECK(r.blobs_deleted == 1);
    CHECK(r.bytes_freed == 1000);
    CHECK_FALSE(g.meta->blobRecord(lone).isOk());
    CHECK_FALSE(g.fileExists(lone));
    CHECK_FALSE(*g.meta->blobLinked("team/app", lone));
    CHECK(g.stored(young));
    CHECK(g.stored(kept_image));
    CHECK(g.stored(digestOf(std::string("layer-kept")).str()));
    CHECK(g.registry->resolveManifest("team/app", "v1").isOk());
    // Idempotent: nothing more to do.
    CHECK(g.run(o).blobs_deleted == 0);
  }
}

TEST_CASE("gc: untagged manifests by age, keeping what kept manifests need", "[gc]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string old_untagged = g.image("team/app", "tmp", "old layer");
  REQUIRE(g.registry->deleteManifest("team/app", "tmp").isOk());  // the tag only
  std::string child = g.image("team/app", "c", "child layer", "{\"c\":1}");
  std::string idx = g.index("team/app", "multi", {child});
  REQUIRE(g.registry->deleteManifest("team/app", "c").isOk());  // the child is untagged, its index is not
  std::string tagged = g.image("team/app", "v1", "v1 layer", "{\"v\":1}");
  json subject = {{"mediaType", media::kOciManifest}, {"digest", tagged},
                  {"size", g.meta->manifest("team/app", tagged)->size}};
  std::string signature = g.image("team/app", "sha256-x", "sig", "{\"sig\":1}", subject);
  REQUIRE(g.registry->deleteManifest("team/app", "sha256-x").isOk());  // an untagged referrer of a kept image
  g.clock.advance(10 * kDay);
  std::string fresh_untagged = g.image("team/app", "fresh", "fresh layer", "{\"f\":1}");
  REQUIRE(g.registry->deleteManifest("team/app", "fresh").isOk());

  GcOptions o;
  o.untagged_older_than_ms = 7 * kDay;
  o.grace_ms = kHour;
  GcReport r = g.run(o);
  CHECK(r.manifests_deleted == 1);
  CHECK_FALSE(g.meta->manifest("team/app", old_untagged).isOk());
  CHECK_FALSE(g.stored(digestOf(std::string("old layer")).str()));  // its layer went with it
  CHECK(g.meta->manifest("team/app", child).isOk());      // child of a tagged index
  CHECK(g.stored(digestOf(std::string("child layer")).str()));
  CHECK(g.meta->manifest("team/app", idx).isOk());
  CHECK(g.meta->manifest("team/app", signature).isOk());  // referrer of a tagged image
  CHECK(g.meta->referrers("team/app", tagged).size() == 1);
  CHECK(g.meta->manifest("team/app", fresh_untagged).isOk());  // younger than the policy
}

TEST_CASE("gc: content wanted again while a run is under way is never deleted", "[gc]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string layer = "layer of an image being pushed";
  std::string config = "{\"racing\":1}";
  std::string l = g.blob("team/a", layer);
  std::string c = g.blob("team/a", config);
  g.clock.advance(2 * kHour);
  GcOptions o;
  o.grace_ms = kHour;
  GcObserver obs;
  bool pushed = false;
  // Right before the sweep, after the mark decided the layer was unreferenced, a client
  // mounts it elsewhere and pushes a manifest that uses it.
  obs.progress = [&](uint64_t done, uint64_t, const std::string& phase) {
    if (phase != "sweep" || done != 0 || pushed) return;
    pushed = true;
    REQUIRE(g.registry->mount("team/b", "team/a", *Digest::parse(l)).isOk());
    REQUIRE(*g.registry->mount("team/b", "team/a", *Digest::parse(c)));
    json m = imageManifest(config, layer);
    REQUIRE(g.registry->putManifest("team/b", "v1", m.dump(), std::string(media::kOciManifest)).isOk());
  };
  GcReport r = g.run(o, obs);
  REQUIRE(pushed);
  CHECK(r.blobs_deleted == 0);
  CHECK(g.stored(l));
  CHECK(g.stored(c));
  CHECK(*g.meta->blobLinked("team/b", l));
}

TEST_CASE("gc: a write whose clock was read before the run started still protects what it touches", "[gc]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string l = g.blob("team/a", "layer stamped late");
  std::string c = g.blob("team/a", "{\"late\":2}");
  g.clock.advance(2 * kHour);
  GcOptions o;
  o.grace_ms = kHour;
  GcObserver obs;
  bool pushed = false;
  obs.progress = [&](uint64_t done, uint64_t, const std::string& phase) {
    if (phase != "sweep" || done != 0 || pushed) return;
    pushed = true;
    // A push that read its clock long before the run, and got the writer only now.
    ManifestWrite w;
    w.repository = "team/a";
    w.digest = "sha256:" + std::string(64, 'c');
    w.record.media_type = std::string(media::kOciManifest);
    w.record.size = 100;
    w.tag = "late";
    w.blobs = {c, l};
    REQUIRE(g.meta->putManifest(w, g.clock.nowMillis() - 3 * kHour).isOk());
  };
  GcReport r = g.run(o, obs);
  REQUIRE(pushed);
  CHECK(r.blobs_deleted == 0);
  CHECK(g.stored(l));
  CHECK(g.stored(c));
}

TEST_CASE("gc: a referrer pushed during a run keeps its old untagged subject", "[gc]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string subject = g.image("team/app", "tmp", "subject layer", "{\"s\":1}");
  REQUIRE(g.registry->deleteManifest("team/app", "tmp").isOk());
  g.clock.advance(10 * kDay);
  GcOptions o;
  o.grace_ms = kHour;
  o.untagged_older_than_ms = kDay;
  GcObserver obs;
  bool pushed = false;
  obs.progress = [&](uint64_t done, uint64_t, const std::string& phase) {
    if (phase != "untagged manifests" || done != 0 || pushed) return;
    pushed = true;
    json sub = {{"mediaType", media::kOciManifest}, {"digest", subject},
                {"size", g.meta->manifest("team/app", subject)->size}};
    g.image("team/app", "sig", "signature", "{\"sig\":2}", sub);
  };
  GcReport r = g.run(o, obs);
  REQUIRE(pushed);
  CHECK(r.manifests_deleted == 0);
  CHECK(g.meta->manifest("team/app", subject).isOk());
  CHECK(g.stored(digestOf(std::string("subject layer")).str()));
}

TEST_CASE("retention deletes a tag only as it was read; repositories with immutable tags stay", "[gc][policy]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  g.image("team/app", "ci-1", "one", "{\"n\":1}");
  auto before = g.meta->tagRecords("team/app");
  REQUIRE(before.isOk());
  REQUIRE(before->size() == 1);
  g.clock.advance(1000);
  g.image("team/app", "ci-1", "two", "{\"n\":2}");  // pushed again meanwhile
  auto gone = g.meta->deleteTagIf(before->at(0));
  REQUIRE(gone.isOk());
  CHECK_FALSE(*gone);
  CHECK(g.registry->resolveManifest("team/app", "ci-1").isOk());
  Policy p;
  p.scope = "team/*";
  p.immutable = {"ci-*"};
  REQUIRE(g.registry->setPolicy(p).isOk());
  CHECK(g.registry->deleteRepository("team/app").code() == Code::kDenied);
  REQUIRE(g.registry->deletePolicy("team/*").isOk());
  CHECK(g.registry->deleteRepository("team/app").isOk());
}

TEST_CASE("gc: a manifest push racing the deletion of its blobs fails cleanly", "[gc]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string layer = "a layer nobody uses yet";
  std::string config = "{\"late\":1}";
  std::string l = g.blob("team/a", layer);
  std::string c = g.blob("team/a", config);
  g.clock.advance(2 * kHour);
  GcOptions o;
  o.grace_ms = kHour;
  GcReport r = g.run(o);
  CHECK(r.blobs_deleted == 2);
  // The push that comes after the sweep: refused, nothing half-stored.
  json m = imageManifest(config, layer);
  auto put = g.registry->putManifest("team/a", "v1", m.dump(), std::string(media::kOciManifest));
  CHECK(put.status().code() == Code::kManifestBlobUnknown);
  CHECK_FALSE(g.registry->resolveManifest("team/a", "v1").isOk());
  // Uploading again makes it whole.
  g.blob("team/a", layer);
  g.blob("team/a", config);
  CHECK(g.registry->putManifest("team/a", "v1", m.dump(), std::string(media::kOciManifest)).isOk());
  CHECK(g.stored(l));
}

TEST_CASE("gc: a digest whose lock a push holds is deferred, the rest goes on", "[gc]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::vector<std::string> garbage;
  for (int i = 0; i < 20; ++i) garbage.push_back(g.blob("team/a", "garbage " + std::to_string(i)));
  g.clock.advance(2 * kHour);
  GcOptions o;
  o.grace_ms = kHour;
  o.yield = 0;
  std::atomic<uint64_t> swept{0};
  GcObserver obs;
  obs.progress = [&](uint64_t done, uint64_t, const std::string& phase) {
    if (phase == "sweep") swept = done;
  };
  auto held = g.registry->lockContent(garbage[7]);  // a long push of the same content
  REQUIRE(held.isOk());
  GcReport report;
  std::thread runner([&] { report = g.run(o, obs); });
  // Everything but the busy digest is swept while its lock is held.
  bool others = wharf::test::waitFor([&] { return swept.load() >= garbage.size() - 1; });
  CHECK(others);
  CHECK(g.fileExists(garbage[7]));
  held->release();
  runner.join();
  CHECK(report.blobs_deleted == garbage.size());
  for (const auto& d : garbage) CHECK_FALSE(g.fileExists(d));
}

TEST_CASE("gc: a crash between deleting a record and its file is finished by the next run", "[gc]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string lone = g.blob("team/a", "to be collected");
  g.clock.advance(2 * kHour);
  // The first half of a collection, then "kill -9".
  auto half = g.meta->collectBlobs({{lone, {"team/a"}}}, g.clock.nowMillis());
  REQUIRE(half.isOk());
  REQUIRE(half->at(0));
  REQUIRE(g.fileExists(lone));
  g.reopen();
  GcOptions o;
  o.grace_ms = kHour;
  GcReport r = g.run(o);
  CHECK(r.orphan_files_deleted == 1);
  CHECK_FALSE(g.fileExists(lone));
  // A file younger than the grace period without a record (a push between its two
  // steps) stays.
  auto young = g.blobs->put("in flight", DigestAlgorithm::kSha256);
  REQUIRE(young.isOk());
  g.clock.set(RealClock::instance().nowMillis());  // the run starts as the file is written
  r = g.run(o);
  CHECK(r.orphan_files_deleted == 0);
  CHECK(g.fileExists(young->str()));
}

TEST_CASE("retention: keep the last N and the recent; immutable tags are never expired", "[gc][policy]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  for (int i = 1; i <= 5; ++i) {
    g.image("team/app", "build-" + std::to_string(i), "layer " + std::to_string(i), "{\"n\":" + std::to_string(i) + "}");
    g.clock.advance(kDay);
  }
  g.image("team/app", "release-1", "release layer", "{\"r\":1}");
  Policy p;
  p.scope = "team/*";
  p.match = "build-*";
  p.keep_last = 2;
  p.immutable = {"build-1"};
  REQUIRE(g.registry->setPolicy(p).isOk());
  auto dry = g.registry->applyRetention("team/app", true);
  REQUIRE(dry.isOk());
  CHECK(*dry == std::vector<std::string>{"build-2", "build-3"});
  GcOptions o;
  o.grace_ms = kHour;
  o.untagged_older_than_ms = 0;  // untagged manifests go at once
  GcReport r = g.run(o);
  CHECK(r.tags_expired == 2);
  CHECK(r.manifests_deleted == 2);
  for (const char* t : {"build-1", "build-4", "build-5", "release-1"}) {
    INFO(t);
    CHECK(g.registry->resolveManifest("team/app", t).isOk());
  }
  CHECK_FALSE(g.registry->resolveManifest("team/app", "build-2").isOk());
  CHECK_FALSE(g.stored(digestOf(std::string("layer 2")).str()));
  // At push time too: a sixth build pushes build-4 out.
  g.image("team/app", "build-6", "layer 6", "{\"n\":6}");
  CHECK_FALSE(g.registry->resolveManifest("team/app", "build-4").isOk());
  CHECK(g.registry->resolveManifest("team/app", "build-5").isOk());
  CHECK(g.registry->resolveManifest("team/app", "build-1").isOk());

  SECTION("keep_days keeps what is recent whatever the count") {
    Policy days;
    days.scope = "team/app";
    days.match = "*";
    days.keep_days = 3;
    REQUIRE(g.registry->deletePolicy("team/*").isOk());
    REQUIRE(g.registry->setPolicy(days).isOk());
    auto expired = g.registry->applyRetention("team/app", true);
    REQUIRE(expired.isOk());
    CHECK(*expired == std::vector<std::string>{"build-1"});  // older than 3 days
  }
}

TEST_CASE("immutable tags: no overwrite, no delete; the same content may be pushed again", "[gc][policy]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string v1 = g.image("team/app", "v1.0", "one");
  Policy p;
  p.scope = "team/app";
  p.immutable = {"v*"};
  REQUIRE(g.registry->setPolicy(p).isOk());
  // Same content again: fine.
  g.image("team/app", "v1.0", "one");
  // Moving it: denied, naming the rule.
  g.blob("team/app", "two");
  json m = imageManifest("{\"config\":1}", "two");
  auto moved = g.registry->putManifest("team/app", "v1.0", m.dump(), std::string(media::kOciManifest));
  CHECK(moved.status().code() == Code::kDenied);
  CHECK(moved.status().message().find("v*") != std::string::npos);
  CHECK(g.registry->deleteManifest("team/app", "v1.0").code() == Code::kDenied);
  CHECK(g.registry->deleteManifest("team/app", v1).code() == Code::kDenied);
  CHECK(*g.meta->resolveTag("team/app", "v1.0") == v1);
  // Other tags are free.
  CHECK(g.registry->putManifest("team/app", "latest", m.dump(), std::string(media::kOciManifest)).isOk());
  CHECK(g.registry->deleteManifest("team/app", "latest").isOk());
}

TEST_CASE("immutable tags: the metadata write itself refuses a move (no check-then-act race)", "[gc][policy]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string first = g.image("team/app", "v1", "first");
  ManifestWrite w;
  w.repository = "team/app";
  w.digest = "sha256:" + std::string(64, 'b');
  w.record.media_type = std::string(media::kOciManifest);
  w.record.size = 10;
  w.tag = "v1";
  w.immutable_rule = "\"v*\" (policy team/*)";
  Status st = g.meta->putManifest(w, g.clock.nowMillis());
  CHECK(st.code() == Code::kDenied);
  CHECK(*g.meta->resolveTag("team/app", "v1") == first);
  CHECK_FALSE(g.meta->manifest("team/app", w.digest).isOk());  // nothing half-written
  w.tag = "v2";  // a new immutable tag may be created
  CHECK(g.meta->putManifest(w, g.clock.nowMillis()).isOk());
}

TEST_CASE("policy: JSON validation and matching", "[gc][policy]") {
  auto ok = Policy::fromJson("team/*", json{{"retention", {{"keep_last", 10}, {"match", "ci-*"}}}, {"immutable", {"v*"}}});
  REQUIRE(ok.isOk());
  CHECK(ok->keep_last == 10);
  CHECK(ok->keep_days == -1);
  CHECK(Policy::fromJson("team/*", ok->toJson()).isOk());
  CHECK_FALSE(Policy::fromJson("Team/*", json::object()).isOk());
  CHECK_FALSE(Policy::fromJson("team/*", json{{"retention", {{"keep_last", -1}}}}).isOk());
  CHECK_FALSE(Policy::fromJson("team/*", json{{"retention", json::object()}}).isOk());
  CHECK_FALSE(Policy::fromJson("team/*", json{{"bogus", 1}}).isOk());
  CHECK_FALSE(Policy::fromJson("team/*", json{{"immutable", "v*"}}).isOk());
  CHECK(globMatch("v*", "v1.2"));
  CHECK(globMatch("*-rc?", "1.0-rc1"));
  CHECK_FALSE(globMatch("v*", "latest"));
  CHECK(globMatch("*", ""));
  CHECK(scopeCovers("team/*", "team/a/b"));
  CHECK_FALSE(scopeCovers("team/*", "team"));
  CHECK_FALSE(scopeCovers("team/*", "teams/a"));
  CHECK(scopeCovers("team/a", "team/a"));
}

TEST_CASE("storage usage: shared layers count once per scope", "[gc]") {
  Gc g(GENERATE(from_range(test::metadataBackends())));
  std::string shared(5000, 's');
  g.image("team/a", "v1", shared, "{\"a\":1}");
  g.image("team/b", "v1", shared, "{\"b\":1}");
  g.image("other/c", "v1", std::string(700, 'c'), "{\"c\":1}");
  StorageUsage team = *storageUsage(*g.registry, "team/*");
  StorageUsage a = *storageUsage(*g.registry, "team/a");
  CHECK(team.repositories == 2);
  CHECK(team.manifests == 2);
  CHECK(a.bytes > 5000);
  // The namespace holds the shared layer once: less than the sum of its repositories.
  CHECK(team.bytes < 2 * a.bytes);
  CHECK(team.bytes > a.bytes);
  CHECK(storageUsage(*g.registry, "*")->bytes > team.bytes);
}

TEST_CASE("metadata schema 1 is migrated: tags keep their digests and gain a push time", "[gc]") {
  TempDir dir;
  {
    LmdbEnv::Options eo;
    eo.map_size = 64ull << 20;
    eo.durable = false;
    auto env = std::move(LmdbEnv::open(dir / "meta", eo)).value();
    Dbi meta_db = *env->openDb("meta"), tags = *env->openDb("tags"), manifests = *env->openDb("manifests"),
        repos = *env->openDb("repos");
    auto w = std::move(env->write()).value();
    REQUIRE(w.put(meta_db, "schema", "1").isOk());
    REQUIRE(w.put(repos, "team/app", R"({"created":5})").isOk());
    std::string d = "sha256:" + std::string(64, 'a');
    REQUIRE(w.put(manifests, std::string("team/app") + '\0' + d, R"({"mediaType":"x","size":3,"created":1234})").isOk());
    REQUIRE(w.put(tags, std::string("team/app") + '\0' + "v1", d).isOk());
    REQUIRE(w.commit().isOk());
  }
  LmdbMetadataOptions o;
  o.map_size = 64ull << 20;
  o.durable = false;
  auto meta = openLmdbMetadataStore(dir / "meta", o);
  INFO(meta.status().toString());
  REQUIRE(meta.isOk());
  CHECK(*(*meta)->resolveTag("team/app", "v1") == "sha256:" + std::string(64, 'a'));
  auto tags = (*meta)->tagRecords("team/app");
  REQUIRE(tags.isOk());
  REQUIRE(tags->size() == 1);
  CHECK(tags->at(0).pushed_ms == 1234);
}

}  // namespace gc_test
