#include "core/fleet/channel_hub.h"

#include <vector>

#include "shared/event/loop.h"

namespace wharf {

uint64_t ChannelHub::generationLocked(const std::string& edge) const {
  auto it = per_edge_.find(edge);
  return all_ + (it == per_edge_.end() ? 0 : it->second);
}

uint64_t ChannelHub::generation(const std::string& edge) {
  std::lock_guard lock(mu_);
  return generationLocked(edge);
}

uint64_t ChannelHub::wait(const std::string& edge, uint64_t seen, Loop& loop, std::function<void()> wake) {
  std::lock_guard lock(mu_);
  uint64_t id = next_id_++;
  if (closed_ || generationLocked(edge) != seen) {
    loop.post(std::move(wake));
    return id;
  }
  waiters_.emplace(id, Waiter{edge, &loop, std::move(wake)});
  return id;
}

void ChannelHub::cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  waiters_.erase(id);
}

void ChannelHub::wakeLocked(const std::string* edge) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (edge == nullptr || it->second.edge == *edge) {
      it->second.loop->post(std::move(it->second.wake));
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

void ChannelHub::notify(const std::string& edge) {
  std::lock_guard lock(mu_);
  ++per_edge_[edge];
  wakeLocked(&edge);
}

void ChannelHub::notifyAll() {
  std::lock_guard lock(mu_);
  ++all_;
  wakeLocked(nullptr);
}

void ChannelHub::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  ++all_;
  wakeLocked(nullptr);
}

bool ChannelHub::closed() {
  std::lock_guard lock(mu_);
  return closed_;
}

size_t ChannelHub::waiting() {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

}  // namespace wharf
