#include "edge/pull/pull_handler.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "edge/pull/fill_source.h"
#include "shared/base/json_body.h"
#include "shared/base/clock.h"
#include "shared/base/log.h"
#include "shared/http/range.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/digest.h"
#include "shared/oci/media_types.h"
#include "shared/oci/names.h"
#include "shared/oci/routes.h"

namespace wharf {
namespace {

using ExchangePtr = std::shared_ptr<Exchange>;

// How many times a fill whose upstream connection broke resumes with Range.
constexpr int kMaxResumes = 3;
// Redirects a fill follows (the core's presigned URLs to its object store, registries'
// CDNs), and the hosts they lead to that each loop keeps a client pool for.
constexpr int kMaxRedirects = 3;
constexpr size_t kMaxRedirectHosts = 32;
// How long the edge takes blob bytes from the core itself after the core's store could
// not be reached from here through a redirect.
constexpr int64_t kStoreRetryMs = 5 * 60 * 1000;
std::atomic<int64_t> core_store_unreachable_until{0};


struct EdgeMetrics {
  MetricsRegistry& r = MetricsRegistry::global();
  Counter& hits = r.counter("wharf_edge_cache_hits_total", "Blob requests served from the cache.");
  Counter& misses = r.counter("wharf_edge_cache_misses_total", "Blob requests that led a fill.");
  Counter& joined = r.counter("wharf_edge_fill_followers_total", "Blob requests that followed a fill already running.");
  Counter& bytes_cache = r.counter("wharf_edge_bytes_from_cache_total", "Blob bytes served from committed cache files.");
  Counter& bytes_upstream = r.counter("wharf_edge_bytes_from_upstream_total", "Blob bytes received from upstreams.");
  Counter& bytes_peers = r.counter("wharf_edge_bytes_from_peers_total",
                                   "Blob bytes received from the edges of the site that own them.");
  Counter& peer_fallbacks = r.counter("wharf_edge_peer_fallbacks_total",
                                      "Blob misses a peer edge could not serve, fetched from the upstream instead.");
  Counter& resumes = r.counter("wharf_edge_fill_resumes_total",
                               "Fills whose upstream connection broke and that resumed with Range.");
  Counter& redirects = r.counter("wharf_edge_fill_redirects_total",
                                 "Fills redirected by the upstream (the core's object store, a registry's CDN).");
  Counter& redirect_fallbacks = r.counter("wharf_edge_fill_redirect_fallbacks_total",
                                          "Redirected fills the store could not serve, fetched from the core instead.");
  Counter& upstream_errors = r.counter("wharf_edge_upstream_errors_total",
                                       "Fills and proxied requests the upstream failed.");
  Counter& manifest_hits = r.counter("wharf_edge_manifest_hits_total", "Manifest requests answered from the cache.");
  Counter& revalidated = r.counter("wharf_edge_manifest_revalidated_total",
                                   "Expired tags the upstream confirmed unchanged (304).");
  Counter& stale = r.counter("wharf_edge_stale_served_total",
                             "Cached manifests served because the upstream could not answer.");
  Counter& trust_refused = r.counter("wharf_edge_trust_refused_total",
                                     "Tags refused at the edge by a trust policy (unsigned, or not for that digest).");
  static EdgeMetrics& get() {
    static EdgeMetrics m;
    return m;
  }
};

Response error(const Status& st) { return Response::error(st); }

// A request from another edge of the site (the header names it): served like a client's
// (its client's token is checked here too), never passed on to a third edge, and not
// counted as served (the edge that serves the client counts it).
constexpr const char* kPeerHeader = "X-Wharf-Peer";
bool fromPeer(const ExchangePtr& ex) { return ex->request().headers.get("x-wharf-peer") != nullptr; }

// For the reports to the core: a GET answered with a body (HEADs are not counted).
void countServed(EdgeContext& ctx, const ExchangePtr& ex, const std::string& repo, uint64_t bytes, bool hit) {
  if (ctx.stats != nullptr && !ex->request().isHead() && !fromPeer(ex)) ctx.stats->served(repo, bytes, hit);
}
void countUpstreamError(EdgeContext& ctx) {
  EdgeMetrics::get().upstream_errors.inc();
  if (ctx.stats != nullptr) ctx.stats->error("upstream");
}

void reply(EdgeContext& ctx, const ExchangePtr& ex, Response r) {
  r.headers.add("Docker-Distribution-API-Version", "registry/2.0");
  if (ctx.access_log && logEnabled(LogLevel::kInfo)) {
    logInfo("request", {{"method", ex->request().method}, {"path", ex->request().path}, {"status", r.status}});
  }
  ex->respond(std::move(r));
}

// The client pool of the calling loop thread for an upstream (pools belong to one loop).
ClientPool* poolFor(const UpstreamTarget& up, Loop& loop) {
  thread_local std::map<std::pair<Loop*, size_t>, std::unique_ptr<ClientPool>> pools;
  auto& p = pools[{&loop, up.index}];
  if (!p) {
    auto created = ClientPool::create(loop, up.address, up.options);
    if (!created.isOk()) {
      logError("cannot set up the upstream", {{"upstream", up.base_url}, {"error", created.status().message()}});
      return nullptr;
    }
    p = std::move(created).value();
  }
  return p.get();
}

// The client pool of the calling loop thread for a peer edge.
ClientPool* peerPool(const SitePeer& peer, Loop& loop) {
  thread_local std::map<std::pair<Loop*, std::string>, std::unique_ptr<ClientPool>> pools;  // few: a site's edges
  auto& p = pools[{&loop, peer.url + "#" + std::to_string(peer.generation)}];  // a new address: a new pool
  if (!p) {
    ClientOptions options;
    options.connect_timeout_ms = 2'000;  // a peer is on the site's LAN: down is skipped fast
    options.io_timeout_ms = 30'000;
    auto created = ClientPool::create(loop, peer.address, options);
    if (!created.isOk()) return nullptr;
    p = std::move(created).value();
  }
  return p.get();
}

// Where a request for the edge's repository goes: the upstream, the repository's name
// there, and the target with that name.
struct Upstreamed {
  const UpstreamTarget* up;
  std::string repo;
};

Upstreamed upstreamOf(EdgeContext& ctx, const std::string& repo) {
  Upstreamed u;
  u.up = &ctx.upstreams->route(repo, &u.repo);
  return u;
}

// "/v2/<edge repo>/rest?query" -> "/v2/<upstream repo>/rest?query"
std::string rewriteTarget(const std::string& target, const std::string& repo, const std::string& upstream_repo) {
  std::string prefix = "/v2/" + repo + "/";
  if (target.compare(0, prefix.size(), prefix) != 0) return target;
  return "/v2/" + upstream_repo + "/" + target.substr(prefix.size());
}

// In front of the handler of a request to a prefix-mapped registry: a refusal there is
// a refusal of the edge's own credentials, not of the client, so the client sees an
// upstream failure (never that registry's challenge), and the token is dropped.
class MappedUpstreamHandler : public ResponseHandler {
 public:
  MappedUpstreamHandler(std::shared_ptr<ResponseHandler> inner, RegistryAuth* auth, std::string repo, std::string url)
      : inner_(std::move(inner)), auth_(auth), repo_(std::move(repo)), url_(std::move(url)) {}
  void onHeaders(const ClientResponse& r) override {
    if (r.status != 401 && r.status != 403) return inner_->onHeaders(r);
    auth_->invalidate(repo_);
    logWarn("a mapped upstream refused the edge's credentials", {{"upstream", url_}, {"status", r.status}});
    ClientResponse failed;
    failed.status = 502;
    inner_->onHeaders(failed);
  }
  bool onBody(std::string_view data) override { return inner_->onBody(data); }
  void onComplete(Status st) override { inner_->onComplete(st); }

