#include "shared/http/blocking_client.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wharf {
namespace {

struct ParseState {
  HttpResponse resp;
  std::string field, value;
  bool in_value = false;
  bool done = false;
  bool head = false;
  bool keep_alive = true;
  const BlockingClient::BodySink* sink = nullptr;  // 200/206 bodies go there
  Status sink_error;
};

int onHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* s = static_cast<ParseState*>(p->data);
  if (s->in_value) {
    s->resp.headers.add(s->field, s->value);
    s->field.clear();
    s->value.clear();
    s->in_value = false;
  }
  s->field.append(at, len);
  return 0;
}
int onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* s = static_cast<ParseState*>(p->data);
  s->in_value = true;
  s->value.append(at, len);
  return 0;
}
int onHeadersComplete(llhttp_t* p) {
  auto* s = static_cast<ParseState*>(p->data);
  if (s->in_value || !s->field.empty()) s->resp.headers.add(s->field, s->value);
  s->resp.status = p->status_code;
  s->keep_alive = llhttp_should_keep_alive(p);
  if (p->status_code == 100) return 0;
  return s->head ? 1 : 0;
}
int onBody(llhttp_t* p, const char* at, size_t len) {
  auto* s = static_cast<ParseState*>(p->data);
  if (s->sink != nullptr && (s->resp.status == 200 || s->resp.status == 206)) {
    s->sink_error = (*s->sink)(s->resp, std::string_view(at, len));
    return s->sink_error.isOk() ? 0 : -1;
  }
  s->resp.body.append(at, len);
  return 0;
}
int onMessageComplete(llhttp_t* p) {
  auto* s = static_cast<ParseState*>(p->data);
  if (s->resp.status == 100) {
    // Interim response: reset and keep reading for the final one.
    s->resp = HttpResponse();
    s->field.clear();
    s->value.clear();
    s->in_value = false;
    return 0;
  }
  s->done = true;
  return HPE_PAUSED;
}

}  // namespace

BlockingClient::BlockingClient(std::string host, int port, int timeout_ms)
    : host_(std::move(host)), port_(port), timeout_ms_(timeout_ms) {}

BlockingClient::~BlockingClient() { close(); }

void BlockingClient::useTls(std::string ca_file, bool insecure) {
  tls_ = true;
  ca_file_ = std::move(ca_file);
  insecure_ = insecure;
}

void BlockingClient::interrupt() {
  interrupted_.store(true);  // no retry on a fresh connection either
  int fd = fd_.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

void BlockingClient::close() {
  tls_client_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pending_.clear();
}

Result<size_t> BlockingClient::recvSome(char* buf, size_t len) {
  if (tls_client_) return tls_client_->read(buf, len);
  for (;;) {
    ssize_t r = ::recv(fd_, buf, len, 0);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno == EINTR) continue;
    return Status(Code::kUnavailable, std::string("recv: ") + std::strerror(errno));
  }
}

