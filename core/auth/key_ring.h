// KeyRing: the core's token-signing keys.
//
// The newest key signs; every key not yet retired verifies, so tokens signed before a
// rotation stay valid for the overlap period. The public keys are published as a JWK
// set at GET /auth/keys (edges verify tokens offline with them). Thread-safe.
//
// Where the ring is kept (a SharedDocument, {"keys":[{"kid","private","created",
// "retire_at"}]}): a file, <data_dir>/auth/keys.json (mode 0600), for one core; or the
// shared database (document "token_keys"), sealed with the core's sealing key (every
// replica holds the same key file), so that every replica signs with the same key and
// verifies what the others signed, and a rotation made on one is heard by all.
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
#include "shared/store/shared_document.h"

namespace wharf {

class KeyRing {
 public:
  // Loads the ring, creating a first key when there is none.
  static Result<std::unique_ptr<KeyRing>> open(std::unique_ptr<SharedDocument> storage, Clock& clock);

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
  KeyRing(std::unique_ptr<SharedDocument> storage, Clock& clock) : clock_(clock), storage_(std::move(storage)) {}
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
  std::unique_ptr<SharedDocument> storage_;
};

}  // namespace wharf
