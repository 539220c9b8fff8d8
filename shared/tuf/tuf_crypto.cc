#include "shared/tuf/tuf_crypto.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstring>
#include <ctime>

#include "shared/tls/crypto.h"

namespace wharf::tuf {

namespace {

using nlohmann::json;

void appendString(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

Status appendCanonical(std::string& out, const json& v, int depth) {
  if (depth > 64) return Status(Code::kInvalidArgument, "canonical JSON: nested too deep");
  switch (v.type()) {
    case json::value_t::null: out += "null"; return Status::ok();
    case json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return Status::ok();
    case json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); return Status::ok();
    case json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); return Status::ok();
    case json::value_t::number_float:
      return Status(Code::kInvalidArgument, "canonical JSON holds integers only, not " + v.dump());
    case json::value_t::string: appendString(out, v.get_ref<const std::string&>()); return Status::ok();
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ',';
        first = false;
        WHARF_RETURN_IF_ERROR(appendCanonical(out, item, depth + 1));
      }
      out += ']';
      return Status::ok();
    }
    case json::value_t::object: {
      // nlohmann's objects are std::maps of std::string: already in bytewise order.
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ',';
        first = false;
        appendString(out, it.key());
        out += ':';
        WHARF_RETURN_IF_ERROR(appendCanonical(out, it.value(), depth + 1));
      }
      out += '}';
      return Status::ok();
    }
    default: return Status(Code::kInvalidArgument, "canonical JSON cannot hold this value");
  }
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct CtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

int64_t asn1TimeMs(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return int64_t(timegm(&tm)) * 1000;
}

// raw r||s (each half the signature) -> DER, for OpenSSL's ECDSA verification.
std::string rawToDer(std::string_view raw) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 132) return "";
  size_t half = raw.size() / 2;
  std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), int(half), nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data() + half), int(half), nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return "";
  }
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(sig.get(), &der);
  if (n <= 0) return "";
  std::string out(reinterpret_cast<char*>(der), size_t(n));
  OPENSSL_free(der);
  return out;
}

bool digestVerify(EVP_PKEY* key, const EVP_MD* md, int padding, std::string_view data, std::string_view sig) {
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) return false;
  if (padding != 0) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, padding) != 1) return false;
    if (padding == RSA_PKCS1_PSS_PADDING && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1) return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

}  // namespace

Result<std::string> canonicalJson(const json& value) {
  std::string out;
  WHARF_RETURN_IF_ERROR(appendCanonical(out, value, 0));
  return out;
}

Result<std::string> keyIdOf(const json& key) {
  if (!key.is_object() || !key.contains("keytype") || !key["keytype"].is_string() || !key.contains("keyval") ||
      !key["keyval"].is_object() || !key["keyval"].contains("public") || !key["keyval"]["public"].is_string())
    return Status(Code::kInvalidArgument, "a key is {\"keytype\", \"keyval\": {\"public\"}}");
  json id = {{"keytype", key["keytype"]}, {"keyval", {{"public", key["keyval"]["public"]}, {"private", nullptr}}}};
  auto text = canonicalJson(id);
  if (!text.isOk()) return text.status();
  return sha256Hex(*text);
}

PublicKey::~PublicKey() { EVP_PKEY_free(key_); }

Result<std::shared_ptr<const PublicKey>> PublicKey::fromJson(const json& key) {
  auto id = keyIdOf(key);
  if (!id.isOk()) return id.status();
  std::shared_ptr<PublicKey> k(new PublicKey());
  k->type_ = key["keytype"].get<std::string>();
  k->id_ = *id;
  bool ok = false;
  std::string pub = base64Decode(key["keyval"]["public"].get<std::string>(), &ok);
  if (!ok || pub.empty()) return Status(Code::kInvalidArgument, "key " + *id + ": public is not base64");
  const std::string& t = k->type_;
  if (t == "ecdsa-x509" || t == "rsa-x509") {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pub.data(), int(pub.size())));
    std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) return Status(Code::kInvalidArgument, "key " + *id + ": not a PEM certificate");
    auto info = std::make_unique<CertInfo>();
    X509_NAME* subject = X509_get_subject_name(cert.get());
    int idx = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
    if (idx >= 0) {
      unsigned char* cn = nullptr;
      int n = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
      if (n > 0) info->common_name.assign(reinterpret_cast<char*>(cn), size_t(n));
      OPENSSL_free(cn);
    }
    info->not_before_ms = asn1TimeMs(X509_get0_notBefore(cert.get()));
    info->not_after_ms = asn1TimeMs(X509_get0_notAfter(cert.get()));
    int md_nid = NID_undef, pk_nid = NID_undef;
    if (OBJ_find_sigid_algs(X509_get_signature_nid(cert.get()), &md_nid, &pk_nid) == 1)
      info->sha1_signature = md_nid == NID_sha1;
    k->key_ = X509_get_pubkey(cert.get());
    k->cert_ = std::move(info);
  } else if (t == "ed25519") {
    if (pub.size() != 32) return Status(Code::kInvalidArgument, "key " + *id + ": an ed25519 key is 32 bytes");
    k->key_ = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(pub.data()),
                                          pub.size());
  } else if (t == "ecdsa" || t == "rsa") {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(pub.data());
    k->key_ = d2i_PUBKEY(nullptr, &p, long(pub.size()));
  } else {
    return Status(Code::kInvalidArgument, "key " + *id + ": unknown key type \"" + t + "\"");
  }
  if (k->key_ == nullptr) return Status(Code::kInvalidArgument, "key " + *id + ": the public key does not parse");
  int base = EVP_PKEY_get_base_id(k->key_);
  bool ec = t == "ecdsa" || t == "ecdsa-x509", rsa = t == "rsa" || t == "rsa-x509";
  if ((ec && base != EVP_PKEY_EC) || (rsa && base != EVP_PKEY_RSA) || (t == "ed25519" && base != EVP_PKEY_ED25519))
    return Status(Code::kInvalidArgument, "key " + *id + ": the key is not of its key type " + t);
  if (rsa && EVP_PKEY_get_bits(k->key_) < 2048)
    return Status(Code::kInvalidArgument, "key " + *id + ": RSA keys have at least 2048 bits");
  return std::shared_ptr<const PublicKey>(std::move(k));
}

