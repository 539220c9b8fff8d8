// Cryptographic primitives beyond TLS (OpenSSL 3): signing keys for tokens, password
// hashing, constant-time comparison, random secrets and base64url.
//
// Everything here is thread-safe and stateless.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace wharf {

struct EcKeyPair {
  std::string private_pem;  // PKCS#8
  std::string public_pem;   // SubjectPublicKeyInfo
};

// A fresh P-256 key pair (for ES256 token signatures).
Result<EcKeyPair> generateEcKey();
// The public half of a PEM private key.
Result<std::string> publicPemOf(const std::string& private_pem);
// A public key as a JWK ({"kty":"EC","crv":"P-256","x","y","kid","alg":"ES256","use":"sig"}).
Result<nlohmann::json> publicJwk(const std::string& public_pem, const std::string& kid);
// The PEM public key of an EC P-256 JWK (as published at /auth/keys).
Result<std::string> publicPemFromJwk(const nlohmann::json& jwk);
// A stable key id: the first 16 bytes of SHA-256 of the DER public key, in hex.
Result<std::string> keyIdOf(const std::string& public_pem);

// ES256 (ECDSA P-256 with SHA-256) as JWS uses it: signatures are the raw 64-byte
// R||S. The key is parsed once; sign() and verify() are thread-safe.
class Es256Key {
 public:
  // A private PEM key signs and verifies; a public one only verifies.
  static Result<std::shared_ptr<const Es256Key>> fromPem(const std::string& pem, bool is_private);
  ~Es256Key();
  Result<std::string> sign(std::string_view data) const;
  bool verify(std::string_view data, std::string_view signature) const;

 private:
  explicit Es256Key(EVP_PKEY* key) : key_(key) {}
  EVP_PKEY* key_;
};

// Password hashing: PBKDF2-HMAC-SHA256 at OWASP's 2023 strength (600,000 iterations),
// encoded as "pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>".
constexpr int kPasswordIterations = 600000;
std::string hashPassword(std::string_view password, int iterations = kPasswordIterations);
// Constant-time check of a password against an encoded hash; false for malformed hashes.
bool verifyPassword(std::string_view password, const std::string& encoded);

// Lower-case hex of bytes.
std::string hexEncode(std::string_view bytes);
// SHA-256 of data, hex.
std::string sha256Hex(std::string_view data);
// HMAC-SHA256 of data under key: raw 32 bytes (S3 signing keys), or hex (webhook
// signatures).
std::string hmacSha256(std::string_view key, std::string_view data);
std::string hmacSha256Hex(std::string_view key, std::string_view data);
bool constantTimeEquals(std::string_view a, std::string_view b);
// n random bytes as base64url without padding.
std::string randomToken(size_t bytes);

// Authenticated encryption of small secrets at rest (server-held signing keys): AES-256-GCM
// under a 32-byte key, a fresh 12-byte nonce each time; the result is "v1:" + base64 of
// nonce || ciphertext || tag. aad binds the secret to what it is for (open() with another
// aad fails). kInvalidArgument for a key of the wrong size; open() says kCorruption when
// the box does not open (wrong key, tampered, other aad).
Result<std::string> sealSecret(std::string_view key, std::string_view plaintext, std::string_view aad);
Result<std::string> openSecret(std::string_view key, std::string_view sealed, std::string_view aad);

std::string base64UrlEncode(std::string_view data);
std::string base64Encode(std::string_view data);  // standard alphabet, with padding
// The value of an "Authorization: Basic" header for user and secret.
std::string basicAuthorization(std::string_view user, std::string_view secret);
// Refuses characters outside the base64url alphabet.
Result<std::string> base64UrlDecode(std::string_view text);
std::string base64Decode(std::string_view text, bool* ok);  // standard alphabet, padding optional

}  // namespace wharf
