// wharf-core's configuration: one struct, one directive table.
#pragma once

#include <string>

#include "shared/config/config.h"

namespace wharf {

struct CoreConfig {
  std::string listen = "127.0.0.1:5000";
  std::string data_dir = "wharf-data";
  // The registry's index: "" (LMDB in <data_dir>/meta.lmdb) or postgres://... (shared by
  // every core of a scale-out installation).
  std::string metadata;
  // Where blobs and uploads are: "" (<data_dir>) or file:///path (a shared filesystem
  // serves several cores).
  std::string blobs;
  int64_t blob_redirect_ms = 0;
  int64_t threads = 0;
  int64_t workers = 0;
  std::string tls_cert;
  std::string tls_key;
  std::string log_level = "info";
  bool access_log = true;
  int64_t upload_purge_after_ms = 24 * 3600 * 1000ll;
  int64_t upload_purge_interval_ms = 3600 * 1000ll;
  int64_t job_workers = 2;
  int64_t job_retention_ms = 30ll * 86'400'000;
  int64_t job_lease_ms = 30'000;
  int64_t max_page = 1000;
  int64_t idle_timeout_ms = 60'000;
  int64_t io_timeout_ms = 60'000;
  int64_t header_timeout_ms = 30'000;
  int64_t body_min_rate = 1024;
  int64_t disk_reserve = 1ll << 30;
  int64_t disk_reserve_percent = 5;
  int64_t max_header_bytes = 64 * 1024;
  int64_t metadata_map_size = 64ll << 30;
  std::string port_file;
  std::string auth = "token";          // "token" or "none"
  std::string public_url;              // how clients reach this core (token realm); default from listen
  std::string service = "wharf";
  int64_t token_ttl_ms = 300'000;
  int64_t audit_retention_ms = 90ll * 86'400'000;
  int64_t event_retention_ms = 90ll * 86'400'000;  // 0: by age, never
  int64_t event_max = 0;                           // 0: no cap
  bool webhook_allow_private = false;
  int64_t webhook_max_attempts = 6;
  int64_t webhook_backoff_ms = 1000;
  int64_t webhook_timeout_ms = 10'000;
  std::string admin_user = "admin";
  int64_t usage_hourly_retention_ms = 14ll * 86'400'000;
  int64_t usage_daily_retention_ms = 400ll * 86'400'000;
  int64_t edge_unreachable_after_ms = 180'000;
  bool scan_on_push = true;
  bool scan_attach_sbom = false;
  std::string vulndb_sources;          // space-separated OSV zip URLs or paths; empty: offline
  int64_t vulndb_interval_ms = 6 * 3600 * 1000ll;
  int64_t vulndb_max_age_ms = 7ll * 86'400'000;
  std::string vulndb_ca_file;
  std::string trust_key_file;  // empty: <data_dir>/trust.key
  int64_t vulndb_max_download = 2ll << 30;
  int64_t scan_layer_max_expanded = 64ll << 30;
  int64_t scan_layer_timeout_ms = 15 * 60'000;

  void describe(ConfigSchema& schema);
  // Cross-field checks after all values are set.
  Status validate(std::string* host, int* port) const;
};

}  // namespace wharf
