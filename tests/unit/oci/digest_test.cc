#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <string>
#include <vector>

#include "shared/base/fs.h"
#include "shared/oci/digest.h"
#include "tests/support/oci_layout.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace digest_test {

using namespace wharf;
using wharf::test::TempDir;

namespace {
const std::string kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string kAbcSha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string kAbcSha512 =
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
    "454d4423643ce80e2a9ac94fa54ca49f";
}  // namespace

TEST_CASE("Digest::parse accepts sha256 and sha512 in lower-case hex") {
  auto d = Digest::parse("sha256:" + kAbcSha256);
  REQUIRE(d.isOk());
  CHECK(d->algorithm() == DigestAlgorithm::kSha256);
  CHECK(d->algorithmName() == "sha256");
  CHECK(d->hex() == kAbcSha256);
  CHECK(d->str() == "sha256:" + kAbcSha256);
  CHECK_FALSE(d->empty());

  auto e = Digest::parse("sha512:" + kAbcSha512);
  REQUIRE(e.isOk());
  CHECK(e->algorithm() == DigestAlgorithm::kSha512);
  CHECK(e->str() == "sha512:" + kAbcSha512);
  CHECK_FALSE(*d == *e);
  CHECK(Digest().empty());
}

TEST_CASE("Digest::parse refuses malformed digests with kDigestInvalid") {
  std::string hex = kAbcSha256;
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::vector<std::string> bad = {
      "",
      hex,                                  // missing colon and algorithm
      "sha256" + hex,                       // missing colon
      ":" + hex,                            // empty algorithm
      "sha256:",                            // empty hex
      "sha256:" + hex.substr(0, 63),        // too short
      "sha256:" + hex + "0",                // too long
      "sha256:" + upper,                    // upper-case hex
      "sha256:" + hex.substr(0, 63) + "G",  // not hex
      "sha256:" + hex.substr(0, 63) + "g",
      "SHA256:" + hex,                      // upper-case algorithm
      "md5:" + hex,                         // unknown algorithm
      "sha384:" + hex,
      "blake3:" + hex,
      "sha512:" + hex,                      // sha256 length under sha512
      "sha256:" + kAbcSha512,               // sha512 length under sha256
      "sha256: " + hex.substr(1),           // space
      "sha256:" + hex.substr(0, 32) + ":" + hex.substr(33),
      std::string("sha256:") + hex.substr(0, 63) + std::string(1, '\0'),
  };
  for (const auto& s : bad) {
    INFO("digest: \"" << s << "\"");
    auto r = Digest::parse(s);
    CHECK_FALSE(r.isOk());
    CHECK(r.status().code() == Code::kDigestInvalid);
  }
}

TEST_CASE("digestOf and Hasher give the standard SHA values") {
  CHECK(digestOf("").str() == "sha256:" + kEmptySha256);
  CHECK(digestOf("abc").str() == "sha256:" + kAbcSha256);
  CHECK(digestOf("abc", DigestAlgorithm::kSha512).str() == "sha512:" + kAbcSha512);

  Hasher h;
  h.update("a");
  h.update(std::string_view("bc"));
  CHECK(h.bytes() == 3);
  CHECK(h.digest().hex() == kAbcSha256);
  // digest() does not finish the hasher.
  CHECK(h.digest().hex() == kAbcSha256);
  h.update("d");
  CHECK(h.digest() == digestOf("abcd"));
  CHECK(h.bytes() == 4);

  Hasher moved(std::move(h));
  moved.update("e");
  CHECK(moved.digest() == digestOf("abcde"));
  Hasher assigned(DigestAlgorithm::kSha512);
  assigned = std::move(moved);
  CHECK(assigned.algorithm() == DigestAlgorithm::kSha256);
  CHECK(assigned.digest() == digestOf("abcde"));
}

TEST_CASE("a digest parsed from its own string compares equal and orders by string") {
  Digest a = digestOf("a");
  Digest b = digestOf("b");
  auto pa = Digest::parse(a.str());
  REQUIRE(pa.isOk());
  CHECK(*pa == a);
  CHECK((a < b) == (a.str() < b.str()));
  CHECK_FALSE(a < a);
}

TEST_CASE("digestOfFile hashes a whole file from its start and reports its size") {
  TempDir dir;
  std::string data = wharf::test::randomData(3 * 1024 * 1024 + 17, 7);  // spans several buffers
  REQUIRE(writeFileDurable(dir / "f", data).isOk());
  Fd fd(::open((dir / "f").c_str(), O_RDONLY));
  REQUIRE(fd.valid());
  char skip[10];
  REQUIRE(::read(fd.get(), skip, sizeof skip) == 10);  // file offset moved: must not matter
  uint64_t size = 0;
  auto d = digestOfFile(fd.get(), DigestAlgorithm::kSha256, &size);
  REQUIRE(d.isOk());
  CHECK(*d == digestOf(data));
  CHECK(size == data.size());
  auto d512 = digestOfFile(fd.get(), DigestAlgorithm::kSha512, nullptr);
  REQUIRE(d512.isOk());
  CHECK(*d512 == digestOf(data, DigestAlgorithm::kSha512));

  CHECK(digestOfFile(-1, DigestAlgorithm::kSha256, nullptr).status().code() == Code::kIoError);
}

}  // namespace digest_test
