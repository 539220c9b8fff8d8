#include "core/scan/scanner.h"

#include <cstring>
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "core/events/event_log.h"
#include "core/events/webhooks.h"
#include "core/jobs/job_runner.h"
#include "core/metadata/policy.h"
#include "core/registry/registry.h"
#include "core/scan/sbom.h"
#include "shared/base/fs.h"
#include "shared/base/json_body.h"
#include "shared/base/log.h"
#include "shared/http/blocking_client.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/digest.h"
#include "shared/oci/manifest.h"

namespace wharf {

namespace {

using nlohmann::json;

constexpr size_t kAdvisoryBatch = 5000;

struct ScanMetrics {
  Counter& scanned;
  Counter& failed;
  Counter& layers_read;
  Counter& layers_cached;
  Counter& bytes;
  Histogram& seconds;
  static ScanMetrics& get() {
    auto& r = MetricsRegistry::global();
    static ScanMetrics m{
        r.counter("wharf_scan_images_total", "Image scans, by result.", "result=\"completed\""),
        r.counter("wharf_scan_images_total", "Image scans, by result.", "result=\"failed\""),
        r.counter("wharf_scan_layers_total", "Layers a scan needed, by where the result came from.", "source=\"read\""),
        r.counter("wharf_scan_layers_total", "Layers a scan needed, by where the result came from.", "source=\"cache\""),
        r.counter("wharf_scan_compressed_bytes_total", "Compressed layer bytes read by the scanner."),
        r.histogram("wharf_scan_seconds", "Time to scan one image (layers read or cached, matched, stored)."),
    };
    return m;
  }
};

// Reads with pread at its own offset: the descriptor may be shared.
ByteSource preadSource(std::shared_ptr<Fd> fd) {
  auto offset = std::make_shared<uint64_t>(0);
  return [fd, offset](char* buf, size_t n) -> Result<size_t> {
    for (;;) {
      ssize_t r = ::pread(fd->get(), buf, n, off_t(*offset));
      if (r >= 0) {
        *offset += uint64_t(r);
        return size_t(r);
      }
      if (errno != EINTR) return errnoStatus("read layer", errno);
    }
  };
}

// Reads a blob of a store without files in pieces of kStorePiece (one ranged GET each),
// handing them out in the sizes the layer reader asks for.
ByteSource storeSource(BlobStore& store, Digest digest, uint64_t size) {
  static constexpr uint64_t kStorePiece = 4ull << 20;
  struct State {
    uint64_t offset = 0;  // of buffer's first byte
    std::string buffer;
    size_t used = 0;
  };
  auto st = std::make_shared<State>();
  return [&store, digest, size, st](char* buf, size_t n) -> Result<size_t> {
    if (st->used == st->buffer.size()) {
      st->offset += st->buffer.size();
      st->buffer.clear();
      st->used = 0;
      if (st->offset >= size) return size_t(0);
      st->buffer.resize(std::min(kStorePiece, size - st->offset));
      WHARF_RETURN_IF_ERROR(store.read(digest, st->offset, st->buffer.data(), st->buffer.size()));
    }
    size_t k = std::min(n, st->buffer.size() - st->used);
    std::memcpy(buf, st->buffer.data() + st->used, k);
    st->used += k;
    return k;
  };
}

// Images hold a file system; artifacts (signatures, SBOMs, charts) hold none.
bool isImage(const Manifest& m) {
  if (!m.config) return false;
  const std::string& t = m.config->media_type;
  return t == "application/vnd.oci.image.config.v1+json" || t == "application/vnd.docker.container.image.v1+json";
}

// What decides whether findings changed: the advisories per package and layer, with
// everything a finding shows of them (severity, fixed version, aliases, summary), as one
// digest (stored with the result).
std::string findingsKey(const std::vector<Finding>& findings) {
  std::vector<std::string> keys;
  keys.reserve(findings.size());
  for (const auto& f : findings)
  {
    std::string k = f.advisory + '\0' + f.package + '\0' + f.installed + '\0' + f.layer + '\0' +
                    severityName(f.severity) + '\0' + f.fixed + '\0' + std::to_string(f.score) + '\0' + f.summary;
    for (const auto& a : f.aliases) k += '\0' + a;
    keys.push_back(std::move(k) + '\n');
  }
  std::sort(keys.begin(), keys.end());
  Hasher h;
  for (const auto& k : keys) h.update(k);
  return h.digest().str();
}

// A source as logs and non-administrators may see it: without its query string (a
// pre-signed URL's credentials).
std::string redactedSource(const std::string& source) {
  auto q = source.find('?');
  return q == std::string::npos ? source : source.substr(0, q) + "?...";
}

// What says a local source changed: its newest modification time, its size, and for a
// directory the number of its files (a file rewritten in place changes the first).
Result<std::string> localStamp(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errnoStatus(path, errno);
    return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size);
  }
  int64_t newest = 0;
  uint64_t files = 0, bytes = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec); !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    ++files;
    bytes += uint64_t(st.st_size);
    newest = std::max<int64_t>(newest, int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec);
  }
  if (ec) return Status(Code::kIoError, path + ": " + ec.message());
  return std::to_string(newest) + ":" + std::to_string(files) + ":" + std::to_string(bytes);
}

