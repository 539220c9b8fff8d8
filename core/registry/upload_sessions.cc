#include "core/registry/upload_sessions.h"

namespace wharf {

void UploadSessions::Lease::release() {
  if (released_ || !session_) return;
  released_ = true;
  owner_->release(session_.get());
}

void UploadSessions::create(const std::string& id) {
  auto s = std::make_shared<Session>();
  s->hasher.emplace(DigestAlgorithm::kSha256);
  std::lock_guard lock(mu_);
  sessions_[id] = std::move(s);
}

Result<std::unique_ptr<UploadSessions::Lease>> UploadSessions::acquire(const std::string& id) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      s = it->second;
      if (s->busy) return Status(Code::kRangeInvalid, "another request is writing to this upload");
      s->busy = true;
    }
  }
  if (s) {
    auto lease = std::make_unique<Lease>(this, id, s);
    // The store is the truth: a session whose upload is gone is gone, and one that
    // another replica added to since goes on from the stored size, without its hash.
    auto size = blobs_.resumeUpload(id);
    if (!size.isOk()) {
      lease->release();
      if (size.status().code() == Code::kBlobUploadUnknown) erase(id);
      return size.status();
    }
    if (*size != s->offset) {
      s->offset = *size;
      s->hasher.reset();
      if (*size == 0) s->hasher.emplace(DigestAlgorithm::kSha256);
    }
    return lease;
  }
  // Not in memory (the process restarted): rebuild from the file.
  auto size = blobs_.resumeUpload(id);
  if (!size.isOk()) return size.status();
  s = std::make_shared<Session>();
  s->offset = *size;
  if (*size == 0) s->hasher.emplace(DigestAlgorithm::kSha256);
  s->busy = true;
  std::lock_guard lock(mu_);
  auto [it, inserted] = sessions_.emplace(id, s);
  if (!inserted) {
    if (it->second->busy) return Status(Code::kRangeInvalid, "another request is writing to this upload");
    it->second->busy = true;
    return std::make_unique<Lease>(this, id, it->second);
  }
  return std::make_unique<Lease>(this, id, s);
}

void UploadSessions::release(Session* s) {
  std::lock_guard lock(mu_);
  s->busy = false;
}

void UploadSessions::erase(const std::string& id) {
  std::lock_guard lock(mu_);
  sessions_.erase(id);
}

size_t UploadSessions::size() {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

}  // namespace wharf
