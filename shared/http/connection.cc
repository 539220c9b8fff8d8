#include "shared/http/connection.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

#include <cstring>
#include <ctime>

#include "shared/base/clock.h"
#include "shared/base/ids.h"
#include "shared/base/log.h"
#include "shared/http/url.h"
#include "shared/metrics/metrics.h"

namespace wharf {
namespace {

// A response written before its request body was read: up to this many remaining body
// bytes are read and dropped to keep the connection; more and the connection is closed.
constexpr uint64_t kMaxDiscard = 1024 * 1024;

Connection* self(llhttp_t* p) { return static_cast<Connection*>(p->data); }

// Buffers for request bodies larger than a read, kept per loop thread for the next
// pieces: their pages are the process's already, where a fresh buffer of megabytes
// costs a page fault every 4 KiB (8-11% of the core's CPU on a 64 MiB push, measured).
constexpr size_t kPooledBodyBuffers = 4;
std::vector<std::string>& bodyBuffers() {
  thread_local std::vector<std::string> pool;
  return pool;
}
std::string takeBodyBuffer(size_t capacity) {
  auto& pool = bodyBuffers();
  std::string buffer;
  if (!pool.empty()) {
    buffer = std::move(pool.back());
    pool.pop_back();
  }
  buffer.reserve(capacity);
  return buffer;
}
void keepBodyBuffer(std::string buffer, size_t capacity) {
  auto& pool = bodyBuffers();
  if (buffer.capacity() < capacity || pool.size() >= kPooledBodyBuffers) return;
  buffer.clear();
  pool.push_back(std::move(buffer));
}

// "Date" header value, cached per thread and second.
const std::string& httpDate() {
  thread_local std::string cached;
  thread_local time_t cached_at = 0;
  time_t now = ::time(nullptr);
  if (now != cached_at) {
    std::tm tm;
    gmtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached = buf;
    cached_at = now;
  }
  return cached;
}

struct HttpMetrics {
  Counter& bytes_in = MetricsRegistry::global().counter("wharf_http_received_bytes_total", "Bytes received from HTTP clients.");
  Counter& bytes_out = MetricsRegistry::global().counter("wharf_http_sent_bytes_total", "Bytes sent to HTTP clients.");
  Gauge& open = MetricsRegistry::global().gauge("wharf_http_connections", "Open HTTP connections.");
  Counter& idle_timeouts = timeout("idle");
  Counter& head_timeouts = timeout("header");
  Counter& body_timeouts = timeout("body");
  Counter& write_timeouts = timeout("write");
  Counter& handler_failures = MetricsRegistry::global().counter(
      "wharf_http_handler_failures_total", "Requests whose handler threw on a loop thread (answered 500).");
  static Counter& timeout(const char* phase) {
    return MetricsRegistry::global().counter("wharf_http_timeouts_total",
                                             "Connections closed by a timeout, by phase (idle keep-alive, request "
                                             "header, request body too slow, response write).",
                                             std::string("phase=\"") + phase + "\"");
  }
  Counter& parse_errors = MetricsRegistry::global().counter("wharf_http_bad_requests_total", "Malformed requests refused by the HTTP layer.");
  static HttpMetrics& get() {
    static HttpMetrics m;
    return m;
  }
};

}  // namespace

const llhttp_settings_t& Connection::settings() {
  static llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_message_begin = &Connection::onMessageBegin;
    st.on_url = &Connection::onUrl;
    st.on_header_field = &Connection::onHeaderField;
    st.on_header_value = &Connection::onHeaderValue;
    st.on_headers_complete = &Connection::onHeadersComplete;
    st.on_body = &Connection::onBody;
    st.on_message_complete = &Connection::onMessageComplete;
    return st;
  }();
  return s;
}

Connection::Connection(Loop& loop, std::unique_ptr<Transport> transport, std::string peer, const ServerLimits& limits,
                       const Handler& handler, OnClosed on_closed)
    : loop_(loop),
      transport_(std::move(transport)),
      peer_(std::move(peer)),
      limits_(limits),
      handler_(handler),
      on_closed_(std::move(on_closed)),
      timer_(loop) {
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
  HttpMetrics::get().open.add(1);
}

Connection::~Connection() { HttpMetrics::get().open.add(-1); }

