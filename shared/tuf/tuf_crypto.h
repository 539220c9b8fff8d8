// The cryptography of TUF metadata as Notary v1 (docker/notary 0.7) writes and checks it,
// shared by the core's trust server and the edges, which verify trust data themselves.
//
// Canonical JSON: what signatures are computed over. The `signed` object re-encoded as
// docker/go's canonical/json MarshalCanonical does: object keys sorted bytewise, no
// whitespace, strings escaping only `"` and `\` (control characters and UTF-8 as they
// are), integers only (a number with a fraction or an exponent is refused), true, false,
// null.
//
// Keys: {"keytype": T, "keyval": {"public": base64, "private": null}} with T one of
// ecdsa, ecdsa-x509, ed25519, rsa, rsa-x509; the x509 types carry a PEM certificate, the
// others the DER SubjectPublicKeyInfo (ed25519: the raw 32 bytes). A key's id is the
// SHA-256 (hex) of its canonical JSON with "private": null.
//
// Signatures: method ecdsa (SHA-256, raw r||s: 64 bytes for P-256), eddsa (ed25519),
// rsapss (SHA-256, salt length 32), rsapkcs1v15 (SHA-256); RSA keys of 2048 bits or more.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace wharf::tuf {

// kInvalidArgument naming the first value canonical JSON cannot hold.
Result<std::string> canonicalJson(const nlohmann::json& value);

// What a certificate of an x509 key says (Notary checks these on root keys).
struct CertInfo {
  std::string common_name;
  int64_t not_before_ms = 0;
  int64_t not_after_ms = 0;
  bool sha1_signature = false;  // signed with SHA-1 (refused by Notary)
};

class PublicKey {
 public:
  // From a TUF key object; kInvalidArgument naming what is wrong.
  static Result<std::shared_ptr<const PublicKey>> fromJson(const nlohmann::json& key);
  ~PublicKey();
  PublicKey(const PublicKey&) = delete;
  PublicKey& operator=(const PublicKey&) = delete;

  const std::string& keyType() const { return type_; }
  const std::string& id() const { return id_; }
  // Set for ecdsa-x509 and rsa-x509 keys.
  const CertInfo* cert() const { return cert_ ? cert_.get() : nullptr; }
  // Whether signature (as its method encodes it) signs data with this key; a method
  // that does not fit the key type is false.
  bool verify(std::string_view method, std::string_view data, std::string_view signature) const;

 private:
  PublicKey() = default;
  std::string type_;
  std::string id_;
  EVP_PKEY* key_ = nullptr;
  std::unique_ptr<CertInfo> cert_;
};

// The key id of a TUF key object (SHA-256 of its canonical form with "private": null).
Result<std::string> keyIdOf(const nlohmann::json& key);

// An ECDSA P-256 signing key for the server-held roles (timestamp, snapshot): signs with
// method "ecdsa" (raw r||s) and publishes itself as an "ecdsa" TUF key.
class SigningKey {
 public:
  static Result<std::unique_ptr<SigningKey>> generate();
  static Result<std::unique_ptr<SigningKey>> fromPem(const std::string& private_pem);
  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  Result<std::string> privatePem() const;
  const nlohmann::json& publicJson() const { return public_json_; }
  const std::string& id() const { return id_; }
  Result<std::string> sign(std::string_view data) const;  // raw r||s

 private:
  SigningKey() = default;
  Status adopt(EVP_PKEY* key);  // takes ownership
  EVP_PKEY* key_ = nullptr;
  nlohmann::json public_json_;
  std::string id_;
};

// A cosign public key (ECDSA P-256, PEM "PUBLIC KEY"): verifies DER ECDSA signatures
// over SHA-256 of a payload. Its id is "sha256:" and the hex SHA-256 of its DER
// SubjectPublicKeyInfo.
class CosignKey {
 public:
  static Result<std::shared_ptr<const CosignKey>> fromPem(std::string_view pem);
  ~CosignKey();
  CosignKey(const CosignKey&) = delete;
  CosignKey& operator=(const CosignKey&) = delete;
  const std::string& id() const { return id_; }
  bool verify(std::string_view payload, std::string_view der_signature) const;

 private:
  CosignKey() = default;
  EVP_PKEY* key_ = nullptr;
  std::string id_;
};

}  // namespace wharf::tuf