void emit(EventLog* events, const char* type, const std::string& repo, const std::string& digest,
          const std::string& media_type) {
  if (events == nullptr) return;
  Event e;
  e.type = type;
  e.actor = "scanner";
  e.repository = repo;
  e.target.digest = digest;
  e.target.media_type = media_type;
  events->append(std::move(e));
}

// Feeds every *.json advisory of a zip file or a directory to fn(name, text).
Status forEachOsvFile(const std::string& path, uint64_t max_bytes,
                      const std::function<Status(const std::string&, std::string_view)>& fn) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec); !ec && it != std::filesystem::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file(ec) && it->path().extension() == ".json") files.push_back(it->path().string());
    }
    if (ec) return Status(Code::kIoError, path + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::error_code size_ec;
      if (std::filesystem::file_size(f, size_ec) > max_bytes && !size_ec)
        return Status(Code::kTooLarge, f + ": advisory larger than the limit");
      std::string text;
      WHARF_RETURN_IF_ERROR(readFile(f, &text));
      if (text.size() > max_bytes) return Status(Code::kTooLarge, f + ": advisory larger than the limit");
      WHARF_RETURN_IF_ERROR(fn(f, text));
    }
    return Status::ok();
  }
  struct archive* a = archive_read_new();
  std::unique_ptr<struct archive, int (*)(struct archive*)> guard(a, archive_read_free);
  archive_read_support_format_zip(a);
  if (archive_read_open_filename(a, path.c_str(), 1 << 16) != ARCHIVE_OK)
    return Status(Code::kInvalidArgument, path + ": not a zip of OSV files: " + archive_error_string(a));
  std::string text;
  for (;;) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(a, &e);
    if (rc == ARCHIVE_EOF) return Status::ok();
    if (rc < ARCHIVE_WARN) return Status(Code::kInvalidArgument, path + ": " + archive_error_string(a));
    const char* name = archive_entry_pathname(e);
    std::string n = name ? name : "";
    if (archive_entry_filetype(e) != AE_IFREG || n.size() < 5 || n.compare(n.size() - 5, 5, ".json") != 0) continue;
    if (archive_entry_size_is_set(e) && uint64_t(archive_entry_size(e)) > max_bytes)
      return Status(Code::kTooLarge, path + ": " + n + " is larger than the advisory limit");
    text.clear();
    char buf[65536];
    for (;;) {
      la_ssize_t r = archive_read_data(a, buf, sizeof buf);
      if (r < 0) return Status(Code::kInvalidArgument, path + ": " + n + ": " + archive_error_string(a));
      if (r == 0) break;
      if (text.size() + size_t(r) > max_bytes) return Status(Code::kTooLarge, path + ": " + n + " is larger than the advisory limit");
      text.append(buf, size_t(r));
    }
    WHARF_RETURN_IF_ERROR(fn(n, text));
  }
}

}  // namespace

json severityCounts(const json& findings) {
  json counts = {{"CRITICAL", 0}, {"HIGH", 0}, {"MEDIUM", 0}, {"LOW", 0}, {"UNKNOWN", 0}};
  if (!findings.is_array()) return counts;
  for (const auto& f : findings) {
    std::string s = f.value("severity", "UNKNOWN");
    if (counts.contains(s)) counts[s] = counts[s].get<uint64_t>() + 1;
  }
  return counts;
}

Scanner::Scanner(Registry& registry, ScanStore& store, EventLog* events, Clock& clock, ScannerOptions options)
    : registry_(registry), store_(store), events_(events), clock_(clock), options_(std::move(options)),
      db_(std::make_shared<VulnDb>()) {}

std::shared_ptr<const VulnDb> Scanner::db() {
  std::lock_guard lock(db_mu_);
  return db_;
}

Status Scanner::load() {
  auto db = std::make_shared<VulnDb>();
  size_t rejected = 0;
  WHARF_RETURN_IF_ERROR(store_.forEachAdvisory([&](std::string_view, std::string_view osv) {
    if (!db->add(osv).isOk()) ++rejected;  // stored ones parsed at import; a newer scanner may be stricter
    return Status::ok();
  }));
  db->setGeneration(store_.dbGeneration());
  logInfo("vulndb loaded", {{"generation", db->generation()}, {"advisories", db->advisories()}, {"rejected", rejected}});
  std::lock_guard lock(db_mu_);
  db_ = std::move(db);
  return Status::ok();
}

Status Scanner::refresh() {
  if (store_.dbGeneration() == db()->generation()) return Status::ok();
  return load();
}

Result<LayerScan> Scanner::layerScan(const std::string& digest, JobContext* ctx) {
  if (auto cached = store_.layer(digest); cached.isOk()) {
    if (auto scan = layerScanFromJson(*cached); scan.isOk()) {
      ScanMetrics::get().layers_cached.inc();
      return scan;
    }
  }
  auto f = registry_.openContent(digest);
  if (!f.isOk()) return Status(f.status().code(), "layer " + digest + ": " + f.status().message());
  ScanLimits limits = options_.limits;
  limits.layer.deadline_ms = monotonicMillis() + options_.layer_timeout_ms;
  int64_t started = monotonicMillis();
  auto layer = Digest::parse(digest);
  if (!layer.isOk()) return layer.status();
  auto scan = scanLayer(f->fd ? preadSource(f->fd) : storeSource(registry_.blobStore(), *layer, f->size), f->size, limits);
  if (!scan.isOk()) return Status(scan.status().code(), "layer " + digest + ": " + scan.status().message());
  ScanMetrics::get().layers_read.inc();
  ScanMetrics::get().bytes.inc(scan->stats.compressed_bytes);
  if (ctx != nullptr) {
    ctx->log("layer " + digest + ": " + std::to_string(scan->packages.size()) + " packages, " +
             std::to_string(scan->stats.members) + " members, " + std::to_string(scan->stats.compressed_bytes) +
             " bytes in " + std::to_string(monotonicMillis() - started) + " ms");
    for (const auto& w : scan->warnings) ctx->log("layer " + digest + ": warning: " + w);
  }
  WHARF_RETURN_IF_ERROR(store_.putLayer(digest, layerScanToJson(*scan)));
  return scan;
}

