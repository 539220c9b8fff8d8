#include "core/trust/pg_trust_store.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/tls/crypto.h"

namespace wharf {

const std::vector<PgMigration>& trustMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "TUF metadata per GUN and role with its history, server-held keys, the change feed", R"sql(
CREATE TABLE trust_files (gun text COLLATE "C" NOT NULL, role text COLLATE "C" NOT NULL, version bigint NOT NULL,
                          sha256 text COLLATE "C" NOT NULL, stored_ms bigint NOT NULL, bytes bytea NOT NULL,
                          PRIMARY KEY (gun, role, version));
CREATE INDEX trust_files_by_checksum ON trust_files (gun, role, sha256, version);
CREATE TABLE trust_current (gun text COLLATE "C" NOT NULL, role text COLLATE "C" NOT NULL, version bigint NOT NULL,
                            PRIMARY KEY (gun, role));
CREATE TABLE trust_keys (gun text COLLATE "C" NOT NULL, role text COLLATE "C" NOT NULL, sealed bytea NOT NULL,
                         PRIMARY KEY (gun, role));
CREATE TABLE trust_changes (seq bigint PRIMARY KEY, gun text COLLATE "C" NOT NULL, action text NOT NULL,
                            version bigint NOT NULL, sha256 text NOT NULL, ts_ms bigint NOT NULL);
CREATE INDEX trust_changes_by_gun ON trust_changes (gun, seq);
CREATE TABLE trust_change_seq (id int PRIMARY KEY CHECK (id = 1), last_seq bigint NOT NULL);
INSERT INTO trust_change_seq (id, last_seq) VALUES (1, 0);
)sql"},
  };
  return all;
}

// The helpers' own namespace: wharf_core_lib is a unity build (sources batched into one
// translation unit), where anonymous namespaces of different files are one.
namespace pg_trust_store {
namespace {

// The advisory lock class of a GUN's writes (update, deleteGun); the second key is
// hashtext(gun) (a collision only makes two GUNs take turns).
constexpr int kGunLock = 1501;

std::string num(int64_t v) { return std::to_string(v); }
std::string limitOf(size_t n) {
  return num(static_cast<int64_t>(std::min<size_t>(n, static_cast<size_t>(std::numeric_limits<int64_t>::max()))));
}

// --- text PostgreSQL can hold (as pg_identity_store.cc) ---

Status unstorable(const std::string& what) {
  return Status(Code::kInvalidArgument, what + " that is not UTF-8 text (or that holds a NUL byte) cannot be stored");
}

// --- bytea through text parameters: base64 in, base64 out ---

std::string bytesParam(std::string_view bytes) { return base64Encode(bytes); }

// What encode(x, 'base64') gave (lines of 76 characters) as the bytes.
Result<std::string> bytesOf(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char ch : text)
    if (ch != '\n' && ch != '\r') clean += ch;
  bool ok = false;
  std::string out = base64Decode(clean, &ok);
  if (!ok) return Status(Code::kCorruption, "trust store: a value does not decode");
  return out;
}

// A file of a row: its sha256, stored_ms and encode(bytes, 'base64') from column col on.
Result<TufFile> fileOf(const PgResult& r, int row, int col, const std::string& role, int64_t version) {
  TufFile f;
  f.role = role;
  f.version = version;
  f.sha256 = std::string(r.text(row, col));
  f.stored_ms = r.integer(row, col + 1);
  auto bytes = bytesOf(r.text(row, col + 2));
  if (!bytes.isOk()) return bytes.status();
  f.bytes = std::move(bytes).value();
  return f;
}

Status noFile(const std::string& gun, const std::string& role, int64_t version) {
  return Status(Code::kNotFound, gun + ": no " + role + " version " + std::to_string(version));
}

TrustChange changeOf(const PgResult& r, int i) {
  TrustChange ch;
  ch.seq = static_cast<uint64_t>(r.integer(i, 0));
  ch.gun = std::string(r.text(i, 1));
  ch.action = std::string(r.text(i, 2));
  ch.version = r.integer(i, 3);
  ch.sha256 = std::string(r.text(i, 4));
  ch.ts_ms = r.integer(i, 5);
  return ch;
}

// The current file's columns, joined to trust_current c: whether the file is there, then
// what fileOf reads.
constexpr const char* kCurrentJoin =
    " FROM trust_current c LEFT JOIN trust_files f ON f.gun = c.gun AND f.role = c.role AND f.version = c.version";

// Atomicity, where LMDB had its single writer (READ COMMITTED; every lock is held to
// commit):
//
// * update and deleteGun: the GUN's advisory lock first (kGunLock), so each statement
//   after it sees what the previous holder committed. The version checks, the files, the
//   current versions and the change are one transaction: two replicas publishing the next
//   version of a role at once take turns, the second finds the first's version current
//   and is refused (kConflict, as LMDB refuses a stale version), or, with the same bytes,
//   keeps it as it is; a role's first version is claimed the same way (there is no row to
//   lock before it exists, hence the advisory lock).
// * The change feed: appendChange increments trust_change_seq's one row; its lock is held
//   to commit, so changes take seq in commit order and become visible in seq order.
// * Keys: putServerKey and deleteServerKey are one statement each (an upsert, a delete);
//   against a deleteGun, any outcome is one of LMDB's serial orders.
// * Reads are one statement each: the current version and its file, or every role of a
//   GUN, come from one snapshot.
class PgTrustStore final : public TrustStore {
 public:
  explicit PgTrustStore(std::shared_ptr<PgPool> db) : db_(std::move(db)) {}

