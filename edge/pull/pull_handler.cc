#include "edge/pull/pull_handler.h"

#include <fcntl.h>

#include <cerrno>
#include <unistd.h>

#include <map>

#include <nlohmann/json.hpp>

#include "edge/pull/fill_source.h"
#include "shared/oci/digest.h"
#include "shared/oci/manifest.h"
#include "shared/base/clock.h"
#include "shared/base/log.h"
#include "shared/http/range.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/routes.h"

namespace wharf {
namespace {

using ExchangePtr = std::shared_ptr<Exchange>;

struct EdgeMetrics {
  Counter& hits = MetricsRegistry::global().counter("wharf_edge_cache_hits_total", "Blob requests served from the cache.");
  Counter& misses = MetricsRegistry::global().counter("wharf_edge_cache_misses_total", "Blob requests that led a fill.");
  Counter& joined = MetricsRegistry::global().counter("wharf_edge_fill_followers_total",
                                                      "Blob requests that followed a fill already running.");
  Counter& upstream_errors = MetricsRegistry::global().counter("wharf_edge_upstream_errors_total",
                                                               "Fills and proxied requests the upstream failed.");
  Counter& manifest_hits = MetricsRegistry::global().counter("wharf_edge_manifest_hits_total",
                                                             "Manifest requests answered from the cache.");
  Counter& stale = MetricsRegistry::global().counter("wharf_edge_stale_served_total",
                                                     "Cached manifests served because the upstream could not answer.");
  static EdgeMetrics& get() {
    static EdgeMetrics m;
    return m;
  }
};

Response error(const Status& st) { return Response::error(st); }

void reply(EdgeContext& ctx, const ExchangePtr& ex, Response r) {
  r.headers.add("Docker-Distribution-API-Version", "registry/2.0");
  if (ctx.access_log && logEnabled(LogLevel::kInfo)) {
    logInfo("request", {{"method", ex->request().method}, {"path", ex->request().path}, {"status", r.status}});
  }
  ex->respond(std::move(r));
}

// The client pool of the calling loop thread (pools belong to one loop).
ClientPool* poolFor(EdgeContext& ctx, Loop& loop) {
  thread_local std::map<Loop*, std::unique_ptr<ClientPool>> pools;
  auto& p = pools[&loop];
  if (!p) {
    auto created = ClientPool::create(loop, ctx.upstream_address, ctx.upstream_options);
    if (!created.isOk()) {
      logError("cannot set up the upstream", {{"upstream", ctx.upstream}, {"error", created.status().message()}});
      return nullptr;
    }
    p = std::move(created).value();
  }
  return p.get();
}

void challenge(EdgeContext& ctx, const ExchangePtr& ex, const std::string& scope, const Status& why, bool insufficient) {
  Response r = error(why);
  r.status = 401;
  std::string v = "Bearer realm=\"" + ctx.realm + "\",service=\"" + ctx.service + "\"";
  if (!scope.empty()) v += ",scope=\"" + scope + "\"";
  if (insufficient) v += ",error=\"insufficient_scope\"";
  r.headers.add("WWW-Authenticate", v);
  reply(ctx, ex, std::move(r));
}

// Collects a small upstream response (manifests, tags, referrers) and relays it.
class Relay : public ResponseHandler {
 public:
  Relay(EdgeContext& ctx, ExchangePtr ex) : ctx_(ctx), ex_(std::move(ex)) {}
  void onHeaders(const ClientResponse& r) override { head_ = r; }
  bool onBody(std::string_view data) override {
    if (body_.size() + data.size() > (8u << 20)) return true;  // bounded; the relay fails below
    body_.append(data);
    return true;
  }
  void onComplete(Status st) override {
    if (!st.isOk()) {
      EdgeMetrics::get().upstream_errors.inc();
      return reply(ctx_, ex_, error(Status(Code::kUnavailable, "upstream: " + st.message())));
    }
    Response r;
    r.status = head_.status;
    for (const char* h : {"content-type", "docker-content-digest", "etag", "oci-subject", "oci-filters-applied", "link",
                          "www-authenticate"}) {
      if (const std::string* v = head_.headers.get(h)) r.headers.add(h, *v);
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
  ClientResponse head_;
  std::string body_;
};

ClientRequest upstreamRequest(const ExchangePtr& ex) {
  ClientRequest r;
  r.method = ex->request().method;
  r.target = ex->request().target;
  // The client's own token: the core authorizes what the edge fetches for it.
  if (const std::string* a = ex->request().headers.get("authorization")) r.headers.add("Authorization", *a);
  if (const std::string* a = ex->request().headers.get("accept")) r.headers.add("Accept", *a);
  return r;
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

// Fetches a manifest (always with GET, so it can be cached), stores what the core
// serves, and falls back to a stale cached entry when the core cannot answer.
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
    if (status == 200) {
      const std::string* digest = head_.headers.get("docker-content-digest");
      const std::string* type = head_.headers.get("content-type");
      ManifestCache::Entry e{digest ? *digest : digestOf(body_).str(), type ? *type : "", std::move(body_)};
      bool is_tag = route_.reference.find(':') == std::string::npos;
      Status stored = ctx_.manifests->store(route_.name, is_tag ? route_.reference : "", e);
      if (stored.isOk()) {
        // The blobs this image uses are worth more in the cache.
        if (auto m = parseManifest(e.body, e.media_type); m.isOk()) {
          std::vector<std::string> refs;
          if (m->config) refs.push_back(m->config->digest.str());
          for (const auto& l : m->layers) refs.push_back(l.digest.str());
          ctx_.index->referencedBy(refs);
        }
      }
      if (!stored.isOk()) {
        EdgeMetrics::get().upstream_errors.inc();
        return reply(ctx_, ex_, error(Status(Code::kUnavailable, stored.message())));
      }
      return reply(ctx_, ex_, manifestResponse(ex_, e));
    }
    bool upstream_failed = !st.isOk() || status >= 500 || status == 429;
    if (upstream_failed) EdgeMetrics::get().upstream_errors.inc();
    if (upstream_failed && stale_) {
      // stale-if-error: the token was checked here; the core is just out of reach.
      EdgeMetrics::get().stale.inc();
      Response r = manifestResponse(ex_, *stale_);
      r.headers.add("Warning", "110 - \"Response is Stale\"");
      r.headers.add("X-Wharf-Stale", "1");
      return reply(ctx_, ex_, std::move(r));
    }
    if (!st.isOk()) return reply(ctx_, ex_, error(Status(Code::kUnavailable, "upstream: " + st.message())));
    Response r = Response::json(status, body_);
    if (const std::string* v = head_.headers.get("www-authenticate")) r.headers.add("WWW-Authenticate", *v);
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
  if (route.reference.find(':') != std::string::npos) {
    cached = ctx.manifests->byDigest(route.name, route.reference);
    fresh = cached.has_value();  // content-addressed: never stale
  } else {
    cached = ctx.manifests->byTag(route.name, route.reference, &fresh);
  }
  if (cached && fresh) {
    EdgeMetrics::get().manifest_hits.inc();
    return reply(ctx, ex, manifestResponse(ex, *cached));
  }
  ClientPool* pool = poolFor(ctx, ex->loop());
  if (pool == nullptr) return reply(ctx, ex, error(Status(Code::kUnavailable, "upstream unreachable")));
  ClientRequest r = upstreamRequest(ex);
  r.method = "GET";
  pool->send(std::move(r), std::make_shared<ManifestFetch>(ctx, ex, route, cached));
}

void relay(EdgeContext& ctx, const ExchangePtr& ex) {
  ClientPool* pool = poolFor(ctx, ex->loop());
  if (pool == nullptr) return reply(ctx, ex, error(Status(Code::kUnavailable, "upstream unreachable")));
  pool->send(upstreamRequest(ex), std::make_shared<Relay>(ctx, ex));
}

// Leads a fill: streams the upstream blob into the Fill.
class FillFromUpstream : public ResponseHandler {
 public:
  FillFromUpstream(EdgeContext& ctx, ExchangePtr ex, std::string repo, FillLeader leader, std::shared_ptr<Fill> fill)
      : ctx_(ctx), ex_(std::move(ex)), repo_(std::move(repo)), leader_(std::move(leader)), fill_(std::move(fill)) {}
  void onHeaders(const ClientResponse& r) override {
    status_ = r.status;
    if (status_ != 200) return;
    ctx_.links.add(repo_, fill_->digest().str());  // the core serves it for this repository
    // The leader's own client streams from the fill, like any follower.
    Response resp;
    resp.headers.add("Content-Type", "application/octet-stream");
    resp.headers.add("Docker-Content-Digest", fill_->digest().str());
    resp.body = std::shared_ptr<BodySource>(std::make_shared<FillSource>(ex_->loop(), fill_));
    reply(ctx_, ex_, std::move(resp));
  }
  bool onBody(std::string_view data) override {
    if (status_ == 200) {
      if (!leader_->append(data).isOk()) status_ = -1;
    } else if (error_body_.size() < 65536) {
      error_body_.append(data);
    }
    return true;
  }
  void onComplete(Status st) override {
    if (status_ == 200 && st.isOk()) {
      // Verify, sync and commit off the loop thread; a mismatch fails the fill, and every
      // response on it.
      auto leader = std::make_shared<FillLeader>(std::move(leader_));
      EdgeContext& ctx = ctx_;
      auto fill = fill_;
      ctx_.work->submit([&ctx, leader, fill] {
        if ((*leader)->finish().isOk()) {
          ctx.index->committed(fill->digest().str(), fill->current().available);
          ctx.index->enforce();
        }
      });
      return;
    }
    EdgeMetrics::get().upstream_errors.inc();
    leader_->fail(st.isOk() ? Status(Code::kUnavailable, "upstream answered " + std::to_string(status_)) : st);
    if (!ex_->responded()) {
      Response r = error(Status(Code::kUnavailable, "upstream: " + (st.isOk() ? error_body_ : st.message())));
      if (status_ == 401 || status_ == 403 || status_ == 404) {
        r = Response::json(status_, error_body_);
      }
      reply(ctx_, ex_, std::move(r));
    }
  }

 private:
  EdgeContext& ctx_;
  ExchangePtr ex_;
  std::string repo_;
  FillLeader leader_;
  std::shared_ptr<Fill> fill_;
  int status_ = 0;
  std::string error_body_;
};

void confirmThenServe(EdgeContext& ctx, const ExchangePtr& ex, const Route& route);

void serveBlob(EdgeContext& ctx, const ExchangePtr& ex, const Route& route) {
  auto digest = Digest::parse(route.reference);
  if (!digest.isOk()) return reply(ctx, ex, error(digest.status()));
  const Request& req = ex->request();
  if ((req.isHead() || req.headers.get("range") != nullptr) &&
      ::access(ctx.fills->blobPath(*digest).c_str(), F_OK) != 0) {
    // Not cached: HEAD and ranges go to the core as they are (they start no fill).
    return relay(ctx, ex);
  }
  auto join = ctx.fills->join(*digest, 0);
  if (!join.isOk()) return reply(ctx, ex, error(join.status()));
  // Cached or being filled through another repository: the core must confirm this one.
  if (join->role != FillCoordinator::Role::kLeader && !ctx.links.has(route.name, digest->str())) {
    return confirmThenServe(ctx, ex, route);
  }
  if (join->role == FillCoordinator::Role::kCached) {
    EdgeMetrics::get().hits.inc();
    ctx.index->accessed(digest->str());
    int fd = ::open(join->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return serveBlob(ctx, ex, route);  // evicted since: a miss now
    if (fd < 0) return reply(ctx, ex, error(Status(Code::kIoError, "cache read failed")));
    auto holder = std::make_shared<Fd>(fd);
    uint64_t size = static_cast<uint64_t>(::lseek(fd, 0, SEEK_END));
    Response r;
    r.headers.add("Content-Type", "application/octet-stream");
    r.headers.add("Docker-Content-Digest", digest->str());
    r.headers.add("Accept-Ranges", "bytes");
    uint64_t start = 0, length = size;
    if (const std::string* range = req.headers.get("range")) {
      auto parsed = parseRange(*range, size);
      if (!parsed.isOk()) {
        Response e = error(parsed.status());
        e.headers.add("Content-Range", "bytes */" + std::to_string(size));
        return reply(ctx, ex, std::move(e));
      }
      if (parsed->has_value()) {
        start = (*parsed)->start;
        length = (*parsed)->end - start + 1;
        r.status = 206;
        r.headers.add("Content-Range", "bytes " + std::to_string(start) + "-" + std::to_string((*parsed)->end) + "/" +
                                           std::to_string(size));
      }
    }
    if (req.isHead()) {
      r.head_length = length;
    } else {
      r.body = FileBody{holder, start, length};
    }
    return reply(ctx, ex, std::move(r));
  }
  if (req.isHead() || req.headers.get("range") != nullptr) {
    // Evicted between the two looks: let the core answer.
    return relay(ctx, ex);
  }
  if (join->role == FillCoordinator::Role::kFollower) {
    EdgeMetrics::get().joined.inc();
    Response r;
    r.headers.add("Content-Type", "application/octet-stream");
    r.headers.add("Docker-Content-Digest", digest->str());
    r.body = std::shared_ptr<BodySource>(std::make_shared<FillSource>(ex->loop(), join->fill));
    return reply(ctx, ex, std::move(r));
  }
  EdgeMetrics::get().misses.inc();
  ClientPool* pool = poolFor(ctx, ex->loop());
  if (pool == nullptr) return reply(ctx, ex, error(Status(Code::kUnavailable, "upstream unreachable")));
  pool->send(upstreamRequest(ex),
             std::make_shared<FillFromUpstream>(ctx, ex, route.name, std::move(join->leader), join->fill));
}

// Asks the core (HEAD, with the client's token) whether the repository has the blob;
// then serves it from the cache or a fill, or relays the core's refusal.
class Confirm : public ResponseHandler {
 public:
  Confirm(EdgeContext& ctx, ExchangePtr ex, Route route) : ctx_(ctx), ex_(std::move(ex)), route_(std::move(route)) {}
  void onHeaders(const ClientResponse& r) override { status_ = r.status; }
  bool onBody(std::string_view) override { return true; }
  void onComplete(Status st) override {
    if (st.isOk() && status_ == 200) {
      ctx_.links.add(route_.name, route_.reference);
      return serveBlob(ctx_, ex_, route_);
    }
    if (!st.isOk()) EdgeMetrics::get().upstream_errors.inc();
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
  ClientPool* pool = poolFor(ctx, ex->loop());
  if (pool == nullptr) return reply(ctx, ex, error(Status(Code::kUnavailable, "upstream unreachable")));
  ClientRequest clean;
  clean.method = "HEAD";
  clean.target = "/v2/" + route.name + "/blobs/" + route.reference;
  if (const std::string* a = ex->request().headers.get("authorization")) clean.headers.add("Authorization", *a);
  pool->send(std::move(clean), std::make_shared<Confirm>(ctx, ex, route));
}

}  // namespace

void handleEdgeRequest(EdgeContext& ctx, const ExchangePtr& ex) {
  const Request& req = ex->request();
  if (req.path == "/metrics") return reply(ctx, ex, Response::text(200, MetricsRegistry::global().render()));
  if (req.path == "/healthz") return reply(ctx, ex, Response::json(200, R"({"status":"ok"})"));
  auto route = parseRoute(req.path);
  if (!route.isOk()) {
    return reply(ctx, ex, route.status().code() == Code::kNotFound
                              ? Response::json(404, R"({"errors":[{"code":"NOT_FOUND","message":"no such endpoint"}]})")
                              : error(route.status()));
  }
  if (req.method != "GET" && req.method != "HEAD") {
    return reply(ctx, ex, error(Status(Code::kMethodNotAllowed, "this is a read-only edge: push to " + ctx.upstream)));
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
  switch (route->kind) {
    case RouteKind::kBase: return reply(ctx, ex, Response::json(200, "{}"));
    case RouteKind::kBlob: return serveBlob(ctx, ex, *route);
    case RouteKind::kManifest: return serveManifest(ctx, ex, *route);
    case RouteKind::kUploadStart:
    case RouteKind::kUpload:
      return reply(ctx, ex, error(Status(Code::kMethodNotAllowed, "this is a read-only edge: push to " + ctx.upstream)));
    default: return relay(ctx, ex);
  }
}

}  // namespace wharf