json Scanner::matchOf(const std::vector<Finding>& found, std::string key, const VulnDb& db) {
  json findings = json::array();
  for (const auto& f : found) findings.push_back(findingToJson(f));
  json counts = severityCounts(findings);
  return {{"findings", std::move(findings)}, {"counts", std::move(counts)}, {"findings_key", std::move(key)},
          {"db_generation", db.generation()}, {"matched_at", clock_.nowMillis()}};
}

json Scanner::matchInto(const ImageInventory& inv, const VulnDb& db, json result) {
  std::vector<Finding> found = db.match(inv);
  json match = matchOf(found, findingsKey(found), db);
  for (auto it = match.begin(); it != match.end(); ++it) result[it.key()] = std::move(it.value());
  return result;
}

Result<json> Scanner::scanImage(const std::string& repo, const std::string& digest, const Manifest* parsed,
                                const json& platform, JobContext* ctx) {
  Result<Manifest> m = parsed != nullptr ? Result<Manifest>(*parsed) : Status(Code::kInternal, "");
  if (parsed == nullptr) {  // an index's child: read here
    auto body = registry_.readContent(digest, kMaxManifestBytes);
    if (!body.isOk()) return body.status();
    auto rec = registry_.metadata().manifest(repo, digest);
    m = parseManifest(*body, rec.isOk() ? rec->media_type : "");
    if (!m.isOk()) return Status(Code::kManifestInvalid, digest + ": " + m.status().message());
  }
  if (!isImage(*m)) return Status(Code::kUnsupported, digest + " is not an image (an artifact holds no file system)");
  json result = {{"digest", digest}, {"repository", repo}, {"media_type", m->media_type}, {"status", "completed"},
                 {"scanner", kLayerScanVersion}, {"scanned_at", clock_.nowMillis()}};
  if (!platform.is_null()) result["platform"] = platform;
  std::vector<LayerScan> scans;
  scans.reserve(m->layers.size());
  json layers = json::array();
  for (const auto& l : m->layers) {
    if (ctx != nullptr && ctx->cancelled()) return Status(Code::kCancelled, "cancelled");
    // Foreign and non-tar layers (artifacts, attestations) hold no file system.
    if (l.media_type.find("tar") == std::string::npos) continue;
    auto s = layerScan(l.digest.str(), ctx);
    if (!s.isOk()) return s.status();
    layers.push_back(json{{"digest", l.digest.str()}, {"size", l.size}, {"packages", s->packages.size()}, {"warnings", s->warnings}});
    scans.push_back(std::move(*s));
  }
  std::vector<StackedLayer> stack;
  for (size_t i = 0, k = 0; i < m->layers.size(); ++i) {
    if (m->layers[i].media_type.find("tar") == std::string::npos) continue;
    stack.push_back(StackedLayer{m->layers[i].digest.str(), &scans[k++]});
  }
  ImageInventory inv = stackLayers(stack);
  json packages = json::array();
  for (const auto& p : inv.packages) packages.push_back(packageToJson(p));
  result["layers"] = std::move(layers);
  result["os"] = osReleaseToJson(inv.os);
  result["packages"] = std::move(packages);
  return matchInto(inv, *db(), std::move(result));
}

