// Versioned schema migrations for the PostgreSQL stores: each component (the metadata
// store, and the stores that follow it) lists its migrations in order; the core applies
// the missing ones at start, one transaction each under an advisory lock (replicas
// starting together apply each once), and records them in wharf_schema. A database
// newer than the binary (a version it does not know) is refused.
#pragma once

#include <string>
#include <vector>

#include "shared/base/status.h"
#include "shared/store/pg.h"

namespace wharf {

struct PgMigration {
  int version;
  std::string description;
  std::string sql;  // one or more statements
};

struct PgMigrationPlan {
  int current = 0;                     // the version the database has
  std::vector<const PgMigration*> pending;  // what applying would run, in order
};

// What applying the component's migrations would do (wharfctl db migrate --dry-run).
Result<PgMigrationPlan> planMigrations(PgPool& db, const std::string& component, const std::vector<PgMigration>& all);
// Applies what is pending; returns the plan it carried out.
Result<PgMigrationPlan> applyMigrations(PgPool& db, const std::string& component, const std::vector<PgMigration>& all);

}  // namespace wharf
