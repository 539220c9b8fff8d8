// The IdentityStore on PostgreSQL, for several cores sharing one database (beside the
// metadata store's tables). The same contract as the LMDB store (lmdb_identity_store.h):
// every write is one transaction, lists come in the same (bytewise) order, a deletion
// takes what hangs off it along. Tables (component "identity", migrations in
// pg_identity_store.cc):
//
//   users (name, email, password_hash, admin, disabled, source, created_ms, tokens_before_s)
//   orgs (name)                          org_members (org, username, role)
//   teams (org, team, description)       team_members (org, team, username)
//   repo_settings (repository, is_public, description)
//   grants (repository, kind, principal, role)
//   access_tokens (id, username, name, secret_hash, scopes, created_ms, expires_ms)
//   audit (seq, time_ms, actor, source, action, object, outcome, detail)
//   audit_seq (last_seq)                 identity_settings (name, value)
//   edges (name, site, settings, join_hash, join_expires_ms, credential_hash, created_by,
//          created_ms, registered_ms, last_seen_ms)
//
// Where LMDB's single writer made a check-then-write atomic, the cores serialize on
// PostgreSQL locks held to commit (see the class in the .cc for which write takes which):
// a user or organization name is claimed under an advisory lock on the name; writes
// within an organization lock its row; the audit sequence is a counter row, so seq order
// is commit order; a join token is consumed by one conditional UPDATE.
//
// Text PostgreSQL cannot hold (not UTF-8, or with a NUL byte) is in no row: a read of it
// finds nothing, a write of it is refused (kInvalidArgument), and audit entries are
// stored with such bytes replaced by U+FFFD (an audit batch is never lost to one entry).
// Names are compared and sorted bytewise (COLLATE "C"), as LMDB sorts them.
#pragma once

#include <memory>
#include <vector>

#include "core/auth/identity_store.h"
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

namespace wharf {

// The identity component's migrations, oldest first. Append one to change the schema;
// never edit one that shipped.
const std::vector<PgMigration>& identityMigrations();

// The store over db (its migrations applied first unless the database is current).
Result<std::unique_ptr<IdentityStore>> openPgIdentityStore(std::shared_ptr<PgPool> db);

}  // namespace wharf
