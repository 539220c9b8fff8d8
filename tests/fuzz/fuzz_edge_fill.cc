// Fuzzes the edge's fill path with a fake upstream: a real wharf-edge request handler
// (Server, token check, FillCoordinator, the upstream ClientPool, FillSource, resumes with
// Range) pulls one blob whose digest is fixed, and the "core" it fills from answers with
// bytes from the input. Everything runs in this process on 127.0.0.1; the cache lives in a
// temporary directory made once per process (under /dev/shm when there is one, so the
// commit's fdatasync costs nothing).
//
// Input: one flags byte, then the upstream's answers, one per request it receives (the
// first GET, then the resumed ones with Range), separated by "\n--next--\n". Each answer
// is written as it is (status line, headers, body: anything) and the connection closed.
// When the answers run out, the upstream closes connections without a word.
//   flags bit 0: the blob is the empty blob (else a 300-byte one)
//   flags bit 1: two clients ask at once (a leader and a follower)
//
// WHARF_FUZZ_VERBOSE=1 prints what each input did (run the target on one file to see).
//
// Invariants, checked after every fill ended:
//   - a committed blob always verifies: a file under blobs/ holds exactly the blob;
//   - nothing else is left behind: partial/ is empty, no fill is in flight;
//   - a client's 200 that completes carries exactly the blob (a mismatch, a short or a
//     long upstream body never looks complete), and then the blob was committed;
//   - the upstream is asked at most 1 + 3 times per client (a fill's first request and
//     its resumes; a follower whose fill failed before the upstream answered leads anew);
//   - the edge answers every client (no hang).
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "edge/cache/cache_index.h"
#include "edge/cache/fill_coordinator.h"
#include "edge/cache/manifest_cache.h"
#include "edge/pull/pull_handler.h"
#include "edge/pull/upstreams.h"
#include "shared/auth/token.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/log.h"
#include "shared/event/work_queue.h"
#include "shared/http/blocking_client.h"
#include "shared/http/server.h"
#include "shared/oci/digest.h"
#include "shared/tls/crypto.h"
#include "tests/fuzz/fuzz_support.h"

using namespace wharf;

namespace {

constexpr std::string_view kSplit = "\n--next--\n";
constexpr const char* kRepo = "lib/app";
constexpr const char* kService = "wharf-edge-fuzz";
constexpr int kClientTimeoutMs = 20'000;
constexpr size_t kMaxUpstreamRequests = 1 + 3;  // the first GET and kMaxResumes resumes

// The fake core: answers the n-th request of the current run with answers[n] and closes.
class FakeUpstream {
 public:
  FakeUpstream() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 64) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      fuzz::violated("fake upstream: cannot listen", std::strerror(errno));
    }
    port_ = ntohs(addr.sin_port);
    std::thread([this] { run(); }).detach();  // lives as long as the process
  }
  int port() const { return port_; }

  void arm(std::vector<std::string> answers) {
    std::lock_guard lock(mu_);
    answers_ = std::move(answers);
    served_ = 0;
  }
  size_t served() {
    std::lock_guard lock(mu_);
    return served_;
  }

 private:
  struct Conn {
    int fd;
    std::string head;
  };

  void run() {
    std::vector<Conn> conns;
    for (;;) {
      std::vector<pollfd> pfds{{listener_, POLLIN, 0}};
      for (const auto& c : conns) pfds.push_back({c.fd, POLLIN, 0});
      if (::poll(pfds.data(), pfds.size(), 1000) <= 0) continue;
      if (pfds[0].revents & POLLIN) {
        int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) conns.push_back({fd, ""});
      }
      for (size_t i = 1; i < pfds.size(); ++i) {
        if (pfds[i].revents == 0) continue;
        Conn& c = conns[i - 1];
        char buf[4096];
        ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n > 0) c.head.append(buf, static_cast<size_t>(n));
        if (n > 0 && c.head.find("\r\n\r\n") == std::string::npos) continue;
        if (n > 0) answer(c.fd);  // a whole request head (the edge sends GETs, no body)
        ::close(c.fd);
        c.fd = -1;
      }
      std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
    }
  }

  void answer(int fd) {
    std::string bytes;
    {
      std::lock_guard lock(mu_);
      size_t n = served_++;
      if (n >= answers_.size()) return;  // out of answers: closed without a word
      bytes = answers_[n];
    }
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t w = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return;  // the edge went away
      off += static_cast<size_t>(w);
    }
    ::shutdown(fd, SHUT_WR);
  }

  int listener_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> answers_;  // GUARDED_BY(mu_)
  size_t served_ = 0;                 // GUARDED_BY(mu_)
};