 private:
  std::shared_ptr<ResponseHandler> inner_;
  RegistryAuth* auth_;
  std::string repo_, url_;
};

// Sends a request to the upstream of repo: to the core with the client's own token (it
// authorizes what it serves), to other registries with the edge's credentials for them.
// The core answers with the bytes themselves (X-Wharf-Edge) unless the request may be
// redirected to its object store (a fill, which follows redirects) and that store was
// not found unreachable from here lately.
void sendUpstream(EdgeContext& ctx, Loop& loop, const std::string& repo, ClientRequest req,
                  const std::string* client_authorization, std::shared_ptr<ResponseHandler> handler,
                  bool may_redirect = false) {
  Upstreamed u = upstreamOf(ctx, repo);
  req.target = rewriteTarget(req.target, repo, u.repo);
  ClientPool* pool = poolFor(*u.up, loop);
  if (pool == nullptr) return handler->onComplete(Status(Code::kUnavailable, "upstream " + u.up->base_url + " unusable"));
  if (u.up->is_core) {
    if (client_authorization != nullptr) req.headers.add("Authorization", *client_authorization);
    if (!may_redirect || RealClock::instance().nowMillis() < core_store_unreachable_until.load()) {
      req.headers.add("X-Wharf-Edge", "1");  // the core's blob bytes, not a redirect (core blob_redirect)
    }
    pool->send(std::move(req), std::move(handler));
    return;
  }
  if (auto header = u.up->auth->cached(u.repo)) {
    if (!header->empty()) req.headers.add("Authorization", *header);
    pool->send(std::move(req),
               std::make_shared<MappedUpstreamHandler>(std::move(handler), u.up->auth.get(), u.repo, u.up->base_url));
    return;
  }
  handler = std::make_shared<MappedUpstreamHandler>(std::move(handler), u.up->auth.get(), u.repo, u.up->base_url);
  // A token from the registry's realm: fetched off the loop, then sent from it.
  RegistryAuth* auth = u.up->auth.get();
  const UpstreamTarget* up = u.up;
  auto shared_req = std::make_shared<ClientRequest>(std::move(req));
  ctx.work->submit([auth, up, upstream_repo = u.repo, &loop, shared_req, handler] {
    auto header = auth->fetch(upstream_repo);
    loop.post([up, &loop, shared_req, handler, header] {
      if (!header.isOk()) return handler->onComplete(header.status());
      if (!header->empty()) shared_req->headers.add("Authorization", *header);
      ClientPool* pool = poolFor(*up, loop);
      if (pool == nullptr) return handler->onComplete(Status(Code::kUnavailable, "upstream unusable"));
      pool->send(std::move(*shared_req), handler);
    });
  });
}

const std::string* clientAuthorization(const ExchangePtr& ex) { return ex->request().headers.get("authorization"); }

void challenge(EdgeContext& ctx, const ExchangePtr& ex, const std::string& scope, const Status& why, bool insufficient) {
  Response r = error(why);
  r.status = 401;
  std::string v = "Bearer realm=\"" + ctx.realm + "\",service=\"" + ctx.service + "\"";
  if (!scope.empty()) v += ",scope=\"" + scope + "\"";
  if (insufficient) v += ",error=\"insufficient_scope\"";
  r.headers.add("WWW-Authenticate", v);
  reply(ctx, ex, std::move(r));
}

// The upstream's error status, in the client's terms (its refusals pass through).
Response upstreamError(int status, const std::string& body, const Status& transport) {
  if (!transport.isOk()) return error(Status(Code::kUnavailable, "upstream: " + transport.message()));
  if (status == 401 || status == 403 || status == 404) {
    if (!body.empty() && body.front() == '{') return Response::json(status, body);
    return error(status == 404   ? Status(Code::kNotFound, "not known to the upstream")
                 : status == 401 ? Status(Code::kUnauthorized, "authentication required")
                                 : Status(Code::kDenied, "requested access to the resource is denied"));
  }
  return error(Status(Code::kUnavailable, "upstream answered " + std::to_string(status)));
}

std::string rewriteNames(std::string value, const std::string& from, const std::string& to) {
  for (size_t at = value.find(from); at != std::string::npos; at = value.find(from, at + to.size())) {
    value.replace(at, from.size(), to);
  }
  return value;
}

// Collects a small upstream response (tags, referrers, HEAD and ranges of uncached
// blobs) and relays it.
class Relay : public ResponseHandler {
 public:
  Relay(EdgeContext& ctx, ExchangePtr ex, std::string repo = "", std::string upstream_repo = "")
      : ctx_(ctx), ex_(std::move(ex)), repo_(std::move(repo)), upstream_repo_(std::move(upstream_repo)) {}
  void onHeaders(const ClientResponse& r) override { head_ = r; }
  bool onBody(std::string_view data) override {
    if (body_.size() + data.size() > (8u << 20)) {
      too_big_ = true;
      return true;
    }
    body_.append(data);
    return true;
  }
  void onComplete(Status st) override {
    if (!st.isOk() || too_big_) {
      countUpstreamError(ctx_);
      return reply(ctx_, ex_, upstreamError(0, "", st.isOk() ? Status(Code::kUnavailable, "response too large") : st));
    }
    Response r;
    r.status = head_.status;
    for (const char* h : {"content-type", "docker-content-digest", "etag", "oci-subject", "oci-filters-applied", "link",
                          "content-range", "accept-ranges"}) {
      const std::string* v = head_.headers.get(h);
      if (v == nullptr) continue;
      std::string value = *v;
      if (repo_ != upstream_repo_ && std::string_view(h) == "link") {
        value = rewriteNames(value, "/v2/" + upstream_repo_ + "/", "/v2/" + repo_ + "/");
      }
      r.headers.add(h, value);
    }
    if (repo_ != upstream_repo_ && r.status == 200) {
      // A tags list names the repository: the edge's name, not the upstream's.
      auto j = jsonNestedWithin(body_, JsonBody::kMaxDepth) ? nlohmann::json::parse(body_, nullptr, false)
                                                            : nlohmann::json();
      if (j.is_object() && j.contains("name") && j["name"] == upstream_repo_) {
        j["name"] = repo_;
        body_ = j.dump();
      }
    }
    if (ex_->request().isHead()) {
      const std::string* len = head_.headers.get("content-length");
      r.head_length = len ? std::strtoull(len->c_str(), nullptr, 10) : 0;
    } else {
      r.body = std::move(body_);
    }
    reply(ctx_, ex_, std::move(r));
  }