void Connection::start() {
  poller_ = std::make_unique<Poller>(loop_, transport_->fd(), [this](int ev) { onEvents(ev); });
  // The first request's head is due within header_timeout of the connection's start
  // (and a connection that sends nothing is idle: closed after idle_timeout if shorter).
  head_deadline_ms_ = monotonicMillis() + std::min(limits_.header_timeout_ms, limits_.idle_timeout_ms);
  updateInterest();
  updateTimer();
}

void Connection::beginShutdown() {
  shutting_down_ = true;
  keep_alive_ = false;
  if (!ex_ && !request_started_ && out_.empty()) close();
}

void Connection::close() {
  if (closing_) return;
  closing_ = true;
  *alive_ = false;
  source_.reset();
  poller_.reset();
  timer_.stop();
  if (ex_) {
    auto ex = std::move(ex_);
    ex->conn_ = nullptr;
    auto body_cb = std::move(body_cb_);
    if (body_cb) body_cb(Status(Code::kCancelled, "client connection closed"), {}, false);
    if (!ex->responded_ || response_pending_) {
      if (ex->on_abort_) ex->on_abort_();
    }
    ex->on_abort_ = nullptr;
  }
  on_closed_(this);
  loop_.post([this] { delete this; });
}

// --- llhttp callbacks -------------------------------------------------------------

int Connection::onMessageBegin(llhttp_t* p) {
  Connection* c = self(p);
  c->request_started_ = true;
  c->building_ = Request();
  c->field_.clear();
  c->value_.clear();
  c->in_value_ = false;
  c->header_bytes_ = 0;
  return 0;
}

int Connection::onUrl(llhttp_t* p, const char* at, size_t len) {
  Connection* c = self(p);
  c->building_.target.append(at, len);
  c->header_bytes_ += len;
  if (c->building_.target.size() > c->limits_.max_url_bytes) {
    c->parse_error_ = Code::kUriTooLong;
    return HPE_USER;
  }
  return 0;
}

int Connection::onHeaderField(llhttp_t* p, const char* at, size_t len) {
  Connection* c = self(p);
  if (c->in_value_) {
    c->building_.headers.add(std::move(c->field_), std::move(c->value_));
    c->field_.clear();
    c->value_.clear();
    c->in_value_ = false;
    if (c->building_.headers.size() >= c->limits_.max_headers) {
      c->parse_error_ = Code::kHeadersTooLarge;
      return HPE_USER;
    }
  }
  c->field_.append(at, len);
  c->header_bytes_ += len;
  if (c->header_bytes_ > c->limits_.max_header_bytes) {
    c->parse_error_ = Code::kHeadersTooLarge;
    return HPE_USER;
  }
  return 0;
}

int Connection::onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  Connection* c = self(p);
  // A value piece right after a line break is obs-fold (a continuation line), which
  // RFC 9112 section 5.2 lets a server refuse; llhttp 8 would join it.
  char before = at > c->parse_base_ ? at[-1] : c->prev_byte_;
  if (len > 0 && before == '\n') {
    c->parse_error_ = Code::kInvalidArgument;
    return HPE_USER;
  }
  // Whitespace between a field name and its colon must be refused (RFC 9112 section
  // 5.1): proxies disagree on what such a field means (request smuggling).
  if (!c->in_value_ && c->field_.find_first_of(" \t") != std::string::npos) {
    c->parse_error_ = Code::kInvalidArgument;
    return HPE_USER;
  }
  c->in_value_ = true;
  c->value_.append(at, len);
  c->header_bytes_ += len;
  if (c->header_bytes_ > c->limits_.max_header_bytes) {
    c->parse_error_ = Code::kHeadersTooLarge;
    return HPE_USER;
  }
  return 0;
}

