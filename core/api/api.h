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
#include "shared/event/work_queue.h"
#include "shared/http/server.h"
#include "shared/oci/routes.h"

namespace wharf {

class EventLog;
struct EventTarget;
struct WebhookService;
class JobRunner;
class Scheduler;

struct ApiOptions {
  size_t max_page = 1000;   // cap on n for tags and catalog listings
  bool access_log = true;
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

// Audit helper: a no-op without an audit log.
void audit(ApiContext& ctx, const Caller& caller, const std::string& action, const std::string& object,
           const std::string& outcome, const std::string& detail = "");

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
// Appends an event (type: see core/events/event_log.h) done by caller for the request;
// a no-op without an event log. Cheap: callable on loop threads for every pull.
void emitEvent(ApiContext& ctx, const Caller& caller, const char* type, const std::string& repository,
               EventTarget target, const Request& req);

// The admin API's shared pieces (admin, edges, jobs, webhooks, storage).
// {"errors":[{"code","message"}]}, the body of every admin API error.
nlohmann::json errorJson(const Status& status);
// The non-empty segments of a path ("/api/v1/jobs/42/log" -> api, v1, jobs, 42, log).
std::vector<std::string> splitPath(std::string_view path);
// A request body that must be a JSON object ("" is {}).
Result<nlohmann::json> parseJsonObject(const std::string& raw);
// Refuses fields of body outside allowed, naming the first.
Status allowFields(const nlohmann::json& body, const std::set<std::string>& allowed);

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

// Runs work on the worker queue, then done on the exchange's loop thread.
template <typename T>
void offload(ApiContext& ctx, const ExchangePtr& ex, std::function<T()> work, std::function<void(T)> done) {
  runAsync<T>(ctx.work, ex->loop(), std::move(work), std::move(done));
}

// Parses the n and last query parameters of a listing; n is capped at max_page.
Status pageParams(const Request& req, size_t max_page, size_t* n, std::string* last);
// The Link header value for the next page of a listing at path.
std::string nextLink(const std::string& path, size_t n, const std::string& last);

}  // namespace wharf
