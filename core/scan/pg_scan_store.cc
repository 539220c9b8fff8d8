#include "core/scan/pg_scan_store.h"

#include "core/scan/scan_records.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "shared/base/json_body.h"
#include "shared/tls/crypto.h"

namespace wharf {

const std::vector<PgMigration>& scanMigrations() {
  static const std::vector<PgMigration> all = {
      {1, "scan results of layers and images, the vulnerability database's generations and advisories, scanner state",
       R"sql(
CREATE TABLE scan_layers (digest text COLLATE "C" PRIMARY KEY, doc bytea NOT NULL);
CREATE TABLE scan_images (digest text COLLATE "C" PRIMARY KEY, doc bytea NOT NULL,
                          findings_key bytea, inventory bytea, match bytea,
                          CHECK ((inventory IS NULL) = (match IS NULL) AND (inventory IS NULL) = (findings_key IS NULL)));
CREATE INDEX scan_images_with_inventory ON scan_images (digest) WHERE inventory IS NOT NULL;
CREATE TABLE scan_db (id int PRIMARY KEY CHECK (id = 1), generation bigint NOT NULL, meta bytea,
                      last_generation bigint NOT NULL);
INSERT INTO scan_db (id, generation, meta, last_generation) VALUES (1, 0, NULL, 0);
CREATE TABLE scan_generations (generation bigint PRIMARY KEY,
                               state text NOT NULL CHECK (state IN ('importing', 'dropping')));
CREATE TABLE scan_advisories (generation bigint NOT NULL, id text COLLATE "C" NOT NULL, osv text NOT NULL,
                              PRIMARY KEY (generation, id));
CREATE TABLE scan_state (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
)sql"},
  };
  return all;
}

// The helpers' own namespace: wharf_core_lib is a unity build (sources batched into one
// translation unit), where anonymous namespaces of different files are one.
namespace pg_scan_store {
namespace {

constexpr int64_t kDeleteChunk = 10'000;  // advisories deleted per statement
constexpr int kFetchRows = 1000;          // advisories per FETCH of forEachAdvisory
// The most bytes of values one statement's array parameters carry (a batch is cut into
// several statements of one transaction): far below PostgreSQL's 1 GB for a value.
constexpr size_t kStatementBytes = 64u << 20;

// [begin, end) ranges of items whose sizes add up to at most kStatementBytes each (an item
// larger than that alone).
std::vector<std::pair<size_t, size_t>> slices(const std::vector<size_t>& sizes) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t begin = 0, bytes = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i > begin && bytes + sizes[i] > kStatementBytes) {
      out.emplace_back(begin, i);
      begin = i;
      bytes = 0;
    }
    bytes += sizes[i];
  }
  if (begin < sizes.size()) out.emplace_back(begin, sizes.size());
  return out;
}

template <typename T>
std::vector<T> part(const std::vector<T>& v, std::pair<size_t, size_t> range) {
  return std::vector<T>(v.begin() + static_cast<std::ptrdiff_t>(range.first),
                        v.begin() + static_cast<std::ptrdiff_t>(range.second));
}

// The fields of a completed result that make its match (as LmdbScanStore's).

std::string num(int64_t v) { return std::to_string(v); }
std::string limitOf(size_t n) {
  return num(static_cast<int64_t>(std::min<size_t>(n, static_cast<size_t>(std::numeric_limits<int64_t>::max()))));
}

// --- text PostgreSQL can hold (as pg_identity_store.cc) ---

Status unstorable(const std::string& what) {
  return Status(Code::kInvalidArgument,
                what + " that is not UTF-8 text (or that holds a NUL byte) cannot be stored");
}

// A digest a write may use: text PostgreSQL holds, and not empty (LMDB refuses an empty
// key; "" is also inventoryPage's "from the first").
Status writableDigest(const std::string& digest) {
  if (digest.empty()) return Status(Code::kInvalidArgument, "a scan result needs a digest");
  if (!pgStorable(digest)) return unstorable("a digest");
  return Status::ok();
}

// --- bytea through text parameters: base64 in, base64 out ---

std::string bytesParam(std::string_view bytes) { return base64Encode(bytes); }

// What encode(x, 'base64') gave (lines of 76 characters) as the bytes.
Result<std::string> bytesOf(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char ch : text)
    if (ch != '\n' && ch != '\r') clean += ch;
  bool ok = false;
  std::string out = base64Decode(clean, &ok);
  if (!ok) return Status(Code::kCorruption, "scan store: a value does not decode");
  return out;
}

