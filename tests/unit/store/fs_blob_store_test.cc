#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "shared/store/blob_store.h"
#include "tests/support/oci_layout.h"
#include "tests/support/temp_dir.h"

// Each file's own names: the test binaries are unity builds.
namespace fs_blob_store_test {

using namespace wharf;
using wharf::test::TempDir;

namespace {

std::unique_ptr<BlobStore> openStore(const std::string& root) {
  auto s = openFsBlobStore(root);
  INFO(s.status().toString());
  REQUIRE(s.isOk());
  return std::move(s).value();
}

std::string readAll(const BlobFile& f) {
  std::string out(f.size, '\0');
  Status st = preadAll(f.fd->get(), out.data(), out.size(), 0);
  REQUIRE(st.isOk());
  return out;
}

bool exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

std::string blobPath(const std::string& root, const Digest& d) {
  return root + "/blobs/" + std::string(d.algorithmName()) + "/" + d.hex().substr(0, 2) + "/" + d.hex();
}

}  // namespace

TEST_CASE("FsBlobStore lays out its root and records its layout version") {
  TempDir dir;
  std::string root = dir / "store";
  auto store = openStore(root);
  std::string layout;
  REQUIRE(readFile(root + "/layout", &layout).isOk());
  CHECK(layout == "wharf-blobstore 1\n");
  CHECK(exists(root + "/uploads"));
  CHECK(exists(root + "/tmp"));
  CHECK(exists(root + "/blobs/sha256/00"));
  CHECK(exists(root + "/blobs/sha256/ff"));
  CHECK(exists(root + "/blobs/sha512/a7"));
}

TEST_CASE("FsBlobStore put, open, size, remove") {
  TempDir dir;
  std::string root = dir / "store";
  auto store = openStore(root);
  std::string data = wharf::test::randomData(100'000, 1);

  auto d = store->put(data, DigestAlgorithm::kSha256);
  REQUIRE(d.isOk());
  CHECK(*d == digestOf(data));
  CHECK(exists(blobPath(root, *d)));

  auto f = store->open(*d);
  REQUIRE(f.isOk());
  CHECK(f->size == data.size());
  CHECK(readAll(*f) == data);
  auto sz = store->size(*d);
  REQUIRE(sz.isOk());
  CHECK(*sz == data.size());

  // Putting the same content again is a no-op returning the same digest.
  auto again = store->put(data, DigestAlgorithm::kSha256);
  REQUIRE(again.isOk());
  CHECK(*again == *d);

  // sha512 content lives apart.
  auto d512 = store->put(data, DigestAlgorithm::kSha512);
  REQUIRE(d512.isOk());
  CHECK(d512->algorithm() == DigestAlgorithm::kSha512);
  CHECK(*d512 == digestOf(data, DigestAlgorithm::kSha512));
  CHECK(store->size(*d512).isOk());

  // An empty blob is a blob.
  auto empty = store->put("", DigestAlgorithm::kSha256);
  REQUIRE(empty.isOk());
  CHECK(*store->size(*empty) == 0);

  REQUIRE(store->remove(*d).isOk());
  CHECK(store->open(*d).status().code() == Code::kBlobUnknown);
  CHECK(store->size(*d).status().code() == Code::kBlobUnknown);
  CHECK(store->remove(*d).code() == Code::kBlobUnknown);
  // An open file stays readable after the blob is removed.
  CHECK(readAll(*f) == data);
  // Nothing left in tmp/.
  CHECK(std::distance(std::filesystem::directory_iterator(root + "/tmp"), std::filesystem::directory_iterator()) == 0);
}

TEST_CASE("FsBlobStore unknown blobs") {
  TempDir dir;
  auto store = openStore(dir / "store");
  Digest d = digestOf("never stored");
  CHECK(store->open(d).status().code() == Code::kBlobUnknown);
  CHECK(store->size(d).status().code() == Code::kBlobUnknown);
  CHECK(store->remove(d).code() == Code::kBlobUnknown);
}

TEST_CASE("FsBlobStore uploads: create, append, size, commit hashing the file") {
  TempDir dir;
  std::string root = dir / "store";
  auto store = openStore(root);
  std::string id = newUuid();
  REQUIRE(store->createUpload(id).isOk());
  CHECK(store->createUpload(id).code() == Code::kIoError);  // exists already
  CHECK(*store->uploadSize(id) == 0);

  std::string a = wharf::test::randomData(70'000, 2), b = wharf::test::randomData(5, 3);
  REQUIRE(store->append(id, 0, a).isOk());
  CHECK(*store->uploadSize(id) == a.size());
  REQUIRE(store->append(id, a.size(), b).isOk());
  CHECK(*store->uploadSize(id) == a.size() + b.size());
  REQUIRE(store->append(id, a.size() + b.size(), "").isOk());

  Digest want = digestOf(a + b);
  auto size = store->commitUpload(id, want, nullptr);
  REQUIRE(size.isOk());
  CHECK(*size == a.size() + b.size());
  auto f = store->open(want);
  REQUIRE(f.isOk());
  CHECK(readAll(*f) == a + b);
  // The upload became the blob.
  CHECK(store->uploadSize(id).status().code() == Code::kBlobUploadUnknown);
  CHECK(store->listUploads().empty());
}

TEST_CASE("FsBlobStore commitUpload with a known digest trusts it; sha512 hashes the file") {
  TempDir dir;
  auto store = openStore(dir / "store");
  std::string data = "known content";
  std::string id = newUuid();
  REQUIRE(store->createUpload(id).isOk());
  REQUIRE(store->append(id, 0, data).isOk());
  Digest want = digestOf(data);
  auto size = store->commitUpload(id, want, &want);
  REQUIRE(size.isOk());
  CHECK(*size == data.size());
  CHECK(store->open(want).isOk());

  // A known sha256 digest is ignored for a sha512 expectation: the file is hashed.
  std::string id2 = newUuid();
  REQUIRE(store->createUpload(id2).isOk());
  REQUIRE(store->append(id2, 0, data).isOk());
  Digest want512 = digestOf(data, DigestAlgorithm::kSha512);
  auto size2 = store->commitUpload(id2, want512, &want);
  REQUIRE(size2.isOk());
  CHECK(*size2 == data.size());
  CHECK(store->open(want512).isOk());
}

TEST_CASE("FsBlobStore digest mismatch is kDigestInvalid and leaves the upload untouched") {
  TempDir dir;
  auto store = openStore(dir / "store");
  std::string data = "the real bytes";
  std::string id = newUuid();
  REQUIRE(store->createUpload(id).isOk());
  REQUIRE(store->append(id, 0, data).isOk());
  Digest wrong = digestOf("other bytes");

  auto r = store->commitUpload(id, wrong, nullptr);
  CHECK(r.status().code() == Code::kDigestInvalid);
  CHECK(r.status().message().find(digestOf(data).str()) != std::string::npos);
  CHECK(*store->uploadSize(id) == data.size());
  CHECK(store->open(wrong).status().code() == Code::kBlobUnknown);
  CHECK(store->open(digestOf(data)).status().code() == Code::kBlobUnknown);

  // A known digest that disagrees with the expectation fails the same way.
  Digest known = digestOf(data);
  auto r2 = store->commitUpload(id, wrong, &known);
  CHECK(r2.status().code() == Code::kDigestInvalid);
  CHECK(*store->uploadSize(id) == data.size());

  // The upload can still be committed under the right digest.
  auto ok = store->commitUpload(id, digestOf(data), nullptr);
  REQUIRE(ok.isOk());
  CHECK(store->open(digestOf(data)).isOk());
}

TEST_CASE("FsBlobStore unknown uploads and removeUpload") {
  TempDir dir;
  auto store = openStore(dir / "store");
  std::string id = newUuid();
  CHECK(store->uploadSize(id).status().code() == Code::kBlobUploadUnknown);
  CHECK(store->append(id, 0, "x").code() == Code::kBlobUploadUnknown);
  CHECK(store->commitUpload(id, digestOf("x"), nullptr).status().code() == Code::kBlobUploadUnknown);
  CHECK(store->removeUpload(id).isOk());  // absent is fine

  REQUIRE(store->createUpload(id).isOk());
  REQUIRE(store->append(id, 0, "x").isOk());
  REQUIRE(store->removeUpload(id).isOk());
  CHECK(store->uploadSize(id).status().code() == Code::kBlobUploadUnknown);
  CHECK(store->listUploads().empty());
}

TEST_CASE("FsBlobStore listUploads gives ids and mtimes, skipping non-UUID files") {
  TempDir dir;
  std::string root = dir / "store";
  auto store = openStore(root);
  std::string a = newUuid(), b = newUuid();
  REQUIRE(store->createUpload(a).isOk());
  REQUIRE(store->createUpload(b).isOk());
  REQUIRE(writeFileDurable(root + "/uploads/not-an-upload", "x").isOk());
  // Fix b's mtime to a known instant.
  struct timespec times[2] = {{1'600'000'000, 500'000'000}, {1'600'000'000, 500'000'000}};
  REQUIRE(::utimensat(AT_FDCWD, (root + "/uploads/" + b).c_str(), times, 0) == 0);

  auto list = store->listUploads();
  REQUIRE(list.size() == 2);
  std::sort(list.begin(), list.end());
  auto find = [&](const std::string& id) {
    return std::find_if(list.begin(), list.end(), [&](const auto& p) { return p.first == id; });
  };
  REQUIRE(find(a) != list.end());
  REQUIRE(find(b) != list.end());
  CHECK(find(b)->second == 1'600'000'000'500);
  CHECK(find(a)->second > 1'600'000'000'500);
}

TEST_CASE("FsBlobStore reopens an existing store with its blobs and uploads") {
  TempDir dir;
  std::string root = dir / "store";
  Digest d;
  std::string id = newUuid();
  {
    auto store = openStore(root);
    auto put = store->put("persisted", DigestAlgorithm::kSha256);
    REQUIRE(put.isOk());
    d = *put;
    REQUIRE(store->createUpload(id).isOk());
    REQUIRE(store->append(id, 0, "partial").isOk());
  }
  // A leftover whole-blob write is cleaned up at open.
  REQUIRE(writeFileDurable(root + "/tmp/leftover", "junk").isOk());
  auto store = openStore(root);
  auto f = store->open(d);
  REQUIRE(f.isOk());
  CHECK(readAll(*f) == "persisted");
  CHECK(*store->uploadSize(id) == 7);
  CHECK_FALSE(exists(root + "/tmp/leftover"));
  std::string layout;
  REQUIRE(readFile(root + "/layout", &layout).isOk());
  CHECK(layout == "wharf-blobstore 1\n");
}

TEST_CASE("FsBlobStore refuses a store of another layout version") {
  TempDir dir;
  std::string root = dir / "store";
  { auto store = openStore(root); }
  REQUIRE(writeFileDurable(root + "/layout", "wharf-blobstore 2\n").isOk());
  auto s = openFsBlobStore(root);
  CHECK_FALSE(s.isOk());
  CHECK(s.status().code() == Code::kCorruption);
  CHECK(s.status().message().find("wharf-blobstore 2") != std::string::npos);
  // The layout file was left as it was.
  std::string layout;
  REQUIRE(readFile(root + "/layout", &layout).isOk());
  CHECK(layout == "wharf-blobstore 2\n");

  REQUIRE(writeFileDurable(root + "/layout", "").isOk());
  CHECK(openFsBlobStore(root).status().code() == Code::kCorruption);
  // A layout line without its newline is accepted.
  REQUIRE(writeFileDurable(root + "/layout", "wharf-blobstore 1").isOk());
  CHECK(openFsBlobStore(root).isOk());
}

TEST_CASE("openFsBlobStore fails on an unusable root") {
  TempDir dir;
  REQUIRE(writeFileDurable(dir / "file", "not a directory").isOk());
  auto s = openFsBlobStore(dir / "file");
  CHECK_FALSE(s.isOk());
  CHECK(s.status().code() == Code::kIoError);
}

}  // namespace fs_blob_store_test
