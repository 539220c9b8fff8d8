// wharf-edge: a caching pull-through appliance for a Wharf core.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <thread>

#include "edge/agent/agent.h"
#include "edge/cache/cache_index.h"
#include "edge/cache/fill_coordinator.h"
#include "edge/cache/manifest_cache.h"
#include "edge/cache/scrubber.h"
#include "edge/link/registration.h"
#include "edge/link/site_peers.h"
#include "edge/pull/pull_handler.h"
#include "edge/pull/upstreams.h"
#include "shared/base/log.h"
#include "shared/config/config.h"
#include "shared/event/work_queue.h"
#include "shared/http/server.h"

using namespace wharf;

namespace {

struct EdgeConfig {
  std::string listen = "127.0.0.1:5001";
  std::string data_dir = "wharf-edge-data";
  std::string core;  // http(s)://host:port
  std::string join_token;
  std::string core_ca_file;
  bool core_insecure = false;
  std::string upstreams;  // JSON array: other registries by namespace prefix
  std::string stale_if_error = "*";
  int64_t threads = 0;
  std::string log_level = "info";
  bool access_log = true;
  int64_t keys_refresh_ms = 300'000;
  int64_t report_interval_ms = 60'000;
  int64_t tag_ttl_ms = 60'000;
  int64_t cache_budget = 10ll << 30;
  int64_t high_watermark = 90;
  int64_t low_watermark = 80;
  int64_t scrub_rate = 32ll << 20;
  int64_t scrub_interval_ms = 24ll * 3600 * 1000;
  std::string port_file;
  std::string advertise_url;  // "" : derived from listen; "off": no site peers

  void describe(ConfigSchema& s) {
    s.add(stringDirective("listen", "Address and port to serve on (HOST:PORT; port 0 picks a free one).", &listen));
    s.add(stringDirective("data_dir", "Directory of the cache and of the edge's registration (edge.json).", &data_dir));
    s.add(stringDirective("core", "The core to join, http(s)://host:port (needed with join_token; afterwards it is "
                                  "read from edge.json).",
                          &core));
    s.add(stringDirective("join_token", "A join token from the core (`wharfctl edge add`), used once to register.",
                          &join_token));
    s.add(stringDirective("core_ca_file", "CA bundle to verify an https core and upstreams (default: system CAs).",
                          &core_ca_file));
    s.add(boolDirective("core_insecure", "Do not verify the core's certificate (tests only).", &core_insecure));
    s.add(stringDirective("upstreams",
                          "Other registries, mapped by namespace prefix: a JSON array of {\"prefix\": \"hub/\", "
                          "\"url\": \"https://...\", \"username\": \"...\", \"password_file\": \"...\", \"ca_file\": "
                          "\"...\", \"insecure\": false}. Repositories under no prefix come from the core.",
                          &upstreams));
    s.add(stringDirective("stale_if_error",
                          "Repositories whose cached manifests are served when their upstream is down or failing: "
                          "comma-separated patterns (\"*\", \"team/*\", \"team/app\"); empty for none.",
                          &stale_if_error));
    s.add(intDirective("threads", "Event-loop threads (0: one per core).", &threads, 0, 256));
    s.add(stringDirective("log_level", "debug, info, warn or error.", &log_level));
    s.add(boolDirective("access_log", "Log every request at info level.", &access_log));
    s.add(sizeDirective("cache_budget", "Bytes of blobs the cache may hold (the core's setting for this edge wins).",
                        &cache_budget));
    s.add(intDirective("high_watermark", "Evict when the cache is above this percentage of its budget.", &high_watermark,
                       1, 100));
    s.add(intDirective("low_watermark", "Evict down to this percentage of the budget.", &low_watermark, 1, 100));
    s.add(durationDirective("tag_ttl", "How long a tag's manifest is served from the cache before asking the upstream "
                                       "again (the core's setting for this edge wins).",
                            &tag_ttl_ms));
    s.add(durationDirective("keys_refresh", "How often to fetch the core's keys and this edge's settings.",
                            &keys_refresh_ms));
    s.add(durationDirective("report_interval",
                            "How often to report traffic, cache and errors to the core (at most 1m; also at shutdown).",
                            &report_interval_ms));
    s.add(sizeDirective("scrub_rate", "Bytes per second the scrub may read to re-hash cached blobs (0: no scrub).",
                        &scrub_rate));
    s.add(durationDirective("scrub_interval", "How often a scrub pass over every cached blob starts.",
                            &scrub_interval_ms));
    s.add(stringDirective("port_file", "Write the bound port to this file once listening.", &port_file));
    s.add(stringDirective("advertise_url",
                          "Where the other edges of this edge's site reach it, http(s)://HOST:PORT, so that the "
                          "site's edges act as one cache (default: http:// and listen, with the machine's host "
                          "name when listen is 0.0.0.0 or ::; \"off\": this edge neither asks its site's other "
                          "edges nor is asked by them).",
                          &advertise_url));
  }
};

// The URL the site's other edges reach this edge at.
std::string advertisedUrl(const EdgeConfig& config, const std::string& host, int port) {
  if (!config.advertise_url.empty()) return config.advertise_url;
  std::string name = host;
  if (name == "0.0.0.0" || name == "::" || name == "[::]" || name.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0) name = buf;
  }
  if (name.find(':') != std::string::npos && name.front() != '[') name = "[" + name + "]";
  return "http://" + name + ":" + std::to_string(port);
}

