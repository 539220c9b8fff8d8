#include "shared/store/pg_migrations.h"

#include "shared/base/log.h"

namespace wharf {
namespace {

constexpr const char* kSchemaTable =
    "CREATE TABLE IF NOT EXISTS wharf_schema (component text NOT NULL, version int NOT NULL, description text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))";
// One lock for every migration of every component (pg_advisory_xact_lock's key).
constexpr const char* kLockKey = "7401532907";

Result<int> currentVersion(PgConn& c, const std::string& component, const std::vector<PgMigration>& all) {
  auto r = c.exec("SELECT coalesce(max(version), 0) FROM wharf_schema WHERE component = $1", {component});
  if (!r.isOk()) return r.status();
  int version = static_cast<int>(r->integer(0, 0));
  int known = all.empty() ? 0 : all.back().version;
  if (version > known) {
    return Status(Code::kCorruption, "the " + component + " schema in the database is at version " +
                                         std::to_string(version) + ", this build knows up to " + std::to_string(known) +
                                         ": run a newer wharf-core");
  }
  return version;
}

PgMigrationPlan planOf(int current, const std::vector<PgMigration>& all) {
  PgMigrationPlan plan;
  plan.current = current;
  for (const auto& m : all)
    if (m.version > current) plan.pending.push_back(&m);
  return plan;
}

}  // namespace

Result<PgMigrationPlan> planMigrations(PgPool& db, const std::string& component, const std::vector<PgMigration>& all) {
  PgMigrationPlan plan;
  Status st = db.transact(
      [&](PgConn& c) -> Status {
        auto exists = c.exec("SELECT to_regclass('wharf_schema') IS NOT NULL");
        if (!exists.isOk()) return exists.status();
        if (!exists->boolean(0, 0)) {
          plan = planOf(0, all);
          return Status::ok();
        }
        auto v = currentVersion(c, component, all);
        if (!v.isOk()) return v.status();
        plan = planOf(*v, all);
        return Status::ok();
      });
  if (!st.isOk()) return st;
  return plan;
}

Result<PgMigrationPlan> applyMigrations(PgPool& db, const std::string& component, const std::vector<PgMigration>& all) {
  PgMigrationPlan done;
  Status st = db.transact(
      [&](PgConn& c) -> Status {
        WHARF_RETURN_IF_ERROR(c.exec(std::string("SELECT pg_advisory_xact_lock(") + kLockKey + ")").status());
        WHARF_RETURN_IF_ERROR(c.exec(kSchemaTable).status());
        auto v = currentVersion(c, component, all);
        if (!v.isOk()) return v.status();
        done = planOf(*v, all);
        for (const PgMigration* m : done.pending) {
          WHARF_RETURN_IF_ERROR(c.exec(m->sql).status());
          WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO wharf_schema (component, version, description) VALUES ($1, $2, $3)",
                                       {component, std::to_string(m->version), m->description})
                                    .status());
          logInfo("schema migration applied",
                  {{"component", component}, {"version", m->version}, {"description", m->description}});
        }
        return Status::ok();
      });
  if (!st.isOk()) return st;
  return done;
}

}  // namespace wharf
