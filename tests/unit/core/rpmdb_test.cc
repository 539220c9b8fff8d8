#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/scan/rpmdb.h"

// Each file's own names: the test binaries are unity builds.
namespace rpmdb_test {

using namespace wharf;

namespace {

// --- Writers ---

void putBe32(std::string* s, uint32_t v) {
  s->push_back(static_cast<char>(v >> 24));
  s->push_back(static_cast<char>(v >> 16));
  s->push_back(static_cast<char>(v >> 8));
  s->push_back(static_cast<char>(v));
}

void put32(std::string* s, uint32_t v, bool big) {
  if (big) {
    putBe32(s, v);
    return;
  }
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}

void set32(std::string* s, size_t at, uint32_t v, bool big) {
  std::string b;
  put32(&b, v, big);
  s->replace(at, 4, b);
}

void set16(std::string* s, size_t at, uint16_t v, bool big) {
  (*s)[at + (big ? 1 : 0)] = static_cast<char>(v);
  (*s)[at + (big ? 0 : 1)] = static_cast<char>(v >> 8);
}

uint32_t get32(const std::string& s, size_t at, bool big) {
  auto b = [&](size_t i) { return uint32_t{static_cast<uint8_t>(s[at + i])}; };
  return big ? b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3) : b(3) << 24 | b(2) << 16 | b(1) << 8 | b(0);
}

constexpr uint32_t kString = 6, kBin = 7, kStringArray = 8, kI18n = 9, kInt32 = 4, kInt16 = 3;

// An rpm header blob as the databases store it: a region (HEADERIMMUTABLE with its
// trailer) around the entries added before dribble(), then the others.
class HeaderBuilder {
 public:
  HeaderBuilder& str(uint32_t tag, const std::string& s, uint32_t type = kString) {
    return add(tag, type, 1, s + '\0', 1);
  }
  HeaderBuilder& strArray(uint32_t tag, const std::vector<std::string>& v, uint32_t type = kStringArray) {
    std::string d;
    for (const auto& s : v) d += s + '\0';
    return add(tag, type, static_cast<uint32_t>(v.size()), d, 1);
  }
  HeaderBuilder& i32(uint32_t tag, std::vector<uint32_t> v) {
    std::string d;
    for (uint32_t x : v) putBe32(&d, x);
    return add(tag, kInt32, static_cast<uint32_t>(v.size()), d, 4);
  }
  HeaderBuilder& bin(uint32_t tag, const std::string& d) { return add(tag, kBin, static_cast<uint32_t>(d.size()), d, 1); }
  HeaderBuilder& dribble() {
    in_region_ = false;
    return *this;
  }
  HeaderBuilder& noRegion() {
    region_ = false;
    return *this;
  }

  std::string build() const {
    std::string index, data;
    auto emit = [&](const Tag& t) {
      while (data.size() % t.align != 0) data.push_back('\0');
      putBe32(&index, t.tag);
      putBe32(&index, t.type);
      putBe32(&index, static_cast<uint32_t>(data.size()));
      putBe32(&index, t.count);
      data += t.data;
    };
    uint32_t il = 0, in_region = 0;
    for (const Tag& t : tags_) in_region += t.in_region ? 1 : 0;
    if (region_) {
      // The region tag's entry, its offset patched once the trailer's place is known.
      putBe32(&index, 63);
      putBe32(&index, kBin);
      putBe32(&index, 0);
      putBe32(&index, 16);
      ++il;
    }
    for (const Tag& t : tags_) {
      if (t.in_region || !region_) {
        emit(t);
        ++il;
      }
    }
    if (region_) {
      std::string at;
      putBe32(&at, static_cast<uint32_t>(data.size()));
      index.replace(8, 4, at);
      putBe32(&data, 63);
      putBe32(&data, kBin);
      putBe32(&data, static_cast<uint32_t>(-static_cast<int32_t>(16 * (in_region + 1))));
      putBe32(&data, 16);
      for (const Tag& t : tags_) {
        if (!t.in_region) {
          emit(t);
          ++il;
        }
      }
    }
    std::string blob;
    putBe32(&blob, il);
    putBe32(&blob, static_cast<uint32_t>(data.size()));
    return blob + index + data;
  }

