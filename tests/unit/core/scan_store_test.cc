#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/scan/layer_scan.h"
#include "core/scan/lmdb_scan_store.h"
#include "shared/store/lmdb.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace scan_store_test {

using namespace wharf;
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

std::unique_ptr<LmdbScanStore> openStore(const TempDir& dir) {
  auto store = LmdbScanStore::open(openEnv(dir / "scan.lmdb"));
  INFO(store.status().message());
  REQUIRE(store.isOk());
  return std::move(store).value();
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

}  // namespace

TEST_CASE("scan store: layers and images round trip", "[core][scan]") {
  TempDir dir;
  auto store = openStore(dir);

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
  auto store = openStore(dir);
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
    store.reset();
    auto reopened = openStore(dir);
    CHECK(reopened->dbGeneration() == 2);
    CHECK(reopened->dbMeta() == meta2);
    CHECK(advisories(*reopened) == a2);
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
    store.reset();  // a crash mid-import

    auto reopened = openStore(dir);
    CHECK(reopened->dbGeneration() == 1);
    CHECK(reopened->dbMeta() == meta1);
    CHECK(advisories(*reopened) == a1);
    // Committing the abandoned generation now would publish nothing of it: its rows are gone.
    auto g = reopened->beginGeneration();
    REQUIRE(g.isOk());
    REQUIRE(reopened->commitGeneration(*g, {{"advisories", 0}}).isOk());
    CHECK(advisories(*reopened).empty());
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
  auto store = openStore(dir);
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
  {
    auto store = openStore(dir);
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
  auto store = openStore(dir);
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

}  // namespace scan_store_test