int Connection::onHeadersComplete(llhttp_t* p) {
  Connection* c = self(p);
  if (c->in_value_ || !c->field_.empty()) {
    c->building_.headers.add(std::move(c->field_), std::move(c->value_));
    if (c->building_.headers.size() > c->limits_.max_headers) {
      c->parse_error_ = Code::kHeadersTooLarge;
      return HPE_USER;
    }
  }
  if (p->http_major != 1) {
    c->parse_error_ = Code::kInvalidArgument;  // HTTP/0.9 request lines and the like
    return -1;
  }
  // Only "chunked" is a transfer coding the server decodes: anything else (gzip,
  // "gzip, chunked", several fields) is 501, as RFC 9112 section 6.1 says.
  int codings = 0;
  for (const auto& f : c->building_.headers.fields()) {
    if (f.name != "transfer-encoding") continue;
    size_t b = f.value.find_first_not_of(" \t"), e = f.value.find_last_not_of(" \t");
    std::string v = b == std::string::npos ? "" : f.value.substr(b, e - b + 1);
    if (++codings > 1 || strcasecmp(v.c_str(), "chunked") != 0) {
      c->parse_error_ = Code::kNotImplemented;
      return HPE_USER;
    }
  }
  Request& r = c->building_;
  r.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  r.chunked = (p->flags & F_CHUNKED) != 0;
  if (p->flags & F_CONTENT_LENGTH) r.content_length = p->content_length;
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  if (const std::string* e = r.headers.get("expect")) {
    r.expect_continue = strcasecmp(e->c_str(), "100-continue") == 0;
  }
  c->pause_ = Pause::kHeaders;
  return HPE_PAUSED;
}

int Connection::onBody(llhttp_t* p, const char* at, size_t len) {
  Connection* c = self(p);
  c->body_seen_ += len;
  if (c->discard_body_) return 0;
  // A body beyond a read goes into a pooled buffer of the full size.
  if (c->body_buf_.size() + len > std::max(c->body_buf_.capacity(), kReadChunk)) {
    std::string buffer = takeBodyBuffer(c->bodyBufferCapacity());
    buffer.append(c->body_buf_);
    c->body_buf_.swap(buffer);
  }
  c->body_buf_.append(at, len);
  return 0;
}

int Connection::onMessageComplete(llhttp_t* p) {
  Connection* c = self(p);
  c->message_complete_ = true;
  c->pause_ = Pause::kMessage;
  return HPE_PAUSED;
}

// --- input ------------------------------------------------------------------------

void Connection::onEvents(int events) {
  if (closing_) return;
  if (events & Poller::kWritable) {
    flush();
    if (closing_) return;
  }
  if (events & Poller::kReadable) doRead();
}

void Connection::doRead() {
  thread_local std::unique_ptr<char[]> buf(new char[kReadChunk]);
  if (lingering_) {
    for (int i = 0; i < 16; ++i) {
      IoResult r = transport_->read(buf.get(), kReadChunk);
      if (r.kind == IoResult::kWantRead) return;
      if (r.kind != IoResult::kOk) {
        close();
        return;
      }
    }
    return;
  }
  for (int i = 0; i < 4 && !closing_ && wantRead(); ++i) {
    IoResult r = transport_->read(buf.get(), kReadChunk);
    if (r.kind == IoResult::kWantRead || r.kind == IoResult::kWantWrite) break;
    if (r.kind == IoResult::kEof || r.kind == IoResult::kError) {
      close();  // a request cut short has nobody to answer
      return;
    }
    HttpMetrics::get().bytes_in.inc(r.bytes);
    if (!request_started_ && !ex_ && head_deadline_ms_ == 0) {
      head_deadline_ms_ = monotonicMillis() + limits_.header_timeout_ms;  // a new request's first byte
    }
    parse(buf.get(), r.bytes);
    // TLS may hold decrypted bytes the socket no longer signals: read until it wants more.
    if (r.bytes < kReadChunk && !transport_->secure()) break;
    if (transport_->secure()) i = 0;
  }
  if (closing_) return;
  deliverBody();
  if (closing_) return;
  updateInterest();
  updateTimer();
}

