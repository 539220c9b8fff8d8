// The compact forms both scan stores (LMDB and PostgreSQL) keep results in.
//
//   documents    CBOR (names read from layers are not always UTF-8: JSON text could not
//                hold them)
//   inventory    [findings_key,] repository, media type, os id, version_id, pretty_name,
//                the layer table (count, digests), then the packages (count; each type,
//                name, version, source_name, source_version, arch, path, layer index).
//                Strings are a varint length and the bytes. The LMDB store keeps the
//                findings key in front; PostgreSQL in a column of its own (putMatches
//                rewrites it alone).
//   the match    the fields of a completed result that a re-match replaces
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/scan/scan_store.h"
#include "shared/base/status.h"

namespace wharf {

std::string scanCbor(const nlohmann::json& j);
Result<nlohmann::json> scanJsonOfCbor(std::string_view bytes);

enum class FindingsKey { kInRecord, kElsewhere };
std::string encodeInventory(const nlohmann::json& result, FindingsKey key);
// Decodes into *out; its views point into bytes.
Status decodeInventory(std::string_view bytes, FindingsKey key, ScanStore::Inventory* out);
// An inventory kept with its findings key (kInRecord) with another key in front.
Result<std::string> withFindingsKey(std::string_view record, std::string_view findings_key);

// The fields of a completed result that make its match.
inline constexpr const char* kScanMatchFields[] = {"findings", "counts", "findings_key", "db_generation", "matched_at"};
bool isScanMatchField(std::string_view field);

}  // namespace wharf
