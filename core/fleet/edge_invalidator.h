// EdgeInvalidator: deletes at the core reach every edge. It follows the event log and,
// for each delete, queues a `purge` command (actor "system") for every registered edge,
// whose waiting channel poll wakes at once, so the edge stops serving the content within
// one channel round trip:
//   manifest.delete, blob.delete (repo, digest)  -> purge {repository, reference: digest}
//   tag.delete (repo, tag)                       -> purge {repository, reference: tag}
//   repository.delete (repo)                     -> purge {repository}
//   blob.delete without a repository (the garbage collector removed the content
//   everywhere)                                  -> purge {digest}
// It also wakes every edge's channel after a page with a tag.push or tag.move: edges read
// pushes from their channel to prefetch (see core/api/edges.cc); and after policy.set or
// policy.remove it queues a `refresh` for every edge, which fetches its settings and the
// trust policies it enforces (edge/trust) again.
// A page of events (up to 500) goes out in one transaction. Its place in the log is kept
// with the commands (marker "invalidator"), so deletes made
// while it was stopped (a core restart) are sent when it starts; it starts from the log's
// end the first time. A crash between queueing and saving the place repeats a purge,
// which is harmless.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/auth/identity_store.h"
#include "core/events/event_log.h"
#include "core/fleet/channel_hub.h"
#include "core/fleet/edge_commands.h"

namespace wharf {

class EdgeInvalidator {
 public:
  EdgeInvalidator(EventLog& log, IdentityStore& identity, EdgeCommandStore& commands, ChannelHub& hub)
      : log_(log), identity_(identity), commands_(commands), hub_(hub) {}
  ~EdgeInvalidator() { stop(); }
  void start();
  void stop();
  // Something was committed to the log (the log's commit hook): look now.
  void kick();
  // One pass over what the log has past the saved place (tests; the thread's work).
  Status runOnce();

 private:
  void loop();

  EventLog& log_;
  IdentityStore& identity_;
  EdgeCommandStore& commands_;
  ChannelHub& hub_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  bool kicked_ = false;    // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace wharf
