// wharf-fleetbench: the tools of bench/fleet_reports.sh.
//
//   wharf-fleetbench seed --data-dir DIR [--edges 1000] [--days 30] [--repos 5]
//       Writes DAYS of history for EDGES edges (bench-0000...) into DIR/usage.lmdb, in
//       process, through LmdbUsageStore's own ingest path on a fake clock: one report per
//       edge per hour, each repository growing. Run while no core uses DIR. Prints JSON:
//       reports, seconds, the file's size and its bytes per edge per day.
//   wharf-fleetbench register --port P --password PW [--edges 1000] [--over-seconds S] --out FILE
//       Adds and registers the edges through the admin API; writes "name credential" lines.
//   wharf-fleetbench load --port P --credentials FILE [--seconds 60] [--interval-ms 1000] [--repos 5]
//                         [--trace FILE]
//       Every edge POSTs a report every interval over its own keep-alive connection, the
//       edges' sends spread evenly over the interval (one epoll thread). Prints JSON: the
//       reports sent and answered 200, errors, latency percentiles (ms), sends that started
//       late because the previous answer had not come yet.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fleet/lmdb_usage_store.h"
#include "shared/base/clock.h"
#include "shared/http/blocking_client.h"
#include "shared/tls/crypto.h"

using namespace wharf;
using nlohmann::json;

namespace {

using SteadyClock = std::chrono::steady_clock;

std::map<std::string, std::string> flags(int argc, char** argv) {
  std::map<std::string, std::string> f;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) == 0) f[k.substr(2)] = argv[i + 1];
  }
  return f;
}

int64_t num(const std::map<std::string, std::string>& f, const std::string& k, int64_t def) {
  auto it = f.find(k);
  return it == f.end() ? def : std::stoll(it->second);
}

std::string edgeName(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "bench-%04d", i);
  return buf;
}

// One simulated edge's cumulative counters.
struct SimEdge {
  uint64_t seq = 0;
  std::vector<RepoCounters> repos;
  uint64_t stale = 0;

  EdgeReport next(std::mt19937_64& rng, const std::string& epoch) {
    ++seq;
    for (auto& c : repos) {
      uint64_t req = 1 + rng() % 4, hits = rng() % (req + 1);
      uint64_t bytes = (rng() % 4096) * 1024;
      uint64_t hit_bytes = bytes * hits / req;
      c.requests += req;
      c.hits += hits;
      c.misses += req - hits;
      c.served_bytes += bytes;
      c.hit_bytes += hit_bytes;
      c.fetched_bytes += bytes - hit_bytes;
      if (rng() % 10 == 0) c.prefetched_bytes += 1 << 20;
    }
    if (rng() % 50 == 0) ++stale;
    EdgeReport r;
    r.seq = seq;
    r.epoch = epoch;
    r.version = "bench";
    r.uptime_s = static_cast<int64_t>(seq);
    r.cache_used = 5ull << 30;
    r.cache_budget = 20ull << 30;
    r.cache_blobs = 1000;
    r.counters.stale_serves = stale;
    for (size_t i = 0; i < repos.size(); ++i) r.repos["bench/repo-" + std::to_string(i)] = repos[i];
    return r;
  }
};

int64_t fileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