Result<json> Scanner::scan(const std::string& repo, const std::string& digest, JobContext* ctx) {
  int64_t started = monotonicMillis();
  auto body = registry_.readContent(digest, kMaxManifestBytes);
  if (!body.isOk()) return body.status();
  auto rec = registry_.metadata().manifest(repo, digest);
  if (!rec.isOk()) return Status(Code::kManifestUnknown, repo + "@" + digest + ": no such manifest");
  auto m = parseManifest(*body, rec->media_type);
  if (!m.isOk()) return Status(Code::kManifestInvalid, digest + ": " + m.status().message());
  Result<json> out = json();
  if (m->is_index) {
    json index = {{"digest", digest}, {"repository", repo}, {"media_type", m->media_type}, {"index", true},
                  {"status", "completed"}, {"scanner", kLayerScanVersion}, {"scanned_at", clock_.nowMillis()}};
    json children = json::array();
    json raw = json::parse(*body, nullptr, false);
    size_t n = 0;
    for (const auto& d : m->manifests) {
      json platform;
      if (raw.is_object() && raw.contains("manifests") && raw["manifests"].is_array() && n < raw["manifests"].size() &&
          raw["manifests"][n].is_object())
        platform = raw["manifests"][n].value("platform", json());
      ++n;
      // Attestation manifests (BuildKit's "unknown/unknown" platform) hold no software.
      if (d.annotations.is_object() && d.annotations.contains("vnd.docker.reference.type")) continue;
      if (ctx != nullptr) ctx->progress(n - 1, m->manifests.size(), "platform " + std::to_string(n));
      auto child = scanImage(repo, d.digest.str(), nullptr, platform, ctx);
      if (!child.isOk() && child.status().code() == Code::kUnsupported) continue;
      if (!child.isOk()) {
        out = Status(child.status().code(), d.digest.str() + ": " + child.status().message());
        break;
      }
      WHARF_RETURN_IF_ERROR(store_.putImage(d.digest.str(), *child));
      children.push_back(json{{"digest", d.digest.str()}, {"platform", platform}});
    }
    if (out.isOk()) {
      index["manifests"] = std::move(children);
      out = std::move(index);
    }
  } else {
    out = scanImage(repo, digest, &*m, nullptr, ctx);
  }
  if (!out.isOk()) {
    if (out.status().code() == Code::kUnsupported) return out.status();  // nothing to scan, nothing stored
    ScanMetrics::get().failed.inc();
    if (out.status().code() != Code::kCancelled) {
      // A completed result stays (its findings still count, for pulls too); the failure
      // is recorded beside it. Otherwise the failure is the result.
      auto previous = store_.image(digest);
      if (previous.isOk() && jsonStringOr(*previous, "status") == "completed") {
        (*previous)["last_error"] = out.status().message();
        (*previous)["last_error_at"] = clock_.nowMillis();
        (void)store_.putImage(digest, *previous);
      } else {
        json failed = {{"digest", digest},     {"repository", repo},
                       {"status", "failed"},   {"error", out.status().message()},
                       {"scanned_at", clock_.nowMillis()}};
        (void)store_.putImage(digest, failed);
      }
      forgetPullDecisions();
      emit(events_, event_type::kScanFailed, repo, digest, rec->media_type);
    }
    return out.status();
  }
  WHARF_RETURN_IF_ERROR(store_.putImage(digest, *out));
  forgetPullDecisions();
  reportRefused({{repo, digest}});
  if (options_.attach_sbom && !m->is_index) {
    // The scan stands without it: a failure is logged, not the scan's.
    if (Status s = attachSbom(repo, digest, rec->media_type, rec->size, *out, ctx); !s.isOk()) {
      logWarn("sbom not attached", {{"repository", repo}, {"digest", digest}, {"error", s.message()}});
      if (ctx != nullptr) ctx->log("SBOM not attached: " + s.message());
    }
  }
  ScanMetrics::get().scanned.inc();
  ScanMetrics::get().seconds.observe(double(monotonicMillis() - started) / 1000.0);
  emit(events_, event_type::kScanCompleted, repo, digest, rec->media_type);
  return result(digest);
}

Status Scanner::attachSbom(const std::string& repo, const std::string& digest, const std::string& media_type,
                           uint64_t size, const json& result, JobContext* ctx) {
  constexpr const char* kSpdx = "application/spdx+json";
  for (const auto& d : registry_.metadata().referrers(repo, digest))
    if (jsonStringOr(d, "artifactType") == kSpdx) return Status::ok();  // one per image
  // Deterministic: the same scan gives the same document (and so the same digests).
  json described = result;
  describePackages(described);
  std::string doc = spdxDocument(described, repo, digest, "urn:wharf:spdx:" + repo + "@" + digest).dump();
  std::string empty = "{}";
  int64_t now = clock_.nowMillis();
  std::string sbom_digest, empty_digest;
  for (const std::string* blob : {&doc, &empty}) {
    auto d = registry_.blobStore().put(*blob, DigestAlgorithm::kSha256);
    if (!d.isOk()) return d.status();
    WHARF_RETURN_IF_ERROR(registry_.metadata().commitBlob(repo, d->str(), blob->size(), "", now));
    (blob == &doc ? sbom_digest : empty_digest) = d->str();
  }
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"artifactType", kSpdx},
                   {"config", {{"mediaType", "application/vnd.oci.empty.v1+json"}, {"digest", empty_digest}, {"size", 2}}},
                   {"layers", {{{"mediaType", kSpdx}, {"digest", sbom_digest}, {"size", doc.size()}}}},
                   {"subject", {{"mediaType", media_type}, {"digest", digest}, {"size", size}}},
                   {"annotations", {{"org.opencontainers.image.created", formatRfc3339(result.value("scanned_at", int64_t(0)))},
                                    {"dev.wharf.scanner", std::to_string(kLayerScanVersion)}}}};
  std::string body = manifest.dump();
  auto put = registry_.putManifest(repo, digestOf(body).str(), body, "application/vnd.oci.image.manifest.v1+json");
  if (!put.isOk()) return put.status();
  if (ctx != nullptr) ctx->log("SBOM attached as " + repo + "@" + digestOf(body).str());
  return Status::ok();
}

bool Scanner::hasCurrentResult(const std::string& digest) {
  auto r = store_.image(digest);
  return r.isOk() && jsonStringOr(*r, "status") == "completed" && r->value("scanner", 0) == kLayerScanVersion;
}