void Connection::parse(const char* data, size_t len) {
  // After a pause at the end of the headers the parser runs once more even with no
  // input left: a request without a body completes without consuming a byte.
  bool resumed = false;
  parse_base_ = data;
  const char* end = data + len;
  struct KeepLastByte {  // the byte before the next buffer, whatever way parse() ends
    Connection* c;
    const char* base;
    const char* end;
    ~KeepLastByte() {
      if (end > base) c->prev_byte_ = end[-1];
    }
  } keep{this, data, end};
  while ((len > 0 || resumed) && !closing_) {
    resumed = false;
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    if (err == HPE_OK) return;
    if (err != HPE_PAUSED) {
      HttpMetrics::get().parse_errors.inc();
      Code code = parse_error_;
      std::string why = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "malformed request";
      if (code == Code::kOk) {
        code = err == HPE_INVALID_TRANSFER_ENCODING ? Code::kNotImplemented : Code::kInvalidArgument;
      }
      switch (code) {
        case Code::kUriTooLong: why = "the request target is longer than " + std::to_string(limits_.max_url_bytes) + " bytes"; break;
        case Code::kHeadersTooLarge:
          why = "the request head has more than " + std::to_string(limits_.max_headers) + " fields or " +
                std::to_string(limits_.max_header_bytes) + " bytes";
          break;
        case Code::kNotImplemented: why = "unsupported Transfer-Encoding (only chunked is accepted)"; break;
        default:
          if (why == "User callback error") why = "malformed header field (obs-fold or whitespace before the colon)";
          why = "malformed request: " + why;
          break;
      }
      failRequest(code, why);
      return;
    }
    const char* pos = llhttp_get_error_pos(&parser_);
    size_t used = static_cast<size_t>(pos - data);
    data += used;
    len -= used;
    llhttp_resume(&parser_);
    Pause why = pause_;
    pause_ = Pause::kNone;
    if (why == Pause::kHeaders) {
      dispatch();
      resumed = true;
    } else if (why == Pause::kMessage) {
      if (!response_pending_ && ex_ && ex_->responded_) {
        finishRequest();
      } else {
        // Wait for the response before parsing further (pipelining is sequential).
        if (len > 0) {
          in_.assign(data, len);
          in_pos_ = 0;
        }
        return;
      }
    }
  }
}

void Connection::dispatch() {
  head_deadline_ms_ = 0;
  body_seen_ = 0;
  body_window_ = false;
  body_failed_ = false;
  auto ex = std::make_shared<Exchange>();
  ex->request_ = std::move(building_);
  ex->request_.peer = peer_;
  ex->request_.id = newRequestId();
  ex->loop_ = &loop_;
  ex->conn_ = this;
  ex->start_ms_ = monotonicMillis();
  ex_ = ex;
  message_complete_ = false;
  body_buf_.clear();
  body_requested_ = false;
  discard_body_ = false;
  continue_sent_ = false;
  head_only_ = ex->request_.method == "HEAD";
  if (!ex->request_.keep_alive || shutting_down_) keep_alive_ = false;
  Status st = splitTarget(ex->request_.target, &ex->request_.path, &ex->request_.query);
  if (!st.isOk()) {
    respond(Response::error(Status(Code::kInvalidArgument, st.message())));
    return;
  }
  runHandler([&] { handler_(ex); });
}

