// BlockingClient: a small blocking HTTP/1.1 client for command-line tools and tests.
// One keep-alive connection (plain TCP, or TLS verified against the system CAs or a
// given CA file); requests are sent and answered in order. It also sends raw bytes, for
// malformed-request tests. Not for event-loop threads.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/base/status.h"
#include "shared/http/message.h"
#include "shared/tls/tls.h"

namespace wharf {

struct HttpResponse {
  int status = 0;
  Headers headers;
  std::string body;
  bool closed = false;  // the server closed the connection after this response
  std::string header(const std::string& lower_name) const {
    const std::string* v = headers.get(lower_name);
    return v ? *v : "";
  }
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class BlockingClient {
 public:
  BlockingClient(std::string host, int port, int timeout_ms = 30000);
  // TLS: verify the server against ca_file (empty: the system CAs) unless insecure.
  void useTls(std::string ca_file, bool insecure = false);
  ~BlockingClient();

  // The body is sent from where it is (a large one is not copied).
  Result<HttpResponse> request(const std::string& method, const std::string& target, const HeaderList& headers = {},
                               std::string_view body = {});
  // A GET whose 200 or 206 body goes to sink piece by piece instead of into the response
  // (other statuses keep their body, for the error). An error from sink ends the transfer
  // (the connection is closed) and is returned. On a fresh connection, never retried.
  using BodySink = std::function<Status(const HttpResponse& head, std::string_view piece)>;
  Result<HttpResponse> stream(const std::string& target, const HeaderList& headers, BodySink sink);
  // Sends bytes as they are and reads one response (the connection is fresh if needed).
  Result<HttpResponse> raw(const std::string& bytes, bool head = false);
  // Sends bytes without reading.
  Status send(std::string_view bytes);
  // Reads one response from the current connection.
  Result<HttpResponse> read(bool head = false);
  void close();
  bool connected() const { return fd_ >= 0; }
  // From another thread: a request in progress (a long poll) fails now, and so does any
  // later one on this connection until close().
  void interrupt();

 private:
  Status connect();
  Result<HttpResponse> read(bool head, const BodySink* sink);
  Result<size_t> recvSome(char* buf, size_t len);
  Status sendAll(const char* data, size_t len);
  std::string host_;
  bool tls_ = false;
  bool insecure_ = false;
  std::string ca_file_;
  std::unique_ptr<TlsClient> tls_client_;
  int port_;
  int timeout_ms_;
  std::atomic<int> fd_{-1};
  std::atomic<bool> interrupted_{false};
  std::string pending_;  // bytes read past the last response
};

}  // namespace wharf
