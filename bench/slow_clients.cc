// wharf-slowclients: the attackers of bench/hardening.sh. One thread, epoll, non-blocking
// sockets; holds two kinds of connections open against one HTTP server:
//
//  - idle: connect and send nothing;
//  - slow: send "GET /v2/ HTTP/1.1\r\nHost: x\r\n" at once, then one byte of a header
//    line ("X-a: b\r\n", repeated) every --interval seconds, never the blank line that
//    ends the headers (slowloris).
//
// A connection the server closes is counted (a plain close, a reset, or the status line of
// the response it got first: 408, 400, 503, ...), its lifetime recorded, and it is opened
// again after --reconnect-ms. At most --max-pending connects are in flight at once.
//
//   wharf-slowclients --target 127.0.0.1:5000 [--idle 5000] [--slow 1000] [--interval 2]
//                     [--seconds 60] [--reconnect-ms 100] [--max-pending 256]
//                     [--ready-file PATH]
//
// Runs for --seconds or until SIGTERM/SIGINT, then prints one JSON object (see --help).
// RLIMIT_NOFILE is raised to its hard limit first; a hard limit below the connections
// asked for is reported (the extra sockets then fail with EMFILE, counted in
// socket_errors).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }

struct Options {
  std::string host = "127.0.0.1";
  int port = 5000;
  int idle = 5000;
  int slow = 1000;
  double interval_s = 2;
  double seconds = 60;
  int reconnect_ms = 100;
  int max_pending = 256;
  std::string ready_file;
};

enum class Kind { kIdle, kSlow };
enum class State { kWaiting, kConnecting, kOpen };

struct Conn {
  Kind kind = Kind::kIdle;
  State state = State::kWaiting;
  int fd = -1;
  Clock::time_point connected;
  Clock::time_point next_send;
  Clock::time_point retry_at;
  size_t header_sent = 0;  // bytes of the trickled header lines sent on this connection
  std::string head;        // the first bytes the server sent, for its status line
};

// Per kind of connection.
struct Stats {
  uint64_t opened = 0;          // connections established (first ones and reconnects)
  uint64_t open_now = 0;
  uint64_t open_peak = 0;
  uint64_t closed_by_server = 0;
  uint64_t plain_close = 0;     // FIN without a response
  uint64_t reset = 0;           // RST (or a failed send) without a response
  std::map<int, uint64_t> status;  // closes after a response, by its status code
  uint64_t bad_response = 0;       // closes after bytes that are not a status line
  std::vector<double> lifetimes_s;  // of the connections the server closed
};

const char kRequestLine[] = "GET /v2/ HTTP/1.1\r\nHost: x\r\n";
const char kHeaderLine[] = "X-a: b\r\n";  // repeated byte by byte; never a blank line

nlohmann::json summary(const std::vector<double>& v0) {
  std::vector<double> v = v0;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    if (v.empty()) return 0.0;
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  };
  double sum = 0;
  for (double x : v) sum += x;
  return {{"count", v.size()},
          {"min_s", v.empty() ? 0.0 : v.front()},
          {"p50_s", pct(0.5)},
          {"p90_s", pct(0.9)},
          {"max_s", v.empty() ? 0.0 : v.back()},
          {"mean_s", v.empty() ? 0.0 : sum / static_cast<double>(v.size())}};
}

int statusOf(const std::string& head) {
  // "HTTP/1.1 408 ..."
  if (head.size() < 12 || head.compare(0, 7, "HTTP/1.") != 0 || head[8] != ' ') return -1;
  int code = 0;
  for (int i = 9; i < 12; ++i) {
    if (head[static_cast<size_t>(i)] < '0' || head[static_cast<size_t>(i)] > '9') return -1;
    code = code * 10 + (head[static_cast<size_t>(i)] - '0');
  }
  return code;
}

