#include "core/scan/rpmdb.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

namespace wharf {
// A namespace of its own: the core is built in unity batches (no shared anonymous names).
namespace rpmdb_detail {
namespace {

// --- Bytes ---

const unsigned char* ucp(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

uint32_t be32(const unsigned char* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
uint32_t le32(const unsigned char* p) {
  return uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | uint32_t{p[0]};
}
uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint16_t le16(const unsigned char* p) { return static_cast<uint16_t>(p[1] << 8 | p[0]); }

Status corrupt(const std::string& path, const std::string& what) {
  return error(Code::kCorruption, path + ": " + what);
}

// Prefixes a header's error with where it came from, keeping its code.
Status inRecord(const std::string& path, const std::string& where, const Status& st) {
  return error(st.code(), path + ": " + where + ": " + st.message());
}

// --- The rpm header blob ---

constexpr uint32_t kMaxIndexEntries = 0xffff;    // rpm's hdrchkTags
constexpr uint32_t kMaxDataLength = 256u << 20;  // rpm's hdrchkData
constexpr uint32_t kEntrySize = 16;

enum RpmType : uint32_t {
  kNull = 0, kChar = 1, kInt8 = 2, kInt16 = 3, kInt32 = 4, kInt64 = 5,
  kString = 6, kBin = 7, kStringArray = 8, kI18nString = 9,
};

enum RpmTag : uint32_t {
  kTagHeaderImage = 61, kTagHeaderSignatures = 62, kTagHeaderImmutable = 63, kTagHeaderRegions = 64,
  kTagName = 1000, kTagVersion = 1001, kTagRelease = 1002, kTagEpoch = 1003, kTagArch = 1022,
  kTagSourceRpm = 1044,
};

bool isRegionTag(uint32_t tag) { return tag >= kTagHeaderImage && tag <= kTagHeaderRegions; }

// The size of one element of a fixed-size type; 0 for strings (and NULL).
uint32_t elementSize(uint32_t type) {
  switch (type) {
    case kChar: case kInt8: case kBin: return 1;
    case kInt16: return 2;
    case kInt32: return 4;
    case kInt64: return 8;
    default: return 0;
  }
}

const char* tagName(uint32_t tag) {
  switch (tag) {
    case kTagName: return "NAME";
    case kTagVersion: return "VERSION";
    case kTagRelease: return "RELEASE";
    case kTagEpoch: return "EPOCH";
    case kTagArch: return "ARCH";
    case kTagSourceRpm: return "SOURCERPM";
    default: return "?";
  }
}

struct IndexEntry {
  uint32_t tag = 0;
  uint32_t type = 0;
  uint32_t offset = 0;  // checked: within the data store
  uint32_t count = 0;
};

class Header {
 public:
  static Result<Header> parse(std::string_view blob);

  // The tag's (first) string; nullopt when absent.
  Result<std::optional<std::string_view>> string(uint32_t tag) const;
  Result<std::optional<uint32_t>> int32(uint32_t tag) const;

 private:
  const IndexEntry* find(uint32_t tag) const;

  std::string_view data_;
  // The last entry of each tag read (a later entry, the "dribble" after the region,
  // replaces an earlier one, as rpm's headerImport does).
  std::vector<IndexEntry> wanted_;
};

Status headerError(const std::string& what) { return error(Code::kCorruption, "rpm header: " + what); }

Result<Header> Header::parse(std::string_view blob) {
  if (blob.size() < 8) {
    return headerError(std::to_string(blob.size()) + " bytes, shorter than the 8-byte preamble");
  }
  const unsigned char* p = ucp(blob);
  uint32_t il = be32(p), dl = be32(p + 4);
  if (il > kMaxIndexEntries) return headerError("index count " + std::to_string(il) + " over the limit of 65535");
  if (dl > kMaxDataLength) return headerError("data length " + std::to_string(dl) + " over the limit of 256 MiB");
  uint64_t need = 8 + uint64_t{il} * kEntrySize + dl;
  if (need != blob.size()) {
    return headerError(std::to_string(il) + " index entries and " + std::to_string(dl) + " data bytes make " +
                       std::to_string(need) + " bytes, the blob has " + std::to_string(blob.size()));
  }
  Header h;
  const unsigned char* index = p + 8;
  h.data_ = blob.substr(8 + size_t{il} * kEntrySize);
  for (uint32_t i = 0; i < il; ++i) {
    const unsigned char* e = index + size_t{i} * kEntrySize;
    IndexEntry entry{be32(e), be32(e + 4), 0, be32(e + 12)};
    int32_t offset = static_cast<int32_t>(be32(e + 8));
    auto at = [&] { return "index entry " + std::to_string(i) + " (tag " + std::to_string(entry.tag) + ")"; };
    if (entry.type > kI18nString) return headerError(at() + ": unknown type " + std::to_string(entry.type));
    if (offset < 0 || static_cast<uint32_t>(offset) > dl) {
      return headerError(at() + ": offset " + std::to_string(offset) + " outside the " + std::to_string(dl) +
                         "-byte data store");
    }
    entry.offset = static_cast<uint32_t>(offset);
    uint64_t room = dl - entry.offset;
    if (uint32_t size = elementSize(entry.type); size > 0) {
      if (size > 1 && entry.offset % size != 0) {
        return headerError(at() + ": offset " + std::to_string(offset) + " misaligned for its type");
      }
      if (uint64_t{entry.count} * size > room) {
        return headerError(at() + ": " + std::to_string(entry.count) + " elements overrun the data store");
      }
    } else if (entry.type != kNull) {
      // Each string takes at least its NUL.
      if (entry.type == kString && entry.count != 1) {
        return headerError(at() + ": a STRING with count " + std::to_string(entry.count));
      }
      if (entry.count > room) {
        return headerError(at() + ": " + std::to_string(entry.count) + " strings overrun the data store");
      }
    }
    if (i == 0 && isRegionTag(entry.tag)) {
      // The region's trailer: an entry in the data store whose negative offset gives the
      // size of the region's index.
      if (entry.type != kBin || entry.count != kEntrySize) {
        return headerError(at() + ": a region tag that is not 16 bytes of BIN");
      }
      const unsigned char* t = ucp(h.data_) + entry.offset;
      uint32_t ttag = be32(t), ttype = be32(t + 4), tcount = be32(t + 12);
      int64_t toffset = static_cast<int32_t>(be32(t + 8));
      if (!isRegionTag(ttag) || ttype != kBin || tcount != kEntrySize) {
        return headerError("region trailer (tag " + std::to_string(ttag) + ", type " + std::to_string(ttype) +
                           ", count " + std::to_string(tcount) + ") is not a region tag");
      }
      int64_t rsize = -toffset;
      if (rsize <= 0 || rsize % kEntrySize != 0 || rsize / kEntrySize > il) {
        return headerError("region trailer's offset " + std::to_string(toffset) + " does not give 1 to " +
                           std::to_string(il) + " entries");
      }
      continue;  // not data we read
    }
    switch (entry.tag) {
      case kTagName: case kTagVersion: case kTagRelease: case kTagEpoch: case kTagArch: case kTagSourceRpm: {
        auto it = std::find_if(h.wanted_.begin(), h.wanted_.end(),
                               [&](const IndexEntry& w) { return w.tag == entry.tag; });
        if (it != h.wanted_.end()) {
          *it = entry;
        } else {
          h.wanted_.push_back(entry);
        }
        break;
      }
      default:
        break;
    }
  }
  return h;
}

const IndexEntry* Header::find(uint32_t tag) const {
  for (const IndexEntry& e : wanted_) {
    if (e.tag == tag) return &e;
  }
  return nullptr;
}

Result<std::optional<std::string_view>> Header::string(uint32_t tag) const {
  const IndexEntry* e = find(tag);
  if (e == nullptr) return std::optional<std::string_view>();
  std::string at = std::string(tagName(tag)) + " (" + std::to_string(tag) + ")";
  if (e->type != kString && e->type != kStringArray && e->type != kI18nString) {
    return headerError(at + " has type " + std::to_string(e->type) + ", not a string");
  }
  if (e->count == 0) return headerError(at + " has no strings");
  std::string_view rest = data_.substr(e->offset);
  size_t nul = rest.find('\0');
  if (nul == std::string_view::npos) return headerError(at + " runs past the end of the data store");
  return std::optional<std::string_view>(rest.substr(0, nul));
}

Result<std::optional<uint32_t>> Header::int32(uint32_t tag) const {
  const IndexEntry* e = find(tag);
  if (e == nullptr) return std::optional<uint32_t>();
  std::string at = std::string(tagName(tag)) + " (" + std::to_string(tag) + ")";
  if (e->type != kInt32) return headerError(at + " has type " + std::to_string(e->type) + ", not INT32");
  if (e->count == 0) return headerError(at + " has no value");
  // Bounds and alignment were checked at parse.
  return std::optional<uint32_t>(be32(ucp(data_) + e->offset));
}

// "openssl-3.0.7-27.el9.src.rpm" -> "openssl"; empty when it has no such shape.
std::string_view sourceName(std::string_view srpm) {
  for (std::string_view suffix : {std::string_view(".src.rpm"), std::string_view(".nosrc.rpm")}) {
    if (srpm.size() > suffix.size() && srpm.substr(srpm.size() - suffix.size()) == suffix) {
      std::string_view nvr = srpm.substr(0, srpm.size() - suffix.size());
      size_t release_dash = nvr.rfind('-');
      if (release_dash == std::string_view::npos || release_dash == 0) return {};
      size_t version_dash = nvr.rfind('-', release_dash - 1);
      if (version_dash == std::string_view::npos || version_dash == 0) return {};
      if (version_dash + 1 == release_dash || release_dash + 1 == nvr.size()) return {};  // empty V or R
      return nvr.substr(0, version_dash);
    }
  }
  return {};
}

Result<Package> packageFromHeader(std::string_view blob) {
  auto header = Header::parse(blob);
  if (!header) return header.status();
  const Header& h = *header;
  auto name = h.string(kTagName);
  if (!name) return name.status();
  auto version = h.string(kTagVersion);
  if (!version) return version.status();
  auto release = h.string(kTagRelease);
  if (!release) return release.status();
  auto epoch = h.int32(kTagEpoch);
  if (!epoch) return epoch.status();
  auto arch = h.string(kTagArch);
  if (!arch) return arch.status();
  auto srpm = h.string(kTagSourceRpm);
  if (!srpm) return srpm.status();
  if (!name->has_value() || (*name)->empty()) return headerError("no NAME (1000)");
  if (!version->has_value()) return headerError("no VERSION (1001)");
  if (!release->has_value()) return headerError("no RELEASE (1002)");

  Package p;
  p.type = "rpm";
  p.name = std::string(**name);
  if (epoch->has_value()) p.version = std::to_string(**epoch) + ":";
  p.version += **version;
  p.version += '-';
  p.version += **release;
  if (arch->has_value()) p.arch = std::string(**arch);
  if (srpm->has_value()) {
    std::string_view source = sourceName(**srpm);
    if (source != p.name) p.source_name = std::string(source);
  }
  return p;
}

// Parses a database record into out, skipping gpg-pubkey.
Status addRecord(std::string_view blob, const std::string& path, const std::string& where,
                 std::vector<Package>* out) {
  auto p = packageFromHeader(blob);
  if (!p) return inRecord(path, where, p.status());
  if (p->name == "gpg-pubkey") return Status::ok();
  p->path = path;
  out->push_back(std::move(*p));
  return Status::ok();
}

Status checkFileSize(std::string_view bytes, const std::string& path) {
  if (bytes.size() > kMaxRpmDbBytes) {
    return error(Code::kTooLarge, path + ": " + std::to_string(bytes.size()) + " bytes, over the " +
                                      std::to_string(kMaxRpmDbBytes >> 20) + " MiB limit of an rpm database");
  }
  return Status::ok();
}

// --- SQLite ---

constexpr int kProgressEvery = 1000;  // VM steps per progress callback

struct SqliteProgress {
  uint64_t calls = 0;
  uint64_t max_calls = kMaxRpmSqliteSteps / kProgressEvery;
  bool stopped = false;
};

int onSqliteProgress(void* arg) {
  auto* progress = static_cast<SqliteProgress*>(arg);
  if (++progress->calls > progress->max_calls) {
    progress->stopped = true;
    return 1;
  }
  return 0;
}

class SqliteDb {
 public:
  SqliteDb() = default;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb() { sqlite3_close_v2(db_); }
  sqlite3** out() { return &db_; }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteStmt {
 public:
  SqliteStmt() = default;
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;
  ~SqliteStmt() { sqlite3_finalize(stmt_); }
  sqlite3_stmt** out() { return &stmt_; }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

Status sqliteError(const std::string& path, sqlite3* db, int rc, const SqliteProgress& progress,
                   const std::string& doing) {
  if (progress.stopped || rc == SQLITE_INTERRUPT) {
    return error(Code::kTooLarge, path + ": " + doing + " stopped after " + std::to_string(kMaxRpmSqliteSteps) +
                                      " SQLite steps");
  }
  std::string msg = path + ": " + doing + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_NOTADB: return error(Code::kInvalidArgument, msg + " (not an SQLite database)");
    case SQLITE_TOOBIG: return error(Code::kTooLarge, msg);
    case SQLITE_NOMEM: return error(Code::kTooLarge, msg);
    case SQLITE_CORRUPT: case SQLITE_FORMAT: case SQLITE_RANGE: return error(Code::kCorruption, msg);
    case SQLITE_ERROR: return error(Code::kCorruption, msg);  // a schema that does not parse, ...
    default: return error(Code::kInternal, msg);
  }
}

Status configureSqlite(sqlite3* db, uint64_t file_size) {
  // Hostile schemas: no triggers, no views, no functions with side effects in the
  // schema, no extension loading, no attaching.
  int on = 0;
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &on);
#ifdef SQLITE_DBCONFIG_ENABLE_VIEW
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, &on);
#endif
#ifdef SQLITE_DBCONFIG_TRUSTED_SCHEMA
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on);
#endif
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, &on);
  // A value (a blob) is never larger than the file it is stored in, but a generated
  // column could compute one: allow the file's size, at least 1 MiB.
  uint64_t max_length = std::clamp<uint64_t>(file_size, 1 << 20, std::numeric_limits<int>::max());
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, static_cast<int>(max_length));
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 100'000);
  sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 200);
  sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 100);
  sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 10);
  sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, 25'000);
  sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 8);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 100);
  sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 10);
  sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 1);
