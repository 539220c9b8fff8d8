#include "core/fleet/edge_invalidator.h"

#include "shared/base/clock.h"
#include "shared/base/log.h"

namespace wharf {

namespace {
constexpr const char* kMarker = "invalidator";
}

void EdgeInvalidator::start() {
  if (auto at = commands_.marker(kMarker); !at.isOk()) {
    // The first start: what was deleted before has no edge content to chase.
    if (Status st = commands_.setMarker(kMarker, log_.lastSeq()); !st.isOk()) {
      logWarn("cannot save the edge invalidator's place", {{"error", st.message()}});
    }
  }
  thread_ = std::thread([this] { loop(); });
}

void EdgeInvalidator::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EdgeInvalidator::kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void EdgeInvalidator::loop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      // The periodic look also retries after a failure (an LMDB error, say).
      cv_.wait_for(lock, std::chrono::seconds(5), [this] { return stopping_ || kicked_; });
      if (stopping_) return;
      kicked_ = false;
    }
    if (Status st = runOnce(); !st.isOk()) logWarn("cannot send deletes to the edges", {{"error", st.message()}});
  }
}

Status EdgeInvalidator::runOnce() {
  auto at = commands_.marker(kMarker);
  uint64_t since = at.isOk() ? *at : log_.lastSeq();
  EventFilter filter;
  filter.types = {event_type::kManifestDelete, event_type::kBlobDelete, event_type::kTagDelete,
                  event_type::kRepositoryDelete, event_type::kTagPush, event_type::kTagMove,
                  event_type::kPolicySet, event_type::kPolicyRemove};
  while (true) {
    auto page = log_.query(filter, since, 500);
    if (!page.isOk()) return page.status();
    std::vector<Edge> edges;
    if (!page->events.empty()) {
      for (auto& e : identity_.edges()) {
        if (!e.credential_hash.empty()) edges.push_back(std::move(e));
      }
    }
    std::vector<EdgeCommandStore::New> batch;  // the page's purges, in one transaction
    bool pushed = false, policies = false;
    for (const Event& ev : page->events) {
      if (ev.type == event_type::kPolicySet || ev.type == event_type::kPolicyRemove) {
        policies = true;  // edges enforce trust policies themselves: they fetch them again
        continue;
      }
      if (ev.type == event_type::kTagPush || ev.type == event_type::kTagMove) {
        pushed = true;  // edges read pushes from their channel (prefetch): wake them
        continue;
      }
      nlohmann::json args = {{"repository", ev.repository}};
      if (ev.repository.empty()) {
        args = {{"digest", ev.target.digest}};  // content the garbage collector removed everywhere
      } else if (ev.type == event_type::kTagDelete) {
        args["reference"] = ev.target.tag;
      } else if (ev.type != event_type::kRepositoryDelete) {
        args["reference"] = ev.target.digest;
      }
      for (const Edge& edge : edges) batch.push_back({edge.name, "purge", args});
    }
    if (policies)
      for (const Edge& edge : edges) batch.push_back({edge.name, "refresh", nlohmann::json::object()});
    WHARF_RETURN_IF_ERROR(commands_.enqueueAll(batch, "system", RealClock::instance().nowMillis()));
    if (pushed) hub_.notifyAll();
    if (!batch.empty()) {
      for (const Edge& edge : edges) hub_.notify(edge.name);
      logInfo("deletes and policy changes sent to the edges", {{"commands", batch.size() / edges.size()}, {"edges", edges.size()},
                                            {"last_seq", page->events.back().seq}});
    }
    if (page->scanned_to > since) {
      since = page->scanned_to;
      WHARF_RETURN_IF_ERROR(commands_.setMarker(kMarker, since));
    }
    if (!page->next) return Status::ok();
  }
}

}  // namespace wharf
