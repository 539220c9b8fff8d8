// TUF metadata made the way the notary CLI makes it, for tests: ECDSA P-256 keys, root
// keys as self-signed certificates whose common name is the GUN, raw r||s signatures
// over canonical JSON. Failures throw std::runtime_error.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace wharf::test {

struct TufKey {
  std::shared_ptr<EVP_PKEY> pkey;
  nlohmann::json tuf;  // the TUF key object
  std::string id;
};

TufKey tufEcdsaKey();
// A root key: a self-signed certificate for cn, valid from now_ms + not_before_s for
// valid_s seconds; sha1 signs it with SHA-1 (which Notary refuses).
TufKey tufRootKey(const std::string& cn, int64_t now_ms, long valid_s = 10L * 365 * 86400, bool sha1 = false,
                  long not_before_s = -86400);
// A self-signed PEM certificate of key k for cn (the same validity rules as tufRootKey).
std::string tufCertPem(EVP_PKEY* k, const std::string& cn, int64_t now_ms, long valid_s, bool sha1 = false,
                       long not_before_s = -86400);
// {"signed": body, "signatures": [one per signer]} as compact JSON.
std::string tufEnvelope(const nlohmann::json& body, const std::vector<const TufKey*>& signers);

// A root body naming root_keys for root (with threshold) and one key for each other role.
nlohmann::json tufRootBody(const std::vector<const TufKey*>& root_keys, const nlohmann::json& targets_key,
                           const nlohmann::json& snapshot_key, const nlohmann::json& timestamp_key, int version,
                           int threshold = 1, const std::string& expires = "2030-01-01T00:00:00Z");
nlohmann::json tufTargetsBody(int version, const nlohmann::json& targets = nlohmann::json::object(),
                              const std::string& expires = "2029-01-01T00:00:00Z");
// {"length", "hashes": {"sha256"}} of bytes, as snapshots list them.
nlohmann::json tufFileMeta(const std::string& bytes);

// cosign's signatures, made with OpenSSL (no cosign client is packaged): a P-256 key, its
// PEM public key (as policies hold it), and base64 DER signatures over payloads.
struct CosignSigner {
  CosignSigner();
  std::shared_ptr<EVP_PKEY> key;
  std::string public_pem;
  std::string sign(const std::string& payload) const;
};
// A simple-signing payload for reference (registry/repo:tag) and the image digest.
std::string cosignPayload(const std::string& reference, const std::string& digest);

// A whole repository as the notary CLI publishes it: the keys of the four roles, and the
// files of one publication (root, targets with delegations, snapshot over their exact
// bytes, timestamp over the snapshot), for verification tests.
// A timestamp key without a private key (pkey null): the server's, whose public key came
// from GET timestamp.key; the files then have no timestamp (the server signs it).
struct TufRepoKeys {
  TufKey root, targets, snapshot, timestamp;
};
TufRepoKeys tufRepoKeys(const std::string& gun, int64_t now_ms);
struct TufDelegation {
  std::string name;  // "targets/releases"
  const TufKey* key = nullptr;
  nlohmann::json targets = nlohmann::json::object();
  std::vector<std::string> paths{""};
};
std::map<std::string, std::string> tufRepoFiles(const TufRepoKeys& k, const nlohmann::json& targets,
                                                const std::vector<TufDelegation>& delegations = {},
                                                const std::string& expires = "2029-01-01T00:00:00Z", int version = 1);

// The real notary CLI against server_url with trust directory trust_dir, signed in as
// user (NOTARY_AUTH) and with fixed passphrases for every role; input goes to its stdin
// (confirmations). Output is stdout and stderr together.
CommandResult notaryCli(const std::string& server_url, const std::string& trust_dir, const std::string& user,
                        const std::string& password, const std::string& args, const std::string& input = "");

// The body of Notary's atomic update (multipart/form-data, boundary "BOUNDARY"), one part
// per role.
std::string tufMultipart(const std::map<std::string, std::string>& parts);

}  // namespace wharf::test