bool PublicKey::verify(std::string_view method, std::string_view data, std::string_view signature) const {
  if (key_ == nullptr) return false;
  bool ec = type_ == "ecdsa" || type_ == "ecdsa-x509", rsa = type_ == "rsa" || type_ == "rsa-x509";
  if (method == "ecdsa" && ec) {
    // Raw r||s of the curve's size (64 bytes for P-256).
    size_t expected = 2 * size_t((EVP_PKEY_get_bits(key_) + 7) / 8);
    if (signature.size() != expected) return false;
    std::string der = rawToDer(signature);
    return !der.empty() && digestVerify(key_, EVP_sha256(), 0, data, der);
  }
  if (method == "eddsa" && type_ == "ed25519") return digestVerify(key_, nullptr, 0, data, signature);
  if (method == "rsapss" && rsa) return digestVerify(key_, EVP_sha256(), RSA_PKCS1_PSS_PADDING, data, signature);
  if (method == "rsapkcs1v15" && rsa) return digestVerify(key_, EVP_sha256(), RSA_PKCS1_PADDING, data, signature);
  return false;
}

SigningKey::~SigningKey() { EVP_PKEY_free(key_); }

Status SigningKey::adopt(EVP_PKEY* key) {
  key_ = key;
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return Status(Code::kInternal, "cannot encode a public key");
  std::string spki(reinterpret_cast<char*>(der), size_t(n));
  OPENSSL_free(der);
  public_json_ = {{"keytype", "ecdsa"}, {"keyval", {{"public", base64Encode(spki)}, {"private", nullptr}}}};
  auto kid = keyIdOf(public_json_);
  if (!kid.isOk()) return kid.status();
  id_ = *kid;
  return Status::ok();
}

Result<std::unique_ptr<SigningKey>> SigningKey::generate() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) return Status(Code::kInternal, "cannot generate a P-256 key");
  std::unique_ptr<SigningKey> k(new SigningKey());
  WHARF_RETURN_IF_ERROR(k->adopt(key));
  return k;
}

Result<std::unique_ptr<SigningKey>> SigningKey::fromPem(const std::string& private_pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(private_pem.data(), int(private_pem.size())));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return Status(Code::kInvalidArgument, "not a PEM private key");
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 256) {
    EVP_PKEY_free(key);
    return Status(Code::kInvalidArgument, "a server-held TUF key is ECDSA P-256");
  }
  std::unique_ptr<SigningKey> k(new SigningKey());
  WHARF_RETURN_IF_ERROR(k->adopt(key));
  return k;
}

Result<std::string> SigningKey::privatePem() const {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key_, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return Status(Code::kInternal, "cannot encode a private key");
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, size_t(n));
}

Result<std::string> SigningKey::sign(std::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_) != 1)
    return Status(Code::kInternal, "cannot sign");
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    return Status(Code::kInternal, "cannot sign");
  std::string der(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    return Status(Code::kInternal, "cannot sign");
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, SigFree> sig(d2i_ECDSA_SIG(nullptr, &p, long(len)));
  if (!sig) return Status(Code::kInternal, "cannot decode a signature");
  std::string raw(64, '\0');
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), reinterpret_cast<unsigned char*>(raw.data()), 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) != 32)
    return Status(Code::kInternal, "cannot encode a signature");
  return raw;
}

CosignKey::~CosignKey() { EVP_PKEY_free(key_); }

Result<std::shared_ptr<const CosignKey>> CosignKey::fromPem(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  EVP_PKEY* key = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (key == nullptr) return Status(Code::kInvalidArgument, "not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  std::shared_ptr<CosignKey> k(new CosignKey());
  k->key_ = key;
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 256)
    return Status(Code::kInvalidArgument, "a cosign key is ECDSA P-256");
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return Status(Code::kInternal, "cannot encode a public key");
  k->id_ = "sha256:" + sha256Hex(std::string_view(reinterpret_cast<char*>(der), size_t(n)));
  OPENSSL_free(der);
  return std::shared_ptr<const CosignKey>(std::move(k));
}

bool CosignKey::verify(std::string_view payload, std::string_view der_signature) const {
  return digestVerify(key_, EVP_sha256(), 0, payload, der_signature);
}

}  // namespace wharf::tuf
