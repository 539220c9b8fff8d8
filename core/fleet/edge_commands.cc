#include "core/fleet/edge_commands.h"

#include <algorithm>
#include <set>

#include "shared/base/clock.h"
#include "shared/base/json_body.h"
#include "shared/oci/digest.h"
#include "shared/oci/names.h"
#include "shared/store/lmdb.h"

namespace wharf {
namespace {

using nlohmann::json;


// edge \0 bigEndian64(id): one edge's commands are contiguous and in id order.
std::string keyOf(const std::string& edge, uint64_t id) { return edge + '\0' + bigEndian64(id); }
std::string prefixOf(const std::string& edge) { return edge + '\0'; }

Status validateReference(JsonBody& b, bool required) {
  auto ref = b.string("reference", {.required = required, .max = 256, .non_empty = true});
  if (!ref) return b.status();
  if (ref->rfind("sha256:", 0) == 0 || ref->find(':') != std::string::npos) {
    if (auto d = Digest::parse(*ref); !d.isOk()) b.fail("reference", d.status().message());
  } else if (Status st = validateTag(*ref); !st.isOk()) {
    b.fail("reference", st.message());
  }
  return b.status();
}

Status validateRepository(JsonBody& b, bool required) {
  auto repo = b.string("repository", {.required = required, .max = 255, .non_empty = true});
  if (repo) {
    if (Status st = validateRepositoryName(*repo); !st.isOk()) b.fail("repository", st.message());
  }
  return b.status();
}

class LmdbEdgeCommandStore : public EdgeCommandStore {
 public:
  explicit LmdbEdgeCommandStore(std::shared_ptr<LmdbEnv> env) : env_(std::move(env)) {}

  Status init() {
    auto c = env_->openDb("edge_commands");
    if (!c.isOk()) return c.status();
    cmds_ = *c;
    auto m = env_->openDb("edge_command_meta");
    if (!m.isOk()) return m.status();
    meta_ = *m;
    return Status::ok();
  }

  Result<EdgeCommand> enqueue(const std::string& edge, const std::string& kind, const json& args,
                              const std::string& actor, int64_t now_ms) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    uint64_t id = txn->get(meta_, "next_id", &v).isOk() ? fromBigEndian64(v) : 1;
    WHARF_RETURN_IF_ERROR(txn->put(meta_, "next_id", bigEndian64(id + 1)));
    EdgeCommand c;
    c.id = id;
    c.edge = edge;
    c.kind = kind;
    c.args = args;
    c.actor = actor;
    c.created_ms = now_ms;
    WHARF_RETURN_IF_ERROR(txn->put(cmds_, keyOf(edge, id), c.toRecord()));
    WHARF_RETURN_IF_ERROR(pruneFinished(*txn, edge));
    WHARF_RETURN_IF_ERROR(txn->commit());
    return c;
  }

  Status enqueueAll(const std::vector<New>& commands, const std::string& actor, int64_t now_ms) override {
    if (commands.empty()) return Status::ok();
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    uint64_t id = txn->get(meta_, "next_id", &v).isOk() ? fromBigEndian64(v) : 1;
    std::set<std::string> edges;
    for (const auto& n : commands) {
      EdgeCommand c;
      c.id = id++;
      c.edge = n.edge;
      c.kind = n.kind;
      c.args = n.args;
      c.actor = actor;
      c.created_ms = now_ms;
      WHARF_RETURN_IF_ERROR(txn->put(cmds_, keyOf(n.edge, c.id), c.toRecord()));
      edges.insert(n.edge);
    }
    WHARF_RETURN_IF_ERROR(txn->put(meta_, "next_id", bigEndian64(id)));
    for (const auto& e : edges) WHARF_RETURN_IF_ERROR(pruneFinished(*txn, e));
    return txn->commit();
  }

  Result<std::vector<EdgeCommand>> pending(const std::string& edge, uint64_t after, size_t limit) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::vector<EdgeCommand> out;
    std::string prefix = prefixOf(edge);
    Cursor c = txn->cursor(cmds_);
    for (bool ok = c.seek(keyOf(edge, after + 1)); ok && out.size() < limit; ok = c.next()) {
      if (c.key().substr(0, prefix.size()) != prefix) break;
      auto cmd = EdgeCommand::fromRecord(c.value());
      if (!cmd.isOk()) return cmd.status();
      if (!cmd->finished()) out.push_back(std::move(cmd).value());
    }
    WHARF_RETURN_IF_ERROR(c.status());
    return out;
  }