Result<json> Scanner::result(const std::string& digest) {
  auto r = store_.image(digest);
  if (!r.isOk()) return r.status();
  json out = std::move(*r);
  describePackages(out);
  if (out.value("index", false) && out.contains("manifests")) {
    json counts = severityCounts(json::array());
    for (auto& child : out["manifests"]) {
      auto c = store_.image(child.value("digest", ""));
      if (!c.isOk()) continue;
      json platform = child.value("platform", json());
      child = std::move(*c);
      if (!platform.is_null()) child["platform"] = std::move(platform);  // the index says which platform it is
      describePackages(child);
      for (auto it = counts.begin(); it != counts.end(); ++it)
        if (child.contains("counts")) *it = it->get<uint64_t>() + child["counts"].value(it.key(), uint64_t(0));
    }
    out["counts"] = std::move(counts);
  }
  json info = databaseInfo();
  out["db"] = {{"generation", info["generation"]}, {"updated_at", info["updated_at"]}, {"stale", info["stale"]}};
  return out;
}

Result<json> Scanner::rematchAll(JobContext* ctx) {
  auto current = db();
  uint64_t total = store_.imageCount(), done = 0, changed = 0, removed = 0;
  // Page by page (a short read each), only the inventories: images whose findings change
  // get their new match written (nothing else of their results is read or rewritten);
  // the others keep theirs, which say which generation they were matched with. Results of
  // images the garbage collector removed go.
  constexpr size_t kPage = 512;
  std::string after;
  for (;;) {
    if (ctx != nullptr && ctx->cancelled()) return Status(Code::kCancelled, "cancelled");
    std::vector<std::pair<std::string, json>> matches;
    std::vector<std::pair<std::string, std::string>> touched;  // repository, media type
    std::vector<std::string> gone;  // images whose content the registry no longer holds
    auto last = store_.inventoryPage(after, kPage, [&](const std::string& digest, const ScanStore::Inventory& inv) {
      ++done;
      if (registry_.metadata().blobRecord(digest).status().code() == Code::kBlobUnknown) {
        gone.push_back(digest);
        return;
      }
      std::vector<Finding> found = current->match(inv.inv);
      std::string key = findingsKey(found);
      if (key == inv.findings_key) return;
      matches.emplace_back(digest, matchOf(found, std::move(key), *current));
      touched.emplace_back(std::string(inv.repository), std::string(inv.media_type));
    });
    if (!last.isOk()) return last.status();
    if (!gone.empty()) {
      WHARF_RETURN_IF_ERROR(store_.removeImages(gone));
      removed += gone.size();
    }
    if (!matches.empty()) {
      WHARF_RETURN_IF_ERROR(store_.putMatches(matches));
      forgetPullDecisions();
      std::vector<std::pair<std::string, std::string>> refusable;
      for (size_t i = 0; i < matches.size(); ++i) {
        emit(events_, event_type::kScanUpdated, touched[i].first, matches[i].first, touched[i].second);
        refusable.emplace_back(touched[i].first, matches[i].first);
      }
      reportRefused(refusable);
      changed += matches.size();
    }
    if (ctx != nullptr) ctx->progress(done, total, "matching stored images");
    if (last->empty()) break;
    after = std::move(*last);
  }
  if (ctx != nullptr)
    ctx->log("matched " + std::to_string(done) + " stored images again: " + std::to_string(changed) + " changed, " +
             std::to_string(removed) + " no longer stored (their results removed)");
  return json{{"images", done}, {"changed", changed}, {"removed", removed}};
}

Result<json> Scanner::importDatabase(const std::string& path, const std::string& source, JobContext* ctx) {
  return importSources({{source, path}}, ctx);
}

