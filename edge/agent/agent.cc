#include "edge/agent/agent.h"

#include <optional>
#include <random>

#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/json_body.h"
#include "shared/base/log.h"
#include "shared/http/client.h"
#include "shared/http/url.h"
#include "shared/metrics/metrics.h"
#include "shared/oci/digest.h"
#include "shared/oci/names.h"

namespace wharf {
namespace {

using nlohmann::json;

constexpr int64_t kMinBackoffMs = 1'000;
constexpr int64_t kMaxBackoffMs = 60'000;

struct AgentMetrics {
  Counter& commands_ok = MetricsRegistry::global().counter("wharf_edge_commands_total",
                                                           "Commands from the core, by outcome.", "outcome=\"ok\"");
  Counter& commands_failed = MetricsRegistry::global().counter("wharf_edge_commands_total",
                                                               "Commands from the core, by outcome.", "outcome=\"failed\"");
  Counter& reports_sent = MetricsRegistry::global().counter("wharf_edge_reports_total",
                                                            "Reports to the core, by outcome.", "outcome=\"sent\"");
  Counter& reports_failed = MetricsRegistry::global().counter("wharf_edge_reports_total",
                                                              "Reports to the core, by outcome.", "outcome=\"failed\"");
  Gauge& connected = MetricsRegistry::global().gauge("wharf_edge_channel_connected",
                                                     "1 while the channel to the core answers.");
  static AgentMetrics& get() {
    static AgentMetrics m;
    return m;
  }
};

json success(json result) { return {{"ok", true}, {"result", std::move(result)}}; }

json purgedJson(const CacheIndex::Purged& p) {
  return {{"tags", p.tags}, {"links", p.links}, {"blobs", p.blobs}, {"bytes", p.bytes}};
}

json usageJson(const std::vector<CacheIndex::Usage>& list) {
  json out = json::array();
  for (const auto& u : list) out.push_back({{"name", u.name}, {"bytes", u.bytes}, {"blobs", u.blobs}});
  return out;
}

std::string pinLabel(const std::string& repo, const std::string& reference) {
  return repo + (reference.find(':') != std::string::npos ? "@" : ":") + reference;
}

}  // namespace

Result<std::unique_ptr<EdgeAgent>> EdgeAgent::open(EdgeContext& ctx, const EdgeIdentity& identity,
                                                   AgentOptions options) {
  WHARF_RETURN_IF_ERROR(makeDirs(options.state_dir));
  std::unique_ptr<EdgeAgent> agent(new EdgeAgent(ctx, identity, std::move(options)));
  auto stats = EdgeStats::open(agent->options_.state_dir + "/counters.json");
  if (!stats.isOk()) return stats.status();
  agent->stats_ = std::move(stats).value();
  std::string path = agent->options_.state_dir + "/state.json";
  std::string text;
  Status st = readFile(path, &text);
  if (st.isOk()) {
    auto body = JsonBody::parse(text);
    if (!body.isOk()) return Status(Code::kInvalidArgument, path + ": " + body.status().message());
    agent->last_done_ = static_cast<uint64_t>(body->integer("last_done", {.min = 0}).value_or(0));
    if (auto events = body->integer("events", {.min = 0})) agent->events_ = static_cast<uint64_t>(*events);
    if (body->has("unacked")) agent->unacked_ = body->raw()["unacked"];
    if (!agent->unacked_.is_array()) agent->unacked_ = json::array();
    ctx.draining.store(body->boolean("draining").value_or(false));
    ctx.retry_after_s.store(static_cast<int>(body->integer("retry_after", {.min = 1, .max = 3600}).value_or(60)));
    if (!body->status().isOk()) return Status(Code::kInvalidArgument, path + ": " + body->status().message());
    if (ctx.draining.load()) logWarn("this edge is drained (a command from the core): serving 503 until resumed");
  } else if (st.code() != Code::kNotFound) {
    return Status(st.code(), path + ": " + st.message());
  }
  std::string revoked_path = agent->options_.state_dir + "/revocations.json";
  if (readFile(revoked_path, &text).isOk()) {
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    auto list = RevocationList::fromJson(j);
    if (!list.isOk()) return Status(Code::kInvalidArgument, revoked_path + ": " + list.status().message());
    agent->revocations_version_ = list->version;
    ctx.setRevocations(std::make_shared<const RevocationList>(list->pruned(RealClock::instance().nowMillis() / 1000)));
  }
  auto pulls = PullHistory::open(agent->options_.state_dir + "/pulls.json", RealClock::instance());
  if (!pulls.isOk()) return pulls.status();
  agent->pulls_ = std::move(pulls).value();
  Prefetcher::Options po;
  po.path = agent->options_.state_dir + "/prefetch.json";
  po.core = identity.core;
  po.credential = identity.credential;
  po.tls = agent->options_.tls;
  po.protect_ms = agent->options_.prefetch_protect_ms;
  EdgeAgent* self = agent.get();
  po.finished = [self](uint64_t id, json outcome) { self->finishCommand(id, std::move(outcome)); };
  auto prefetcher = Prefetcher::open(ctx, std::move(po));
  if (!prefetcher.isOk()) return prefetcher.status();
  agent->prefetcher_ = std::move(prefetcher).value();
  agent->applySettings(identity.settings);
  ctx.stats = agent->stats_.get();
  ctx.pulls = agent->pulls_.get();
  EdgeStats* counters = agent->stats_.get();
  ctx.index->setListener(
      {[counters](uint64_t bytes) { counters->evicted(bytes); },
       [counters](const std::string& repo, uint64_t bytes) { counters->prefetchOutcome(repo, bytes, true); },
       [counters](const std::string& repo, uint64_t bytes) { counters->prefetchOutcome(repo, bytes, false); }});
  agent->started_ms_ = RealClock::instance().nowMillis();
  return agent;
}

EdgeAgent::~EdgeAgent() {
  stop();
  ctx_.index->setListener({});
  ctx_.stats = nullptr;
  ctx_.pulls = nullptr;
}

void EdgeAgent::start() {
  channel_ = std::thread([this] { channelLoop(); });
  reporter_ = std::thread([this] { reportLoop(); });
  prefetcher_->start();
}

void EdgeAgent::applySettings(const json& settings) {
  auto policy = PrefetchPolicy::fromJson(settings.is_object() && settings.contains("prefetch") ? settings["prefetch"]
                                                                                                : json());
  if (!policy.isOk()) {
    logWarn("ignoring the core's prefetch settings", {{"error", policy.status().message()}});
    return;
  }
  prefetcher_->setPolicy(std::move(policy).value());
}

void EdgeAgent::finishCommand(uint64_t id, json outcome) {
  outcome["id"] = id;
  {
    std::lock_guard lock(journal_mu_);
    unacked_.push_back(std::move(outcome));
    if (Status st = saveJournal(); !st.isOk()) logError("cannot write the command journal", {{"error", st.message()}});
  }
  // Acknowledged now rather than after the channel's current poll.
  if (auto c = client(10'000)) acknowledgePending(*c);
}

void EdgeAgent::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    if (polling_ != nullptr) polling_->interrupt();
    if (reporting_ != nullptr) reporting_->interrupt();
  }
  cv_.notify_all();
  if (channel_.joinable()) channel_.join();
  if (reporter_.joinable()) reporter_.join();
  prefetcher_->stop();
  if (Status st = pulls_->save(); !st.isOk()) logWarn("cannot save the pull history", {{"error", st.message()}});
  if (Status st = sendReport(/*final=*/true); !st.isOk()) {
    logWarn("cannot send the final report to the core", {{"error", st.message()}});
  }
}

bool EdgeAgent::pause(int64_t ms) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

std::unique_ptr<BlockingClient> EdgeAgent::client(int timeout_ms) {
  auto url = parseBaseUrl(identity_.core);
  if (!url.isOk()) return nullptr;
  auto c = std::make_unique<BlockingClient>(url->host, url->port, timeout_ms);
  if (url->tls) c->useTls(options_.tls.ca_file, options_.tls.insecure);
  return c;
}

Status EdgeAgent::saveRevocations(const RevocationList& list) {
  return writeFileDurable(options_.state_dir + "/revocations.json", list.toJson().dump(), 0600);
}

Status EdgeAgent::saveJournal() {
  json state = {{"last_done", last_done_},
                {"unacked", unacked_},
                {"events", events_ ? json(*events_) : json()},
                {"draining", ctx_.draining.load()},
                {"retry_after", ctx_.retry_after_s.load()}};
  return writeFileDurable(options_.state_dir + "/state.json", state.dump(), 0600);
}

void EdgeAgent::acknowledgePending(BlockingClient& client) {
  std::lock_guard lock(journal_mu_);
  bool changed = false;
  while (!unacked_.empty()) {
    const json& a = unacked_.front();
    json body = {{"ok", a.value("ok", false)}};
    if (a.contains("result")) body["result"] = a["result"];
    if (a.contains("error")) body["error"] = a["error"];
    std::string target = "/api/v1/edges/self/commands/" + std::to_string(a.value("id", uint64_t{0}));
    auto r = client.request("POST", target,
                            {{"Authorization", "Bearer " + identity_.credential}, {"Content-Type", "application/json"}},
                            body.dump());
    if (!r.isOk() || r->status == 401 || r->status == 408 || r->status == 429 || r->status >= 500) {
      break;  // again on the next round
    }
    if (r->status != 200 && r->status != 404) {
      // The core refuses this outcome for good (413: too large, 400): it gets a short
      // failure instead, so the commands after it are not held up behind it.
      logWarn("the core refused a command outcome", {{"id", a.value("id", uint64_t{0})}, {"status", r->status}});
      json failed = {{"ok", false}, {"error", "the outcome could not be reported (" + std::to_string(r->status) + ")"}};
      auto again = client.request("POST", target,
                                  {{"Authorization", "Bearer " + identity_.credential}, {"Content-Type", "application/json"}},
                                  failed.dump());
      if (!again.isOk() || again->status >= 500) break;
    }
    // 404: the core no longer knows the command (the edge was removed and re-added).
    unacked_.erase(unacked_.begin());
    changed = true;
  }
  if (changed) {
    if (Status st = saveJournal(); !st.isOk()) logWarn("cannot write the command journal", {{"error", st.message()}});
  }
}

void EdgeAgent::channelLoop() {
  int64_t backoff = kMinBackoffMs;
  std::mt19937_64 rng(std::random_device{}());
  bool connected = false;
  while (true) {
    auto c = client((options_.poll_wait_s + 15) * 1000);
    if (c == nullptr) {
      logError("the core's URL is invalid", {{"core", identity_.core}});
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      polling_ = c.get();
    }
    acknowledgePending(*c);
    uint64_t after;
    std::optional<uint64_t> events_after;
    {
      std::lock_guard lock(journal_mu_);
      after = last_done_;
      events_after = events_;
    }
    auto r = c->request("GET",
                        "/api/v1/edges/self/channel?after=" + std::to_string(after) +
                            "&revocations=" + std::to_string(revocations_version_) +
                            (ctx_.peers != nullptr ? "&peers_version=" + std::to_string(peers_version_) : std::string()) +
                            (events_after ? "&events=" + std::to_string(*events_after) : std::string()) +
                            "&wait=" + std::to_string(options_.poll_wait_s) +
                            // A drained edge is no one's peer until it resumes.
                            (advertise_url_.empty() || ctx_.draining.load() ? std::string()
                                                                            : "&url=" + percentEncode(advertise_url_)),
                        {{"Authorization", "Bearer " + identity_.credential}});
    {
      std::lock_guard lock(mu_);
      polling_ = nullptr;
      if (stopping_) return;
    }
    Status problem;
    json commands, events;
    std::optional<uint64_t> events_next;
    std::optional<RevocationList> revocations;
    std::optional<std::vector<std::pair<std::string, std::string>>> peers;
    uint64_t peers_version = 0;
    if (!r.isOk()) {
      problem = r.status();
    } else if (r->status == 401) {
      // The maintenance thread's refresh sees the same and stops the edge serving.
      problem = Status(Code::kUnauthorized, "the core refused this edge's credential");
    } else if (r->status != 200) {
      problem = Status(Code::kUnavailable, "the core answered " + std::to_string(r->status));
    } else {
      auto body = JsonBody::parse(r->body);
      if (body.isOk() && body->raw().contains("commands") && body->raw()["commands"].is_array()) {
        commands = body->raw()["commands"];
        const json& raw = body->raw();
        if (raw.contains("events") && raw["events"].is_array()) events = raw["events"];
        if (raw.contains("events_next") && raw["events_next"].is_number_unsigned()) {
          events_next = raw["events_next"].get<uint64_t>();
        }
        if (raw.contains("peers_version") && raw["peers_version"].is_number_unsigned()) {
          peers_version = raw["peers_version"].get<uint64_t>();
        }
        if (raw.contains("peers") && raw["peers"].is_array()) {
          peers.emplace();
          for (const auto& p : raw["peers"]) {
            if (p.is_object() && p.contains("name") && p["name"].is_string() && p.contains("url") && p["url"].is_string()) {
              peers->emplace_back(p["name"].get<std::string>(), p["url"].get<std::string>());
            }
          }
        }
        if (body->raw().contains("revocations")) {
          auto list = RevocationList::fromJson(body->raw()["revocations"]);
          if (list.isOk()) {
            revocations = std::move(list).value();
          } else {
            problem = Status(Code::kUnavailable, "the core's revocation list: " + list.status().message());
          }
        }
      } else {
        problem = Status(Code::kUnavailable, "the core's channel answer is not {\"commands\":[...]}");
      }
    }
    if (!problem.isOk()) {
      AgentMetrics::get().connected.set(0);
      if (connected) logWarn("lost the channel to the core; serving from the cache", {{"error", problem.message()}});
      connected = false;
      // Jittered: a core coming back is not hit by every edge at the same instant.
      int64_t wait = backoff / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(backoff / 2 + 1));
      if (!pause(wait)) return;
      backoff = std::min(backoff * 2, kMaxBackoffMs);
      continue;
    }
    if (!connected) logInfo("channel to the core open", {{"core", identity_.core}});
    connected = true;
    AgentMetrics::get().connected.set(1);
    backoff = kMinBackoffMs;
    if (revocations) {
      // Applied before any command, and kept across restarts until its entries expire.
      auto pruned = std::make_shared<const RevocationList>(revocations->pruned(RealClock::instance().nowMillis() / 1000));
      ctx_.setRevocations(pruned);
      if (Status st = saveRevocations(*pruned); !st.isOk()) {
        logError("cannot save the revocation list", {{"error", st.message()}});
      }
      revocations_version_ = pruned->version;
      logInfo("token revocations from the core", {{"version", pruned->version}, {"entries", pruned->entries.size()}});
    }
    if (peers && ctx_.peers != nullptr) {
      peers_version_ = peers_version;
      // Copies a peer owns are worth less here: losing one costs a LAN fetch.
      if (ctx_.peers->update(*peers)) ctx_.index->reassessOwnership();
    }
    // Pushes: queued for prefetch as the policy says, then the place in the log saved.
    for (const auto& ev : events) {
      if (!ev.is_object() || !ev.contains("repository") || !ev["repository"].is_string() || !ev.contains("tag") ||
          !ev["tag"].is_string()) {
        continue;
      }
      std::string previous = ev.contains("previous_digest") && ev["previous_digest"].is_string()
                                 ? ev["previous_digest"].get<std::string>()
                                 : "";
      prefetcher_->pushed(ev["repository"].get<std::string>(), ev["tag"].get<std::string>(), previous);
    }
    if (events_next && events_next != events_after) {
      std::lock_guard lock(journal_mu_);
      events_ = events_next;
      if (Status st = saveJournal(); !st.isOk()) logError("cannot write the command journal", {{"error", st.message()}});
    }
    for (const auto& cmd : commands) {
      if (!cmd.is_object() || !cmd.contains("id") || !cmd["id"].is_number_unsigned() || !cmd.contains("kind") ||
          !cmd["kind"].is_string()) {
        logWarn("ignoring a malformed command from the core", {{"command", cmd.dump()}});
        continue;
      }
      uint64_t id = cmd["id"].get<uint64_t>();
      {
        std::lock_guard lock(journal_mu_);
        if (id <= last_done_) continue;  // done before (its acknowledgement is in unacked_)
      }
      std::string kind = cmd["kind"].get<std::string>();
      json args = cmd.contains("args") && cmd["args"].is_object() ? cmd["args"] : json::object();
      json outcome = execute(id, kind, args);
      if (outcome.value("pending", false)) {
        // A prefetch job gives the outcome (finishCommand); the job is queued durably.
        logInfo("edge command", {{"id", id}, {"kind", kind}, {"args", args.dump()}, {"queued", true}});
        std::lock_guard lock(journal_mu_);
        last_done_ = id;
        if (Status st = saveJournal(); !st.isOk()) logError("cannot write the command journal", {{"error", st.message()}});
        continue;
      }
      bool ok = outcome.value("ok", false);
      (ok ? AgentMetrics::get().commands_ok : AgentMetrics::get().commands_failed).inc();
      logInfo("edge command", {{"id", id}, {"kind", kind}, {"args", args.dump()}, {"ok", ok},
                               {"error", outcome.value("error", "")}});
      outcome["id"] = id;
      std::lock_guard lock(journal_mu_);
      last_done_ = id;
      unacked_.push_back(outcome);
      if (Status st = saveJournal(); !st.isOk()) logError("cannot write the command journal", {{"error", st.message()}});
    }
  }
}

