// ClientPool: HTTP/1.1 requests to one upstream (http:// or https://) from a loop
// thread, over pooled keep-alive connections, with streamed response bodies.
//
// Threading: a ClientPool belongs to one Loop; send() and every callback run on that
// loop's thread. The upstream's name is resolved beforehand (Upstream::resolve, which
// blocks: call it off the loops, at start-up), so nothing here blocks a loop on DNS.
//
// Contract: send() either fails now (and never calls back) or calls the handler's
// onComplete() exactly once, after onHeaders() and onBody() as the response arrives. A
// response cut short (connection lost, timeout, malformed) completes with an error,
// never OK. A reused keep-alive connection that the upstream had closed is retried once
// on a fresh one for GET and HEAD.
#pragma once

#include <llhttp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "shared/base/status.h"
#include "shared/event/loop.h"
#include "shared/http/message.h"
#include "shared/tls/tls.h"

namespace wharf {

struct ClientRequest {
  std::string method = "GET";
  std::string target;  // origin form: "/v2/team/app/blobs/sha256:..."
  Headers headers;
  std::string body;
};

struct ClientResponse {
  int status = 0;
  Headers headers;
};

class ResponseHandler {
 public:
  virtual ~ResponseHandler() = default;
  virtual void onHeaders(const ClientResponse& response) = 0;
  // A piece of the body. Return false to stop reading until ClientCall::resume() (the
  // rest of the piece already received still arrives first).
  virtual bool onBody(std::string_view data) = 0;
  virtual void onComplete(Status status) = 0;
};

// A request in flight.
class ClientCall {
 public:
  virtual ~ClientCall() = default;
  virtual void resume() = 0;
  // Abandons the request; the handler is not called again.
  virtual void cancel() = 0;
};

struct ClientOptions {
  uint64_t connect_timeout_ms = 10'000;
  uint64_t io_timeout_ms = 60'000;  // no progress reading or writing
  size_t max_idle = 16;
  std::string ca_file;              // for https (empty: system CAs)
  bool insecure = false;
};

// A base URL, http(s)://host[:port] with no path.
struct BaseUrl {
  bool tls = false;
  std::string host;         // without brackets for IPv6
  int port = 0;
  std::string host_header;  // host[:port] as written
};
Result<BaseUrl> parseBaseUrl(const std::string& url);

// An upstream with its address resolved.
struct Upstream {
  BaseUrl url;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  // Resolves the host name. Blocks: call it off the loop threads.
  static Result<Upstream> resolve(const std::string& base_url);
};

class ClientConnection;
struct CallState;

class ClientPool {
 public:
  // Never blocks (the upstream is resolved already).
  static Result<std::unique_ptr<ClientPool>> create(Loop& loop, const Upstream& upstream, ClientOptions options);
  ~ClientPool();
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  std::shared_ptr<ClientCall> send(ClientRequest request, std::shared_ptr<ResponseHandler> handler);
  const std::string& host() const { return host_; }
  size_t idleConnections() const { return idle_.size(); }
  uint64_t connectionsOpened() const { return opened_; }

 private:
  friend class ClientConnection;
  ClientPool(Loop& loop, ClientOptions options);
  void release(ClientConnection* conn, bool reusable);  // back to idle, or closed
  void dispatch(const std::shared_ptr<struct CallState>& call);

  Loop& loop_;
  ClientOptions options_;
  std::string host_;
  std::string host_header_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::shared_ptr<TlsContext> tls_;
  std::vector<ClientConnection*> idle_;
  std::vector<std::unique_ptr<ClientConnection>> all_;
  uint64_t opened_ = 0;
};

}  // namespace wharf
