// SharedDocument: read-modify-write on a file, an LMDB record and a PostgreSQL row
// (sealed or not), and the notification another replica's change brings.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "shared/store/shared_document.h"
#include "tests/support/postgres.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace shared_document_test {

using namespace wharf;
using wharf::test::PostgresServer;
using wharf::test::TempDir;

namespace {

enum class Kind { kFile, kLmdb, kPostgres };

std::vector<Kind> kinds() {
  if (PostgresServer::available()) return {Kind::kFile, Kind::kLmdb, Kind::kPostgres};
  return {Kind::kFile, Kind::kLmdb};
}

struct Opened {
  std::shared_ptr<LmdbEnv> env;
  std::string pg_url;
  std::unique_ptr<SharedDocument> doc;
};

std::unique_ptr<SharedDocument> open(Kind kind, TempDir& dir, Opened& o, const std::string& key = "") {
  Result<std::unique_ptr<SharedDocument>> doc = Status(Code::kInternal, "");
  if (kind == Kind::kFile) doc = openFileDocument(dir / "doc.json");
  if (kind == Kind::kLmdb) {
    if (!o.env) {
      LmdbEnv::Options opts;
      opts.map_size = 16ull << 20;
      opts.durable = false;
      o.env = std::shared_ptr<LmdbEnv>(std::move(LmdbEnv::open(dir / "env", opts)).value());
    }
    doc = openLmdbDocument(o.env, "docs", "one");
  }
  if (kind == Kind::kPostgres) {
    if (o.pg_url.empty()) o.pg_url = PostgresServer::shared().freshDatabase();
    auto db = PgPool::open(o.pg_url, 4);
    REQUIRE(db.isOk());
    doc = openPgDocument(std::shared_ptr<PgPool>(std::move(db).value()), "one", key);
  }
  INFO(doc.status().toString());
  REQUIRE(doc.isOk());
  return std::move(doc).value();
}

Result<std::string> increment(const std::optional<std::string>& current) {
  return std::to_string(current ? std::stoi(*current) + 1 : 1);
}

}  // namespace

TEST_CASE("shared document: read-modify-write, nothing lost under concurrent writers", "[store]") {
  TempDir dir;
  Opened o;
  Kind kind = GENERATE(from_range(kinds()));
  auto doc = open(kind, dir, o);
  CHECK_FALSE(doc->read()->has_value());
  CHECK(*doc->update(increment) == "1");
  CHECK(**doc->read() == "1");
  // An aborted change writes nothing.
  auto refused = doc->update([](const std::optional<std::string>&) -> Result<std::string> {
    return Status(Code::kInvalidArgument, "no");
  });
  CHECK(refused.status().code() == Code::kInvalidArgument);
  CHECK(**doc->read() == "1");
  // Writers at once (on PostgreSQL, through two instances: two replicas): every
  // increment counts.
  auto other = kind == Kind::kPostgres ? open(kind, dir, o) : nullptr;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      SharedDocument& d = other && t % 2 ? *other : *doc;
      for (int i = 0; i < 25; ++i) REQUIRE(d.update(increment).isOk());
    });
  }
  for (auto& th : threads) th.join();
  CHECK(**doc->read() == "101");
}

TEST_CASE("shared document on PostgreSQL: sealed, and another replica's change is heard", "[store][pg]") {
  if (!PostgresServer::available()) return;
  TempDir dir;
  Opened o;
  std::string key(32, 's');
  auto a = open(Kind::kPostgres, dir, o, key);
  auto b = open(Kind::kPostgres, dir, o, key);
  std::atomic<int> heard{0};
  b->watch([&] { ++heard; });
  REQUIRE(test::waitFor([&] { return heard.load() >= 1; }));  // listening (it reports once it is)
  int before = heard.load();
  REQUIRE(a->update([](const std::optional<std::string>&) -> Result<std::string> { return std::string("secret doc"); })
              .isOk());
  REQUIRE(test::waitFor([&] { return heard.load() > before; }));
  CHECK(**b->read() == "secret doc");
  // Sealed: the row holds no clear text, and another key does not open it.
  auto db = PgPool::open(o.pg_url, 1);
  REQUIRE(db.isOk());
  auto row = (*db)->query("SELECT body FROM documents WHERE name = 'one'");
  REQUIRE(row.isOk());
  CHECK(std::string(row->text(0, 0)).find("secret") == std::string::npos);
  auto wrong = open(Kind::kPostgres, dir, o, std::string(32, 'w'));
  auto read = wrong->read();
  REQUIRE_FALSE(read.isOk());
  CHECK(read.status().message().find("sealing key") != std::string::npos);
}

}  // namespace shared_document_test