  Status delivered(const std::string& edge, const std::vector<uint64_t>& ids, int64_t now_ms) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    for (uint64_t id : ids) {
      std::string_view v;
      if (!txn->get(cmds_, keyOf(edge, id), &v).isOk()) continue;
      auto cmd = EdgeCommand::fromRecord(v);
      if (!cmd.isOk()) return cmd.status();
      if (cmd->finished()) continue;
      cmd->state = "delivered";
      cmd->delivered_ms = now_ms;
      ++cmd->deliveries;
      WHARF_RETURN_IF_ERROR(txn->put(cmds_, keyOf(edge, id), cmd->toRecord()));
    }
    return txn->commit();
  }

  Result<EdgeCommand> complete(const std::string& edge, uint64_t id, bool ok, const json& result,
                               const std::string& error, int64_t now_ms) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(cmds_, keyOf(edge, id), &v).isOk()) {
      return Status(Code::kNotFound, "edge " + edge + " has no command " + std::to_string(id));
    }
    auto cmd = EdgeCommand::fromRecord(v);
    if (!cmd.isOk()) return cmd.status();
    if (cmd->finished()) return cmd;  // a repeated acknowledgement: the first outcome stands
    cmd->state = ok ? "succeeded" : "failed";
    cmd->done_ms = now_ms;
    cmd->result = ok ? result : json();
    cmd->error = ok ? "" : error;
    WHARF_RETURN_IF_ERROR(txn->put(cmds_, keyOf(edge, id), cmd->toRecord()));
    WHARF_RETURN_IF_ERROR(txn->commit());
    return cmd;
  }

  Result<EdgeCommand> get(const std::string& edge, uint64_t id) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(cmds_, keyOf(edge, id), &v).isOk()) {
      return Status(Code::kNotFound, "edge " + edge + " has no command " + std::to_string(id));
    }
    return EdgeCommand::fromRecord(v);
  }

  Result<std::vector<EdgeCommand>> list(const std::string& edge, size_t limit) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::vector<EdgeCommand> out;
    std::string prefix = prefixOf(edge);
    Cursor c = txn->cursor(cmds_);
    for (bool ok = c.seek(prefix); ok; ok = c.next()) {
      if (c.key().substr(0, prefix.size()) != prefix) break;
      auto cmd = EdgeCommand::fromRecord(c.value());
      if (!cmd.isOk()) return cmd.status();
      out.push_back(std::move(cmd).value());
    }
    WHARF_RETURN_IF_ERROR(c.status());
    std::reverse(out.begin(), out.end());
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  Result<uint64_t> marker(const std::string& name) override {
    auto txn = env_->read();
    if (!txn.isOk()) return txn.status();
    std::string_view v;
    if (!txn->get(meta_, "marker:" + name, &v).isOk()) return Status(Code::kNotFound, "no marker " + name);
    return fromBigEndian64(v);
  }

  Status setMarker(const std::string& name, uint64_t value) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    WHARF_RETURN_IF_ERROR(txn->put(meta_, "marker:" + name, bigEndian64(value)));
    return txn->commit();
  }

  Status dropEdge(const std::string& edge) override {
    auto txn = env_->write();
    if (!txn.isOk()) return txn.status();
    std::vector<std::string> keys;
    std::string prefix = prefixOf(edge);
    {
      Cursor c = txn->cursor(cmds_);
      for (bool ok = c.seek(prefix); ok; ok = c.next()) {
        if (c.key().substr(0, prefix.size()) != prefix) break;
        keys.emplace_back(c.key());
      }
      WHARF_RETURN_IF_ERROR(c.status());
    }
    for (const auto& k : keys) WHARF_RETURN_IF_ERROR(txn->del(cmds_, k));
    return txn->commit();
  }

 private:
  // Keeps the newest kKeepFinished finished commands of an edge (unfinished ones stay).
  Status pruneFinished(WriteTxn& txn, const std::string& edge) {
    std::vector<std::string> finished;
    std::string prefix = prefixOf(edge);
    {
      Cursor c = txn.cursor(cmds_);
      for (bool ok = c.seek(prefix); ok; ok = c.next()) {
        if (c.key().substr(0, prefix.size()) != prefix) break;
        auto cmd = EdgeCommand::fromRecord(c.value());
        if (cmd.isOk() && cmd->finished()) finished.emplace_back(c.key());
      }
      WHARF_RETURN_IF_ERROR(c.status());
    }
    if (finished.size() <= kKeepFinished) return Status::ok();
    for (size_t i = 0; i + kKeepFinished < finished.size(); ++i) WHARF_RETURN_IF_ERROR(txn.del(cmds_, finished[i]));
    return Status::ok();
  }

  std::shared_ptr<LmdbEnv> env_;
  Dbi cmds_ = 0, meta_ = 0;
};

}  // namespace