 private:
  EdgeContext& ctx_;
  ExchangePtr ex_;
  std::string repo_, upstream_repo_;
  ClientResponse head_;
  std::string body_;
  bool too_big_ = false;
};

void relay(EdgeContext& ctx, const ExchangePtr& ex, const Route& route) {
  ClientRequest r;
  r.method = ex->request().method;
  r.target = ex->request().target;
  if (const std::string* range = ex->request().headers.get("range")) r.headers.add("Range", *range);
  Upstreamed u = upstreamOf(ctx, route.name);
  sendUpstream(ctx, ex->loop(), route.name, std::move(r), clientAuthorization(ex),
               std::make_shared<Relay>(ctx, ex, route.name, u.repo));
}

Response manifestResponse(const ExchangePtr& ex, const ManifestCache::Entry& e) {
  Response r;
  r.headers.add("Content-Type", e.media_type);
  r.headers.add("Docker-Content-Digest", e.digest);
  r.headers.add("ETag", "\"" + e.digest + "\"");
  if (ex->request().isHead()) {
    r.head_length = e.body.size();
  } else {
    r.body = e.body;
  }
  return r;
}

// Replies with a manifest for route: at once, or, when a trust policy governs the
// repository's tags, after the edge's own check (edge/trust; on a worker: it may ask the
// core for trust data). core_confirmed: the core served or revalidated it just now.
void replyManifest(EdgeContext& ctx, const ExchangePtr& ex, const Route& route, const ManifestCache::Entry& e,
                   Response r, bool core_confirmed) {
  bool by_digest = route.reference.find(':') != std::string::npos;
  if (ctx.trust == nullptr || by_digest || !ctx.trust->governs(route.name)) return reply(ctx, ex, std::move(r));
  auto response = std::make_shared<Response>(std::move(r));
  Loop& loop = ex->loop();
  ctx.work->submit([&ctx, &loop, ex, route, digest = e.digest, size = uint64_t(e.body.size()), response, core_confirmed] {
    auto why = ctx.trust->refusal(route.name, route.reference, digest, size, core_confirmed);
    loop.post([&ctx, ex, response, why] {
      if (why) {
        EdgeMetrics::get().trust_refused.inc();
        return reply(ctx, ex, error(Status(Code::kDenied, *why)));
      }
      reply(ctx, ex, std::move(*response));
    });
  });
}

// Fetches a manifest (always with GET, so it can be cached; conditionally when an
// expired tag is cached), stores what the upstream serves, and falls back to the stale
// entry when the upstream cannot answer and the repository allows it.
class ManifestFetch : public ResponseHandler {
 public:
  ManifestFetch(EdgeContext& ctx, ExchangePtr ex, Route route, std::optional<ManifestCache::Entry> stale)
      : ctx_(ctx), ex_(std::move(ex)), route_(std::move(route)), stale_(std::move(stale)) {}
  void onHeaders(const ClientResponse& r) override { head_ = r; }
  bool onBody(std::string_view data) override {
    if (body_.size() + data.size() <= (4u << 20)) body_.append(data);
    return true;
  }
  void onComplete(Status st) override {
    int status = st.isOk() ? head_.status : 0;
    bool by_digest = route_.reference.find(':') != std::string::npos;
    if (status == 304 && stale_) {
      EdgeMetrics::get().revalidated.inc();
      ctx_.manifests->revalidated(route_.name, route_.reference, stale_->digest);
      countServed(ctx_, ex_, route_.name, stale_->body.size(), true);
      return replyManifest(ctx_, ex_, route_, *stale_, manifestResponse(ex_, *stale_), true);
    }
    if (status == 200) {
      const std::string* digest = head_.headers.get("docker-content-digest");
      const std::string* type = head_.headers.get("content-type");
      // By digest, the bytes must hash to what the client asked for, whatever the
      // upstream's header says.
      ManifestCache::Entry e{by_digest ? route_.reference : digest ? *digest : digestOf(body_).str(),
                             type ? *type : "", std::move(body_)};
      Status stored = ctx_.manifests->store(route_.name, by_digest ? "" : route_.reference, e);
      if (!stored.isOk()) {
        countUpstreamError(ctx_);
        return reply(ctx_, ex_, error(Status(Code::kUnavailable, stored.message())));
      }
      if (ctx_.stats != nullptr) ctx_.stats->fetched(route_.name, e.body.size(), false);
      countServed(ctx_, ex_, route_.name, e.body.size(), false);
      return replyManifest(ctx_, ex_, route_, e, manifestResponse(ex_, e), true);
    }
    bool upstream_failed = !st.isOk() || status >= 500 || status == 429;
    if (upstream_failed) countUpstreamError(ctx_);
    if (upstream_failed && stale_ && anyRepositoryPatternMatches(ctx_.stale_if_error, route_.name)) {
      // stale-if-error: the client's token was checked here; the upstream is just out
      // of reach.
      EdgeMetrics::get().stale.inc();
      if (ctx_.stats != nullptr) ctx_.stats->staleServe();
      countServed(ctx_, ex_, route_.name, stale_->body.size(), true);
      Response r = manifestResponse(ex_, *stale_);
      r.headers.add("Warning", "110 - \"Response is Stale\"");
      r.headers.add("X-Wharf-Stale", "1");
      return replyManifest(ctx_, ex_, route_, *stale_, std::move(r), false);
    }
    Response r = upstreamError(status, body_, st);
    if (status == 401 || status == 403 || status == 404) {
      if (const std::string* v = head_.headers.get("www-authenticate")) r.headers.add("WWW-Authenticate", *v);
    }
    reply(ctx_, ex_, std::move(r));
  }

