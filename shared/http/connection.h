// Connection: one HTTP/1.1 connection on a loop thread (internal to the server).
//
// A small state machine. Requests are handled one at a time in arrival order
// (pipelined requests wait, unparsed, until the previous response is written). Reading
// stops whenever the current request body has body_buffer_bytes buffered and the
// handler has not taken them, so a slow consumer never makes the server buffer a whole
// body; responses from files go out with sendfile(2) as the socket drains, so a slow
// client never makes it buffer a whole blob either. Every path ends in close().
#pragma once

#include <llhttp.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "shared/event/loop.h"
#include "shared/http/server.h"
#include "shared/net/listener.h"
#include "shared/net/transport.h"

namespace wharf {

class Connection {
 public:
  using OnClosed = std::function<void(Connection*)>;
  Connection(Loop& loop, std::unique_ptr<Transport> transport, std::string peer, const ServerLimits& limits,
             const Handler& handler, OnClosed on_closed);
  ~Connection();
  void start();
  // Closes now if idle, else after the current response.
  void beginShutdown();
  // Closes now. The Connection is deleted later on its loop (deferred delete).
  void close();

  // For Exchange.
  void readBody(Exchange::BodyCallback cb);
  // A body buffer's size: the most buffered before reads stop, and one read beyond.
  size_t bodyBufferCapacity() const { return limits_.body_buffer_bytes + kReadChunk; }
  static constexpr size_t kReadChunk = 256 * 1024;  // bytes read from the socket at once
  void respond(Response response);

 private:
  enum class Pause { kNone, kHeaders, kMessage };
  struct Segment {
    std::string data;            // bytes to write, or
    std::shared_ptr<Fd> file;    // a file range
    uint64_t offset = 0;
    uint64_t length = 0;
  };

  static int onMessageBegin(llhttp_t* p);
  static int onUrl(llhttp_t* p, const char* at, size_t len);
  static int onHeaderField(llhttp_t* p, const char* at, size_t len);
  static int onHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, size_t len);
  static int onMessageComplete(llhttp_t* p);
  static const llhttp_settings_t& settings();

  void onEvents(int events);
  void doRead();
  void parse(const char* data, size_t len);
  void dispatch();
  void deliverBody();
  void flush();
  void onResponseWritten();
  void finishRequest();
  void failRequest(Code code, const std::string& why);
  // Answers the current exchange with the OCI error body and its X-Request-Id, for
  // errors the connection itself finds. REQUIRES: ex_, not yet answered.
  void respondError(const Status& status);
  void runHandler(const std::function<void()>& fn);  // the last-resort catch
  void onHeadTimeout();
  void onBodyWindow();
  void updateInterest();
  bool wantRead() const;
  void updateTimer();
  void queue(std::string data);
  void linger();
  void pullSource();  // asks the body source for its next piece

  Loop& loop_;
  std::unique_ptr<Transport> transport_;
  std::string peer_;
  const ServerLimits& limits_;
  const Handler& handler_;
  OnClosed on_closed_;
  std::unique_ptr<Poller> poller_;
  Timer timer_;
  llhttp_t parser_;

  // Input not yet parsed (only while the parser waits for a response).
  std::string in_;
  size_t in_pos_ = 0;
  Pause pause_ = Pause::kNone;

  // The request being parsed.
  bool request_started_ = false;
  Request building_;
  std::string field_, value_;
  bool in_value_ = false;
  size_t header_bytes_ = 0;
  Code parse_error_ = Code::kOk;     // set by a callback that refused the request
  const char* parse_base_ = nullptr; // start of the buffer being parsed
  char prev_byte_ = '\0';            // the byte before it (obs-fold detection)
  uint64_t head_deadline_ms_ = 0;    // monotonic; 0 while no request head is awaited

  // Waiting for a body: bytes seen, and at the start of the current rate window.
  uint64_t body_seen_ = 0;
  uint64_t window_bytes_ = 0;
  bool body_window_ = false;         // a body rate window is running
  bool body_failed_ = false;         // the body timed out: read no more

  // The request being handled.
  std::shared_ptr<Exchange> ex_;
  bool message_complete_ = false;
  std::string body_buf_;
  Exchange::BodyCallback body_cb_;
  bool body_requested_ = false;
  bool discard_body_ = false;
  bool continue_sent_ = false;
  bool head_only_ = false;
  int status_ = 0;

  // Output.
  std::deque<Segment> out_;
  size_t out_front_done_ = 0;  // bytes of out_.front() already written
  bool response_pending_ = false;  // respond() called, bytes not all written
  bool write_blocked_ = false;
  bool keep_alive_ = true;
  bool shutting_down_ = false;
  bool closing_ = false;
  // After answering a request whose body was not read, the write side is shut and
  // input is drained for a moment before closing, so that the unread body does not
  // make the kernel reset the connection before the client has read the response.
  bool lingering_ = false;
  // A response body that arrives over time (see BodySource).
  std::shared_ptr<BodySource> source_;
  bool source_chunked_ = false;
  bool source_waiting_ = false;  // a next() call is outstanding
  bool source_done_ = true;
  bool in_flush_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace wharf
