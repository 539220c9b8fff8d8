// wharf-loadgen: keep-alive HTTP/1.1 load with a fixed number of connections, one
// request in flight per connection; reports requests per second and latency
// percentiles as JSON.
//
//   wharf-loadgen --url http://127.0.0.1:5000/v2/x/manifests/v1 [--method HEAD]
//                 [--connections 64] [--threads 1] [--seconds 10] [--header 'K: V']
//
// With --download N: N simultaneous full GETs of the URL (one connection and thread
// each, started together); reports the aggregate MB/s over the wall time until the last
// one ends. --watch-pid PID (repeatable) adds the CPU time those processes used during
// the downloads and in the --idle-ms (default 1000) right after the last one ended.
#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 80;
  std::string path = "/";
  std::string method = "GET";
  std::vector<std::string> headers;
  int connections = 64;
  int threads = 1;
  double seconds = 10;
  int download = 0;             // > 0: N parallel full downloads instead of a timed load
  int64_t expect_bytes = -1;    // with --download: a body of any other size is an error
  std::vector<int> watch_pids;  // with --download: report their CPU time
  int idle_ms = 1000;
};

struct Conn {
  int fd = -1;
  llhttp_t parser;
  Clock::time_point sent;
  bool done = false;
  int status = 0;
};

struct ThreadResult {
  std::vector<uint32_t> latencies_us;
  uint64_t errors = 0;
  uint64_t non2xx = 0;
};

int onHeadersComplete(llhttp_t* p) {
  static_cast<Conn*>(p->data)->status = p->status_code;
  return 0;
}
int onHeadersCompleteHead(llhttp_t* p) {
  static_cast<Conn*>(p->data)->status = p->status_code;
  return 1;  // a response to HEAD has no body
}
int onMessageComplete(llhttp_t* p) {
  static_cast<Conn*>(p->data)->done = true;
  return 0;
}

int connectTo(const Options& o) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void runThread(const Options& o, int nconn, Clock::time_point end, ThreadResult* out) {
  std::string req = o.method + " " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\n";
  for (const auto& h : o.headers) req += h + "\r\n";
  req += "\r\n";
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_headers_complete = o.method == "HEAD" ? onHeadersCompleteHead : onHeadersComplete;
  settings.on_message_complete = onMessageComplete;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(static_cast<size_t>(nconn));
  auto sendReq = [&](Conn& c) {
    c.done = false;
    c.sent = Clock::now();
    if (::send(c.fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return false;
    return true;
  };
  auto open = [&](Conn& c) {
    c.fd = connectTo(o);
    if (c.fd < 0) return false;
    llhttp_init(&c.parser, HTTP_RESPONSE, &settings);
    c.parser.data = &c;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    return sendReq(c);
  };
  for (auto& c : conns) {
    if (!open(c)) ++out->errors;
  }
  std::vector<epoll_event> events(static_cast<size_t>(nconn));
  char buf[65536];
  while (Clock::now() < end) {
    int n = epoll_wait(ep, events.data(), nconn, 100);
    for (int i = 0; i < n; ++i) {
      Conn& c = *static_cast<Conn*>(events[i].data.ptr);
      ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      bool broken = r <= 0;
      if (!broken) {
        llhttp_errno_t err = llhttp_execute(&c.parser, buf, static_cast<size_t>(r));
        broken = err != HPE_OK;
      }
      if (!broken && c.done) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.sent).count();
        out->latencies_us.push_back(static_cast<uint32_t>(us));
        if (c.status < 200 || c.status >= 300) ++out->non2xx;
        if (Clock::now() < end) broken = !sendReq(c);
        continue;
      }
      if (broken) {
        ++out->errors;
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        ::close(c.fd);
        if (Clock::now() < end && !open(c)) ++out->errors;
      }
    }
  }
  for (auto& c : conns) {
    if (c.fd >= 0) ::close(c.fd);
  }
  ::close(ep);
}

// --- --download: N parallel full downloads --------------------------------------------

struct Download {
  llhttp_t parser;
  int status = 0;
  bool done = false;
  uint64_t bytes = 0;
  bool error = false;
  double seconds = 0;
};

int onDownloadHeaders(llhttp_t* p) {
  static_cast<Download*>(p->data)->status = p->status_code;
  return 0;
}
int onDownloadBody(llhttp_t* p, const char*, size_t n) {
  static_cast<Download*>(p->data)->bytes += n;
  return 0;
}
int onDownloadComplete(llhttp_t* p) {
  static_cast<Download*>(p->data)->done = true;
  return HPE_PAUSED;  // nothing after the one response matters
}

void runDownload(const Options& o, Clock::time_point start, Download* d) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_headers_complete = onDownloadHeaders;
  settings.on_body = onDownloadBody;
  settings.on_message_complete = onDownloadComplete;
  llhttp_init(&d->parser, HTTP_RESPONSE, &settings);
  d->parser.data = d;
  std::string req = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\n";
  for (const auto& h : o.headers) req += h + "\r\n";
  req += "Connection: close\r\n\r\n";
  std::this_thread::sleep_until(start);  // every stream starts at once
  int fd = connectTo(o);
  if (fd < 0 || ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    d->error = true;
    if (fd >= 0) ::close(fd);
    return;
  }
  std::vector<char> buf(1 << 20);
  while (!d->done) {
    ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
    if (r < 0 && errno == EINTR) continue;
    llhttp_errno_t err = r > 0 ? llhttp_execute(&d->parser, buf.data(), static_cast<size_t>(r)) : llhttp_finish(&d->parser);
    if (err != HPE_OK && err != HPE_PAUSED) break;
    if (r <= 0) break;
  }
  d->seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!d->done) d->error = true;
  ::close(fd);
}

