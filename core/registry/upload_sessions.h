// UploadSessions: in-memory state of blob uploads in progress (their running hash and
// length), so that bytes are hashed once, as they arrive.
//
// The blob store is the source of truth: after a restart, or when another replica took
// chunks of the upload in between, a session goes on from the stored size without a
// hash, and the upload is hashed when it is finished.
// Thread-safe. A Lease gives one request exclusive use of an upload; a second request
// for the same upload while the first holds it is refused (kRangeInvalid).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "shared/oci/digest.h"
#include "shared/store/blob_store.h"

namespace wharf {

class UploadSessions {
 public:
  struct Session {
    uint64_t offset = 0;            // bytes written to the upload file
    std::optional<Hasher> hasher;   // hash of bytes [0, offset), when known
    bool busy = false;
  };

  class Lease {
   public:
    Lease(UploadSessions* owner, std::string id, std::shared_ptr<Session> s)
        : owner_(owner), id_(std::move(id)), session_(std::move(s)) {}
    Lease(Lease&&) = default;
    ~Lease() { release(); }
    // Gives the upload back before the Lease is destroyed (before answering the
    // client, who may send the next request at once). Idempotent.
    void release();
    Session& session() { return *session_; }
    const std::string& id() const { return id_; }

   private:
    UploadSessions* owner_;
    std::string id_;
    std::shared_ptr<Session> session_;
    bool released_ = false;
  };

  explicit UploadSessions(BlobStore& blobs) : blobs_(blobs) {}

  // Starts a session for a new, empty upload.
  void create(const std::string& id);
  // Takes the upload for one request. kBlobUploadUnknown when its upload is gone,
  // kRangeInvalid when another request holds it. Asks the blob store: call it on a
  // worker.
  Result<std::unique_ptr<Lease>> acquire(const std::string& id);
  void erase(const std::string& id);
  size_t size();

 private:
  void release(Session* s);
  BlobStore& blobs_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;  // GUARDED_BY(mu_)
};

}  // namespace wharf
