#include <catch2/catch.hpp>

#include <atomic>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/scan/layer_scan.h"
#include "core/scan/lmdb_scan_store.h"
#include "core/scan/pg_scan_store.h"
#include "shared/store/lmdb.h"
#include "shared/store/pg.h"
#include "tests/support/postgres.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/core/metadata_backends.h"

// Each file's own names: the test binaries are unity builds.
namespace scan_store_test {

using namespace wharf;
using wharf::test::MetadataBackend;
using wharf::test::TempDir;

namespace {

std::shared_ptr<LmdbEnv> openEnv(const std::string& path) {
  LmdbEnv::Options o;
  o.map_size = 256ull << 20;
  o.durable = false;
  auto env = LmdbEnv::open(path, o);
  INFO(env.status().message());
  REQUIRE(env.isOk());
  return std::shared_ptr<LmdbEnv>(std::move(env).value());
}

// The store on a backend (the metadata store's: test::metadataBackends()): LMDB in an
// environment of its own, or PostgreSQL in a database of the test binary's server, a fresh
// one unless pg_url names one (to open the same database again, as a restart or another
// replica).
struct Store {
  MetadataBackend backend;
  std::string path;    // LMDB: the environment
  std::string pg_url;  // PostgreSQL: the database (set at the first open)
  size_t pool_size = 4;
  std::unique_ptr<ScanStore> scans;

