// The metadata backends the store's tests run on: the embedded LMDB store, and
// PostgreSQL (a database of the test binary's shared server) where Debian's PostgreSQL is
// installed. Each test case runs once per backend: GENERATE(from_range(metadataBackends())).
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/metadata/lmdb_metadata_store.h"
#include "core/metadata/pg_metadata_store.h"
#include "tests/support/postgres.h"

namespace wharf::test {

enum class MetadataBackend { kLmdb, kPostgres };

inline std::vector<MetadataBackend> metadataBackends() {
  if (PostgresServer::available()) return {MetadataBackend::kLmdb, MetadataBackend::kPostgres};
  WARN("PostgreSQL is not installed: the metadata tests run on LMDB only");
  return {MetadataBackend::kLmdb};
}

// Opens the backend's store: LMDB at lmdb_path; PostgreSQL at *pg_url, a fresh database
// when *pg_url is empty (set then, so that the same database can be opened again).
inline std::unique_ptr<MetadataStore> openMetadataBackend(MetadataBackend backend, const std::string& lmdb_path,
                                                          std::string* pg_url) {
  if (backend == MetadataBackend::kPostgres) {
    if (pg_url->empty()) *pg_url = PostgresServer::shared().freshDatabase();
    auto db = PgPool::open(*pg_url, 4);
    INFO(db.status().toString());
    REQUIRE(db.isOk());
    auto m = openPgMetadataStore(std::shared_ptr<PgPool>(std::move(db).value()));
    INFO(m.status().toString());
    REQUIRE(m.isOk());
    return std::move(m).value();
  }
  LmdbMetadataOptions o;
  o.map_size = 64ull << 20;
  o.durable = false;
  auto m = openLmdbMetadataStore(lmdb_path, o);
  INFO(m.status().toString());
  REQUIRE(m.isOk());
  return std::move(m).value();
}

}  // namespace wharf::test
