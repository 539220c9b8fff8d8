#include "edge/agent/prefetcher.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/json_body.h"
#include "shared/base/log.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/digest.h"
#include "shared/oci/manifest.h"
#include "shared/oci/media_types.h"
#include "shared/oci/names.h"

namespace wharf {
namespace {

using nlohmann::json;

struct PrefetchMetrics {
  Counter& jobs_ok = MetricsRegistry::global().counter("wharf_edge_prefetch_jobs_total",
                                                       "Prefetch jobs run, by outcome.", "outcome=\"ok\"");
  Counter& jobs_failed = MetricsRegistry::global().counter("wharf_edge_prefetch_jobs_total",
                                                           "Prefetch jobs run, by outcome.", "outcome=\"failed\"");
  Counter& bytes = MetricsRegistry::global().counter("wharf_edge_prefetch_bytes_total",
                                                     "Bytes fetched from the core by prefetch, pins and refetches.");
  Gauge& queued = MetricsRegistry::global().gauge("wharf_edge_prefetch_queued", "Prefetch jobs waiting.");
  static PrefetchMetrics& get() {
    static PrefetchMetrics m;
    return m;
  }
};

bool isKnownReason(const std::string& r) { return r == "rule" || r == "command" || r == "pin" || r == "refetch"; }

}  // namespace

json commandFailure(const std::string& why) { return {{"ok", false}, {"error", why}}; }

json PrefetchJob::toJson() const {
  json j = {{"repository", repository}, {"reference", reference}, {"reason", reason}};
  if (command != 0) j["command"] = command;
  if (!pin.empty()) j["pin"] = pin;
  if (!previous.empty()) j["previous"] = previous;
  if (expected_hits != 1) j["expected_hits"] = expected_hits;
  return j;
}

Result<PrefetchJob> PrefetchJob::fromJson(const json& j) {
  if (!j.is_object()) return Status(Code::kInvalidArgument, "a prefetch job is an object");
  JsonBody b(j, "job");
  PrefetchJob out;
  out.repository = b.string("repository", {.required = true, .max = kMaxRepositoryName}).value_or("");
  out.reference = b.string("reference", {.required = true, .max = 256}).value_or("");
  out.reason = b.string("reason", {.required = true, .max = 16}).value_or("");
  out.command = static_cast<uint64_t>(b.integer("command", {.min = 0}).value_or(0));
  out.pin = b.string("pin", {.max = 512}).value_or("");
  out.previous = b.string("previous", {.max = 256}).value_or("");
  out.expected_hits = static_cast<uint32_t>(b.integer("expected_hits", {.min = 1, .max = 1'000'000}).value_or(1));
  WHARF_RETURN_IF_ERROR(b.finish());
  if (!out.previous.empty() && !Digest::parse(out.previous).isOk()) {
    return Status(Code::kInvalidArgument, "job.previous: not a digest");
  }
  WHARF_RETURN_IF_ERROR(validateRepositoryName(out.repository));
  if (!isKnownReason(out.reason)) return Status(Code::kInvalidArgument, "job.reason: unknown \"" + out.reason + "\"");
  bool digest = Digest::parse(out.reference).isOk();
  if (out.reason == "refetch" ? !digest : (!digest && !validateTag(out.reference).isOk())) {
    return Status(Code::kInvalidArgument, "job.reference: not a tag or digest");
  }
  return out;
}

Result<std::unique_ptr<Prefetcher>> Prefetcher::open(EdgeContext& ctx, Options options) {
  std::unique_ptr<Prefetcher> p(new Prefetcher(ctx, std::move(options)));
  std::string text;
  Status st = readFile(p->options_.path, &text);
  if (st.isOk()) {
    auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("jobs") || !j["jobs"].is_array()) {
      return Status(Code::kInvalidArgument, p->options_.path + ": expected {\"jobs\":[...]}");
    }
    for (const auto& item : j["jobs"]) {
      auto job = PrefetchJob::fromJson(item);
      if (!job.isOk()) return Status(Code::kInvalidArgument, p->options_.path + ": " + job.status().message());
      p->queue_.push_back(std::move(job).value());
    }
    if (!p->queue_.empty()) logInfo("prefetch jobs to resume", {{"jobs", p->queue_.size()}});
  } else if (st.code() != Code::kNotFound) {
    return Status(st.code(), p->options_.path + ": " + st.message());
  }
  PrefetchMetrics::get().queued.set(static_cast<int64_t>(p->queue_.size()));
  return p;
}

