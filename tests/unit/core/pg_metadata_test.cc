// What PostgreSQL adds to the metadata store's contract (the shared contract is tested on
// both backends in metadata_store_test.cc): versioned migrations, several replicas
// writing at once, and a database that goes away and comes back.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "core/metadata/pg_metadata_store.h"
#include "shared/oci/digest.h"
#include "shared/store/pg.h"
#include "tests/support/postgres.h"

namespace pg_metadata_test {

using namespace wharf;

namespace {

std::shared_ptr<PgPool> pool(const std::string& url, size_t size = 4) {
  auto p = PgPool::open(url, size);
  INFO(p.status().toString());
  REQUIRE(p.isOk());
  return std::shared_ptr<PgPool>(std::move(p).value());
}

std::unique_ptr<MetadataStore> store(std::shared_ptr<PgPool> db) {
  auto m = openPgMetadataStore(std::move(db));
  INFO(m.status().toString());
  REQUIRE(m.isOk());
  return std::move(m).value();
}

std::string dg(const std::string& content) { return digestOf(content).str(); }

ManifestWrite tagged(const std::string& repo, const std::string& content, const std::string& tag,
                     std::vector<std::string> blobs) {
  ManifestWrite w;
  w.repository = repo;
  w.digest = dg(content);
  w.record.media_type = "application/vnd.oci.image.manifest.v1+json";
  w.record.size = content.size();
  w.tag = tag;
  w.blobs = std::move(blobs);
  return w;
}

}  // namespace

TEST_CASE("postgres: connection strings are logged without their password", "[pg]") {
  CHECK(redactedUrl("postgres://wharf:s3cret@db:5432/wharf") == "postgres://wharf:***@db:5432/wharf");
  CHECK(redactedUrl("postgres://wharf@db/wharf") == "postgres://wharf@db/wharf");
  CHECK(redactedUrl("host=db password=s3cret") == "(a connection string)");
  CHECK(pgArray({"a", "b\"c", "d\\e"}) == "{\"a\",\"b\\\"c\",\"d\\\\e\"}");
}

TEST_CASE("postgres metadata: migrations are planned, applied once, recorded; a newer database is refused", "[pg]") {
  if (!test::PostgresServer::available()) return;
  auto db = pool(test::PostgresServer::shared().freshDatabase());
  auto plan = planMigrations(*db, "metadata", metadataMigrations());
  REQUIRE(plan.isOk());
  CHECK(plan->current == 0);
  REQUIRE(plan->pending.size() == metadataMigrations().size());
  auto m = store(db);
  plan = planMigrations(*db, "metadata", metadataMigrations());
  REQUIRE(plan.isOk());
  CHECK(plan->current == metadataMigrations().back().version);
  CHECK(plan->pending.empty());
  // Replicas starting together: each migration once.
  std::vector<std::thread> starts;
  std::atomic<int> failed{0};
  for (int i = 0; i < 4; ++i) {
    starts.emplace_back([&] {
      if (!openPgMetadataStore(db).isOk()) ++failed;
    });
  }
  for (auto& t : starts) t.join();
  CHECK(failed == 0);
  auto rows = db->query("SELECT count(*) FROM wharf_schema WHERE component = 'metadata'");
  REQUIRE(rows.isOk());
  CHECK(rows->integer(0, 0) == static_cast<int64_t>(metadataMigrations().size()));
  // A database migrated by a newer build.
  REQUIRE(db->query("INSERT INTO wharf_schema (component, version, description) VALUES ('metadata', 999, 'future')").isOk());
  auto newer = openPgMetadataStore(db);
  REQUIRE_FALSE(newer.isOk());
  CHECK(newer.status().code() == Code::kCorruption);
  CHECK(newer.status().message().find("run a newer wharf-core") != std::string::npos);
}

TEST_CASE("postgres metadata: two replicas pushing to the same repository at once lose nothing", "[pg]") {
  if (!test::PostgresServer::available()) return;
  std::string url = test::PostgresServer::shared().freshDatabase();
  auto a = store(pool(url)), b = store(pool(url));
  constexpr int kThreads = 8, kPushes = 25;
  std::atomic<int> errors{0};
  std::mutex mu;
  std::string first_error;
  auto check = [&](const Status& st) {
    if (st.isOk()) return;
    ++errors;
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = st.toString();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MetadataStore& m = t % 2 == 0 ? *a : *b;
      for (int i = 0; i < kPushes; ++i) {
        std::string layer = "layer " + std::to_string(i % 3);  // shared content: conflicting touches
        std::string n = std::to_string(t) + "-" + std::to_string(i);
        check(m.commitBlob("team/app", dg(layer), layer.size(), "", 1000 + i));
        check(m.putManifest(tagged("team/app", "manifest " + n, "v" + n, {dg(layer)}), 1000 + i));
        check(m.putManifest(tagged("team/app", "manifest " + n, "latest", {dg(layer)}), 1000 + i));
      }
    });
  }
  for (auto& t : threads) t.join();
  INFO(first_error);
  CHECK(errors == 0);
  auto page = a->tags("team/app", "", 1000);
  REQUIRE(page.isOk());
  CHECK(page->items.size() == kThreads * kPushes + 1);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPushes; ++i) {
      std::string n = std::to_string(t) + "-" + std::to_string(i);
      auto d = b->resolveTag("team/app", "v" + n);
      REQUIRE(d.isOk());
      CHECK(*d == dg("manifest " + n));
    }
  }
  auto latest = a->resolveTag("team/app", "latest");
  REQUIRE(latest.isOk());
  CHECK(a->manifest("team/app", *latest).isOk());
}