struct Edge {
  std::string root;
  FakeUpstream upstream;
  std::unique_ptr<FillCoordinator> fills;
  std::unique_ptr<CacheIndex> index;
  std::unique_ptr<ManifestCache> manifests;
  std::unique_ptr<UpstreamSet> upstreams;
  std::unique_ptr<WorkQueue> work;
  EdgeContext ctx;
  std::unique_ptr<Server> server;
  std::string token;
  std::string blobs[2];  // by flags bit 0
  Digest digests[2];
};

std::string tempRoot() {
  const char* base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  std::string t = std::string(base) + "/wharf-fuzz-edge-XXXXXX";
  if (::mkdtemp(t.data()) == nullptr) fuzz::violated("mkdtemp", std::strerror(errno));
  return t;
}

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.isOk()) fuzz::violated(what, r.status().message());
  return std::move(r).value();
}

// Built once per process and never destroyed (threads keep running until exit).
Edge& edge() {
  static Edge* e = [] {
    setLogLevel(LogLevel::kError);
    auto* e = new Edge;
    e->root = tempRoot();
    // The temporary directory goes with the process.
    static std::string root_copy = e->root;
    std::atexit([] { (void)removeTree(root_copy); });
    e->fills = must(FillCoordinator::open(e->root + "/cache"), "fills");
    e->index = must(CacheIndex::open(e->root + "/cache/index.lmdb", *e->fills, e->root + "/cache/manifests",
                                     RealClock::instance(), CacheBudget{}),
                    "cache index");
    e->manifests = must(ManifestCache::open(*e->index, RealClock::instance(), 60'000),
                        "manifest cache");
    UpstreamSpec core;
    core.url = "http://127.0.0.1:" + std::to_string(e->upstream.port());
    e->upstreams = must(UpstreamSet::create(core, {}), "upstreams");
    e->work = std::make_unique<WorkQueue>(1);  // one thread: a task submitted later runs later
    e->ctx.fills = e->fills.get();
    e->ctx.index = e->index.get();
    e->ctx.manifests = e->manifests.get();
    e->ctx.upstreams = e->upstreams.get();
    e->ctx.work = e->work.get();
    e->ctx.realm = "http://127.0.0.1/auth/token";
    e->ctx.service = kService;
    e->ctx.access_log = false;

    auto pub = must(publicPemOf(fuzz::kTokenKeyPem), "public key");
    e->ctx.setVerifier(std::make_shared<TokenVerifier>(std::map<std::string, std::string>{{fuzz::kTokenKid, pub}},
                                                       fuzz::kIssuer, kService));
    auto signer = must(TokenSigner::create(fuzz::kTokenKid, fuzz::kTokenKeyPem), "signer");
    TokenClaims c;
    c.issuer = fuzz::kIssuer;
    c.audience = kService;
    c.subject = "fuzz";
    c.id = "fuzz";
    c.issued_at = c.not_before = RealClock::instance().nowMillis() / 1000 - 60;
    c.expires_at = c.issued_at + 10 * 365 * 86400;
    c.access.push_back(Scope{"repository", kRepo, {"pull"}});
    e->token = must(signer->sign(c), "token");

    for (size_t i = 0; i < 300; ++i) e->blobs[0] += static_cast<char>('a' + (i * 7 + i / 26) % 26);
    e->blobs[0][299] = '\n';
    e->blobs[1] = "";
    for (int i = 0; i < 2; ++i) e->digests[i] = digestOf(e->blobs[i]);

    ServerConfig sc;
    sc.host = "127.0.0.1";
    sc.port = 0;
    sc.threads = 1;
    Edge* raw = e;
    e->server = std::make_unique<Server>(sc, [raw](std::shared_ptr<Exchange> ex) { handleEdgeRequest(raw->ctx, ex); });
    if (Status s = e->server->start(); !s.isOk()) fuzz::violated("edge server", s.message());
    return e;
  }();
  return *e;
}

std::vector<std::string> splitAnswers(std::string_view in) {
  std::vector<std::string> out;
  for (;;) {
    const void* at = ::memmem(in.data(), in.size(), kSplit.data(), kSplit.size());  // libFuzzer watches memmem
    if (at == nullptr) break;
    size_t n = static_cast<size_t>(static_cast<const char*>(at) - in.data());
    out.emplace_back(in.substr(0, n));
    in.remove_prefix(n + kSplit.size());
  }
  out.emplace_back(in);
  return out;
}

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* ent = ::readdir(d)) {
      if (std::strcmp(ent->d_name, ".") != 0 && std::strcmp(ent->d_name, "..") != 0) out.push_back(ent->d_name);
    }
    ::closedir(d);
  }
  return out;
}