Prefetcher::~Prefetcher() { stop(); }

void Prefetcher::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { loop(); });
}

void Prefetcher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Prefetcher::stopping() {
  std::lock_guard lock(mu_);
  return stopping_;
}

void Prefetcher::setPolicy(PrefetchPolicy policy) {
  {
    std::lock_guard lock(mu_);
    policy_ = std::move(policy);
  }
  cv_.notify_all();  // a new window may open now
}

PrefetchPolicy Prefetcher::policy() {
  std::lock_guard lock(mu_);
  return policy_;
}

size_t Prefetcher::queued() {
  std::lock_guard lock(mu_);
  return queue_.size();
}

Status Prefetcher::saveLocked() {
  json jobs = json::array();
  for (const auto& j : queue_) jobs.push_back(j.toJson());
  PrefetchMetrics::get().queued.set(static_cast<int64_t>(queue_.size()));
  return writeFileDurable(options_.path, json{{"jobs", jobs}}.dump(), 0600);
}

Status Prefetcher::enqueue(PrefetchJob job) {
  {
    std::lock_guard lock(mu_);
    if (std::find(queue_.begin(), queue_.end(), job) != queue_.end()) return Status::ok();
    if (queue_.size() >= options_.max_queue) {
      return Status(Code::kUnavailable, "the prefetch queue is full (" + std::to_string(queue_.size()) + " jobs)");
    }
    queue_.push_back(std::move(job));
    if (Status st = saveLocked(); !st.isOk()) {
      queue_.pop_back();
      return st;
    }
  }
  cv_.notify_all();
  return Status::ok();
}

void Prefetcher::pushed(const std::string& repo, const std::string& tag, const std::string& previous) {
  if (!validateRepositoryName(repo).isOk() || !validateTag(tag).isOk()) return;
  std::string upstream_repo;
  if (!ctx_.upstreams->route(repo, &upstream_repo).is_core) return;
  PullHistory::Pulls before = ctx_.pulls != nullptr ? ctx_.pulls->moved(repo, tag) : PullHistory::Pulls{};
  if (!policy().wants(repo, tag, before.last_ms, before.count, RealClock::instance().nowMillis())) return;
  PrefetchJob job{repo, tag, "rule", 0, "", Digest::parse(previous).isOk() ? previous : "", std::clamp<uint32_t>(before.count, 1, 1'000'000)};
  if (Status st = enqueue(std::move(job)); !st.isOk()) {
    logWarn("cannot queue a prefetch", {{"repository", repo}, {"tag", tag}, {"error", st.message()}});
  }
}

std::optional<PrefetchJob> Prefetcher::nextLocked(int64_t* wait_ms) {
  for (const auto& j : queue_) {
    if (j.reason != "rule") return j;  // asked for now
  }
  if (queue_.empty()) return std::nullopt;
  int64_t wait = policy_.waitForWindow(RealClock::instance().nowMillis());
  if (wait == 0) return queue_.front();
  *wait_ms = wait;
  return std::nullopt;
}

