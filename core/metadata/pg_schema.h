// The PostgreSQL schema of the registry's index, as versioned migrations (applied by the
// core at start and by `wharfctl db migrate`). Append a migration to change it; never edit
// one that shipped.
#pragma once

#include <vector>

#include "shared/store/pg_migrations.h"

namespace wharf {

// The metadata component's migrations, oldest first.
const std::vector<PgMigration>& metadataMigrations();

}  // namespace wharf
