// Scanning (core/scan) over HTTP:
//
//   GET  /api/v1/vulndb                  -> the database: generation, updated_at, age, stale,
//                                           advisories per ecosystem, sources (any signed-in user)
//   POST /api/v1/vulndb  <zip of OSV JSON files>  -> 202 {"job"}  administrators; streamed
//                                           to disk, imported by a vulndb-import job
//   GET  /api/v1/repositories/<name>/manifests/<tag|digest>/scan  -> the scan result
//        (status, os, packages with purl and ecosystem, findings, counts; an index: one per
//        platform), or {"status":"not_scanned"}; whoever may pull <name>
//   POST /api/v1/repositories/<name>/manifests/<tag|digest>/scan  -> 202 {"job"}  push
//   GET  /api/v1/repositories/<name>/manifests/<tag|digest>/sbom?format=spdx|cyclonedx
//        -> SPDX 2.3 JSON (application/spdx+json) or CycloneDX 1.5 JSON
//   GET  /api/v1/repositories/<name>/manifests/<tag|digest>/trust  -> what signs the image
//        (Notary targets with GUN, role, keys, expiry; cosign signatures) and the trust
//        policy's verdict (core/trust/trust_enforcer.h); whoever may pull <name>
//
// A repository the caller may not pull is unknown to it (404), as in the registry API;
// without credentials, a private repository asks for them (401).
#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include "core/api/api.h"
#include "core/jobs/job_runner.h"
#include "core/scan/sbom.h"
#include "core/scan/scan_jobs.h"
#include "core/scan/scanner.h"
#include "core/trust/trust_enforcer.h"
#include "shared/base/fs.h"
#include "shared/base/ids.h"
#include "shared/base/log.h"
#include "shared/oci/digest.h"
#include "shared/oci/names.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr std::string_view kRepoPrefix = "/api/v1/repositories/";

// The stored upload of POST /api/v1/vulndb: the body goes to a file chunk by chunk (on
// the workers), then a vulndb-import job takes it.
class VulnDbUpload : public std::enable_shared_from_this<VulnDbUpload> {
 public:
  VulnDbUpload(ApiContext& ctx, ExchangePtr ex, std::string actor)
      : ctx_(ctx), ex_(std::move(ex)), actor_(std::move(actor)), uuid_(newUuid()),
        path_(vulndbUploadPath(*ctx.scanner, uuid_)) {}