json EdgeCommand::toJson() const {
  return {{"id", id},
          {"edge", edge},
          {"kind", kind},
          {"args", args},
          {"state", state},
          {"actor", actor},
          {"created_at", rfc3339OrNull(created_ms)},
          {"delivered_at", rfc3339OrNull(delivered_ms)},
          {"done_at", rfc3339OrNull(done_ms)},
          {"deliveries", deliveries},
          {"result", result},
          {"error", error.empty() ? json(nullptr) : json(error)}};
}

json EdgeCommand::toWire() const { return {{"id", id}, {"kind", kind}, {"args", args}}; }

std::string EdgeCommand::toRecord() const {
  return json{{"id", id},
              {"edge", edge},
              {"kind", kind},
              {"args", args},
              {"state", state},
              {"actor", actor},
              {"created_ms", created_ms},
              {"delivered_ms", delivered_ms},
              {"done_ms", done_ms},
              {"deliveries", deliveries},
              {"result", result},
              {"error", error}}
      .dump();
}

Result<EdgeCommand> EdgeCommand::fromRecord(std::string_view text) {
  try {
    json j = json::parse(text);
    EdgeCommand c;
    c.id = j.at("id").get<uint64_t>();
    c.edge = j.at("edge").get<std::string>();
    c.kind = j.at("kind").get<std::string>();
    c.args = j.at("args");
    c.state = j.at("state").get<std::string>();
    c.actor = j.value("actor", "");
    c.created_ms = j.value("created_ms", int64_t{0});
    c.delivered_ms = j.value("delivered_ms", int64_t{0});
    c.done_ms = j.value("done_ms", int64_t{0});
    c.deliveries = j.value("deliveries", uint32_t{0});
    c.result = j.value("result", json());
    c.error = j.value("error", "");
    return c;
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("corrupt edge command record: ") + e.what());
  }
}

Result<json> validateEdgeCommand(const std::string& kind, const json& args) {
  if (!args.is_object()) return Status(Code::kInvalidArgument, "args: expected an object");
  JsonBody b(args, "args");
  json out = json::object();
  if (kind == "purge") {
    bool by_digest = b.has("digest");
    if (by_digest) {
      auto d = b.string("digest", {.required = true, .max = 256});
      if (d) {
        if (auto parsed = Digest::parse(*d); !parsed.isOk()) b.fail("digest", parsed.status().message());
      }
    } else {
      (void)validateRepository(b, true);
      (void)validateReference(b, false);
    }
  } else if (kind == "pin" || kind == "unpin" || kind == "prefetch") {
    (void)validateRepository(b, true);
    (void)validateReference(b, true);
  } else if (kind == "drain") {
    out["retry_after"] = b.integer("retry_after", {.min = 1, .max = 3600}).value_or(60);
  } else if (kind == "inventory") {
    out["top"] = b.integer("top", {.min = 1, .max = 1000}).value_or(20);
  } else if (kind != "resume" && kind != "refresh") {
    return Status(Code::kInvalidArgument,
                  "kind: \"" + kind + "\" is not one of purge, pin, unpin, prefetch, drain, resume, inventory, refresh");
  }
  WHARF_RETURN_IF_ERROR(b.finish());
  for (const char* k : {"repository", "reference", "digest"}) {
    if (args.contains(k)) out[k] = args[k];
  }
  return out;
}

Result<std::unique_ptr<EdgeCommandStore>> openLmdbEdgeCommandStore(std::shared_ptr<LmdbEnv> env) {
  auto store = std::make_unique<LmdbEdgeCommandStore>(std::move(env));
  WHARF_RETURN_IF_ERROR(store->init());
  return std::unique_ptr<EdgeCommandStore>(std::move(store));
}

}  // namespace wharf
