// The HTTP face of wharf-core: routes each request to its endpoint family. One handler
// file per family (base.cc, blobs.cc, uploads.cc, manifests.cc, tags.cc, referrers.cc);
// this header is what they share.
#pragma once

#include <functional>
#include <memory>
#include <vector>
#include <string_view>
#include <set>

#include <nlohmann/json.hpp>

#include "core/auth/audit_log.h"
#include "core/auth/auth_service.h"
#include "core/registry/registry.h"
#include "shared/base/json_body.h"
#include "shared/event/work_queue.h"
#include "shared/http/server.h"
#include "shared/oci/routes.h"

namespace wharf {

class EventLog;
struct EventTarget;
struct WebhookService;
class JobRunner;
class Scheduler;
class DiskSpace;
class EdgeCommandStore;
class ChannelHub;
class UsageStore;
class Scanner;
class TrustService;
class TrustEnforcer;

struct ApiOptions {
  size_t max_page = 1000;   // cap on n for tags and catalog listings
  bool access_log = true;
  // > 0: blob GETs are redirected (307) to a URL of the blob store valid this long, when
  // the store has such URLs (S3 presigned GETs).
  int64_t blob_redirect_s = 0;
};

struct ApiContext {
  ApiContext(Registry& r, WorkQueue& w, WorkQueue& h, ApiOptions o) : registry(r), work(w), hash(h), options(o) {
    access_log = o.access_log;
  }
  Registry& registry;
  WorkQueue& work;  // blocking disk work
  WorkQueue& hash;  // hashing only: never blocks (see Registry::append)
  ApiOptions options;
  // Access control; null when the registry runs without authentication (--auth none).
  AuthService* auth = nullptr;
  IdentityStore* identity = nullptr;
  AuditLog* audit = nullptr;
  EventLog* events = nullptr;            // null: no event log (events are not recorded)
  WebhookService* webhooks = nullptr;    // null: no webhooks
  JobRunner* jobs = nullptr;             // null: no job system (admin LDAP sync runs inline)
  Scheduler* scheduler = nullptr;
  DiskSpace* disk = nullptr;             // null: no reserve (pushes go on until a write fails)
  EdgeCommandStore* commands = nullptr;  // null: no central administration of edges
  ChannelHub* channel = nullptr;         // set with commands: wakes the edges' channel polls
  UsageStore* usage = nullptr;           // null: edge reports are refused (503), no usage figures
  Scanner* scanner = nullptr;            // null: no scanning (the scan and vulndb APIs answer 404)
  TrustService* trust = nullptr;         // null: no trust server (the _trust routes answer 404)
  TrustEnforcer* trust_policies = nullptr;  // set with trust: trust policies on pulls, .../trust
  int64_t edge_unreachable_after_ms = 180'000;  // an edge's state: see edgeState()
  std::function<void()> directory_changed;  // after the LDAP settings change (schedules follow)
  bool tls = false;  // served over TLS (for URLs built from the Host header)
  static inline bool access_log = true;  // set once at start-up
};

using ExchangePtr = std::shared_ptr<Exchange>;

// Who is calling, as established by the router before a handler runs.
struct Caller {
  Account account;
  std::shared_ptr<const TokenClaims> claims;  // of the bearer token, when there is one
  std::string peer;
  bool all_access = false;  // authentication is off
  std::string name() const { return account.anonymous() ? "anonymous" : account.name; }
  bool may(const std::string& repo, const std::string& action) const {
    return all_access || (claims && claims->allows("repository", repo, action));
  }
};

// The caller of a read API over repositories (scans, signatures, images): anonymous
// without credentials (public repositories stay readable); a Bearer token held to its
// own scopes, as in the registry API; Basic credentials (a password, or an access token
// and its scopes) to the account's access policy.
Result<Caller> apiReader(ApiContext& ctx, const Request& req);
bool callerMay(ApiContext& ctx, const Caller& c, const std::string& repo, const std::string& action);
// apiReader, then pull access to repo: a repository the caller may not pull is unknown to
// it (404), as in the registry API; without credentials, a private one asks for them (401).
Result<Caller> repositoryReader(ApiContext& ctx, const Request& req, const std::string& repo);
// A tag or digest reference of repo as a digest (kManifestUnknown for an unknown tag).
Result<std::string> referenceDigest(ApiContext& ctx, const std::string& repo, const std::string& reference);
// Administration through this credential: an administrator's password, or a token that
// is not limited to some repositories.
bool callerAdmin(const Caller& c);

// A request a browser script made (fetch: Sec-Fetch-Dest: empty), which must not get a
// Basic challenge (the browser would prompt over the web UI).
bool fromBrowserScript(const Request& req);

// Audit helper: a no-op without an audit log.
void audit(ApiContext& ctx, const Caller& caller, const std::string& action, const std::string& object,
           const std::string& outcome, const std::string& detail = "");

// Replies r with [start, start+length) of a stored blob as its body: the file
// (sendfile), or for stores without files, read from the store piece by piece (the first
// before the reply, so that a store that is away answers an error, not a cut body).
void replyBlob(ApiContext& ctx, const ExchangePtr& ex, Response r, const BlobFile& file, const Digest& digest,
               uint64_t start, uint64_t length);

// Routes one request (the server's Handler).
void handleRequest(ApiContext& ctx, const ExchangePtr& ex);

// Endpoint families.
void handleBase(ApiContext& ctx, const ExchangePtr& ex);
void handleCatalog(ApiContext& ctx, const ExchangePtr& ex, const Caller& caller);
void handleTags(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller);
void handleBlob(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller);
void handleUploadStart(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller);
void handleUpload(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller);
void handleManifest(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller);
void handleReferrers(ApiContext& ctx, const ExchangePtr& ex, const Route& route, const Caller& caller);

// The token endpoint (/auth/token), the public keys (/auth/keys) and the admin API
// (/api/v1/...), of which edges (/api/v1/edges...) are their own family.
void handleAuth(ApiContext& ctx, const ExchangePtr& ex);
void handleAdmin(ApiContext& ctx, const ExchangePtr& ex);
void handleEdges(ApiContext& ctx, const ExchangePtr& ex);
// The event log (/api/v1/events, /api/v1/events/stream) and webhooks (/api/v1/webhooks...).
void handleEvents(ApiContext& ctx, const ExchangePtr& ex);
void handleWebhooks(ApiContext& ctx, const ExchangePtr& ex);
// Jobs and schedules (/api/v1/jobs..., /api/v1/schedules...).
void handleJobs(ApiContext& ctx, const ExchangePtr& ex);
// Storage policies (/api/v1/policies...) and usage (/api/v1/usage).
void handleStorage(ApiContext& ctx, const ExchangePtr& ex);
// The web UI (ui.cc): /ui/..., and / redirected there.
bool isUiPath(std::string_view path);
void handleUi(ApiContext& ctx, const ExchangePtr& ex);
// Tags and images as people browse them (browse.cc): /api/v1/repositories/<name>/tags
// and /api/v1/repositories/<name>/manifests/<reference>.
bool isBrowsePath(std::string_view path);
void handleBrowse(ApiContext& ctx, const ExchangePtr& ex);
// Scan results, SBOMs, signatures and the vulnerability database (scans.cc):
// /api/v1/vulndb and /api/v1/repositories/<name>/manifests/<reference>/{scan,sbom,trust}.
bool isScanPath(std::string_view path);
// The Notary v1 trust server (trust.cc): /v2/<gun>/_trust/tuf/...
bool isTrustPath(std::string_view path);
void handleTrust(ApiContext& ctx, const ExchangePtr& ex);
void handleScans(ApiContext& ctx, const ExchangePtr& ex);
// Edge reports and bandwidth (fleet_usage.cc): POST /api/v1/edges/self/reports,
// GET /api/v1/edges/<name>/usage (both dispatched by handleEdges) and /api/v1/fleet/...
bool isEdgeUsagePath(std::string_view path);  // the two under /api/v1/edges
void handleFleetUsage(ApiContext& ctx, const ExchangePtr& ex);
// Adds "status" to each edge item (Edge::toJson() objects) from the usage store; a no-op
// without one. On a worker: reads the last 24 hours of hourly rows.
void addEdgeStatus(ApiContext& ctx, nlohmann::json& items);
// Drops a removed edge's status and counter state (its history stays); a no-op without a
// usage store. On a worker: waits for the store's writer.
Status forgetEdgeUsage(ApiContext& ctx, const std::string& name);
// Fleet metrics for /metrics: per-edge counters and gauges of the edges that exist.
std::string renderEdgeMetrics(ApiContext& ctx);
// Appends an event (type: see core/events/event_log.h) done by caller for the request;
// a no-op without an event log. Cheap: callable on loop threads for every pull.
void emitEvent(ApiContext& ctx, const Caller& caller, const char* type, const std::string& repository,
               EventTarget target, const Request& req);

// The /api/v1 families' shared pieces (admin, edges, jobs, webhooks, storage, events).
// {"errors":[{"code","message"}]}, the body of every API error.
nlohmann::json errorJson(const Status& status);
// The non-empty segments of a path ("/api/v1/jobs/42/log" -> api, v1, jobs, 42, log).
std::vector<std::string> splitPath(std::string_view path);

// What an /api/v1 handler answers: a status and a JSON body (none for 204), or a stream
// set up on the loop thread.
struct ApiReply {
  int status = 200;
  nlohmann::json body;
  std::string challenge;   // WWW-Authenticate, on a 401
  std::string location;    // Location
  bool no_store = false;   // the body carries a secret: Cache-Control: no-store
  // Set instead of a body: builds the response on the exchange's loop thread (given
  // that loop), for a response that streams (Server-Sent Events).
  std::function<Response(Loop& loop)> stream;
};
// The largest /api/v1 request body (any family): room for a 1 MB string field, so that
// an over-long field is refused by name (400) rather than as a body (413).
constexpr size_t kMaxApiBody = 2 << 20;
ApiReply apiOk(nlohmann::json body, int status = 200);
// Returns apiFail(status) from a function answering an ApiReply when expr is not OK.
#define WHARF_RETURN_IF_ERROR_REPLY(expr) \
  do { ::wharf::Status _st = (expr); if (!_st.isOk()) return ::wharf::apiFail(_st); } while (0)
// The error's status and body; a 401 carries the Basic challenge of the admin API.
ApiReply apiFail(const Status& status);
// The families' shorthands for the two.
inline ApiReply ok(nlohmann::json body, int status = 200) { return apiOk(std::move(body), status); }
inline ApiReply fail(const Status& status) { return apiFail(status); }
// The one way an /api/v1 family answers: reads the body (at most max_body bytes: 413
// beyond), runs handler(body) on a worker, and sends its reply. A handler that throws
// answers 500 naming the request id, which is logged with the exception; the core goes on.
void serveApi(ApiContext& ctx, const ExchangePtr& ex, size_t max_body, std::function<ApiReply(std::string body)> handler);
// Sends an ApiReply (serveApi's last step), on the exchange's loop thread.
void replyApi(const ExchangePtr& ex, ApiReply r);

// Authenticates an admin API request: Basic (password or access token, audited as a
// login) or a Bearer token of a user. May pay the password KDF: call on a worker.
Result<Account> authenticateApiCaller(ApiContext& ctx, const Request& req);
// The token realm clients are sent to (as in the Bearer challenge): the configured
// public URL, else the address the request was sent to. REQUIRES: ctx.auth.
std::string tokenRealm(const ApiContext& ctx, const Request& req);

// Sends a response with the headers every registry response carries, and records it
// (access log, metrics).
void reply(const ExchangePtr& ex, Response response);
// Sends the spec's JSON error body for a non-OK status.
void replyError(const ExchangePtr& ex, const Status& status);
Response errorResponse(const Status& status);
// The last resort when a handler threw: logs the exception with the request id and
// answers 500 (if the exchange can still be answered).
void replyHandlerFailure(const ExchangePtr& ex, const std::string& what);

// Runs work on the worker queue, then done on the exchange's loop thread. If work
// throws (a bug), done is not called: the exchange gets a 500 naming the request id.
template <typename T>
void offload(ApiContext& ctx, const ExchangePtr& ex, std::function<T()> work, std::function<void(T)> done) {
  ctx.work.submit([ex, work = std::move(work), done = std::move(done)]() mutable {
    std::shared_ptr<T> result;
    std::string failure;
    try {
      result = std::make_shared<T>(work());
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "unknown exception";
    }
    ex->loop().post([ex, done = std::move(done), result, failure]() mutable {
      if (result) return done(std::move(*result));
      replyHandlerFailure(ex, failure);
    });
  });
}

// Parses the n and last query parameters of a listing; n is capped at max_page.
Status pageParams(const Request& req, size_t max_page, size_t* n, std::string* last);
// The Link header value for the next page of a listing at path.
std::string nextLink(const std::string& path, size_t n, const std::string& last);

}  // namespace wharf