json EdgeAgent::execute(uint64_t id, const std::string& kind, const json& args) {
  auto str = [&](const char* k) { return args.contains(k) && args[k].is_string() ? args[k].get<std::string>() : ""; };
  CacheIndex& index = *ctx_.index;
  auto flushed = [&](json result) {
    // Before the acknowledgement: a purge or pin must survive a crash right after it.
    if (Status st = index.flush(); !st.isOk()) return commandFailure("cannot write the cache index: " + st.message());
    return success(std::move(result));
  };
  if (kind == "purge") {
    CacheIndex::Purged p;
    std::string digest = str("digest"), repo = str("repository"), ref = str("reference");
    if (!digest.empty()) {
      if (!Digest::parse(digest).isOk()) return commandFailure("invalid digest");
      p = index.purgeDigest(digest);
    } else if (repo.empty()) {
      return commandFailure("purge needs a repository or a digest");
    } else if (!ref.empty()) {
      p = index.purgeImage(repo, ref);
    } else {
      p = index.purgeRepository(repo);
    }
    return flushed(purgedJson(p));
  }
  auto queue = [&](PrefetchJob job) {
    if (!validateRepositoryName(job.repository).isOk()) return commandFailure("invalid repository");
    if (!Digest::parse(job.reference).isOk() && !validateTag(job.reference).isOk()) return commandFailure("invalid reference");
    if (Status st = prefetcher_->enqueue(std::move(job)); !st.isOk()) return commandFailure(st.message());
    return json{{"pending", true}};
  };
  if (kind == "prefetch") return queue({str("repository"), str("reference"), "command", id, "", "", 1});
  if (kind == "pin" || kind == "unpin") {
    std::string repo = str("repository"), ref = str("reference");
    if (repo.empty() || ref.empty()) return commandFailure(kind + " needs a repository and a reference");
    std::string label = pinLabel(repo, ref);
    if (kind == "unpin") return flushed({{"label", label}, {"removed", index.unpin(label)}});
    auto digests = index.closure(repo, ref);
    bool whole = !digests.empty() && ctx_.manifests->byDigest(repo, digests[0]).has_value();
    uint64_t bytes = 0;
    for (size_t i = 1; whole && i < digests.size(); ++i) {  // [0] is the manifest itself
      auto b = index.blob(digests[i]);
      if (b) {
        bytes += b->size;
      } else if (!ctx_.manifests->byDigest(repo, digests[i])) {
        whole = false;
      }
    }
    if (!whole) {
      // Pinned content is fetched when missing: pinned once it is here.
      if (!digests.empty()) index.pin(label, digests);  // what is here stays meanwhile
      return queue({repo, ref, "pin", id, label, "", 1});
    }
    index.pin(label, digests);
    return flushed({{"label", label}, {"digests", digests.size()}, {"bytes", bytes}});
  }
  if (kind == "drain" || kind == "resume") {
    bool drain = kind == "drain";
    int retry = args.contains("retry_after") && args["retry_after"].is_number_integer()
                    ? std::clamp(args["retry_after"].get<int>(), 1, 3600)
                    : 60;
    std::lock_guard lock(journal_mu_);
    ctx_.draining.store(drain);
    if (drain) ctx_.retry_after_s.store(retry);
    if (Status st = saveJournal(); !st.isOk()) return commandFailure("cannot write the journal: " + st.message());
    logWarn(drain ? "drained by the core: serving 503 until resumed" : "resumed by the core: serving again");
    return success({{"draining", drain}});
  }
  if (kind == "inventory") {
    size_t top = args.contains("top") && args["top"].is_number_unsigned()
                     ? std::clamp<size_t>(args["top"].get<size_t>(), 1, 1000)
                     : 20;
    json pins = json::object();  // labels and their digest counts (an answer stays small)
    for (const auto& [label, digests] : index.pins()) {
      if (pins.size() >= 1000) break;
      pins[label] = digests.size();
    }
    return success({{"used", index.used()},
                    {"budget", index.budget().bytes},
                    {"blobs", index.blobCount()},
                    {"pinned_bytes", index.pinnedBytes()},
                    {"pins", pins},
                    {"top_repositories", usageJson(index.topRepositories(top))},
                    {"top_images", usageJson(index.topImages(top))}});
  }
  if (kind == "refresh") {
    if (options_.refresh) options_.refresh();
    return success(json::object());
  }
  return commandFailure("this edge does not know the command \"" + kind + "\" (upgrade it)");
}

