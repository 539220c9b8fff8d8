// wharfctl db: the scale-out database, reached directly (not through a core's API):
//
//   wharfctl db migrate --metadata postgres://... [--dry-run]
//
// applies the schema migrations a core would apply at start (or lists them), component by
// component, so that an operator can migrate before rolling out new cores.
#include <cstdio>

#include "core/cli/cli.h"
#include "core/auth/pg_identity_store.h"
#include "core/events/event_store.h"
#include "core/events/webhooks.h"
#include "core/fleet/pg_edge_commands.h"
#include "core/jobs/job_store.h"
#include "core/fleet/pg_usage_store.h"
#include "core/scan/pg_scan_store.h"
#include "core/trust/pg_trust_store.h"
#include "core/metadata/pg_schema.h"
#include "shared/store/pg.h"
#include "shared/store/shared_document.h"

namespace wharf::cli {

const char* kDbHelp = R"(Usage: wharfctl db migrate --metadata postgres://USER:PASSWORD@HOST:5432/DB [--dry-run]

Applies the schema migrations of the stores a core keeps in PostgreSQL (the registry
index "metadata", the event log "events", users and access "identity", the token signing
keys and the revocation list "documents", fleet reports "usage", edge commands "edge_commands", scan results
"scans", trust metadata "trust", jobs and schedules "jobs") to a database:
what wharf-core applies at start with --metadata. With --dry-run, lists what it would
apply. Prints each component's version before and after. PG* environment variables and
~/.pgpass apply.
)";

int db(const Args& a) {
  if (need(a, 1, "db subcommand (migrate)") != "migrate") die("unknown db subcommand (see wharfctl db --help)", 2);
  std::string url = a.get("metadata");
  if (url.empty()) die("--metadata postgres://... is required", 2);
  auto pool = PgPool::open(url, 1);
  if (!pool.isOk()) die(pool.status().message());
  const std::pair<const char*, const std::vector<PgMigration>*> components[] = {
      {"metadata", &metadataMigrations()},
      {"events", &eventMigrations()},
      {"identity", &identityMigrations()},
      {"documents", &documentMigrations()},
      {"usage", &usageMigrations()},
      {"edge_commands", &edgeCommandMigrations()},
      {"scans", &scanMigrations()},
      {"trust", &trustMigrations()},
      {"jobs", &jobMigrations()},
      {"webhooks", &webhookMigrations()}};
  for (const auto& [component, all] : components) {
    auto plan = a.has("dry-run") ? planMigrations(**pool, component, *all) : applyMigrations(**pool, component, *all);
    if (!plan.isOk()) die(plan.status().message());
    int after = plan->pending.empty() ? plan->current : plan->pending.back()->version;
    std::printf("%s schema at %s: version %d%s\n", component, redactedUrl(url).c_str(), plan->current,
                plan->pending.empty() ? " (current)" : "");
    for (const PgMigration* m : plan->pending) {
      std::printf("  %s %d: %s\n", a.has("dry-run") ? "would apply" : "applied", m->version, m->description.c_str());
    }
    if (!a.has("dry-run") && !plan->pending.empty()) std::printf("  now at version %d\n", after);
  }
  return 0;
}

}  // namespace wharf::cli