  Store(const std::string& path, MetadataBackend backend, std::string pg_url = "", size_t pool_size = 4)
      : backend(backend), path(path), pg_url(std::move(pg_url)), pool_size(pool_size) {
    open();
  }
  void open() {
    if (backend == MetadataBackend::kPostgres) {
      if (pg_url.empty()) pg_url = test::PostgresServer::shared().freshDatabase();
      auto db = PgPool::open(pg_url, pool_size);
      INFO(db.status().toString());
      REQUIRE(db.isOk());
      auto s = openPgScanStore(std::shared_ptr<PgPool>(std::move(db).value()));
      INFO(s.status().toString());
      REQUIRE(s.isOk());
      scans = std::move(s).value();
      return;
    }
    auto s = LmdbScanStore::open(openEnv(path));
    INFO(s.status().toString());
    REQUIRE(s.isOk());
    scans = std::move(s).value();
  }
  void close() { scans.reset(); }
  void reopen() {
    close();
    open();
  }
  const char* name() const { return backend == MetadataBackend::kPostgres ? "backend: PostgreSQL" : "backend: LMDB"; }
  ScanStore* operator->() { return scans.get(); }
  ScanStore& operator*() { return *scans; }
};

// A statement on the store's PostgreSQL database (what the interface does not show): the
// first column of its first row, 0 when it has none.
int64_t pgQuery(const Store& s, const std::string& sql) {
  auto db = PgPool::open(s.pg_url, 1);
  INFO(db.status().toString());
  REQUIRE(db.isOk());
  auto r = (*db)->query(sql);
  INFO(sql << ": " << r.status().toString());
  REQUIRE(r.isOk());
  return r->rows() > 0 ? r->integer(0, 0) : 0;
}

std::map<std::string, std::string> advisories(ScanStore& store) {
  std::map<std::string, std::string> out;
  Status s = store.forEachAdvisory([&](std::string_view id, std::string_view osv) {
    out.emplace(std::string(id), std::string(osv));
    return Status::ok();
  });
  REQUIRE(s.isOk());
  return out;
}

std::string osv(const std::string& id) {
  return R"({"id": ")" + id + R"(", "affected": [{"package": {"ecosystem": "npm", "name": "x"}, "versions": ["1.0.0"]}]})";
}

// A completed image result, shaped as the scanner writes it.
nlohmann::json imageDoc(int n) {
  return {{"status", "completed"},
          {"manifest", "sha256:" + std::to_string(n)},
          {"os", {{"id", "debian"}, {"version_id", "12"}}},
          {"packages", nlohmann::json::array({{{"type", "deb"}, {"name", "p" + std::to_string(n)}, {"version", "1"},
                                                {"path", "var/lib/dpkg/status"}, {"layer", "sha256:l"}}})},
          {"findings", nlohmann::json::array({{{"advisory", "A-" + std::to_string(n)}}})},
          {"findings_key", "key-" + std::to_string(n)}};
}

// What re-matching reads of a completed result, as one line: os, packages, findings key.
std::string inventoryOf(const nlohmann::json& doc) {
  std::string out = doc["os"].value("id", "") + "/" + doc["os"].value("version_id", "") + ";";
  for (const auto& p : doc["packages"])
    out += p.value("type", "") + ":" + p.value("name", "") + ":" + p.value("version", "") + ":" + p.value("layer", "") + ",";
  return out + ";" + doc.value("findings_key", "");
}

std::string inventoryLine(const ImageInventory& inv, std::string_view key) {
  std::string out = inv.os.id + "/" + inv.os.version_id + ";";
  for (const auto& p : inv.packages) out += p.type + ":" + p.name + ":" + p.version + ":" + p.layer + ",";
  return out + ";" + std::string(key);
}

// Every inventory, two to a page.
std::map<std::string, std::string> inventories(ScanStore& store) {
  std::map<std::string, std::string> out;
  std::string after;
  for (;;) {
    auto last = store.inventoryPage(after, 2, [&](const std::string& digest, const ScanStore::Inventory& inv) {
      out.emplace(digest, inventoryLine(inv.inv, inv.findings_key));
    });
    REQUIRE(last.isOk());
    if (last->empty()) return out;
    CHECK(*last > after);
    after = *last;
  }
}

// A layer result that says which writer wrote it.
nlohmann::json layerDoc(int n) {
  return {{"version", kLayerScanVersion},
          {"packages", nlohmann::json::array({{{"type", "apk"}, {"name", "p" + std::to_string(n)}, {"version", "1"},
                                               {"path", "lib/apk/db/installed"}}})},
          {"recorded", {"lib/apk/db/installed"}},
          {"stats", {{"members", n}}}};
}

// The import an advisory id of the concurrency tests belongs to: the id up to its last '-'.
std::string importOf(const std::string& id) { return id.substr(0, id.rfind('-')); }

}  // namespace

TEST_CASE("scan store: layers and images round trip", "[core][scan]") {
  TempDir dir;
  Store store(dir / "scan.lmdb", GENERATE(from_range(test::metadataBackends())));
  INFO(store.name());

  CHECK(store->layer("sha256:nope").status().code() == Code::kNotFound);
  CHECK(store->image("sha256:nope").status().code() == Code::kNotFound);
  CHECK(store->imageCount() == 0);

  LayerScan scan;
  Package p;
  p.type = "deb";
  p.name = "libc6";
  p.version = "2.36-9+deb12u1";
  p.source_name = "glibc";
  p.path = "var/lib/dpkg/status";
  scan.packages.push_back(p);
  scan.recorded = {"var/lib/dpkg/status"};
  scan.whiteouts = {"etc/x"};
  scan.stats.members = 12;
  scan.stats.expanded_bytes = 1ull << 33;  // beyond 32 bits, through CBOR
  REQUIRE(store->putLayer("sha256:layer1", layerScanToJson(scan)).isOk());
  auto got = store->layer("sha256:layer1");
  REQUIRE(got.isOk());
  CHECK(*got == layerScanToJson(scan));
  auto back = layerScanFromJson(*got);
  REQUIRE(back.isOk());
  CHECK(back->packages == scan.packages);
  CHECK(back->stats.expanded_bytes == 1ull << 33);

  // Replaced by a later put.
  scan.packages.clear();
  REQUIRE(store->putLayer("sha256:layer1", layerScanToJson(scan)).isOk());
  CHECK(store->layer("sha256:layer1")->at("packages").empty());

  REQUIRE(store->putImage("sha256:img1", imageDoc(1)).isOk());
  CHECK(*store->image("sha256:img1") == imageDoc(1));
  CHECK(store->imageCount() == 1);

  REQUIRE(store->putImages({{"sha256:img2", imageDoc(2)}, {"sha256:img3", imageDoc(3)}, {"sha256:img1", imageDoc(11)}}).isOk());
  CHECK(store->imageCount() == 3);
  CHECK(*store->image("sha256:img1") == imageDoc(11));
  CHECK(*store->image("sha256:img3") == imageDoc(3));
  REQUIRE(store->putImages({}).isOk());
  CHECK(store->imageCount() == 3);

  // The inventories of completed results, in digest order, without their findings.
  std::vector<std::string> seen;
  auto page = store->inventoryPage("", 10, [&](const std::string& digest, const ScanStore::Inventory& inv) {
    seen.push_back(digest + "=" + std::string(inv.findings_key));
  });
  REQUIRE(page.isOk());
  CHECK(*page == "sha256:img3");
  CHECK(seen == std::vector<std::string>{"sha256:img1=key-11", "sha256:img2=key-2", "sha256:img3=key-3"});
  CHECK(inventories(*store)["sha256:img2"] == inventoryOf(imageDoc(2)));

  int calls = 0;
  page = store->inventoryPage("sha256:img1", 1, [&](const std::string&, const ScanStore::Inventory&) { ++calls; });
  CHECK(calls == 1);
  CHECK(*page == "sha256:img2");
  page = store->inventoryPage("sha256:img3", 5, [&](const std::string&, const ScanStore::Inventory&) { ++calls; });
  CHECK(page->empty());
  CHECK(calls == 1);

  // A result that is not completed has no inventory, and replaces the one before it.
  nlohmann::json failed = {{"status", "failed"}, {"error", "layer too large"}};
  REQUIRE(store->putImage("sha256:img2", failed).isOk());
  REQUIRE(store->putImage("sha256:img4", failed).isOk());
  CHECK(*store->image("sha256:img2") == failed);
  CHECK(store->imageCount() == 4);
  auto invs = inventories(*store);
  CHECK(invs.size() == 2);
  CHECK(invs.count("sha256:img2") == 0);
  CHECK(invs.count("sha256:img4") == 0);
  CHECK(invs["sha256:img1"] == inventoryOf(imageDoc(11)));
  // Completed again: its inventory is back.
  REQUIRE(store->putImages({{"sha256:img2", imageDoc(22)}}).isOk());
  CHECK(inventories(*store)["sha256:img2"] == inventoryOf(imageDoc(22)));

  // A new match replaces only the findings and what goes with them.
  nlohmann::json match = {{"findings", nlohmann::json::array({{{"advisory", "B"}}})},
                          {"counts", {{"HIGH", 1}}},
                          {"findings_key", "key-new"},
                          {"db_generation", 7},
                          {"matched_at", 42}};
  REQUIRE(store->putMatches({{"sha256:img1", match}, {"sha256:img4", match}, {"sha256:none", match}}).isOk());
  nlohmann::json expected = imageDoc(11);
  for (auto it = match.begin(); it != match.end(); ++it) expected[it.key()] = it.value();
  CHECK(*store->image("sha256:img1") == expected);
  CHECK(*store->image("sha256:img4") == failed);  // not completed: no match to replace
  CHECK(store->image("sha256:none").status().code() == Code::kNotFound);
  CHECK(inventories(*store)["sha256:img1"] == inventoryOf(expected));

  // Layers and images are apart.
  CHECK(store->layer("sha256:img1").status().code() == Code::kNotFound);
  CHECK(store->image("sha256:layer1").status().code() == Code::kNotFound);
}

TEST_CASE("scan store: database generations switch on commit", "[core][scan]") {
  TempDir dir;
  Store store(dir / "scan.lmdb", GENERATE(from_range(test::metadataBackends())));
  INFO(store.name());
  CHECK(store->dbGeneration() == 0);
  CHECK(store->dbMeta() == nlohmann::json::object());
  CHECK(advisories(*store).empty());

  auto g1 = store->beginGeneration();
  REQUIRE(g1.isOk());
  CHECK(*g1 == 1);
  REQUIRE(store->addAdvisories(*g1, {{"A-1", osv("A-1")}, {"A-2", osv("A-2")}}).isOk());
  REQUIRE(store->addAdvisories(*g1, {{"A-3", osv("A-3")}}).isOk());
  // Not visible before its commit.
  CHECK(store->dbGeneration() == 0);
  CHECK(advisories(*store).empty());
  CHECK(store->dbMeta() == nlohmann::json::object());

  nlohmann::json meta1 = {{"sources", {"osv:Debian", "osv:npm"}}, {"advisories", 3}, {"imported_at", "2024-01-01T00:00:00Z"}};
  REQUIRE(store->commitGeneration(*g1, meta1).isOk());
  CHECK(store->dbGeneration() == 1);
  CHECK(store->dbMeta() == meta1);
  auto a1 = advisories(*store);
  REQUIRE(a1.size() == 3);
  CHECK(a1["A-1"] == osv("A-1"));
  CHECK(a1["A-3"] == osv("A-3"));

  SECTION("a later generation replaces the previous one's advisories") {
    auto g2 = store->beginGeneration();
    REQUIRE(g2.isOk());
    CHECK(*g2 == 2);
    REQUIRE(store->addAdvisories(*g2, {{"B-1", osv("B-1")}, {"A-1", osv("A-1") + " "}}).isOk());
    CHECK(advisories(*store) == a1);  // the current one still
    nlohmann::json meta2 = {{"advisories", 2}};
    REQUIRE(store->commitGeneration(*g2, meta2).isOk());
    CHECK(store->dbGeneration() == 2);
    CHECK(store->dbMeta() == meta2);
    auto a2 = advisories(*store);
    CHECK(a2.size() == 2);
    CHECK(a2.count("A-2") == 0);
    CHECK(a2.count("A-3") == 0);
    CHECK(a2["B-1"] == osv("B-1"));
    CHECK(a2["A-1"] == osv("A-1") + " ");

    // And it is the same state after a restart.
    store.reopen();
    CHECK(store->dbGeneration() == 2);
    CHECK(store->dbMeta() == meta2);
    CHECK(advisories(*store) == a2);
  }

  SECTION("a generation never committed stays invisible, and the next begin drops it") {
    auto g2 = store->beginGeneration();
    REQUIRE(g2.isOk());
    REQUIRE(store->addAdvisories(*g2, {{"Z-1", osv("Z-1")}, {"Z-2", osv("Z-2")}}).isOk());
    CHECK(advisories(*store) == a1);
    CHECK(store->dbGeneration() == 1);

    auto g3 = store->beginGeneration();  // the failed import's rows go
    REQUIRE(g3.isOk());
    CHECK(*g3 > 1);
    REQUIRE(store->addAdvisories(*g3, {{"C-1", osv("C-1")}}).isOk());
    REQUIRE(store->commitGeneration(*g3, {{"advisories", 1}}).isOk());
    CHECK(store->dbGeneration() == *g3);
    auto a3 = advisories(*store);
    CHECK(a3.size() == 1);
    CHECK(a3.count("C-1") == 1);
    CHECK(a3.count("Z-1") == 0);
  }

  SECTION("a generation never committed is dropped at open") {
    auto g2 = store->beginGeneration();
    REQUIRE(g2.isOk());
    REQUIRE(store->addAdvisories(*g2, {{"Z-1", osv("Z-1")}}).isOk());
    store.reopen();  // a crash mid-import

    CHECK(store->dbGeneration() == 1);
    CHECK(store->dbMeta() == meta1);
    CHECK(advisories(*store) == a1);
    // Committing the abandoned generation now would publish nothing of it: its rows are gone.
    auto g = store->beginGeneration();
    REQUIRE(g.isOk());
    REQUIRE(store->commitGeneration(*g, {{"advisories", 0}}).isOk());
    CHECK(advisories(*store).empty());
  }

  SECTION("forEachAdvisory stops at an error and returns it") {
    int n = 0;
    Status s = store->forEachAdvisory([&](std::string_view, std::string_view) {
      return ++n == 2 ? Status(Code::kCancelled, "enough") : Status::ok();
    });
    CHECK(s.code() == Code::kCancelled);
    CHECK(n == 2);
  }
}

TEST_CASE("scan store: many advisories across generations", "[core][scan]") {
  TempDir dir;
  Store store(dir / "scan.lmdb", GENERATE(from_range(test::metadataBackends())));
  INFO(store.name());
  // More than one deletion batch's worth in the generation replaced.
  for (int round = 0; round < 2; ++round) {
    auto g = store->beginGeneration();
    REQUIRE(g.isOk());
    std::vector<std::pair<std::string, std::string>> batch;
    const int count = round == 0 ? 25000 : 10;
    for (int i = 0; i < count; ++i) {
      batch.emplace_back("R" + std::to_string(round) + "-" + std::to_string(i), "{}");
      if (batch.size() == 5000) {
        REQUIRE(store->addAdvisories(*g, batch).isOk());
        batch.clear();
      }
    }
    if (!batch.empty()) REQUIRE(store->addAdvisories(*g, batch).isOk());
    REQUIRE(store->commitGeneration(*g, {{"round", round}}).isOk());
    auto all = advisories(*store);
    CHECK(all.size() == size_t(count));
    for (const auto& [id, text] : all) CHECK(id.rfind("R" + std::to_string(round) + "-", 0) == 0);
  }
}

TEST_CASE("scan store: state and reopening", "[core][scan]") {
  TempDir dir;
  Store store(dir / "scan.lmdb", GENERATE(from_range(test::metadataBackends())));
  INFO(store.name());
  {
    CHECK(store->state("etag:osv-debian").is_null());
    REQUIRE(store->setState("etag:osv-debian", "\"abc123\"").isOk());
    REQUIRE(store->setState("sources", {{"debian", true}, {"alpine", false}}).isOk());
    CHECK(store->state("etag:osv-debian") == "\"abc123\"");
    REQUIRE(store->setState("etag:osv-debian", "\"def456\"").isOk());
    CHECK(store->state("etag:osv-debian") == "\"def456\"");
    CHECK(store->state("sources")["alpine"] == false);

    REQUIRE(store->putLayer("sha256:l", {{"version", kLayerScanVersion}}).isOk());
    REQUIRE(store->putImage("sha256:i", imageDoc(1)).isOk());
    auto g = store->beginGeneration();
    REQUIRE(g.isOk());
    REQUIRE(store->addAdvisories(*g, {{"A-1", osv("A-1")}}).isOk());
    REQUIRE(store->commitGeneration(*g, {{"n", 1}}).isOk());
    // State keys are not the metadata's own keys.
    REQUIRE(store->setState("generation", 99).isOk());
    CHECK(store->dbGeneration() == 1);
  }
  store.reopen();
  CHECK(store->state("etag:osv-debian") == "\"def456\"");
  CHECK(store->state("sources") == nlohmann::json{{"debian", true}, {"alpine", false}});
  CHECK(store->state("generation") == 99);
  CHECK(store->layer("sha256:l").isOk());
  CHECK(*store->image("sha256:i") == imageDoc(1));
  CHECK(store->imageCount() == 1);
  CHECK(inventories(*store)["sha256:i"] == inventoryOf(imageDoc(1)));
  CHECK(store->dbGeneration() == 1);
  CHECK(store->dbMeta() == nlohmann::json{{"n", 1}});
  CHECK(advisories(*store).size() == 1);
}

TEST_CASE("scan store: every result's digest and every state key are listed, page by page", "[core][scan]") {
  TempDir dir;
  Store store(dir / "scan.lmdb", GENERATE(from_range(test::metadataBackends())));
  INFO(store.name());
  using Results = ScanStore::Results;
  CHECK(store->digests(Results::kLayers, "", 10)->empty());
  for (const char* d : {"sha256:l3", "sha256:l1", "sha256:l2"})
    REQUIRE(store->putLayer(d, {{"version", kLayerScanVersion}}).isOk());
  REQUIRE(store->putImage("sha256:i2", imageDoc(2)).isOk());
  REQUIRE(store->putImage("sha256:i1", {{"status", "failed"}, {"error", "no such layer"}}).isOk());
  CHECK(*store->digests(Results::kLayers, "", 2) == std::vector<std::string>{"sha256:l1", "sha256:l2"});
  CHECK(*store->digests(Results::kLayers, "sha256:l2", 2) == std::vector<std::string>{"sha256:l3"});
  CHECK(store->digests(Results::kLayers, "sha256:l3", 2)->empty());
  // Images completed or not; a completed one comes back whole from image().
  auto images = store->digests(Results::kImages, "", 10);
  REQUIRE(*images == std::vector<std::string>{"sha256:i1", "sha256:i2"});
  CHECK(*store->image(images->at(1)) == imageDoc(2));
  CHECK(store->stateKeys().empty());
  REQUIRE(store->setState("trigger_seq", 42).isOk());
  REQUIRE(store->setState("sources", {{"debian", true}}).isOk());
  CHECK(store->stateKeys() == std::vector<std::string>{"sources", "trigger_seq"});
}

TEST_CASE("scan store: a store of another layout version is refused", "[core][scan]") {
  TempDir dir;
  {
    auto env = openEnv(dir / "scan.lmdb");
    auto meta = env->openDb("scan_meta");
    REQUIRE(meta.isOk());
    auto txn = env->write();
    REQUIRE(txn.isOk());
    REQUIRE(txn->put(*meta, "schema", "2").isOk());
    REQUIRE(txn->commit().isOk());
  }
  auto store = LmdbScanStore::open(openEnv(dir / "scan.lmdb"));
  REQUIRE(!store.isOk());
  CHECK(store.status().code() == Code::kCorruption);
}

TEST_CASE("scan store: documents and inventories keep any bytes", "[core][scan]") {
  TempDir dir;
  Store store(dir / "scan.lmdb", GENERATE(from_range(test::metadataBackends())));
  INFO(store.name());
  // Names read from layers are not always UTF-8 (nor free of NUL bytes): results keep them
  // as they are, numbers keep their kind. (Compared in parentheses: Catch would print a
  // failure with dump(), which throws on such strings.)
  const std::string odd("caf\xe9\0\xff", 6);
  nlohmann::json layer = {{"version", kLayerScanVersion},
                          {"recorded", {odd}},
                          {"stats", {{"members", 1ull << 40}, {"ratio", 0.25}, {"delta", -3}}}};
  REQUIRE(store->putLayer("sha256:odd", layer).isOk());
  auto got_layer = store->layer("sha256:odd");
  REQUIRE(got_layer.isOk());
  CHECK((*got_layer == layer));
  CHECK(got_layer->at("stats").at("members").is_number_unsigned());

  nlohmann::json doc = imageDoc(5);
  doc["packages"][0]["name"] = odd;
  doc["packages"][0]["layer"] = "sha256:" + odd;
  doc["findings"][0]["package"] = odd;
  doc["repository"] = "team/app";
  doc["media_type"] = "application/vnd.oci.image.manifest.v1+json";
  REQUIRE(store->putImage("sha256:img5", doc).isOk());
  auto got = store->image("sha256:img5");
  REQUIRE(got.isOk());
  CHECK((*got == doc));
  std::vector<Package> packages;
  std::string repository, media_type, key;
  auto last = store->inventoryPage("", 10, [&](const std::string&, const ScanStore::Inventory& inv) {
    packages = inv.inv.packages;
    repository = inv.repository;
    media_type = inv.media_type;
    key = inv.findings_key;
  });
  REQUIRE(last.isOk());
  CHECK(*last == "sha256:img5");
  REQUIRE(packages.size() == 1);
  CHECK((packages[0].name == odd));
  CHECK((packages[0].layer == "sha256:" + odd));
  CHECK(repository == "team/app");
  CHECK(media_type == "application/vnd.oci.image.manifest.v1+json");
  CHECK(key == "key-5");

  // A cursor that is no digest (nor text): the digests after it in byte order.
  REQUIRE(store->putImages({{"sha256:img1", imageDoc(1)}, {"sha256:img2", imageDoc(2)}}).isOk());
  std::vector<std::string> seen;
  auto page = store->inventoryPage(std::string("sha256:img1\xff", 12), 10,
                                   [&](const std::string& digest, const ScanStore::Inventory&) { seen.push_back(digest); });
  REQUIRE(page.isOk());
  CHECK(seen == std::vector<std::string>{"sha256:img2", "sha256:img5"});
  // Such text is under no result; removing or matching it changes nothing.
  CHECK(store->image(std::string("sha256:\xff")).status().code() == Code::kNotFound);
  CHECK(store->layer(std::string("sha256:\0x", 9)).status().code() == Code::kNotFound);
  REQUIRE(store->putMatches({{std::string("sha256:\xff"), {{"findings_key", "k"}}}}).isOk());
  REQUIRE(store->removeImages({std::string("sha256:\xff"), "sha256:img1"}).isOk());
  CHECK(store->imageCount() == 2);
  CHECK(store->image("sha256:img1").status().code() == Code::kNotFound);
}

TEST_CASE("scan store on PostgreSQL: a database of a newer schema is refused", "[core][scan][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  Store store(dir / "scan.lmdb", MetadataBackend::kPostgres);
  store.close();
  pgQuery(store, "INSERT INTO wharf_schema (component, version, description) VALUES ('scans', 99, 'from the future')");
  auto db = PgPool::open(store.pg_url, 1);
  REQUIRE(db.isOk());
  auto reopened = openPgScanStore(std::shared_ptr<PgPool>(std::move(db).value()));
  REQUIRE_FALSE(reopened.isOk());
  CHECK(reopened.status().code() == Code::kCorruption);
}

TEST_CASE("scan store: state swapped only from the value expected", "[core][scan]") {
  TempDir dir;
  Store store(dir / "scan.lmdb", GENERATE(from_range(test::metadataBackends())));
  INFO(store.name());
  CHECK(*store->swapState("cursor", nlohmann::json(), 5));  // absent -> 5
  CHECK_FALSE(*store->swapState("cursor", nlohmann::json(), 6));
  CHECK_FALSE(*store->swapState("cursor", 4, 6));
  CHECK(store->state("cursor") == 5);
  CHECK(*store->swapState("cursor", 5, 9));
  CHECK(store->state("cursor") == 9);
}

TEST_CASE("scan store on PostgreSQL: replicas moving one cursor at once each move it from a value once",
          "[core][scan][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  constexpr int kMovers = 4, kMoves = 25;  // movers per replica
  Store a(dir / "a", MetadataBackend::kPostgres, "", kMovers);
  Store b(dir / "b", MetadataBackend::kPostgres, a.pg_url, kMovers);
  REQUIRE(*a->swapState("cursor", nlohmann::json(), 0));
  std::atomic<int> moved{0}, failures{0};
  std::vector<std::thread> threads;
  for (ScanStore* r : {a.scans.get(), b.scans.get()}) {
    for (int t = 0; t < kMovers; ++t) {
      threads.emplace_back([&, r] {
        for (int i = 0; i < kMoves; ++i) {
          auto now = r->state("cursor");
          if (!now.is_number_unsigned()) {
            ++failures;
            continue;
          }
          auto ok = r->swapState("cursor", now, now.get<uint64_t>() + 1);
          if (!ok.isOk()) ++failures;
          if (ok.isOk() && *ok) ++moved;
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(moved > 0);
  // Each success moved it by one from the value it read: no two replicas took one step.
  CHECK(a->state("cursor") == moved.load());
}

TEST_CASE("scan store on PostgreSQL: replicas writing the same results at once keep one whole result",
          "[core][scan][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  constexpr int kWriters = 4, kRounds = 10;  // writers per replica, each with a connection of its own
  Store a(dir / "a", MetadataBackend::kPostgres, "", kWriters);
  Store b(dir / "b", MetadataBackend::kPostgres, a.pg_url, kWriters);
  ScanStore* replicas[] = {a.scans.get(), b.scans.get()};
  auto result = [](int w, int round) { return 1000 + 100 * w + round; };

  std::mutex mu;
  std::vector<std::string> errors;
  {
    std::latch start(2 * kWriters);
    std::vector<std::thread> threads;
    for (int w = 0; w < 2 * kWriters; ++w) {
      threads.emplace_back([&, w] {
        ScanStore& s = *replicas[w % 2];
        start.arrive_and_wait();
        for (int round = 0; round < kRounds; ++round) {
          const int n = result(w, round);
          // The same layer; the same two images, in either order within a batch.
          std::vector<std::pair<std::string, nlohmann::json>> batch = {{"sha256:x", imageDoc(n)}, {"sha256:y", imageDoc(n)}};
          if (w % 2 == 1) std::swap(batch[0], batch[1]);
          for (Status st : {s.putLayer("sha256:layer", layerDoc(n)), s.putImages(batch), s.putImage("sha256:z", imageDoc(n))}) {
            if (st.isOk()) continue;
            std::lock_guard lock(mu);
            errors.push_back(st.toString());
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  CHECK(errors.empty());

  // Each key holds one writer's result whole: the document, the inventory and the match of
  // the same put (imageDoc(n) has n in each part), read alike on both replicas.
  std::set<int> written;
  for (int w = 0; w < 2 * kWriters; ++w)
    for (int round = 0; round < kRounds; ++round) written.insert(result(w, round));
  auto whichImage = [&](const nlohmann::json& doc) {
    for (int n : written)
      if (doc == imageDoc(n)) return n;
    return -1;
  };
  auto layer = b->layer("sha256:layer");
  REQUIRE(layer.isOk());
  bool one_layer = false;
  for (int n : written) one_layer = one_layer || *layer == layerDoc(n);
  CHECK(one_layer);
  auto invs = inventories(*a);
  CHECK(invs.size() == 3);
  for (const char* digest : {"sha256:x", "sha256:y", "sha256:z"}) {
    INFO(digest);
    auto doc = a->image(digest);
    REQUIRE(doc.isOk());
    int n = whichImage(*doc);
    CHECK(n > 0);
    CHECK(*b->image(digest) == *doc);
    CHECK(invs[digest] == inventoryOf(imageDoc(n)));
  }
  CHECK(a->imageCount() == 3);

  // Re-matching on both at once: each result takes one match whole, the rest stays.
  {
    std::latch start(2);
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; ++r) {
      threads.emplace_back([&, r] {
        start.arrive_and_wait();
        for (int round = 0; round < kRounds; ++round) {
          nlohmann::json match = {{"findings", nlohmann::json::array({{{"advisory", "M-" + std::to_string(r)}}})},
                                  {"findings_key", "match-" + std::to_string(r)},
                                  {"db_generation", round}};
          Status st = replicas[r]->putMatches({{"sha256:x", match}, {"sha256:y", match}});
          if (st.isOk()) continue;
          std::lock_guard lock(mu);
          errors.push_back(st.toString());
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  CHECK(errors.empty());
  invs = inventories(*b);
  for (const char* digest : {"sha256:x", "sha256:y"}) {
    INFO(digest);
    auto doc = b->image(digest);
    REQUIRE(doc.isOk());
    std::string key = doc->value("findings_key", "");
    REQUIRE((key == "match-0" || key == "match-1"));
    CHECK(doc->at("findings") == nlohmann::json::array({{{"advisory", "M-" + key.substr(6)}}}));
    CHECK(doc->at("db_generation") == kRounds - 1);
    CHECK(invs[digest].substr(invs[digest].rfind(';') + 1) == key);  // the inventory's findings key too
  }
}

TEST_CASE("scan store on PostgreSQL: replicas importing at once publish one whole generation", "[core][scan][pg]") {
  if (!test::PostgresServer::available()) return;
  TempDir dir;
  constexpr int kImporters = 2, kRounds = 5, kBatches = 3, kBatch = 50;  // importers per replica
  Store a(dir / "a", MetadataBackend::kPostgres, "", kImporters + 1);
  Store b(dir / "b", MetadataBackend::kPostgres, a.pg_url, kImporters + 1);
  ScanStore* replicas[] = {a.scans.get(), b.scans.get()};

  // One import at a time, the latest: an import another replica's begin superseded is
  // refused, publishes nothing, and its rows go.
  auto ga = a->beginGeneration();
  REQUIRE(ga.isOk());
  REQUIRE(a->addAdvisories(*ga, {{"A-1", osv("A-1")}}).isOk());
  auto gb = b->beginGeneration();
  REQUIRE(gb.isOk());
  CHECK(*gb > *ga);  // a number is never handed out twice
  CHECK(a->addAdvisories(*ga, {{"A-2", osv("A-2")}}).code() == Code::kConflict);
  CHECK(a->commitGeneration(*ga, {{"by", "a"}}).code() == Code::kConflict);
  CHECK(b->dbGeneration() == 0);
  REQUIRE(b->addAdvisories(*gb, {{"B-1", osv("B-1")}}).isOk());
  REQUIRE(b->commitGeneration(*gb, {{"by", "b"}}).isOk());
  CHECK(a->dbGeneration() == *gb);
  CHECK(a->dbMeta() == nlohmann::json{{"by", "b"}});
  CHECK(advisories(*a) == std::map<std::string, std::string>{{"B-1", osv("B-1")}});
  // Neither a generation never begun nor one committed before can be switched to.
  CHECK(b->commitGeneration(*gb + 100, {{"by", "nobody"}}).code() == Code::kConflict);
  CHECK(b->commitGeneration(*ga, {{"by", "a"}}).code() == Code::kConflict);
  CHECK(pgQuery(a, "SELECT count(*) FROM scan_advisories") == 1);

  // Whole imports on both replicas at once, and a reader meanwhile: every read is one
  // import's advisories, all of them.
  std::mutex mu;
  std::vector<std::string> errors, reads_wrong;
  std::set<std::string> published;  // imports whose commit succeeded
  std::atomic<int> importing{2 * kImporters};
  std::thread reader([&] {
    while (importing.load() > 0) {
      std::map<std::string, std::string> got;
      Status st = a->forEachAdvisory([&](std::string_view id, std::string_view text) {
        got.emplace(std::string(id), std::string(text));
        return Status::ok();
      });
      std::lock_guard lock(mu);
      if (!st.isOk()) {
        errors.push_back("read: " + st.toString());
        continue;
      }
      std::set<std::string> imports;
      for (const auto& [id, text] : got) imports.insert(importOf(id));
      bool whole = imports.size() == 1 && (*imports.begin() == "B" ? got.size() == 1 : got.size() == kBatches * kBatch);
      if (!whole) reads_wrong.push_back(std::to_string(got.size()) + " advisories of " + std::to_string(imports.size()) + " imports");
    }
  });
  {
    std::latch start(2 * kImporters);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2 * kImporters; ++t) {
      threads.emplace_back([&, t] {
        ScanStore& s = *replicas[t % 2];
        start.arrive_and_wait();
        for (int round = 0; round < kRounds; ++round) {
          const std::string name = "I" + std::to_string(t) + "." + std::to_string(round);
          auto run = [&]() -> Status {
            auto g = s.beginGeneration();
            if (!g.isOk()) return g.status();
            for (int k = 0; k < kBatches; ++k) {
              std::vector<std::pair<std::string, std::string>> batch;
              for (int i = 0; i < kBatch; ++i) {
                std::string id = name + "-" + std::to_string(k * kBatch + i);
                batch.emplace_back(id, osv(id));
              }
              WHARF_RETURN_IF_ERROR(s.addAdvisories(*g, batch));
            }
            return s.commitGeneration(*g, {{"import", name}});
          };
          Status st = run();
          std::lock_guard lock(mu);
          if (st.isOk()) {
            published.insert(name);
          } else if (st.code() != Code::kConflict) {
            errors.push_back(name + ": " + st.toString());
          }
        }
        --importing;
      });
    }
    for (auto& t : threads) t.join();
  }
  reader.join();
  CHECK(errors.empty());
  CHECK(reads_wrong.empty());
  REQUIRE_FALSE(published.empty());  // the last import begun always gets through
  // The current generation is one published import, whole, the same on both replicas.
  std::string current = a->dbMeta().value("import", "");
  CHECK(published.count(current) == 1);
  CHECK(b->dbMeta() == a->dbMeta());
  CHECK(b->dbGeneration() == a->dbGeneration());
  auto all = advisories(*b);
  CHECK(all.size() == size_t(kBatches * kBatch));
  for (const auto& [id, text] : all) CHECK(importOf(id) == current);
  // And nothing else is left: neither superseded imports' rows nor replaced generations.
  CHECK(pgQuery(a, "SELECT count(*) FROM scan_advisories") == kBatches * kBatch);
  CHECK(pgQuery(a, "SELECT count(*) FROM scan_generations") == 0);
}

}  // namespace scan_store_test
