#include "shared/http/client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared/net/listener.h"
#include "shared/net/transport.h"

namespace wharf {

// The state of one request; the handle the caller holds.
struct CallState : ClientCall, std::enable_shared_from_this<CallState> {
  ClientConnection* conn = nullptr;
  std::shared_ptr<ResponseHandler> handler;
  ClientRequest request;
  bool retried = false;
  bool done = false;
  void resume() override;
  void cancel() override;
};

class ClientConnection {
 public:
  explicit ClientConnection(ClientPool& pool) : pool_(pool), timer_(pool.loop_) {}
  ~ClientConnection() { *alive_ = false; }

  Status connect() {
    int fd = ::socket(pool_.addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status(Code::kUnavailable, std::string("socket: ") + std::strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&pool_.addr_), pool_.addr_len_);
    if (rc != 0 && errno != EINPROGRESS) {
      int e = errno;
      ::close(fd);
      return Status(Code::kUnavailable, "connect " + pool_.host_ + ": " + std::strerror(e));
    }
    transport_ = pool_.tls_ ? makeTlsTransport(fd, *pool_.tls_, pool_.host_) : makePlainTransport(fd);
    poller_ = std::make_unique<Poller>(pool_.loop_, fd, [this](int ev) { onEvents(ev); });
    state_ = State::kConnecting;
    poller_->watch(Poller::kWritable);
    arm(pool_.options_.connect_timeout_ms);
    ++pool_.opened_;
    return Status::ok();
  }

  // True when the current request is not the connection's first.
  bool reused() const { return requests_ > 1; }

  void start(std::shared_ptr<CallState> call) {
    call_ = std::move(call);
    call_->conn = this;
    ++requests_;
    got_response_bytes_ = false;
    complete_ = false;
    paused_ = false;
    llhttp_settings_init(&settings_);
    settings_.on_header_field = &ClientConnection::onHeaderField;
    settings_.on_header_value = &ClientConnection::onHeaderValue;
    settings_.on_headers_complete = &ClientConnection::onHeadersComplete;
    settings_.on_body = &ClientConnection::onBody;
    settings_.on_message_complete = &ClientConnection::onMessageComplete;
    llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
    parser_.data = this;
    response_ = ClientResponse();
    field_.clear();
    value_.clear();
    in_value_ = false;
    const ClientRequest& r = call_->request;
    out_ = r.method + " " + r.target + " HTTP/1.1\r\nHost: " + pool_.host_header_ + "\r\n";
    bool has_length = false;
    for (const auto& f : r.headers.fields()) {
      out_ += f.name + ": " + f.value + "\r\n";
      if (f.name == "content-length") has_length = true;
    }
    if (!has_length && (!r.body.empty() || r.method == "PUT" || r.method == "POST" || r.method == "PATCH")) {
      out_ += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    }
    out_ += "\r\n";
    out_ += r.body;
    out_done_ = 0;
    if (state_ != State::kConnecting) {
      state_ = State::kWriting;
      flush();
    }
  }

  void resume() {
    if (!paused_) return;
    paused_ = false;
    if (state_ == State::kReading) {
      poller_->watch(Poller::kReadable);
      arm(pool_.options_.io_timeout_ms);
      // TLS may hold decrypted bytes the socket does not signal.
      if (transport_->secure()) {
        pool_.loop_.post([this, alive = alive_] {
          if (*alive && state_ == State::kReading) doRead();
        });
      }
    }
  }

  // The caller cancelled: drop the connection (its stream position is unknown).
  void abort() {
    call_.reset();
    close();
  }

  void closeIdle() { close(); }

 private:
  enum class State { kConnecting, kWriting, kReading, kIdle, kClosed };

  static ClientConnection* self(llhttp_t* p) { return static_cast<ClientConnection*>(p->data); }
  static int onHeaderField(llhttp_t* p, const char* at, size_t len) {
    auto* c = self(p);
    if (c->in_value_) {
      c->response_.headers.add(std::move(c->field_), std::move(c->value_));
      c->field_.clear();
      c->value_.clear();
      c->in_value_ = false;
    }
    c->field_.append(at, len);
    return 0;
  }
  static int onHeaderValue(llhttp_t* p, const char* at, size_t len) {
    auto* c = self(p);
    c->in_value_ = true;
    c->value_.append(at, len);
    return 0;
  }
  static int onHeadersComplete(llhttp_t* p) {
    auto* c = self(p);
    if (c->in_value_ || !c->field_.empty()) c->response_.headers.add(std::move(c->field_), std::move(c->value_));
    c->response_.status = p->status_code;
    if (p->status_code >= 100 && p->status_code < 200) return 0;  // interim: wait for the final one
    c->keep_alive_ = llhttp_should_keep_alive(p) != 0;
    if (c->call_ && c->call_->handler) c->call_->handler->onHeaders(c->response_);
    return c->call_ && c->call_->request.method == "HEAD" ? 1 : 0;
  }
  static int onBody(llhttp_t* p, const char* at, size_t len) {
    auto* c = self(p);
    if (c->call_ && c->call_->handler && !c->call_->handler->onBody(std::string_view(at, len))) c->paused_ = true;
    return 0;
  }
  static int onMessageComplete(llhttp_t* p) {
    auto* c = self(p);
    if (c->response_.status >= 100 && c->response_.status < 200) {
      c->response_ = ClientResponse();
      return 0;
    }
    c->complete_ = true;
    return HPE_PAUSED;
  }