int fail(const std::string& msg) {
  logError("wharf-edge cannot start", {{"error", msg}});
  std::fprintf(stderr, "wharf-edge: %s\n", msg.c_str());
  return 2;
}

std::vector<std::string> splitPatterns(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string p = s.substr(start, end - start);
    while (!p.empty() && p.front() == ' ') p.erase(0, 1);
    while (!p.empty() && p.back() == ' ') p.pop_back();
    if (!p.empty()) out.push_back(p);
    start = end + 1;
  }
  return out;
}

// The settings the core keeps for this edge override the local ones.
Status applyCoreSettings(const nlohmann::json& settings, EdgeConfig* c) {
  for (auto it = settings.begin(); it != settings.end(); ++it) {
    const std::string& k = it.key();
    std::string v = it->is_string() ? it->get<std::string>() : it->dump();
    if (k == "tag_ttl") {
      auto ms = parseDurationMs(v);
      if (!ms.isOk()) return Status(Code::kInvalidArgument, "core setting tag_ttl: " + ms.status().message());
      c->tag_ttl_ms = *ms;
    } else if (k == "cache_budget") {
      auto bytes = parseSize(v);
      if (!bytes.isOk()) return Status(Code::kInvalidArgument, "core setting cache_budget: " + bytes.status().message());
      c->cache_budget = *bytes;
    } else if (k == "high_watermark" && it->is_number_integer()) {
      c->high_watermark = it->get<int64_t>();
    } else if (k == "low_watermark" && it->is_number_integer()) {
      c->low_watermark = it->get<int64_t>();
    } else if (k == "repositories" || k == "prefetch") {
      // The core enforces "repositories" on this edge's own pulls; "prefetch" is the agent's.
    } else {
      logWarn("ignoring an unknown setting from the core", {{"key", k}});
    }
  }
  if (c->low_watermark < 1 || c->high_watermark > 100 || c->low_watermark >= c->high_watermark) {
    return Status(Code::kInvalidArgument, "low_watermark must be below high_watermark, both 1..100");
  }
  return Status::ok();
}

CacheBudget budgetOf(const EdgeConfig& c) {
  return CacheBudget{static_cast<uint64_t>(c.cache_budget), c.high_watermark / 100.0, c.low_watermark / 100.0};
}