int seed(const std::map<std::string, std::string>& f) {
  std::string dir = f.count("data-dir") ? f.at("data-dir") : "";
  if (dir.empty()) {
    std::fprintf(stderr, "seed needs --data-dir\n");
    return 2;
  }
  int edges = static_cast<int>(num(f, "edges", 1000));
  int days = static_cast<int>(num(f, "days", 30));
  int repos = static_cast<int>(num(f, "repos", 5));
  std::string path = dir + "/usage.lmdb";
  LmdbEnv::Options eo;
  eo.durable = false;  // one sync at close is enough for a seed
  auto env = LmdbEnv::open(path, eo);
  if (!env.isOk()) {
    std::fprintf(stderr, "%s\n", env.status().toString().c_str());
    return 1;
  }
  int64_t now = RealClock::instance().nowMillis();
  FakeClock clock(now - int64_t{days} * 86'400'000);
  LmdbUsageOptions o;
  o.hourly_retention_ms = 1000ll * 86'400'000;  // keep all: the size is the whole history's
  o.daily_retention_ms = 1000ll * 86'400'000;
  auto store = LmdbUsageStore::open(std::shared_ptr<LmdbEnv>(std::move(env).value()), clock, o);
  if (!store.isOk()) {
    std::fprintf(stderr, "%s\n", store.status().toString().c_str());
    return 1;
  }
  std::mt19937_64 rng(42);
  std::vector<SimEdge> sim(static_cast<size_t>(edges));
  for (auto& s : sim) s.repos.resize(static_cast<size_t>(repos));
  auto start = SteadyClock::now();
  std::mutex mu;
  std::condition_variable cv;
  int64_t reports = 0;
  for (int h = 0; h < days * 24; ++h) {
    int pending = edges;
    for (int i = 0; i < edges; ++i) {
      Status st = (*store)->ingest(edgeName(i), sim[static_cast<size_t>(i)].next(rng, "seed"), [&](Result<IngestResult>) {
        std::lock_guard l(mu);
        if (--pending == 0) cv.notify_all();
      });
      if (!st.isOk()) {
        std::fprintf(stderr, "%s\n", st.toString().c_str());
        return 1;
      }
    }
    std::unique_lock l(mu);
    cv.wait(l, [&] { return pending == 0; });
    reports += edges;
    clock.advance(3'600'000);
  }
  double secs = std::chrono::duration<double>(SteadyClock::now() - start).count();
  // The store's share of the fleet query (the API adds authentication and JSON).
  UsageQuery q;
  q.from_ms = clock.nowMillis() - int64_t{days} * 86'400'000;
  q.to_ms = clock.nowMillis();
  auto t0 = SteadyClock::now();
  auto result = (*store)->query(q);
  double query_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
  if (!result.isOk()) {
    std::fprintf(stderr, "%s\n", result.status().toString().c_str());
    return 1;
  }
  store->reset();
  int64_t size = fileSize(path);
  json out = {{"edges", edges},
              {"days", days},
              {"repos_per_edge", repos},
              {"reports", reports},
              {"seconds", secs},
              {"reports_per_second", static_cast<double>(reports) / secs},
              {"usage_lmdb_bytes", size},
              {"bytes_per_edge_day", static_cast<double>(size) / edges / days},
              {"store_query_day_ms", query_ms},
              {"store_query_rows", result->rows.size()}};
  std::cout << out.dump() << "\n";
  return 0;
}

int registerEdges(const std::map<std::string, std::string>& f) {
  int port = static_cast<int>(num(f, "port", 0));
  int edges = static_cast<int>(num(f, "edges", 1000));
  std::string auth = basicAuthorization("admin", f.count("password") ? f.at("password") : "");
  BlockingClient c("127.0.0.1", port);
  std::ofstream out(f.count("out") ? f.at("out") : "credentials.txt");
  // --over-seconds S: registrations paced over S seconds. An edge's credential use
  // refreshes its last_seen (a meta.lmdb write) once a minute from its registration on;
  // edges registered in the same second all write in the same second every minute, which
  // a real fleet, registered over days, never does.
  double over_ms = static_cast<double>(num(f, "over-seconds", 0)) * 1000;
  auto start = SteadyClock::now();
  for (int i = 0; i < edges; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(static_cast<int64_t>(over_ms * 1000 * i / edges)));
    std::string name = edgeName(i);
    json body = {{"name", name}, {"site", "site-" + std::to_string(i % 20)}};
    auto r = c.request("POST", "/api/v1/edges", {{"Authorization", auth}, {"Content-Type", "application/json"}},
                       body.dump());
    if (!r.isOk() || r->status != 201) {
      std::fprintf(stderr, "add %s: %s\n", name.c_str(), r.isOk() ? r->body.c_str() : r.status().toString().c_str());
      return 1;
    }
    std::string token = json::parse(r->body)["join_token"];
    r = c.request("POST", "/api/v1/edges/register", {{"Content-Type", "application/json"}},
                  json({{"join_token", token}}).dump());
    if (!r.isOk() || r->status != 200) {
      std::fprintf(stderr, "register %s failed\n", name.c_str());
      return 1;
    }
    out << name << " " << json::parse(r->body)["credential"].get<std::string>() << "\n";
  }
  return 0;
}

struct Conn {
  int fd = -1;
  std::string name, credential;
  SimEdge sim;
  std::string out, in;
  size_t written = 0;
  bool busy = false;
  SteadyClock::time_point sent;
};

int connectTo(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// A complete response in buf: its status; 0 when more bytes are needed.
int responseDone(std::string& buf) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  std::string head = buf.substr(0, end);
  for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  size_t len = 0;
  if (auto at = head.find("content-length:"); at != std::string::npos) len = std::stoul(head.substr(at + 15));
  if (buf.size() < end + 4 + len) return 0;
  int status = std::atoi(buf.c_str() + 9);
  buf.erase(0, end + 4 + len);
  return status;
}

