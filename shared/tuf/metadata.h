// TUF metadata as Notary v1 checks it before it accepts an update (N server/handlers/
// validation.go, tuf/builder.go, trustpinning/certs.go): the signed envelope, thresholds,
// roots and their rotation, targets, snapshots over the exact uploaded bytes, and the
// server's timestamp. Every refusal is kInvalidArgument with a message naming the role
// and the reason (the trust server turns it into Notary's JSON error).
//
// Signatures are checked over the canonical JSON of the parsed "signed" object
// (tuf_crypto.h); checksums over the bytes as uploaded, which are stored verbatim.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"
#include "shared/tuf/tuf_crypto.h"

namespace wharf::tuf {

struct Signature {
  std::string keyid, method, sig;  // sig: the raw bytes (base64-decoded)
};

// {"signed": {...}, "signatures": [...]}, with its type ("Root", "Targets", "Snapshot",
// "Timestamp"), version and expiry read from "signed".
struct Signed {
  nlohmann::json body;  // "signed"
  std::vector<Signature> signatures;
  std::string type;
  int64_t version = 0;
  int64_t expires_ms = 0;
};

// Parses an envelope whose "_type" must be expected_type.
Result<Signed> parseSigned(std::string_view bytes, std::string_view expected_type);

struct RoleKeys {
  std::vector<std::string> keyids;
  int threshold = 1;
};

using KeyMap = std::map<std::string, std::shared_ptr<const PublicKey>>;

// Whether signed carries valid signatures of at least role.threshold distinct keys of
// role (looked up in keys); the message names the role and how many were valid. The ids
// of the keys whose signatures verified go to *signers when given.
Status checkThreshold(const Signed& s, const KeyMap& keys, const RoleKeys& role, const std::string& role_name,
                      std::vector<std::string>* signers = nullptr);

struct Root {
  Signed envelope;
  KeyMap keys;
  std::map<std::string, RoleKeys> roles;  // root, targets, snapshot, timestamp
  bool consistent_snapshot = false;
};

// The root's own structure (keys parse, the four roles name known keys, thresholds >= 1).
Result<Root> parseRoot(std::string_view bytes);

// A root a repository may take: its root keys are x509 certificates whose common name is
// the GUN (or a prefix of it ending in '*'), valid at now and not signed with SHA-1; it
// is signed by its own root threshold and, when there is a previous root, by that root's
// threshold too (a rotation), with version previous or previous + 1; not expired.
Result<Root> validateRoot(std::string_view bytes, const Root* previous, const std::string& gun, int64_t now_ms);

// A role other than root signed to the threshold root gives it, unexpired, its version
// above min_version (the stored one; 0 for the first).
Result<Signed> validateRole(std::string_view bytes, std::string_view type, const std::string& role_name,
                            const Root& root, int64_t now_ms, int64_t min_version);

// A delegation as its parent (a Targets role) declares it: the keys it names, its
// threshold and the target paths it may sign (prefixes; "" is every path).
struct Delegation {
  KeyMap keys;
  RoleKeys role;
  std::vector<std::string> paths;
};
Result<Delegation> delegationOf(const Signed& parent, const std::string& parent_name, const std::string& role);

// A snapshot (already validateRole'd) lists, for each role in exact_bytes, that role's
// length and SHA-256 (and SHA-512 when given) of exactly those bytes.
Status checkSnapshotMeta(const Signed& snapshot, const std::map<std::string, std::string>& exact_bytes);

// {"length", "hashes": {"sha256", "sha512"}} of exact bytes, as snapshots and timestamps
// list files.
nlohmann::json fileMeta(std::string_view bytes);

// The server's timestamp over the exact snapshot bytes, signed by key; returns the
// envelope's bytes.
Result<std::string> makeTimestamp(const SigningKey& key, std::string_view snapshot_bytes, int64_t version,
                                  int64_t expires_ms);
// A snapshot made by the server (when it holds the snapshot key) over the exact bytes of
// each role (root, targets, delegations).
Result<std::string> makeSnapshot(const SigningKey& key, const std::map<std::string, std::string>& roles, int64_t version,
                                 int64_t expires_ms);

}  // namespace wharf::tuf