  Result<TufFile> current(const std::string& gun, const std::string& role) override {
    if (!pgStorable(gun) || !pgStorable(role)) return noRole(gun, role);
    auto r = db_->query(std::string("SELECT c.version, f.version IS NOT NULL, f.sha256, f.stored_ms, "
                                    "encode(f.bytes, 'base64')") +
                            kCurrentJoin + " WHERE c.gun = $1 AND c.role = $2",
                        {gun, role});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return noRole(gun, role);
    int64_t version = r->integer(0, 0);
    if (!r->boolean(0, 1)) return noFile(gun, role, version);
    return fileOf(*r, 0, 2, role, version);
  }

  Result<TufFile> byVersion(const std::string& gun, const std::string& role, int64_t version) override {
    if (!pgStorable(gun) || !pgStorable(role)) return noFile(gun, role, version);
    auto r = db_->query("SELECT sha256, stored_ms, encode(bytes, 'base64') FROM trust_files "
                        "WHERE gun = $1 AND role = $2 AND version = $3::bigint",
                        {gun, role, num(version)});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return noFile(gun, role, version);
    return fileOf(*r, 0, 0, role, version);
  }

  Result<TufFile> byChecksum(const std::string& gun, const std::string& role, const std::string& sha256_hex) override {
    const Status none(Code::kNotFound, gun + ": no " + role + " with that checksum");
    if (!pgStorable(gun) || !pgStorable(role) || !pgStorable(sha256_hex)) return none;
    // The newest version with those bytes: the last one written with them (LMDB's
    // trust_checksums entry), versions only going up.
    auto r = db_->query("SELECT version, sha256, stored_ms, encode(bytes, 'base64') FROM trust_files "
                        "WHERE gun = $1 AND role = $2 AND sha256 = $3 ORDER BY version DESC LIMIT 1",
                        {gun, role, sha256_hex});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return none;
    return fileOf(*r, 0, 1, role, r->integer(0, 0));
  }

  Result<std::vector<TufFile>> currentAll(const std::string& gun) override {
    std::vector<TufFile> out;
    if (!pgStorable(gun)) return out;
    auto r = db_->query(std::string("SELECT c.role, c.version, f.version IS NOT NULL, f.sha256, f.stored_ms, "
                                    "encode(f.bytes, 'base64')") +
                            kCurrentJoin + " WHERE c.gun = $1 ORDER BY c.role",
                        {gun});
    if (!r.isOk()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      std::string role(r->text(i, 0));
      int64_t version = r->integer(i, 1);
      if (!r->boolean(i, 2)) return noFile(gun, role, version);
      auto f = fileOf(*r, i, 3, role, version);
      if (!f.isOk()) return f.status();
      out.push_back(std::move(f).value());
    }
    return out;
  }

