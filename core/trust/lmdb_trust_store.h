// LmdbTrustStore: the TrustStore in meta.lmdb's environment (its own tables), so that
// trust data is written with the same durability as the registry's metadata.
//
//   trust_files     <gun>\0<role>\0<version u64 BE> -> sha256 hex, '\n', stored ms, '\n', bytes
//   trust_current   <gun>\0<role>                   -> version u64 BE
//   trust_checksums <gun>\0<role>\0<sha256 hex>      -> version u64 BE
//   trust_keys      <gun>\0<role>                   -> sealed private key
//   trust_changes   <seq u64 BE>                    -> {"gun","action","version","sha256","ts"}
//   trust_meta      "change_seq"                    -> the last change's seq (u64 BE)
#pragma once

#include <memory>
#include <mutex>

#include "core/trust/trust_store.h"
#include "shared/store/lmdb.h"

namespace wharf {

class LmdbTrustStore : public TrustStore {
 public:
  static Result<std::unique_ptr<LmdbTrustStore>> open(std::shared_ptr<LmdbEnv> env);

  Result<TufFile> current(const std::string& gun, const std::string& role) override;
  Result<TufFile> byVersion(const std::string& gun, const std::string& role, int64_t version) override;
  Result<TufFile> byChecksum(const std::string& gun, const std::string& role, const std::string& sha256_hex) override;
  Result<std::vector<TufFile>> currentAll(const std::string& gun) override;
  Result<std::vector<std::string>> guns() override;
  Status update(const std::string& gun, const std::vector<TufFile>& files, int64_t now_ms) override;
  Status deleteGun(const std::string& gun, int64_t now_ms) override;
  Result<std::string> serverKey(const std::string& gun, const std::string& role) override;
  Status putServerKey(const std::string& gun, const std::string& role, const std::string& sealed) override;
  Result<std::string> addServerKey(const std::string& gun, const std::string& role, const std::string& sealed) override;
  Status deleteServerKey(const std::string& gun, const std::string& role) override;
  Result<std::vector<TrustChange>> changes(const std::string& gun, uint64_t after, size_t limit) override;

 private:
  explicit LmdbTrustStore(std::shared_ptr<LmdbEnv> env) : env_(std::move(env)) {}
  Result<TufFile> file(const Txn& txn, const std::string& gun, const std::string& role, int64_t version);
  Status appendChange(WriteTxn& txn, const std::string& gun, const std::string& action, int64_t version,
                      const std::string& sha256, int64_t now_ms);

  std::shared_ptr<LmdbEnv> env_;
  Dbi files_ = 0, current_ = 0, checksums_ = 0, keys_ = 0, changes_ = 0, meta_ = 0;
  std::mutex write_mu_;  // updates read-check-write in one transaction; one at a time
};

}  // namespace wharf
