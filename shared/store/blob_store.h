// BlobStore: content-addressed, immutable blobs plus the upload files they are built
// from. Manifests are blobs too.
//
// Thread-safe: every method may be called from any thread, and all of them may block on
// disk or network I/O, so the registry calls them from worker threads. Opening a blob of
// a store with files is the exception: it is cheap and done on loop threads.
//
// Two backends: the filesystem (local files, sent with sendfile) and S3 (objects, read
// with ranged GETs; see s3_blob_store.h).
//
// Durability: commitUpload() and put() return only after the blob's bytes are on stable
// storage (for S3: the store acknowledged them). A blob is visible under its digest only
// after its bytes were checked against it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/base/fs.h"
#include "shared/base/status.h"
#include "shared/oci/digest.h"

namespace wharf {

struct BlobFile {
  std::shared_ptr<Fd> fd;  // a local file; null for stores without files (read() then)
  uint64_t size = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // True when open() hands out local files; false when bytes come through read() only.
  virtual bool hasFiles() const = 0;
  // Where the store is, for logs (no credentials).
  virtual std::string describe() const = 0;

  // kBlobUnknown if the blob is not stored.
  virtual Result<BlobFile> open(const Digest& digest) = 0;
  virtual Result<uint64_t> size(const Digest& digest) = 0;
  // Reads len bytes of a blob at offset into out (kBlobUnknown if it is not stored).
  virtual Status read(const Digest& digest, uint64_t offset, char* out, size_t len) = 0;
  // A URL from which a client may GET the blob itself for ttl_s seconds (an S3
  // presigned URL); nullopt when the store cannot serve clients.
  virtual std::optional<std::string> directUrl(const Digest& digest, int64_t ttl_s) = 0;
  // Writes a whole blob (small ones: manifests) and returns its digest.
  virtual Result<Digest> put(std::string_view data, DigestAlgorithm algorithm) = 0;
  // Removes a stored blob (garbage collection). kBlobUnknown if absent. sync_dir: make
  // the removal itself durable (a collector need not: content whose record is gone and
  // that reappears after a power loss is collected again).
  virtual Status remove(const Digest& digest, bool sync_dir = true) = 0;
  // Every stored blob with its size and modification time (ms), until fn returns false.
  // The size is the stored object's, as a listing gives it: 0 for an S3 blob stored by
  // reference (size() gives its bytes').
  virtual void forEachBlob(const std::function<bool(const Digest&, uint64_t size, int64_t mtime_ms)>& fn) = 0;
  // Finishes removals that a crash or an error cut short, begun before before_ms (S3:
  // the bytes of a blob stored by reference whose name is gone). Returns how many, and
  // their bytes. Stores whose removal is one step have none.
  struct Finished {
    size_t blobs = 0;
    uint64_t bytes = 0;
  };
  virtual Result<Finished> finishRemovals(int64_t before_ms) {
    (void)before_ms;
    return Finished{};
  }

  // Uploads. Ids are validated by the caller (isUuid) and name a file of their own.
  virtual Status createUpload(const std::string& id) = 0;
  // Size of the upload so far; kBlobUploadUnknown if there is no such upload.
  virtual Result<uint64_t> uploadSize(const std::string& id) = 0;
  // The same, as a request starts writing to the upload (it holds the upload's lease):
  // what this process kept in memory for it and did not make durable (a request that
  // broke off before its flush) is dropped, and so is what another replica's chunks made
  // stale.
  virtual Result<uint64_t> resumeUpload(const std::string& id) = 0;
  // A request is about to append length bytes at offset (it announced them: its
  // Content-Length). A store may send them to their place as they come (S3: one streamed
  // PUT when they are the whole upload). Appending works the same without it.
  virtual void announceAppend(const std::string& id, uint64_t offset, uint64_t length) {
    (void)id, (void)offset, (void)length;
  }
  // Writes data at offset (the current size). Starts write-back early so that the final
  // fsync in commitUpload() has little left to do.
  virtual Status append(const std::string& id, uint64_t offset, std::string_view data) = 0;
  // Makes what append() took durable and visible to every replica: the end of a request
  // that leaves the upload open (the next chunk may reach another replica).
  virtual Status flushUpload(const std::string& id) = 0;
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
constexpr const char* kBlobStoreLayoutTag = "wharf-blobstore 1";  // the layout file (S3 stores: their first)
Result<std::unique_ptr<BlobStore>> openFsBlobStore(const std::string& root);

// The S3 backend (s3_blob_store.cc; the location from parseS3Url in s3_client.h).
//
//   <prefix>layout                          "wharf-blobstore-s3 2" (a store of layout
//                                           "wharf-blobstore 1" is used without storing
//                                           references until upgradeS3BlobStoreLayout)
//   <prefix>blobs/<algorithm>/<hex[0:2]>/<hex>   immutable blob bytes, or (stored by
//                                           reference) an empty object whose metadata
//                                           x-amz-meta-wharf-contents names contents/<uuid>
//                                           and x-amz-meta-wharf-size gives the size
//   <prefix>contents/<uuid>                 an upload's bytes (streamed in one PUT, or its
//                                           parts assembled): the blob's, once stored by
//                                           reference
//   <prefix>removing/<uuid>                 the digest of a blob stored by reference being
//                                           removed: written before its name is deleted,
//                                           deleted after its bytes (finishRemovals)
//   <prefix>streaming-probe                 written and removed at start (does the store
//                                           take streamed PUTs?)
//   <prefix>metadata-probe                  the same (does it keep x-amz-meta-*?)
//   <prefix>uploads/<uuid>/state            JSON: size, whole (the first bytes streamed;
//                                           whole_in_contents: in contents/<uuid>),
//                                           multipart upload id, parts (parts_in_contents:
//                                           of contents/<uuid>), committing (the digest
//                                           they are being stored under by reference)
//   <prefix>uploads/<uuid>/whole            the first bytes streamed, layout 1
//   <prefix>uploads/<uuid>/tail.<offset>    bytes after the last part (under 1 part)
//   <prefix>uploads/<uuid>/data             the multipart upload of layout 1 (or after
//                                           streamed bytes), copied under its digest
struct S3Location;
Result<std::unique_ptr<BlobStore>> openS3BlobStore(const S3Location& location);
// Moves a store of layout 1 to layout 2 (wharfctl blobstore upgrade, once no core of an
// older version uses it; cores opened afterwards store blobs by reference). False when
// it was already.
Result<bool> upgradeS3BlobStoreLayout(const S3Location& location);

}  // namespace wharf