// A document column (encode(col, 'base64')) as JSON.
Result<nlohmann::json> docOf(std::string_view base64) {
  auto bytes = bytesOf(base64);
  if (!bytes.isOk()) return bytes.status();
  return scanJsonOfCbor(*bytes);
}

// The parts of a result as putImages keeps them: the document, and for a completed result
// its findings key, inventory and match (nullopt otherwise).
struct ImageRow {
  std::string doc;
  std::optional<std::string> findings_key, inventory, match;
};

ImageRow rowOf(const nlohmann::json& result) {
  ImageRow row;
  auto packages = result.find("packages");
  if (jsonStringOr(result, "status") != "completed" || packages == result.end() || !packages->is_array()) {
    row.doc = scanCbor(result);
    return row;
  }
  nlohmann::json rest = nlohmann::json::object(), match = nlohmann::json::object();
  for (auto it = result.begin(); it != result.end(); ++it) {
    if (it.key() == "packages") continue;
    bool in_match = isScanMatchField(it.key());
    (in_match ? match : rest)[it.key()] = it.value();
  }
  row.doc = scanCbor(rest);
  row.findings_key = jsonStringOr(result, "findings_key");
  row.inventory = encodeInventory(result, FindingsKey::kElsewhere);
  row.match = scanCbor(match);
  return row;
}

std::optional<std::string> optionalBytes(const std::optional<std::string>& v) {
  if (!v) return std::nullopt;
  return bytesParam(*v);
}

// Atomicity, where LMDB had its single writer (READ COMMITTED; every lock is held to
// commit):
//
// * Layer and image results, state: each write of one key is one upsert (INSERT ... ON
//   CONFLICT DO UPDATE), of every part of the result at once (they are columns of one row):
//   replicas writing the same key at once both succeed, the later commit's result stands
//   whole. putImages writes its rows in one transaction in digest order (no deadlock
//   between two batches); putMatches and removeImages are one transaction each (an UPDATE
//   or DELETE of many rows; a deadlock with another replica's batch is retried).
// * Generations: beginGeneration increments scan_db's counter (UPDATE ... RETURNING, the
//   row locked to commit), marks the imports begun before it "dropping" and records its
//   own as "importing". addAdvisories holds its generation's row FOR SHARE while it writes,
//   commitGeneration locks scan_db's row, then its generation's FOR UPDATE: a begin waits
//   for the adds in flight, a superseded import finds its row gone or "dropping" and is
//   refused; the switch (the current generation, its metadata, the previous one to be
//   dropped) is one transaction. Deleting a "dropping" generation's rows needs no lock:
//   nothing writes them any more.
// * forEachAdvisory reads the current generation and its advisories in one snapshot: a
//   switch by another replica meanwhile (which deletes the rows read) does not cut it short.
class PgScanStore final : public ScanStore {
 public:
  explicit PgScanStore(std::shared_ptr<PgPool> db) : db_(std::move(db)) {}

  // --- layers ---
  Result<nlohmann::json> layer(const std::string& digest) override {
    if (!pgStorable(digest)) return notFound(digest);
    auto r = db_->query("SELECT encode(doc, 'base64') FROM scan_layers WHERE digest = $1", {digest});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return notFound(digest);
    return docOf(r->text(0, 0));
  }