class Attack {
 public:
  explicit Attack(const Options& o) : o_(o) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(static_cast<size_t>(o.idle + o.slow));
    for (size_t i = 0; i < conns_.size(); ++i) {
      conns_[i].kind = i < static_cast<size_t>(o.idle) ? Kind::kIdle : Kind::kSlow;
      waiting_.push_back(i);
    }
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(o.port));
    inet_pton(AF_INET, o.host.c_str(), &addr_.sin_addr);
    interval_ = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.interval_s));
  }

  nlohmann::json run() {
    start_ = Clock::now();
    auto end = start_ + std::chrono::milliseconds(static_cast<int64_t>(o_.seconds * 1000));
    std::vector<epoll_event> events(1024);
    auto last_tick = start_;
    while (!g_stop) {
      auto now = Clock::now();
      if (now >= end) break;
      startConnects(now);
      if (now - last_tick >= std::chrono::milliseconds(20)) {
        trickle(now);
        last_tick = now;
      }
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 20);
      if (n < 0 && errno != EINTR) {
        std::perror("wharf-slowclients: epoll_wait");
        break;
      }
      now = Clock::now();
      for (int i = 0; i < n; ++i) {
        Conn& c = conns_[events[static_cast<size_t>(i)].data.u64];
        if (c.state == State::kConnecting) {
          finishConnect(c, now);
        } else if (c.state == State::kOpen) {
          readFrom(c, now);
        }
      }
    }
    return report();
  }

 private:
  Stats& stats(const Conn& c) { return c.kind == Kind::kIdle ? idle_ : slow_; }

  void requeue(Conn& c, Clock::time_point now) {
    c.state = State::kWaiting;
    c.fd = -1;
    c.retry_at = now + std::chrono::milliseconds(o_.reconnect_ms);
    waiting_.push_back(static_cast<size_t>(&c - conns_.data()));
  }

  void startConnects(Clock::time_point now) {
    while (!waiting_.empty() && pending_ < o_.max_pending) {
      Conn& c = conns_[waiting_.front()];
      if (c.retry_at > now) break;  // FIFO with one delay: the rest are later
      waiting_.pop_front();
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        ++socket_errors_[errno];
        requeue(c, now);
        continue;
      }
      c.fd = fd;
      c.head.clear();
      c.header_sent = 0;
      epoll_event ev{};
      ev.data.u64 = static_cast<uint64_t>(&c - conns_.data());
      int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_);
      if (r == 0) {
        ev.events = EPOLLIN | EPOLLRDHUP;
        epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
        connected(c, now);
      } else if (errno == EINPROGRESS) {
        ev.events = EPOLLOUT;
        epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
        c.state = State::kConnecting;
        ++pending_;
      } else {
        ++connect_errors_[errno];
        ::close(fd);
        requeue(c, now);
      }
    }
  }

  void finishConnect(Conn& c, Clock::time_point now) {
    --pending_;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ++connect_errors_[err];
      epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
      requeue(c, now);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = static_cast<uint64_t>(&c - conns_.data());
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    connected(c, now);
  }

  void connected(Conn& c, Clock::time_point now) {
    c.state = State::kOpen;
    c.connected = now;
    Stats& s = stats(c);
    ++s.opened;
    ++s.open_now;
    s.open_peak = std::max(s.open_peak, s.open_now);
    if (c.kind == Kind::kSlow) {
      if (::send(c.fd, kRequestLine, sizeof kRequestLine - 1, MSG_NOSIGNAL) < 0) {
        closed(c, now, true);
        return;
      }
      c.next_send = now + interval_;
    }
    if (!all_open_ && idle_.open_now + slow_.open_now == conns_.size()) {
      all_open_ = true;
      all_open_s_ = std::chrono::duration<double>(now - start_).count();
      std::fprintf(stderr, "wharf-slowclients: all %zu connections open after %.2f s\n", conns_.size(), all_open_s_);
      if (!o_.ready_file.empty()) std::ofstream(o_.ready_file) << "ready\n";
    }
  }

  void trickle(Clock::time_point now) {
    for (size_t i = static_cast<size_t>(o_.idle); i < conns_.size(); ++i) {
      Conn& c = conns_[i];
      if (c.state != State::kOpen || c.next_send > now) continue;
      const char* b = &kHeaderLine[c.header_sent % (sizeof kHeaderLine - 1)];
      ssize_t r = ::send(c.fd, b, 1, MSG_NOSIGNAL);
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        readFrom(c, now);  // pick up a response that came before the close, if any
        if (c.state == State::kOpen) closed(c, now, true);
        continue;
      }
      if (r == 1) {
        ++c.header_sent;
        ++header_bytes_;
      }
      c.next_send = now + interval_;
    }
  }

  void readFrom(Conn& c, Clock::time_point now) {
    char buf[4096];
    for (;;) {
      ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r > 0) {
        if (c.head.size() < 64) c.head.append(buf, std::min(static_cast<size_t>(r), 64 - c.head.size()));
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (r < 0 && errno == EINTR) continue;
      closed(c, now, r < 0);
      return;
    }
  }

  void closed(Conn& c, Clock::time_point now, bool reset) {
    Stats& s = stats(c);
    --s.open_now;
    ++s.closed_by_server;
    s.lifetimes_s.push_back(std::chrono::duration<double>(now - c.connected).count());
    if (c.head.empty()) {
      ++(reset ? s.reset : s.plain_close);
    } else {
      int code = statusOf(c.head);
      if (code < 0) {
        ++s.bad_response;
      } else {
        ++s.status[code];
      }
    }
    epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    requeue(c, now);
  }

  nlohmann::json kindReport(const Stats& s, Kind kind) {
    auto now = Clock::now();
    uint64_t answered_open = 0;
    double oldest = 0;
    for (const auto& c : conns_) {
      if (c.kind != kind || c.state != State::kOpen) continue;
      if (!c.head.empty()) ++answered_open;
      oldest = std::max(oldest, std::chrono::duration<double>(now - c.connected).count());
    }
    nlohmann::json status = nlohmann::json::object();
    for (const auto& [code, n] : s.status) status[std::to_string(code)] = n;
    return {{"opened", s.opened},
            {"open_at_end", s.open_now},
            {"open_peak", s.open_peak},
            {"oldest_open_s", oldest},
            {"answered_still_open", answered_open},
            {"closed_by_server", s.closed_by_server},
            {"got_408", s.status.count(408) ? s.status.at(408) : 0},
            {"plain_close", s.plain_close},
            {"reset", s.reset},
            {"bad_response", s.bad_response},
            {"status", status},
            {"lifetime", summary(s.lifetimes_s)}};
  }

  static nlohmann::json errnoMap(const std::map<int, uint64_t>& m) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [e, n] : m) j[std::strerror(e)] = n;
    return j;
  }

  nlohmann::json report() {
    double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    nlohmann::json out = {{"seconds", elapsed},
                          {"idle", kindReport(idle_, Kind::kIdle)},
                          {"slow", kindReport(slow_, Kind::kSlow)},
                          {"all_open", all_open_},
                          {"all_open_after_s", all_open_ ? all_open_s_ : -1.0},
                          {"header_bytes_sent", header_bytes_},
                          {"connect_errors", errnoMap(connect_errors_)},
                          {"socket_errors", errnoMap(socket_errors_)}};
    for (auto& c : conns_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    return out;
  }

  const Options& o_;
  int ep_ = -1;
  sockaddr_in addr_{};
  Clock::duration interval_{};
  std::vector<Conn> conns_;
  std::deque<size_t> waiting_;
  int pending_ = 0;
  Stats idle_, slow_;
  std::map<int, uint64_t> connect_errors_, socket_errors_;
  uint64_t header_bytes_ = 0;
  Clock::time_point start_;
  bool all_open_ = false;
  double all_open_s_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "wharf-slowclients: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::puts(
          "Usage: wharf-slowclients --target HOST:PORT [--idle 5000] [--slow 1000] [--interval 2]\n"
          "                         [--seconds 60] [--reconnect-ms 100] [--max-pending 256]\n"
          "                         [--ready-file PATH]\n"
          "Holds --idle connections that send nothing and --slow connections that send a request\n"
          "line and Host, then one more header byte every --interval seconds, never ending the\n"
          "headers. Connections the server closes are opened again after --reconnect-ms.\n"
          "--ready-file is written once all connections are open at the same time.\n"
          "Runs --seconds or until SIGTERM/SIGINT, then prints JSON: for \"idle\" and \"slow\":\n"
          "opened, open_at_end, open_peak, oldest_open_s, closed_by_server, got_408,\n"
          "plain_close (FIN, no response), reset, status (closes by the response's status),\n"
          "lifetime (count, min/p50/p90/max/mean seconds of the server-closed connections);\n"
          "and all_open_after_s, header_bytes_sent, connect_errors, socket_errors, nofile.");
      return 0;
    } else if (a == "--target") {
      std::string t = next();
      auto colon = t.rfind(':');
      if (colon == std::string::npos) {
        std::fprintf(stderr, "wharf-slowclients: --target wants HOST:PORT\n");
        return 2;
      }
      o.host = t.substr(0, colon);
      o.port = std::stoi(t.substr(colon + 1));
    } else if (a == "--idle") {
      o.idle = std::stoi(next());
    } else if (a == "--slow") {
      o.slow = std::stoi(next());
    } else if (a == "--interval") {
      o.interval_s = std::stod(next());
    } else if (a == "--seconds") {
      o.seconds = std::stod(next());
    } else if (a == "--reconnect-ms") {
      o.reconnect_ms = std::stoi(next());
    } else if (a == "--max-pending") {
      o.max_pending = std::max(1, std::stoi(next()));
    } else if (a == "--ready-file") {
      o.ready_file = next();
    } else {
      std::fprintf(stderr, "wharf-slowclients: unknown argument %s (see --help)\n", a.c_str());
      return 2;
    }
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  const rlim_t wanted = static_cast<rlim_t>(o.idle + o.slow) + 16;
  bool enough = rl.rlim_cur >= wanted;
  if (!enough) {
    std::fprintf(stderr,
                 "wharf-slowclients: RLIMIT_NOFILE is %llu (hard limit), below the %llu descriptors needed; "
                 "the extra connections fail with EMFILE\n",
                 static_cast<unsigned long long>(rl.rlim_cur), static_cast<unsigned long long>(wanted));
  }
  struct sigaction sa{};
  sa.sa_handler = onSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  Attack attack(o);
  nlohmann::json out = attack.run();
  out["nofile"] = {{"limit", static_cast<unsigned long long>(rl.rlim_cur)},
                   {"needed", static_cast<unsigned long long>(wanted)},
                   {"enough", enough}};
  std::puts(out.dump().c_str());
  return 0;
}
