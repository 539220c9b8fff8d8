#include "core/fleet/pg_edge_commands.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace wharf {

const std::vector<PgMigration>& edgeCommandMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "commands queued for edges with their outcomes, and named markers",
       R"sql(
CREATE SEQUENCE edge_command_ids AS bigint START 1 CACHE 1;
CREATE TABLE edge_commands (id bigint PRIMARY KEY, edge text COLLATE "C" NOT NULL, kind text NOT NULL,
                            args text NOT NULL, state text NOT NULL, actor text NOT NULL,
                            created_ms bigint NOT NULL, delivered_ms bigint NOT NULL, done_ms bigint NOT NULL,
                            deliveries bigint NOT NULL, result text NOT NULL, error text NOT NULL);
CREATE UNIQUE INDEX edge_commands_by_edge ON edge_commands (edge, id);
CREATE INDEX edge_commands_unfinished ON edge_commands (edge, id) WHERE state NOT IN ('succeeded', 'failed');
CREATE INDEX edge_commands_finished ON edge_commands (edge, id) WHERE state IN ('succeeded', 'failed');
CREATE TABLE edge_command_markers (name text COLLATE "C" PRIMARY KEY, value bigint NOT NULL);
)sql"},
  };
  return all;
}

// The helpers' own namespace: wharf_core_lib is a unity build (sources batched into one
// translation unit), where anonymous namespaces of different files are one.
namespace pg_edge_commands {
namespace {

using nlohmann::json;

constexpr int kEdgeLock = 1491;  // advisory lock class: (1491, hashtext(edge))
constexpr uint64_t kMaxId = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

constexpr const char* kColumns =
    "id, edge, kind, args, state, actor, created_ms, delivered_ms, done_ms, deliveries, result, error";

Status unstorable() {
  return Status(Code::kInvalidArgument, "a name that is not UTF-8 text (or that holds a NUL byte) cannot be stored");
}

std::string num(int64_t v) { return std::to_string(v); }
std::string limitOf(size_t n) { return std::to_string(std::min<uint64_t>(n, kMaxId)); }

// JSON as stored: control characters escaped (a NUL is "\u0000"), never a throw on bytes
// that are not UTF-8.
std::string jsonText(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Status notFound(const std::string& edge, uint64_t id) {
  return Status(Code::kNotFound, "edge " + edge + " has no command " + std::to_string(id));
}

Result<EdgeCommand> commandOf(const PgResult& r, int i) {
  EdgeCommand c;
  c.id = static_cast<uint64_t>(r.integer(i, 0));
  c.edge = std::string(r.text(i, 1));
  c.kind = std::string(r.text(i, 2));
  json args = json::parse(r.text(i, 3), nullptr, false);
  json result = json::parse(r.text(i, 10), nullptr, false);
  if (args.is_discarded() || result.is_discarded()) {
    return Status(Code::kInternal, "corrupt edge command record: command " + std::to_string(c.id) + " has bad JSON");
  }
  c.args = std::move(args);
  c.state = std::string(r.text(i, 4));
  c.actor = std::string(r.text(i, 5));
  c.created_ms = r.integer(i, 6);
  c.delivered_ms = r.integer(i, 7);
  c.done_ms = r.integer(i, 8);
  c.deliveries = static_cast<uint32_t>(std::clamp<int64_t>(r.integer(i, 9), 0, UINT32_MAX));
  c.result = std::move(result);
  c.error = std::string(r.text(i, 11));
  return c;
}

// The edges' locks (text[] of names), in ascending key order: two transactions queueing
// for the same edges take them in the same order. Held to commit.
Status lockEdges(PgConn& c, const std::string& edges) {
  return c
      .exec("SELECT pg_advisory_xact_lock(" + std::to_string(kEdgeLock) +
                ", h) FROM (SELECT DISTINCT hashtext(e) AS h FROM unnest($1::text[]) AS e ORDER BY h) AS locks",
            {edges})
      .status();
}

// Keeps the newest kKeepFinished finished commands of each edge (text[] of names);
// unfinished ones stay. Under the edges' locks.
Status pruneFinished(PgConn& c, const std::string& edges) {
  static const std::string sql =
      "DELETE FROM edge_commands AS c USING (SELECT e.edge, (SELECT f.id FROM edge_commands AS f "
      "WHERE f.edge = e.edge AND f.state IN ('succeeded', 'failed') ORDER BY f.id DESC OFFSET " +
      std::to_string(EdgeCommandStore::kKeepFinished) +
      " LIMIT 1) AS cut FROM unnest($1::text[]) AS e(edge)) AS k "
      "WHERE c.edge = k.edge AND c.state IN ('succeeded', 'failed') AND c.id <= k.cut";
  return c.exec(sql, {edges}).status();
}

class PgEdgeCommandStore final : public EdgeCommandStore {
 public:
  explicit PgEdgeCommandStore(std::shared_ptr<PgPool> db) : db_(std::move(db)) {}

  Result<EdgeCommand> enqueue(const std::string& edge, const std::string& kind, const json& args,
                              const std::string& actor, int64_t now_ms) override {
    if (!pgStorable(edge) || !pgStorable(kind) || !pgStorable(actor)) return unstorable();
    EdgeCommand c;
    c.edge = edge;
    c.kind = kind;
    c.args = args;
    c.actor = actor;
    c.created_ms = now_ms;
    const std::string edges = pgArray({edge});
    Status st = db_->transact([&](PgConn& conn) -> Status {
      // The id is drawn under the edge's lock: the edge's commands are numbered in commit order.
      WHARF_RETURN_IF_ERROR(lockEdges(conn, edges));
      auto r = conn.exec(std::string("INSERT INTO edge_commands (") + kColumns +
                             ") VALUES (nextval('edge_command_ids'), $1, $2, $3, 'queued', $4, $5::bigint, 0, 0, 0, "
                             "'null', '') RETURNING id",
                         {edge, kind, jsonText(args), actor, num(now_ms)});
      if (!r.isOk()) return r.status();
      if (r->rows() != 1) return Status(Code::kInternal, "the command was not queued");
      c.id = static_cast<uint64_t>(r->integer(0, 0));
      return pruneFinished(conn, edges);
    });
    if (!st.isOk()) return st;
    return c;
  }

  Status enqueueAll(const std::vector<New>& commands, const std::string& actor, int64_t now_ms) override {
    if (commands.empty()) return Status::ok();
    if (!pgStorable(actor)) return unstorable();
    std::vector<std::string> edges, kinds, args;
    std::set<std::string> distinct;
    for (const auto& n : commands) {
      if (!pgStorable(n.edge) || !pgStorable(n.kind)) return unstorable();
      edges.push_back(n.edge);
      kinds.push_back(n.kind);
      args.push_back(jsonText(n.args));
      distinct.insert(n.edge);
    }
    const std::string distinct_edges = pgArray(std::vector<std::string>(distinct.begin(), distinct.end()));
    return db_->transact([&](PgConn& conn) -> Status {
      WHARF_RETURN_IF_ERROR(lockEdges(conn, distinct_edges));
      // Ids drawn after the locks, given in the batch's order.
      auto drawn = conn.exec("SELECT nextval('edge_command_ids') FROM generate_series(1, $1::bigint)",
                             {num(static_cast<int64_t>(commands.size()))});
      if (!drawn.isOk()) return drawn.status();
      if (drawn->rows() != static_cast<int>(commands.size())) return Status(Code::kInternal, "too few command ids");
      std::vector<int64_t> ids;
      for (int i = 0; i < drawn->rows(); ++i) ids.push_back(drawn->integer(i, 0));
      std::sort(ids.begin(), ids.end());
      std::vector<std::string> id_texts;
      for (int64_t id : ids) id_texts.push_back(num(id));
      WHARF_RETURN_IF_ERROR(conn.exec(std::string("INSERT INTO edge_commands (") + kColumns +
                                          ") SELECT n.id, n.edge, n.kind, n.args, 'queued', $5::text, $6::bigint, 0, "
                                          "0, 0, 'null', '' FROM unnest($1::bigint[], $2::text[], $3::text[], "
                                          "$4::text[]) AS n(id, edge, kind, args)",
                                      {pgArray(id_texts), pgArray(edges), pgArray(kinds), pgArray(args), actor,
                                       num(now_ms)})
                                .status());
      return pruneFinished(conn, distinct_edges);
    });
  }

  Result<std::vector<EdgeCommand>> pending(const std::string& edge, uint64_t after, size_t limit) override {
    std::vector<EdgeCommand> out;
    if (!pgStorable(edge) || after >= kMaxId) return out;  // no id above
    auto r = db_->query(std::string("SELECT ") + kColumns +
                            " FROM edge_commands WHERE edge = $1 AND id > $2::bigint "
                            "AND state NOT IN ('succeeded', 'failed') ORDER BY id LIMIT $3::bigint",
                        {edge, num(static_cast<int64_t>(after)), limitOf(limit)});
    return commands(r);
  }

  Status delivered(const std::string& edge, const std::vector<uint64_t>& ids, int64_t now_ms) override {
    if (!pgStorable(edge)) return Status::ok();  // no command of it: nothing to mark
    std::vector<std::string> id_texts;
    for (uint64_t id : ids)
      if (id <= kMaxId) id_texts.push_back(num(static_cast<int64_t>(id)));
    if (id_texts.empty()) return Status::ok();
    // An id given twice counts two deliveries, as LMDB's loop counts them. A transaction:
    // retried when two deliveries of the same commands lock their rows in another order.
    return db_->transact([&](PgConn& conn) -> Status {
      return conn
          .exec("UPDATE edge_commands AS c SET state = 'delivered', delivered_ms = $2::bigint, "
                "deliveries = c.deliveries + d.n FROM (SELECT id, count(*) AS n FROM unnest($3::bigint[]) AS id "
                "GROUP BY id) AS d WHERE c.edge = $1 AND c.id = d.id AND c.state NOT IN ('succeeded', 'failed')",
                {edge, num(now_ms), pgArray(id_texts)})
          .status();
    });
  }

  Result<EdgeCommand> complete(const std::string& edge, uint64_t id, bool ok, const json& result,
                               const std::string& error, int64_t now_ms) override {
    if (!pgStorable(edge) || id > kMaxId) return notFound(edge, id);
    // Only an unfinished command takes the outcome: a concurrent acknowledgement waits for
    // the row, finds it finished, updates nothing and reads the first outcome below.
    auto r = db_->query(std::string("UPDATE edge_commands SET state = $3, done_ms = $4::bigint, result = $5, error = $6 "
                                    "WHERE edge = $1 AND id = $2::bigint AND state NOT IN ('succeeded', 'failed') "
                                    "RETURNING ") +
                            kColumns,
                        {edge, num(static_cast<int64_t>(id)), std::string(ok ? "succeeded" : "failed"), num(now_ms),
                         ok ? jsonText(result) : std::string("null"), ok ? std::string() : pgStorableText(error)});
    if (!r.isOk()) return r.status();
    if (r->rows() == 1) return commandOf(*r, 0);
    // Finished already (a repeated acknowledgement: the first outcome stands), or unknown.
    return get(edge, id);
  }

  Result<EdgeCommand> get(const std::string& edge, uint64_t id) override {
    if (!pgStorable(edge) || id > kMaxId) return notFound(edge, id);
    auto r = db_->query(std::string("SELECT ") + kColumns + " FROM edge_commands WHERE edge = $1 AND id = $2::bigint",
                        {edge, num(static_cast<int64_t>(id))});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return notFound(edge, id);
    return commandOf(*r, 0);
  }

  Result<std::vector<EdgeCommand>> list(const std::string& edge, size_t limit) override {
    if (!pgStorable(edge)) return std::vector<EdgeCommand>{};
    auto r = db_->query(std::string("SELECT ") + kColumns +
                            " FROM edge_commands WHERE edge = $1 ORDER BY id DESC LIMIT $2::bigint",
                        {edge, limitOf(limit)});
    return commands(r);
  }

  Status dropEdge(const std::string& edge) override {
    if (!pgStorable(edge)) return Status::ok();
    return db_->query("DELETE FROM edge_commands WHERE edge = $1", {edge}).status();
  }

  Result<uint64_t> marker(const std::string& name) override {
    if (!pgStorable(name)) return Status(Code::kNotFound, "no marker " + name);
    auto r = db_->query("SELECT value FROM edge_command_markers WHERE name = $1", {name});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return Status(Code::kNotFound, "no marker " + name);
    return static_cast<uint64_t>(r->integer(0, 0));  // the bigint's bits: every uint64 round-trips
  }

  Status setMarker(const std::string& name, uint64_t value) override {
    if (!pgStorable(name)) return unstorable();
    return db_
        ->query("INSERT INTO edge_command_markers (name, value) VALUES ($1, $2::bigint) "
                "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                {name, num(static_cast<int64_t>(value))})
        .status();
  }

 private:
  static Result<std::vector<EdgeCommand>> commands(Result<PgResult>& r) {
    if (!r.isOk()) return r.status();
    std::vector<EdgeCommand> out;
    out.reserve(static_cast<size_t>(r->rows()));
    for (int i = 0; i < r->rows(); ++i) {
      auto c = commandOf(*r, i);
      if (!c.isOk()) return c.status();
      out.push_back(std::move(c).value());
    }
    return out;
  }

  std::shared_ptr<PgPool> db_;
};

}  // namespace
}  // namespace pg_edge_commands

Result<std::unique_ptr<EdgeCommandStore>> openPgEdgeCommandStore(std::shared_ptr<PgPool> db) {
  auto applied = applyMigrations(*db, "edge_commands", edgeCommandMigrations());
  if (!applied.isOk()) return applied.status();
  return std::unique_ptr<EdgeCommandStore>(std::make_unique<pg_edge_commands::PgEdgeCommandStore>(std::move(db)));
}

}  // namespace wharf
