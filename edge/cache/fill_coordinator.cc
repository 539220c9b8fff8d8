#include "edge/cache/fill_coordinator.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "shared/base/log.h"
#include "shared/metrics/metrics.h"

namespace wharf {
namespace {

Gauge& inFlightGauge() {
  static Gauge& g = MetricsRegistry::global().gauge("wharf_edge_fills_in_flight", "Blobs being fetched from upstream.");
  return g;
}

}  // namespace

Fill::~Fill() {
  // A fill its leader abandoned without finish() or fail() leaves nothing behind.
  std::lock_guard lock(mu_);
  if (state_ == State::kFilling) ::unlink(partial_path_.c_str());
}

Status Fill::open() {
  writer_ = Fd(::open(partial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!writer_.valid()) return errnoStatus("create " + partial_path_, errno);
  int r = ::open(partial_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (r < 0) return errnoStatus("open " + partial_path_, errno);
  reader_ = std::make_shared<Fd>(r);
  return Status::ok();
}

Fill::Event Fill::current() {
  std::lock_guard lock(mu_);
  return Event{state_, written_, error_, verified_};
}

uint64_t Fill::subscribe(Loop& loop, Listener listener) {
  std::lock_guard lock(mu_);
  uint64_t id = next_id_++;
  if (state_ != State::kFilling) {
    Event e{state_, written_, error_};
    loop.post([listener = std::move(listener), e] { listener(e); });
    return id;
  }
  subscribers_[id] = Subscriber{&loop, std::move(listener)};
  return id;
}

void Fill::unsubscribe(uint64_t id) {
  std::lock_guard lock(mu_);
  subscribers_.erase(id);
}

void Fill::publish(Event e) {
  std::vector<Subscriber> targets;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, s] : subscribers_) targets.push_back(s);
    if (e.state != State::kFilling) subscribers_.clear();
  }
  for (auto& s : targets) {
    s.loop->post([listener = s.listener, e] { listener(e); });
  }
}

void Fill::started(uint64_t size) {
  if (size != 0 && expected_size_.load() == 0) expected_size_.store(size);
  started_.store(true);
  publish(current());
}

Status Fill::append(std::string_view data) {
  Event e = current();
  if (e.state != State::kFilling) return e.error.isOk() ? Status(Code::kInternal, "fill already ended") : e.error;
  uint64_t expected = expected_size_.load();
  if (expected != 0 && e.available + data.size() > expected) {
    Status st(Code::kCorruption, "upstream sent more than the " + std::to_string(expected) + " bytes of " +
                                     digest_.str());
    fail(st);
    return st;
  }
  Status st = writeAll(writer_.get(), data.data(), data.size());
  if (!st.isOk()) {
    fail(st);
    return st;
  }
  hasher_.update(data);
  uint64_t now;
  {
    std::lock_guard lock(mu_);
    written_ += data.size();
    now = written_;
  }
  // Start writing back what has arrived, a few MiB at a time (asynchronously), so the
  // commit's fdatasync finds little left to do and the edge is idle soon after a fill.
  if (now - writeback_from_ >= (8u << 20)) {
    ::sync_file_range(writer_.get(), static_cast<off_t>(writeback_from_), static_cast<off_t>(now - writeback_from_),
                      SYNC_FILE_RANGE_WRITE);
    writeback_from_ = now;
  }
  publish(Event{State::kFilling, now, Status::ok()});
  return Status::ok();
}