Status EdgeAgent::sendReport(bool final) {
  auto report = stats_->nextReport();
  if (!report.isOk()) return report.status();
  report->time_ms = RealClock::instance().nowMillis();
  report->version = options_.version;
  report->uptime_s = (report->time_ms - started_ms_) / 1000;
  report->final = final;
  report->draining = ctx_.draining.load();
  report->cache_used = ctx_.index->used();
  report->cache_budget = ctx_.index->budget().bytes;
  report->cache_blobs = ctx_.index->blobCount();
  report->pinned_bytes = ctx_.index->pinnedBytes();
  report->fills_in_flight = ctx_.fills->inFlight();
  auto c = client(final ? 5'000 : 30'000);
  if (c == nullptr) return Status(Code::kInvalidArgument, "the core's URL is invalid");
  if (!final) {
    std::lock_guard lock(mu_);
    if (stopping_) return Status(Code::kCancelled, "stopping");
    reporting_ = c.get();
  }
  auto r = c->request("POST", "/api/v1/edges/self/reports",
                      {{"Authorization", "Bearer " + identity_.credential}, {"Content-Type", "application/json"}},
                      report->toJson().dump());
  if (!final) {
    std::lock_guard lock(mu_);
    reporting_ = nullptr;
  }
  if (!r.isOk()) {
    AgentMetrics::get().reports_failed.inc();
    return r.status();
  }
  if (r->status != 200) {
    AgentMetrics::get().reports_failed.inc();
    return Status(Code::kUnavailable, "the core answered " + std::to_string(r->status) + ": " + r->body.substr(0, 200));
  }
  AgentMetrics::get().reports_sent.inc();
  return Status::ok();
}

void EdgeAgent::reportLoop() {
  int64_t next_report = RealClock::instance().nowMillis() + options_.report_interval_ms;
  int failures = 0;
  while (pause(std::min(options_.save_interval_ms, options_.report_interval_ms))) {
    if (Status st = stats_->save(); !st.isOk()) logWarn("cannot save the report counters", {{"error", st.message()}});
    if (Status st = pulls_->save(); !st.isOk()) logWarn("cannot save the pull history", {{"error", st.message()}});
    if (RealClock::instance().nowMillis() < next_report) continue;
    next_report = RealClock::instance().nowMillis() + options_.report_interval_ms;
    Status st = sendReport(false);
    if (st.isOk()) {
      failures = 0;
    } else if (++failures == 1 || failures % 10 == 0) {
      // The next report covers this one's counts: nothing is lost, so say it rarely.
      logWarn("cannot send a report to the core", {{"error", st.message()}, {"failures", failures}});
    }
  }
}

}  // namespace wharf