TEST_CASE("postgres: a listener hears notifications, and \"*\" once its connection came back", "[pg]") {
  if (!test::PostgresServer::available()) return;
  test::PostgresServer server;  // its own, to restart
  std::string url = server.freshDatabase();
  std::mutex mu;
  std::vector<std::string> heard;
  auto has = [&](const std::string& what) {
    std::lock_guard lock(mu);
    return std::find(heard.begin(), heard.end(), what) != heard.end();
  };
  PgListener listener(url, "wharf_test", [&](const std::string& payload) {
    std::lock_guard lock(mu);
    heard.push_back(payload);
  });
  auto db = pool(url, 1);
  // Notified until heard (the listener may not be listening yet at the first).
  auto notify = [&](const std::string& what) {
    return test::waitFor([&] {
      (void)db->query("SELECT pg_notify('wharf_test', $1)", {what});
      return has(what);
    }, 20000);
  };
  CHECK(notify("hello"));
  server.stop();
  server.start();
  CHECK(test::waitFor([&] { return has("*"); }, 20000));
  CHECK(notify("again"));
}

TEST_CASE("postgres metadata: the database going away is unavailable, not an error; it recovers by itself", "[pg]") {
  if (!test::PostgresServer::available()) return;
  test::PostgresServer server;  // its own, to stop
  auto db = pool(server.freshDatabase());
  auto m = store(db);
  REQUIRE(m->commitBlob("r", dg("a"), 1, "", 1000).isOk());
  REQUIRE(m->putManifest(tagged("r", "m1", "v1", {dg("a")}), 1000).isOk());

  server.stop();
  auto tag = m->resolveTag("r", "v1");
  REQUIRE_FALSE(tag.isOk());
  CHECK(tag.status().code() == Code::kUnavailable);
  Status put = m->putManifest(tagged("r", "m2", "v2", {dg("a")}), 1000);
  CHECK(put.code() == Code::kUnavailable);

  server.start();
  auto again = m->resolveTag("r", "v1");
  INFO(again.status().toString());
  REQUIRE(again.isOk());
  CHECK(*again == dg("m1"));
  CHECK(m->putManifest(tagged("r", "m2", "v2", {dg("a")}), 1000).isOk());
  CHECK(m->resolveTag("r", "v2").isOk());
}

TEST_CASE("postgres metadata: tags and manifest records are cached per replica, dropped when any replica writes "
          "the repository",
          "[pg]") {
  if (!test::PostgresServer::available()) return;
  std::string url = test::PostgresServer::shared().freshDatabase();
  auto db = pool(url);
  auto a = store(db), b = store(pool(url));
  REQUIRE(a->commitBlob("team/app", dg("layer"), 5, "", 1000).isOk());
  REQUIRE(a->putManifest(tagged("team/app", "m0", "v1", {dg("layer")}), 1000).isOk());
  // b reads once its notification connection is up (the cache starts then).
  REQUIRE(test::waitFor([&] { return b->resolveTag("team/app", "v1").isOk(); }));
  REQUIRE(test::waitFor([&] {
    // Each round starts from a write through a store (b's entries of the repository go).
    // A change behind the stores' back (no notification) then shows only once b asks
    // PostgreSQL: once b's cache is on, b keeps answering what it read.
    REQUIRE(a->putManifest(tagged("team/app", "m0", "v1", {dg("layer")}), 1000).isOk());
    REQUIRE(*b->resolveTag("team/app", "v1") == dg("m0"));
    REQUIRE(db->query("UPDATE tags SET digest = $1 WHERE tag = 'v1'", {dg("elsewhere")}).isOk());
    return *b->resolveTag("team/app", "v1") == dg("m0");
  }));
  REQUIRE(db->query("UPDATE tags SET digest = $1 WHERE tag = 'v1'", {dg("m0")}).isOk());
  CHECK(b->manifest("team/app", dg("m0"))->size == 2);

  // Moved on a: b resolves the new digest as soon as a's write returned, every time.
  for (int i = 1; i <= 100; ++i) {
    std::string content = "m" + std::to_string(i);
    REQUIRE(a->putManifest(tagged("team/app", content, "v1", {dg("layer")}), 1000 + i).isOk());
    auto seen = b->resolveTag("team/app", "v1");
    REQUIRE(seen.isOk());
    CHECK(*seen == dg(content));
    CHECK(b->manifest("team/app", dg(content))->size == content.size());
  }
  // Deleted on b: a no longer finds it.
  REQUIRE(a->resolveTag("team/app", "v1").isOk());
  REQUIRE(b->deleteTag("team/app", "v1").isOk());
  CHECK(a->resolveTag("team/app", "v1").status().code() == Code::kManifestUnknown);
}

}  // namespace pg_metadata_test
