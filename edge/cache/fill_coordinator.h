// FillCoordinator: each missing blob is fetched from upstream once, however many
// requests want it at the same time.
//
// The first request for a digest that is neither cached nor being fetched becomes the
// leader: it receives a Fill and appends the upstream bytes to it (written to
// <root>/partial/<hex>, hashed as they arrive). Requests that come while the fill runs
// become followers: they read the partial file as it grows, through an open descriptor,
// and are told of every step (progress, completion, failure) on their own loop, so they
// send bytes as they arrive instead of after the fill.
//
// finish() verifies size and digest, syncs, renames the file to <root>/blobs/<hex> and
// only then reports completion. On a mismatch or fail(), the partial file is dropped,
// every follower is told the fill failed (they must abort their responses: never a
// short body that looks complete), nothing is committed, and the next request for the
// digest leads a new fill.
//
// Thread-safe: leaders and followers may be on different loop threads.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shared/base/fs.h"
#include "shared/event/loop.h"
#include "shared/oci/digest.h"

namespace wharf {

class FillCoordinator;

class Fill : public std::enable_shared_from_this<Fill> {
 public:
  enum class State { kFilling, kDone, kFailed };
  struct Event {
    State state;
    uint64_t available;  // bytes readable from the file now
    Status error;        // set when kFailed
    // Every byte is here and hashes to the digest (set from then on, before the commit
    // itself): a response may send its last byte only now, so a body that does not
    // verify can never look complete, even with a Content-Length.
    bool verified = false;
  };
  using Listener = std::function<void(const Event&)>;

  ~Fill();

  // --- leader (one thread at a time) ---
  // Appends upstream bytes. Fails (and fails the fill) when they exceed the expected size
  // or cannot be written.
  Status append(std::string_view data);
  // Verifies and commits. Returns the error the fill failed with, if it did.
  Status finish();
  void fail(Status why);

  // --- followers (any thread) ---
  const Digest& digest() const { return digest_; }
  // 0 until known (the leader learns it from the upstream's Content-Length).
  uint64_t expectedSize() const { return expected_size_.load(); }
  // Leader: the upstream answered, announcing size (0: unknown); followers are told (an
  // event), so they can reply with a Content-Length.
  void started(uint64_t size);
  bool hasStarted() const { return started_.load(); }
  // A descriptor that reads the bytes (stays valid across the commit rename).
  std::shared_ptr<Fd> reader() const { return reader_; }
  Event current();
  // Calls listener on loop for every later event, until kDone or kFailed. If the fill has
  // already ended, the final event is posted at once. Returns an id for unsubscribe().
  uint64_t subscribe(Loop& loop, Listener listener);
  void unsubscribe(uint64_t id);
  // Requests that joined this fill as followers so far (a low-priority leader, prefetch,
  // stops holding back once a client waits on it).
  uint64_t joined() const { return joined_.load(); }

 private:
  friend class FillCoordinator;
  Fill(FillCoordinator* owner, Digest digest, uint64_t expected_size, std::string partial_path, std::string final_path)
      : owner_(owner), digest_(std::move(digest)), expected_size_(expected_size),
        partial_path_(std::move(partial_path)), final_path_(std::move(final_path)), hasher_(digest_.algorithm()) {}
  Status open();
  void publish(Event e);  // REQUIRES: mu_ not held

  FillCoordinator* owner_;
  Digest digest_;
  std::atomic<uint64_t> expected_size_;
  std::atomic<bool> started_{false};
  std::atomic<uint64_t> joined_{0};
  std::string partial_path_, final_path_;
  Fd writer_;
  std::shared_ptr<Fd> reader_;
  Hasher hasher_;
  uint64_t writeback_from_ = 0;  // leader only

  std::mutex mu_;
  State state_ = State::kFilling;  // GUARDED_BY(mu_)
  uint64_t written_ = 0;           // GUARDED_BY(mu_)
  bool verified_ = false;          // GUARDED_BY(mu_)
  Status error_;                   // GUARDED_BY(mu_)
  struct Subscriber {
    Loop* loop;
    Listener listener;
  };
  std::map<uint64_t, Subscriber> subscribers_;  // GUARDED_BY(mu_)
  uint64_t next_id_ = 1;                        // GUARDED_BY(mu_)
};

// Held by the leader: a fill whose leader goes away without finish() or fail() (a
// request torn down mid-way) fails, so followers are never left waiting.
class FillLeader {
 public:
  FillLeader() = default;
  explicit FillLeader(std::shared_ptr<Fill> fill) : fill_(std::move(fill)) {}
  ~FillLeader() { reset(); }
  FillLeader(FillLeader&& o) noexcept : fill_(std::move(o.fill_)) {}
  FillLeader& operator=(FillLeader&& o) noexcept {
    reset();
    fill_ = std::move(o.fill_);
    return *this;
  }
  FillLeader(const FillLeader&) = delete;
  FillLeader& operator=(const FillLeader&) = delete;
  explicit operator bool() const { return fill_ != nullptr; }
  Fill* operator->() const { return fill_.get(); }
  // Gives up leadership: an unfinished fill fails.
  void reset() {
    if (fill_ && fill_->current().state == Fill::State::kFilling) {
      fill_->fail(Status(Code::kUnavailable, "the fill was abandoned"));
    }
    fill_.reset();
  }

 private:
  std::shared_ptr<Fill> fill_;
};

class FillCoordinator {
 public:
  enum class Role { kCached, kLeader, kFollower };
  struct Join {
    Role role;
    std::shared_ptr<Fill> fill;           // followers (and leaders) read through it
    FillLeader leader;                    // set when kLeader
    std::string path;                     // the committed file when kCached
  };

  // root holds blobs/ and partial/; partial/ is emptied (fills a crash interrupted).
  static Result<std::unique_ptr<FillCoordinator>> open(const std::string& root);

  // expected_size: the size the descriptor promised (the fill refuses more or fewer bytes).
  Result<Join> join(const Digest& digest, uint64_t expected_size);
  // Like join(), but never starts a fill: kNotFound when neither cached nor in flight.
  Result<Join> find(const Digest& digest);
  std::string blobPath(const Digest& digest) const;
  std::string blobsDir() const { return root_ + "/blobs"; }
  size_t inFlight();
  // Counters for metrics and tests.
  uint64_t leaders() const { return leaders_; }
  uint64_t followers() const { return followers_; }

 private:
  friend class Fill;
  explicit FillCoordinator(std::string root) : root_(std::move(root)) {}
  void done(const Fill* fill);

  std::string root_;
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<Fill>> fills_;  // GUARDED_BY(mu_), by digest
  std::atomic<uint64_t> leaders_{0}, followers_{0};
};

}  // namespace wharf
