// The EdgeCommandStore on PostgreSQL, for several cores sharing one database: the same
// contract as the LMDB store (edge_commands.h, openLmdbEdgeCommandStore). Tables
// (component "edge_commands", migrations in pg_edge_commands.cc):
//
//   edge_commands (id, edge, kind, args, state, actor, created_ms, delivered_ms, done_ms,
//                  deliveries, result, error): args and result as JSON text (read back as
//                  written); ids from the sequence edge_command_ids (CACHE 1)
//   edge_command_markers (name, value): value is the uint64 as a bigint, bit for bit
//
// Where LMDB's single writer made a check-then-write atomic:
// * Ids in commit order, per edge: an edge asks for the commands after the last id it
//   finished, so a command must never become visible below an id the edge already saw.
//   enqueue and enqueueAll take an advisory lock per edge they queue for, (1491,
//   hashtext(edge)), in ascending key order, and only then draw the ids: the commands of
//   one edge are numbered in the order their transactions commit. (Across edges, ids are
//   unique and increasing in the order they are drawn, which nothing depends on.)
// * complete: one conditional UPDATE of the unfinished row; a concurrent acknowledgement
//   of the same command waits for the row, re-checks it finished and changes nothing,
//   then reads the first outcome.
// * delivered: one UPDATE of the unfinished rows (in a transaction, retried on deadlock);
//   pruning the finished commands runs under the edge's lock with the enqueue.
//
// Text PostgreSQL cannot hold (not UTF-8, or with a NUL byte): an edge or marker name is
// in no row (reads find nothing, writes are refused with kInvalidArgument); an outcome's
// error message is stored with such bytes replaced by U+FFFD (an acknowledgement is never
// refused for its message). Edges are compared and sorted bytewise (COLLATE "C").
#pragma once

#include <memory>
#include <vector>

#include "core/fleet/edge_commands.h"
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

namespace wharf {

// The edge_commands component's migrations, oldest first. Append one to change the
// schema; never edit one that shipped.
const std::vector<PgMigration>& edgeCommandMigrations();

// The store over db (its migrations applied first unless the database is current).
Result<std::unique_ptr<EdgeCommandStore>> openPgEdgeCommandStore(std::shared_ptr<PgPool> db);

}  // namespace wharf
