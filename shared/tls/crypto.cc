#include "shared/tls/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <memory>
#include <vector>

#include "shared/base/json_body.h"

namespace wharf {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string bioString(BIO* b) {
  char* data = nullptr;
  long len = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(len));
}

Status sslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return Status(Code::kInternal, what + ": " + buf);
}

Result<PkeyPtr> readPublic(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) return sslError("read public key");
  return PkeyPtr(k);
}

std::string derOf(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(k, &der);
  if (len <= 0) return "";
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// Digests fetched once: OpenSSL 3 otherwise looks them up (under a global lock) per use.
const EVP_MD* sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

Result<EcKeyPair> generateEcKey() {
  EVP_PKEY* raw = EVP_EC_gen("P-256");
  if (raw == nullptr) return sslError("generate P-256 key");
  PkeyPtr key(raw);
  BioPtr priv(BIO_new(BIO_s_mem())), pub(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return sslError("write private key");
  }
  if (PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) return sslError("write public key");
  return EcKeyPair{bioString(priv.get()), bioString(pub.get())};
}

Result<std::string> publicPemOf(const std::string& private_pem) {
  BioPtr bio(BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size())));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) return sslError("read private key");
  PkeyPtr key(k);
  BioPtr pub(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) return sslError("write public key");
  return bioString(pub.get());
}

Result<std::string> keyIdOf(const std::string& public_pem) {
  auto key = readPublic(public_pem);
  if (!key.isOk()) return key.status();
  return sha256Hex(derOf(key->get())).substr(0, 32);
}

Result<nlohmann::json> publicJwk(const std::string& public_pem, const std::string& kid) {
  auto key = readPublic(public_pem);
  if (!key.isOk()) return key.status();
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  if (EVP_PKEY_get_bn_param(key->get(), OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
      EVP_PKEY_get_bn_param(key->get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
    BN_free(x);
    BN_free(y);
    return sslError("read EC point");
  }
  auto coord = [](BIGNUM* n) {
    std::string buf(32, '\0');
    BN_bn2binpad(n, reinterpret_cast<unsigned char*>(buf.data()), 32);
    return base64UrlEncode(buf);
  };
  nlohmann::json jwk = {{"kty", "EC"}, {"crv", "P-256"}, {"x", coord(x)}, {"y", coord(y)},
                        {"kid", kid},  {"alg", "ES256"}, {"use", "sig"}};
  BN_free(x);
  BN_free(y);
  return jwk;
}

Result<std::string> publicPemFromJwk(const nlohmann::json& jwk) {
  JsonBody b(jwk);  // a peer's key set: typed reads only
  if (b.string("kty", {.max = 16}).value_or("") != "EC" || b.string("crv", {.max = 16}).value_or("") != "P-256") {
    return Status(Code::kInvalidArgument, "not an EC P-256 JWK");
  }
  auto x = base64UrlDecode(b.string("x", {.max = 64}).value_or(""));
  auto y = base64UrlDecode(b.string("y", {.max = 64}).value_or(""));
  if (!x.isOk() || !y.isOk() || x->size() != 32 || y->size() != 32) {
    return Status(Code::kInvalidArgument, "JWK coordinates must be 32 bytes");
  }
  std::string point = "\x04" + *x + *y;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("prime256v1"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()), OSSL_PARAM_construct_end()};
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  bool ok = ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return sslError("JWK to key");
  PkeyPtr holder(key);
  BioPtr pub(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(pub.get(), key) != 1) return sslError("write public key");
  return bioString(pub.get());
}

std::string hexEncode(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out(2 * bytes.size(), '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 15];
  }
  return out;
}

std::string sha256Hex(std::string_view data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, sha256Md(), nullptr);
  return hexEncode(std::string_view(reinterpret_cast<const char*>(md), 32));
}

std::string hmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // HMAC() accepts an empty key as a zero-length key; the pointer must be non-null.
  static const unsigned char kEmpty = 0;
  const void* k = key.empty() ? static_cast<const void*>(&kEmpty) : static_cast<const void*>(key.data());
  HMAC(sha256Md(), k, static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string hmacSha256Hex(std::string_view key, std::string_view data) { return hexEncode(hmacSha256(key, data)); }

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string randomToken(size_t bytes) {
  std::string buf(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(buf.data()), static_cast<int>(bytes)) != 1) std::abort();
  return base64UrlEncode(buf);
}

std::string base64Encode(std::string_view data) {
  std::string out = base64UrlEncode(data);
  for (char& c : out) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (out.size() % 4 != 0) out += '=';
  return out;
}

std::string basicAuthorization(std::string_view user, std::string_view secret) {
  std::string pair(user);
  pair += ':';
  pair += secret;
  return "Basic " + base64Encode(pair);
}

std::string base64UrlEncode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto* d = reinterpret_cast<const unsigned char*>(data.data());
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
    out += kB64Url[(v >> 18) & 63];
    out += kB64Url[(v >> 12) & 63];
    out += kB64Url[(v >> 6) & 63];
    out += kB64Url[v & 63];
  }
  if (i + 1 == data.size()) {
    uint32_t v = d[i] << 16;
    out += kB64Url[(v >> 18) & 63];
    out += kB64Url[(v >> 12) & 63];
  } else if (i + 2 == data.size()) {
    uint32_t v = (d[i] << 16) | (d[i + 1] << 8);
    out += kB64Url[(v >> 18) & 63];
    out += kB64Url[(v >> 12) & 63];
    out += kB64Url[(v >> 6) & 63];
  }
  return out;
}

