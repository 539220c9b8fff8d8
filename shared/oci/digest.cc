#include "shared/oci/digest.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace wharf {
namespace {
// Fetched once: OpenSSL 3 otherwise looks the digest up (under a global lock) per init.
const EVP_MD* md(DigestAlgorithm a) {
  static EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  return a == DigestAlgorithm::kSha256 ? sha256 : sha512;
}
bool isLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}
}  // namespace

Result<Digest> Digest::parse(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos) return Status(Code::kDigestInvalid, "digest has no algorithm prefix");
  std::string_view algo = s.substr(0, colon);
  std::string_view hex = s.substr(colon + 1);
  DigestAlgorithm a;
  size_t want;
  if (algo == "sha256") {
    a = DigestAlgorithm::kSha256;
    want = 64;
  } else if (algo == "sha512") {
    a = DigestAlgorithm::kSha512;
    want = 128;
  } else {
    return Status(Code::kDigestInvalid, "unsupported digest algorithm");
  }
  if (hex.size() != want || !isLowerHex(hex)) {
    return Status(Code::kDigestInvalid, "digest must be " + std::string(algo) + ":" + std::to_string(want) +
                                            " lower-case hex characters");
  }
  return Digest(a, std::string(hex));
}

Hasher::Hasher(DigestAlgorithm algorithm) : algorithm_(algorithm), ctx_(EVP_MD_CTX_new()) {
  WHARF_ASSERT(ctx_ != nullptr);
  WHARF_ASSERT(EVP_DigestInit_ex(ctx_, md(algorithm), nullptr) == 1);
}

Hasher::~Hasher() {
  if (ctx_ != nullptr) EVP_MD_CTX_free(ctx_);
}

Hasher::Hasher(Hasher&& o) noexcept : algorithm_(o.algorithm_), ctx_(o.ctx_), bytes_(o.bytes_) { o.ctx_ = nullptr; }

Hasher& Hasher::operator=(Hasher&& o) noexcept {
  if (this != &o) {
    if (ctx_ != nullptr) EVP_MD_CTX_free(ctx_);
    algorithm_ = o.algorithm_;
    ctx_ = o.ctx_;
    bytes_ = o.bytes_;
    o.ctx_ = nullptr;
  }
  return *this;
}

void Hasher::update(const void* data, size_t len) {
  WHARF_ASSERT(EVP_DigestUpdate(ctx_, data, len) == 1);
  bytes_ += len;
}

Digest Hasher::digest() const {
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  WHARF_ASSERT(copy != nullptr && EVP_MD_CTX_copy_ex(copy, ctx_) == 1);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  WHARF_ASSERT(EVP_DigestFinal_ex(copy, out, &len) == 1);
  EVP_MD_CTX_free(copy);
  static const char* kHex = "0123456789abcdef";
  std::string hex(len * 2, '0');
  for (unsigned int i = 0; i < len; ++i) {
    hex[2 * i] = kHex[out[i] >> 4];
    hex[2 * i + 1] = kHex[out[i] & 15];
  }
  return Digest(algorithm_, std::move(hex));
}

Digest digestOf(std::string_view data, DigestAlgorithm algorithm) {
  Hasher h(algorithm);
  h.update(data);
  return h.digest();
}

Result<Digest> digestOfFile(int fd, DigestAlgorithm algorithm, uint64_t* size_out) {
  Hasher h(algorithm);
  std::vector<char> buf(1 << 20);
  uint64_t off = 0;
  for (;;) {
    ssize_t r = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status(Code::kIoError, std::string("read while hashing: ") + std::strerror(errno));
    }
    if (r == 0) break;
    h.update(buf.data(), static_cast<size_t>(r));
    off += static_cast<uint64_t>(r);
  }
  if (size_out != nullptr) *size_out = off;
  return h.digest();
}

}  // namespace wharf