  void start() {
    auto self = shared_from_this();
    offload<Status>(
        ctx_, ex_,
        [self] {
          self->fd_ = Fd(::open(self->path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
          return self->fd_.valid() ? Status::ok() : errnoStatus("create " + self->path_, errno);
        },
        [self](Status s) {
          if (!s.isOk()) return self->finish(s);
          self->next();
        });
  }

 private:
  void next() {
    auto self = shared_from_this();
    ex_->readBody([self](Status st, std::string data, bool end) { self->onData(st, std::move(data), end); });
  }

  void onData(Status st, std::string data, bool end) {
    if (!st.isOk()) return finish(st);
    received_ += data.size();
    if (received_ > ctx_.scanner->options().max_download_bytes)
      return finish(Status(Code::kTooLarge, "the database file is larger than the limit (vulndb_max_download)"));
    auto self = shared_from_this();
    offload<Status>(
        ctx_, ex_,
        [self, data = std::move(data), end] {
          WHARF_RETURN_IF_ERROR(writeAll(self->fd_.get(), data.data(), data.size()));
          if (!end) return Status::ok();
          if (self->received_ == 0) return Status(Code::kInvalidArgument, "the body is empty: send a zip of OSV JSON files");
          if (::fsync(self->fd_.get()) != 0) return errnoStatus("fsync " + self->path_, errno);
          self->fd_.reset();
          // Pinned here: the upload is a file of this core.
          auto id = self->ctx_.jobs->submit("vulndb-import", json{{"upload", self->uuid_}}, self->actor_,
                                            /*here=*/true);
          if (!id.isOk()) return id.status();
          self->job_ = *id;
          if (self->ctx_.audit != nullptr)
            self->ctx_.audit->record(self->actor_, self->ex_->request().peer, "vulndb.import", "vulndb", "success",
                                     "bytes=" + std::to_string(self->received_) + " job=" + *id);
          return Status::ok();
        },
        [self, end](Status s) {
          if (!s.isOk()) return self->finish(s);
          if (end) return self->finish(Status::ok());
          self->next();
        });
  }

  void finish(const Status& s) {
    if (!s.isOk()) {
      std::string path = path_;
      auto self = shared_from_this();
      ctx_.work.submit([self, path] {
        self->fd_.reset();
        ::unlink(path.c_str());
      });
      if (s.code() == Code::kCancelled) return;
      return replyApi(ex_, fail(s));
    }
    ApiReply r = ok({{"job", job_}, {"bytes", received_}}, 202);
    r.location = "/api/v1/jobs/" + job_;
    replyApi(ex_, std::move(r));
  }

  ApiContext& ctx_;
  ExchangePtr ex_;
  std::string actor_;
  std::string uuid_;
  std::string path_;
  Fd fd_;  // touched on workers only, one task at a time
  uint64_t received_ = 0;
  std::string job_;
};

ApiReply vulndbInfo(ApiContext& ctx, const Request& req) {
  auto who = apiReader(ctx, req);
  if (!who.isOk()) return fail(who.status());
  if (!who->all_access && who->account.anonymous()) return fail(Status(Code::kUnauthorized, "authentication required"));
  json info = ctx.scanner->databaseInfo();
  // Where the data comes from (URLs may carry credentials) is the administrators' to see.
  if (!callerAdmin(*who)) {
    info.erase("sources");
    info.erase("sources_configured");
  }
  return ok(std::move(info));
}

ApiReply imageScan(ApiContext& ctx, const Request& req) {
  // <name>/manifests/<reference>/<scan|sbom>; names hold slashes, so from the right.
  std::string rest = req.path.substr(kRepoPrefix.size());
  auto slash = rest.rfind('/');
  std::string what = rest.substr(slash + 1);
  rest = rest.substr(0, slash);
  auto m = rest.rfind("/manifests/");
  if (m == std::string::npos || (what != "scan" && what != "sbom" && what != "trust"))
    return fail(Status(Code::kNotFound, "no such endpoint"));
  std::string repo = rest.substr(0, m);
  std::string reference = rest.substr(m + std::string("/manifests/").size());
  WHARF_RETURN_IF_ERROR_REPLY(validateRepositoryName(repo));
  if ((what == "scan" && req.method != "GET" && req.method != "POST") || (what != "scan" && req.method != "GET"))
    return fail(Status(Code::kMethodNotAllowed, "method not allowed"));

  auto who = repositoryReader(ctx, req, repo);
  if (!who.isOk()) return fail(who.status());
  auto resolved = referenceDigest(ctx, repo, reference);
  if (!resolved.isOk()) return fail(resolved.status());
  const std::string digest = *resolved;
  auto record = ctx.registry.metadata().manifest(repo, digest);
  if (!record.isOk()) return fail(Status(Code::kManifestUnknown, "manifest unknown: " + repo + "@" + digest));
  if (what == "trust") return ok(ctx.trust_policies->status(repo, digest, record->size));

  if (req.method == "POST") {
    if (!callerMay(ctx, *who, repo, "push"))
      return fail(Status(Code::kDenied, "scanning on demand needs push access to " + repo));
    auto id = ctx.jobs->submit("scan", json{{"repository", repo}, {"digest", digest}}, who->name());
    if (!id.isOk()) return fail(id.status());
    if (ctx.audit != nullptr) ctx.audit->record(who->name(), req.peer, "scan.run", repo + "@" + digest, "success", "job=" + *id);
    ApiReply r = ok({{"job", *id}, {"repository", repo}, {"digest", digest}}, 202);
    r.location = "/api/v1/jobs/" + *id;
    return r;
  }

  auto result = ctx.scanner->result(digest);
  if (!result.isOk() && result.status().code() != Code::kNotFound) return fail(result.status());
  if (!result.isOk()) {
    if (what == "sbom") return fail(Status(Code::kNotFound, repo + "@" + digest + " has not been scanned yet"));
    return ok({{"repository", repo}, {"digest", digest}, {"status", "not_scanned"}});
  }
  json out = std::move(*result);
  // The same content may have been scanned under another name (children of an index too).
  out["repository"] = repo;
  if (out.contains("manifests") && out["manifests"].is_array())
    for (auto& child : out["manifests"])
      if (child.is_object()) child["repository"] = repo;
  if (what == "scan") return ok(std::move(out));

  if (out.value("status", "") != "completed")
    return fail(Status(Code::kNotFound, repo + "@" + digest + " has no software list: its scan " + out.value("status", "") +
                                            (out.contains("error") ? ": " + out.value("error", "") : "")));
  if (out.value("index", false)) {
    std::string list;
    for (const auto& c : out.value("manifests", json::array())) list += " " + c.value("digest", "");
    return fail(Status(Code::kInvalidArgument, repo + "@" + digest + " is an index: ask for the SBOM of one of its images:" + list));
  }
  std::string format = req.queryParam("format").value_or("spdx");
  json doc;
  std::string type, ext;
  if (format == "spdx") {
    const std::string* host = req.headers.get("host");
    std::string base = std::string(ctx.tls ? "https://" : "http://") + (host != nullptr ? *host : "wharf");
    doc = spdxDocument(out, repo, digest, base + req.path + "?format=spdx&generation=" + std::to_string(out.value("db_generation", 0)));
    type = "application/spdx+json";
    ext = ".spdx.json";
  } else if (format == "cyclonedx") {
    doc = cycloneDxDocument(out, repo, digest);
    type = "application/vnd.cyclonedx+json";
    ext = ".cdx.json";
  } else {
    return fail(Status(Code::kInvalidArgument, "format must be spdx or cyclonedx"));
  }
  std::string body = doc.dump(2, ' ', false, json::error_handler_t::replace);
  std::string file = repo.substr(repo.rfind('/') + 1) + "-" + digest.substr(digest.find(':') + 1, 12) + ext;
  ApiReply r;
  r.stream = [body = std::move(body), type, file](Loop&) {
    Response resp = Response::text(200, body, type);
    resp.headers.add("Content-Disposition", "attachment; filename=\"" + file + "\"");
    return resp;
  };
  return r;
}

}  // namespace

bool isScanPath(std::string_view path) {
  if (path == "/api/v1/vulndb") return true;
  if (path.substr(0, kRepoPrefix.size()) != kRepoPrefix) return false;
  bool tail = path.size() > 6 && (path.substr(path.size() - 5) == "/scan" || path.substr(path.size() - 5) == "/sbom" ||
                                   path.substr(path.size() - 6) == "/trust");
  return tail && path.find("/manifests/") != std::string_view::npos;
}

void handleScans(ApiContext& ctx, const ExchangePtr& ex) {
  const Request& req = ex->request();
  bool trust = req.path.size() > 6 && req.path.substr(req.path.size() - 6) == "/trust";
  if (trust && ctx.trust_policies == nullptr) return replyError(ex, Status(Code::kNotFound, "the trust server is off"));
  if (!trust && (ctx.scanner == nullptr || ctx.jobs == nullptr))
    return replyError(ex, Status(Code::kNotFound, "scanning is off"));
  if (req.path == "/api/v1/vulndb" && req.method == "POST") {
    // Streamed: authenticate first (on a worker: the KDF), then take the body.
    offload<Result<Caller>>(
        ctx, ex, [&ctx, ex]() -> Result<Caller> { return apiReader(ctx, ex->request()); },
        [&ctx, ex](Result<Caller> who) {
          if (!who.isOk()) return replyApi(ex, fail(who.status()));
          if (!who->all_access && who->account.anonymous())
            return replyApi(ex, fail(Status(Code::kUnauthorized, "authentication required")));
          if (!callerAdmin(*who))
            return replyApi(ex, fail(Status(Code::kDenied, "only administrators import vulnerability databases")));
          std::make_shared<VulnDbUpload>(ctx, ex, who->name())->start();
        });
    return;
  }
  serveApi(ctx, ex, kMaxApiBody, [&ctx, ex](std::string) -> ApiReply {
    const Request& r = ex->request();
    if (r.path == "/api/v1/vulndb") {
      if (r.method != "GET") return fail(Status(Code::kMethodNotAllowed, "method not allowed"));
      return vulndbInfo(ctx, r);
    }
    return imageScan(ctx, r);
  });
}

}  // namespace wharf