 private:
  EdgeContext& ctx_;
  ExchangePtr ex_;
  Route route_;
  std::optional<ManifestCache::Entry> stale_;
  ClientResponse head_;
  std::string body_;
};

void serveManifest(EdgeContext& ctx, const ExchangePtr& ex, const Route& route) {
  std::optional<ManifestCache::Entry> cached;
  bool fresh = false;
  bool by_digest = route.reference.find(':') != std::string::npos;
  // A pull of the tag, for the prefetch rule (a HEAD is a client checking, not pulling).
  if (!by_digest && ctx.pulls != nullptr && ex->request().method == "GET") ctx.pulls->pulled(route.name, route.reference);
  if (by_digest) {
    auto d = Digest::parse(route.reference);
    if (!d.isOk()) return reply(ctx, ex, error(Status(Code::kManifestUnknown, d.status().message())));
    cached = ctx.manifests->byDigest(route.name, route.reference);
    fresh = cached.has_value();  // content-addressed: never stale
  } else {
    cached = ctx.manifests->byTag(route.name, route.reference, &fresh);
  }
  if (cached && fresh) {
    EdgeMetrics::get().manifest_hits.inc();
    countServed(ctx, ex, route.name, cached->body.size(), true);
    return replyManifest(ctx, ex, route, *cached, manifestResponse(ex, *cached), true);
  }
  ClientRequest r;
  r.method = "GET";
  r.target = "/v2/" + route.name + "/manifests/" + route.reference;
  r.headers.add("Accept", media::kManifestAcceptAll);
  if (cached) r.headers.add("If-None-Match", "\"" + cached->digest + "\"");
  sendUpstream(ctx, ex->loop(), route.name, std::move(r), clientAuthorization(ex),
               std::make_shared<ManifestFetch>(ctx, ex, route, cached));
}

// Replies to a blob request with a body that tails the fill — once the upstream has
// answered, so the response has a Content-Length when the upstream gave one.
void replyFromFill(EdgeContext& ctx, const ExchangePtr& ex, const std::string& repo, const std::shared_ptr<Fill>& fill) {
  Fill::Event now = fill->current();
  if (!fill->hasStarted() && now.state == Fill::State::kFilling) {
    auto once = std::make_shared<uint64_t>(0);
    *once = fill->subscribe(ex->loop(), [&ctx, ex, repo, fill, once](const Fill::Event&) {
      if (*once == 0) return;
      fill->unsubscribe(*once);
      *once = 0;
      replyFromFill(ctx, ex, repo, fill);
    });
    return;
  }
  if (now.state == Fill::State::kFailed) {
    return reply(ctx, ex, error(Status(Code::kUnavailable, "upstream: " + now.error.message())));
  }
  Response r;
  r.headers.add("Content-Type", "application/octet-stream");
  r.headers.add("Docker-Content-Digest", fill->digest().str());
  r.body = std::shared_ptr<BodySource>(std::make_shared<FillSource>(ex->loop(), fill));
  countServed(ctx, ex, repo, fill->expectedSize(), false);
  reply(ctx, ex, std::move(r));
}

// One fill from the upstream, across the requests a broken connection resumes it with.
struct FillJob {
  EdgeContext& ctx;
  ExchangePtr ex;  // the leader's own client
  std::string repo;
  FillLeader leader;
  std::shared_ptr<Fill> fill;
  int resumes = 0;
  bool peer_tried = false;
  std::shared_ptr<const SitePeer> peer;  // the site's edge the bytes come from; null: the upstream
  int redirects = 0;
};

void sendFillRequest(const std::shared_ptr<FillJob>& job, uint64_t offset);
void followRedirect(const std::shared_ptr<FillJob>& job, uint64_t offset, const std::string& location);

bool isRedirect(int status) { return status == 301 || status == 302 || status == 303 || status == 307 || status == 308; }

// Streams the upstream's bytes into the Fill.
class FillFromUpstream : public ResponseHandler {
 public:
  // redirected: the request went where the core redirected it (its object store).
  FillFromUpstream(std::shared_ptr<FillJob> job, uint64_t offset, bool redirected = false)
      : job_(std::move(job)), offset_(offset), redirected_(redirected) {}
  void onHeaders(const ClientResponse& r) override {
    status_ = r.status;
    if (isRedirect(status_) && job_->peer == nullptr && job_->redirects < kMaxRedirects) {
      if (const std::string* location = r.headers.get("location")) location_ = *location;
      return;
    }
    const std::string* length = r.headers.get("content-length");
    if (offset_ == 0) {
      if (status_ != 200) return;
      streaming_ = true;
      job_->fill->started(length != nullptr ? std::strtoull(length->c_str(), nullptr, 10) : 0);
      job_->ctx.index->link(job_->repo, job_->fill->digest().str());  // the upstream serves it for this repository
      replyFromFill(job_->ctx, job_->ex, job_->repo, job_->fill);
      return;
    }
    // A resumed request: the rest from offset_, or all of it again (skip what we have).
    const std::string* range = r.headers.get("content-range");
    if (status_ == 206 && range != nullptr && range->rfind("bytes " + std::to_string(offset_) + "-", 0) == 0) {
      streaming_ = true;
    } else if (status_ == 200) {
      streaming_ = true;
      skip_ = offset_;
    }
  }
  bool onBody(std::string_view data) override {
    if (!streaming_) {
      if (error_body_.size() < 65536) error_body_.append(data);
      return true;
    }
    if (skip_ > 0) {
      size_t n = std::min<uint64_t>(skip_, data.size());
      skip_ -= n;
      data.remove_prefix(n);
    }
    if (data.empty() || failed_) return true;
    if (job_->peer != nullptr) {
      EdgeMetrics::get().bytes_peers.inc(data.size());  // the site's LAN, not the WAN
    } else {
      EdgeMetrics::get().bytes_upstream.inc(data.size());
      if (job_->ctx.stats != nullptr) job_->ctx.stats->fetched(job_->repo, data.size(), false);
    }
    if (!job_->leader->append(data).isOk()) failed_ = true;
    return true;
  }
  void onComplete(Status st) override {
    auto& ctx = job_->ctx;
    if (!location_.empty() && st.isOk()) {
      ++job_->redirects;
      EdgeMetrics::get().redirects.inc();
      return followRedirect(job_, offset_, location_);
    }
    if (streaming_ && st.isOk() && !failed_) {
      // Verify, sync and commit off the loop thread; a mismatch fails the fill, and every
      // response on it.
      auto job = job_;
      ctx.work->submit([job] {
        Status verified = job->leader->finish();
        if (!verified.isOk() && job->peer != nullptr) {
          // Refused exactly as the core's bytes would be; the peer is skipped a while, so
          // the clients' retries go to the core.
          logWarn("a peer edge served a blob that does not verify",
                  {{"peer", job->peer->name}, {"digest", job->fill->digest().str()}, {"error", verified.message()}});
          job->ctx.peers->failed(job->peer->name, RealClock::instance().nowMillis());
        }
        if (verified.isOk()) {
          // Clients that joined the fill asked for it too: demand the policy counts.
          job->ctx.index->committed(job->fill->digest().str(), job->fill->current().available,
                                    static_cast<uint32_t>(1 + job->fill->joined()));
          job->ctx.index->enforce();
        }
        job->leader.reset();
      });
      return;
    }
    Fill::Event now = job_->fill->current();
    if (job_->peer != nullptr && now.state == Fill::State::kFilling) {
      // The peer could not serve it (down, refused, broke off): the upstream serves it,
      // from where the peer stopped. Its refusals are not the client's answer: the
      // upstream's is.
      if (!st.isOk() || status_ >= 500 || streaming_) job_->ctx.peers->failed(job_->peer->name, RealClock::instance().nowMillis());
      EdgeMetrics::get().peer_fallbacks.inc();
      job_->peer = nullptr;
      return sendFillRequest(job_, streaming_ ? now.available : 0);
    }
    if (redirected_ && !streaming_ && now.state == Fill::State::kFilling && upstreamOf(ctx, job_->repo).up->is_core) {
      // The core's object store did not serve what the core redirected to (not reachable
      // from this site, or it refused): the core serves the bytes for a while.
      core_store_unreachable_until = RealClock::instance().nowMillis() + kStoreRetryMs;
      EdgeMetrics::get().redirect_fallbacks.inc();
      logWarn("the core's object store did not serve a redirected blob; taking blobs from the core for a while",
              {{"digest", job_->fill->digest().str()},
               {"error", st.isOk() ? "HTTP " + std::to_string(status_) : st.message()},
               {"retry_after_s", kStoreRetryMs / 1000}});
      return sendFillRequest(job_, now.available);
    }
    countUpstreamError(ctx);
    if (streaming_ && !st.isOk() && !failed_ && now.state == Fill::State::kFilling && job_->resumes < kMaxResumes) {
      // The connection broke mid-blob: ask for the rest.
      ++job_->resumes;
      EdgeMetrics::get().resumes.inc();
      logWarn("upstream broke mid-blob; resuming", {{"digest", job_->fill->digest().str()},
                                                    {"offset", now.available},
                                                    {"error", st.message()}});
      return sendFillRequest(job_, now.available);
    }
    Status why = !st.isOk() ? st
                 : failed_  ? Status(Code::kUnavailable, "the fill failed")
                            : Status(Code::kUnavailable, "upstream answered " + std::to_string(status_));
    job_->leader->fail(why);
    if (!job_->ex->responded()) reply(ctx, job_->ex, upstreamError(status_, error_body_, st));
  }