// utime + stime of a process (all its threads), in milliseconds; -1 if it is gone.
double cpuMs(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return -1;
  auto rparen = line.rfind(')');
  if (rparen == std::string::npos) return -1;
  std::istringstream in(line.substr(rparen + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {  // fields 14 and 15 (1-based) are utime, stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double cpuMs(const std::vector<int>& pids) {
  double sum = 0;
  for (int p : pids) sum += std::max(0.0, cpuMs(p));
  return sum;
}

int runDownloads(const Options& o) {
  std::vector<Download> ds(static_cast<size_t>(o.download));
  double cpu0 = cpuMs(o.watch_pids);
  auto start = Clock::now() + std::chrono::milliseconds(20);
  std::vector<std::thread> threads;
  for (auto& d : ds) threads.emplace_back(runDownload, std::cref(o), start, &d);
  for (auto& t : threads) t.join();
  double wall = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu1 = cpuMs(o.watch_pids);
  double cpu2 = cpu1;
  if (!o.watch_pids.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(o.idle_ms));  // the measuring window
    cpu2 = cpuMs(o.watch_pids);
  }
  uint64_t bytes = 0, errors = 0, non2xx = 0;
  double slowest = 0, fastest = 1e300;
  for (const auto& d : ds) {
    bool short_body = o.expect_bytes >= 0 && d.bytes != static_cast<uint64_t>(o.expect_bytes);
    if (d.error || short_body) ++errors;
    if (d.status < 200 || d.status >= 300) ++non2xx;
    bytes += d.bytes;
    slowest = std::max(slowest, d.seconds);
    fastest = std::min(fastest, d.seconds);
  }
  nlohmann::json out = {{"streams", ds.size()},
                        {"bytes", bytes},
                        {"seconds", wall},
                        {"mbs", static_cast<double>(bytes) / wall / 1e6},
                        {"fastest_s", fastest},
                        {"slowest_s", slowest},
                        {"errors", errors},
                        {"non_2xx", non2xx}};
  if (!o.watch_pids.empty()) {
    out["cpu_ms"] = cpu1 - cpu0;
    out["idle_cpu_ms"] = cpu2 - cpu1;
    out["idle_ms"] = o.idle_ms;
  }
  std::puts(out.dump().c_str());
  return 0;
}

bool parseUrl(const std::string& url, Options* o) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return false;
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  o->path = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = hostport.rfind(':');
  o->host = hostport.substr(0, colon);
  o->port = colon == std::string::npos ? 80 : std::stoi(hostport.substr(colon + 1));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool have_url = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "wharf-loadgen: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::puts(
          "Usage: wharf-loadgen --url http://HOST:PORT/PATH [--method GET|HEAD] [--connections 64]\n"
          "                     [--threads 1] [--seconds 10] [--header 'Name: value' ...]\n"
          "Keep-alive HTTP/1.1 load, one request in flight per connection. Prints JSON:\n"
          "requests, rps, p50/p90/p99/max latency in ms, errors, non_2xx.\n"
          "\n"
          "       wharf-loadgen --url URL --download N [--expect-bytes B] [--header ...]\n"
          "                     [--watch-pid PID ...] [--idle-ms 1000]\n"
          "N simultaneous full GETs of URL. Prints JSON: streams, bytes, seconds (until the\n"
          "last ends), mbs (aggregate, 1 MB = 10^6 bytes), fastest_s, slowest_s, errors\n"
          "(failed or, with --expect-bytes, short), non_2xx; with --watch-pid, cpu_ms (the\n"
          "processes' CPU time during the downloads) and idle_cpu_ms (in the idle_ms after).");
      return 0;
    } else if (a == "--url") {
      have_url = parseUrl(next(), &o);
    } else if (a == "--method") {
      o.method = next();
    } else if (a == "--connections") {
      o.connections = std::stoi(next());
    } else if (a == "--threads") {
      o.threads = std::stoi(next());
    } else if (a == "--seconds") {
      o.seconds = std::stod(next());
    } else if (a == "--header") {
      o.headers.push_back(next());
    } else if (a == "--download") {
      o.download = std::stoi(next());
    } else if (a == "--expect-bytes") {
      o.expect_bytes = std::stoll(next());
    } else if (a == "--watch-pid") {
      o.watch_pids.push_back(std::stoi(next()));
    } else if (a == "--idle-ms") {
      o.idle_ms = std::stoi(next());
    } else {
      std::fprintf(stderr, "wharf-loadgen: unknown argument %s (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (!have_url) {
    std::fprintf(stderr, "wharf-loadgen: --url http://HOST:PORT/PATH is required\n");
    return 2;
  }
  if (o.download > 0) return runDownloads(o);
  auto start = Clock::now();
  auto end = start + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  std::vector<ThreadResult> results(static_cast<size_t>(o.threads));
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    int n = o.connections / o.threads + (t < o.connections % o.threads ? 1 : 0);
    threads.emplace_back(runThread, std::cref(o), n, end, &results[static_cast<size_t>(t)]);
  }
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<uint32_t> all;
  uint64_t errors = 0, non2xx = 0;
  for (auto& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    errors += r.errors;
    non2xx += r.non2xx;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    if (all.empty()) return 0.0;
    size_t i = std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())));
    return all[i] / 1000.0;
  };
  nlohmann::json out = {{"requests", all.size()},
                        {"seconds", elapsed},
                        {"rps", static_cast<double>(all.size()) / elapsed},
                        {"p50_ms", pct(0.50)},
                        {"p90_ms", pct(0.90)},
                        {"p99_ms", pct(0.99)},
                        {"max_ms", all.empty() ? 0.0 : all.back() / 1000.0},
                        {"errors", errors},
                        {"non_2xx", non2xx}};
  std::puts(out.dump().c_str());
  return 0;
}
