#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "shared/store/lmdb.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace lmdb_test {

using namespace wharf;
using wharf::test::TempDir;

namespace {

std::unique_ptr<LmdbEnv> openEnv(const std::string& path, unsigned max_readers = 512) {
  LmdbEnv::Options o;
  o.map_size = 64ull << 20;
  o.durable = false;
  o.max_readers = max_readers;
  auto env = LmdbEnv::open(path, o);
  INFO(env.status().toString());
  REQUIRE(env.isOk());
  return std::move(env).value();
}

std::string getString(LmdbEnv& env, Dbi db, const std::string& key, Code* code = nullptr) {
  auto txn = env.read();
  REQUIRE(txn.isOk());
  std::string_view v;
  Status st = txn->get(db, key, &v);
  if (code != nullptr) *code = st.code();
  return st.isOk() ? std::string(v) : std::string("<") + std::string(codeName(st.code())) + ">";
}

void putCommit(LmdbEnv& env, Dbi db, const std::string& k, const std::string& v) {
  auto w = env.write();
  REQUIRE(w.isOk());
  REQUIRE(w->put(db, k, v).isOk());
  REQUIRE(w->commit().isOk());
}

}  // namespace

TEST_CASE("LMDB put, get, overwrite, delete and not found") {
  TempDir dir;
  auto env = openEnv(dir / "db");
  auto db = env->openDb("things");
  REQUIRE(db.isOk());
  {
    auto w = env->write();
    REQUIRE(w.isOk());
    REQUIRE(w->put(*db, "k1", "v1").isOk());
    REQUIRE(w->put(*db, "k2", std::string("bin\0ary", 7)).isOk());
    // A write transaction sees its own writes.
    std::string_view v;
    REQUIRE(w->get(*db, "k1", &v).isOk());
    CHECK(v == "v1");
    REQUIRE(w->commit().isOk());
  }
  CHECK(getString(*env, *db, "k1") == "v1");
  CHECK(getString(*env, *db, "k2") == std::string("bin\0ary", 7));
  Code code = Code::kOk;
  getString(*env, *db, "missing", &code);
  CHECK(code == Code::kNotFound);
  {
    auto r = env->read();
    REQUIRE(r.isOk());
    CHECK(r->has(*db, "k1"));
    CHECK_FALSE(r->has(*db, "k3"));
  }

  putCommit(*env, *db, "k1", "v1b");
  CHECK(getString(*env, *db, "k1") == "v1b");

  {
    auto w = env->write();
    REQUIRE(w.isOk());
    REQUIRE(w->del(*db, "k1").isOk());
    CHECK(w->del(*db, "k1").code() == Code::kNotFound);
    CHECK(w->del(*db, "never").code() == Code::kNotFound);
    REQUIRE(w->commit().isOk());
  }
  getString(*env, *db, "k1", &code);
  CHECK(code == Code::kNotFound);
  CHECK(getString(*env, *db, "k2").size() == 7);
}

TEST_CASE("LMDB databases are separate namespaces and survive reopening") {
  TempDir dir;
  {
    auto env = openEnv(dir / "db");
    auto a = env->openDb("a");
    auto b = env->openDb("b");
    REQUIRE(a.isOk());
    REQUIRE(b.isOk());
    CHECK(*a != *b);
    putCommit(*env, *a, "key", "in a");
    putCommit(*env, *b, "key", "in b");
    CHECK(getString(*env, *a, "key") == "in a");
    CHECK(getString(*env, *b, "key") == "in b");
  }
  auto env = openEnv(dir / "db");
  auto a = env->openDb("a");
  auto b = env->openDb("b");
  REQUIRE(a.isOk());
  REQUIRE(b.isOk());
  CHECK(getString(*env, *a, "key") == "in a");
  CHECK(getString(*env, *b, "key") == "in b");
}

TEST_CASE("LmdbEnv::open fails cleanly on a bad path") {
  TempDir dir;
  LmdbEnv::Options o;
  o.map_size = 1 << 20;
  auto env = LmdbEnv::open(dir / "no/such/dir/db", o);
  CHECK_FALSE(env.isOk());
  CHECK(env.status().code() == Code::kIoError);
}

TEST_CASE("an uncommitted write transaction is aborted on destruction") {
  TempDir dir;
  auto env = openEnv(dir / "db");
  auto db = env->openDb("d");
  REQUIRE(db.isOk());
  putCommit(*env, *db, "kept", "1");
  {
    auto w = env->write();
    REQUIRE(w.isOk());
    REQUIRE(w->put(*db, "lost", "x").isOk());
    REQUIRE(w->del(*db, "kept").isOk());
  }
  Code code = Code::kOk;
  getString(*env, *db, "lost", &code);
  CHECK(code == Code::kNotFound);
  CHECK(getString(*env, *db, "kept") == "1");
  // The writer lock was released: another write goes through.
  putCommit(*env, *db, "after", "2");
  CHECK(getString(*env, *db, "after") == "2");
  // A moved-from transaction does not abort the moved-to one.
  {
    auto w = env->write();
    REQUIRE(w.isOk());
    WriteTxn moved(std::move(*w));
    REQUIRE(moved.put(*db, "moved", "3").isOk());
    REQUIRE(moved.commit().isOk());
  }
  CHECK(getString(*env, *db, "moved") == "3");
}

