// Links: which (repository, digest) pairs the core has confirmed. Content is cached by
// digest, but the core answers per repository: a blob fetched through repository A must
// not be served through repository B unless the core says B has it too. Thread-safe.
// (In memory for now: after a restart, links are confirmed again with the core.)
#pragma once

#include <mutex>
#include <string>
#include <unordered_set>

namespace wharf {

class Links {
 public:
  bool has(const std::string& repo, const std::string& digest) {
    std::lock_guard lock(mu_);
    return set_.count(repo + '\0' + digest) > 0;
  }
  void add(const std::string& repo, const std::string& digest) {
    std::lock_guard lock(mu_);
    set_.insert(repo + '\0' + digest);
  }

 private:
  std::mutex mu_;
  std::unordered_set<std::string> set_;  // GUARDED_BY(mu_)
};

}  // namespace wharf