 private:
  struct Tag {
    uint32_t tag, type, count;
    std::string data;
    uint32_t align;
    bool in_region;
  };
  HeaderBuilder& add(uint32_t tag, uint32_t type, uint32_t count, std::string data, uint32_t align) {
    tags_.push_back(Tag{tag, type, count, std::move(data), align, in_region_});
    return *this;
  }
  std::vector<Tag> tags_;
  bool in_region_ = true;
  bool region_ = true;
};

HeaderBuilder pkg(const std::string& name, const std::string& version, const std::string& release,
                  std::optional<uint32_t> epoch, const std::string& arch, const std::string& srpm) {
  HeaderBuilder b;
  b.str(1000, name).str(1001, version).str(1002, release);
  if (epoch) b.i32(1003, {*epoch});
  b.str(1004, "a summary", kI18n);
  if (!arch.empty()) b.str(1022, arch);
  if (!srpm.empty()) b.str(1044, srpm);
  b.strArray(1117, {"bin", "lib", "share"});  // BASENAMES, for some bulk
  return b;
}

// Over 2 KiB: an overflow chain of several pages in a Berkeley DB of 512-byte pages.
std::string opensslLibs() {
  std::vector<std::string> dirs;
  for (int i = 0; i < 100; ++i) dirs.push_back("/usr/lib64/engines-3/" + std::to_string(i) + "/");
  return pkg("openssl-libs", "3.0.7", "27.el9", 1, "x86_64", "openssl-3.0.7-27.el9.src.rpm")
      .strArray(1118, dirs)
      .build();
}
std::string bash() { return pkg("bash", "5.1.8", "9.el9", std::nullopt, "x86_64", "bash-5.1.8-9.el9.src.rpm").build(); }
std::string tzdata() {
  return pkg("tzdata", "2024a", "1.el9", 0, "noarch", "tzdata-2024a-1.el9.src.rpm").build();
}
std::string gpgPubkey() {
  return pkg("gpg-pubkey", "fd431d51", "4ae0493b", std::nullopt, "", "").build();
}

// A raw blob: index entries as given (tag, type, offset, count), then data.
std::string rawBlob(const std::vector<std::vector<uint32_t>>& entries, const std::string& data,
                    std::optional<uint32_t> il = std::nullopt, std::optional<uint32_t> dl = std::nullopt) {
  std::string b;
  putBe32(&b, il.value_or(static_cast<uint32_t>(entries.size())));
  putBe32(&b, dl.value_or(static_cast<uint32_t>(data.size())));
  for (const auto& e : entries) {
    for (uint32_t v : e) putBe32(&b, v);
  }
  return b + data;
}

// NAME, VERSION, RELEASE at offsets 0, 2, 4 of "a\0b\0c\0".
std::string minimalData() { return std::string("a\0b\0c\0", 6); }
std::vector<std::vector<uint32_t>> minimalEntries() {
  return {{1000, kString, 0, 1}, {1001, kString, 2, 1}, {1002, kString, 4, 1}};
}

void requireError(const Result<Package>& r, const std::string& fragment) {
  INFO(r.status().toString());
  REQUIRE_FALSE(r.isOk());
  CHECK(r.status().code() == Code::kCorruption);
  CHECK(r.status().message().find(fragment) != std::string::npos);
}

void requireError(const Result<std::vector<Package>>& r, Code code, const std::string& fragment) {
  INFO(r.status().toString());
  REQUIRE_FALSE(r.isOk());
  CHECK(r.status().code() == code);
  CHECK(r.status().message().find(fragment) != std::string::npos);
}

// --- SQLite ---

struct Db {
  sqlite3* db = nullptr;
  Db() { REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK); }
  ~Db() { sqlite3_close(db); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO(sql << ": " << (err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  void insert(const std::string& sql, const std::string& value, bool as_blob = true) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    if (as_blob) {
      sqlite3_bind_blob(stmt, 1, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_text(stmt, 1, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    }
    REQUIRE(sqlite3_step(stmt) == SQLITE_DONE);
    sqlite3_finalize(stmt);
  }
  std::string serialize() {
    sqlite3_int64 size = 0;
    unsigned char* p = sqlite3_serialize(db, "main", &size, 0);
    REQUIRE(p != nullptr);
    std::string out(reinterpret_cast<const char*>(p), static_cast<size_t>(size));
    sqlite3_free(p);
    return out;
  }
};

// An rpmdb.sqlite as rpm creates it (the Packages table and one of its index tables).
std::string rpmSqlite(const std::vector<std::string>& blobs) {
  Db db;
  db.exec("CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)");
  db.exec("CREATE TABLE IF NOT EXISTS 'Name' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, "
          "FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))");
  for (const auto& b : blobs) db.insert("INSERT INTO Packages (blob) VALUES (?)", b);
  return db.serialize();
}

// --- Berkeley DB hash ---

struct BdbItem {
  uint32_t key;
  std::string data;
  bool offpage;
};

struct BdbFile {
  std::string bytes;
  uint32_t page_size;
  bool big;
  std::vector<std::vector<uint32_t>> chains;  // the overflow pages of each off-page item, in order
  size_t page(uint32_t pgno) const { return size_t{pgno} * page_size; }
};

// One metadata page, one hash page per element of hash_pages, then the overflow pages.
BdbFile buildBdb(const std::vector<std::vector<BdbItem>>& hash_pages, uint32_t page_size, bool big) {
  BdbFile f{std::string(), page_size, big, {}};
  uint32_t next_free = 1 + static_cast<uint32_t>(hash_pages.size());
  std::vector<std::string> overflow_pages;
  auto header = [&](std::string* pg, uint32_t pgno, uint32_t next, uint16_t entries, uint16_t hf, uint8_t type) {
    set32(pg, 8, pgno, big);
    set32(pg, 16, next, big);
    set16(pg, 20, entries, big);
    set16(pg, 22, hf, big);
    (*pg)[24] = 1;
    (*pg)[25] = static_cast<char>(type);
  };
  std::vector<std::string> pages;
  for (size_t h = 0; h < hash_pages.size(); ++h) {
    std::string pg(page_size, '\0');
    uint32_t pgno = static_cast<uint32_t>(1 + h);
    uint32_t cursor = page_size;
    uint16_t n = 0;
    auto put_item = [&](const std::string& item) {
      REQUIRE(cursor >= item.size() + 26 + 2 * (n + 1));
      cursor -= static_cast<uint32_t>(item.size());
      pg.replace(cursor, item.size(), item);
      set16(&pg, 26 + 2 * n, static_cast<uint16_t>(cursor), big);
      ++n;
    };
    for (const BdbItem& it : hash_pages[h]) {
      std::string key(1, '\1');
      put32(&key, it.key, big);
      put_item(key);
      if (!it.offpage) {
        put_item(std::string(1, '\1') + it.data);
        continue;
      }
      // The chain: as many overflow pages as the data needs.
      std::vector<uint32_t> chain;
      size_t room = page_size - 26;
      for (size_t off = 0; off < it.data.size(); off += room) chain.push_back(next_free++);
      for (size_t i = 0; i < chain.size(); ++i) {
        std::string ov(page_size, '\0');
        std::string part = it.data.substr(i * room, room);
        header(&ov, chain[i], i + 1 < chain.size() ? chain[i + 1] : 0, 1, static_cast<uint16_t>(part.size()), 7);
        ov.replace(26, part.size(), part);
        overflow_pages.push_back(ov);
      }
      f.chains.push_back(chain);
      std::string ref(1, '\3');
      ref += std::string(3, '\0');
      put32(&ref, chain.front(), big);
      put32(&ref, static_cast<uint32_t>(it.data.size()), big);
      put_item(ref);
    }
    header(&pg, pgno, 0, n, static_cast<uint16_t>(cursor), 13);
    pages.push_back(pg);
  }
  std::string meta(page_size, '\0');
  set32(&meta, 12, 0x061561, big);
  set32(&meta, 16, 9, big);
  set32(&meta, 20, page_size, big);
  meta[25] = 8;
  set32(&meta, 32, next_free - 1, big);
  f.bytes = meta;
  for (const auto& p : pages) f.bytes += p;
  for (const auto& p : overflow_pages) f.bytes += p;
  return f;
}

// key 0 (rpm's next-package-number record), two inline headers, two off-page ones.
BdbFile sampleBdb(bool big, uint32_t page_size = 1024) {
  std::string zero;
  put32(&zero, 5, big);
  return buildBdb({{{0, zero, false}, {1, bash(), false}, {2, gpgPubkey(), false}},
                   {{3, opensslLibs() + "", true}, {4, tzdata(), true}}},
                  page_size, big);
}

// A Berkeley DB hash file written by libdb 5.3 (db5.3_load, big-endian, 512-byte pages:
// its key 0 record and two off-page headers written by rpm 4.18: gamma with Epoch 7 and
// delta-libs, a subpackage with Epoch 1). 4608 bytes, given as its non-zero runs.
std::string libdbFixture() {
  static const std::pair<size_t, const char*> kRuns[] = {
      {7,
       "0100000000000615610000000900000200000800000000000000000008"
      },
      {52,
       "9320a70000fe00009de1a3dcb07500000000000000000001000000010000000000000000000000035e688dd100000001"
       "00000001"
      },
      {519,
       "01000000010000000000000000000401e5000d01fb01f601f101e5"
      },
      {997,
       "03a82a9500000006000004fc010000000401000000c90100000000000000000000000100000002000000000000000000"
       "0201ef000d01fb01ef000000000002"
      },
      {1076,
       "9320a70000fe00009de1a3dcb07500000000000000000001000000010000000000000000000000005e688dd100000001"
       "00000001"
      },
      {1519,
       "03a82a9500000003000004e001000000010000000000000001000000030000000000000004000101e600070000002900"
       "0002480000003f00000007000001a50000001000000064000000080000000000000001000003e8000000060000000200"
       "000001000003e9000000060000000800000001000003ea000000060000000c00000001000003eb000000040000001000"
       "000001000003ec000000090000001400000001000003ed000000090000001f00000001000003ee000000040000002400"
       "000001000003ef000000060000002800000001000003f1000000040000002c00000001000003f6000000060000003000"
       "000001000003f8000000090000003400000001000003fd000000060000004000000001000003fe000000060000004600"
       "00000100000414000000060000004d000000010000041700000008000000610000000100000418000000040000006800"
       "000003000004190000000800000074000000030000041a00000008000000c3000000030000042800000006000000d900"
       "0000010000045800000004000000e0000000010000045900000008000000e4000000010000046200000006000000ec00"
       "0000010000046400000006000000f3000000010000046500000006000000f8000000010000046600000006000000fd00"
       "0000010000046c00000006000000ff0000000100001393000000040000011400000001000013c6000000060000011800"
       "000000000000000001000000040000000300000005000101e600070001000013e4000000080000011e00000001000013"
       "e5000000040000016000000001000013e90000000800000164000000010000010100000004000001b800000001000001"
       "0500000007000001bc000000100000010d00000006000001cc000000010000011100000006000001f500000001000003"
       "f000000004000002380000000100000416000000040000023c0000000100000467000000040000024000000001000004"
       "68000000040000024400000001430067616d6d6100302e39003200000000000007746573742067616d6d610074657374"
       "006b158ec0766d0000000000004d495400556e737065636966696564006c696e7578006e6f617263680067616d6d612d"
       "302e392d322e7372632e72706d0067616d6d6100000100000a0100000a0100000a72706d6c696228436f6d7072657373"
       "656446696c654e616d6573290072706d6c69622846696c6544696765737473290072706d6c6962285061796c6f616446"
       "696c6573486176655072656669782900332e302e342d3100342e362e302d3100342e302d3100342e31382e3000000000"
       "08373a302e392d32002d4f32202d67006370696f00677a69700039006e6f617263682d64656269616e2d6c696e757800"
       "00000000087574662d380061663339653163313961663437386165663761303362000000000000000100000005000000"
       "040000000000010114000765393865666139643962616132323866623966393365333834326436643762313461313436"
       "356134353900000000000832336430343232623466656132386637373165383732373431626233373037393062336364"
       "303533386561666234363132333365383230623834623537613265000000003f00000007fffffdf00000001000000000"
       "000405edc01c9cf2f76c5460803f2035e774ff3262636136336436643739323261353662333532666463623833363139"
       "303763666564633830653800643439326566383139373934656630666166336263333864373330613262346364636634"
       "333563313437323737643263386462303439326162366333653630390000006b158ec00000007c000000036b158ec0"
      },
      {3079,
       "01000000060000000000000007000101e6000700000029000002640000003f00000007000001c1000000100000006400"
       "0000080000000000000001000003e8000000060000000200000001000003e9000000060000000d00000001000003ea00"
       "0000060000001300000001000003eb000000040000001c00000001000003ec000000090000002000000001000003ed00"
       "0000090000002500000001000003ee000000040000002c00000001000003ef000000060000003000000001000003f100"
       "0000040000003400000001000003f6000000060000003800000001000003f8000000090000003c00000001000003fd00"
       "0000060000004800000001000003fe000000060000004e00000001000004140000000600000055000000010000041700"
       "000008000000700000000100000418000000040000007c00000003000004190000000800000088000000030000041a00"
       "000008000000d7000000030000042800000006000000ed000000010000045800000004000000f4000000010000045900"
       "000008000000f8000000010000046200000006000001070000000100000464000000060000010e000000010000046500"
       "0000060000011300000001000004660000000600000118000000010000046c000000060000011a000000010000139300"
       "0000040000013000000001000013c6000000060000013400000000000000000001000000070000000600000008000101"
       "e600070001000013e4000000080000013a00000001000013e5000000040000017c00000001000013e900000008000001"
       "80000000010000010100000004000001d4000000010000010500000007000001d8000000100000010d00000006000001"
       "e80000000100000111000000060000021100000001000003f00000000400000254000000010000041600000004000002"
       "580000000100000467000000040000025c0000000100000468000000040000026000000001430064656c74612d6c6962"
       "7300332e302e370032372e656c39000000000000016c696273006c6962730000006b158eda766d0000000000004d4954"
       "00556e737065636966696564006c696e7578006e6f617263680064656c74612d332e302e372d32372e656c392e737263"
       "2e72706d0064656c74612d6c69627300000100000a0100000a0100000a72706d6c696228436f6d707265737365644669"
       "6c654e616d6573290072706d6c69622846696c6544696765737473290072706d6c6962285061796c6f616446696c6573"
       "486176655072656669782900332e302e342d3100342e362e302d3100342e302d3100342e31382e300000000008313a33"
       "2e302e372d32372e656c39002d4f32202d67006370696f00677a69700039006e6f617263682d64656269616e2d6c696e"
       "75780000000000000800000000000000010000000800000007000000000001013000077574662d380061663339653163"
       "313961663437386165663761303362653938656661396439626161323238666239663933653338343264366437623134"
       "613134363561343539000000000008323364303432326234666561323866373731653837323734316262333730373930"
       "62336364303533386561666234363132333365383230623834623537613265000000003f00000007fffffdf000000010"
       "00000000000421c77af69379bc878b7036349e69fa444763393462363731386264383539633138616534653433656366"
       "623462613835303035656663656465003262383237313030623135656333356134303162616233316338623031336237"
       "39656662303731656234323065623937306466663330323362353638613536640000006b158eda0000007c000000036b"
       "158eda"
      },
  };
  std::string file(4608, '\0');
  for (const auto& [offset, hex] : kRuns) {
    for (size_t i = 0; hex[i] != '\0'; i += 2) file[offset + i / 2] = static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16));
  }
  return file;
}

// --- NDB ---

uint32_t adler(const std::string& s) {
  uint64_t a = 1, b = 0;
  for (unsigned char c : s) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  return static_cast<uint32_t>(b << 16 | a);
}

std::string buildNdb(const std::vector<std::string>& blobs) {
  std::string head;
  put32(&head, 'R' | 'p' << 8 | 'm' << 16 | 'P' << 24, false);
  put32(&head, 0, false);
  put32(&head, 7, false);  // generation
  put32(&head, 1, false);  // slot pages
  put32(&head, static_cast<uint32_t>(blobs.size() + 1), false);
  head.resize(32, '\0');
  std::string slots, area;
  uint32_t blk = 4096 / 16;
  for (size_t i = 0; i < 4096 / 16 - 2; ++i) {
    put32(&slots, 'S' | 'l' << 8 | 'o' << 16 | 't' << 24, false);
    if (i >= blobs.size()) {
      slots += std::string(12, '\0');
      continue;
    }
    const std::string& b = blobs[i];
    std::string blob;
    put32(&blob, 'B' | 'l' << 8 | 'b' << 16 | 'S' << 24, false);
    put32(&blob, static_cast<uint32_t>(i + 1), false);
    put32(&blob, 1700000000, false);
    put32(&blob, static_cast<uint32_t>(b.size()), false);
    blob += b;
    while ((blob.size() + 12) % 16 != 0) blob.push_back('\0');
    uint32_t sum = adler(blob);
    put32(&blob, sum, false);
    put32(&blob, static_cast<uint32_t>(b.size()), false);
    put32(&blob, 'B' | 'l' << 8 | 'b' << 16 | 'E' << 24, false);
    uint32_t cnt = static_cast<uint32_t>(blob.size() / 16);
    put32(&slots, static_cast<uint32_t>(i + 1), false);
    put32(&slots, blk, false);
    put32(&slots, cnt, false);
    area += blob;
    blk += cnt;
  }
  return head + slots + area;
}

void checkSample(const std::vector<Package>& got, const std::string& path) {
  // bash, openssl-libs, tzdata in some order; gpg-pubkey skipped.
  REQUIRE(got.size() == 3);
  for (const Package& p : got) {
    CHECK(p.type == "rpm");
    CHECK(p.path == path);
    CHECK(p.source_version.empty());
    CHECK(p.layer.empty());
    if (p.name == "bash") {
      CHECK(p.version == "5.1.8-9.el9");
      CHECK(p.arch == "x86_64");
      CHECK(p.source_name.empty());
    } else if (p.name == "openssl-libs") {
      CHECK(p.version == "1:3.0.7-27.el9");
      CHECK(p.source_name == "openssl");
    } else {
      CHECK(p.name == "tzdata");
      CHECK(p.version == "0:2024a-1.el9");
      CHECK(p.arch == "noarch");
    }
  }
}

}  // namespace

// --- The header ---

TEST_CASE("rpm header: name, [epoch:]version-release, arch and the source package", "[rpmdb]") {
  auto p = parseRpmHeader(opensslLibs());
  INFO(p.status().toString());
  REQUIRE(p.isOk());
  CHECK(p->type == "rpm");
  CHECK(p->name == "openssl-libs");
  CHECK(p->version == "1:3.0.7-27.el9");
  CHECK(p->arch == "x86_64");
  CHECK(p->source_name == "openssl");
  CHECK(p->source_version.empty());
  CHECK(p->path.empty());

  // No EPOCH: none written; EPOCH 0: kept, as %{EPOCHNUM} would.
  CHECK(parseRpmHeader(bash())->version == "5.1.8-9.el9");
  CHECK(parseRpmHeader(tzdata())->version == "0:2024a-1.el9");
  CHECK(parseRpmHeader(pkg("x", "1", "2", 4294967295u, "", "").build())->version == "4294967295:1-2");

  // The source package is the package itself: empty, as package.h says.
  CHECK(parseRpmHeader(bash())->source_name.empty());
  // gpg-pubkey: no arch, no source; parsed (the readers skip it).
  auto key = parseRpmHeader(gpgPubkey());
  REQUIRE(key.isOk());
  CHECK(key->name == "gpg-pubkey");
  CHECK(key->arch.empty());
  CHECK(key->source_name.empty());
}

TEST_CASE("rpm header: source package names", "[rpmdb]") {
  auto source = [](const std::string& srpm) {
    auto p = parseRpmHeader(pkg("pkg", "1", "1", std::nullopt, "x86_64", srpm).build());
    REQUIRE(p.isOk());
    return p->source_name;
  };
  CHECK(source("openssl-3.0.7-27.el9.src.rpm") == "openssl");
  CHECK(source("python3.11-3.11.5-1.el9_3.src.rpm") == "python3.11");
  CHECK(source("perl-Text-Tabs+Wrap-2013.0523-460.el9.src.rpm") == "perl-Text-Tabs+Wrap");
  CHECK(source("kernel-5.14.0-362.8.1.el9_3.nosrc.rpm") == "kernel");
  CHECK(source("pkg-1-1.src.rpm").empty());  // the package itself
  // No such shape: left empty rather than guessed.
  CHECK(source("openssl.src.rpm").empty());
  CHECK(source("3.0.7-27.src.rpm").empty());
  CHECK(source("openssl-3.0.7-27.el9.rpm").empty());
  CHECK(source("-1-2.src.rpm").empty());
  CHECK(source("a--2.src.rpm").empty());
}

TEST_CASE("rpm header: layouts rpm writes", "[rpmdb]") {
  SECTION("no region (a legacy header)") {
    auto p = parseRpmHeader(pkg("zlib", "1.2.11", "40.el9", std::nullopt, "x86_64", "zlib-1.2.11-40.el9.src.rpm")
                                .noRegion()
                                .build());
    INFO(p.status().toString());
    REQUIRE(p.isOk());
    CHECK(p->name == "zlib");
    CHECK(p->source_name.empty());
  }
  SECTION("an entry after the region replaces the region's") {
    auto p = parseRpmHeader(pkg("old", "1", "1", std::nullopt, "i686", "").dribble().str(1022, "x86_64").build());
    REQUIRE(p.isOk());
    CHECK(p->arch == "x86_64");
  }
  SECTION("string arrays and i18n strings give their first string") {
    auto p = parseRpmHeader(HeaderBuilder()
                                .strArray(1000, {"name", "other"})
                                .str(1001, "1.0", kI18n)
                                .str(1002, "3")
                                .i32(1003, {2, 9})
                                .build());
    INFO(p.status().toString());
    REQUIRE(p.isOk());
    CHECK(p->name == "name");
    CHECK(p->version == "2:1.0-3");
  }
  SECTION("a HEADERSIGNATURES region, other types and empty strings") {
    std::string blob = rawBlob({{62, kBin, 8, 16}, {1000, kString, 0, 1}, {1001, kString, 2, 1},
                                {1002, kString, 3, 1}, {5000, kInt16, 6, 1}},
                               std::string("n\0\0\0\0\0\0\0", 8) + std::string("\0\0\0\x3e\0\0\0\x07\xff\xff\xff\xb0\0\0\0\x10", 16));
    auto p = parseRpmHeader(blob);
    INFO(p.status().toString());
    REQUIRE(p.isOk());
    CHECK(p->version == "-");
  }
}

TEST_CASE("rpm header: malformed blobs are errors", "[rpmdb]") {
  std::string good = rawBlob(minimalEntries(), minimalData());
  REQUIRE(parseRpmHeader(good).isOk());
  CHECK(parseRpmHeader(good)->version == "b-c");

  requireError(parseRpmHeader(""), "shorter than the 8-byte preamble");
  requireError(parseRpmHeader(good.substr(0, 7)), "shorter than the 8-byte preamble");
  requireError(parseRpmHeader(good.substr(0, good.size() - 1)), "the blob has");
  requireError(parseRpmHeader(good + "x"), "the blob has");
  requireError(parseRpmHeader(rawBlob(minimalEntries(), minimalData(), 4)), "the blob has");
  requireError(parseRpmHeader(rawBlob(minimalEntries(), minimalData(), 0xffffffff)), "over the limit");
  requireError(parseRpmHeader(rawBlob(minimalEntries(), minimalData(), 0x10000)), "over the limit");
  requireError(parseRpmHeader(rawBlob(minimalEntries(), minimalData(), std::nullopt, 0xfffffff0)), "over the limit");
  // Claims that would wrap 32-bit arithmetic.
  requireError(parseRpmHeader(rawBlob(minimalEntries(), minimalData(), 0x0fffffff, 0x10)), "over the limit");

  auto with = [&](std::vector<uint32_t> extra, std::string data = std::string()) {
    auto entries = minimalEntries();
    entries.push_back(std::move(extra));
    return parseRpmHeader(rawBlob(entries, minimalData() + data));
  };
  requireError(with({5000, 10, 0, 1}), "unknown type 10");
  requireError(with({5000, 0xffffffff, 0, 1}), "unknown type");
  requireError(with({5000, kString, 7, 1}), "outside the 6-byte data store");
  requireError(with({5000, kString, 0x80000000, 1}), "offset -2147483648 outside");
  requireError(with({5000, kBin, 0, 7}), "overrun");
  // count * 4 wraps to 4 in 32 bits.
  requireError(with({5000, kInt32, 0, 0x40000001}), "overrun");
  requireError(with({5000, kInt32, 0, 0xffffffff}), "overrun");
  requireError(with({5000, kInt32, 2, 1}), "misaligned");
  requireError(with({5000, kStringArray, 0, 7}), "strings overrun");
  requireError(with({5000, kStringArray, 6, 1}), "strings overrun");
  requireError(with({5000, kString, 0, 2}), "STRING with count 2");

  // The strings read: terminated, of a string type.
  requireError(parseRpmHeader(rawBlob(minimalEntries(), std::string("a\0b\0cc", 6))), "runs past the end");
  requireError(parseRpmHeader(rawBlob({{1000, kInt32, 0, 1}, {1001, kString, 4, 1}, {1002, kString, 4, 1}},
                                      std::string("\0\0\0\0x\0", 6))),
               "NAME (1000) has type 4");
  requireError(parseRpmHeader(rawBlob({{1000, kStringArray, 0, 0}, {1001, kString, 0, 1}, {1002, kString, 0, 1}},
                                      std::string("x\0", 2))),
               "NAME (1000) has no strings");
  requireError(with({1003, kString, 0, 1}), "EPOCH (1003) has type 6");
  requireError(with({1003, kInt32, 0, 0}), "EPOCH (1003) has no value");
  requireError(parseRpmHeader(rawBlob({{1001, kString, 2, 1}, {1002, kString, 4, 1}}, minimalData())), "no NAME");
  requireError(parseRpmHeader(rawBlob({{1000, kString, 1, 1}, {1001, kString, 2, 1}, {1002, kString, 4, 1}},
                                      minimalData())),
               "no NAME");
  requireError(parseRpmHeader(rawBlob({{1000, kString, 0, 1}, {1002, kString, 4, 1}}, minimalData())), "no VERSION");
  requireError(parseRpmHeader(rawBlob({{1000, kString, 0, 1}, {1001, kString, 4, 1}}, minimalData())), "no RELEASE");

  // Regions.
  auto region = [&](std::vector<uint32_t> entry, std::vector<uint32_t> trailer) {
    std::string t;
    for (uint32_t v : trailer) putBe32(&t, v);
    auto entries = minimalEntries();
    entries.insert(entries.begin(), std::move(entry));
    return parseRpmHeader(rawBlob(entries, minimalData() + std::string(2, '\0') + t));
  };
  uint32_t four = static_cast<uint32_t>(-64);
  REQUIRE(region({63, kBin, 8, 16}, {63, kBin, four, 16}).isOk());
  requireError(region({63, kString, 8, 1}, {63, kBin, four, 16}), "not 16 bytes of BIN");
  requireError(region({63, kBin, 8, 15}, {63, kBin, four, 16}), "not 16 bytes of BIN");
  requireError(region({63, kBin, 9, 16}, {63, kBin, four, 16}), "overrun");
  requireError(region({63, kBin, 8, 16}, {1000, kBin, four, 16}), "is not a region tag");
  requireError(region({63, kBin, 8, 16}, {63, kInt32, four, 16}), "is not a region tag");
  requireError(region({63, kBin, 8, 16}, {63, kBin, four, 17}), "is not a region tag");
  requireError(region({63, kBin, 8, 16}, {63, kBin, 64, 16}), "does not give");
  requireError(region({63, kBin, 8, 16}, {63, kBin, 0, 16}), "does not give");
  requireError(region({63, kBin, 8, 16}, {63, kBin, static_cast<uint32_t>(-80), 16}), "does not give");
  requireError(region({63, kBin, 8, 16}, {63, kBin, static_cast<uint32_t>(-60), 16}), "does not give");
  requireError(region({63, kBin, 8, 16}, {63, kBin, 0x80000000, 16}), "does not give");
}

// --- SQLite ---

TEST_CASE("rpmdb.sqlite: the packages of the table Packages", "[rpmdb]") {
  std::string file = rpmSqlite({bash(), gpgPubkey(), opensslLibs(), tzdata()});
  auto r = readRpmSqlite(file, "var/lib/rpm/rpmdb.sqlite");
  INFO(r.status().toString());
  REQUIRE(r.isOk());
  checkSample(*r, "var/lib/rpm/rpmdb.sqlite");
  // In hnum order.
  CHECK((*r)[0].name == "bash");
  CHECK((*r)[1].name == "openssl-libs");
  CHECK((*r)[2].name == "tzdata");

  SECTION("a WAL-mode file (as rpm leaves it) reads the same") {
    file[18] = 2;
    file[19] = 2;
    auto w = readRpmSqlite(file, "p");
    INFO(w.status().toString());
    REQUIRE(w.isOk());
    CHECK(w->size() == 3);
  }
  SECTION("through the sniffer") {
    auto s = readRpmDatabase(file, "p");
    REQUIRE(s.isOk());
    CHECK(s->size() == 3);
  }
  SECTION("an empty rpmdb") {
    auto e = readRpmSqlite(rpmSqlite({}), "p");
    REQUIRE(e.isOk());
    CHECK(e->empty());
  }
}

TEST_CASE("rpmdb.sqlite: what is not an rpmdb, and corruption", "[rpmdb]") {
  std::string file = rpmSqlite({bash(), opensslLibs()});
  requireError(readRpmSqlite("", "p"), Code::kInvalidArgument, "not an SQLite database");
  requireError(readRpmSqlite(std::string(4096, 'x'), "p"), Code::kInvalidArgument, "not an SQLite database");
  {
    // The header's magic, then garbage.
    std::mt19937 rng(7);
    std::string garbage = file.substr(0, 16);
    while (garbage.size() < 8192) garbage.push_back(static_cast<char>(rng()));
    auto r = readRpmSqlite(garbage, "p");
    INFO(r.status().toString());
    CHECK_FALSE(r.isOk());
  }
  {
    // A valid header, the pages garbage.
    std::mt19937 rng(8);
    std::string garbage = file.substr(0, 100);
    while (garbage.size() < file.size()) garbage.push_back(static_cast<char>(rng()));
    auto r = readRpmSqlite(garbage, "p");
    INFO(r.status().toString());
    CHECK_FALSE(r.isOk());
  }
  {
    auto r = readRpmSqlite(file.substr(0, 2000), "p");
    INFO(r.status().toString());
    CHECK_FALSE(r.isOk());
  }
  {
    Db db;
    db.exec("CREATE TABLE Other (x)");
    requireError(readRpmSqlite(db.serialize(), "p"), Code::kInvalidArgument, "no table Packages");
  }
  {
    Db db;
    db.exec("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, data BLOB)");
    requireError(readRpmSqlite(db.serialize(), "p"), Code::kInvalidArgument, "no column blob");
  }
  {
    // A view would run the file's SQL.
    Db db;
    db.exec("CREATE TABLE Real (hnum INTEGER PRIMARY KEY, blob BLOB)");
    db.exec("CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
            "SELECT x AS blob FROM c");
    requireError(readRpmSqlite(db.serialize(), "p"), Code::kInvalidArgument, "no table Packages");
  }
  {
    // So would a generated column.
    Db db;
    db.exec("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, x BLOB, blob BLOB GENERATED ALWAYS AS (zeroblob(x)))");
    db.exec("INSERT INTO Packages (x) VALUES (1000000000)");
    requireError(readRpmSqlite(db.serialize(), "p"), Code::kInvalidArgument, "no column blob");
  }
  {
    Db db;
    db.exec("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)");
    db.insert("INSERT INTO Packages (blob) VALUES (?)", bash());
    db.insert("INSERT INTO Packages (blob) VALUES (?)", "text", false);
    requireError(readRpmSqlite(db.serialize(), "p"), Code::kCorruption, "Packages row 2: blob is not a BLOB");
  }
  {
    auto r = readRpmSqlite(rpmSqlite({bash(), bash().substr(0, 40)}), "db");
    requireError(r, Code::kCorruption, "db: Packages row 2: rpm header:");
  }
}

// --- Berkeley DB ---

TEST_CASE("Packages (Berkeley DB hash): inline and off-page headers, both byte orders", "[rpmdb]") {
  for (bool big : {false, true}) {
    for (uint32_t page_size : {512u, 1024u, 4096u}) {
      INFO((big ? "big" : "little") << "-endian, pages of " << page_size);
      BdbFile f = sampleBdb(big, page_size);
      REQUIRE(f.chains.size() == 2);
      if (page_size == 512) CHECK(f.chains[0].size() > 4);  // a chain of several pages
      auto r = readRpmBerkeleyDb(f.bytes, "var/lib/rpm/Packages");
      INFO(r.status().toString());
      REQUIRE(r.isOk());
      checkSample(*r, "var/lib/rpm/Packages");
      auto s = readRpmDatabase(f.bytes, "var/lib/rpm/Packages");
      REQUIRE(s.isOk());
      CHECK(s->size() == 3);
    }
  }
  SECTION("pages of other types and unused bucket pages are skipped") {
    BdbFile f = sampleBdb(false, 512);
    uint32_t pages = static_cast<uint32_t>(f.bytes.size() / 512);
    f.bytes += std::string(512 * 3, '\0');  // never written buckets
    f.bytes[512 * (pages + 1) + 25] = 5;     // a btree leaf
    set32(&f.bytes, 32, pages + 2, false);
    auto r = readRpmBerkeleyDb(f.bytes, "p");
    INFO(r.status().toString());
    REQUIRE(r.isOk());
    CHECK(r->size() == 3);
  }
  SECTION("the checksummed layout") {
    // With DBMETA_CHKSUM, 6 bytes follow each page header: rebuild with the index moved.
    BdbFile plain = buildBdb({{{1, bash(), false}}}, 512, false);
    std::string pg = plain.bytes.substr(512, 512);
    std::string moved = pg.substr(0, 26) + std::string(6, '\0') + pg.substr(26, 4) + pg.substr(36);
    plain.bytes.replace(512, 512, moved);
    plain.bytes[26] = 1;
    auto r = readRpmBerkeleyDb(plain.bytes, "p");
    INFO(r.status().toString());
    REQUIRE(r.isOk());
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].name == "bash");
  }
}