void Connection::runHandler(const std::function<void()>& fn) {
  // A handler that throws is a bug: this request gets a 500, the process goes on.
  std::string what;
  try {
    fn();
    return;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  HttpMetrics::get().handler_failures.inc();
  std::string id = ex_ ? ex_->request_.id : "";
  logError("request handler failed", {{"request_id", id}, {"peer", peer_}, {"error", what}});
  if (closing_) return;
  keep_alive_ = false;
  if (ex_ && !ex_->responded_) {
    respondError(Status(Code::kInternal, "internal error (request " + id + ")"));
  } else {
    close();
  }
}

void Connection::readBody(Exchange::BodyCallback cb) {
  WHARF_ASSERT(!body_cb_);
  if (closing_) {
    cb(Status(Code::kCancelled, "client connection closed"), {}, false);
    return;
  }
  body_requested_ = true;
  if (ex_->request_.expect_continue && !continue_sent_ && !message_complete_) {
    continue_sent_ = true;
    queue("HTTP/1.1 100 Continue\r\n\r\n");
    flush();
    if (closing_) return;
  }
  body_cb_ = std::move(cb);
  deliverBody();
  if (!closing_) {
    updateInterest();
    updateTimer();
  }
}

void Connection::deliverBody() {
  // Pieces of at least a quarter of the buffer, or the rest of the body: fewer, larger
  // hand-offs to the consumer (typically a worker thread that hashes and writes).
  size_t min_piece = limits_.body_buffer_bytes / 4;
  if (!body_cb_ || (body_buf_.size() < min_piece && !message_complete_)) return;
  auto cb = std::move(body_cb_);
  body_cb_ = nullptr;
  std::string data;
  data.swap(body_buf_);
  if (!message_complete_ && data.capacity() >= bodyBufferCapacity()) body_buf_ = takeBodyBuffer(bodyBufferCapacity());
  runHandler([&] { cb(Status::ok(), std::move(data), message_complete_); });
}

// --- output -----------------------------------------------------------------------

void Connection::queue(std::string data) {
  Segment s;
  s.data = std::move(data);
  out_.push_back(std::move(s));
}

void Connection::respond(Response r) {
  Exchange& ex = *ex_;
  WHARF_ASSERT(!ex.responded_);
  ex.responded_ = true;
  status_ = r.status;
  if (!message_complete_ && ex.request_.hasBody()) {
    // The body was not (fully) read. Keep the connection only if what is left is small
    // and the client is not waiting for a "100 Continue" we never sent.
    const Request& q = ex.request_;
    bool waiting_for_continue = q.expect_continue && !continue_sent_;
    uint64_t remaining = q.content_length ? *q.content_length : kMaxDiscard + 1;
    if (waiting_for_continue || q.chunked || remaining > kMaxDiscard) keep_alive_ = false;
    discard_body_ = true;
    body_buf_.clear();
  }
  if (r.status >= 500 && r.status != 503) keep_alive_ = keep_alive_ && message_complete_;

  uint64_t length = r.bodyLength();
  auto* src = std::get_if<std::shared_ptr<BodySource>>(&r.body);
  bool chunked = src != nullptr && !(*src)->length().has_value();
  std::string head;
  head.reserve(256);
  head += "HTTP/1.1 ";
  head += std::to_string(r.status);
  head += ' ';
  head += reasonPhrase(r.status);
  head += "\r\nDate: ";
  head += httpDate();
  head += "\r\n";
  for (const auto& f : r.headers.fields()) {
    if (f.name == "content-length" || f.name == "connection") continue;
    // Header names were lower-cased on add; HTTP/1.1 names are case-insensitive.
    head += f.name;
    head += ": ";
    head += f.value;
    head += "\r\n";
  }
  if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (r.status != 204 && r.status != 304 && !(r.status >= 100 && r.status < 200)) {
    head += "Content-Length: ";
    head += std::to_string(length);
    head += "\r\n";
  }
  if (!keep_alive_) head += "Connection: close\r\n";
  head += "\r\n";
  if (!head_only_) {
    if (auto* s = std::get_if<std::string>(&r.body)) {
      head += *s;  // small bodies go out in the same write as the headers
    }
  }
  queue(std::move(head));
  if (!head_only_) {
    if (auto* f = std::get_if<FileBody>(&r.body); f != nullptr && f->length > 0) {
      Segment s;
      s.file = f->fd;
      s.offset = f->offset;
      s.length = f->length;
      out_.push_back(std::move(s));
    }
  }
  if (src != nullptr && !head_only_) {
    source_ = *src;
    source_chunked_ = chunked;
    source_done_ = false;
    source_waiting_ = false;
  }
  response_pending_ = true;
  body_cb_ = nullptr;
  flush();
}

void Connection::pullSource() {
  source_waiting_ = true;
  auto alive = alive_;
  source_->next([this, alive](Status st, BodySource::Piece piece) {
    if (!*alive) return;
    source_waiting_ = false;
    if (!st.isOk()) {
      logDebug("response body source failed", {{"peer", peer_}, {"error", st.message()}});
      close();  // never a short body that looks complete
      return;
    }
    uint64_t size = piece.file.fd ? piece.file.length : piece.data.size();
    if (source_chunked_ && size > 0) {
      char hex[24];
      std::snprintf(hex, sizeof hex, "%llx\r\n", static_cast<unsigned long long>(size));
      queue(hex);
    }
    if (piece.file.fd && piece.file.length > 0) {
      Segment seg;
      seg.file = piece.file.fd;
      seg.offset = piece.file.offset;
      seg.length = piece.file.length;
      out_.push_back(std::move(seg));
    } else if (!piece.data.empty()) {
      queue(std::move(piece.data));
    }
    if (source_chunked_ && size > 0) queue("\r\n");
    if (piece.end) {
      source_done_ = true;
      source_.reset();
      if (source_chunked_) queue("0\r\n\r\n");
    }
    if (!in_flush_) flush();
  });
}

void Connection::flush() {
  if (closing_) return;
  in_flush_ = true;
  uint64_t sent = 0;
  for (;;) {
  while (!out_.empty()) {
    Segment& front = out_.front();
    IoResult r;
    if (!front.file) {
      iovec iov[16];
      int n = 0;
      size_t skip = out_front_done_;
      auto it = out_.begin();
      for (; it != out_.end() && n < 16 && !it->file; ++it) {
        iov[n].iov_base = const_cast<char*>(it->data.data()) + skip;
        iov[n].iov_len = it->data.size() - skip;
        skip = 0;
        ++n;
      }
      r = transport_->writev(iov, n, it != out_.end() && it->file);
      if (r.kind == IoResult::kOk) {
        size_t left = r.bytes;
        sent += r.bytes;
        while (left > 0 && !out_.empty() && !out_.front().file) {
          size_t avail = out_.front().data.size() - out_front_done_;
          if (left >= avail) {
            left -= avail;
            out_.pop_front();
            out_front_done_ = 0;
          } else {
            out_front_done_ += left;
            left = 0;
          }
        }
        continue;
      }
    } else {
      uint64_t remaining = front.length - out_front_done_;
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(remaining, 1u << 30));
      r = transport_->sendFile(front.file->get(), front.offset + out_front_done_, chunk);
      if (r.kind == IoResult::kOk) {
        sent += r.bytes;
        out_front_done_ += r.bytes;
        if (out_front_done_ == front.length) {
          out_.pop_front();
          out_front_done_ = 0;
        }
        continue;
      }
    }
    if (r.kind == IoResult::kWantWrite || r.kind == IoResult::kWantRead) {
      write_blocked_ = true;
      in_flush_ = false;
      HttpMetrics::get().bytes_out.inc(sent);
      updateInterest();
      updateTimer();
      return;
    }
    // EOF or error while writing: the peer is gone.
    in_flush_ = false;
    HttpMetrics::get().bytes_out.inc(sent);
    close();
    return;
  }
  // Everything queued is written: a streamed body may have more.
  if (source_ && !source_done_) {
    if (source_waiting_) break;
    pullSource();
    if (closing_) return;
    if (out_.empty()) break;  // the piece comes later
    continue;
  }
  break;
  }
  in_flush_ = false;
  HttpMetrics::get().bytes_out.inc(sent);
  write_blocked_ = false;
  if (source_ && !source_done_) {
    // Waiting for the source: nothing to write, the client is not to blame.
    updateInterest();
    timer_.stop();
    return;
  }
  if (response_pending_) onResponseWritten();
  if (!closing_) {
    updateInterest();
    updateTimer();
  }
}

