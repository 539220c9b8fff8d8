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
  for (auto it = j.begin(); it != j.end() && h->last_.size() < kMaxRepositories; ++it) {
    if (it->is_number_integer()) h->last_[it.key()] = it->get<int64_t>();
  }
  return h;
}

void PullHistory::pulled(const std::string& repo) {
  int64_t now = clock_.nowMillis();
  std::lock_guard lock(mu_);
  auto it = last_.find(repo);
  if (it != last_.end() && now - it->second < 60'000) return;  // a minute's precision is plenty
  last_[repo] = now;
  dirty_ = true;
  if (last_.size() > kMaxRepositories) {
    auto oldest = std::min_element(last_.begin(), last_.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    last_.erase(oldest);
  }
}

int64_t PullHistory::last(const std::string& repo) const {
  std::lock_guard lock(mu_);
  auto it = last_.find(repo);
  return it == last_.end() ? 0 : it->second;
}

Status PullHistory::save() {
  std::lock_guard saving(save_mu_);
  nlohmann::json j = nlohmann::json::object();
  {
    std::lock_guard lock(mu_);
    if (!dirty_) return Status::ok();
    for (const auto& [repo, ms] : last_) j[repo] = ms;
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
