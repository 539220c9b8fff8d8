#include "shared/store/lmdb.h"

#include <lmdb.h>

#include <cerrno>

namespace wharf {

namespace {
template <typename T>
std::string bigEndian(T v) {
  std::string k(sizeof(T), '\0');
  for (size_t i = sizeof(T); i-- > 0;) {
    k[i] = static_cast<char>(v & 0xff);
    v = static_cast<T>(v >> 8);
  }
  return k;
}

template <typename T>
T fromBigEndian(std::string_view key) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T) && i < key.size(); ++i) v = static_cast<T>((v << 8) | static_cast<unsigned char>(key[i]));
  return v;
}
}  // namespace

std::string bigEndian64(uint64_t v) { return bigEndian(v); }
uint64_t fromBigEndian64(std::string_view key) { return fromBigEndian<uint64_t>(key); }
std::string bigEndian32(uint32_t v) { return bigEndian(v); }
uint32_t fromBigEndian32(std::string_view key) { return fromBigEndian<uint32_t>(key); }

Status lmdbStatus(const std::string& what, int rc) {
  if (rc == 0) return Status::ok();
  if (rc == MDB_NOTFOUND) return Status(Code::kNotFound, what + ": not found");
  if (rc == MDB_MAP_FULL) {
    return Status(Code::kInsufficientStorage, what + ": metadata store is full (raise its map size)");
  }
  if (rc == ENOSPC || rc == EDQUOT) return Status(Code::kInsufficientStorage, what + ": " + mdb_strerror(rc));
  return Status(Code::kIoError, what + ": " + mdb_strerror(rc));
}

namespace {
MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }
}  // namespace

Txn::~Txn() {
  if (txn_ == nullptr) return;
  if (write_) {
    mdb_txn_abort(txn_);
  } else {
    env_->releaseReader(txn_);
  }
}

Status Txn::get(Dbi dbi, std::string_view key, std::string_view* value) const {
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc != 0) return lmdbStatus("get", rc);
  *value = view(v);
  return Status::ok();
}

bool Txn::has(Dbi dbi, std::string_view key) const {
  std::string_view v;
  return get(dbi, key, &v).isOk();
}

Cursor Txn::cursor(Dbi dbi) const {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, dbi, &c);
  WHARF_ASSERT(rc == 0);
  return Cursor(c);
}

Status WriteTxn::put(Dbi dbi, std::string_view key, std::string_view value) {
  MDB_val k = val(key), v = val(value);
  return lmdbStatus("put", mdb_put(txn_, dbi, &k, &v, 0));
}

Status WriteTxn::del(Dbi dbi, std::string_view key) {
  MDB_val k = val(key);
  return lmdbStatus("del", mdb_del(txn_, dbi, &k, nullptr));
}

Status WriteTxn::commit() {
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;
  return lmdbStatus("commit", rc);
}

Cursor::~Cursor() {
  if (c_ != nullptr) mdb_cursor_close(c_);
}

Status Cursor::status() const { return rc_ == 0 ? Status::ok() : lmdbStatus("cursor", rc_); }

bool Cursor::op(int mdb_op, std::string_view key) {
  MDB_val k = val(key), v{0, nullptr};
  int rc = mdb_cursor_get(c_, &k, &v, static_cast<MDB_cursor_op>(mdb_op));
  valid_ = rc == 0;
  if (rc != 0 && rc != MDB_NOTFOUND) rc_ = rc;
  if (valid_) {
    key_ = view(k);
    value_ = view(v);
  }
  return valid_;
}

bool Cursor::seek(std::string_view key) {
  if (key.empty()) return first();
  return op(MDB_SET_RANGE, key);
}
bool Cursor::first() { return op(MDB_FIRST, {}); }
bool Cursor::next() { return op(MDB_NEXT, {}); }
bool Cursor::last() { return op(MDB_LAST, {}); }
bool Cursor::prev() { return op(MDB_PREV, {}); }

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::open(const std::string& path, const Options& options) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return lmdbStatus("mdb_env_create", rc);
  std::unique_ptr<LmdbEnv> out(new LmdbEnv(env));
  if ((rc = mdb_env_set_mapsize(env, options.map_size)) != 0) return lmdbStatus("set map size", rc);
  if ((rc = mdb_env_set_maxdbs(env, options.max_dbs)) != 0) return lmdbStatus("set max dbs", rc);
  if ((rc = mdb_env_set_maxreaders(env, options.max_readers)) != 0) return lmdbStatus("set max readers", rc);
  unsigned flags = MDB_NOSUBDIR | MDB_NOTLS | (options.durable ? 0 : MDB_NOSYNC);
  if ((rc = mdb_env_open(env, path.c_str(), flags, 0640)) != 0) return lmdbStatus("open " + path, rc);
  return out;
}

LmdbEnv::~LmdbEnv() {
  for (MDB_txn* t : idle_readers_) mdb_txn_abort(t);
  mdb_env_close(env_);
}

Result<Dbi> LmdbEnv::openDb(const std::string& name) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != 0) return lmdbStatus("begin", rc);
  MDB_dbi dbi;
  rc = mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &dbi);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return lmdbStatus("open database " + name, rc);
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) return lmdbStatus("commit", rc);
  return Dbi{dbi};
}

Result<ReadTxn> LmdbEnv::read() {
  MDB_txn* txn = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!idle_readers_.empty()) {
      txn = idle_readers_.back();
      idle_readers_.pop_back();
    }
  }
  if (txn != nullptr) {
    int rc = mdb_txn_renew(txn);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return lmdbStatus("renew read", rc);
    }
    return ReadTxn(this, txn, false);
  }
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return lmdbStatus("begin read", rc);
  return ReadTxn(this, txn, false);
}

void LmdbEnv::releaseReader(MDB_txn* txn) {
  mdb_txn_reset(txn);
  std::lock_guard lock(mu_);
  if (idle_readers_.size() < 64) {
    idle_readers_.push_back(txn);
    return;
  }
  mdb_txn_abort(txn);
}

Result<WriteTxn> LmdbEnv::write() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != 0) return lmdbStatus("begin write", rc);
  return WriteTxn(this, txn, true);
}

}  // namespace wharf