#ifdef SQLITE_LIMIT_WORKER_THREADS
  sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);
#endif
  return Status::ok();
}

// Runs a query whose first column is an integer and returns that of its first row (0
// when there is none).
Result<int64_t> sqliteScalar(sqlite3* db, const char* sql, const std::string& path, const SqliteProgress& progress,
                             const std::string& doing) {
  SqliteStmt stmt;
  int rc = sqlite3_prepare_v2(db, sql, -1, stmt.out(), nullptr);
  if (rc != SQLITE_OK) return sqliteError(path, db, rc, progress, doing);
  rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_ROW) return static_cast<int64_t>(sqlite3_column_int64(stmt.get(), 0));
  if (rc == SQLITE_DONE) return int64_t{0};
  return sqliteError(path, db, rc, progress, doing);
}

Result<std::vector<Package>> readSqlite(std::string_view bytes, const std::string& path) {
  WHARF_RETURN_IF_ERROR(checkFileSize(bytes, path));
  static constexpr std::string_view kMagic("SQLite format 3\0", 16);
  if (bytes.size() < 100 || bytes.substr(0, kMagic.size()) != kMagic) {
    return error(Code::kInvalidArgument, path + ": not an SQLite database (no \"SQLite format 3\" header)");
  }
  SqliteDb db;
  int rc = sqlite3_open_v2(":memory:", db.out(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  SqliteProgress progress;
  if (rc != SQLITE_OK) return sqliteError(path, db.get(), rc, progress, "opening an in-memory database");
  WHARF_RETURN_IF_ERROR(configureSqlite(db.get(), bytes.size()));
  sqlite3_progress_handler(db.get(), kProgressEvery, onSqliteProgress, &progress);

  // sqlite3_deserialize wants memory it may own; the copy also lets a WAL-mode file
  // (bytes 18 and 19 are 2; rpm uses WAL) be read as a rollback-journal one, which the
  // in-memory VFS requires (the -wal file is not ours to read).
  auto* copy = static_cast<unsigned char*>(sqlite3_malloc64(bytes.size()));
  if (copy == nullptr) return error(Code::kTooLarge, path + ": no memory for a copy of the database");
  std::memcpy(copy, bytes.data(), bytes.size());
  if (copy[18] == 2) copy[18] = 1;
  if (copy[19] == 2) copy[19] = 1;
  rc = sqlite3_deserialize(db.get(), "main", copy, static_cast<sqlite3_int64>(bytes.size()),
                           static_cast<sqlite3_int64>(bytes.size()),
                           SQLITE_DESERIALIZE_READONLY | SQLITE_DESERIALIZE_FREEONCLOSE);
  // On failure too, FREEONCLOSE hands the copy to SQLite.
  if (rc != SQLITE_OK) return sqliteError(path, db.get(), rc, progress, "loading the database");

  // An rpmdb: a table Packages with a column blob (a plain, stored column: a view, a
  // virtual table or a generated column would run the file's SQL).
  auto is_table = sqliteScalar(db.get(),
                               "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'Packages' "
                               "AND sql NOT LIKE 'CREATE VIRTUAL%'",
                               path, progress, "reading the schema");
  if (!is_table) return is_table.status();
  if (*is_table != 1) {
    return error(Code::kInvalidArgument, path + ": not an rpm database (an SQLite database with no table Packages)");
  }
  auto has_blob = sqliteScalar(db.get(), "SELECT count(*) FROM pragma_table_xinfo('Packages') "
                                         "WHERE name = 'blob' COLLATE NOCASE AND hidden = 0",
                               path, progress, "reading the schema");
  if (!has_blob) return has_blob.status();
  if (*has_blob != 1) {
    return error(Code::kInvalidArgument, path + ": not an rpm database (its table Packages has no column blob)");
  }

  SqliteStmt stmt;
  rc = sqlite3_prepare_v2(db.get(), "SELECT blob FROM Packages", -1, stmt.out(), nullptr);
  if (rc != SQLITE_OK) return sqliteError(path, db.get(), rc, progress, "querying Packages");
  std::vector<Package> out;
  for (uint64_t row = 1;; ++row) {
    rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return sqliteError(path, db.get(), rc, progress, "reading Packages");
    std::string where = "Packages row " + std::to_string(row);
    if (sqlite3_column_type(stmt.get(), 0) != SQLITE_BLOB) {
      return corrupt(path, where + ": blob is not a BLOB");
    }
    const void* data = sqlite3_column_blob(stmt.get(), 0);
    int size = sqlite3_column_bytes(stmt.get(), 0);
    std::string_view blob = data != nullptr && size > 0
                                ? std::string_view(static_cast<const char*>(data), static_cast<size_t>(size))
                                : std::string_view();
    WHARF_RETURN_IF_ERROR(addRecord(blob, path, where, &out));
  }
  return out;
}

// --- Berkeley DB hash ---
//
// libdb's on-disk format (dbinc/db_page.h): page 0 is the hash metadata page; every page
// starts with a 26-byte header (lsn 0-7, pgno 8-11, prev_pgno 12-15, next_pgno 16-19,
// entries 20-21, hf_offset 22-23, level 24, type 25), followed (on checksummed files, by
// 6 more bytes, then) by the item index: `entries` 16-bit offsets into the page. Hash
// pages hold key/data pairs; an item is a type byte then its bytes, up to the previous
// item's offset (the page end for the first). Large items live on chains of overflow
// pages (next_pgno links them, hf_offset is the length on the page). Numbers are in the
// byte order of the machine that wrote the file, which the metadata magic tells.

constexpr uint32_t kBdbHashMagic = 0x061561;
constexpr uint32_t kBdbBtreeMagic = 0x053162;
constexpr uint32_t kPageHeaderSize = 26;
constexpr uint8_t kPageHashUnsorted = 2;  // before libdb 4.6
constexpr uint8_t kPageOverflow = 7;
constexpr uint8_t kPageHashMeta = 8;
constexpr uint8_t kPageHash = 13;
constexpr uint8_t kItemKeyData = 1;
constexpr uint8_t kItemDuplicate = 2;
constexpr uint8_t kItemOffPage = 3;
constexpr uint8_t kItemOffDup = 4;
constexpr uint8_t kMetaFlagChecksum = 0x01;

class BdbFile {
 public:
  BdbFile(std::string_view bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  Status open();
  Status forEachRecord(std::vector<Package>* out);

 private:
  uint32_t u32(const unsigned char* p) const { return big_ ? be32(p) : le32(p); }
  uint16_t u16(const unsigned char* p) const { return big_ ? be16(p) : le16(p); }
  const unsigned char* page(uint32_t pgno) const { return ucp(bytes_) + uint64_t{pgno} * page_size_; }
  std::string pageName(uint32_t pgno) const { return "page " + std::to_string(pgno); }
  // An off-page item's bytes, gathered from its overflow chain into out.
  Status readOverflow(uint32_t first, uint32_t length, uint32_t item, const std::string& where,
                      std::string* out);

  std::string_view bytes_;
  const std::string& path_;
  bool big_ = false;
  uint32_t page_size_ = 0;
  uint32_t pages_ = 0;     // pages read: 0 .. last_pgno
  uint32_t overhead_ = kPageHeaderSize;
  // The item (1-based, over the whole file) whose chain each overflow page is on: an
  // overflow page belongs to one item, so a loop or a shared page is corruption, and
  // the work over all chains stays within the file's size.
  std::vector<uint32_t> overflow_owner_;
};

Status BdbFile::open() {
  WHARF_RETURN_IF_ERROR(checkFileSize(bytes_, path_));
  if (bytes_.size() < 512) {
    return error(Code::kInvalidArgument, path_ + ": not a Berkeley DB database (" + std::to_string(bytes_.size()) +
                                             " bytes, less than a page)");
  }
  const unsigned char* meta = ucp(bytes_);
  if (le32(meta + 12) == kBdbHashMagic) {
    big_ = false;
  } else if (be32(meta + 12) == kBdbHashMagic) {
    big_ = true;
  } else if (le32(meta + 12) == kBdbBtreeMagic || be32(meta + 12) == kBdbBtreeMagic) {
    return error(Code::kInvalidArgument, path_ + ": a Berkeley DB btree, not the hash database Packages is");
  } else {
    return error(Code::kInvalidArgument, path_ + ": not a Berkeley DB hash database (no magic 0x061561)");
  }
  if (meta[25] != kPageHashMeta) return corrupt(path_, "metadata page has type " + std::to_string(meta[25]));
  if (meta[24] != 0) return error(Code::kUnsupported, path_ + ": an encrypted Berkeley DB database");
  page_size_ = u32(meta + 20);
  if (page_size_ < 512 || page_size_ > 65536 || (page_size_ & (page_size_ - 1)) != 0) {
    return corrupt(path_, "page size " + std::to_string(page_size_) + " is not a power of two from 512 to 65536");
  }
  if (meta[26] & kMetaFlagChecksum) overhead_ = kPageHeaderSize + 6;
  uint32_t last_pgno = u32(meta + 32);
  uint64_t in_file = bytes_.size() / page_size_;
  if (uint64_t{last_pgno} + 1 > in_file) {
    return corrupt(path_, "the last page is " + std::to_string(last_pgno) + " but the file holds " +
                              std::to_string(in_file) + " pages of " + std::to_string(page_size_) + " bytes (truncated)");
  }
  pages_ = last_pgno + 1;
  overflow_owner_.assign(pages_, 0);
  return Status::ok();
}

Status BdbFile::readOverflow(uint32_t first, uint32_t length, uint32_t item, const std::string& where,
                             std::string* out) {
  out->clear();
  // Each byte comes from a distinct page of the file.
  if (length > bytes_.size()) {
    return corrupt(path_, where + ": an off-page item of " + std::to_string(length) + " bytes, more than the file");
  }
  out->reserve(length);
  uint32_t pgno = first;
  while (out->size() < length) {
    if (pgno == 0) {
      return corrupt(path_, where + ": overflow chain ends after " + std::to_string(out->size()) + " of " +
                                std::to_string(length) + " bytes");
    }
    if (pgno >= pages_) {
      return corrupt(path_, where + ": overflow chain goes to page " + std::to_string(pgno) + ", past the last page " +
                                std::to_string(pages_ - 1));
    }
    if (overflow_owner_[pgno] != 0) {
      return corrupt(path_, where + ": overflow " + pageName(pgno) +
                                (overflow_owner_[pgno] == item ? " comes twice in its chain (a loop)"
                                                               : " is on the chain of another item too"));
    }
    overflow_owner_[pgno] = item;
    const unsigned char* pg = page(pgno);
    if (pg[25] != kPageOverflow) {
      return corrupt(path_, where + ": overflow chain goes to " + pageName(pgno) + " of type " +
                                std::to_string(pg[25]));
    }
    uint32_t on_page = u16(pg + 22);
    if (on_page > page_size_ - overhead_) {
      return corrupt(path_, "overflow " + pageName(pgno) + " claims " + std::to_string(on_page) + " bytes");
    }
    uint32_t take = std::min<uint32_t>(on_page, length - static_cast<uint32_t>(out->size()));
    out->append(reinterpret_cast<const char*>(pg + overhead_), take);
    pgno = u32(pg + 16);
  }
  return Status::ok();
}

Status BdbFile::forEachRecord(std::vector<Package>* out) {
  uint32_t item = 0;
  std::string overflow;
  for (uint32_t pgno = 1; pgno < pages_; ++pgno) {
    const unsigned char* pg = page(pgno);
    uint8_t type = pg[25];
    if (type != kPageHash && type != kPageHashUnsorted) continue;  // overflow, free, unused bucket pages
    uint32_t entries = u16(pg + 20);
    if (entries % 2 != 0) {
      return corrupt(path_, pageName(pgno) + ": " + std::to_string(entries) + " items, not key/data pairs");
    }
    uint32_t index_end = overhead_ + 2 * entries;
    if (index_end > page_size_) {
      return corrupt(path_, pageName(pgno) + ": " + std::to_string(entries) + " items overrun the page");
    }
    // Item i spans [offset(i), offset(i - 1)) with offset(-1) = the page's end.
    auto item_at = [&](uint32_t i, std::string_view* bytes) -> Status {
      uint32_t begin = u16(pg + overhead_ + 2 * i);
      uint32_t end = i == 0 ? page_size_ : u16(pg + overhead_ + 2 * (i - 1));
      if (begin < index_end || begin >= end || end > page_size_) {
        return corrupt(path_, pageName(pgno) + ": item " + std::to_string(i) + " at [" + std::to_string(begin) +
                                  ", " + std::to_string(end) + ") is not within the page's item area");
      }
      *bytes = std::string_view(reinterpret_cast<const char*>(pg) + begin, end - begin);
      return Status::ok();
    };
    for (uint32_t i = 0; i < entries; i += 2) {
      std::string_view key, data;
      WHARF_RETURN_IF_ERROR(item_at(i, &key));
      WHARF_RETURN_IF_ERROR(item_at(i + 1, &data));
      ++item;
      std::string where = pageName(pgno) + " item " + std::to_string(i + 1);
      // Key 0 is rpm's own record (the next package number), not a package.
      if (key.size() == 5 && static_cast<uint8_t>(key[0]) == kItemKeyData && key.substr(1) == std::string_view("\0\0\0\0", 4)) {
        continue;
      }
      std::string_view blob;
      switch (static_cast<uint8_t>(data[0])) {
        case kItemKeyData:
          blob = data.substr(1);
          break;
        case kItemOffPage: {
          if (data.size() < 12) return corrupt(path_, where + ": an off-page item of " + std::to_string(data.size()) + " bytes");
          const unsigned char* d = ucp(data);
          WHARF_RETURN_IF_ERROR(readOverflow(u32(d + 4), u32(d + 8), item, where, &overflow));
          blob = overflow;
          break;
        }
        case kItemDuplicate:
        case kItemOffDup:
          return error(Code::kUnsupported, path_ + ": " + where + ": duplicate data items, which rpm's Packages never has");
        default:
          return corrupt(path_, where + ": unknown item type " + std::to_string(static_cast<uint8_t>(data[0])));
      }
      WHARF_RETURN_IF_ERROR(addRecord(blob, path_, where, out));
    }
  }
  return Status::ok();
}

// --- NDB (rpm's lib/backend/ndb/rpmpkg.c) ---
//
// A 32-byte header ("RpmP", version 0, generation, slot page count, ...), then the slot
// pages (4096 bytes of 16-byte slots: "Slot", package index, block offset, block count;
// the header takes the first two), then blobs in 16-byte blocks: a head ("BlbS", package
// index, timestamp, length), the header blob, zero padding and a tail (Adler-32 of all
// that precedes it, length, "BlbE"). All little-endian.

constexpr uint32_t kNdbMagic = 'R' | 'p' << 8 | 'm' << 16 | 'P' << 24;
constexpr uint32_t kNdbSlotMagic = 'S' | 'l' << 8 | 'o' << 16 | 't' << 24;
constexpr uint32_t kNdbBlobHeadMagic = 'B' | 'l' << 8 | 'b' << 16 | 'S' << 24;
constexpr uint32_t kNdbBlobTailMagic = 'B' | 'l' << 8 | 'b' << 16 | 'E' << 24;
constexpr uint32_t kNdbPageSize = 4096;
constexpr uint32_t kNdbSlotSize = 16;
constexpr uint32_t kNdbBlockSize = 16;
constexpr uint32_t kNdbHeadSize = 16;
constexpr uint32_t kNdbTailSize = 12;

uint32_t adler32(std::string_view bytes) {
  uint32_t a = 1, b = 0;
  const unsigned char* p = ucp(bytes);
  size_t n = bytes.size();
  while (n > 0) {
    size_t chunk = std::min<size_t>(n, 5552);
    n -= chunk;
    while (chunk-- > 0) {
      a += *p++;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return b << 16 | a;
}

Result<std::vector<Package>> readNdb(std::string_view bytes, const std::string& path) {
  WHARF_RETURN_IF_ERROR(checkFileSize(bytes, path));
  const unsigned char* f = ucp(bytes);
  if (bytes.size() < 32 || le32(f) != kNdbMagic) {
    return error(Code::kInvalidArgument, path + ": not an rpm NDB database (no \"RpmP\" header)");
  }
  if (uint32_t version = le32(f + 4); version != 0) {
    return error(Code::kUnsupported, path + ": NDB version " + std::to_string(version));
  }
  if (bytes.size() % kNdbBlockSize != 0) {
    return corrupt(path, std::to_string(bytes.size()) + " bytes, not whole 16-byte blocks");
  }
  uint64_t slot_pages = le32(f + 12);
  if (slot_pages == 0 || slot_pages * kNdbPageSize > bytes.size()) {
    return corrupt(path, std::to_string(slot_pages) + " slot pages in a file of " + std::to_string(bytes.size()) +
                             " bytes");
  }
  uint64_t file_blocks = bytes.size() / kNdbBlockSize;
  uint64_t first_blob_block = slot_pages * (kNdbPageSize / kNdbBlockSize);
  struct Slot {
    uint32_t pkgidx, blkoff, blkcnt;
  };
  std::vector<Slot> slots;
  for (uint64_t off = 32; off < slot_pages * kNdbPageSize; off += kNdbSlotSize) {
    const unsigned char* s = f + off;
    std::string where = "slot " + std::to_string(off / kNdbSlotSize);
    if (le32(s) != kNdbSlotMagic) return corrupt(path, where + ": bad magic");
    Slot slot{le32(s + 4), le32(s + 8), le32(s + 12)};
    if (slot.blkoff == 0) continue;  // free
    if (slot.pkgidx == 0 || slot.blkcnt == 0 || slot.blkoff < first_blob_block ||
        uint64_t{slot.blkoff} + slot.blkcnt > file_blocks) {
      return corrupt(path, where + ": package " + std::to_string(slot.pkgidx) + " at blocks " +
                               std::to_string(slot.blkoff) + "+" + std::to_string(slot.blkcnt) +
                               " is not within the file's blob area");
    }
    slots.push_back(slot);
  }
  // Blobs may not overlap (rpm refuses such a file too): the work stays within the file.
  std::sort(slots.begin(), slots.end(), [](const Slot& a, const Slot& b) { return a.blkoff < b.blkoff; });
  for (size_t i = 1; i < slots.size(); ++i) {
    if (uint64_t{slots[i - 1].blkoff} + slots[i - 1].blkcnt > slots[i].blkoff) {
      return corrupt(path, "the blobs of packages " + std::to_string(slots[i - 1].pkgidx) + " and " +
                               std::to_string(slots[i].pkgidx) + " overlap");
    }
  }
  std::vector<Package> out;
  for (const Slot& slot : slots) {
    std::string where = "package " + std::to_string(slot.pkgidx);
    std::string_view block = bytes.substr(uint64_t{slot.blkoff} * kNdbBlockSize, uint64_t{slot.blkcnt} * kNdbBlockSize);
    if (block.size() < kNdbHeadSize + kNdbTailSize) return corrupt(path, where + ": a blob of one block");
    const unsigned char* h = ucp(block);
    if (le32(h) != kNdbBlobHeadMagic || le32(h + 4) != slot.pkgidx) {
      return corrupt(path, where + ": no blob head for the package at its blocks");
    }
    uint64_t length = le32(h + 12);
    if ((kNdbHeadSize + length + kNdbTailSize + kNdbBlockSize - 1) / kNdbBlockSize != slot.blkcnt) {
      return corrupt(path, where + ": a blob of " + std::to_string(length) + " bytes in " +
                               std::to_string(slot.blkcnt) + " blocks");
    }
    const unsigned char* t = h + block.size() - kNdbTailSize;
    if (le32(t + 8) != kNdbBlobTailMagic || le32(t + 4) != length) {
      return corrupt(path, where + ": the blob's tail does not match its head");
    }
    if (adler32(block.substr(0, block.size() - kNdbTailSize)) != le32(t)) {
      return corrupt(path, where + ": the blob's Adler-32 does not match");
    }
    WHARF_RETURN_IF_ERROR(addRecord(block.substr(kNdbHeadSize, length), path, where, &out));
  }
  return out;
}

}  // namespace
}  // namespace rpmdb_detail

Result<Package> parseRpmHeader(std::string_view blob) { return rpmdb_detail::packageFromHeader(blob); }

Result<std::vector<Package>> readRpmSqlite(std::string_view file_bytes, const std::string& path) {
  return rpmdb_detail::readSqlite(file_bytes, path);
}

Result<std::vector<Package>> readRpmBerkeleyDb(std::string_view file_bytes, const std::string& path) {
  rpmdb_detail::BdbFile file(file_bytes, path);
  WHARF_RETURN_IF_ERROR(file.open());
  std::vector<Package> out;
  WHARF_RETURN_IF_ERROR(file.forEachRecord(&out));
  return out;
}

Result<std::vector<Package>> readRpmNdb(std::string_view file_bytes, const std::string& path) {
  return rpmdb_detail::readNdb(file_bytes, path);
}

Result<std::vector<Package>> readRpmDatabase(std::string_view file_bytes, const std::string& path) {
  // Qualified: another source of the same unity batch may have names like these.
  namespace d = rpmdb_detail;
  if (file_bytes.substr(0, 16) == std::string_view("SQLite format 3\0", 16)) return readRpmSqlite(file_bytes, path);
  if (file_bytes.size() >= 4 && d::le32(d::ucp(file_bytes)) == d::kNdbMagic) return readRpmNdb(file_bytes, path);
  if (file_bytes.size() >= 16 && (d::le32(d::ucp(file_bytes) + 12) == d::kBdbHashMagic ||
                                  d::be32(d::ucp(file_bytes) + 12) == d::kBdbHashMagic)) {
    return readRpmBerkeleyDb(file_bytes, path);
  }
  return error(Code::kInvalidArgument, path + ": not an rpm database (neither SQLite, Berkeley DB hash nor NDB)");
}

}  // namespace wharf