// Waits until everything the request started has run: the fill ended, its commit task
// on the work queue ran, and the loop got past its completion.
void settle(Edge& e) {
  for (int i = 0; e.fills->inFlight() != 0; ++i) {
    if (i > 20'000) fuzz::violated("a fill never ended");  // 20 s
    ::usleep(1000);
  }
  std::promise<void> worked, looped;
  e.work->submit([&] { worked.set_value(); });
  worked.get_future().wait();
  e.server->loop(0).post([&] { looped.set_value(); });
  looped.get_future().wait();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 65536) return 0;
  Edge& e = edge();
  uint8_t flags = data[0];
  int which = flags & 1;
  const std::string& blob = e.blobs[which];
  const Digest& digest = e.digests[which];
  e.upstream.arm(splitAnswers(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1)));

  std::string request = "GET /v2/" + std::string(kRepo) + "/blobs/" + digest.str() +
                        " HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer " + e.token + "\r\n\r\n";
  int clients = (flags & 2) ? 2 : 1;
  std::vector<std::unique_ptr<BlockingClient>> cs;
  for (int i = 0; i < clients; ++i) {
    cs.push_back(std::make_unique<BlockingClient>("127.0.0.1", e.server->port(), kClientTimeoutMs));
    if (Status s = cs.back()->send(request); !s.isOk()) fuzz::violated("cannot reach the edge", s.message());
  }
  static const bool verbose = getenv("WHARF_FUZZ_VERBOSE") != nullptr;
  bool complete_200 = false;
  for (auto& c : cs) {
    auto r = c->read();
    if (verbose) {
      std::fprintf(stderr, "client: %s\n",
                   r.isOk() ? (std::to_string(r->status) + ", " + std::to_string(r->body.size()) + " bytes").c_str()
                            : r.status().message().c_str());
    }
    if (!r.isOk()) {
      FUZZ_CHECK(r.status().code() != Code::kTimeout, "the edge never answered a client");
      continue;  // cut short: what a failed fill does to its responses
    }
    if (r->status == 200) {
      FUZZ_CHECK(r->body == blob, "a 200 completed with " + std::to_string(r->body.size()) + " bytes, not the blob");
      complete_200 = true;
    }
  }
  cs.clear();
  settle(e);

  // A committed blob always verifies; nothing else is left.
  std::string path = e.fills->blobPath(digest);
  std::string stored;
  bool committed = readFile(path, &stored).isOk();
  if (committed) FUZZ_CHECK(stored == blob, "committed " + std::to_string(stored.size()) + " bytes that are not the blob");
  if (complete_200) FUZZ_CHECK(committed, "a client got the whole blob but it was not committed");
  if (verbose) std::fprintf(stderr, "upstream asked %zu times; committed: %d\n", e.upstream.served(), committed);
  auto partial = listDir(e.root + "/cache/partial");
  FUZZ_CHECK(partial.empty(), "partial/ holds " + partial.front());
  // Per client: a follower whose leader failed before the upstream answered leads a fill of its own.
  FUZZ_CHECK(e.upstream.served() <= kMaxUpstreamRequests * static_cast<size_t>(clients),
             "the upstream was asked " + std::to_string(e.upstream.served()) + " times");
  // The next run starts from an empty cache.
  if (committed) {
    e.index->drop(digest.str());
    ::unlink(path.c_str());
  }
  return 0;
}
