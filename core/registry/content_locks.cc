#include "core/registry/content_locks.h"

#include <algorithm>
#include <functional>
#include <set>

namespace wharf {
namespace {

constexpr const char* kLockClass = "1472";

}  // namespace

void ContentHold::release() {
  // The advisory locks go before the local ones: a local waiter then finds the cluster
  // free too. A session whose unlock failed is not given back to the pool holding them:
  // its connection is closed (PostgreSQL then drops them).
  if (cluster) {
    if (!cluster->conn().exec("SELECT pg_advisory_unlock_all()").isOk()) cluster->discard();
    cluster.reset();
  }
  local.clear();
}

ContentHold& ContentHold::operator=(ContentHold&& o) noexcept {
  if (this != &o) {
    release();
    local = std::move(o.local);
    cluster = std::move(o.cluster);
  }
  return *this;
}

size_t ContentLocks::stripe(const std::string& digest) const { return std::hash<std::string>{}(digest) % stripes_.size(); }

Result<ContentHold> ContentLocks::lock(const std::vector<std::string>& digests) {
  ContentHold hold;
  std::set<size_t> stripes;
  for (const auto& d : digests) stripes.insert(stripe(d));
  for (size_t i : stripes) hold.local.emplace_back(stripes_[i]);
  if (!cluster_) return hold;
  auto session = cluster_->session();
  if (!session.isOk()) return session.status();
  hold.cluster = std::move(session).value();
  // One statement takes them all, in the order of their keys: two holders of several
  // never wait for each other crosswise.
  std::vector<std::string> sorted(digests.begin(), digests.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  auto r = hold.cluster->conn().exec(
      std::string("SELECT count(pg_advisory_lock(") + kLockClass +
          ", k)) FROM (SELECT DISTINCT hashtext(d) AS k FROM unnest($1::text[]) AS d ORDER BY 1) AS keys",
      {pgArray(sorted)});
  if (!r.isOk()) return r.status();
  return hold;
}

Result<ContentHold> ContentLocks::tryLock(const std::vector<std::string>& digests, std::vector<bool>* locked) {
  ContentHold hold;
  std::vector<size_t> stripe_of;
  std::set<size_t> stripes;
  for (const auto& d : digests) {
    stripe_of.push_back(stripe(d));
    stripes.insert(stripe_of.back());
  }
  std::set<size_t> held;
  for (size_t i : stripes) {
    std::unique_lock<std::mutex> l(stripes_[i], std::try_to_lock);
    if (!l.owns_lock()) continue;
    held.insert(i);
    hold.local.push_back(std::move(l));
  }
  locked->assign(digests.size(), false);
  for (size_t k = 0; k < digests.size(); ++k) (*locked)[k] = held.count(stripe_of[k]) > 0;
  if (!cluster_) return hold;
  auto session = cluster_->session();
  if (!session.isOk()) return session.status();
  hold.cluster = std::move(session).value();
  for (size_t k = 0; k < digests.size(); ++k) {
    if (!(*locked)[k]) continue;
    auto r = hold.cluster->conn().exec(std::string("SELECT pg_try_advisory_lock(") + kLockClass + ", hashtext($1))",
                                       {digests[k]});
    if (!r.isOk()) return r.status();
    (*locked)[k] = r->rows() == 1 && r->boolean(0, 0);
  }
  return hold;
}

}  // namespace wharf