TEST_CASE("Packages (Berkeley DB hash): a file libdb wrote, with headers rpm wrote", "[rpmdb]") {
  std::string file = libdbFixture();
  auto r = readRpmBerkeleyDb(file, "var/lib/rpm/Packages");
  INFO(r.status().toString());
  REQUIRE(r.isOk());
  REQUIRE(r->size() == 2);
  // In the hash's order (as `rpm -qa` on it gives them).
  CHECK((*r)[0] == Package{"rpm", "delta-libs", "1:3.0.7-27.el9", "delta", "", "noarch", "var/lib/rpm/Packages", ""});
  CHECK((*r)[1] == Package{"rpm", "gamma", "7:0.9-2", "", "", "noarch", "var/lib/rpm/Packages", ""});
  // Each cut of the file is read or refused, never a crash.
  for (size_t size = 0; size < file.size(); size += 64) (void)readRpmBerkeleyDb(file.substr(0, size), "p");
}

TEST_CASE("Packages (Berkeley DB hash): malformed files are errors", "[rpmdb]") {
  for (bool big : {false, true}) {
    INFO((big ? "big" : "little") << "-endian");
    const BdbFile good = sampleBdb(big, 512);
    REQUIRE(readRpmBerkeleyDb(good.bytes, "p").isOk());
    const auto& chain = good.chains[0];
    REQUIRE(chain.size() > 4);
    auto patched = [&](auto&& patch) {
      BdbFile f = good;
      patch(f);
      return readRpmBerkeleyDb(f.bytes, "p");
    };
    requireError(readRpmBerkeleyDb("", "p"), Code::kInvalidArgument, "less than a page");
    requireError(readRpmBerkeleyDb(std::string(4096, '\0'), "p"), Code::kInvalidArgument, "no magic");
    requireError(patched([&](BdbFile& f) { set32(&f.bytes, 12, 0x053162, big); }), Code::kInvalidArgument, "btree");
    requireError(patched([&](BdbFile& f) { f.bytes[25] = 9; }), Code::kCorruption, "metadata page has type 9");
    requireError(patched([&](BdbFile& f) { f.bytes[24] = 1; }), Code::kUnsupported, "encrypted");
    for (uint32_t bad : {0u, 256u, 1000u, 131072u, 0xffffffffu}) {
      requireError(patched([&](BdbFile& f) { set32(&f.bytes, 20, bad, big); }), Code::kCorruption, "page size");
    }
    requireError(patched([&](BdbFile& f) { f.bytes.resize(f.bytes.size() - 1); }), Code::kCorruption, "truncated");
    requireError(patched([&](BdbFile& f) { set32(&f.bytes, 32, 0xffffffff, big); }), Code::kCorruption, "truncated");

    // Hash pages.
    size_t hp = good.page(1);
    requireError(patched([&](BdbFile& f) { set16(&f.bytes, hp + 20, 5, big); }), Code::kCorruption, "not key/data pairs");
    requireError(patched([&](BdbFile& f) { set16(&f.bytes, hp + 20, 250, big); }), Code::kCorruption, "overrun the page");
    requireError(patched([&](BdbFile& f) { set16(&f.bytes, hp + 26, 4, big); }), Code::kCorruption, "not within the page");
    requireError(patched([&](BdbFile& f) { set16(&f.bytes, hp + 26, 512, big); }), Code::kCorruption, "not within the page");
    requireError(patched([&](BdbFile& f) { set16(&f.bytes, hp + 28, 511, big); }), Code::kCorruption, "not within the page");
    // A data item of type 9; an off-page reference cut short; duplicates.
    auto data_item = [&](const BdbFile& f, uint32_t page, int index) {
      uint32_t off = big ? uint32_t{static_cast<uint8_t>(f.bytes[f.page(page) + 26 + 2 * index])} << 8 |
                               static_cast<uint8_t>(f.bytes[f.page(page) + 27 + 2 * index])
                         : uint32_t{static_cast<uint8_t>(f.bytes[f.page(page) + 27 + 2 * index])} << 8 |
                               static_cast<uint8_t>(f.bytes[f.page(page) + 26 + 2 * index]);
      return f.page(page) + off;
    };
    requireError(patched([&](BdbFile& f) { f.bytes[data_item(f, 1, 3)] = 9; }), Code::kCorruption, "unknown item type 9");
    requireError(patched([&](BdbFile& f) { f.bytes[data_item(f, 1, 3)] = 2; }), Code::kUnsupported, "duplicate");
    requireError(patched([&](BdbFile& f) { f.bytes[data_item(f, 1, 3)] = 4; }), Code::kUnsupported, "duplicate");
    requireError(patched([&](BdbFile& f) {
                   size_t start = data_item(f, 2, 0) - 11;  // item 1 now ends where item 0 begins, 11 bytes long
                   set16(&f.bytes, f.page(2) + 28, static_cast<uint16_t>(start - f.page(2)), big);
                   f.bytes[start] = 3;
                 }),
                 Code::kCorruption, "an off-page item of 11 bytes");
    // An inline header that is not one.
    requireError(patched([&](BdbFile& f) { f.bytes[data_item(f, 1, 3) + 1] ^= 0x40; }), Code::kCorruption,
                 "page 1 item 3: rpm header:");

    // Overflow chains: the brief's loop, and every other way a chain goes wrong.
    size_t ref = 0;  // the first off-page reference (page 2, item 1)
    {
      BdbFile f = good;
      ref = data_item(f, 2, 1);
      REQUIRE(f.bytes[ref] == 3);
    }
    requireError(patched([&](BdbFile& f) { set32(&f.bytes, f.page(chain[0]) + 16, chain[0], big); }),
                 Code::kCorruption, "comes twice in its chain (a loop)");
    requireError(patched([&](BdbFile& f) {
                   set32(&f.bytes, f.page(chain.back()) + 16, chain[0], big);
                   set32(&f.bytes, ref + 8, get32(f.bytes, ref + 8, big) + 1, big);
                 }),
                 Code::kCorruption, "a loop");
    requireError(patched([&](BdbFile& f) { set32(&f.bytes, f.page(chain[0]) + 16, 0, big); }), Code::kCorruption,
                 "chain ends after");
    requireError(patched([&](BdbFile& f) { set32(&f.bytes, ref + 4, 0, big); }), Code::kCorruption, "chain ends after 0");
    requireError(patched([&](BdbFile& f) { set32(&f.bytes, ref + 4, 0x7fffffff, big); }), Code::kCorruption,
                 "past the last page");
    requireError(patched([&](BdbFile& f) { set32(&f.bytes, ref + 4, 1, big); }), Code::kCorruption, "of type 13");
    requireError(patched([&](BdbFile& f) { set32(&f.bytes, ref + 8, 0xffffffff, big); }), Code::kCorruption,
                 "more than the file");
    requireError(patched([&](BdbFile& f) { set16(&f.bytes, f.page(chain[0]) + 22, 500, big); }), Code::kCorruption,
                 "claims 500 bytes");
    // Two items sharing a chain.
    requireError(patched([&](BdbFile& f) {
                   size_t other = data_item(f, 2, 3);
                   set32(&f.bytes, other + 4, chain[0], big);
                   set32(&f.bytes, other + 8, get32(f.bytes, ref + 8, big), big);
                 }),
                 Code::kCorruption, "on the chain of another item too");
    // A short item: the header inside fails.
    requireError(patched([&](BdbFile& f) { set32(&f.bytes, ref + 8, 100, big); }), Code::kCorruption, "rpm header:");
  }
}