Result<json> Scanner::importSources(const std::map<std::string, std::string>& changed, JobContext* ctx) {
  std::lock_guard lock(import_mu_);
  // The generation is the union of every source's last good file: sources are merged, a
  // new file of one replaces only that source's advisories.
  json kept = store_.state("source_files");
  if (!kept.is_object()) kept = json::object();
  std::map<std::string, std::string> files;
  for (auto it = kept.begin(); it != kept.end(); ++it)
    if (it.value().is_string()) files[it.key()] = it.value().get<std::string>();
  for (const auto& [source, path] : changed) files[source] = path;

  auto fresh = std::make_shared<VulnDb>();
  auto gen = store_.beginGeneration();
  if (!gen.isOk()) return gen.status();
  std::vector<std::pair<std::string, std::string>> batch;
  std::set<std::string> ids;
  uint64_t rejected = 0, read = 0;
  std::string newest;
  for (const auto& [source, p] : files) {
    if (ctx != nullptr) ctx->log("reading " + redactedSource(source));
    Status s = forEachOsvFile(p, options_.max_advisory_bytes, [&](const std::string& name, std::string_view text) -> Status {
      ++read;
      if (ctx != nullptr && ctx->cancelled()) return Status(Code::kCancelled, "cancelled");
      auto j = jsonNestedWithin(text, 64) ? json::parse(text, nullptr, false) : json(json::value_t::discarded);
      std::string id = j.is_object() ? jsonStringOr(j, "id") : "";
      if (!id.empty() && ids.count(id) > 0) return Status::ok();  // the same advisory in two sources: the first
      if (Status added = fresh->add(text); !added.isOk()) {
        if (++rejected <= 20 && ctx != nullptr) ctx->log("skipped " + name + ": " + added.message());
        return Status::ok();
      }
      ids.insert(id);
      std::string modified = jsonStringOr(j, "modified");
      if (modified > newest) newest = modified;
      batch.emplace_back(id, j.dump());
      if (batch.size() >= kAdvisoryBatch) {
        WHARF_RETURN_IF_ERROR(store_.addAdvisories(*gen, batch));
        batch.clear();
        if (ctx != nullptr) ctx->progress(ids.size(), 0, "advisories read");
      }
      return Status::ok();
    });
    if (!s.isOk()) return Status(s.code(), "vulnerability database not switched: " + redactedSource(source) + ": " + s.message());
  }
  if (read > 0 && rejected * 100 > read)
    return Status(Code::kInvalidArgument, "vulnerability database not switched: " + std::to_string(rejected) + " of " +
                                              std::to_string(read) + " advisories do not parse");
  if (ids.empty()) return Status(Code::kInvalidArgument, "vulnerability database not switched: no OSV advisories found");
  WHARF_RETURN_IF_ERROR(store_.addAdvisories(*gen, batch));
  json ecosystems = json::object();
  for (const auto& [eco, n] : fresh->perEcosystem()) ecosystems[eco] = n;
  int64_t now = clock_.nowMillis();
  json sources = store_.state("sources");
  if (!sources.is_object()) sources = json::object();
  for (const auto& [source, path] : changed) sources[source] = {{"imported_at", now}};
  json meta = {{"generation", *gen},        {"updated_at", now},    {"advisories", ids.size()},
               {"rejected", rejected},      {"ecosystems", ecosystems}, {"newest_modified", newest},
               {"sources", sources}};
  WHARF_RETURN_IF_ERROR(store_.commitGeneration(*gen, meta));
  WHARF_RETURN_IF_ERROR(store_.setState("sources", sources));
  json files_state = json::object();
  for (const auto& [source, path] : files) files_state[source] = path;
  WHARF_RETURN_IF_ERROR(store_.setState("source_files", files_state));
  // The files this generation replaced, when they are the scanner's own copies.
  for (const auto& [source, path] : changed) {
    if (!kept.contains(source) || !kept[source].is_string()) continue;
    std::string old = kept[source].get<std::string>();
    if (old != path && old.rfind(options_.tmp_dir + "/vulndb-", 0) == 0) ::unlink(old.c_str());
  }
  fresh->setGeneration(*gen);
  {
    std::lock_guard dl(db_mu_);
    db_ = fresh;
  }
  logInfo("vulndb switched", {{"generation", *gen}, {"advisories", ids.size()}, {"rejected", rejected}});
  if (ctx != nullptr) ctx->log("vulnerability database generation " + std::to_string(*gen) + ": " + std::to_string(ids.size()) +
                               " advisories (" + std::to_string(rejected) + " skipped)");
  emit(events_, event_type::kVulnDbUpdated, "", "", "");
  json out = {{"generation", *gen}, {"advisories", ids.size()}, {"rejected", rejected}};
  // The switch is done: a re-match that stops (cancelled, the core stopping) leaves
  // results matched with the previous generation, which the next re-match catches up.
  auto rematched = rematchAll(ctx);
  if (rematched.isOk()) {
    out["rematched"] = (*rematched)["images"];
    out["changed"] = (*rematched)["changed"];
    out["removed"] = (*rematched)["removed"];
  } else {
    out["rematch_error"] = rematched.status().message();
    logWarn("vulndb re-match stopped", {{"generation", *gen}, {"error", rematched.status().message()}});
  }
  return out;
}