namespace {
int b64Value(char c, bool url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (url ? c == '-' : c == '+') return 62;
  if (url ? c == '_' : c == '/') return 63;
  return -1;
}

std::string decode(std::string_view text, bool url, bool* ok) {
  *ok = true;
  // base64url as JWS uses it has no padding; standard base64 may have it.
  if (!url) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  }
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64Value(c, url);
    if (v < 0) {
      *ok = false;
      return {};
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (text.size() % 4 == 1) *ok = false;
  // Canonical form only: the bits left over after the last byte must be zero, so that
  // one value has one spelling.
  if (url && bits > 0 && (acc & ((1u << bits) - 1)) != 0) *ok = false;
  return out;
}
}  // namespace

Result<std::string> base64UrlDecode(std::string_view text) {
  bool ok = false;
  std::string out = decode(text, true, &ok);
  if (!ok) return Status(Code::kInvalidArgument, "invalid base64url");
  return out;
}

std::string base64Decode(std::string_view text, bool* ok) { return decode(text, false, ok); }

std::string hashPassword(std::string_view password, int iterations) {
  std::string salt(16, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), 16);
  std::string out(32, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), reinterpret_cast<const unsigned char*>(salt.data()),
                    16, iterations, EVP_sha256(), 32, reinterpret_cast<unsigned char*>(out.data()));
  return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + base64UrlEncode(salt) + "$" + base64UrlEncode(out);
}

bool verifyPassword(std::string_view password, const std::string& encoded) {
  // pbkdf2-sha256$<iterations>$<salt>$<hash>
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t d = encoded.find('$', start);
    parts.push_back(encoded.substr(start, d == std::string::npos ? std::string::npos : d - start));
    if (d == std::string::npos) break;
    start = d + 1;
  }
  if (parts.size() != 4 || parts[0] != "pbkdf2-sha256") return false;
  if (parts[1].empty() || parts[1].size() > 8 || parts[1].find_first_not_of("0123456789") != std::string::npos) return false;
  int iterations = std::stoi(parts[1]);
  auto salt = base64UrlDecode(parts[2]);
  auto want = base64UrlDecode(parts[3]);
  if (iterations < 1 || !salt.isOk() || !want.isOk() || want->empty()) return false;
  std::string got(want->size(), '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), reinterpret_cast<const unsigned char*>(salt->data()),
                    static_cast<int>(salt->size()), iterations, EVP_sha256(), static_cast<int>(got.size()),
                    reinterpret_cast<unsigned char*>(got.data()));
  return constantTimeEquals(got, *want);
}

Result<std::shared_ptr<const Es256Key>> Es256Key::fromPem(const std::string& pem, bool is_private) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* k = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                           : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) return sslError("read EC key");
  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC || EVP_PKEY_get_bits(k) != 256) {
    EVP_PKEY_free(k);
    return Status(Code::kInvalidArgument, "not a P-256 key");
  }
  return std::shared_ptr<const Es256Key>(new Es256Key(k));
}

Es256Key::~Es256Key() { EVP_PKEY_free(key_); }

Result<std::string> Es256Key::sign(std::string_view data) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t der_len = 0;
  std::string der;
  bool ok = EVP_DigestSignInit(ctx, nullptr, sha256Md(), nullptr, key_) == 1 &&
            EVP_DigestSign(ctx, nullptr, &der_len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  if (ok) {
    der.resize(der_len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &der_len,
                        reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) return sslError("ES256 sign");
  // DER ECDSA-Sig-Value -> raw R||S.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len));
  if (sig == nullptr) return sslError("ES256 signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string raw(64, '\0');
  BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

bool Es256Key::verify(std::string_view data, std::string_view signature) const {
  if (signature.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (der_len <= 0) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, sha256Md(), nullptr, key_) == 1 &&
            EVP_DigestVerify(ctx, der, static_cast<size_t>(der_len), reinterpret_cast<const unsigned char*>(data.data()),
                             data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}

namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

}  // namespace

Result<std::string> sealSecret(std::string_view key, std::string_view plaintext, std::string_view aad) {
  if (key.size() != 32) return Status(Code::kInvalidArgument, "a sealing key is 32 bytes");
  std::string nonce(12, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), 12) != 1) return Status(Code::kInternal, "no randomness");
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  auto u = [](std::string_view v) { return reinterpret_cast<const unsigned char*>(v.data()); };
  int len = 0;
  std::string out(plaintext.size(), '\0');
  std::string tag(16, '\0');
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u(key), u(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, u(aad), int(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, u(plaintext), int(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag.data()) != 1)
    return Status(Code::kInternal, "cannot seal a secret");
  return "v1:" + base64Encode(nonce + out + tag);
}

Result<std::string> openSecret(std::string_view key, std::string_view sealed, std::string_view aad) {
  if (key.size() != 32) return Status(Code::kInvalidArgument, "a sealing key is 32 bytes");
  if (sealed.substr(0, 3) != "v1:") return Status(Code::kCorruption, "not a sealed secret");
  bool ok = false;
  std::string box = base64Decode(sealed.substr(3), &ok);
  if (!ok || box.size() < 28) return Status(Code::kCorruption, "not a sealed secret");
  std::string nonce = box.substr(0, 12), tag = box.substr(box.size() - 16), ct = box.substr(12, box.size() - 28);
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  auto u = [](std::string_view v) { return reinterpret_cast<const unsigned char*>(v.data()); };
  int len = 0;
  std::string out(ct.size(), '\0');
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u(key), u(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, u(aad), int(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, u(ct), int(ct.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1)
    return Status(Code::kCorruption, "the sealed secret does not open (another key, or tampered)");
  return out;
}

}  // namespace wharf
