// KeyRing: the core's token-signing keys.
//
// The newest key signs; every key not yet retired verifies, so tokens signed before a
// rotation stay valid for the overlap period. The public keys are published as a JWK
// set at GET /auth/keys (edges verify tokens offline with them). Thread-safe.
//
// Where the ring is kept (KeyRingStorage): a file, <data_dir>/auth/keys.json (mode 0600),
// for one core; or the shared database (pg_key_ring.cc), sealed with the core's sealing
// key (AES-256-GCM; every replica holds the same key file), so that every replica signs
// with the same key and verifies what the others signed, and a rotation made on one is
// heard by all (a notification, then a reload).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/auth/token.h"
#include "shared/base/clock.h"
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

namespace wharf {

// The ring's document ({"keys":[{"kid","private","created","retire_at"}]}), kept whole.
class KeyRingStorage {
 public:
  virtual ~KeyRingStorage() = default;
  // Replaces the document with change(current) in one step that no other writer (core
  // or replica) interleaves with; current is nullopt when there is none yet. Returns
  // what is stored afterwards.
  virtual Result<std::string> update(
      const std::function<Result<std::string>(const std::optional<std::string>& current)>& change) = 0;
  // The stored document (nullopt: none yet).
  virtual Result<std::optional<std::string>> read() = 0;
  virtual std::string describe() const = 0;
  // Another writer changed the document: changed() from a thread of the storage's. A
  // storage with one writer never calls it.
  virtual void watch(std::function<void()> changed) { (void)changed; }
};

// <dir>/keys.json (the directory 0700, the file 0600).
Result<std::unique_ptr<KeyRingStorage>> openFileKeyRingStorage(const std::string& dir);
// Table token_keys (component "token_keys"), the document sealed with sealing_key (32
// bytes); notifications on channel "wharf_keys".
Result<std::unique_ptr<KeyRingStorage>> openPgKeyRingStorage(std::shared_ptr<PgPool> db, std::string sealing_key);
// The "token_keys" component's migrations (wharfctl db migrate).
const std::vector<PgMigration>& keyRingMigrations();

class KeyRing {
 public:
  // Loads the ring, creating a first key when there is none.
  static Result<std::unique_ptr<KeyRing>> open(std::unique_ptr<KeyRingStorage> storage, Clock& clock);

  // The current signer and a verifier for every live key (immutable snapshots).
  std::shared_ptr<const TokenSigner> signer() const;
  std::shared_ptr<const TokenVerifier> verifier(const std::string& issuer, const std::string& audience) const;
  nlohmann::json jwks() const;
  // True while the key verifies (not retired).
  bool isLive(const std::string& kid) const;

  // Adds a new signing key; the old ones keep verifying for overlap_ms, then go.
  Status rotate(int64_t overlap_ms);
  // Reads the stored ring again (another replica changed it).
  Status reload();

 private:
  struct Key {
    std::string kid, private_pem, public_pem;
    int64_t created_ms = 0;
    int64_t retire_at_ms = 0;  // 0: live
  };
  KeyRing(std::unique_ptr<KeyRingStorage> storage, Clock& clock) : clock_(clock), storage_(std::move(storage)) {}
  Result<std::vector<Key>> parse(const std::string& doc) const;
  static std::string serialize(const std::vector<Key>& keys);
  void adopt(std::vector<Key> keys);  // REQUIRES: mu_ held
  void rebuild();                     // REQUIRES: mu_ held

  Clock& clock_;
  mutable std::mutex mu_;
  std::vector<Key> keys_;                              // GUARDED_BY(mu_), oldest first
  std::shared_ptr<const TokenSigner> signer_;          // GUARDED_BY(mu_)
  mutable std::map<std::string, std::string> public_keys_;  // GUARDED_BY(mu_): live keys
  mutable std::map<std::pair<std::string, std::string>, std::shared_ptr<const TokenVerifier>> verifiers_;
  // Last: destroyed first, so its notification thread stops while the rest still stands.
  std::unique_ptr<KeyRingStorage> storage_;
};

}  // namespace wharf
