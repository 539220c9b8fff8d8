#include "core/core_config.h"

namespace wharf {

void CoreConfig::describe(ConfigSchema& s) {
  s.add(stringDirective("listen", "Address and port to serve on (HOST:PORT; port 0 picks a free one).", &listen));
  s.add(stringDirective("data_dir", "Directory for blobs, uploads and the metadata store (meta.lmdb).", &data_dir));
  s.add(stringDirective("metadata",
                        "Where the registry's index (repositories, tags, manifests, blob links, referrers, uploads, "
                        "policies) lives: empty for the embedded LMDB store (<data_dir>/meta.lmdb), or a PostgreSQL URL "
                        "(postgres://user:password@host:5432/db; PG* environment variables and ~/.pgpass apply) that "
                        "several cores share. Migrations are applied at start.",
                        &metadata));
  s.add(stringDirective("blobs",
                        "Where blobs and uploads are stored: empty for <data_dir>, file:///path (on a filesystem "
                        "shared by several cores, such as NFS, every core serves every blob), or an S3-compatible "
                        "object store: s3://bucket[/prefix]?endpoint=http(s)://host:port&region=us-east-1"
                        "&style=path|virtual&credentials=<file>&ca_file=<pem>&part_size_mb=16&payload=signed|unsigned "
                        "(credentials from the file's [default] aws_access_key_id/aws_secret_access_key, else "
                        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; the bucket is created if missing; request bodies "
                        "go unsigned over https, where TLS carries their integrity, and signed over http unless "
                        "payload=unsigned).",
                        &blobs));
  s.add(durationDirective("blob_redirect",
                          "With an S3 blob store: answer blob GETs with a redirect (307) to a presigned URL valid this "
                          "long, so that clients fetch the bytes from the store and not through the core (0: off).",
                          &blob_redirect_ms));
  s.add(intDirective("threads", "Event-loop threads (0: one per core).", &threads, 0, 256));
  s.add(intDirective("workers", "Worker threads for disk work: hashing, fsync, metadata writes (0: max(4, 2 x cores)).",
                     &workers, 0, 1024));
  s.add(stringDirective("tls_cert", "PEM certificate chain; with tls_key, serve HTTPS.", &tls_cert));
  s.add(stringDirective("tls_key", "PEM private key for tls_cert.", &tls_key));
  s.add(stringDirective("log_level", "debug, info, warn or error.", &log_level));
  s.add(boolDirective("access_log", "Log every request at info level.", &access_log));
  s.add(durationDirective("upload_purge_after", "Remove uploads untouched for this long.", &upload_purge_after_ms));
  s.add(durationDirective("upload_purge_interval", "How often to look for stale uploads (the upload-purge "
                                                 "schedule, \"@every <interval>\", follows it).",
                          &upload_purge_interval_ms));
  s.add(intDirective("job_workers", "Threads running background jobs (apart from the request workers).", &job_workers,
                     1, 64));
  s.add(durationDirective("job_retention", "Keep finished jobs and their logs this long.", &job_retention_ms));
  s.add(durationDirective("job_lease", "With a shared database, a job whose replica stopped renewing its lease for "
                                       "this long runs again on another (renewed every second).",
                          &job_lease_ms));
  s.add(intDirective("max_page", "Largest page (n) of tag and catalog listings.", &max_page, 1, 100000));
  s.add(durationDirective("idle_timeout", "Close keep-alive connections idle this long.", &idle_timeout_ms));
  s.add(durationDirective("io_timeout", "Close connections that make no progress writing a response for this long; "
                                        "also the window over which body_min_rate is measured.",
                          &io_timeout_ms));
  s.add(durationDirective("header_timeout", "A request's whole head (request line and headers) must arrive within this "
                                            "(408 and close otherwise), counted from its first byte or the connection's start.",
                          &header_timeout_ms));
  s.add(sizeDirective("body_min_rate", "Bytes per second a request body must keep up while the core waits for it, "
                                       "measured over each io_timeout (408 and close otherwise).",
                      &body_min_rate));
  s.add(sizeDirective("disk_reserve", "Free space kept on the data disk: under it (or under disk_reserve_percent, "
                                      "whichever is smaller) pushes are refused with 507 and reads go on (0: off).",
                      &disk_reserve));
  s.add(intDirective("disk_reserve_percent", "Free space kept on the data disk, in percent of its size (see "
                                             "disk_reserve).", &disk_reserve_percent, 0, 50));
  s.add(sizeDirective("max_header_bytes", "Largest request line plus headers.", &max_header_bytes));
  s.add(sizeDirective("metadata_map_size", "Largest size of the metadata store (virtual; the file grows as used).",
                      &metadata_map_size));
  s.add(stringDirective("auth", "token: Docker token authentication with accounts and permissions; none: an open registry.",
                        &auth));
  s.add(stringDirective("public_url", "URL clients use to reach this core (the token realm is <public_url>/auth/token); "
                                      "default http(s)://<listen>.", &public_url));
  s.add(stringDirective("service", "Token service name (the audience of issued tokens).", &service));
  s.add(durationDirective("token_ttl", "Lifetime of issued access tokens.", &token_ttl_ms));
  s.add(durationDirective("audit_retention", "Keep audit entries this long.", &audit_retention_ms));
  s.add(durationDirective("event_retention", "Keep events (the event log, <data_dir>/events.lmdb) this long (0: no age limit).",
                          &event_retention_ms));
  s.add(intDirective("event_max", "Keep at most this many events, dropping the oldest (0: no cap).", &event_max, 0,
                     1'000'000'000'000));
  s.add(boolDirective("webhook_allow_private", "Allow webhook targets in loopback, link-local and private address ranges "
                                               "(refused by default: they reach this host and its network).",
                      &webhook_allow_private));
  s.add(intDirective("webhook_max_attempts", "Attempts per webhook delivery before it is marked failed.",
                     &webhook_max_attempts, 1, 100));
  s.add(durationDirective("webhook_backoff", "Delay before the first retry of a webhook delivery; doubles per attempt, "
                                             "at most 5m.", &webhook_backoff_ms));
  s.add(durationDirective("webhook_timeout", "Connect and read timeout of a webhook delivery.", &webhook_timeout_ms));
  s.add(stringDirective("admin_user", "Name of the first administrator, created on first start (its password comes "
                                      "from WHARF_ADMIN_PASSWORD or is generated into <data_dir>/initial-admin-password).",
                        &admin_user));
  s.add(durationDirective("usage_hourly_retention", "Keep the hourly rows of edge usage (<data_dir>/usage.lmdb) this "
                                                    "long; older hours remain in the day rows (at least 2d).",
                          &usage_hourly_retention_ms));
  s.add(durationDirective("usage_daily_retention", "Keep the day rows of edge usage this long (at least "
                                                   "usage_hourly_retention).",
                          &usage_daily_retention_ms));
  s.add(durationDirective("edge_unreachable_after", "An edge whose last report is older than this is shown "
                                                    "unreachable (edges report every minute).",
                          &edge_unreachable_after_ms));
  s.add(boolDirective("scan_on_push", "Scan every pushed image (a repository or namespace policy may say otherwise).",
                      &scan_on_push));
  s.add(boolDirective("scan_attach_sbom", "Push each scanned image's SPDX SBOM as an OCI referrer of it (once per image).",
                      &scan_attach_sbom));
  s.add(stringDirective("vulndb_sources", "OSV databases to fetch, space-separated: zip URLs (http, https) or local "
                                          "paths of a zip or a directory of OSV JSON files (empty: offline, fed by "
                                          "wharfctl vulndb import).",
                        &vulndb_sources));
  s.add(durationDirective("vulndb_interval", "How often the vulndb-update job fetches vulndb_sources (conditional GETs).",
                          &vulndb_interval_ms));
  s.add(durationDirective("vulndb_max_age", "Scan results are flagged stale when the vulnerability database was last "
                                            "confirmed current longer ago than this (0: never).",
                          &vulndb_max_age_ms));
  s.add(stringDirective("vulndb_ca_file", "PEM CA bundle for https vulndb_sources (empty: the system's CAs).",
                        &vulndb_ca_file));
  s.add(sizeDirective("vulndb_max_download", "Largest download of one vulndb source.", &vulndb_max_download));
  s.add(sizeDirective("scan_layer_max_expanded", "A layer expanding to more than this (or to 200 times its size plus "
                                                 "1 GiB) is refused by the scanner as a tar bomb.",
                      &scan_layer_max_expanded));
  s.add(durationDirective("scan_layer_timeout", "Longest scan of one layer.", &scan_layer_timeout_ms));
  s.add(stringDirective("trust_key_file", "The key (32 bytes, owner-only file) that seals the trust server's signing "
                                         "keys; made at first start if missing (default: <data_dir>/trust.key).",
                        &trust_key_file));
  s.add(stringDirective("port_file", "Write the bound port to this file once listening (for tests and scripts).",
                        &port_file));
}

Status CoreConfig::validate(std::string* host, int* port) const {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Status(Code::kInvalidArgument, "config listen: expected HOST:PORT");
  *host = listen.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  std::string p = listen.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos || std::stoi(p) > 65535) {
    return Status(Code::kInvalidArgument, "config listen: bad port \"" + p + "\"");
  }
  *port = std::stoi(p);
  if (tls_cert.empty() != tls_key.empty()) {
    return Status(Code::kInvalidArgument, "config tls_cert and tls_key: set both or neither");
  }
  if (data_dir.empty()) return Status(Code::kInvalidArgument, "config data_dir: must not be empty");
  if (auth != "token" && auth != "none") return Status(Code::kInvalidArgument, "config auth: must be token or none");
  if (token_ttl_ms < 10'000) return Status(Code::kInvalidArgument, "config token_ttl: at least 10s");
  if (upload_purge_interval_ms < 1000) {
    return Status(Code::kInvalidArgument, "config upload_purge_interval: at least 1s");
  }
  if (job_retention_ms < 60'000) return Status(Code::kInvalidArgument, "config job_retention: at least 1m");
  if (job_lease_ms < 3'000) return Status(Code::kInvalidArgument, "config job_lease: at least 3s");
  if (header_timeout_ms < 100) return Status(Code::kInvalidArgument, "config header_timeout: at least 100ms");
  if (io_timeout_ms < 100) return Status(Code::kInvalidArgument, "config io_timeout: at least 100ms");
  if (webhook_timeout_ms < 100) return Status(Code::kInvalidArgument, "config webhook_timeout: at least 100ms");
  if (event_retention_ms != 0 && event_retention_ms < 60'000) {
    return Status(Code::kInvalidArgument, "config event_retention: at least 1m (or 0: no age limit)");
  }
  // The edge status reads the last 24 hours from hourly rows.
  if (usage_hourly_retention_ms < 2 * 86'400'000ll) {
    return Status(Code::kInvalidArgument, "config usage_hourly_retention: at least 2d");
  }
  if (usage_daily_retention_ms < usage_hourly_retention_ms) {
    return Status(Code::kInvalidArgument, "config usage_daily_retention: at least usage_hourly_retention");
  }
  if (edge_unreachable_after_ms < 1000) return Status(Code::kInvalidArgument, "config edge_unreachable_after: at least 1s");
  if (vulndb_interval_ms < 60'000) return Status(Code::kInvalidArgument, "config vulndb_interval: at least 1m");
  if (scan_layer_timeout_ms < 1000) return Status(Code::kInvalidArgument, "config scan_layer_timeout: at least 1s");
  return Status::ok();
}

}  // namespace wharf