void Connection::onResponseWritten() {
  response_pending_ = false;
  if (ex_) {
    auto& m = MetricsRegistry::global();
    m.histogram("wharf_http_request_duration_seconds", "Time from request headers to the last response byte.")
        .observe(static_cast<double>(monotonicMillis() - ex_->start_ms_) / 1000.0);
    m.counter("wharf_http_requests_total", "HTTP requests by status code.", "code=\"" + std::to_string(status_) + "\"")
        .inc();
  }
  if (!keep_alive_) {
    if (!message_complete_ && !transport_->secure()) {
      linger();
    } else {
      close();
    }
    return;
  }
  if (message_complete_) {
    finishRequest();
  }
  // Otherwise the rest of the body is read and dropped; onMessageComplete finishes.
}

void Connection::linger() {
  constexpr uint64_t kLingerMs = 2000;
  lingering_ = true;
  ::shutdown(transport_->fd(), SHUT_WR);
  if (ex_) {
    ex_->conn_ = nullptr;
    ex_->on_abort_ = nullptr;
    ex_.reset();
  }
  poller_->watch(Poller::kReadable);
  timer_.start(kLingerMs, [this] { close(); });
}

void Connection::finishRequest() {
  if (ex_) {
    ex_->conn_ = nullptr;
    ex_->on_abort_ = nullptr;
    ex_.reset();
  }
  request_started_ = false;
  message_complete_ = false;
  keepBodyBuffer(std::move(body_buf_), bodyBufferCapacity());  // an idle connection keeps no megabytes
  body_buf_ = std::string();
  body_cb_ = nullptr;
  discard_body_ = false;
  if (shutting_down_) {
    close();
    return;
  }
  // Parse what was pipelined behind this request.
  if (in_pos_ < in_.size()) {
    std::string pending;
    pending.swap(in_);
    size_t pos = in_pos_;
    in_pos_ = 0;
    parse(pending.data() + pos, pending.size() - pos);
    if (closing_) return;
    deliverBody();
  }
  if (!closing_) {
    updateInterest();
    updateTimer();
  }
}

