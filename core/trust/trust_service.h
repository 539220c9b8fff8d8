// TrustService: Notary v1's server logic over a TrustStore — what an update must satisfy
// before anything is stored, and the timestamp the server signs.
//
// publish() takes the parts of the atomic update (role -> bytes as uploaded: root,
// targets, targets/<delegation>..., snapshot; a client never sends the timestamp) and,
// against the GUN's current state:
//   root      validateRoot (certificates for the GUN, thresholds, rotation through the
//             previous root); it must name the server's timestamp key
//   targets   signed by the keys root names, version above the stored one, unexpired
//   targets/x signed to the threshold of the delegation its parent declares
//   snapshot  signed by root's snapshot keys; lists the exact bytes of root, targets and
//             every delegation, uploaded or stored. When the client lets the server hold
//             the snapshot key (root names it) and sends none, the server makes it.
// then stores everything in one transaction and signs a new timestamp over the snapshot.
//
// Key rotation (POST <role>.key): a new server key, pending until a root that names it is
// published; until then the current key goes on signing.
// Refusals: kInvalidArgument (Notary's INVALID_UPDATE, with the reason), kConflict
// (VERSION), kNotFound (METADATA_NOT_FOUND).
//
// The server's keys are ECDSA P-256, kept sealed (AES-256-GCM) under the core's trust key.
// Thread-safety: thread-safe; every method blocks (worker threads).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

#include "core/trust/trust_store.h"
#include "shared/base/clock.h"
#include "shared/tuf/metadata.h"
#include "shared/tuf/repository.h"

namespace wharf {

struct TrustOptions {
  std::string sealing_key;                          // 32 bytes
  int64_t timestamp_ttl_ms = 14ll * 86'400'000;     // as Notary's server
};

class TrustService {
 public:
  TrustService(TrustStore& store, Clock& clock, TrustOptions options);

  Status publish(const std::string& gun, const std::map<std::string, std::string>& parts);
  // The current metadata of a role; the timestamp is signed again first when it expired
  // or no longer names the current snapshot.
  Result<TufFile> current(const std::string& gun, const std::string& role);
  // The public TUF key of the server's key for role ("timestamp" or "snapshot"), created
  // on first use.
  Result<nlohmann::json> serverKey(const std::string& gun, const std::string& role);
  // A new key for role ("timestamp" or "snapshot"), used once a published root names it.
  Result<nlohmann::json> rotateKey(const std::string& gun, const std::string& role);
  // Removes the GUN's trust data (notary delete --remote).
  Status deleteGun(const std::string& gun);

  // The GUN's metadata as a client verifies it (shared/tuf/repository.h), from the store;
  // cached until the GUN changes or something in it expires. kNotFound without data.
  Result<std::shared_ptr<const tuf::TrustedRepository>> verified(const std::string& gun);
  // The GUNs of a repository (whatever host names it), cached until one is added or removed.
  std::vector<std::string> gunsOf(const std::string& repository);
  // Every digest ("sha256:<hex>") a target of the repository's current trust data names,
  // verified or not (garbage collection keeps them).
  std::vector<std::string> signedDigests(const std::string& repository);
  TrustStore& store() { return store_; }

 private:
  void forget(const std::string& gun);  // drops the caches of the GUN after a write
  // label: "timestamp", "snapshot", or a pending key "timestamp.next", "snapshot.next".
  Result<std::unique_ptr<tuf::SigningKey>> loadKey(const std::string& gun, const std::string& label, bool create);
  // The label of the server key for role that root names ("" when none).
  std::string namedKey(const std::string& gun, const std::string& role, const tuf::Root& root);
  Status promote(const std::string& gun, const std::string& role);  // role.next becomes role's key
  Status signTimestamp(const std::string& gun, const std::string& snapshot_bytes, int64_t version);

  TrustStore& store_;
  Clock& clock_;
  TrustOptions options_;
  std::mutex mu_;  // one update (and key creation) at a time

  std::mutex cache_mu_;
  struct Verified {
    std::shared_ptr<const tuf::TrustedRepository> repo;  // null: did not verify (error)
    Status error;
    int64_t until_ms = 0;
  };
  std::map<std::string, Verified> verified_;  // GUARDED_BY(cache_mu_)
  uint64_t generation_ = 0;                   // GUARDED_BY(cache_mu_): bumped by every write
  std::optional<std::map<std::string, std::vector<std::string>>> guns_;           // GUARDED_BY(cache_mu_)
};

}  // namespace wharf