int load(const std::map<std::string, std::string>& f) {
  int port = static_cast<int>(num(f, "port", 0));
  double seconds = static_cast<double>(num(f, "seconds", 60));
  int64_t interval_ms = num(f, "interval-ms", 1000);
  int repos = static_cast<int>(num(f, "repos", 5));
  std::vector<Conn> conns;
  {
    std::ifstream in(f.count("credentials") ? f.at("credentials") : "credentials.txt");
    std::string name, cred;
    while (in >> name >> cred) {
      Conn c;
      c.name = name;
      c.credential = cred;
      c.sim.repos.resize(static_cast<size_t>(repos));
      conns.push_back(std::move(c));
    }
  }
  if (conns.empty()) {
    std::fprintf(stderr, "no credentials\n");
    return 2;
  }
  int ep = ::epoll_create1(0);
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = connectTo(port);
    if (conns[i].fd < 0) {
      std::fprintf(stderr, "connect failed at %zu: %s\n", i, std::strerror(errno));
      return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  std::mt19937_64 rng(7);
  std::string epoch = "load" + std::to_string(RealClock::instance().nowMillis());
  std::vector<double> lat_ms;
  // --trace FILE: one line per answer: "<seconds since start of the send> <latency ms> <status>".
  FILE* trace = f.count("trace") ? std::fopen(f.at("trace").c_str(), "w") : nullptr;
  uint64_t sent = 0, ok = 0, errors = 0, late = 0;
  const size_t n = conns.size();
  auto start = SteadyClock::now();
  auto end = start + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds));
  uint64_t tick = 0;  // the k-th scheduled send overall: edge k % n, round k / n
  auto due = [&](uint64_t k) {
    return start + std::chrono::microseconds((k / n) * interval_ms * 1000 + (k % n) * interval_ms * 1000 / n);
  };
  auto trySend = [&](Conn& c) {
    if (c.busy) {
      ++late;  // the previous report has no answer yet: this one is skipped
      return;
    }
    std::string body = c.sim.next(rng, epoch).toJson().dump();
    c.out = "POST /api/v1/edges/self/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + c.credential +
            "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    c.written = 0;
    c.busy = true;
    c.sent = SteadyClock::now();
    ++sent;
    while (c.written < c.out.size()) {
      ssize_t w = ::write(c.fd, c.out.data() + c.written, c.out.size() - c.written);
      if (w <= 0) break;  // a 1 KB request fits the socket buffer; a full one means a stuck core
      c.written += static_cast<size_t>(w);
    }
  };
  std::vector<epoll_event> events(256);
  char buf[65536];
  for (;;) {
    auto now = SteadyClock::now();
    while (due(tick) <= now && now < end) trySend(conns[tick++ % n]);
    bool draining = now >= end;
    if (draining) {
      bool any = std::any_of(conns.begin(), conns.end(), [](const Conn& c) { return c.busy; });
      if (!any || now > end + std::chrono::seconds(10)) break;
    }
    int timeout = draining ? 100
                           : static_cast<int>(std::max<int64_t>(
                                 0, std::chrono::duration_cast<std::chrono::milliseconds>(due(tick) - now).count()));
    int got = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout);
    for (int i = 0; i < got; ++i) {
      Conn& c = conns[events[static_cast<size_t>(i)].data.u64];
      for (;;) {
        ssize_t r = ::read(c.fd, buf, sizeof buf);
        if (r <= 0) break;
        c.in.append(buf, static_cast<size_t>(r));
      }
      int status;
      while ((status = responseDone(c.in)) != 0) {
        if (!c.busy) continue;
        c.busy = false;
        lat_ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - c.sent).count());
        if (trace) {
          std::fprintf(trace, "%.3f %.3f %d\n", std::chrono::duration<double>(c.sent - start).count(), lat_ms.back(),
                       status);
        }
        if (status == 200) {
          ++ok;
        } else {
          ++errors;
        }
      }
    }
  }
  double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
  std::sort(lat_ms.begin(), lat_ms.end());
  auto pct = [&](double p) {
    if (lat_ms.empty()) return 0.0;
    return lat_ms[std::min(lat_ms.size() - 1, static_cast<size_t>(p * static_cast<double>(lat_ms.size())))];
  };
  json out = {{"edges", n},
              {"interval_ms", interval_ms},
              {"seconds", elapsed},
              {"sent", sent},
              {"ok", ok},
              {"errors", errors},
              {"unanswered", sent - ok - errors},
              {"skipped_late", late},
              {"reports_per_second", static_cast<double>(ok) / elapsed},
              {"p50_ms", pct(0.50)},
              {"p90_ms", pct(0.90)},
              {"p99_ms", pct(0.99)},
              {"p999_ms", pct(0.999)},
              {"max_ms", lat_ms.empty() ? 0.0 : lat_ms.back()}};
  std::cout << out.dump() << "\n";
  for (auto& c : conns) ::close(c.fd);
  if (trace) std::fclose(trace);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  auto f = flags(argc, argv);
  if (mode == "seed") return seed(f);
  if (mode == "register") return registerEdges(f);
  if (mode == "load") return load(f);
  std::fprintf(stderr, "usage: wharf-fleetbench seed|register|load ... (see bench/fleet_bench.cc)\n");
  return 2;
}
