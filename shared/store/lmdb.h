// Thin RAII wrappers over LMDB. Only this module includes <lmdb.h>.
//
// Threading: an LmdbEnv is shared by all threads. A transaction belongs to the thread
// that began it until it ends. Readers never block; one write transaction at a time
// (begin() of a second one waits), so write transactions run on worker threads, never
// on a loop thread. Every change is one transaction; commit() is durable (fsync) unless
// the environment was opened with durable = false (tests only).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shared/base/status.h"

typedef struct MDB_env MDB_env;
typedef struct MDB_txn MDB_txn;
typedef struct MDB_cursor MDB_cursor;

namespace wharf {

using Dbi = unsigned int;

class Cursor;

class Txn {
 public:
  Txn(Txn&& o) noexcept : env_(o.env_), txn_(o.txn_), write_(o.write_) { o.txn_ = nullptr; }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  virtual ~Txn();

  // kNotFound when absent. The view is valid until the transaction ends.
  Status get(Dbi dbi, std::string_view key, std::string_view* value) const;
  bool has(Dbi dbi, std::string_view key) const;
  Cursor cursor(Dbi dbi) const;

 protected:
  friend class LmdbEnv;
  Txn(class LmdbEnv* env, MDB_txn* txn, bool write) : env_(env), txn_(txn), write_(write) {}
  LmdbEnv* env_;
  MDB_txn* txn_;
  bool write_;
};

class ReadTxn : public Txn {
 public:
  using Txn::Txn;
  ReadTxn(ReadTxn&&) noexcept = default;
};

class WriteTxn : public Txn {
 public:
  using Txn::Txn;
  WriteTxn(WriteTxn&&) noexcept = default;
  Status put(Dbi dbi, std::string_view key, std::string_view value);
  // kNotFound when absent.
  Status del(Dbi dbi, std::string_view key);
  // Ends the transaction; the destructor of an uncommitted one aborts it.
  Status commit();
};

// A cursor over one database in key order.
class Cursor {
 public:
  Cursor(Cursor&& o) noexcept : c_(o.c_), key_(o.key_), value_(o.value_), valid_(o.valid_), rc_(o.rc_) {
    o.c_ = nullptr;
  }
  Cursor(const Cursor&) = delete;
  ~Cursor();
  // Positions at the first key >= key.
  bool seek(std::string_view key);
  bool first();
  bool next();
  bool last();
  bool prev();
  bool valid() const { return valid_; }
  // OK unless the last move failed for another reason than reaching the end (a scan
  // that stopped early must not pass for a complete one).
  Status status() const;
  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }

 private:
  friend class Txn;
  explicit Cursor(MDB_cursor* c) : c_(c) {}
  bool op(int mdb_op, std::string_view key);
  MDB_cursor* c_;
  std::string_view key_, value_;
  bool valid_ = false;
  int rc_ = 0;  // the last error other than MDB_NOTFOUND
};

class LmdbEnv {
 public:
  struct Options {
    uint64_t map_size = 64ull << 30;  // virtual; the file grows as used
    unsigned max_dbs = 64;
    unsigned max_readers = 512;
    bool durable = true;
  };
  // Opens (creating) the environment in a single file at path (MDB_NOSUBDIR).
  static Result<std::unique_ptr<LmdbEnv>> open(const std::string& path, const Options& options);
  ~LmdbEnv();

  // Opens or creates a named database. Call at start-up, before other transactions.
  Result<Dbi> openDb(const std::string& name);
  Result<ReadTxn> read();
  Result<WriteTxn> write();

 private:
  friend class Txn;
  explicit LmdbEnv(MDB_env* env) : env_(env) {}
  void releaseReader(MDB_txn* txn);
  MDB_env* env_;
  std::mutex mu_;
  std::vector<MDB_txn*> idle_readers_;  // GUARDED_BY(mu_): reset read txns for renewal
};

Status lmdbStatus(const std::string& what, int rc);

// Fixed-width big-endian integers: keys that sort as the numbers they hold. The readers
// take the first 8 (4) bytes of a key, or as many as it has.
std::string bigEndian64(uint64_t v);
uint64_t fromBigEndian64(std::string_view key);
std::string bigEndian32(uint32_t v);
uint32_t fromBigEndian32(std::string_view key);

}  // namespace wharf