  Result<std::vector<std::string>> guns() override {
    auto r = db_->query("SELECT DISTINCT gun FROM trust_current ORDER BY gun");
    if (!r.isOk()) return r.status();
    std::vector<std::string> out;
    for (int i = 0; i < r->rows(); ++i) out.emplace_back(r->text(i, 0));
    return out;
  }

  Status update(const std::string& gun, const std::vector<TufFile>& files, int64_t now_ms) override {
    if (!pgStorable(gun)) return unstorable("a GUN");
    for (const auto& f : files)
      if (!pgStorable(f.role)) return unstorable("a role");
    if (files.empty()) return Status::ok();  // nothing to write (LMDB commits an empty transaction)
    std::vector<std::string> encoded;
    for (const auto& f : files) encoded.push_back(bytesParam(f.bytes));
    return db_->transact([&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(lockGun(c, gun));
      const TufFile* timestamp = nullptr;  // a new timestamp is a change (as Notary's feed)
      std::string timestamp_sha;
      for (size_t i = 0; i < files.size(); ++i) {
        const TufFile& f = files[i];
        // Sees what this transaction wrote for an earlier file of the same role.
        auto cur = c.exec("SELECT c.version, f.bytes = decode($3, 'base64')" + std::string(kCurrentJoin) +
                              " WHERE c.gun = $1 AND c.role = $2",
                          {gun, f.role, encoded[i]});
        if (!cur.isOk()) return cur.status();
        if (cur->rows() > 0) {
          int64_t have = cur->integer(0, 0);
          if (f.version == have && cur->boolean(0, 1)) continue;  // the same file again
          if (f.version <= have)
            return Status(Code::kConflict, f.role + ": version " + std::to_string(f.version) +
                                               " is not above the current " + std::to_string(have));
        }
        std::string sha = sha256Hex(f.bytes);
        WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO trust_files (gun, role, version, sha256, stored_ms, bytes) "
                                     "VALUES ($1, $2, $3::bigint, $4, $5::bigint, decode($6, 'base64')) "
                                     "ON CONFLICT (gun, role, version) DO UPDATE SET sha256 = EXCLUDED.sha256, "
                                     "stored_ms = EXCLUDED.stored_ms, bytes = EXCLUDED.bytes",
                                     {gun, f.role, num(f.version), sha, num(now_ms), encoded[i]})
                                  .status());
        WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO trust_current (gun, role, version) VALUES ($1, $2, $3::bigint) "
                                     "ON CONFLICT (gun, role) DO UPDATE SET version = EXCLUDED.version",
                                     {gun, f.role, num(f.version)})
                                  .status());
        if (f.role == "timestamp") {
          timestamp = &f;
          timestamp_sha = sha;
        }
      }
      if (timestamp == nullptr) return Status::ok();
      return appendChange(c, gun, "update", timestamp->version, timestamp_sha, now_ms);
    });
  }

  Status deleteGun(const std::string& gun, int64_t now_ms) override {
    if (!pgStorable(gun)) return Status::ok();  // no such GUN: nothing to delete
    return db_->transact([&](PgConn& c) -> Status {
      WHARF_RETURN_IF_ERROR(lockGun(c, gun));
      int64_t deleted = 0;
      for (const char* sql : {"DELETE FROM trust_files WHERE gun = $1", "DELETE FROM trust_current WHERE gun = $1",
                              "DELETE FROM trust_keys WHERE gun = $1"}) {
        auto r = c.exec(sql, {gun});
        if (!r.isOk()) return r.status();
        deleted += r->affected();
      }
      if (deleted == 0) return Status::ok();
      return appendChange(c, gun, "deletion", 0, "", now_ms);
    });
  }

  Result<std::string> serverKey(const std::string& gun, const std::string& role) override {
    const Status none(Code::kNotFound, gun + ": no " + role + " key");
    if (!pgStorable(gun) || !pgStorable(role)) return none;
    auto r = db_->query("SELECT encode(sealed, 'base64') FROM trust_keys WHERE gun = $1 AND role = $2", {gun, role});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return none;
    return bytesOf(r->text(0, 0));
  }

  Status putServerKey(const std::string& gun, const std::string& role, const std::string& sealed) override {
    if (!pgStorable(gun)) return unstorable("a GUN");
    if (!pgStorable(role)) return unstorable("a role");
    return db_->query("INSERT INTO trust_keys (gun, role, sealed) VALUES ($1, $2, decode($3, 'base64')) "
                      "ON CONFLICT (gun, role) DO UPDATE SET sealed = EXCLUDED.sealed",
                      {gun, role, bytesParam(sealed)})
        .status();
  }

  Result<std::string> addServerKey(const std::string& gun, const std::string& role,
                                   const std::string& sealed) override {
    if (!pgStorable(gun)) return unstorable("a GUN");
    if (!pgStorable(role)) return unstorable("a role");
    // The insert of the first core wins; the others read its key (the row is there once
    // their insert, which waited for it, did nothing).
    auto r = db_->query("INSERT INTO trust_keys (gun, role, sealed) VALUES ($1, $2, decode($3, 'base64')) "
                        "ON CONFLICT (gun, role) DO NOTHING",
                        {gun, role, bytesParam(sealed)});
    if (!r.isOk()) return r.status();
    if (r->affected() == 1) return sealed;
    return serverKey(gun, role);
  }

  Status deleteServerKey(const std::string& gun, const std::string& role) override {
    if (!pgStorable(gun) || !pgStorable(role)) return Status::ok();  // no such key
    return db_->query("DELETE FROM trust_keys WHERE gun = $1 AND role = $2", {gun, role}).status();
  }

  Result<std::vector<TrustChange>> changes(const std::string& gun, uint64_t after, size_t limit) override {
    std::vector<TrustChange> out;
    // No seq is above the largest bigint; a GUN PostgreSQL cannot hold has no changes.
    if (limit == 0 || after >= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || !pgStorable(gun)) return out;
    const std::string from = num(static_cast<int64_t>(after));
    auto r = gun.empty()
                 ? db_->query("SELECT seq, gun, action, version, sha256, ts_ms FROM trust_changes "
                              "WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint",
                              {from, limitOf(limit)})
                 : db_->query("SELECT seq, gun, action, version, sha256, ts_ms FROM trust_changes "
                              "WHERE gun = $3 AND seq > $1::bigint ORDER BY seq LIMIT $2::bigint",
                              {from, limitOf(limit), gun});
    if (!r.isOk()) return r.status();
    for (int i = 0; i < r->rows(); ++i) out.push_back(changeOf(*r, i));
    return out;
  }

 private:
  static Status noRole(const std::string& gun, const std::string& role) {
    return Status(Code::kNotFound, gun + ": no " + role);
  }

  static Status lockGun(PgConn& c, const std::string& gun) {
    return c.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kGunLock) + ", hashtext($1))", {gun}).status();
  }

  // The next change: the counter's row stays locked to commit (seq order is commit order).
  static Status appendChange(PgConn& c, const std::string& gun, const std::string& action, int64_t version,
                             const std::string& sha256, int64_t now_ms) {
    auto r = c.exec("UPDATE trust_change_seq SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq");
    if (!r.isOk()) return r.status();
    if (r->rows() != 1) return Status(Code::kCorruption, "trust store: the change sequence is missing");
    return c
        .exec("INSERT INTO trust_changes (seq, gun, action, version, sha256, ts_ms) "
              "VALUES ($1::bigint, $2, $3, $4::bigint, $5, $6::bigint)",
              {num(r->integer(0, 0)), gun, action, num(version), sha256, num(now_ms)})
        .status();
  }

  std::shared_ptr<PgPool> db_;
};

}  // namespace
}  // namespace pg_trust_store

Result<std::unique_ptr<TrustStore>> openPgTrustStore(std::shared_ptr<PgPool> db) {
  auto applied = applyMigrations(*db, "trust", trustMigrations());
  if (!applied.isOk()) return applied.status();
  return std::unique_ptr<TrustStore>(std::make_unique<pg_trust_store::PgTrustStore>(std::move(db)));
}

}  // namespace wharf
