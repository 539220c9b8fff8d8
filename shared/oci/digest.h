// Content digests ("sha256:<hex>") and streaming hashing (OpenSSL EVP).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "shared/base/status.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace wharf {

enum class DigestAlgorithm { kSha256, kSha512 };

class Digest {
 public:
  Digest() = default;
  // Accepts "sha256:<64 lower-case hex>" and "sha512:<128 lower-case hex>"; anything
  // else is kDigestInvalid (an unknown algorithm included).
  static Result<Digest> parse(std::string_view s);

  DigestAlgorithm algorithm() const { return algorithm_; }
  std::string_view algorithmName() const { return algorithm_ == DigestAlgorithm::kSha256 ? "sha256" : "sha512"; }
  const std::string& hex() const { return hex_; }
  std::string str() const { return std::string(algorithmName()) + ":" + hex_; }
  bool empty() const { return hex_.empty(); }
  bool operator==(const Digest& o) const { return algorithm_ == o.algorithm_ && hex_ == o.hex_; }
  bool operator<(const Digest& o) const { return str() < o.str(); }

 private:
  Digest(DigestAlgorithm a, std::string hex) : algorithm_(a), hex_(std::move(hex)) {}
  friend class Hasher;
  DigestAlgorithm algorithm_ = DigestAlgorithm::kSha256;
  std::string hex_;
};

// Incremental hash. Not thread-safe; movable.
class Hasher {
 public:
  explicit Hasher(DigestAlgorithm algorithm = DigestAlgorithm::kSha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // The digest of everything hashed so far; the hasher can keep going afterwards.
  Digest digest() const;
  uint64_t bytes() const { return bytes_; }
  DigestAlgorithm algorithm() const { return algorithm_; }

 private:
  DigestAlgorithm algorithm_;
  EVP_MD_CTX* ctx_;
  uint64_t bytes_ = 0;
};

Digest digestOf(std::string_view data, DigestAlgorithm algorithm = DigestAlgorithm::kSha256);
// Hashes a whole file (from its start) with the given algorithm.
Result<Digest> digestOfFile(int fd, DigestAlgorithm algorithm, uint64_t* size_out);

}  // namespace wharf