Status Fill::finish() {
  Event e = current();
  if (e.state != State::kFilling) return e.error;
  Status st;
  uint64_t expected = expected_size_.load();
  if (expected != 0 && e.available != expected) {
    st = Status(Code::kCorruption, "upstream sent " + std::to_string(e.available) + " of the " +
                                       std::to_string(expected) + " bytes of " + digest_.str());
  } else if (!(hasher_.digest() == digest_)) {
    st = Status(Code::kCorruption, "upstream bytes hash to " + hasher_.digest().str() + ", not " + digest_.str());
  }
  if (st.isOk()) {
    // Verified: responses may finish while the file is synced and committed.
    {
      std::lock_guard lock(mu_);
      verified_ = true;
    }
    publish(Event{State::kFilling, e.available, Status::ok(), true});
    if (::fdatasync(writer_.get()) != 0) {
      st = errnoStatus("fsync " + partial_path_, errno);
    } else if (::rename(partial_path_.c_str(), final_path_.c_str()) != 0) {
      st = errnoStatus("rename into the cache", errno);
    }
  }
  if (!st.isOk()) {
    fail(st);
    return st;
  }
  writer_.reset();
  {
    std::lock_guard lock(mu_);
    state_ = State::kDone;
  }
  owner_->done(this);
  publish(Event{State::kDone, e.available, Status::ok(), true});
  return Status::ok();
}

void Fill::fail(Status why) {
  {
    std::lock_guard lock(mu_);
    if (state_ != State::kFilling) return;
    state_ = State::kFailed;
    error_ = why;
  }
  ::unlink(partial_path_.c_str());
  writer_.reset();
  logWarn("fill failed", {{"digest", digest_.str()}, {"error", why.message()}});
  owner_->done(this);
  publish(Event{State::kFailed, current().available, why});
}

Result<std::unique_ptr<FillCoordinator>> FillCoordinator::open(const std::string& root) {
  WHARF_RETURN_IF_ERROR(removeTree(root + "/partial"));
  WHARF_RETURN_IF_ERROR(makeDirs(root + "/partial"));
  WHARF_RETURN_IF_ERROR(makeDirs(root + "/blobs/sha256"));
  WHARF_RETURN_IF_ERROR(makeDirs(root + "/blobs/sha512"));
  return std::unique_ptr<FillCoordinator>(new FillCoordinator(root));
}

std::string FillCoordinator::blobPath(const Digest& d) const {
  return root_ + "/blobs/" + std::string(d.algorithmName()) + "/" + d.hex();
}

Result<FillCoordinator::Join> FillCoordinator::join(const Digest& digest, uint64_t expected_size) {
  std::lock_guard lock(mu_);
  std::string key = digest.str();
  auto it = fills_.find(key);
  if (it != fills_.end()) {
    if (auto fill = it->second.lock()) {
      ++followers_;
      fill->joined_.fetch_add(1);
      return Join{Role::kFollower, fill, FillLeader(), ""};
    }
    fills_.erase(it);  // gone without done() (cannot happen while FillLeader fails abandoned fills)
    inFlightGauge().add(-1);
  }
  std::string path = blobPath(digest);
  if (::access(path.c_str(), F_OK) == 0) return Join{Role::kCached, nullptr, FillLeader(), path};
  std::shared_ptr<Fill> fill(
      new Fill(this, digest, expected_size, root_ + "/partial/" + digest.hex(), path));
  WHARF_RETURN_IF_ERROR(fill->open());
  fills_[key] = fill;
  ++leaders_;
  inFlightGauge().add(1);
  return Join{Role::kLeader, fill, FillLeader(fill), ""};
}

Result<FillCoordinator::Join> FillCoordinator::find(const Digest& digest) {
  std::lock_guard lock(mu_);
  auto it = fills_.find(digest.str());
  if (it != fills_.end()) {
    if (auto fill = it->second.lock()) {
      fill->joined_.fetch_add(1);
      return Join{Role::kFollower, fill, FillLeader(), ""};
    }
  }
  std::string path = blobPath(digest);
  if (::access(path.c_str(), F_OK) == 0) return Join{Role::kCached, nullptr, FillLeader(), path};
  return Status(Code::kNotFound, "not cached");
}

void FillCoordinator::done(const Fill* fill) {
  std::lock_guard lock(mu_);
  auto it = fills_.find(fill->digest().str());
  if (it == fills_.end()) return;
  auto current = it->second.lock();
  if (!current || current.get() == fill) {
    fills_.erase(it);
    inFlightGauge().add(-1);
  }
}

size_t FillCoordinator::inFlight() {
  std::lock_guard lock(mu_);
  return fills_.size();
}

}  // namespace wharf
