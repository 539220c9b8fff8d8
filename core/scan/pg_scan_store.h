// The ScanStore on PostgreSQL, for several cores sharing one database (beside the
// metadata store's tables). The same contract as the LMDB store (lmdb_scan_store.h):
// documents round-trip exactly (kept as CBOR, as LMDB keeps them), a completed image
// result is kept in its three parts, inventories page in bytewise digest order, the
// vulnerability database switches generations atomically. Tables (component "scans",
// migrations in pg_scan_store.cc):
//
//   scan_layers      (digest, doc)          doc: CBOR of layerScanToJson
//   scan_images      (digest, doc, findings_key, inventory, match)
//                    doc: CBOR of the result, of a completed one all but its packages and
//                    match; findings_key, inventory (repository, media type, OS, packages:
//                    the LMDB store's encoding without the findings key) and match (CBOR)
//                    are set together for a completed result, NULL otherwise
//   scan_db          (generation, meta, last_generation): the current generation and its
//                    metadata (CBOR), the last generation number handed out
//   scan_generations (generation, state): generations begun and not committed
//                    ("importing"), and generations whose advisories are being deleted
//                    ("dropping")
//   scan_advisories  (generation, id, osv)  the OSV JSON text as given
//   scan_state       (key, value)           value: CBOR
//
// Documents and the inventory are bytea (they may hold any bytes: names read from layers
// are not always UTF-8); advisories are text (JSON text, as LMDB keeps it). A database
// generation is rows of scan_advisories, one per advisory (hundreds of MB for a full OSV
// feed, never one value); forEachAdvisory reads them through a cursor of one snapshot.
//
// Several replicas: a generation number is never handed out twice (scan_db's counter,
// under its row lock). One import at a time, the latest: beginGeneration supersedes every
// import begun before it and not committed (its rows are dropped; that import's next
// addAdvisories or its commitGeneration is refused with kConflict, so it never publishes a
// part of a database). commitGeneration switches only a generation that is being imported
// (kConflict otherwise; committing the current one again replaces its metadata). At open,
// the deletions left unfinished are finished; an import left by a crash is dropped by the
// next begin (not at open: it may be another replica's, still running).
//
// Digests and keys are compared and sorted bytewise (COLLATE "C"), as LMDB sorts them.
// Text PostgreSQL cannot hold (not UTF-8, or with a NUL byte) is in no row: a read of it
// finds nothing, a write of it is refused (kInvalidArgument), as an empty digest is.
#pragma once

#include <memory>
#include <vector>

#include "core/scan/scan_store.h"
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

namespace wharf {

// The scans component's migrations, oldest first. Append one to change the schema; never
// edit one that shipped.
const std::vector<PgMigration>& scanMigrations();

// The store over db (its migrations applied first unless the database is current).
Result<std::unique_ptr<ScanStore>> openPgScanStore(std::shared_ptr<PgPool> db);

}  // namespace wharf