void Prefetcher::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    int64_t wait_ms = 60'000;
    auto job = nextLocked(&wait_ms);
    if (!job) {
      cv_.wait_for(lock, std::chrono::milliseconds(std::clamp<int64_t>(wait_ms, 1, 60'000)));
      continue;
    }
    lock.unlock();
    json outcome = run(*job);
    bool ok = outcome.value("ok", false);
    (ok ? PrefetchMetrics::get().jobs_ok : PrefetchMetrics::get().jobs_failed).inc();
    logInfo("prefetch", {{"repository", job->repository}, {"reference", job->reference}, {"reason", job->reason},
                         {"ok", ok}, {"error", outcome.value("error", "")},
                         {"fetched_bytes", ok ? outcome["result"].value("fetched_bytes", uint64_t{0}) : 0}});
    lock.lock();
    if (stopping_) break;  // cut short: it runs again after the restart
    auto it = std::find(queue_.begin(), queue_.end(), *job);
    if (it != queue_.end()) queue_.erase(it);
    if (Status st = saveLocked(); !st.isOk()) logWarn("cannot write the prefetch queue", {{"error", st.message()}});
    if (job->command != 0 && options_.finished) {
      lock.unlock();
      options_.finished(job->command, outcome);
      lock.lock();
    }
  }
}

Result<std::string> Prefetcher::tokenFor(const std::string& repo) {
  int64_t now = RealClock::instance().nowMillis();
  {
    std::lock_guard lock(token_mu_);
    auto it = tokens_.find(repo);
    if (it != tokens_.end() && it->second.expires_ms > now + 30'000) return it->second.header;
  }
  auto url = parseBaseUrl(options_.core);
  if (!url.isOk()) return url.status();
  BlockingClient c(url->host, url->port, 30'000);
  if (url->tls) c.useTls(options_.tls.ca_file, options_.tls.insecure);
  auto r = c.request("POST", "/api/v1/edges/self/token",
                     {{"Authorization", "Bearer " + options_.credential}, {"Content-Type", "application/json"}},
                     json{{"repository", repo}}.dump());
  if (!r.isOk()) return Status(Code::kUnavailable, "cannot reach the core for a pull token: " + r.status().message());
  if (r->status == 403) return Status(Code::kDenied, "the core does not let this edge pull " + repo);
  if (r->status == 401) return Status(Code::kUnauthorized, "the core refused this edge's credential");
  if (r->status != 200) return Status(Code::kUnavailable, "the core answered " + std::to_string(r->status) + " for a pull token");
  auto j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("token") || !j["token"].is_string()) {
    return Status(Code::kUnavailable, "the core's token answer has no token");
  }
  int64_t ttl_s = j.contains("expires_in") && j["expires_in"].is_number_integer() ? j["expires_in"].get<int64_t>() : 60;
  std::string header = "Bearer " + j["token"].get<std::string>();
  std::lock_guard lock(token_mu_);
  if (tokens_.size() > 1000) tokens_.clear();
  tokens_[repo] = Token{header, now + ttl_s * 1000};
  return header;
}

Result<std::string> Prefetcher::fetchManifest(BlockingClient& client, const std::string& repo,
                                              const std::string& reference, json* parsed, std::string* media_type) {
  auto token = tokenFor(repo);
  if (!token.isOk()) return token.status();
  auto r = client.request("GET", "/v2/" + repo + "/manifests/" + reference,
                          {{"Authorization", *token}, {"Accept", media::kManifestAcceptAll}});
  if (!r.isOk()) return Status(Code::kUnavailable, "manifest " + reference + ": " + r.status().message());
  if (r->status == 404) return Status(Code::kManifestUnknown, "manifest " + reference + " is not in " + repo);
  if (r->status != 200) {
    return Status(Code::kUnavailable, "manifest " + reference + ": the core answered " + std::to_string(r->status));
  }
  if (r->body.size() > kMaxManifestBytes) return Status(Code::kManifestInvalid, "manifest " + reference + " too large");
  bool by_digest = Digest::parse(reference).isOk();
  std::string digest = by_digest ? reference : digestOf(r->body).str();
  *media_type = r->header("content-type");
  WHARF_RETURN_IF_ERROR(
      ctx_.manifests->store(repo, by_digest ? "" : reference, ManifestCache::Entry{digest, *media_type, r->body}));
  if (ctx_.stats != nullptr) ctx_.stats->fetched(repo, r->body.size(), /*prefetch=*/true);
  PrefetchMetrics::get().bytes.inc(r->body.size());
  *parsed = json::parse(r->body, nullptr, false);
  return digest;
}

Status Prefetcher::fetchBlob(BlockingClient& client, const std::string& repo, const std::string& digest_text,
                             uint64_t size, Fetched* out) {
  auto digest = Digest::parse(digest_text);
  if (!digest.isOk()) return digest.status();
  ++out->blobs;
  auto skip = [&](const std::string& why) {
    out->skipped.push_back({{"digest", digest_text}, {"why", why}});
    return Status::ok();
  };
  if (ctx_.index->blob(digest_text)) {
    ctx_.index->link(repo, digest_text);  // the core just listed it in an image of repo
    ++out->cached;
    return Status::ok();
  }
  // Client fills first: wait while enough of them are in flight.
  {
    std::unique_lock lock(mu_);
    while (!stopping_ && ctx_.fills->inFlight() >= options_.max_client_fills) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
    }
    if (stopping_) return Status(Code::kCancelled, "stopping");
  }
  int64_t protect_since = RealClock::instance().nowMillis() - options_.protect_ms;
  if (size > 0 && !ctx_.index->roomFor(size, protect_since)) {
    return skip("no room without evicting pinned or recently used content");
  }
  auto join = ctx_.fills->join(*digest, size);
  if (!join.isOk()) return join.status();
  if (join->role == FillCoordinator::Role::kCached) {
    ctx_.index->link(repo, digest_text);
    ++out->cached;
    return Status::ok();
  }
  if (join->role == FillCoordinator::Role::kFollower) return skip("a client is fetching it");
  FillLeader leader = std::move(join->leader);
  std::shared_ptr<Fill> fill = join->fill;
  auto token = tokenFor(repo);
  if (!token.isOk()) return token.status();
  uint64_t rate = policy().rate;
  auto t0 = std::chrono::steady_clock::now();
  uint64_t got = 0;
  bool started = false;
  auto begin = [&](const HttpResponse& head) {
    if (started) return;
    started = true;
    ctx_.index->link(repo, digest_text);  // before followers are told: they check the link
    const std::string length = head.header("content-length");
    fill->started(length.empty() ? 0 : std::strtoull(length.c_str(), nullptr, 10));
  };
  auto r = client.stream("/v2/" + repo + "/blobs/" + digest_text, {{"Authorization", *token}},
                         [&](const HttpResponse& head, std::string_view piece) -> Status {
                           begin(head);
                           WHARF_RETURN_IF_ERROR(leader->append(piece));
                           got += piece.size();
                           if (ctx_.stats != nullptr) ctx_.stats->fetched(repo, piece.size(), /*prefetch=*/true);
                           PrefetchMetrics::get().bytes.inc(piece.size());
                           // The rate limit, until a client waits on this fill.
                           std::unique_lock lock(mu_);
                           while (!stopping_ && rate > 0 && fill->joined() == 0) {
                             auto due = std::chrono::milliseconds(got * 1000 / rate);
                             auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - t0);
                             if (elapsed >= due) break;
                             cv_.wait_for(lock, std::min<std::chrono::milliseconds>(due - elapsed,
                                                                                    std::chrono::milliseconds(100)));
                           }
                           return stopping_ ? Status(Code::kCancelled, "stopping") : Status::ok();
                         });
  if (!r.isOk()) return Status(r.status().code(), "blob " + digest_text + ": " + r.status().message());
  if (r->status != 200) {
    if (r->status == 401) {
      std::lock_guard lock(token_mu_);
      tokens_.erase(repo);
    }
    return Status(Code::kUnavailable, "blob " + digest_text + ": the core answered " + std::to_string(r->status));
  }
  HttpResponse head = *r;
  begin(head);  // an empty blob has no piece
  WHARF_RETURN_IF_ERROR(leader->finish());
  uint64_t bytes = fill->current().available;
  if (fill->joined() == 0) {
    ctx_.index->committedPrefetch(digest_text, bytes, repo, out->expected_hits);
  } else {
    ctx_.index->committedPrefetch(digest_text, bytes, "", out->expected_hits);  // not unread: no waste to count
    if (ctx_.stats != nullptr) ctx_.stats->prefetchOutcome(repo, bytes, /*used=*/true);  // clients read it as it came
  }
  leader.reset();
  out->bytes += got;
  ctx_.index->enforce(RealClock::instance().nowMillis() - options_.protect_ms);
  return Status::ok();
}