// --- NDB ---

TEST_CASE("Packages.db (NDB)", "[rpmdb]") {
  std::string file = buildNdb({bash(), gpgPubkey(), opensslLibs(), tzdata()});
  auto r = readRpmNdb(file, "usr/lib/sysimage/rpm/Packages.db");
  INFO(r.status().toString());
  REQUIRE(r.isOk());
  checkSample(*r, "usr/lib/sysimage/rpm/Packages.db");
  REQUIRE(readRpmDatabase(file, "p").isOk());
  CHECK(readRpmNdb(buildNdb({}), "p")->empty());

  requireError(readRpmNdb("RpmQ" + file.substr(4), "p"), Code::kInvalidArgument, "not an rpm NDB");
  requireError(readRpmNdb(file.substr(0, 20), "p"), Code::kInvalidArgument, "not an rpm NDB");
  auto patched = [&](auto&& patch) {
    std::string f = file;
    patch(f);
    return readRpmNdb(f, "p");
  };
  requireError(patched([](std::string& f) { f[4] = 1; }), Code::kUnsupported, "version 1");
  requireError(patched([](std::string& f) { f.push_back('\0'); }), Code::kCorruption, "16-byte blocks");
  requireError(patched([](std::string& f) { set32(&f, 12, 0, false); }), Code::kCorruption, "slot pages");
  requireError(patched([](std::string& f) { set32(&f, 12, 1000, false); }), Code::kCorruption, "slot pages");
  requireError(patched([](std::string& f) { f[32] = 'X'; }), Code::kCorruption, "slot 2: bad magic");
  requireError(patched([](std::string& f) { set32(&f, 32 + 8, 3, false); }), Code::kCorruption, "blob area");
  requireError(patched([](std::string& f) { set32(&f, 32 + 8, 0xfffffff0, false); }), Code::kCorruption, "blob area");
  requireError(patched([](std::string& f) { set32(&f, 32 + 12, 0xffffffff, false); }), Code::kCorruption, "blob area");
  requireError(patched([](std::string& f) { set32(&f, 32 + 4, 0, false); }), Code::kCorruption, "blob area");
  requireError(patched([](std::string& f) { set32(&f, 48 + 8, get32(f, 32 + 8, false) + 1, false); }),
               Code::kCorruption, "overlap");
  requireError(patched([](std::string& f) { set32(&f, 48 + 4, 1, false); }), Code::kCorruption, "no blob head");
  uint32_t first = get32(file, 32 + 8, false) * 16;
  requireError(patched([&](std::string& f) { f[first + 40] ^= 1; }), Code::kCorruption, "Adler-32");
  requireError(patched([&](std::string& f) { set32(&f, first + 12, 1, false); }), Code::kCorruption, "blocks");
  requireError(patched([&](std::string& f) { set32(&f, 32 + 12, get32(f, 32 + 12, false) - 1, false); }),
               Code::kCorruption, "blocks");
  uint32_t tail = (get32(file, 32 + 8, false) + get32(file, 32 + 12, false)) * 16 - 12;
  requireError(patched([&](std::string& f) { f[tail + 11] = 'X'; }), Code::kCorruption, "tail");
}

