// Commands for edges: what an administrator asks an edge to do (purge, pin, drain, ...),
// queued at the core until the edge takes it through its channel, and kept with its
// outcome for review (`wharfctl edge cmd ls NAME`).
//
// Delivery is exactly once per command id: the edge asks for the commands after the last
// id it finished (the channel's `after`), runs them in id order, records each outcome in
// its own journal before acknowledging it, and acknowledges again after a restart until
// the core has the outcome. The core keeps the first outcome it is told (repeats are
// ignored), so a command never runs twice because a reply or an acknowledgement was lost.
//
// States: queued -> delivered (sent on the channel at least once) -> succeeded | failed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/base/status.h"

namespace wharf {

class LmdbEnv;

struct EdgeCommand {
  uint64_t id = 0;
  std::string edge;
  std::string kind;  // see validateEdgeCommand
  nlohmann::json args = nlohmann::json::object();
  std::string state = "queued";
  std::string actor;  // who asked ("system" for the core itself: deletes, revocations)
  int64_t created_ms = 0, delivered_ms = 0, done_ms = 0;
  uint32_t deliveries = 0;  // times it went down the channel
  nlohmann::json result;    // what the edge answered (succeeded)
  std::string error;        // why it failed

  bool finished() const { return state == "succeeded" || state == "failed"; }
  // Everything, for administrators: {"id","edge","kind","args","state","actor","created_at",...}
  nlohmann::json toJson() const;
  // What goes down the channel: {"id","kind","args"}.
  nlohmann::json toWire() const;
  std::string toRecord() const;
  static Result<EdgeCommand> fromRecord(std::string_view text);
};

// The kinds and their arguments (kInvalidArgument naming the problem otherwise):
//   purge     {"repository"} | {"repository","reference"} | {"digest"}: drop a repository's
//             tags, links and the content no other repository uses; one image; or one digest
//   pin       {"repository","reference"}: the image is never evicted, and is fetched
//             (with the edge's own pull credential) when the edge does not hold all of it
//   prefetch  {"repository","reference"}: fetch the image now (outside any prefetch
//             window, at the prefetch rate); the outcome comes when it is fetched
//   unpin     {"repository","reference"}
//   drain     {"retry_after"?: seconds, 1..3600, default 60}: serve 503 + Retry-After
//   resume    {}: serve again
//   inventory {"top"?: 1..1000, default 20}: top repositories and images by bytes, pins
//   refresh   {}: fetch keys and settings now (sent when an administrator changes them)
// Returns the arguments in canonical form (defaults filled in).
Result<nlohmann::json> validateEdgeCommand(const std::string& kind, const nlohmann::json& args);

class EdgeCommandStore {
 public:
  virtual ~EdgeCommandStore() = default;
  // Queues a command (kind and args already validated).
  virtual Result<EdgeCommand> enqueue(const std::string& edge, const std::string& kind, const nlohmann::json& args,
                                      const std::string& actor, int64_t now_ms) = 0;
  // Many at once, in one transaction (the invalidator's purges for every edge).
  struct New {
    std::string edge, kind;
    nlohmann::json args;
  };
  virtual Status enqueueAll(const std::vector<New>& commands, const std::string& actor, int64_t now_ms) = 0;
  // Unfinished commands of an edge with an id above after, oldest first, at most limit.
  virtual Result<std::vector<EdgeCommand>> pending(const std::string& edge, uint64_t after, size_t limit) = 0;
  // Marks them delivered (counts the delivery).
  virtual Status delivered(const std::string& edge, const std::vector<uint64_t>& ids, int64_t now_ms) = 0;
  // Records the outcome; a repeat keeps the first one. kNotFound for an unknown id.
  virtual Result<EdgeCommand> complete(const std::string& edge, uint64_t id, bool ok, const nlohmann::json& result,
                                       const std::string& error, int64_t now_ms) = 0;
  virtual Result<EdgeCommand> get(const std::string& edge, uint64_t id) = 0;  // kNotFound
  // The newest commands of an edge first, at most limit.
  virtual Result<std::vector<EdgeCommand>> list(const std::string& edge, size_t limit) = 0;
  // Forgets an edge's commands (the edge was removed).
  virtual Status dropEdge(const std::string& edge) = 0;
  // A named position kept with the commands (the invalidator's place in the event log).
  virtual Result<uint64_t> marker(const std::string& name) = 0;  // kNotFound before the first set
  virtual Status setMarker(const std::string& name, uint64_t value) = 0;

  // Finished commands kept per edge; older ones are dropped as new ones are queued.
  static constexpr size_t kKeepFinished = 500;
};

// In meta.lmdb, beside the edges themselves.
Result<std::unique_ptr<EdgeCommandStore>> openLmdbEdgeCommandStore(std::shared_ptr<LmdbEnv> env);

}  // namespace wharf