// The identity this edge runs with: from edge.json, or by joining with the token.
Result<EdgeIdentity> establishIdentity(const EdgeConfig& config, const ClientOptions& tls, const std::string& path) {
  auto stored = loadIdentity(path);
  if (!stored.isOk() && stored.status().code() != Code::kNotFound) return stored.status();
  if (stored.isOk()) {
    auto fresh = refreshIdentity(*stored, tls);
    if (fresh.isOk()) {
      if (Status st = saveIdentity(path, *fresh); !st.isOk()) return st;
      return fresh;
    }
    if (fresh.status().code() != Code::kUnauthorized) {
      // The core is out of reach: the edge keeps serving with what it knows.
      logWarn("cannot reach the core; starting with the stored keys", {{"error", fresh.status().message()}});
      return stored;
    }
    if (config.join_token.empty()) {
      return Status(Code::kUnauthorized, "the core no longer knows edge \"" + stored->name +
                                             "\" (removed?): join again with --join-token from `wharfctl edge add`");
    }
    logWarn("the core refused this edge's credential; joining again with the token", {{"name", stored->name}});
  } else if (config.join_token.empty() || config.core.empty()) {
    return Status(Code::kInvalidArgument,
                  "this edge has not joined a core: start it with --core URL --join-token TOKEN (an administrator "
                  "creates the token with `wharfctl edge add --name NAME --site SITE`)");
  }
  std::string core = config.core.empty() ? stored->core : config.core;
  while (!core.empty() && core.back() == '/') core.pop_back();
  auto joined = joinCore(core, config.join_token, tls);
  if (!joined.isOk()) return joined.status();
  if (Status st = saveIdentity(path, *joined); !st.isOk()) return st;
  logInfo("joined the core", {{"core", core}, {"name", joined->name}, {"site", joined->site}});
  return joined;
}

}  // namespace

