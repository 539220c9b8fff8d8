// wharf-edge: a caching pull-through appliance for a Wharf core.
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "edge/cache/fill_coordinator.h"
#include "edge/pull/pull_handler.h"
#include "shared/base/log.h"
#include "shared/config/config.h"
#include "shared/event/work_queue.h"
#include "shared/http/blocking_client.h"
#include "shared/http/client.h"
#include "shared/http/server.h"
#include "shared/tls/crypto.h"

using namespace wharf;

namespace {

struct EdgeConfig {
  std::string listen = "127.0.0.1:5001";
  std::string data_dir = "wharf-edge-data";
  std::string upstream;  // the core, http(s)://host:port
  std::string upstream_ca_file;
  bool upstream_insecure = false;
  int64_t threads = 0;
  std::string log_level = "info";
  bool access_log = true;
  int64_t keys_refresh_ms = 300'000;
  int64_t tag_ttl_ms = 60'000;
  int64_t cache_budget = 10ll << 30;
  int64_t high_watermark = 90;
  int64_t low_watermark = 80;
  std::string port_file;

  void describe(ConfigSchema& s) {
    s.add(stringDirective("listen", "Address and port to serve on (HOST:PORT; port 0 picks a free one).", &listen));
    s.add(stringDirective("data_dir", "Directory of the cache.", &data_dir));
    s.add(stringDirective("upstream", "The core this edge serves, http(s)://host:port (required).", &upstream));
    s.add(stringDirective("upstream_ca_file", "CA bundle to verify an https upstream (default: system CAs).",
                          &upstream_ca_file));
    s.add(boolDirective("upstream_insecure", "Do not verify the upstream's certificate (tests only).", &upstream_insecure));
    s.add(intDirective("threads", "Event-loop threads (0: one per core).", &threads, 0, 256));
    s.add(stringDirective("log_level", "debug, info, warn or error.", &log_level));
    s.add(boolDirective("access_log", "Log every request at info level.", &access_log));
    s.add(sizeDirective("cache_budget", "Bytes of blobs the cache may hold.", &cache_budget));
    s.add(intDirective("high_watermark", "Evict when the cache is above this percentage of its budget.", &high_watermark,
                       1, 100));
    s.add(intDirective("low_watermark", "Evict down to this percentage of the budget.", &low_watermark, 1, 100));
    s.add(durationDirective("tag_ttl", "How long a tag's manifest is served from the cache before asking the core again.",
                            &tag_ttl_ms));
    s.add(durationDirective("keys_refresh", "How often to fetch the core's token-signing keys.", &keys_refresh_ms));
    s.add(stringDirective("port_file", "Write the bound port to this file once listening.", &port_file));
  }
};

int fail(const std::string& msg) {
  logError("wharf-edge cannot start", {{"error", msg}});
  std::fprintf(stderr, "wharf-edge: %s\n", msg.c_str());
  return 2;
}

// The core's token realm and service, from its challenge, and its public keys.
struct CoreFacts {
  std::string realm, service;
  std::map<std::string, std::string> keys;
};

Result<CoreFacts> fetchCoreFacts(const EdgeConfig& c) {
  auto url = parseBaseUrl(c.upstream);
  if (!url.isOk()) return url.status();
  BlockingClient client(url->host, url->port, 10000);
  if (url->tls) client.useTls(c.upstream_ca_file, c.upstream_insecure);
  CoreFacts facts;
  auto base = client.request("GET", "/v2/");
  if (!base.isOk()) return Status(Code::kUnavailable, "core " + c.upstream + ": " + base.status().message());
  std::string challenge = base->header("www-authenticate");
  auto field = [&](const std::string& name) {
    auto p = challenge.find(name + "=\"");
    if (p == std::string::npos) return std::string();
    p += name.size() + 2;
    return challenge.substr(p, challenge.find('"', p) - p);
  };
  facts.realm = field("realm");
  facts.service = field("service");
  if (facts.realm.empty()) return Status(Code::kUnavailable, "core " + c.upstream + " does not use token auth");
  auto keys = client.request("GET", "/auth/keys");
  if (!keys.isOk() || keys->status != 200) return Status(Code::kUnavailable, "cannot fetch the core's keys");
  auto j = nlohmann::json::parse(keys->body, nullptr, false);
  if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array()) return Status(Code::kUnavailable, "bad key set");
  for (const auto& k : j["keys"]) {
    auto pem = publicPemFromJwk(k);
    if (pem.isOk()) facts.keys[k.value("kid", "")] = *pem;
  }
  if (facts.keys.empty()) return Status(Code::kUnavailable, "the core published no usable key");
  return facts;
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
  while (!config.upstream.empty() && config.upstream.back() == '/') config.upstream.pop_back();
  auto upstream = Upstream::resolve(config.upstream);
  if (!upstream.isOk()) return fail("config upstream: " + upstream.status().message());
  LogLevel level;
  if (!parseLogLevel(config.log_level, &level)) return fail("config log_level: must be debug, info, warn or error");
  setLogLevel(level);
  auto colon = config.listen.rfind(':');
  if (colon == std::string::npos) return fail("config listen: expected HOST:PORT");

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto fills = FillCoordinator::open(config.data_dir + "/cache");
  if (!fills.isOk()) return fail(fills.status().message());
  auto manifests = ManifestCache::open(config.data_dir + "/cache/manifests", RealClock::instance(), config.tag_ttl_ms);
  if (!manifests.isOk()) return fail(manifests.status().message());
  auto facts = fetchCoreFacts(config);
  if (!facts.isOk()) return fail(facts.status().message());