  Status putLayer(const std::string& digest, const nlohmann::json& scan) override {
    WHARF_RETURN_IF_ERROR(writableDigest(digest));
    return db_->query("INSERT INTO scan_layers (digest, doc) VALUES ($1, decode($2, 'base64')) "
                      "ON CONFLICT (digest) DO UPDATE SET doc = EXCLUDED.doc",
                      {digest, bytesParam(scanCbor(scan))})
        .status();
  }

  // --- images ---
  Result<nlohmann::json> image(const std::string& digest) override {
    if (!pgStorable(digest)) return notFound(digest);
    auto r = db_->query("SELECT encode(doc, 'base64'), encode(inventory, 'base64'), encode(match, 'base64'), "
                        "inventory IS NOT NULL FROM scan_images WHERE digest = $1",
                        {digest});
    if (!r.isOk()) return r.status();
    if (r->rows() == 0) return notFound(digest);
    auto doc = docOf(r->text(0, 0));
    if (!doc.isOk()) return doc.status();
    if (!r->boolean(0, 3)) return doc;  // not a completed result
    auto record = bytesOf(r->text(0, 1));
    if (!record.isOk()) return record.status();
    Inventory inv;
    WHARF_RETURN_IF_ERROR(decodeInventory(*record, FindingsKey::kElsewhere, &inv));
    nlohmann::json packages = nlohmann::json::array();
    for (const auto& p : inv.inv.packages) packages.push_back(packageToJson(p));
    (*doc)["packages"] = std::move(packages);
    auto match = docOf(r->text(0, 2));
    if (!match.isOk()) return match.status();
    for (auto it = match->begin(); it != match->end(); ++it) (*doc)[it.key()] = std::move(it.value());
    return doc;
  }

  Status putImage(const std::string& digest, const nlohmann::json& result) override {
    return putImages({{digest, result}});
  }

