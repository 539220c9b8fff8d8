// The embedded MetadataStore backend on LMDB.
#pragma once

#include <memory>
#include <string>

#include "core/metadata/metadata_store.h"
#include "shared/store/lmdb.h"

namespace wharf {

// Layout version of the LMDB databases below; stored in meta["schema"]. A store of
// version 1 is migrated at open (tags gain their push time); any other version is
// refused (a migration is needed).
//
//   meta          "schema"                         -> "2"
//   repos         <repo>                           -> {"created":ms}
//   blobs         <digest>                         -> {"size":n,"created":ms,"touched":ms}   all content
//   links         <repo> \0 <digest>               -> ""                        layer/config links
//   manifests     <repo> \0 <digest>               -> {"mediaType","size","subject","artifactType","created","pushed"}
//   manifest_refs <digest>                         -> ["<digest>", ...]          config, layers, children
//   tags          <repo> \0 <tag>                  -> "<digest> <pushed ms>"
//   referrers     <repo> \0 <subject> \0 <digest>  -> descriptor JSON
//   uploads       <uuid>                           -> {"repo","started"}
//   policies      <scope>                          -> Policy JSON (retention, immutable tags)
constexpr int kMetadataSchemaVersion = 2;

struct LmdbMetadataOptions {
  uint64_t map_size = 64ull << 30;
  bool durable = true;
};

// Opens the environment at path (a file) and the store in it.
Result<std::unique_ptr<MetadataStore>> openLmdbMetadataStore(const std::string& path, const LmdbMetadataOptions& options);
// Opens the environment only, for several stores to share (see IdentityStore).
Result<std::shared_ptr<LmdbEnv>> openMetadataEnv(const std::string& path, const LmdbMetadataOptions& options);
// The store in an environment opened by openMetadataEnv; checks the schema version.
Result<std::unique_ptr<MetadataStore>> openLmdbMetadataStore(std::shared_ptr<LmdbEnv> env);

}  // namespace wharf
