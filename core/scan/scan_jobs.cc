#include "core/scan/scan_jobs.h"

#include <chrono>
#include <set>

#include <unistd.h>

#include "core/events/event_log.h"
#include "core/metadata/policy.h"
#include "core/registry/registry.h"
#include "shared/base/ids.h"
#include "shared/base/log.h"
#include "shared/oci/digest.h"
#include "shared/oci/names.h"

namespace wharf {

namespace {

using nlohmann::json;

Status keysOnly(const json& p, std::initializer_list<const char*> allowed) {
  if (!p.is_object()) return Status(Code::kInvalidArgument, "params is an object");
  for (auto it = p.begin(); it != p.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || it.key() == a;
    if (!ok) return Status(Code::kInvalidArgument, "params." + it.key() + " is not a parameter of this job");
  }
  return Status::ok();
}

Status checkScanParams(const json& p) {
  WHARF_RETURN_IF_ERROR(keysOnly(p, {"repository", "digest"}));
  if (!p.contains("repository") || !p["repository"].is_string() ||
      !validateRepositoryName(p["repository"].get<std::string>()).isOk())
    return Status(Code::kInvalidArgument, "params.repository is a repository name");
  if (!p.contains("digest") || !p["digest"].is_string() || !Digest::parse(p["digest"].get<std::string>()).isOk())
    return Status(Code::kInvalidArgument, "params.digest is a digest");
  return Status::ok();
}

}  // namespace

Status submitScanAfterUpgrade(JobRunner& runner, ScanStore& store, Registry& registry) {
  json stored = store.state("scanner_version");
  if (stored.is_number_integer() && stored.get<int>() == kLayerScanVersion) return Status::ok();
  bool stored_any = false;  // a new registry has nothing to scan: no job
  WHARF_RETURN_IF_ERROR(registry.metadata().forEachManifest([&](const std::string&, const std::string&, const ManifestRecord&) {
    stored_any = true;
    return false;
  }));
  // Replicas starting together: the one that moves the version on submits the job.
  auto moved = store.swapState("scanner_version", stored, kLayerScanVersion);
  if (!moved.isOk()) return moved.status();
  if (!*moved || !stored_any) return Status::ok();
  auto id = runner.submit("scan-all", json::object(), "scanner");
  if (!id.isOk()) {
    (void)store.swapState("scanner_version", kLayerScanVersion, stored);  // tried again at the next start
    return id.status();
  }
  logInfo("scanning stored images with a new scanner", {{"job", *id}, {"scanner", kLayerScanVersion}});
  return Status::ok();
}

std::string vulndbUploadPath(const Scanner& scanner, const std::string& uuid) {
  return scanner.options().tmp_dir + "/vulndb-upload-" + uuid + ".zip";
}

void registerScanJobs(JobRunner& runner, Scanner& scanner, Registry& registry) {
  runner.registerKind(
      "scan", "Scan an image or index for packages and vulnerabilities (params.repository, params.digest).",
      [&scanner](JobContext& ctx) -> Result<json> {
        std::string repo = ctx.params().value("repository", "");
        std::string digest = ctx.params().value("digest", "");
        ctx.log("scanning " + repo + "@" + digest);
        auto r = scanner.scan(repo, digest, &ctx);
        if (!r.isOk() && r.status().code() == Code::kUnsupported) {
          ctx.log("skipped: " + r.status().message());
          return json{{"repository", repo}, {"digest", digest}, {"skipped", r.status().message()}};
        }
        if (!r.isOk()) return r.status();
        size_t packages = 0;
        if (r->contains("packages")) packages = (*r)["packages"].size();
        for (const auto& child : r->value("manifests", json::array())) packages += child.value("packages", json::array()).size();
        ctx.log("done: " + std::to_string(packages) + " packages, findings " + (*r)["counts"].dump());
        return json{{"repository", repo}, {"digest", digest}, {"counts", (*r)["counts"]}, {"packages", packages}};
      },
      /*exclusive=*/false);
  runner.setParamsCheck("scan", checkScanParams);

  runner.registerKind(
      "scan-all", "Scan every stored image that has no result of this scanner (params.rescan: all of them).",
      [&scanner, &registry](JobContext& ctx) -> Result<json> {
        bool rescan = ctx.params().value("rescan", false);
        std::vector<std::pair<std::string, std::string>> todo;
        std::set<std::string> seen;
        WHARF_RETURN_IF_ERROR(registry.metadata().forEachManifest(
            [&](const std::string& repo, const std::string& digest, const ManifestRecord&) {
              if (!seen.insert(digest).second) return true;
              if (!rescan && scanner.hasCurrentResult(digest)) return true;
              todo.emplace_back(repo, digest);
              return true;
            }));
        uint64_t ok = 0, failed = 0;
        for (size_t i = 0; i < todo.size(); ++i) {
          if (ctx.cancelled()) return Status(Code::kCancelled, "cancelled after " + std::to_string(i) + " images");
          ctx.progress(i, todo.size(), "scanning stored images");
          auto r = scanner.scan(todo[i].first, todo[i].second, &ctx);
          if (r.isOk()) {
            ++ok;
          } else if (r.status().code() != Code::kUnsupported) {
            ++failed;
            ctx.log(todo[i].first + "@" + todo[i].second + ": " + r.status().message());
          }
        }
        ctx.progress(todo.size(), todo.size(), "done");
        return json{{"scanned", ok}, {"failed", failed}, {"candidates", todo.size()}};
      });
  runner.setParamsCheck("scan-all", [](const json& p) -> Status {
    WHARF_RETURN_IF_ERROR(keysOnly(p, {"rescan"}));
    if (p.contains("rescan") && !p["rescan"].is_boolean()) return Status(Code::kInvalidArgument, "params.rescan is a boolean");
    return Status::ok();
  });

  runner.registerKind(
      "vulndb-update", "Fetch the configured OSV sources and switch to a new database generation when they changed.",
      [&scanner](JobContext& ctx) -> Result<json> { return scanner.update(&ctx); });
  runner.setParamsCheck("vulndb-update", [](const json& p) { return keysOnly(p, {}); });

  runner.registerKind(
      "vulndb-import", "Import an uploaded zip of OSV advisories (wharfctl vulndb import).",
      [&scanner](JobContext& ctx) -> Result<json> {
        std::string path = vulndbUploadPath(scanner, ctx.params().value("upload", ""));
        // The upload becomes the "upload" source: kept (the previous upload is removed once
        // this one is imported) so that later generations, after an online update, still
        // include it.
        auto r = scanner.importDatabase(path, "upload", &ctx);
        if (!r.isOk()) ::unlink(path.c_str());
        return r;
      });
  runner.setParamsCheck("vulndb-import", [](const json& p) -> Status {
    WHARF_RETURN_IF_ERROR(keysOnly(p, {"upload"}));
    if (!p.contains("upload") || !p["upload"].is_string() || !isUuid(p["upload"].get<std::string>()))
      return Status(Code::kInvalidArgument, "params.upload is the id of an uploaded file");
    return Status::ok();
  });
}

ScanTrigger::ScanTrigger(EventLog& events, JobRunner& runner, Registry& registry, ScanStore& store, Scanner& scanner,
                         bool on_push_default)
    : events_(events), runner_(runner), registry_(registry), store_(store), scanner_(scanner),
      on_push_default_(on_push_default) {}

ScanTrigger::~ScanTrigger() { stop(); }

void ScanTrigger::start() { thread_ = std::thread([this] { run(); }); }

void ScanTrigger::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ScanTrigger::wanted(const std::string& repo) {
  auto policies = registry_.metadata().policies();
  const Policy* p = mostSpecificPolicy(policies, repo, [](const Policy& x) { return x.scan_on_push.has_value(); });
  return p != nullptr ? *p->scan_on_push : on_push_default_;
}

// The cursor (trigger_seq, the last event looked at) is shared by the replicas of one
// store: a page of pushes is taken by moving the cursor over it with swapState, and only
// the replica that moved it submits the page's scans. One that fails to submit gives
// back what it did not submit (the cursor goes back to before it, if nobody moved it
// since); a replica that dies in between loses those scans (scan-all finds them).
void ScanTrigger::run() {
  json kept = store_.state("trigger_seq");
  // Kept at once: pushes after this point are scanned even if the core stops before the next.
  if (!kept.is_number_unsigned()) (void)store_.swapState("trigger_seq", json(), events_.lastSeq());
  EventFilter filter;
  filter.types = {event_type::kManifestPush};
  for (int round = 1;; ++round) {
    {
      std::unique_lock lock(mu_);
      // The log has no second commit hook: a push waits at most this long for its scan.
      cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stop_; });
      if (stop_) return;
    }
    if (round % 20 == 0) {  // every 5 s
      if (Status s = scanner_.refresh(); !s.isOk())
        logWarn("cannot load the vulnerability database", {{"error", s.message()}});
    }
    kept = store_.state("trigger_seq");
    if (!kept.is_number_unsigned()) continue;
    uint64_t cursor = kept.get<uint64_t>();
    if (events_.lastSeq() <= cursor) continue;
    auto page = events_.query(filter, cursor, 500);
    if (!page.isOk()) continue;
    uint64_t next = page->next ? *page->next : page->scanned_to;
    if (next <= cursor) continue;
    auto taken = store_.swapState("trigger_seq", cursor, next);
    if (!taken.isOk() || !*taken) continue;  // another replica took this page
    for (const auto& e : page->events) {
      if (!wanted(e.repository)) continue;
      auto id = runner_.submit("scan", json{{"repository", e.repository}, {"digest", e.target.digest}}, "scanner");
      if (!id.isOk()) {
        // Not lost: the cursor goes back before this push, which is submitted next time.
        logWarn("scan on push not submitted", {{"repository", e.repository}, {"error", id.status().message()}});
        (void)store_.swapState("trigger_seq", next, e.seq - 1);
        break;
      }
    }
  }
}

}  // namespace wharf
