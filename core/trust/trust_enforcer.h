// TrustEnforcer: the trust policies (Policy::trust, core/metadata/metadata_store.h) on
// pulls, and what signs an image.
//
// A pull by tag under a policy that requires signatures is let through only when:
//   notary  the tag is a target of one of the repository's GUNs (any host naming it),
//           with the manifest's SHA-256 and length, in metadata that verifies now
//           (shared/tuf/repository.h: thresholds, snapshot and timestamp checksums,
//           expiry), in one of the policy's roles and signed by one of its keys when the
//           policy names them;
//   cosign  a signature manifest (the tag "sha256-<hex>.sig" or an OCI 1.1 referrer)
//           holds a payload naming the digest, signed by one of the policy's keys;
// either or both as the policy says. Pulls by digest are not checked (clients that
// verify trust resolve the tag through it and pull by digest; signing follows pushing).
//
// Verified metadata and signature checks are cached (the first by the TrustService, until
// the GUN changes; the second by signature manifest and key), so a pull costs map
// lookups. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/registry/registry.h"
#include "core/trust/trust_service.h"
#include "shared/tuf/cosign.h"

namespace wharf {

class TrustEnforcer {
 public:
  TrustEnforcer(Registry& registry, TrustService& trust, Clock& clock) : registry_(registry), trust_(trust), clock_(clock) {}

  // Why the policies refuse a pull of repo:tag that names digest (size bytes), or nullopt.
  std::optional<std::string> refusal(const std::string& repo, const std::string& tag, const std::string& digest,
                                     uint64_t size);
  // What signs repo@digest: Notary targets naming it (tag, GUN, role, keys, expiry),
  // cosign signatures (checked against the policy's keys when it has some), the policy,
  // and whether the policy's requirement is met by some tag (or by cosign alone).
  nlohmann::json status(const std::string& repo, const std::string& digest, uint64_t size);

 private:
  struct NotaryMatch {
    std::string gun;
    std::string name;  // the target's (a tag)
    tuf::TrustedTarget target;
  };
  // Targets of repo's GUNs named tag ("" for any name) with digest that the policy accepts.
  std::vector<NotaryMatch> notaryMatches(const std::string& repo, const std::string& tag, const std::string& digest,
                                         uint64_t size, const TrustPolicy* policy, std::vector<std::string>* problems);
  struct CosignCheck {
    std::string manifest;  // the signature manifest
    std::string source;    // "tag" or "referrer"
    std::string key;       // the key that verified ("" when none)
    std::string error;
  };
  std::vector<CosignCheck> cosignChecks(const std::string& repo, const std::string& digest, const TrustPolicy* policy);
  std::shared_ptr<const tuf::CosignKey> cosignKey(const std::string& pem);  // parsed once

  Registry& registry_;
  TrustService& trust_;
  Clock& clock_;
  std::mutex mu_;
  // (signature manifest, keys) -> outcome; signature manifests are content-addressed.
  std::map<std::string, CosignCheck> cosign_cache_;  // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<const tuf::CosignKey>> cosign_keys_;  // PEM -> key, GUARDED_BY(mu_)
};

}  // namespace wharf
