// The TrustStore on PostgreSQL, for several cores sharing one database (beside the
// metadata store's tables). The same contract as the LMDB store (lmdb_trust_store.h):
// files verbatim with their history, an update is one transaction whose every file is
// above its role's current version (kConflict naming the role) or the same file again,
// the change feed numbered in commit order. Tables (component "trust", migrations in
// pg_trust_store.cc):
//
//   trust_files      (gun, role, version, sha256, stored_ms, bytes)  bytes: bytea, as uploaded
//   trust_current    (gun, role, version)
//   trust_keys       (gun, role, sealed)    sealed: bytea, as given
//   trust_changes    (seq, gun, action, version, sha256, ts_ms)
//   trust_change_seq (last_seq)             the last change's seq
//
// A file by checksum is the newest version of the role with those bytes' SHA-256 (an index
// on trust_files; LMDB's trust_checksums table says the same, as versions only go up).
//
// Where LMDB's single writer made a check-then-write atomic: update and deleteGun take an
// advisory lock on the GUN (1501, hashtext(gun)) held to commit, so that two replicas
// publishing the same role at once take turns, and the second sees the first's version
// (and is refused as a stale version is: kConflict). A change takes the next seq by
// incrementing trust_change_seq's one row, locked to commit: seq order is commit order, a
// reader paging by seq never skips a change.
//
// GUNs and roles are compared and sorted bytewise (COLLATE "C"), as LMDB sorts them.
// Text PostgreSQL cannot hold (not UTF-8, or with a NUL byte) is in no row: a read of it
// finds nothing, a write of it is refused (kInvalidArgument).
#pragma once

#include <memory>
#include <vector>

#include "core/trust/trust_store.h"
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

namespace wharf {

// The trust component's migrations, oldest first. Append one to change the schema; never
// edit one that shipped.
const std::vector<PgMigration>& trustMigrations();

// The store over db (its migrations applied first unless the database is current).
Result<std::unique_ptr<TrustStore>> openPgTrustStore(std::shared_ptr<PgPool> db);

}  // namespace wharf