int main(int argc, char** argv) {
  EdgeConfig config;
  ConfigSchema schema("wharf-edge", "A Wharf edge: a caching, verifying pull-through mirror of a Wharf core.");
  config.describe(schema);
  bool help = false;
  Status st = schema.applyArgs(argc, argv, &help);
  if (help) {
    std::fputs(schema.helpText().c_str(), stdout);
    return 0;
  }
  if (!st.isOk()) return fail(st.message());
  LogLevel level;
  if (!parseLogLevel(config.log_level, &level)) return fail("config log_level: must be debug, info, warn or error");
  setLogLevel(level);
  auto colon = config.listen.rfind(':');
  if (colon == std::string::npos) return fail("config listen: expected HOST:PORT");
  auto other_upstreams = UpstreamSet::parseSpecs(config.upstreams);
  if (!other_upstreams.isOk()) return fail("config " + other_upstreams.status().message());
  if (!config.advertise_url.empty() && config.advertise_url != "off" && !parseBaseUrl(config.advertise_url).isOk()) {
    return fail("config advertise_url: expected http(s)://HOST:PORT or off");
  }
  if (config.report_interval_ms < 100 || config.report_interval_ms > 60'000) {
    return fail("config report_interval: must be between 100ms and 1m");
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (Status s = makeDirs(config.data_dir); !s.isOk()) return fail("config data_dir: " + s.message());
  ClientOptions core_tls;
  core_tls.ca_file = config.core_ca_file;
  core_tls.insecure = config.core_insecure;
  std::string identity_path = config.data_dir + "/edge.json";
  auto identity = establishIdentity(config, core_tls, identity_path);
  if (!identity.isOk()) return fail(identity.status().message());
  if (Status s = applyCoreSettings(identity->settings, &config); !s.isOk()) return fail(s.message());
  // The site's other edges (the channel names them): misses ask a blob's owner first.
  std::unique_ptr<SitePeers> peers;
  if (config.advertise_url != "off") peers = std::make_unique<SitePeers>(identity->name);

  UpstreamSpec core_spec;
  core_spec.url = identity->core;
  core_spec.ca_file = config.core_ca_file;
  core_spec.insecure = config.core_insecure;
  auto upstreams = UpstreamSet::create(core_spec, *other_upstreams);
  if (!upstreams.isOk()) return fail(upstreams.status().message());

  auto fills = FillCoordinator::open(config.data_dir + "/cache");
  if (!fills.isOk()) return fail(fills.status().message());
  auto index = CacheIndex::open(config.data_dir + "/cache/index.lmdb", **fills, config.data_dir + "/cache/manifests",
                                RealClock::instance(), budgetOf(config));
  if (!index.isOk()) return fail("cache index: " + index.status().message());
  (*index)->enforce();
  auto manifests =
      ManifestCache::open(**index, RealClock::instance(), config.tag_ttl_ms);
  if (!manifests.isOk()) return fail(manifests.status().message());

  WorkQueue work(4);
  EdgeContext ctx;
  ctx.index = index->get();
  ctx.work = &work;
  ctx.fills = fills->get();
  ctx.manifests = manifests->get();
  ctx.upstreams = upstreams->get();
  ctx.realm = identity->realm;
  ctx.service = identity->service;
  ctx.access_log = config.access_log;
  ctx.stale_if_error = splitPatterns(config.stale_if_error);
  ctx.setVerifier(std::make_shared<TokenVerifier>(identity->keys, "wharf-core", identity->service));
  // Trust policies, enforced here too (edge/trust): known from edge.json before the core
  // is reached, its TUF metadata verified here and kept under <data_dir>/trust.
  EdgeTrustOptions trust_options{config.data_dir + "/trust", identity->core, identity->credential, core_tls,
                                 std::max<int64_t>(config.tag_ttl_ms, 1000)};
  auto trust = EdgeTrust::open(trust_options, RealClock::instance());
  if (!trust.isOk()) return fail("trust: " + trust.status().message());
  (*trust)->setPolicies(identity->trust_policies);
  ctx.trust = trust->get();
  if (peers != nullptr) {
    ctx.peers = peers.get();
    ctx.index->setOwnership([p = peers.get()](const std::string& digest) { return p->ownedElsewhere(digest); });
  }

  // The link to the core: commands down the channel, reports up. Opened before the
  // server serves: a saved drain and the revocation list apply from the first request.
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  bool refresh_now = false;
  AgentOptions agent_options;
  agent_options.state_dir = config.data_dir + "/agent";
  agent_options.report_interval_ms = config.report_interval_ms;
  agent_options.tls = core_tls;
  agent_options.version = WHARF_VERSION;
  agent_options.refresh = [&] {
    {
      std::lock_guard lock(mu);
      refresh_now = true;
    }
    cv.notify_all();
  };
  auto agent = EdgeAgent::open(ctx, *identity, agent_options);
  if (!agent.isOk()) return fail("agent: " + agent.status().message());

  ServerConfig sc;
  sc.host = config.listen.substr(0, colon);
  sc.port = std::atoi(config.listen.substr(colon + 1).c_str());
  sc.threads = static_cast<int>(config.threads);
  Server server(sc, [&ctx](std::shared_ptr<Exchange> ex) { handleEdgeRequest(ctx, ex); });
  if (Status s = server.start(); !s.isOk()) return fail(s.message());
  logInfo("wharf-edge listening", {{"url", "http://" + sc.host + ":" + std::to_string(server.port())},
                                   {"core", identity->core},
                                   {"name", identity->name},
                                   {"site", identity->site},
                                   {"upstreams", ctx.upstreams->size()},
                                   {"cache", config.data_dir + "/cache"},
                                   {"cached_bytes", ctx.index->used()}});
  if (!config.port_file.empty()) {
    if (Status s = writeFileDurable(config.port_file, std::to_string(server.port()) + "\n"); !s.isOk()) {
      return fail(s.message());
    }
  }


  if (peers != nullptr) {
    std::string url = advertisedUrl(config, sc.host, server.port());
    peers->setSelfUrl(url);
    (*agent)->advertise(std::move(url));
  }
  (*agent)->start();

  std::unique_ptr<Scrubber> scrubber;
  if (config.scrub_rate > 0) {
    scrubber = std::make_unique<Scrubber>(
        *ctx.index, *ctx.fills,
        Scrubber::Options{static_cast<uint64_t>(config.scrub_rate), config.scrub_interval_ms,
                          [stats = &(*agent)->stats()](uint64_t checked, uint64_t corrupt) {
                            stats->scrubbed(checked, corrupt);
                          },
                          [prefetcher = &(*agent)->prefetcher()](const std::string& digest,
                                                                 const std::vector<std::string>& repos) {
                            // Fetched again with the edge's own credential, through a
                            // repository the core served it for.
                            if (repos.empty()) return;
                            if (Status st = prefetcher->enqueue({repos.front(), digest, "refetch", 0, "", "", 1}); !st.isOk()) {
                              logWarn("cannot queue the refetch of a corrupt blob",
                                      {{"digest", digest}, {"error", st.message()}});
                            }
                          }});
    scrubber->start();
  }

  // Maintenance: keeps the budget and writes the cache index behind every few seconds,
  // and keeps the core's keys and this edge's settings current (rotations; removal
  // revokes).
  std::thread maintenance([&] {
    EdgeIdentity current = *identity;
    auto next_refresh = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.keys_refresh_ms);
    std::unique_lock lock(mu);
    auto tick = std::chrono::milliseconds(std::min<int64_t>(2000, config.keys_refresh_ms));
    while (true) {
      cv.wait_for(lock, tick, [&] { return stopping || refresh_now; });
      if (stopping) break;
      if (refresh_now) next_refresh = std::chrono::steady_clock::now();  // the core asked (settings changed)
      refresh_now = false;
      lock.unlock();
      ctx.index->enforce();  // manifests are stored on the loops, which never evict
      if (Status s = ctx.index->flush(); !s.isOk()) logWarn("cannot write the cache index", {{"error", s.message()}});
      if (std::chrono::steady_clock::now() >= next_refresh && !ctx.revoked.load()) {
        next_refresh = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.keys_refresh_ms);
        auto fresh = refreshIdentity(current, core_tls);
        if (fresh.isOk()) {
          current = *fresh;
          ctx.setVerifier(std::make_shared<TokenVerifier>(fresh->keys, "wharf-core", fresh->service));
          EdgeConfig applied = config;
          if (applyCoreSettings(fresh->settings, &applied).isOk()) {
            ctx.manifests->setTagTtl(applied.tag_ttl_ms);
            ctx.index->setBudget(budgetOf(applied));
          }
          (*agent)->applySettings(fresh->settings);
          ctx.trust->setPolicies(fresh->trust_policies);
          if (Status s = saveIdentity(identity_path, current); !s.isOk()) {
            logWarn("cannot save edge.json", {{"error", s.message()}});
          }
        } else if (fresh.status().code() == Code::kUnauthorized) {
          ctx.revoked.store(true);
          logError("the core removed this edge: serving nothing until it joins again",
                   {{"name", current.name}, {"error", fresh.status().message()}});
        } else {
          logWarn("cannot refresh from the core", {{"error", fresh.status().message()}});
        }
      }
      lock.lock();
    }
  });

  int sig = 0;
  sigwait(&signals, &sig);
  logInfo("shutting down");
  {
    std::lock_guard lock(mu);
    stopping = true;
  }
  cv.notify_all();
  maintenance.join();
  if (scrubber) scrubber->stop();
  server.stop();
  (*agent)->stop();  // after the server: the final report counts every answer
  work.shutdown();
  if (Status s = ctx.index->flush(); !s.isOk()) logWarn("cannot write the cache index", {{"error", s.message()}});
  return 0;
}
