#include "edge/agent/pull_history.h"

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/fs.h"
#include "shared/base/log.h"

namespace wharf {

Result<std::unique_ptr<PullHistory>> PullHistory::open(const std::string& path, Clock& clock) {
  std::unique_ptr<PullHistory> h(new PullHistory(path, clock));
  std::string text;
  Status st = readFile(path, &text);
  if (st.code() == Code::kNotFound) return h;
  if (!st.isOk()) return Status(st.code(), path + ": " + st.message());
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    logWarn("the pull history is unreadable: starting afresh", {{"path", path}});
    return h;
  }
  for (auto it = j.begin(); it != j.end() && h->tags_.size() < kMaxTags; ++it) {
    const auto& v = *it;  // [last ms, pulls]; anything else (an older layout) is skipped
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_unsigned()) {
      h->tags_[it.key()] = Pulls{v[0].get<int64_t>(), v[1].get<uint32_t>()};
    }
  }
  return h;
}

void PullHistory::pulled(const std::string& repo, const std::string& tag) {
  int64_t now = clock_.nowMillis();
  std::lock_guard lock(mu_);
  auto& p = tags_[repo + ":" + tag];
  p.last_ms = now;
  ++p.count;
  dirty_ = true;
  if (tags_.size() > kMaxTags) {
    auto oldest = std::min_element(tags_.begin(), tags_.end(),
                                   [](const auto& a, const auto& b) { return a.second.last_ms < b.second.last_ms; });
    tags_.erase(oldest);
  }
}

PullHistory::Pulls PullHistory::get(const std::string& repo, const std::string& tag) const {
  std::lock_guard lock(mu_);
  auto it = tags_.find(repo + ":" + tag);
  return it == tags_.end() ? Pulls{} : it->second;
}

PullHistory::Pulls PullHistory::moved(const std::string& repo, const std::string& tag) {
  std::lock_guard lock(mu_);
  auto it = tags_.find(repo + ":" + tag);
  if (it == tags_.end()) return {};
  Pulls before = it->second;
  it->second.count = 0;
  dirty_ = true;
  return before;
}

Status PullHistory::save() {
  std::lock_guard saving(save_mu_);
  nlohmann::json j = nlohmann::json::object();
  {
    std::lock_guard lock(mu_);
    if (!dirty_) return Status::ok();
    for (const auto& [key, p] : tags_) j[key] = {p.last_ms, p.count};
    dirty_ = false;
  }
  Status st = writeFileDurable(path_, j.dump(), 0600);
  if (!st.isOk()) {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  return st;
}

}  // namespace wharf
