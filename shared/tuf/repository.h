// A TUF repository as a client trusts it (Notary v1, the checks the notary CLI makes on
// what it downloads): from a root, the timestamp signed by root's timestamp keys over the
// exact snapshot bytes, the snapshot over the exact bytes of targets and each delegation,
// every role signed to its threshold and unexpired, delegations by the keys and within
// the paths their parent declares. What verifies becomes a TrustedRepository: each target
// with the role that signed it, the keys whose signatures verified, and when that stops
// being true (the earliest expiry on its chain).
//
// Used by the core to decide pulls from its own store and by edges over what they fetch:
// neither takes anyone's word for the metadata. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shared/base/status.h"
#include "shared/tuf/metadata.h"

namespace wharf::tuf {

struct TrustedTarget {
  std::string role;                  // "targets" or "targets/releases"...
  std::vector<std::string> signers;  // key ids whose signatures over the role verified
  int64_t length = 0;
  std::string sha256_hex;            // of the target (an image manifest's digest)
  int64_t expires_ms = 0;            // earliest expiry of timestamp, snapshot, the role and its parents
};

struct TrustedRepository {
  std::string gun;
  int64_t root_version = 0;
  int64_t targets_version = 0;
  int64_t expires_ms = 0;             // earliest of root, timestamp, snapshot, targets
  std::multimap<std::string, TrustedTarget> targets;  // by target name (a tag)
  std::vector<std::string> problems;  // delegations left out, and why

  // The signatures of name that are unexpired at now and name sha256_hex.
  std::vector<const TrustedTarget*> find(const std::string& name, const std::string& sha256_hex, int64_t now_ms) const;
};

// Whether target was signed in one of roles (any role when empty) by one of keys (any
// key of the role when empty): what a trust policy asks.
bool acceptedBy(const TrustedTarget& target, const std::vector<std::string>& roles, const std::vector<std::string>& keys);

// Trust policies' requirements: "notary", "cosign", "either" or "both" ("none" and ""
// ask for nothing).
bool requiresNotary(const std::string& require);  // notary, either, both
bool acceptsCosign(const std::string& require);   // cosign, either, both
bool requirementMet(const std::string& require, bool notary_signed, bool cosign_signed);

// files: role -> exact bytes ("root", "timestamp", "snapshot", "targets", "targets/...").
// pinned: the root the caller already trusts (null: the given root is taken on first use,
// its certificates checked against the GUN); a different root must be a rotation that
// pinned's keys signed. kInvalidArgument naming the role and the reason otherwise.
Result<TrustedRepository> verifyRepository(const std::string& gun, const std::map<std::string, std::string>& files,
                                           const Root* pinned, int64_t now_ms);

}  // namespace wharf::tuf