 private:
  std::shared_ptr<FillJob> job_;
  uint64_t offset_;
  bool redirected_;
  uint64_t skip_ = 0;
  int status_ = 0;
  bool streaming_ = false;
  bool failed_ = false;
  std::string location_;  // where the upstream redirected the request
  std::string error_body_;
};

// The client pool of the calling loop for a host a redirect named (base URL), made on
// first use: the name is resolved on a worker, the pool made back on the loop. done gets
// null when the host cannot be used.
void redirectPool(EdgeContext& ctx, Loop& loop, const std::string& base, const ClientOptions& options,
                  std::function<void(ClientPool*)> done) {
  thread_local std::map<std::pair<Loop*, std::string>, std::unique_ptr<ClientPool>> pools;
  auto key = std::make_pair(&loop, base);
  if (auto it = pools.find(key); it != pools.end()) return done(it->second.get());
  if (pools.size() >= kMaxRedirectHosts) {
    logWarn("redirected to too many hosts; not following", {{"host", base}, {"limit", kMaxRedirectHosts}});
    return done(nullptr);
  }
  ctx.work->submit([&loop, base, options, done = std::move(done)]() mutable {
    auto resolved = Upstream::resolve(base);
    loop.post([&loop, base, options, resolved = std::move(resolved), done = std::move(done)]() mutable {
      if (!resolved.isOk()) {
        logWarn("cannot resolve a redirect's host", {{"host", base}, {"error", resolved.status().message()}});
        return done(nullptr);
      }
      auto& p = pools[std::make_pair(&loop, base)];
      if (!p) {
        auto created = ClientPool::create(loop, *resolved, options);
        if (!created.isOk()) {
          logWarn("cannot connect to a redirect's host", {{"host", base}, {"error", created.status().message()}});
          pools.erase(std::make_pair(&loop, base));
          return done(nullptr);
        }
        p = std::move(created).value();
      }
      done(p.get());
    });
  });
}

// Follows a fill's redirect: an absolute URL (or a path on the same upstream), asked for
// without the client's token (a presigned URL carries its own authorization, and a token
// is never sent to another host). The bytes are verified against the digest as always.
void followRedirect(const std::shared_ptr<FillJob>& job, uint64_t offset, const std::string& location) {
  const UpstreamTarget& up = *upstreamOf(job->ctx, job->repo).up;
  std::string base, target;
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) {
    size_t slash = location.find('/', location.find("//") + 2);
    base = location.substr(0, slash);
    target = slash == std::string::npos ? "/" : location.substr(slash);
  } else if (!location.empty() && location.front() == '/') {
    base = up.base_url;
    target = location;
  }
  ClientRequest r;
  r.method = "GET";
  r.target = target;
  if (offset > 0) r.headers.add("Range", "bytes=" + std::to_string(offset) + "-");
  auto handler = std::make_shared<FillFromUpstream>(job, offset, /*redirected=*/true);
  if (base.empty() || !parseBaseUrl(base).isOk()) {
    // (The location itself is not logged: a presigned URL is a credential.)
    logWarn("an upstream redirected a blob to an unusable location", {{"digest", job->fill->digest().str()}});
    return handler->onComplete(Status(Code::kUnavailable, "redirected to an unusable location"));
  }
  redirectPool(job->ctx, job->ex->loop(), base, up.options, [job, handler, r = std::move(r)](ClientPool* pool) mutable {
    if (pool == nullptr) return handler->onComplete(Status(Code::kUnavailable, "cannot reach the redirect's host"));
    if (pool->send(std::move(r), handler) == nullptr) {
      handler->onComplete(Status(Code::kUnavailable, "cannot reach the redirect's host"));
    }
  });
}

// The edge of the site that owns a blob this edge is missing, when it is to be asked
// first: the repository is the core's (other registries are each edge's own business),
// and the request is a client's (a peer's is never passed on: no loops).
std::shared_ptr<const SitePeer> ownerToAsk(EdgeContext& ctx, const FillJob& job) {
  if (ctx.peers == nullptr || fromPeer(job.ex) || !upstreamOf(ctx, job.repo).up->is_core) return nullptr;
  return ctx.peers->owner(job.fill->digest().str(), RealClock::instance().nowMillis());
}

void sendFillRequest(const std::shared_ptr<FillJob>& job, uint64_t offset) {
  ClientRequest r;
  r.method = "GET";
  r.target = "/v2/" + job->repo + "/blobs/" + job->fill->digest().str();
  if (offset > 0) r.headers.add("Range", "bytes=" + std::to_string(offset) + "-");
  if (!job->peer_tried) {
    job->peer_tried = true;
    job->peer = ownerToAsk(job->ctx, *job);
    ClientPool* pool = job->peer != nullptr ? peerPool(*job->peer, job->ex->loop()) : nullptr;
    if (pool != nullptr) {
      // The client's own token: the peer checks it as this edge did.
      if (const std::string* authz = clientAuthorization(job->ex)) r.headers.add("Authorization", *authz);
      r.headers.add(kPeerHeader, job->ctx.peers->self());
      if (pool->send(std::move(r), std::make_shared<FillFromUpstream>(job, offset)) != nullptr) return;
      job->ctx.peers->failed(job->peer->name, RealClock::instance().nowMillis());
      r = ClientRequest();
      r.method = "GET";
      r.target = "/v2/" + job->repo + "/blobs/" + job->fill->digest().str();
    }
    job->peer = nullptr;
  }
  sendUpstream(job->ctx, job->ex->loop(), job->repo, std::move(r), clientAuthorization(job->ex),
               std::make_shared<FillFromUpstream>(job, offset), /*may_redirect=*/true);
}

void confirmThenServe(EdgeContext& ctx, const ExchangePtr& ex, const Route& route);

// A committed blob, from its open file (sendfile), whole, ranged or HEAD. The hit was
// counted by the caller.
void serveCachedBlob(EdgeContext& ctx, const ExchangePtr& ex, const std::string& repo, const Digest& digest, Fd fd) {
  const Request& req = ex->request();
  EdgeMetrics::get().hits.inc();
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return reply(ctx, ex, error(Status(Code::kIoError, "cache read failed")));
  uint64_t size = static_cast<uint64_t>(st.st_size);
  auto holder = std::make_shared<Fd>(std::move(fd));
  Response r;
  r.headers.add("Content-Type", "application/octet-stream");
  r.headers.add("Docker-Content-Digest", digest.str());
  r.headers.add("Accept-Ranges", "bytes");
  Response refusal;
  auto span = applyRange(req, size, &r, &refusal);
  if (!span) return reply(ctx, ex, std::move(refusal));
  const auto [start, length] = *span;
  if (req.isHead()) {
    r.head_length = length;
  } else {
    EdgeMetrics::get().bytes_cache.inc(length);
    countServed(ctx, ex, repo, length, true);
    r.body = FileBody{holder, start, length};
  }
  reply(ctx, ex, std::move(r));
}

// HEAD or a range of a blob being filled: answered from the fill once its size is known.
void serveFromFill(EdgeContext& ctx, const ExchangePtr& ex, const Route& route, const std::shared_ptr<Fill>& fill) {
  uint64_t size = fill->expectedSize();
  if (size == 0) return relay(ctx, ex, route);
  const Request& req = ex->request();
  Response r;
  r.headers.add("Content-Type", "application/octet-stream");
  r.headers.add("Docker-Content-Digest", fill->digest().str());
  r.headers.add("Accept-Ranges", "bytes");
  Response refusal;
  auto span = applyRange(req, size, &r, &refusal);
  if (!span) return reply(ctx, ex, std::move(refusal));
  const auto [start, length] = *span;
  if (req.isHead()) {
    r.head_length = length;
  } else {
    EdgeMetrics::get().joined.inc();
    countServed(ctx, ex, route.name, length, false);
    r.body = std::shared_ptr<BodySource>(std::make_shared<FillSource>(ex->loop(), fill, start, length));
  }
  reply(ctx, ex, std::move(r));
}

void serveBlob(EdgeContext& ctx, const ExchangePtr& ex, const Route& route) {
  auto digest = Digest::parse(route.reference);
  if (!digest.isOk()) return reply(ctx, ex, error(digest.status()));
  const Request& req = ex->request();
  // The hot path: a committed file, opened without any coordination.
  Fd fd(::open(ctx.fills->blobPath(*digest).c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid()) {
    // Cached through another repository: the upstream must confirm this one first.
    if (!ctx.index->hitIfLinked(route.name, digest->str())) return confirmThenServe(ctx, ex, route);
    return serveCachedBlob(ctx, ex, route.name, *digest, std::move(fd));
  }
  if (errno != ENOENT) return reply(ctx, ex, error(Status(Code::kIoError, "cache read failed")));
  // HEAD and ranges never start a fill; a whole GET does when the blob is not here.
  bool partial = req.isHead() || req.headers.get("range") != nullptr;
  auto join = partial ? ctx.fills->find(*digest) : ctx.fills->join(*digest, 0);
  if (!join.isOk()) {
    if (join.status().code() == Code::kNotFound) return relay(ctx, ex, route);
    return reply(ctx, ex, error(join.status()));
  }
  switch (join->role) {
    case FillCoordinator::Role::kCached: return serveBlob(ctx, ex, route);  // committed a moment ago
    case FillCoordinator::Role::kFollower: {
      auto fill = join->fill;
      if (!ctx.index->linked(route.name, digest->str())) {
        // The leader's upstream answer links its repository: a follower through the same
        // one waits for it rather than asking the upstream to confirm.
        if (!fill->hasStarted()) {
          auto id = std::make_shared<uint64_t>(0);
          *id = fill->subscribe(ex->loop(), [&ctx, ex, route, fill, id](const Fill::Event&) {
            if (*id == 0) return;
            fill->unsubscribe(*id);
            *id = 0;
            serveBlob(ctx, ex, route);
          });
          return;
        }
        return confirmThenServe(ctx, ex, route);
      }
      if (partial) return serveFromFill(ctx, ex, route, fill);
      EdgeMetrics::get().joined.inc();
      return replyFromFill(ctx, ex, route.name, fill);
    }
    case FillCoordinator::Role::kLeader: {
      EdgeMetrics::get().misses.inc();
      auto job = std::make_shared<FillJob>(FillJob{ctx, ex, route.name, std::move(join->leader), join->fill, 0, false, nullptr});
      return sendFillRequest(job, 0);
    }
  }
}

// Asks the upstream (HEAD) whether the repository has the blob; then serves it from the
// cache or a fill, or relays the refusal.
class Confirm : public ResponseHandler {
 public:
  Confirm(EdgeContext& ctx, ExchangePtr ex, Route route) : ctx_(ctx), ex_(std::move(ex)), route_(std::move(route)) {}
  void onHeaders(const ClientResponse& r) override { status_ = r.status; }
  bool onBody(std::string_view) override { return true; }
  void onComplete(Status st) override {
    if (st.isOk() && status_ == 200) {
      ctx_.index->link(route_.name, route_.reference);
      return serveBlob(ctx_, ex_, route_);
    }
    if (!st.isOk()) countUpstreamError(ctx_);
    Status why = !st.isOk() ? Status(Code::kUnavailable, "cannot confirm with the upstream: " + st.message())
                 : status_ == 404 ? Status(Code::kBlobUnknown, "blob unknown to registry")
                 : status_ == 401 ? Status(Code::kUnauthorized, "authentication required")
                 : status_ == 403 ? Status(Code::kDenied, "requested access to the resource is denied")
                                  : Status(Code::kUnavailable, "upstream answered " + std::to_string(status_));
    reply(ctx_, ex_, error(why));
  }

 private:
  EdgeContext& ctx_;
  ExchangePtr ex_;
  Route route_;
  int status_ = 0;
};

void confirmThenServe(EdgeContext& ctx, const ExchangePtr& ex, const Route& route) {
  ClientRequest r;
  r.method = "HEAD";
  r.target = "/v2/" + route.name + "/blobs/" + route.reference;
  sendUpstream(ctx, ex->loop(), route.name, std::move(r), clientAuthorization(ex),
               std::make_shared<Confirm>(ctx, ex, route));
}

}  // namespace

void handleEdgeRequest(EdgeContext& ctx, const ExchangePtr& ex) {
  const Request& req = ex->request();
  if (req.path == "/metrics") return reply(ctx, ex, Response::text(200, MetricsRegistry::global().render()));
  if (req.path == "/healthz") {
    if (ctx.revoked.load()) {
      return reply(ctx, ex, Response::json(503, R"({"status":"revoked","error":"the core removed this edge"})"));
    }
    if (ctx.draining.load()) {
      return reply(ctx, ex, Response::json(503, R"({"status":"draining","error":"drained by the core's administrator"})"));
    }
    return reply(ctx, ex, Response::json(200, R"({"status":"ok"})"));
  }
  if (ctx.revoked.load()) {
    return reply(ctx, ex, error(Status(Code::kUnavailable, "this edge was removed from its core; join it again")));
  }
  if (ctx.draining.load()) {
    // Clients (and load balancers) fall back to the core until the edge is resumed.
    Response r = error(Status(Code::kUnavailable, "this edge is drained: pull from " + ctx.upstreams->core().base_url));
    r.headers.add("Retry-After", std::to_string(ctx.retry_after_s.load()));
    return reply(ctx, ex, std::move(r));
  }
  if (ctx.peers != nullptr && fromPeer(ex) && *req.headers.get("x-wharf-peer") == ctx.peers->self()) {
    // This edge asked itself (two edges announce one URL): the asker turns to the core.
    return reply(ctx, ex, error(Status(Code::kUnavailable, "an edge cannot be its own peer")));
  }
  auto route = parseRoute(req.path);
  if (!route.isOk()) {
    return reply(ctx, ex, route.status().code() == Code::kNotFound
                              ? Response::json(404, R"({"errors":[{"code":"NOT_FOUND","message":"no such endpoint"}]})")
                              : error(route.status()));
  }
  const std::string& core = ctx.upstreams->core().base_url;
  if (req.method != "GET" && req.method != "HEAD") {
    return reply(ctx, ex, error(Status(Code::kMethodNotAllowed, "this is a read-only edge: push to " + core)));
  }
  std::string scope = route->kind == RouteKind::kBase      ? ""
                      : route->kind == RouteKind::kCatalog ? "registry:catalog:*"
                                                           : "repository:" + route->name + ":pull";
  const std::string* authz = req.headers.get("authorization");
  if (authz == nullptr || authz->size() < 7 || strncasecmp(authz->c_str(), "Bearer ", 7) != 0) {
    return challenge(ctx, ex, scope, Status(Code::kUnauthorized, "authentication required"), false);
  }
  std::string token = authz->substr(7);
  int64_t now_s = RealClock::instance().nowMillis() / 1000;
  auto claims = ctx.tokens.lookup(token, now_s);
  if (!claims) {
    auto verified = ctx.verifier()->verify(token, now_s);
    if (!verified.isOk()) return challenge(ctx, ex, scope, verified.status(), false);
    claims = std::make_shared<const TokenClaims>(std::move(verified).value());
    ctx.tokens.insert(token, claims);
  }
  // Cached content is served only to a token that may pull it.
  bool allowed = route->kind == RouteKind::kBase ||
                 (route->kind == RouteKind::kCatalog ? claims->allows("registry", "catalog", "*")
                                                     : claims->allows("repository", route->name, "pull"));
  if (!allowed) return challenge(ctx, ex, scope, Status(Code::kUnauthorized, "insufficient scope"), true);
  std::string repo = route->kind == RouteKind::kBase || route->kind == RouteKind::kCatalog ? "" : route->name;
  if (ctx.revocations()->covers(*claims, repo)) {
    return challenge(ctx, ex, scope, Status(Code::kUnauthorized, "token revoked at the core: get a new one"), false);
  }
  switch (route->kind) {
    case RouteKind::kBase: return reply(ctx, ex, Response::json(200, "{}"));
    case RouteKind::kBlob: return serveBlob(ctx, ex, *route);
    case RouteKind::kManifest: return serveManifest(ctx, ex, *route);
    case RouteKind::kUploadStart:
    case RouteKind::kUpload:
      return reply(ctx, ex, error(Status(Code::kMethodNotAllowed, "this is a read-only edge: push to " + core)));
    case RouteKind::kCatalog:
      // The catalog is the core's (mapped registries are not listed).
      return relay(ctx, ex, *route);
    default: return relay(ctx, ex, *route);
  }
}

}  // namespace wharf
