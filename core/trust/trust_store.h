// TrustStore: the trust server's state (Notary v1): per GUN, every TUF role's metadata,
// stored verbatim with its history (by version and by SHA-256), the server-held keys
// (sealed by the caller before they come here), and the change feed.
//
// An update is one transaction: every file's version must be above the role's current
// one (kConflict naming the role), or equal with the same bytes (kept as it is), else
// nothing is written. An update that writes a timestamp adds a change to the feed.
//
// Thread-safety: every method is thread-safe; writes block on the disk.
// Implementations: LmdbTrustStore (lmdb_trust_store.h), the embedded default.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/base/status.h"

namespace wharf {

struct TufFile {
  std::string role;     // "root", "targets", "targets/releases", "snapshot", "timestamp"
  int64_t version = 0;
  std::string bytes;    // as uploaded
  std::string sha256;   // hex of bytes (set by the store)
  int64_t stored_ms = 0;
};

// A change of a GUN's published state: a new timestamp ("update", with its version and
// checksum), or the deletion of its trust data, as Notary's change feed has them.
struct TrustChange {
  uint64_t seq = 0;
  std::string gun;
  std::string action;  // "update" or "deletion"
  int64_t version = 0; // the timestamp's
  std::string sha256;  // the timestamp's (hex)
  int64_t ts_ms = 0;
};

class TrustStore {
 public:
  virtual ~TrustStore() = default;
  // kNotFound when the GUN has no such role (or version, or checksum).
  virtual Result<TufFile> current(const std::string& gun, const std::string& role) = 0;
  virtual Result<TufFile> byVersion(const std::string& gun, const std::string& role, int64_t version) = 0;
  virtual Result<TufFile> byChecksum(const std::string& gun, const std::string& role, const std::string& sha256_hex) = 0;
  // The current file of every role of the GUN (empty when it has none).
  virtual Result<std::vector<TufFile>> currentAll(const std::string& gun) = 0;
  // Every GUN with trust data.
  virtual Result<std::vector<std::string>> guns() = 0;
  virtual Status update(const std::string& gun, const std::vector<TufFile>& files, int64_t now_ms) = 0;
  // Removes every file and key of the GUN (notary delete --remote).
  virtual Status deleteGun(const std::string& gun, int64_t now_ms) = 0;
  // A server-held key of a role ("timestamp", "snapshot"), sealed by the caller.
  virtual Result<std::string> serverKey(const std::string& gun, const std::string& role) = 0;
  virtual Status putServerKey(const std::string& gun, const std::string& role, const std::string& sealed) = 0;
  // Stores sealed unless the role has a key already; returns the key stored (the one
  // there, when two cores make a role's first key at once: both then use it).
  virtual Result<std::string> addServerKey(const std::string& gun, const std::string& role,
                                           const std::string& sealed) = 0;
  virtual Status deleteServerKey(const std::string& gun, const std::string& role) = 0;
  // Changes after seq (of one GUN, or all when gun is empty), at most limit.
  virtual Result<std::vector<TrustChange>> changes(const std::string& gun, uint64_t after, size_t limit) = 0;
};

}  // namespace wharf