void Connection::failRequest(Code code, const std::string& why) {
  logDebug("bad request", {{"peer", peer_}, {"status", errorInfo(code).http_status}, {"reason", why}});
  keep_alive_ = false;
  if (ex_ && ex_->responded_) {
    close();  // a malformed body after a response was started: nothing more to say
    return;
  }
  if (ex_) {
    // The body turned out malformed while the handler was reading it.
    auto cb = std::move(body_cb_);
    body_cb_ = nullptr;
    if (cb) {
      runHandler([&] { cb(Status(code, "malformed request body: " + why), {}, false); });
    }
    if (closing_ || !ex_ || ex_->responded_) return;
    // The handler has not answered (yet): the client hears why now; a later answer
    // from the handler is dropped (the exchange is answered once).
    respondError(Status(code, "malformed request body: " + why));
    return;
  }
  // The stream cannot be resynchronised after a malformed head: answer, then close.
  ex_ = std::make_shared<Exchange>();
  ex_->loop_ = &loop_;
  ex_->conn_ = this;
  ex_->start_ms_ = monotonicMillis();
  ex_->request_.id = newRequestId();
  message_complete_ = true;
  head_only_ = false;
  head_deadline_ms_ = 0;
  respondError(Status(code, why));
}

void Connection::respondError(const Status& status) {
  Response r = Response::error(status);
  r.headers.add("X-Request-Id", ex_->request_.id);
  respond(std::move(r));
}

// --- readiness and timeouts -------------------------------------------------------

bool Connection::wantRead() const {
  if (closing_ || body_failed_ || in_pos_ < in_.size()) return false;
  if (!ex_) return true;
  if (message_complete_) return false;
  if (discard_body_) return true;
  return body_buf_.size() < limits_.body_buffer_bytes;
}

void Connection::updateInterest() {
  if (!poller_ || lingering_) return;
  int events = 0;
  bool read = wantRead();
  if (read) events |= Poller::kReadable;
  if (read && transport_->secure() && !(poller_->watching() & Poller::kReadable)) {
    // Bytes TLS already decrypted are not signalled by the socket: look now.
    loop_.post([this] {
      if (!closing_) doRead();
    });
  }
  if (write_blocked_) events |= Poller::kWritable;
  poller_->watch(events);
}

void Connection::updateTimer() {
  if (closing_ || lingering_) return;
  if (write_blocked_) {
    // Writing: progress restarts the wait.
    body_window_ = false;
    timer_.start(limits_.io_timeout_ms, [this] {
      HttpMetrics::get().write_timeouts.inc();
      logDebug("connection timed out writing", {{"peer", peer_}});
      close();
    });
    return;
  }
  if (!wantRead()) {
    body_window_ = false;
    if (body_failed_ && ex_ && !ex_->responded_) {
      // The handler was told the body timed out: it answers, or the connection goes.
      timer_.start(limits_.io_timeout_ms, [this] { close(); });
      return;
    }
    timer_.stop();
    return;
  }
  if (!ex_) {
    body_window_ = false;
    if (request_started_ || head_deadline_ms_ != 0) {
      // A request head is due: one deadline for all of it, however it trickles in.
      if (head_deadline_ms_ == 0) head_deadline_ms_ = monotonicMillis() + limits_.header_timeout_ms;
      uint64_t now = monotonicMillis();
      uint64_t left = head_deadline_ms_ > now ? head_deadline_ms_ - now : 0;
      timer_.start(left, [this] { onHeadTimeout(); });
      return;
    }
    timer_.start(limits_.idle_timeout_ms, [this] {
      HttpMetrics::get().idle_timeouts.inc();
      logDebug("idle connection closed", {{"peer", peer_}});
      close();
    });
    return;
  }
  // A request body: the client's turn unless the handler holds what was read, or the
  // client waits for a "100 Continue" the handler has not asked for yet.
  bool waiting_for_continue = ex_->request_.expect_continue && !continue_sent_ && !discard_body_;
  bool client_turn = body_cb_ != nullptr || discard_body_ || (!body_requested_ && !waiting_for_continue);
  if (!client_turn) {
    body_window_ = false;
    timer_.stop();
    return;
  }
  if (body_window_) return;  // the running window goes on: bytes do not restart it
  body_window_ = true;
  window_bytes_ = body_seen_;
  timer_.start(limits_.io_timeout_ms, [this] { onBodyWindow(); });
}