  if (config.low_watermark >= config.high_watermark) return fail("config low_watermark: must be below high_watermark");
  BlobIndex index(**fills, RealClock::instance(),
                  CacheBudget{static_cast<uint64_t>(config.cache_budget), config.high_watermark / 100.0,
                              config.low_watermark / 100.0});
  index.rebuild(config.data_dir + "/cache/blobs");
  index.enforce();

  WorkQueue work(4);
  EdgeContext ctx;
  ctx.index = &index;
  ctx.work = &work;
  ctx.fills = fills->get();
  ctx.manifests = manifests->get();
  ctx.upstream = config.upstream;
  ctx.upstream_address = *upstream;
  ctx.upstream_options.ca_file = config.upstream_ca_file;
  ctx.upstream_options.insecure = config.upstream_insecure;
  ctx.realm = facts->realm;
  ctx.service = facts->service;
  ctx.access_log = config.access_log;
  ctx.setVerifier(std::make_shared<TokenVerifier>(facts->keys, "wharf-core", facts->service));

  ServerConfig sc;
  sc.host = config.listen.substr(0, colon);
  sc.port = std::atoi(config.listen.substr(colon + 1).c_str());
  sc.threads = static_cast<int>(config.threads);
  Server server(sc, [&ctx](std::shared_ptr<Exchange> ex) { handleEdgeRequest(ctx, ex); });
  if (Status s = server.start(); !s.isOk()) return fail(s.message());
  logInfo("wharf-edge listening", {{"url", "http://" + sc.host + ":" + std::to_string(server.port())},
                                   {"upstream", config.upstream},
                                   {"cache", config.data_dir + "/cache"}});
  if (!config.port_file.empty()) {
    if (Status s = writeFileDurable(config.port_file, std::to_string(server.port()) + "\n"); !s.isOk()) {
      return fail(s.message());
    }
  }

  // Keeps the core's keys current (rotations) until shutdown.
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread refresher([&] {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(config.keys_refresh_ms), [&] { return stopping; })) {
      lock.unlock();
      auto fresh = fetchCoreFacts(config);
      if (fresh.isOk()) {
        ctx.setVerifier(std::make_shared<TokenVerifier>(fresh->keys, "wharf-core", fresh->service));
      } else {
        logWarn("cannot refresh the core's keys", {{"error", fresh.status().message()}});
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
  refresher.join();
  server.stop();
  work.shutdown();
  return 0;
}