TEST_CASE("readRpmDatabase: the kind from the first bytes", "[rpmdb]") {
  requireError(readRpmDatabase("", "p"), Code::kInvalidArgument, "not an rpm database");
  requireError(readRpmDatabase(std::string(1000, 'z'), "p"), Code::kInvalidArgument, "not an rpm database");
}

// --- Robustness: random mutations of valid inputs (libFuzzer-style, a fixed seed) ---

TEST_CASE("rpm readers: mutated inputs give packages or errors, never a crash", "[rpmdb][fuzz]") {
  std::mt19937_64 rng(20240601);
  auto mutate = [&](std::string s) {
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < edits && !s.empty(); ++i) {
      size_t at = rng() % s.size();
      switch (rng() % 6) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s[at] ^= static_cast<char>(1 << (rng() % 8)); break;
        case 2: s[at] = static_cast<char>((rng() % 2) ? 0xff : 0x00); break;
        case 3: {  // a 32-bit field, big or little endian, set to an edge value
          static const uint32_t kEdges[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfff0, 16, 512};
          if (at + 4 <= s.size()) set32(&s, at, kEdges[rng() % 8], rng() % 2);
          break;
        }
        case 4: s.resize(at); break;
        default: s.insert(at, 1 + rng() % 16, static_cast<char>(rng())); break;
      }
    }
    return s;
  };
  size_t ok = 0, failed = 0;
  auto tally = [&](bool is_ok) { ++(is_ok ? ok : failed); };

  std::vector<std::string> blobs = {opensslLibs(), bash(), tzdata(), rawBlob(minimalEntries(), minimalData())};
  for (int i = 0; i < 20000; ++i) {
    auto r = parseRpmHeader(mutate(blobs[i % blobs.size()]));
    if (r.isOk()) CHECK_FALSE(r->name.empty());
    tally(r.isOk());
  }
  std::string sqlite = rpmSqlite({bash(), opensslLibs(), tzdata()});
  for (int i = 0; i < 1500; ++i) tally(readRpmSqlite(mutate(sqlite), "p").isOk());
  for (bool big : {false, true}) {
    std::string bdb = sampleBdb(big, 512).bytes;
    for (int i = 0; i < 5000; ++i) tally(readRpmBerkeleyDb(mutate(bdb), "p").isOk());
  }
  std::string ndb = buildNdb({bash(), opensslLibs(), tzdata()});
  for (int i = 0; i < 3000; ++i) tally(readRpmNdb(mutate(ndb), "p").isOk());
  for (int i = 0; i < 2000; ++i) tally(readRpmDatabase(mutate(i % 2 ? ndb : sqlite), "p").isOk());
  INFO(ok << " read, " << failed << " refused");
  CHECK(failed > 0);
  CHECK(ok > 0);
}

}  // namespace rpmdb_test