json Prefetcher::run(const PrefetchJob& job) {
  std::string upstream_repo;
  if (!ctx_.upstreams->route(job.repository, &upstream_repo).is_core) {
    return commandFailure(job.repository + " is not served by the core (a mapped registry): not prefetched");
  }
  auto url = parseBaseUrl(options_.core);
  if (!url.isOk()) return commandFailure("the core's URL: " + url.status().message());
  BlockingClient client(url->host, url->port, 60'000);
  if (url->tls) client.useTls(options_.tls.ca_file, options_.tls.insecure);
  Fetched f;
  f.expected_hits = job.expected_hits;
  if (job.reason == "refetch") {
    Status st = fetchBlob(client, job.repository, job.reference, 0, &f);
    if (!st.isOk()) return commandFailure(st.message());
    return {{"ok", true}, {"result", {{"digest", job.reference}, {"fetched_bytes", f.bytes}}}};
  }
  json manifest;
  std::string media_type;
  auto root = fetchManifest(client, job.repository, job.reference, &manifest, &media_type);
  if (!root.isOk()) return commandFailure(root.status().message());
  size_t manifests = 1;
  std::vector<json> images;  // image manifests whose blobs are fetched
  json not_fetched = json::array();
  PrefetchPolicy policy = this->policy();
  if (manifest.is_object() && manifest.contains("manifests") && manifest["manifests"].is_array()) {
    for (const auto& child : manifest["manifests"]) {
      if (!child.is_object() || !child.contains("digest") || !child["digest"].is_string()) continue;
      const json platform = child.value("platform", json::object());
      std::string os = platform.is_object() ? platform.value("os", "") : "";
      std::string arch = platform.is_object() ? platform.value("architecture", "") : "";
      std::string variant = platform.is_object() ? platform.value("variant", "") : "";
      if (!policy.wantsPlatform(os, arch, variant)) {
        not_fetched.push_back(child["digest"]);
        continue;
      }
      json child_manifest;
      std::string child_type;
      auto d = fetchManifest(client, job.repository, child["digest"].get<std::string>(), &child_manifest, &child_type);
      if (!d.isOk()) return commandFailure(d.status().message());
      ++manifests;
      images.push_back(std::move(child_manifest));
    }
  } else {
    images.push_back(std::move(manifest));
  }
  // A tag that moved: the nodes that ran the image it named have that image's blobs, so
  // only the new ones are fetched (as far as this edge has the previous manifests).
  std::set<std::string> had;
  if (!job.previous.empty()) {
    std::vector<std::string> previous = {job.previous};
    for (size_t i = 0; i < previous.size() && i < 64; ++i) {
      auto entry = ctx_.manifests->byDigest(job.repository, previous[i]);
      if (!entry) continue;
      auto m = parseManifest(entry->body, entry->media_type);
      if (!m.isOk()) continue;
      if (m->config) had.insert(m->config->digest.str());
      for (const auto& l : m->layers) had.insert(l.digest.str());
      for (const auto& c : m->manifests) previous.push_back(c.digest.str());
    }
  }
  for (const auto& image : images) {
    std::vector<std::pair<std::string, uint64_t>> blobs;
    auto add = [&](const json& d) {
      if (d.is_object() && d.contains("digest") && d["digest"].is_string()) {
        uint64_t size = d.contains("size") && d["size"].is_number_unsigned() ? d["size"].get<uint64_t>() : 0;
        blobs.emplace_back(d["digest"].get<std::string>(), size);
      }
    };
    if (image.is_object() && image.contains("config")) add(image["config"]);
    if (image.is_object() && image.contains("layers") && image["layers"].is_array()) {
      for (const auto& l : image["layers"]) add(l);
    }
    for (const auto& [digest, size] : blobs) {
      if (had.count(digest)) {
        f.skipped.push_back({{"digest", digest}, {"why", "the previous image has it (its nodes too)"}});
        continue;
      }
      // A rollout is the site's: each edge brings in the blobs it owns, and serves the
      // others from their owners (one WAN fetch per site). Commands and pins are this
      // edge's own.
      if (job.reason == "rule" && ctx_.peers != nullptr) {
        if (auto owner = ctx_.peers->owner(digest, RealClock::instance().nowMillis())) {
          f.skipped.push_back({{"digest", digest}, {"why", "owned by " + owner->name + ", an edge of the site"}});
          continue;
        }
      }
      Status st = fetchBlob(client, job.repository, digest, size, &f);
      if (!st.isOk()) return commandFailure(st.message());
    }
  }
  json result = {{"repository", job.repository}, {"reference", job.reference}, {"digest", *root},
                 {"manifests", manifests}, {"blobs", f.blobs}, {"cached", f.cached}, {"fetched_bytes", f.bytes},
                 {"skipped", f.skipped}};
  if (!not_fetched.empty()) result["other_platforms"] = not_fetched;
  if (!job.pin.empty()) {
    auto digests = ctx_.index->closure(job.repository, job.reference);
    ctx_.index->pin(job.pin, digests);
    result["label"] = job.pin;
    result["digests"] = digests.size();
  }
  if (Status st = ctx_.index->flush(); !st.isOk()) return commandFailure("cannot write the cache index: " + st.message());
  return {{"ok", true}, {"result", result}};
}

}  // namespace wharf
