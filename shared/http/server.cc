#include "shared/http/server.h"

#include <signal.h>
#include <unistd.h>

#include <unordered_set>

#include "shared/base/log.h"
#include "shared/http/connection.h"
#include "shared/net/listener.h"
#include "shared/net/transport.h"

namespace wharf {

struct Server::Worker {
  std::unique_ptr<Loop> loop;
  std::thread thread;
  int listen_fd = -1;
  std::unique_ptr<Acceptor> acceptor;         // loop thread only
  std::unordered_set<Connection*> conns;      // loop thread only
  std::unique_ptr<Timer> grace;               // loop thread only
  bool stopping = false;                      // loop thread only
};

Server::Server(ServerConfig config, Handler handler) : config_(std::move(config)), handler_(std::move(handler)) {}

Server::~Server() { stop(); }

Status Server::start() {
  // sendfile(2) and OpenSSL write to sockets without MSG_NOSIGNAL: a client that goes
  // away must give EPIPE, not kill the process.
  ::signal(SIGPIPE, SIG_IGN);
  int n = config_.threads > 0 ? config_.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  int port = config_.port;
  if (port != 0) {
    // SO_REUSEPORT would let this process share a port another server (even another
    // wharf-core) already listens on; an exclusive probe bind refuses that.
    auto probe = listenTcp(config_.host, port, 1, /*reuse_port=*/false);
    if (!probe.isOk()) return probe.status();
    ::close(*probe);
  }
  for (int i = 0; i < n; ++i) {
    auto fd = listenTcp(config_.host, port);
    if (!fd.isOk()) {
      for (auto& w : workers_) ::close(w->listen_fd);
      workers_.clear();
      return fd.status();
    }
    if (i == 0) port = boundPort(*fd);
    auto w = std::make_unique<Worker>();
    w->listen_fd = *fd;
    w->loop = std::make_unique<Loop>();
    workers_.push_back(std::move(w));
  }
  port_ = port;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    w->thread = std::thread([this, wp] { runWorker(wp); });
  }
  return Status::ok();
}

void Server::runWorker(Worker* w) {
  // What a connection shed at the descriptor limit hears (plain HTTP only).
  std::string shed;
  if (!config_.tls) {
    Response r = Response::error(Status(Code::kUnavailable, "the server is out of connections; retry shortly"));
    const std::string& body = std::get<std::string>(r.body);
    shed = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
           "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  w->acceptor = std::make_unique<Acceptor>(*w->loop, w->listen_fd, [this, w](int fd, std::string peer) {
    std::unique_ptr<Transport> t = config_.tls ? makeTlsTransport(fd, *config_.tls) : makePlainTransport(fd);
    auto* conn = new Connection(*w->loop, std::move(t), std::move(peer), config_.limits, handler_,
                                [w](Connection* c) {
                                  w->conns.erase(c);
                                  if (w->stopping && w->conns.empty()) {
                                    w->grace.reset();
                                    w->loop->stop();
                                  }
                                });
    w->conns.insert(conn);
    if (w->stopping) {
      conn->close();
      return;
    }
    conn->start();
  }, std::move(shed));
  w->loop->run();
}

void Server::stop() {
  if (stopped_.exchange(true)) return;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    uint64_t grace_ms = config_.limits.shutdown_grace_ms;
    w->loop->post([wp, grace_ms] {
      wp->stopping = true;
      wp->acceptor.reset();
      ::close(wp->listen_fd);
      wp->listen_fd = -1;
      std::vector<Connection*> conns(wp->conns.begin(), wp->conns.end());
      for (Connection* c : conns) c->beginShutdown();
      if (wp->conns.empty()) {
        wp->loop->stop();
        return;
      }
      wp->grace = std::make_unique<Timer>(*wp->loop);
      wp->grace->start(grace_ms, [wp] {
        std::vector<Connection*> rest(wp->conns.begin(), wp->conns.end());
        logWarn("closing connections still busy after the shutdown grace period", {{"connections", rest.size()}});
        for (Connection* c : rest) c->close();
      });
    });
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace wharf

namespace wharf {
Loop& Server::loop(size_t i) { return *workers_[i]->loop; }
}  // namespace wharf