TEST_CASE("LMDB cursors walk keys in byte order") {
  TempDir dir;
  auto env = openEnv(dir / "db");
  auto db = env->openDb("d");
  REQUIRE(db.isOk());
  {
    auto w = env->write();
    REQUIRE(w.isOk());
    for (const char* k : {"c", "a", "ba", "b", "b\x01", "B", "cc"}) REQUIRE(w->put(*db, k, std::string("v") + k).isOk());
    REQUIRE(w->put(*db, std::string("a\0z", 3), "nul").isOk());
    REQUIRE(w->commit().isOk());
  }
  auto r = env->read();
  REQUIRE(r.isOk());
  auto c = r->cursor(*db);
  CHECK_FALSE(c.valid());
  std::vector<std::string> keys;
  for (bool ok = c.first(); ok; ok = c.next()) keys.emplace_back(c.key());
  CHECK(keys == std::vector<std::string>{"B", "a", std::string("a\0z", 3), "b", "b\x01", "ba", "c", "cc"});
  CHECK_FALSE(c.valid());

  REQUIRE(c.seek("b"));
  CHECK(c.key() == "b");
  CHECK(c.value() == "vb");
  REQUIRE(c.next());
  CHECK(c.key() == "b\x01");
  REQUIRE(c.seek("bb"));  // first key >= "bb"
  CHECK(c.key() == "c");
  REQUIRE(c.seek(std::string("a\0", 2)));
  CHECK(c.key() == std::string("a\0z", 3));
  REQUIRE(c.seek(""));  // empty seeks to the first key
  CHECK(c.key() == "B");
  CHECK_FALSE(c.seek("d"));
  CHECK_FALSE(c.valid());

  // An empty database.
  auto empty = env->openDb("empty");
  REQUIRE(empty.isOk());
  auto r2 = env->read();
  REQUIRE(r2.isOk());
  auto c2 = r2->cursor(*empty);
  CHECK_FALSE(c2.first());
  CHECK_FALSE(c2.seek("a"));
}

TEST_CASE("a read transaction is a snapshot; a reused reader sees later commits") {
  TempDir dir;
  auto env = openEnv(dir / "db");
  auto db = env->openDb("d");
  REQUIRE(db.isOk());
  putCommit(*env, *db, "k", "1");
  {
    auto r = env->read();
    REQUIRE(r.isOk());
    putCommit(*env, *db, "k", "2");
    std::string_view v;
    REQUIRE(r->get(*db, "k", &v).isOk());
    CHECK(v == "1");  // snapshot from before the commit
  }
  // The reader released above is renewed here, on a fresh snapshot.
  CHECK(getString(*env, *db, "k") == "2");
  putCommit(*env, *db, "k", "3");
  CHECK(getString(*env, *db, "k") == "3");
}

TEST_CASE("read transactions are reused: many more than max_readers in sequence") {
  TempDir dir;
  // LMDB rounds the reader table up to whole pages, so the real limit is a few dozen.
  auto env = openEnv(dir / "db", /*max_readers=*/4);
  auto db = env->openDb("d");
  REQUIRE(db.isOk());
  putCommit(*env, *db, "k", "0");
  for (int i = 0; i < 5000; ++i) {
    if (i % 250 == 0) putCommit(*env, *db, "k", std::to_string(i));
    auto r = env->read();
    REQUIRE(r.isOk());
    std::string_view v;
    REQUIRE(r->get(*db, "k", &v).isOk());
    // A renewed reader must not see a stale snapshot.
    REQUIRE(v == std::to_string(i - i % 250));
  }
  size_t limit = 0;
  {
    // Holding readers at once eventually hits the table's limit: a clean error.
    std::vector<ReadTxn> held;
    for (int i = 0; i < 2000; ++i) {
      auto r = env->read();
      if (!r.isOk()) {
        CHECK(r.status().code() == Code::kIoError);
        break;
      }
      held.push_back(std::move(r).value());
    }
    limit = held.size();
    CHECK(limit >= 4);
    CHECK(limit < 2000);
  }
  // All of them were released; the same number can be held again, and writes still work.
  {
    std::vector<ReadTxn> held;
    for (size_t i = 0; i < limit; ++i) {
      auto r = env->read();
      REQUIRE(r.isOk());
      held.push_back(std::move(r).value());
    }
  }
  for (int i = 1; i <= 20; ++i) {
    putCommit(*env, *db, "k", "again" + std::to_string(i));
    CHECK(getString(*env, *db, "k") == "again" + std::to_string(i));
  }
}

TEST_CASE("lmdb: big-endian keys sort as their numbers and read back", "[store][lmdb]") {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256}, ~uint64_t{0}}) {
    CHECK(bigEndian64(v).size() == 8);
    CHECK(fromBigEndian64(bigEndian64(v)) == v);
    CHECK(fromBigEndian64(bigEndian64(v) + "suffix") == v);  // the first 8 bytes
  }
  CHECK(bigEndian64(255) < bigEndian64(256));
  CHECK(bigEndian64(1ull << 40) > bigEndian64(1ull << 39));
  CHECK(fromBigEndian32(bigEndian32(0xdeadbeef)) == 0xdeadbeef);
  CHECK(bigEndian32(0x00ffffff) < bigEndian32(0x01000000));
  CHECK(fromBigEndian64("") == 0);
}

}  // namespace lmdb_test
