// wharf-core: the registry of record.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/api/api.h"
#include "core/core_config.h"
#include "core/auth/ldap_directory.h"
#include "core/auth/lmdb_identity_store.h"
#include "core/auth/pg_identity_store.h"
#include "core/auth/revocations.h"
#include "core/fleet/channel_hub.h"
#include "core/fleet/edge_commands.h"
#include "core/fleet/edge_invalidator.h"
#include "core/events/event_log.h"
#include "core/events/event_store.h"
#include "core/events/webhooks.h"
#include "core/fleet/lmdb_usage_store.h"
#include "core/fleet/pg_edge_commands.h"
#include "core/fleet/pg_usage_store.h"
#include "core/gc/gc_job.h"
#include "core/jobs/core_jobs.h"
#include "core/jobs/job_runner.h"
#include "core/jobs/job_store.h"
#include "core/jobs/scheduler.h"
#include "core/metadata/lmdb_metadata_store.h"
#include "core/metadata/pg_metadata_store.h"
#include "core/registry/registry.h"
#include "core/scan/lmdb_scan_store.h"
#include "core/scan/pg_scan_store.h"
#include "core/trust/lmdb_trust_store.h"
#include "core/trust/pg_trust_store.h"
#include "core/trust/trust_enforcer.h"
#include "core/trust/trust_service.h"
#include "core/scan/scan_jobs.h"
#include "core/scan/scanner.h"
#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "shared/tls/crypto.h"
#include "shared/base/log.h"
#include "shared/http/server.h"
#include "shared/store/disk_space.h"
#include "shared/store/s3_client.h"
#include "shared/store/shared_document.h"

using namespace wharf;