Status BlockingClient::sendAll(const char* data, size_t len) {
  if (tls_client_) return tls_client_->write(data, len);
  size_t off = 0;
  while (off < len) {
    ssize_t w = ::send(fd_, data + off, len - off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Status(Code::kTimeout, "send: the peer took no bytes for " + std::to_string(timeout_ms_) + " ms");
      }
      return Status(Code::kUnavailable, std::string("send: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(w);
  }
  return Status::ok();
}

Status BlockingClient::connect() {
  close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(port_);
  if (int rc = getaddrinfo(host_.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Status(Code::kUnavailable, "resolve " + host_ + ": " + gai_strerror(rc));
  }
  int err = ECONNREFUSED;
  for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
    // Non-blocking for the connect only, so that it gives up after the timeout (an
    // unreachable host would otherwise hold the caller for the kernel's ~2 minutes).
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      int pr = ::poll(&pfd, 1, timeout_ms_);
      int so_error = ETIMEDOUT;
      socklen_t len = sizeof so_error;
      if (pr > 0) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      rc = so_error == 0 ? 0 : -1;
      errno = so_error;
    }
    if (rc != 0) {
      err = errno;
      ::close(fd);
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    fd_ = fd;
  }
  freeaddrinfo(res);
  if (fd_ < 0) return Status(Code::kUnavailable, "connect " + host_ + ":" + port + ": " + std::strerror(err));
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A peer that stops taking bytes (a full store that no longer reads its socket) or
  // never finishes a TLS handshake fails the call after the timeout instead of holding
  // its thread forever.
  timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!tls_) return Status::ok();
  auto client = TlsClient::connect(fd_, host_, ca_file_, insecure_);
  if (!client.isOk()) {
    close();
    return client.status();
  }
  tls_client_ = std::move(client).value();
  return Status::ok();
}

Status BlockingClient::send(std::string_view bytes) {
  if (interrupted_.load()) return Status(Code::kUnavailable, "interrupted");
  if (fd_ < 0) WHARF_RETURN_IF_ERROR(connect());
  return sendAll(bytes.data(), bytes.size());
}

Result<HttpResponse> BlockingClient::read(bool head) { return read(head, nullptr); }

Result<HttpResponse> BlockingClient::read(bool head, const BodySink* sink) {
  if (fd_ < 0) return Status(Code::kUnavailable, "not connected");
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_header_field = onHeaderField;
  settings.on_header_value = onHeaderValue;
  settings.on_headers_complete = onHeadersComplete;
  settings.on_body = onBody;
  settings.on_message_complete = onMessageComplete;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &settings);
  ParseState state;
  state.head = head;
  state.sink = sink;
  parser.data = &state;
  auto feed = [&](const char* data, size_t len) -> Status {
    llhttp_errno_t err = llhttp_execute(&parser, data, len);
    if (!state.sink_error.isOk()) {
      close();  // the rest of the body is not read
      return state.sink_error;
    }
    if (err == HPE_PAUSED) {
      size_t used = static_cast<size_t>(llhttp_get_error_pos(&parser) - data);
      pending_.assign(data + used, len - used);
      return Status::ok();
    }
    if (err != HPE_OK) return Status(Code::kInvalidArgument, std::string("bad response: ") + llhttp_errno_name(err));
    return Status::ok();
  };
  if (!pending_.empty()) {
    std::string p;
    p.swap(pending_);
    WHARF_RETURN_IF_ERROR(feed(p.data(), p.size()));
  }
  char buf[65536];
  while (!state.done) {
    if (!tls_client_ || !tls_client_->pending()) {
      pollfd pfd{fd_, POLLIN, 0};
      int pr = ::poll(&pfd, 1, timeout_ms_);
      if (pr == 0) {
        close();
        return Status(Code::kTimeout, "timed out waiting for a response");
      }
    }
    auto got = recvSome(buf, sizeof buf);
    ssize_t r = got.isOk() ? static_cast<ssize_t>(*got) : -1;
    if (r <= 0) {
      // EOF: a response delimited by close completes here.
      if (llhttp_finish(&parser) == HPE_OK && state.done) break;
      if (state.resp.status != 0 && llhttp_message_needs_eof(&parser)) {
        state.done = true;
        break;
      }
      close();
      return Status(Code::kUnavailable, "connection closed before a complete response");
    }
    WHARF_RETURN_IF_ERROR(feed(buf, static_cast<size_t>(r)));
  }
  HttpResponse resp = std::move(state.resp);
  if (!state.keep_alive) {
    resp.closed = true;
    close();
  }
  return resp;
}

Result<HttpResponse> BlockingClient::request(const std::string& method, const std::string& target,
                                         const HeaderList& headers, std::string_view body) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host_ + ":" + std::to_string(port_) + "\r\n";
  bool has_length = false;
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    if (strcasecmp(k.c_str(), "content-length") == 0 || strcasecmp(k.c_str(), "transfer-encoding") == 0) {
      has_length = true;
    }
  }
  if (!has_length && (!body.empty() || method == "PUT" || method == "POST" || method == "PATCH")) {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  // A small body goes with the head in one write; a large one after it, from where it is.
  constexpr size_t kCopyBody = 64 * 1024;
  const bool separate = body.size() > kCopyBody;
  if (!separate) req += body;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (interrupted_.load()) return Status(Code::kUnavailable, "interrupted");
    bool fresh = fd_ < 0;
    Status sent = send(req);
    if (sent.isOk() && separate) sent = sendAll(body.data(), body.size());
    if (sent.code() == Code::kTimeout) {
      // The peer is stuck, not gone: neither an answer nor a retry would come sooner.
      close();
      return sent;
    }
    // Even when sending failed, the server may have answered and closed before taking
    // the whole body (413, 400): its response is still readable.
    auto r = fd_ >= 0 ? read(method == "HEAD") : Result<HttpResponse>(sent);
    if (r.isOk()) return r;
    close();
    if (fresh || r.status().code() == Code::kTimeout) return sent.isOk() ? r : Result<HttpResponse>(sent);
    // A kept-alive connection the server had closed: retry once on a fresh one.
  }
  return Status(Code::kUnavailable, "request failed");
}

Result<HttpResponse> BlockingClient::stream(const std::string& target, const HeaderList& headers, BodySink sink) {
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + host_ + ":" + std::to_string(port_) + "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  if (interrupted_.load()) return Status(Code::kUnavailable, "interrupted");
  // A kept-alive connection may have been closed by the server: this request starts on
  // a fresh one, so that a failure is never a retry after bytes went to the sink.
  close();
  WHARF_RETURN_IF_ERROR(send(req));
  auto r = read(false, &sink);
  if (!r.isOk()) close();
  return r;
}

Result<HttpResponse> BlockingClient::raw(const std::string& bytes, bool head) {
  WHARF_RETURN_IF_ERROR(send(bytes));
  return read(head);
}

}  // namespace wharf
