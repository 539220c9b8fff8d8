// SharedDocument: one small document kept whole (the token signing keys, the revocation
// list), changed by read-modify-write that no other writer interleaves with, and heard
// of by every process that shares it.
//
//   file        one file (written durably, mode 0600); one process
//   LMDB        one record of an environment; one process
//   PostgreSQL  one row of table documents (component "documents"), changed under an
//               advisory lock held to commit; each change notifies channel
//               "wharf_documents" with the document's name, so every replica reloads.
//               Optionally sealed (AES-256-GCM under a 32-byte key, bound to the name):
//               the database then never holds it in the clear.
//
// Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/base/status.h"
#include "shared/store/lmdb.h"
#include "shared/store/pg.h"
#include "shared/store/pg_migrations.h"

namespace wharf {

class SharedDocument {
 public:
  virtual ~SharedDocument() = default;
  // Replaces the document with change(current) (current: nullopt when there is none
  // yet) in one step; returns what is stored afterwards. change's error aborts it.
  virtual Result<std::string> update(
      const std::function<Result<std::string>(const std::optional<std::string>& current)>& change) = 0;
  // The stored document (nullopt: none yet).
  virtual Result<std::optional<std::string>> read() = 0;
  // Where it is, for messages.
  virtual std::string describe() const = 0;
  // Another process changed it: changed() runs on a thread of the document's. Documents
  // with one writer never call it. Set once, before the first change.
  virtual void watch(std::function<void()> changed) { (void)changed; }
};

Result<std::unique_ptr<SharedDocument>> openFileDocument(const std::string& path);
Result<std::unique_ptr<SharedDocument>> openLmdbDocument(std::shared_ptr<LmdbEnv> env, const std::string& db,
                                                         const std::string& key);
// sealing_key: 32 bytes to seal the document with, or "" to keep it in the clear.
Result<std::unique_ptr<SharedDocument>> openPgDocument(std::shared_ptr<PgPool> db, const std::string& name,
                                                       const std::string& sealing_key = "");
// The "documents" component's migrations (wharfctl db migrate).
const std::vector<PgMigration>& documentMigrations();

}  // namespace wharf