Result<bool> Scanner::fetchSource(const std::string& url, json& validators, const std::string& dest, JobContext* ctx) {
  std::string current = url;
  for (int hop = 0; hop < 5; ++hop) {
    if (current.rfind("file://", 0) == 0 || (!current.empty() && current[0] == '/')) {
      // A local file or directory (a mount fed by another system): changed when its
      // modification time or size did.
      std::string path = current[0] == '/' ? current : current.substr(7);
      auto stamp = localStamp(path);
      if (!stamp.isOk()) return stamp.status();
      if (jsonStringOr(validators, "stamp") == *stamp) return false;
      validators = {{"stamp", *stamp}, {"path", path}};
      return true;
    }
    auto u = parseHookUrl(current);
    if (!u.isOk()) return Status(Code::kInvalidArgument, "source " + redactedSource(url) + ": " + u.status().message());
    BlockingClient client(u->host, u->port, 60'000);
    if (u->tls) client.useTls(options_.source_ca_file);
    HeaderList headers = {{"Host", u->host_header}, {"User-Agent", "wharf-core"}, {"Accept", "*/*"}};
    if (current == url) {
      if (validators.contains("etag")) headers.emplace_back("If-None-Match", validators.value("etag", ""));
      if (validators.contains("last_modified"))
        headers.emplace_back("If-Modified-Since", validators.value("last_modified", ""));
    }
    std::string part = dest + ".part";
    Fd out(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out.valid()) return errnoStatus("create " + part, errno);
    uint64_t received = 0;
    int64_t last_log = monotonicMillis();
    auto resp = client.stream(u->target, headers, [&](const HttpResponse&, std::string_view piece) -> Status {
      received += piece.size();
      if (received > options_.max_download_bytes)
        return Status(Code::kTooLarge, "source " + redactedSource(url) + " is larger than the download limit (" +
                                           std::to_string(options_.max_download_bytes) + " bytes)");
      if (ctx != nullptr && ctx->cancelled()) return Status(Code::kCancelled, "cancelled");
      if (ctx != nullptr && monotonicMillis() - last_log > 2000) {
        last_log = monotonicMillis();
        ctx->progress(received, 0, "downloading " + redactedSource(url));
      }
      return writeAll(out.get(), piece.data(), piece.size());
    });
    if (!resp.isOk()) {
      ::unlink(part.c_str());
      return Status(resp.status().code(), "source " + redactedSource(url) + ": " + resp.status().message());
    }
    if (resp->status == 304) {
      ::unlink(part.c_str());
      return false;
    }
    if (resp->status == 301 || resp->status == 302 || resp->status == 303 || resp->status == 307 || resp->status == 308) {
      ::unlink(part.c_str());
      std::string next = resp->header("location");
      bool was_tls = current.rfind("https://", 0) == 0;
      if (next.rfind("https://", 0) != 0 && (was_tls || next.rfind("http://", 0) != 0))
        return Status(Code::kUnavailable, "source " + redactedSource(url) +
                                              " redirects to a location that is not an absolute URL (or from https to http)");
      current = std::move(next);
      continue;
    }
    if (resp->status != 200) {
      ::unlink(part.c_str());
      return Status(Code::kUnavailable, "source " + redactedSource(url) + " answered " + std::to_string(resp->status));
    }
    if (::fsync(out.get()) != 0) return errnoStatus("fsync " + part, errno);
    out.reset();
    if (::rename(part.c_str(), dest.c_str()) != 0) return errnoStatus("rename " + dest, errno);
    validators = json::object();
    if (!resp->header("etag").empty()) validators["etag"] = resp->header("etag");
    if (!resp->header("last-modified").empty()) validators["last_modified"] = resp->header("last-modified");
    validators["path"] = dest;
    if (ctx != nullptr) ctx->log("downloaded " + redactedSource(url) + ": " + std::to_string(received) + " bytes");
    return true;
  }
  return Status(Code::kUnavailable, "source " + redactedSource(url) + ": too many redirects");
}

Result<json> Scanner::update(JobContext* ctx) {
  if (options_.sources.empty())
    return Status(Code::kInvalidArgument, "no vulnerability database source is configured (--vulndb-source)");
  json cache = store_.state("source_validators");
  if (!cache.is_object()) cache = json::object();
  json next = cache;
  std::map<std::string, std::string> changed;
  json report = json::array();
  size_t failed = 0;
  for (size_t i = 0; i < options_.sources.size(); ++i) {
    const std::string& url = options_.sources[i];
    json validators = cache.value(url, json::object());
    std::string dest = options_.tmp_dir + "/vulndb-source-" + std::to_string(i) + "-" + std::to_string(clock_.nowMillis()) + ".zip";
    auto fetched = fetchSource(url, validators, dest, ctx);
    if (!fetched.isOk()) {
      ++failed;
      logWarn("vulndb source failed", {{"source", redactedSource(url)}, {"error", fetched.status().message()}});
      if (ctx != nullptr) ctx->log(fetched.status().message());
      report.push_back({{"source", redactedSource(url)}, {"error", fetched.status().message()}});
      continue;
    }
    report.push_back({{"source", redactedSource(url)}, {"changed", *fetched}});
    if (!*fetched) continue;
    next[url] = validators;
    changed[url] = validators.value("path", dest);
  }
  if (failed == options_.sources.size())
    return Status(Code::kUnavailable, "no vulnerability database source could be read: " + report.dump());
  json out = {{"sources", report}};
  if (!changed.empty()) {
    auto imported = importSources(changed, ctx);
    if (!imported.isOk()) {
      // Not remembered: the next run fetches them again.
      for (const auto& [url, path] : changed)
        if (path.rfind(options_.tmp_dir + "/vulndb-", 0) == 0) ::unlink(path.c_str());
      return imported.status();
    }
    out["imported"] = *imported;
  } else if (ctx != nullptr) {
    ctx->log("no source changed");
  }
  WHARF_RETURN_IF_ERROR(store_.setState("source_validators", next));
  if (failed == 0) WHARF_RETURN_IF_ERROR(store_.setState("checked_at", clock_.nowMillis()));
  return out;
}

std::optional<std::string> Scanner::refusal(const std::string& repo, const std::string& digest) {
  auto policies = registry_.policies();
  const Policy* p = mostSpecificPolicy(*policies, repo, [](const Policy& x) { return !x.block_severity.empty(); });
  if (p == nullptr) return std::nullopt;
  auto at = parseSeverity(p->block_severity);
  if (!at) return std::nullopt;  // NONE
  auto worst = pullBlock(digest, *at, p->exemptions, clock_.nowMillis());
  if (!worst) return std::nullopt;
  return "refused by the vulnerability policy of " + p->scope + " (" + p->block_severity + " and above with a fix): " + *worst;
}

void Scanner::reportRefused(const std::vector<std::pair<std::string, std::string>>& changed) {
  if (!blocked_hook_ || changed.empty()) return;
  std::vector<std::string> refused;
  for (const auto& [repo, digest] : changed)
    if (refusal(repo, digest)) refused.push_back(digest);
  if (!refused.empty()) blocked_hook_(refused);
}

Result<size_t> Scanner::enforcePolicy(const std::string& scope) {
  std::vector<std::pair<std::string, std::string>> in_scope;
  WHARF_RETURN_IF_ERROR(registry_.metadata().forEachManifest(
      [&](const std::string& repo, const std::string& digest, const ManifestRecord&) {
        if (scopeCovers(scope, repo)) in_scope.emplace_back(repo, digest);
        return true;
      }));
  std::vector<std::string> refused;
  for (const auto& [repo, digest] : in_scope)
    if (refusal(repo, digest)) refused.push_back(digest);
  if (!refused.empty() && blocked_hook_) blocked_hook_(refused);
  return refused.size();
}

void Scanner::forgetPullDecisions() {
  std::lock_guard lock(block_mu_);
  block_cache_.clear();
  ++block_epoch_;
}

std::optional<std::string> Scanner::pullBlock(const std::string& digest, Severity at,
                                              const std::vector<VulnExemption>& exemptions, int64_t now_ms) {
  std::shared_ptr<const std::vector<Fixable>> fixable;
  uint64_t epoch = 0;
  {
    std::lock_guard lock(block_mu_);
    if (auto it = block_cache_.find(digest); it != block_cache_.end()) fixable = it->second;
    epoch = block_epoch_;
  }
  if (!fixable) {
    // The stored findings only (an index: its children's), not the API's view of them.
    auto list = std::make_shared<std::vector<Fixable>>();
    auto collect = [&](const json& image) {
      if (jsonStringOr(image, "status") != "completed") return;
      auto findings = image.find("findings");
      if (findings == image.end() || !findings->is_array()) return;
      for (const auto& f : *findings) {
        if (!f.is_object() || jsonStringOr(f, "fixed").empty()) continue;
        Fixable x;
        x.severity = parseSeverity(jsonStringOr(f, "severity")).value_or(Severity::kUnknown);
        x.advisory = jsonStringOr(f, "advisory");
        x.package = jsonStringOr(f, "package");
        x.installed = jsonStringOr(f, "installed");
        x.fixed = jsonStringOr(f, "fixed");
        x.ids.push_back(x.advisory);
        if (auto aliases = f.find("aliases"); aliases != f.end() && aliases->is_array())
          for (const auto& a : *aliases) {
            if (!a.is_string()) continue;
            x.ids.push_back(a.get<std::string>());
            x.aliases += (x.aliases.empty() ? "" : ", ") + a.get<std::string>();
          }
        list->push_back(std::move(x));
      }
    };
    auto doc = store_.image(digest);
    if (doc.isOk()) {
      if (doc->value("index", false) && doc->contains("manifests") && (*doc)["manifests"].is_array()) {
        for (const auto& child : (*doc)["manifests"])
          if (auto c = store_.image(jsonStringOr(child, "digest")); c.isOk()) collect(*c);
      } else {
        collect(*doc);
      }
    }
    std::stable_sort(list->begin(), list->end(), [](const Fixable& a, const Fixable& b) { return a.severity > b.severity; });
    fixable = list;
    std::lock_guard lock(block_mu_);
    if (block_epoch_ == epoch) {  // no result changed while this one was read
      if (block_cache_.size() > 20000) block_cache_.clear();
      block_cache_[digest] = fixable;
    }
  }
  for (const auto& f : *fixable) {
    if (f.severity < at) break;  // worst first
    bool exempt = false;
    for (const auto& e : exemptions)
      exempt = exempt || (e.expires_ms > now_ms && std::find(f.ids.begin(), f.ids.end(), e.advisory) != f.ids.end());
    if (exempt) continue;
    return f.advisory + (f.aliases.empty() ? "" : " (" + f.aliases + ")") + " in " + f.package + " " + f.installed + ", " +
           severityName(f.severity) + ", fixed in " + f.fixed;
  }
  return std::nullopt;
}

json Scanner::databaseInfo() {
  json meta = store_.dbMeta();
  int64_t now = clock_.nowMillis();
  json configured = json::array();
  for (const auto& src : options_.sources) configured.push_back(redactedSource(src));
  // One read: the generation and its metadata are committed together.
  uint64_t generation = meta.is_object() ? meta.value("generation", uint64_t(0)) : 0;
  // loaded_generation: the one this core matches against (another core may have just
  // switched the stored one; this core follows within a few seconds).
  json out = {{"generation", generation}, {"loaded_generation", db()->generation()}, {"sources_configured", configured}};
  if (!meta.is_object() || !meta.contains("updated_at")) {
    out["updated_at"] = nullptr;
    out["age_seconds"] = nullptr;
    out["stale"] = true;
    out["advisories"] = 0;
    out["ecosystems"] = json::object();
    return out;
  }
  int64_t fresh = meta.value("updated_at", int64_t(0));
  auto checked = store_.state("checked_at");
  if (checked.is_number_integer()) fresh = std::max(fresh, checked.get<int64_t>());
  out["updated_at"] = meta["updated_at"];
  out["checked_at"] = fresh;
  out["age_seconds"] = (now - fresh) / 1000;
  out["stale"] = options_.max_db_age_ms > 0 && now - fresh > options_.max_db_age_ms;
  out["advisories"] = meta.value("advisories", 0);
  out["ecosystems"] = meta.value("ecosystems", json::object());
  out["newest_modified"] = meta.value("newest_modified", "");
  json sources = json::object();
  json stored_sources = meta.value("sources", json::object());
  for (const auto& [name, v] : stored_sources.items()) sources[redactedSource(name)] = v;
  out["sources"] = std::move(sources);
  return out;
}

}  // namespace wharf
