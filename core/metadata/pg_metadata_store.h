// The MetadataStore on PostgreSQL, for several cores sharing one registry of record
// (`--metadata postgres://...`). The same contract as the LMDB store: every write is
// one transaction, an acknowledged write is committed (and so survives the loss of the
// replica that made it), and garbage collection's stamps order it against pushes by
// commit. Where LMDB has one writer, the cores take advisory locks: a write holds its
// repository's lock (writes to other repositories run beside it) and the collection lock
// shared; beginCollection and each collection batch hold the collection lock alone. Tables (component "metadata", migrations in core/metadata/pg_schema.cc):
//
//   repositories (name)                      blobs (digest, size, created_ms, touched_ms)
//   links (repository, digest)               manifests (repository, digest, media_type, size,
//   manifest_refs (digest, refs)                 subject, artifact_type, created_ms, pushed_ms)
//   tags (repository, tag, digest, pushed_ms) referrers (repository, subject, digest, descriptor)
//   uploads (id, repository, started_ms, owner)  policies (scope, body)   gc_state (epoch_ms)
//
// Names and tags are compared and sorted bytewise (COLLATE "C"), as LMDB sorts them.
//
// Reads of tags and manifest records are cached per core (a manifest GET by tag asks
// PostgreSQL nothing when both are there). A repository's write sends a notification
// in its transaction (channel wharf_metadata, "repo:<token>:<name>"); every core drops
// the repository's entries when it hears it, and the writing core drops its own before
// the write returns, which is once its own notification came back (PostgreSQL has
// then handed it to every listening core). The cache is used only while the
// notification connection is up, and starts empty at each (re)connection.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/metadata/metadata_store.h"
#include "core/metadata/pg_schema.h"
#include "shared/store/pg.h"

namespace wharf {

// The store over db (migrations applied first unless the database is already current).
Result<std::unique_ptr<MetadataStore>> openPgMetadataStore(std::shared_ptr<PgPool> db);

}  // namespace wharf