  Status putImages(const std::vector<std::pair<std::string, nlohmann::json>>& results) override {
    if (results.empty()) return Status::ok();
    for (const auto& [digest, doc] : results) WHARF_RETURN_IF_ERROR(writableDigest(digest));
    // In digest order (two batches lock their rows in the same order); a digest given twice
    // keeps its order, the later result stands, as LMDB's puts in turn.
    std::vector<size_t> order(results.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return results[a].first < results[b].first; });
    std::vector<PgParams> rows;
    rows.reserve(results.size());
    for (size_t i : order) {
      ImageRow row = rowOf(results[i].second);
      rows.push_back({results[i].first, bytesParam(row.doc), optionalBytes(row.findings_key),
                      optionalBytes(row.inventory), optionalBytes(row.match)});
    }
    return db_->transact([&](PgConn& c) -> Status {
      for (const auto& params : rows) {
        WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO scan_images (digest, doc, findings_key, inventory, match) "
                                     "VALUES ($1, decode($2, 'base64'), decode($3, 'base64'), decode($4, 'base64'), "
                                     "decode($5, 'base64')) ON CONFLICT (digest) DO UPDATE SET doc = EXCLUDED.doc, "
                                     "findings_key = EXCLUDED.findings_key, inventory = EXCLUDED.inventory, "
                                     "match = EXCLUDED.match",
                                     params)
                                  .status());
      }
      return Status::ok();
    });
  }

  Result<std::string> inventoryPage(const std::string& after, size_t limit,
                                    const std::function<void(const std::string&, const Inventory&)>& fn) override {
    // One statement: one snapshot, as LMDB's read transaction. A cursor that is not text
    // PostgreSQL holds (no digest is) is compared as bytes.
    auto r = pgStorable(after)
                 ? db_->query("SELECT digest, encode(findings_key, 'base64'), encode(inventory, 'base64') "
                              "FROM scan_images WHERE inventory IS NOT NULL AND digest > $1 ORDER BY digest LIMIT $2",
                              {after, limitOf(limit)})
                 : db_->query("SELECT digest, encode(findings_key, 'base64'), encode(inventory, 'base64') "
                              "FROM scan_images WHERE inventory IS NOT NULL "
                              "AND convert_to(digest, 'UTF8') > decode($1, 'base64') ORDER BY digest LIMIT $2",
                              {bytesParam(after), limitOf(limit)});
    if (!r.isOk()) return r.status();
    std::string last;
    Inventory inv;
    for (int i = 0; i < r->rows(); ++i) {
      auto key = bytesOf(r->text(i, 1));
      if (!key.isOk()) return key.status();
      auto record = bytesOf(r->text(i, 2));
      if (!record.isOk()) return record.status();
      WHARF_RETURN_IF_ERROR(decodeInventory(*record, FindingsKey::kElsewhere, &inv));
      inv.findings_key = *key;  // views valid for the call
      last = std::string(r->text(i, 0));
      fn(last, inv);
    }
    return last;
  }

  Result<std::vector<std::string>> digests(Results kind, const std::string& after, size_t limit) override {
    std::string table = kind == Results::kLayers ? "scan_layers" : "scan_images";
    if (!pgStorable(after)) return Status(Code::kInvalidArgument, "not a digest: " + after);
    auto r = db_->query("SELECT digest FROM " + table + " WHERE digest > $1 ORDER BY digest LIMIT $2",
                        {after, limitOf(limit)});
    if (!r.isOk()) return r.status();
    std::vector<std::string> out;
    for (int i = 0; i < r->rows(); ++i) out.emplace_back(r->text(i, 0));
    return out;
  }

  Status removeImages(const std::vector<std::string>& digests) override {
    std::vector<std::string> keys;
    for (const auto& d : digests)
      if (pgStorable(d)) keys.push_back(d);  // others have no result
    if (keys.empty()) return Status::ok();
    std::sort(keys.begin(), keys.end());
    // Retried on a deadlock with another replica's batch.
    return db_->transact([&](PgConn& c) -> Status {
      return c.exec("DELETE FROM scan_images WHERE digest = ANY($1::text[])", {pgArray(keys)}).status();
    });
  }

  Status putMatches(const std::vector<std::pair<std::string, nlohmann::json>>& matches) override {
    // The last match of a digest given twice stands, as LMDB's puts in turn.
    std::map<std::string, const nlohmann::json*> latest;
    for (const auto& [digest, match] : matches)
      if (pgStorable(digest)) latest[digest] = &match;  // others have no result
    if (latest.empty()) return Status::ok();
    std::vector<std::string> digests, keys, docs;
    std::vector<size_t> sizes;
    for (const auto& [digest, match] : latest) {
      nlohmann::json doc = nlohmann::json::object();
      for (const char* f : kScanMatchFields)
        if (match->contains(f)) doc[f] = (*match)[f];
      digests.push_back(digest);
      keys.push_back(bytesParam(jsonStringOr(*match, "findings_key")));
      docs.push_back(bytesParam(scanCbor(doc)));
      sizes.push_back(digests.back().size() + keys.back().size() + docs.back().size());
    }
    const auto ranges = slices(sizes);
    // Only completed results (with an inventory) take a match; the others are skipped.
    return db_->transact([&](PgConn& c) -> Status {
      for (const auto& range : ranges) {
        WHARF_RETURN_IF_ERROR(
            c.exec("UPDATE scan_images AS s SET findings_key = decode(u.k, 'base64'), match = decode(u.m, 'base64') "
                   "FROM unnest($1::text[], $2::text[], $3::text[]) AS u(d, k, m) "
                   "WHERE s.digest = u.d AND s.inventory IS NOT NULL",
                   {pgArray(part(digests, range)), pgArray(part(keys, range)), pgArray(part(docs, range))})
                .status());
      }
      return Status::ok();
    });
  }

  uint64_t imageCount() override {
    auto r = db_->query("SELECT count(*) FROM scan_images");
    return r.isOk() && r->rows() == 1 ? static_cast<uint64_t>(r->integer(0, 0)) : 0;
  }

  // --- the vulnerability database ---
  nlohmann::json dbMeta() override {
    auto r = db_->query("SELECT encode(meta, 'base64') FROM scan_db WHERE id = 1");
    if (!r.isOk() || r->rows() == 0 || r->isNull(0, 0)) return nlohmann::json::object();
    auto j = docOf(r->text(0, 0));
    return j.isOk() ? *j : nlohmann::json::object();
  }

  uint64_t dbGeneration() override {
    auto r = db_->query("SELECT generation FROM scan_db WHERE id = 1");
    return r.isOk() && r->rows() == 1 ? static_cast<uint64_t>(r->integer(0, 0)) : 0;
  }

  Status forEachAdvisory(const std::function<Status(std::string_view, std::string_view)>& fn) override {
    // A read-only snapshot (never retried: such a transaction has no serialization
    // failures), through a cursor: the advisories are never all in memory at once.
    return db_->transact(
        [&](PgConn& c) -> Status {
          WHARF_RETURN_IF_ERROR(c.exec("DECLARE scan_advisories_cursor NO SCROLL CURSOR FOR "
                                       "SELECT id, osv FROM scan_advisories "
                                       "WHERE generation = (SELECT generation FROM scan_db WHERE id = 1) ORDER BY id")
                                    .status());
          for (;;) {
            auto r = c.exec("FETCH " + std::to_string(kFetchRows) + " FROM scan_advisories_cursor");
            if (!r.isOk()) return r.status();
            for (int i = 0; i < r->rows(); ++i) WHARF_RETURN_IF_ERROR(fn(r->text(i, 0), r->text(i, 1)));
            if (r->rows() < kFetchRows) return Status::ok();
          }
        },
        PgIsolation::kSnapshot);
  }

  Result<uint64_t> beginGeneration() override {
    int64_t next = 0;
    Status st = db_->transact([&](PgConn& c) -> Status {
      // The counter's row stays locked to commit: begins and commits take turns.
      auto r = c.exec("UPDATE scan_db SET last_generation = greatest(last_generation, generation) + 1 WHERE id = 1 "
                      "RETURNING last_generation");
      if (!r.isOk()) return r.status();
      if (r->rows() != 1) return Status(Code::kCorruption, "scan store: the generation counter is missing");
      next = r->integer(0, 0);
      // One import at a time: those begun before and never committed (failed, crashed or
      // still running on another replica) are superseded. Waits for their adds in flight.
      WHARF_RETURN_IF_ERROR(c.exec("UPDATE scan_generations SET state = 'dropping' WHERE state = 'importing'").status());
      return c.exec("INSERT INTO scan_generations (generation, state) VALUES ($1::bigint, 'importing')", {num(next)})
          .status();
    });
    WHARF_RETURN_IF_ERROR(st);
    WHARF_RETURN_IF_ERROR(dropGenerations());
    return static_cast<uint64_t>(next);
  }

  Status addAdvisories(uint64_t generation, const std::vector<std::pair<std::string, std::string>>& batch) override {
    if (batch.empty()) return Status::ok();
    if (generation > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return notImporting(generation);
    // An id given twice: the later text stands, as LMDB's puts in turn.
    std::vector<std::string> ids, texts;
    std::unordered_map<std::string_view, size_t> index;
    for (const auto& [id, osv] : batch) {
      if (!pgStorable(id)) return unstorable("an advisory id");
      if (!pgStorable(osv)) return unstorable("advisory " + id + ": a text");
      auto [it, fresh] = index.emplace(id, ids.size());
      if (fresh) {
        ids.push_back(id);
        texts.push_back(osv);
      } else {
        texts[it->second] = osv;
      }
    }
    std::vector<size_t> sizes;
    for (size_t i = 0; i < ids.size(); ++i) sizes.push_back(ids[i].size() + texts[i].size());
    const auto ranges = slices(sizes);
    const std::string gen = num(static_cast<int64_t>(generation));
    return db_->transact([&](PgConn& c) -> Status {
      // Held to commit: a begin that supersedes this import waits for these rows, and drops them.
      auto r = c.exec("SELECT 1 FROM scan_generations WHERE generation = $1::bigint AND state = 'importing' FOR SHARE",
                      {gen});
      if (!r.isOk()) return r.status();
      if (r->rows() == 0) return notImporting(generation);
      for (const auto& range : ranges) {
        WHARF_RETURN_IF_ERROR(c.exec("INSERT INTO scan_advisories (generation, id, osv) SELECT $1::bigint, u.id, u.osv "
                                     "FROM unnest($2::text[], $3::text[]) AS u(id, osv) "
                                     "ON CONFLICT (generation, id) DO UPDATE SET osv = EXCLUDED.osv",
                                     {gen, pgArray(part(ids, range)), pgArray(part(texts, range))})
                                  .status());
      }
      return Status::ok();
    });
  }

  Status commitGeneration(uint64_t generation, const nlohmann::json& meta) override {
    if (generation > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return notImporting(generation);
    const std::string gen = num(static_cast<int64_t>(generation)), meta_bytes = bytesParam(scanCbor(meta));
    Status st = db_->transact([&](PgConn& c) -> Status {
      auto r = c.exec("SELECT generation FROM scan_db WHERE id = 1 FOR UPDATE");
      if (!r.isOk()) return r.status();
      if (r->rows() != 1) return Status(Code::kCorruption, "scan store: the current generation is missing");
      const int64_t current = r->integer(0, 0);
      if (current == static_cast<int64_t>(generation)) {
        // The current one again: its metadata is replaced.
        return c.exec("UPDATE scan_db SET meta = decode($1, 'base64') WHERE id = 1", {meta_bytes}).status();
      }
      // Waits for its adds in flight; refused when a later begin superseded it.
      auto g = c.exec("SELECT 1 FROM scan_generations WHERE generation = $1::bigint AND state = 'importing' FOR UPDATE",
                      {gen});
      if (!g.isOk()) return g.status();
      if (g->rows() == 0) return notImporting(generation);
      WHARF_RETURN_IF_ERROR(
          c.exec("UPDATE scan_db SET generation = $1::bigint, meta = decode($2, 'base64') WHERE id = 1", {gen, meta_bytes})
              .status());
      WHARF_RETURN_IF_ERROR(c.exec("DELETE FROM scan_generations WHERE generation = $1::bigint", {gen}).status());
      // Every other generation goes: the previous one, and (none expected) other imports.
      WHARF_RETURN_IF_ERROR(c.exec("UPDATE scan_generations SET state = 'dropping' WHERE state = 'importing'").status());
      if (current == 0) return Status::ok();
      return c
          .exec("INSERT INTO scan_generations (generation, state) VALUES ($1::bigint, 'dropping') "
                "ON CONFLICT (generation) DO UPDATE SET state = 'dropping'",
                {num(current)})
          .status();
    });
    WHARF_RETURN_IF_ERROR(st);
    return dropGenerations();
  }

  // --- scanner state ---
  nlohmann::json state(const std::string& key) override {
    if (!pgStorable(key)) return nlohmann::json();
    auto r = db_->query("SELECT encode(value, 'base64') FROM scan_state WHERE key = $1", {key});
    if (!r.isOk() || r->rows() == 0) return nlohmann::json();
    auto j = docOf(r->text(0, 0));
    return j.isOk() ? *j : nlohmann::json();
  }

  Status setState(const std::string& key, const nlohmann::json& value) override {
    if (!pgStorable(key)) return unstorable("a state key");
    return db_->query("INSERT INTO scan_state (key, value) VALUES ($1, decode($2, 'base64')) "
                      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                      {key, bytesParam(scanCbor(value))})
        .status();
  }

  std::vector<std::string> stateKeys() override {
    std::vector<std::string> out;
    auto r = db_->query("SELECT key FROM scan_state ORDER BY key");
    if (!r.isOk()) return out;
    for (int i = 0; i < r->rows(); ++i) out.emplace_back(r->text(i, 0));
    return out;
  }

  Result<bool> swapState(const std::string& key, const nlohmann::json& expected,
                         const nlohmann::json& value) override {
    if (!pgStorable(key)) return unstorable("a state key");
    bool swapped = false;
    Status st = db_->transact([&](PgConn& c) -> Status {
      swapped = false;
      // The row locked (or, absent, the insert racing another's): one replica wins.
      auto r = c.exec("SELECT encode(value, 'base64') FROM scan_state WHERE key = $1 FOR UPDATE", {key});
      if (!r.isOk()) return r.status();
      nlohmann::json stored;
      if (r->rows() > 0) {
        auto doc = docOf(r->text(0, 0));
        if (!doc.isOk()) return doc.status();
        stored = std::move(doc).value();
      }
      if (stored != expected) return Status::ok();
      auto w = r->rows() > 0 ? c.exec("UPDATE scan_state SET value = decode($2, 'base64') WHERE key = $1",
                                      {key, bytesParam(scanCbor(value))})
                             : c.exec("INSERT INTO scan_state (key, value) VALUES ($1, decode($2, 'base64')) "
                                      "ON CONFLICT (key) DO NOTHING",
                                      {key, bytesParam(scanCbor(value))});
      if (!w.isOk()) return w.status();
      swapped = w->affected() == 1;
      return Status::ok();
    });
    if (!st.isOk()) return st;
    return swapped;
  }

  // Deletes the rows of every "dropping" generation, kDeleteChunk at a time (each its own
  // transaction), then the generation itself. Replicas doing it at once share the work.
  Status dropGenerations() {
    auto r = db_->query("SELECT generation FROM scan_generations WHERE state = 'dropping' ORDER BY generation");
    if (!r.isOk()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      const std::string gen = num(r->integer(i, 0));
      for (;;) {
        auto d = db_->query("DELETE FROM scan_advisories WHERE generation = $1::bigint AND id IN "
                            "(SELECT id FROM scan_advisories WHERE generation = $1::bigint LIMIT $2::bigint)",
                            {gen, num(kDeleteChunk)});
        if (!d.isOk()) return d.status();
        if (d->affected() > 0) continue;
        // None deleted: none left, or another replica's chunk took these (then go on).
        auto left = db_->query("SELECT EXISTS (SELECT 1 FROM scan_advisories WHERE generation = $1::bigint)", {gen});
        if (!left.isOk()) return left.status();
        if (!left->boolean(0, 0)) break;
      }
      WHARF_RETURN_IF_ERROR(db_->query("DELETE FROM scan_generations WHERE generation = $1::bigint AND state = 'dropping'",
                                       {gen})
                                .status());
    }
    return Status::ok();
  }

 private:
  static Status notFound(const std::string& digest) {
    return Status(Code::kNotFound, "no scan result for " + (pgStorable(digest) ? digest : std::string("that digest")));
  }

  static Status notImporting(uint64_t generation) {
    return Status(Code::kConflict, "vulnerability database generation " + std::to_string(generation) +
                                       " is not being imported (a later import began, or it was committed)");
  }

  std::shared_ptr<PgPool> db_;
};

}  // namespace
}  // namespace pg_scan_store

Result<std::unique_ptr<ScanStore>> openPgScanStore(std::shared_ptr<PgPool> db) {
  auto applied = applyMigrations(*db, "scans", scanMigrations());
  if (!applied.isOk()) return applied.status();
  auto store = std::make_unique<pg_scan_store::PgScanStore>(std::move(db));
  // Deletions a crash (or a failure) left unfinished. Imports never committed stay until
  // the next begin: another replica may be running one.
  WHARF_RETURN_IF_ERROR(store->dropGenerations());
  return std::unique_ptr<ScanStore>(std::move(store));
}

}  // namespace wharf