  void arm(uint64_t ms) {
    timer_.start(ms, [this] { fail(Status(Code::kTimeout, "upstream " + pool_.host_ + " timed out")); });
  }

  void onEvents(int events) {
    if (state_ == State::kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(transport_->fd(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return fail(Status(Code::kUnavailable, "connect " + pool_.host_ + ": " + std::strerror(err)));
      state_ = call_ ? State::kWriting : State::kIdle;
      if (call_) flush();
      return;
    }
    if ((events & Poller::kWritable) && state_ == State::kWriting) flush();
    if ((events & Poller::kReadable) && state_ != State::kClosed) {
      if (state_ == State::kIdle) {
        // An idle connection that becomes readable was closed (or spoke out of turn).
        return close();
      }
      if (state_ == State::kReading && !paused_) doRead();
    }
  }

  void flush() {
    while (out_done_ < out_.size()) {
      iovec iov{out_.data() + out_done_, out_.size() - out_done_};
      IoResult r = transport_->writev(&iov, 1);
      if (r.kind == IoResult::kOk) {
        out_done_ += r.bytes;
        continue;
      }
      if (r.kind == IoResult::kWantWrite || r.kind == IoResult::kWantRead) {
        poller_->watch(r.kind == IoResult::kWantWrite ? Poller::kWritable : Poller::kReadable);
        arm(pool_.options_.io_timeout_ms);
        return;
      }
      return fail(Status(Code::kUnavailable, "upstream " + pool_.host_ + " closed the connection"));
    }
    out_.clear();
    state_ = State::kReading;
    poller_->watch(Poller::kReadable);
    arm(pool_.options_.io_timeout_ms);
  }

  void doRead() {
    char buf[65536];
    auto alive = alive_;
    for (int i = 0; i < 16 && *alive && state_ == State::kReading && !paused_; ++i) {
      IoResult r = transport_->read(buf, sizeof buf);
      if (r.kind == IoResult::kWantRead || r.kind == IoResult::kWantWrite) break;
      if (r.kind != IoResult::kOk) {
        // EOF: a response delimited by the close is complete now.
        if (r.kind == IoResult::kEof && got_response_bytes_ && llhttp_finish(&parser_) == HPE_OK && complete_) {
          keep_alive_ = false;
          return finishCall();
        }
        return fail(Status(Code::kUnavailable, "upstream " + pool_.host_ + " closed the connection mid-response"));
      }
      got_response_bytes_ = true;
      llhttp_errno_t err = llhttp_execute(&parser_, buf, r.bytes);
      if (!*alive) return;
      if (err == HPE_PAUSED && complete_) return finishCall();
      if (err != HPE_OK) return fail(Status(Code::kUnavailable, std::string("malformed response from upstream: ") +
                                                                    llhttp_errno_name(err)));
    }
    if (!*alive || state_ != State::kReading) return;
    poller_->watch(paused_ ? 0 : Poller::kReadable);
    if (paused_) {
      timer_.stop();
    } else {
      arm(pool_.options_.io_timeout_ms);
    }
  }

  void finishCall() {
    auto call = std::move(call_);
    timer_.stop();
    state_ = State::kIdle;
    poller_->watch(Poller::kReadable);  // notice a close while idle
    if (call) {
      call->conn = nullptr;
      call->done = true;
      auto handler = std::move(call->handler);
      if (handler) handler->onComplete(Status::ok());
    }
    pool_.release(this, keep_alive_);
  }

  void fail(Status why) {
    auto call = std::move(call_);
    bool retry = call && !call->done && !call->retried && !got_response_bytes_ && reused() &&
                 (call->request.method == "GET" || call->request.method == "HEAD");
    close();
    if (!call || call->done) return;
    call->conn = nullptr;
    if (retry) {
      call->retried = true;
      pool_.dispatch(call);  // the same call, so the caller's handle keeps working
      return;
    }
    call->done = true;
    auto handler = std::move(call->handler);
    if (handler) handler->onComplete(why);
  }

  void close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    *alive_ = false;
    poller_.reset();
    timer_.stop();
    pool_.release(this, false);
  }

  ClientPool& pool_;
  Timer timer_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Poller> poller_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  State state_ = State::kClosed;
  std::shared_ptr<CallState> call_;
  std::string out_;
  size_t out_done_ = 0;
  llhttp_t parser_;
  llhttp_settings_t settings_;
  ClientResponse response_;
  std::string field_, value_;
  bool in_value_ = false;
  bool keep_alive_ = true;
  bool complete_ = false;
  bool paused_ = false;
  bool got_response_bytes_ = false;
  uint64_t requests_ = 0;
};

void CallState::resume() {
  if (conn != nullptr) conn->resume();
}

void CallState::cancel() {
  done = true;
  handler = nullptr;
  if (conn != nullptr) {
    auto* c = conn;
    conn = nullptr;
    c->abort();
  }
}

Result<BaseUrl> parseBaseUrl(const std::string& url) {
  BaseUrl out;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return Status(Code::kInvalidArgument, "the URL must start with http:// or https://: " + url);
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) {
    return Status(Code::kInvalidArgument, "the URL must be scheme://host[:port]: " + url);
  }
  out.host_header = rest;
  std::string port;
  if (rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return Status(Code::kInvalidArgument, "bad IPv6 address in " + url);
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    out.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    out.host = rest;
  }
  if (port.empty()) {
    out.port = out.tls ? 443 : 80;
  } else if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    return Status(Code::kInvalidArgument, "bad port in " + url);
  } else {
    out.port = std::stoi(port);
  }
  return out;
}

