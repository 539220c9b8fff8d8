// BlobStore: content-addressed, immutable blobs plus the upload files they are built
// from. Manifests are blobs too.
//
// Thread-safe: every method may be called from any thread, and all of them may block on
// disk I/O, so the registry calls them from worker threads (opening a blob for reading
// is the exception: it is cheap and done on loop threads).
//
// Durability: commitUpload() and putBlob() return only after the blob's bytes and its
// directory entry are on stable storage.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shared/base/fs.h"
#include "shared/base/status.h"
#include "shared/oci/digest.h"

namespace wharf {

struct BlobFile {
  std::shared_ptr<Fd> fd;
  uint64_t size = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // kBlobUnknown if the blob is not stored.
  virtual Result<BlobFile> open(const Digest& digest) = 0;
  virtual Result<uint64_t> size(const Digest& digest) = 0;
  // Writes a whole blob (small ones: manifests) and returns its digest.
  virtual Result<Digest> put(std::string_view data, DigestAlgorithm algorithm) = 0;
  // Removes a stored blob (garbage collection). kBlobUnknown if absent. sync_dir: make
  // the removal itself durable (a collector need not: content whose record is gone and
  // that reappears after a power loss is collected again).
  virtual Status remove(const Digest& digest, bool sync_dir = true) = 0;
  // Every stored blob with its size and modification time (ms), until fn returns false.
  virtual void forEachBlob(const std::function<bool(const Digest&, uint64_t size, int64_t mtime_ms)>& fn) = 0;

  // Uploads. Ids are validated by the caller (isUuid) and name a file of their own.
  virtual Status createUpload(const std::string& id) = 0;
  // Size of the upload so far; kBlobUploadUnknown if there is no such upload.
  virtual Result<uint64_t> uploadSize(const std::string& id) = 0;
  // Writes data at offset (the current size). Starts write-back early so that the final
  // fsync in commitUpload() has little left to do.
  virtual Status append(const std::string& id, uint64_t offset, std::string_view data) = 0;
  // Verifies the upload against expected (using known, the digest of its bytes when the
  // caller hashed them as they arrived, else hashing the file), then makes it the blob.
  // On kDigestInvalid the upload is left untouched. Returns the blob size.
  virtual Result<uint64_t> commitUpload(const std::string& id, const Digest& expected, const Digest* known) = 0;
  virtual Status removeUpload(const std::string& id) = 0;
  // Upload ids with their last modification time (ms since the epoch).
  virtual std::vector<std::pair<std::string, int64_t>> listUploads() = 0;
};

// The local filesystem backend. Layout under root (version kFsBlobStoreLayout):
//
//   root/
//     layout                         "wharf-blobstore 1"
//     blobs/<algorithm>/<hex[0:2]>/<hex>   immutable blob bytes
//     uploads/<uuid>                  upload in progress
//     tmp/                            whole-blob writes before their rename
constexpr int kFsBlobStoreLayout = 1;
Result<std::unique_ptr<BlobStore>> openFsBlobStore(const std::string& root);

}  // namespace wharf