namespace {

int fail(const std::string& msg) {
  logError("wharf-core cannot start", {{"error", msg}});
  std::fprintf(stderr, "wharf-core: %s\n", msg.c_str());
  return 2;
}

// The registry's index: embedded (LMDB, in the environment the other stores share) or
// PostgreSQL (config.metadata), migrated at start.
// The shared database of a scale-out installation (--metadata postgres://...); null for
// the embedded stores.
Result<std::shared_ptr<PgPool>> openSharedDatabase(const CoreConfig& config) {
  if (config.metadata.empty()) return std::shared_ptr<PgPool>();
  if (config.metadata.rfind("postgres://", 0) != 0 && config.metadata.rfind("postgresql://", 0) != 0) {
    return Status(Code::kInvalidArgument, "metadata: expected empty (embedded) or postgres://..., not \"" +
                                              redactedUrl(config.metadata) + "\"");
  }
  // Loop threads read and workers write: one connection each, a second one per worker
  // for the content locks it may hold meanwhile, and a few for the collector's nested
  // reads and the stores' writer threads.
  size_t cores = std::max(1u, std::thread::hardware_concurrency());
  size_t threads = config.threads > 0 ? static_cast<size_t>(config.threads) : cores;
  size_t workers = config.workers > 0 ? static_cast<size_t>(config.workers) : std::max<size_t>(4, 2 * cores);
  size_t connections = threads + 2 * workers + 6;
  auto db = PgPool::open(config.metadata, connections);
  if (!db.isOk()) return Status(db.status().code(), "metadata: " + db.status().message());
  logInfo("registry index and every store on PostgreSQL", {{"database", redactedUrl(config.metadata)}});
  return std::shared_ptr<PgPool>(std::move(db).value());
}

std::vector<std::string> splitWords(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CoreConfig config;
  ConfigSchema schema("wharf-core",
                      "The Wharf registry of record: the OCI distribution API over LMDB and the local filesystem.");
  config.describe(schema);
  bool help = false;
  Status st = schema.applyArgs(argc, argv, &help);
  if (help) {
    std::fputs(schema.helpText().c_str(), stdout);
    return 0;
  }
  if (!st.isOk()) return fail(st.message());
  std::string host;
  int port = 0;
  if (Status v = config.validate(&host, &port); !v.isOk()) return fail(v.message());
  LogLevel level;
  if (!parseLogLevel(config.log_level, &level)) return fail("config log_level: must be debug, info, warn or error");
  setLogLevel(level);

  // Signals go to the main thread only (sigwait below); every thread inherits this mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (Status s = makeDirs(config.data_dir); !s.isOk()) return fail(s.message());
  // The disk whose free space gates writes: the blobs' when they are local files.
  std::string blob_root = config.data_dir;
  Result<std::unique_ptr<BlobStore>> blobs = Status(Code::kInternal, "no blob store");
  if (config.blobs.rfind("s3://", 0) == 0) {
    auto location = parseS3Url(config.blobs, [](const char* name) { return std::getenv(name); });
    if (!location.isOk()) return fail("blobs: " + location.status().message());
    blobs = openS3BlobStore(*location);
    if (!blobs.isOk()) return fail("blobs: " + location->display + ": " + blobs.status().message());
  } else {
    if (!config.blobs.empty()) {
      if (config.blobs.rfind("file:///", 0) != 0) {
        return fail("blobs: expected file:///path or s3://bucket/prefix?..., not \"" + config.blobs + "\"");
      }
      blob_root = config.blobs.substr(std::string("file://").size());
    }
    blobs = openFsBlobStore(blob_root);
    if (!blobs.isOk()) return fail(blobs.status().message());
  }
  logInfo("blob store", {{"store", (*blobs)->describe()}});
  LmdbMetadataOptions meta_options;
  meta_options.map_size = static_cast<uint64_t>(config.metadata_map_size);
  auto env = openMetadataEnv(config.data_dir + "/meta.lmdb", meta_options);
  if (!env.isOk()) return fail(env.status().message());
  auto pg = openSharedDatabase(config);
  if (!pg.isOk()) return fail(pg.status().message());
  auto meta = *pg ? openPgMetadataStore(*pg) : openLmdbMetadataStore(*env);
  if (!meta.isOk()) return fail(meta.status().message());
  auto identity = *pg ? openPgIdentityStore(*pg) : openLmdbIdentityStore(*env);
  if (!identity.isOk()) return fail(identity.status().message());
  auto job_store = *pg ? openPgJobStore(*pg) : openLmdbJobStore(*env);
  if (!job_store.isOk()) return fail(job_store.status().message());
  auto edge_commands = *pg ? openPgEdgeCommandStore(*pg) : openLmdbEdgeCommandStore(*env);
  if (!edge_commands.isOk()) return fail(edge_commands.status().message());

  Registry registry(**blobs, **meta, RealClock::instance(), *pg);
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  WorkQueue work(config.workers > 0 ? static_cast<size_t>(config.workers) : std::max<size_t>(4, 2 * cores));
  ApiOptions api_options;
  api_options.max_page = static_cast<size_t>(config.max_page);
  api_options.access_log = config.access_log;
  api_options.blob_redirect_s = config.blob_redirect_ms / 1000;
  WorkQueue hash(cores);
  ApiContext ctx{registry, work, hash, api_options};
  DiskSpace disk(blob_root, static_cast<uint64_t>(config.disk_reserve),
                 static_cast<uint64_t>(config.disk_reserve_percent));
  ctx.disk = &disk;
  disk.read();  // the gauges are in /metrics from the start
  AuditLog audit(**identity, RealClock::instance(), config.audit_retention_ms);
  ctx.identity = identity->get();
  ctx.audit = &audit;
  ChannelHub channel;
  ctx.commands = edge_commands->get();
  ctx.channel = &channel;
  std::unique_ptr<KeyRing> keys;
  std::unique_ptr<AuthService> auth;
  std::unique_ptr<Revocations> revocations;

  ServerConfig sc;
  sc.host = host;
  sc.port = port;
  sc.threads = static_cast<int>(config.threads);
  sc.limits.idle_timeout_ms = static_cast<uint64_t>(config.idle_timeout_ms);
  sc.limits.io_timeout_ms = static_cast<uint64_t>(config.io_timeout_ms);
  sc.limits.header_timeout_ms = static_cast<uint64_t>(config.header_timeout_ms);
  sc.limits.body_min_rate = static_cast<uint64_t>(config.body_min_rate);
  sc.limits.max_header_bytes = static_cast<size_t>(config.max_header_bytes);
  if (!config.tls_cert.empty()) {
    auto tls = TlsContext::server(config.tls_cert, config.tls_key);
    if (!tls.isOk()) return fail(tls.status().message());
    sc.tls = *tls;
  }
  ctx.tls = sc.tls != nullptr;
  // The core's sealing key (trust_key_file, default <data_dir>/trust.key: 32 random bytes,
  // owner only, made at first start) seals the keys the server holds: the trust server's,
  // and with a shared database the token signing keys (replicas need the same file).
  std::string trust_key_path = config.trust_key_file.empty() ? config.data_dir + "/trust.key" : config.trust_key_file;
  std::string trust_key;
  if (struct stat st; ::stat(trust_key_path.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0)
      return fail("config trust_key_file: " + trust_key_path + " is readable by others (chmod 600 it)");
    if (Status s = readFile(trust_key_path, &trust_key); !s.isOk()) return fail("config trust_key_file: " + s.message());
  } else {
    trust_key = randomBytes(32);
    if (Status s = writeFileDurable(trust_key_path, trust_key, 0600); !s.isOk()) return fail("config trust_key_file: " + s.message());
  }
  if (trust_key.size() != 32) return fail("config trust_key_file: " + trust_key_path + " is not a trust key (32 bytes)");
  // Access control is ready before the first connection is accepted.
  if (config.auth == "token") {
    if (!*pg) {
      if (Status s = makeDirs(config.data_dir + "/auth"); !s.isOk()) return fail(s.message());
      ::chmod((config.data_dir + "/auth").c_str(), 0700);
    }
    auto key_storage = *pg ? openPgDocument(*pg, "token_keys", trust_key) : openFileDocument(config.data_dir + "/auth/keys.json");
    if (!key_storage.isOk()) return fail("token keys: " + key_storage.status().message());
    auto ring = KeyRing::open(std::move(key_storage).value(), RealClock::instance());
    if (!ring.isOk()) return fail(ring.status().message());
    keys = std::move(ring).value();
    AuthConfig ac;
    // Without public_url the realm follows the Host the client used (see router.cc).
    if (!config.public_url.empty()) ac.realm = config.public_url + "/auth/token";
    ac.service = config.service;
    ac.token_ttl_s = config.token_ttl_ms / 1000;
    auth = std::make_unique<AuthService>(ac, **identity, *keys, RealClock::instance());
    // Entries live as long as a token issued before them can: its TTL plus the
    // verifiers' leeway (30 s) and a margin for clocks.
    auto revocation_doc = *pg ? openPgDocument(*pg, "revocations") : openLmdbDocument(*env, "revocations", "list");
    if (!revocation_doc.isOk()) return fail("revocations: " + revocation_doc.status().message());
    auto revoked = Revocations::open(std::move(revocation_doc).value(), RealClock::instance(), ac.token_ttl_s + 90);
    if (!revoked.isOk()) return fail(revoked.status().message());
    revocations = std::move(revoked).value();
    revocations->onChange([&channel] { channel.notifyAll(); });
    auth->setRevocations(revocations.get());
    const char* env_pw = std::getenv("WHARF_ADMIN_PASSWORD");
    auto created = auth->bootstrapAdmin(config.admin_user, env_pw ? env_pw : "");
    if (!created.isOk()) return fail(created.status().message());
    if (!created->empty()) {
      std::string pw_file = config.data_dir + "/initial-admin-password";
      if (env_pw == nullptr) {
        // Printed once, on the terminal of the first start, and kept readable only by us.
        if (Status s = writeFileDurable(pw_file, *created + "\n", 0600); !s.isOk()) return fail(s.message());
        std::fprintf(stdout, "wharf-core: created administrator \"%s\" with password %s (also in %s)\n",
                     config.admin_user.c_str(), created->c_str(), pw_file.c_str());
        std::fflush(stdout);
      }
      logInfo("created the first administrator", {{"user", config.admin_user}});
    }
    ctx.auth = auth.get();
  } else {
    logWarn("authentication is off: anyone who reaches this port may push, pull and delete");
  }
  // The event log and webhooks live in their own LMDB environment, events.lmdb: under
  // load the event writer commits a batch every 25 ms, and in meta.lmdb each of those
  // commits (and each retention prune) would take the single write lock and an fsync in
  // front of pushes' transactions. The file holds webhook secrets: owner only.
  LmdbEnv::Options events_env_options;
  events_env_options.map_size = static_cast<uint64_t>(config.metadata_map_size);
  auto events_env = LmdbEnv::open(config.data_dir + "/events.lmdb", events_env_options);
  if (!events_env.isOk()) return fail(events_env.status().message());
  ::chmod((config.data_dir + "/events.lmdb").c_str(), 0600);
  ::chmod((config.data_dir + "/events.lmdb-lock").c_str(), 0600);
  std::shared_ptr<LmdbEnv> events_shared = std::move(events_env).value();
  EventLogOptions event_options;
  event_options.retention_ms = config.event_retention_ms;
  event_options.max_events = static_cast<uint64_t>(config.event_max);
  auto event_store = *pg ? openPgEventStore(*pg) : openLmdbEventStore(events_shared);
  if (!event_store.isOk()) return fail("events: " + event_store.status().message());
  auto event_log = EventLog::open(std::move(event_store).value(), RealClock::instance(), event_options);
  if (!event_log.isOk()) return fail(event_log.status().message());
  auto hook_store = *pg ? openPgWebhookStore(*pg, trust_key) : openLmdbWebhookStore(events_shared);
  if (!hook_store.isOk()) return fail("webhooks: " + hook_store.status().message());
  char hostname[256] = "wharf-core";
  gethostname(hostname, sizeof hostname - 1);
  DispatcherOptions dispatch_options;
  dispatch_options.max_attempts = static_cast<int>(config.webhook_max_attempts);
  dispatch_options.backoff_base_ms = config.webhook_backoff_ms;
  bool allow_private = config.webhook_allow_private;
  int hook_timeout_ms = static_cast<int>(config.webhook_timeout_ms);
  WebhookDispatcher dispatcher(
      **hook_store, **event_log, RealClock::instance(), dispatch_options,
      [allow_private, hook_timeout_ms](const std::string& url, const std::string& body,
                                       const std::vector<std::pair<std::string, std::string>>& headers) {
        return httpPostHook(url, body, headers, allow_private, hook_timeout_ms);
      },
      EnvelopeSource{hostname, (*event_log)->instanceId(), config.public_url});
  EdgeInvalidator invalidator(**event_log, **identity, **edge_commands, channel);
  (*event_log)->setCommitHook([&dispatcher, &invalidator](uint64_t) {
    dispatcher.kick();
    invalidator.kick();
  });
  dispatcher.start();
  invalidator.start();
  WebhookService webhooks{**hook_store, dispatcher, **event_log, allow_private};
  ctx.events = event_log->get();
  ctx.webhooks = &webhooks;
  if (allow_private) logWarn("webhooks may target loopback, link-local and private addresses (webhook_allow_private)");

  // Edge reports (core/fleet) have their own environment, usage.lmdb, for the same reason
  // as events.lmdb: a thousand edges reporting every second keep its writer committing,
  // which must not queue pushes behind it. Owner only, like the rest of the state. With a
  // shared database, they go there (every replica takes reports).
  LmdbUsageOptions usage_options;
  usage_options.hourly_retention_ms = config.usage_hourly_retention_ms;
  usage_options.daily_retention_ms = config.usage_daily_retention_ms;
  std::unique_ptr<UsageStore> usage;
  if (*pg) {
    auto usage_store = openPgUsageStore(*pg, RealClock::instance(), usage_options);
    if (!usage_store.isOk()) return fail("usage: " + usage_store.status().message());
    usage = std::move(usage_store).value();
  } else {
    LmdbEnv::Options usage_env_options;
    usage_env_options.map_size = static_cast<uint64_t>(config.metadata_map_size);
    auto usage_env = LmdbEnv::open(config.data_dir + "/usage.lmdb", usage_env_options);
    if (!usage_env.isOk()) return fail(usage_env.status().message());
    ::chmod((config.data_dir + "/usage.lmdb").c_str(), 0600);
    ::chmod((config.data_dir + "/usage.lmdb-lock").c_str(), 0600);
    auto usage_store = LmdbUsageStore::open(std::move(usage_env).value(), RealClock::instance(), usage_options);
    if (!usage_store.isOk()) return fail(usage_store.status().message());
    usage = std::move(usage_store).value();
  }
  ctx.usage = usage.get();
  ctx.edge_unreachable_after_ms = config.edge_unreachable_after_ms;

  // The trust server (Notary v1): its data in meta.lmdb, the server's keys sealed with the
  // sealing key (above).
  std::unique_ptr<TrustStore> trust_store;
  if (*pg) {
    auto opened = openPgTrustStore(*pg);
    if (!opened.isOk()) return fail("trust: " + opened.status().message());
    trust_store = std::move(opened).value();
  } else {
    auto opened = LmdbTrustStore::open(*env);
    if (!opened.isOk()) return fail(opened.status().message());
    trust_store = std::move(opened).value();
  }
  TrustService trust(*trust_store, RealClock::instance(), TrustOptions{trust_key});
  ctx.trust = &trust;
  TrustEnforcer trust_policies(registry, trust, RealClock::instance());
  ctx.trust_policies = &trust_policies;

  // Scan results and the vulnerability database (core/scan) have their own environment,
  // scan.lmdb: a database import writes hundreds of MB that must not grow meta.lmdb or
  // hold its write lock.
  // With a shared database, they go there.
  std::unique_ptr<ScanStore> scans;
  if (*pg) {
    auto opened = openPgScanStore(*pg);
    if (!opened.isOk()) return fail("scans: " + opened.status().message());
    scans = std::move(opened).value();
  } else {
    LmdbEnv::Options scan_env_options;
    scan_env_options.map_size = static_cast<uint64_t>(config.metadata_map_size);
    auto scan_env = LmdbEnv::open(config.data_dir + "/scan.lmdb", scan_env_options);
    if (!scan_env.isOk()) return fail(scan_env.status().message());
    auto opened = LmdbScanStore::open(std::move(scan_env).value());
    if (!opened.isOk()) return fail(opened.status().message());
    scans = std::move(opened).value();
  }
  ScannerOptions scanner_options;
  scanner_options.limits.layer.max_expanded_bytes = static_cast<uint64_t>(config.scan_layer_max_expanded);
  scanner_options.layer_timeout_ms = config.scan_layer_timeout_ms;
  scanner_options.max_db_age_ms = config.vulndb_max_age_ms;
  scanner_options.sources = splitWords(config.vulndb_sources);
  scanner_options.source_ca_file = config.vulndb_ca_file;
  scanner_options.max_download_bytes = static_cast<uint64_t>(config.vulndb_max_download);
  scanner_options.tmp_dir = config.data_dir + "/scan";
  scanner_options.attach_sbom = config.scan_attach_sbom;
  if (Status s = makeDirs(scanner_options.tmp_dir); !s.isOk()) return fail(s.message());
  Scanner scanner(registry, *scans, event_log->get(), RealClock::instance(), scanner_options);
  if (Status s = scanner.load(); !s.isOk()) return fail("scan.lmdb: " + s.message());
  ctx.scanner = &scanner;
  // Images a vulnerability policy now refuses leave every edge's cache: the edges ask the
  // core again before serving them, and the core refuses.
  scanner.setBlockedHook([&identity, &edge_commands, &channel](const std::vector<std::string>& digests) {
    std::vector<EdgeCommandStore::New> batch;
    std::vector<std::string> edges;
    for (const Edge& e : (*identity)->edges()) {
      if (e.credential_hash.empty()) continue;
      edges.push_back(e.name);
      for (const auto& d : digests) batch.push_back({e.name, "purge", {{"digest", d}}});
    }
    if (batch.empty()) return;
    if (Status s = (*edge_commands)->enqueueAll(batch, "scanner", RealClock::instance().nowMillis()); !s.isOk()) {
      logWarn("refused images not sent to the edges", {{"error", s.message()}});
      return;
    }
    for (const auto& name : edges) channel.notify(name);
    logInfo("refused images dropped from the edges", {{"digests", digests.size()}, {"edges", edges.size()}});
  });

  // Background work runs as jobs (core/jobs): the kinds, and the schedules the
  // configuration asks for. Declared before the server, so they outlive its handlers.
  JobRunnerOptions job_options;
  job_options.workers = static_cast<size_t>(config.job_workers);
  job_options.retention_ms = config.job_retention_ms;
  job_options.lease_ms = config.job_lease_ms;
  JobRunner jobs(**job_store, RealClock::instance(), job_options);
  const char* test_jobs = std::getenv("WHARF_TEST_JOBS");
  registerCoreJobKinds(jobs, registry, **identity, auth.get(), RealClock::instance(),
                       test_jobs != nullptr && std::string(test_jobs) == "1");
  // Garbage collection keeps what trust data signs, tagged or not.
  registerGcJob(jobs, registry, event_log->get(), [&trust](const std::string& repo) { return trust.signedDigests(repo); });
  registerScanJobs(jobs, scanner, registry);
  Scheduler scheduler(**job_store, jobs, RealClock::instance());
  auto reconcile_schedules = [&scheduler, &identity, &config, &scanner_options] {
    Status s = ensureDefaultSchedules(scheduler, **identity, config.upload_purge_interval_ms,
                                      config.upload_purge_after_ms);
    if (s.isOk())
      s = scheduler.ensureDefault("vulndb-update", "@every " + formatDuration(config.vulndb_interval_ms),
                                  "vulndb-update", nlohmann::json::object(), !scanner_options.sources.empty());
    if (!s.isOk()) logWarn("cannot set the default schedules", {{"error", s.message()}});
    return s;
  };
  if (Status s = reconcile_schedules(); !s.isOk()) return fail(s.message());
  ctx.jobs = &jobs;
  ctx.scheduler = &scheduler;
  ctx.directory_changed = [reconcile_schedules] { (void)reconcile_schedules(); };
  // Before the first request: jobs a previous process left running are marked first.
  jobs.start();
  scheduler.start();
  ScanTrigger scan_trigger(**event_log, jobs, registry, *scans, scanner, config.scan_on_push);
  scan_trigger.start();
  // After an upgrade of the scanner, everything stored is scanned again (layer results of
  // the older scanner are not reused); with sources and no database yet, fetch it now.
  if (Status s = submitScanAfterUpgrade(jobs, *scans, registry); !s.isOk())
    logWarn("cannot submit the scan of stored images", {{"error", s.message()}});
  if (!scanner_options.sources.empty() && scans->dbGeneration() == 0)
    (void)jobs.submit("vulndb-update", nlohmann::json::object(), "scanner");
  Server server(sc, [&ctx](std::shared_ptr<Exchange> ex) { handleRequest(ctx, ex); });
  if (Status s = server.start(); !s.isOk()) return fail(s.message());
  std::string url = std::string(sc.tls ? "https" : "http") + "://" +
                    (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(server.port());
  logInfo("wharf-core listening", {{"url", url},
                                   {"data_dir", config.data_dir},
                                   {"threads", server.threads()},
                                   {"workers", work.size()}});
  if (!config.port_file.empty()) {
    if (Status s = writeFileDurable(config.port_file, std::to_string(server.port()) + "\n"); !s.isOk()) {
      return fail(s.message());
    }
  }

  int sig = 0;
  sigwait(&signals, &sig);
  logInfo("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  // Jobs stop first: running ones are asked to cancel and recorded as interrupted
  // (retryable), and live job log streams end with them.
  scan_trigger.stop();
  scheduler.stop();
  jobs.stop();
  // Live event feeds end first: they never finish by themselves.
  (*event_log)->closeSubscribers();
  channel.close();  // edge channel polls answer now and no longer wait (the edges reconnect later)
  server.stop();
  // Finish disk work still queued before the loops it reports to go away; upload work
  // first, as it waits on the hash queue.
  work.shutdown();
  hash.shutdown();
  // Commits the reports still queued; their answers go to stopped loops, which drop them
  // (the server object, and so its loops, outlives this).
  ctx.usage = nullptr;
  usage.reset();
  (*event_log)->setCommitHook(nullptr);
  dispatcher.stop();
  invalidator.stop();
  (*event_log)->flush();
  logInfo("stopped");
  return 0;
}