void Connection::onHeadTimeout() {
  HttpMetrics::get().head_timeouts.inc();
  logDebug("request head timed out", {{"peer", peer_}, {"started", request_started_}});
  if (!request_started_) {
    close();  // not a byte of a request: nothing to answer
    return;
  }
  failRequest(Code::kTimeout,
              "the request head did not arrive within " + std::to_string(limits_.header_timeout_ms / 1000) + " s");
}

void Connection::onBodyWindow() {
  body_window_ = false;
  uint64_t got = body_seen_ - window_bytes_;
  uint64_t need = std::max<uint64_t>(1, limits_.body_min_rate * limits_.io_timeout_ms / 1000);
  if (got >= need) {
    updateTimer();  // fast enough: the next window
    return;
  }
  HttpMetrics::get().body_timeouts.inc();
  logDebug("request body too slow", {{"peer", peer_}, {"bytes", got}, {"window_ms", limits_.io_timeout_ms}});
  keep_alive_ = false;
  if (ex_ && !ex_->responded_ && body_cb_) {
    // The handler is reading the body: it answers the error (a 408), then the connection closes.
    body_failed_ = true;
    auto cb = std::move(body_cb_);
    body_cb_ = nullptr;
    runHandler([&] {
      cb(Status(Code::kTimeout, "the request body arrived slower than " + std::to_string(limits_.body_min_rate) +
                                    " bytes/s"),
         {}, false);
    });
    if (!closing_) {
      updateInterest();
      updateTimer();
    }
    return;
  }
  close();
}

// --- Exchange ---------------------------------------------------------------------

void Exchange::readBody(BodyCallback cb) {
  if (conn_ == nullptr) {
    cb(Status(Code::kCancelled, "client connection closed"), {}, false);
    return;
  }
  conn_->readBody(std::move(cb));
}

void Exchange::recycleBody(std::string piece) {
  if (conn_ != nullptr) keepBodyBuffer(std::move(piece), conn_->bodyBufferCapacity());
}

void Exchange::readFullBody(size_t max_bytes, std::function<void(Status, std::string)> cb) {
  const auto& len = request_.content_length;
  if (len && *len > max_bytes) {
    cb(Status(Code::kTooLarge, "body of " + std::to_string(*len) + " bytes is over the limit of " +
                                   std::to_string(max_bytes)),
       {});
    return;
  }
  auto acc = std::make_shared<std::string>();
  auto self = shared_from_this();
  auto step = std::make_shared<std::function<void(Status, std::string, bool)>>();
  *step = [self, acc, max_bytes, cb, step](Status st, std::string data, bool end) {
    // Terminal branches drop the self-reference (the closure owns *step) only after
    // copying what they still need.
    auto finish = [&](Status result, std::string body) {
      auto done = cb;
      auto keep = step;
      *keep = nullptr;
      done(std::move(result), std::move(body));
    };
    if (!st.isOk()) return finish(st, {});
    acc->append(data);
    self->recycleBody(std::move(data));
    if (acc->size() > max_bytes) {
      return finish(Status(Code::kTooLarge, "body is over the limit of " + std::to_string(max_bytes) + " bytes"), {});
    }
    if (end) return finish(Status::ok(), std::move(*acc));
    self->readBody(*step);
  };
  readBody(*step);
}

void Exchange::respond(Response response) {
  if (conn_ == nullptr || responded_) return;
  conn_->respond(std::move(response));
}

}  // namespace wharf