Result<Upstream> Upstream::resolve(const std::string& base_url) {
  auto url = parseBaseUrl(base_url);
  if (!url.isOk()) return url.status();
  Upstream up;
  up.url = *url;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(up.url.port);
  if (int rc = getaddrinfo(up.url.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Status(Code::kUnavailable, "resolve " + up.url.host + ": " + gai_strerror(rc));
  }
  std::memcpy(&up.addr, res->ai_addr, res->ai_addrlen);
  up.addr_len = res->ai_addrlen;
  freeaddrinfo(res);
  return up;
}

Result<std::unique_ptr<ClientPool>> ClientPool::create(Loop& loop, const Upstream& upstream, ClientOptions options) {
  std::unique_ptr<ClientPool> pool(new ClientPool(loop, std::move(options)));
  pool->host_ = upstream.url.host;
  pool->host_header_ = upstream.url.host_header;
  pool->addr_ = upstream.addr;
  pool->addr_len_ = upstream.addr_len;
  if (upstream.url.tls) {
    auto ctx = TlsContext::client(pool->options_.ca_file, pool->options_.insecure);
    if (!ctx.isOk()) return ctx.status();
    pool->tls_ = *ctx;
  }
  return pool;
}

ClientPool::ClientPool(Loop& loop, ClientOptions options) : loop_(loop), options_(std::move(options)) {}

ClientPool::~ClientPool() {
  // Connections close without calling back: the pool's owner is going away.
  idle_.clear();
  all_.clear();
}

std::shared_ptr<ClientCall> ClientPool::send(ClientRequest request, std::shared_ptr<ResponseHandler> handler) {
  auto call = std::make_shared<CallState>();
  call->request = std::move(request);
  call->handler = std::move(handler);
  dispatch(call);
  return call;
}

void ClientPool::dispatch(const std::shared_ptr<CallState>& call) {
  ClientConnection* conn = nullptr;
  if (!idle_.empty()) {
    conn = idle_.back();
    idle_.pop_back();
  } else {
    auto fresh = std::make_unique<ClientConnection>(*this);
    Status st = fresh->connect();
    if (!st.isOk()) {
      // The contract: fail now and never call back... but callers hold only the handler,
      // so report through it, asynchronously, exactly once.
      auto h = call->handler;
      call->done = true;
      loop_.post([h, st] {
        if (h) h->onComplete(st);
      });
      return;
    }
    conn = fresh.get();
    all_.push_back(std::move(fresh));
  }
  conn->start(call);
}

void ClientPool::release(ClientConnection* conn, bool reusable) {
  if (reusable && idle_.size() < options_.max_idle) {
    if (std::find(idle_.begin(), idle_.end(), conn) == idle_.end()) idle_.push_back(conn);
    return;
  }
  idle_.erase(std::remove(idle_.begin(), idle_.end(), conn), idle_.end());
  if (reusable) conn->closeIdle();  // over the idle limit; closeIdle() calls back here
  // Deferred delete: we may be inside the connection's own callback.
  for (auto it = all_.begin(); it != all_.end(); ++it) {
    if (it->get() == conn) {
      ClientConnection* raw = it->release();
      all_.erase(it);
      loop_.post([raw] { delete raw; });
      return;
    }
  }
}

}  // namespace wharf
