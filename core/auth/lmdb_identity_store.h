// The embedded IdentityStore backend, in the same LMDB environment as the registry
// metadata (schema version: core/metadata/lmdb_metadata_store.h). Databases:
//
//   users         <name>                        -> User JSON (with password hash)
//   orgs          <org>                         -> {"created":ms}
//   org_members   <org> \0 <user>               -> "owner" | "member"
//   teams         <org> \0 <team>               -> {"description"}
//   team_members  <org> \0 <team> \0 <user>     -> ""
//   repo_settings <repo>                        -> {"public":bool,"description"}
//   grants        <repo> \0 <kind> \0 <principal> -> "read" | "write" | "admin"
//   tokens        <id>                          -> AccessToken JSON (secret as sha256)
//   audit         <seq, 8 bytes big-endian>     -> AuditEntry JSON
//   settings      <key>                         -> JSON
//   edges         <name>                        -> Edge JSON (join token and credential as sha256)
//   edge_secrets  <sha256 hex of a join token or credential> -> <edge name>
//
// Databases are only ever added, never changed in meaning: a store written before
// one existed opens with it empty, and older builds ignore it, so an addition does not
// change the schema version (edges and edge_secrets were added this way).
#pragma once

#include <memory>

#include "core/auth/identity_store.h"
#include "shared/store/lmdb.h"

namespace wharf {

Result<std::unique_ptr<IdentityStore>> openLmdbIdentityStore(std::shared_ptr<LmdbEnv> env);

}  // namespace wharf
