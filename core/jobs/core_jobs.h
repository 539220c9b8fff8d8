// The core's job kinds and the schedules its configuration asks for.
//
//   upload-purge  {"max_age": "24h"}  removes uploads untouched for longer than max_age
//                                     (Registry::purgeUploads); exclusive
//   ldap-sync     {}                  syncs users and mapped teams from the configured
//                                     directory (LdapDirectory::sync); exclusive
//   sleep         {"seconds": 5, "fail": "why"}  test only: registered when the
//                                     environment has WHARF_TEST_JOBS=1; sleeps in 50 ms
//                                     steps (progress, a log line each second), honours
//                                     cancel, fails with "fail" when given
#pragma once

#include <string>

#include "core/auth/auth_service.h"
#include "core/auth/identity_store.h"
#include "core/jobs/job_runner.h"
#include "core/jobs/scheduler.h"
#include "core/registry/registry.h"
#include "shared/base/clock.h"

namespace wharf {

// auth may be null (--auth none): ldap-sync then only writes the identity store.
void registerCoreJobKinds(JobRunner& runner, Registry& registry, IdentityStore& identity, AuthService* auth,
                          Clock& clock, bool test_kinds);

// Brings the configuration's schedules in step (Scheduler::ensureDefault):
//   upload-purge  "@every <upload_purge_interval>", params {"max_age": upload_purge_after}
//   ldap-sync     "@every <the directory's sync interval>", enabled while a directory
//                 is configured and enabled with a sync interval
// Called at start and whenever the directory settings change.
Status ensureDefaultSchedules(Scheduler& scheduler, IdentityStore& identity, int64_t upload_purge_interval_ms,
                              int64_t upload_purge_after_ms);

// 86'400'000 -> "1d", 5'400'000 -> "90m", 1'500 -> "1s".
std::string formatDuration(int64_t ms);

}  // namespace wharf
