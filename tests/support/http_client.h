// A small blocking HTTP/1.1 client for tests: one keep-alive connection, requests sent
// and answered in order. Also sends raw bytes, for malformed-request tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "shared/base/status.h"
#include "shared/http/message.h"

namespace wharf::test {

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

class HttpClient {
 public:
  HttpClient(std::string host, int port, int timeout_ms = 30000);
  ~HttpClient();

  Result<HttpResponse> request(const std::string& method, const std::string& target, const HeaderList& headers = {},
                               const std::string& body = "");
  // Sends bytes as they are and reads one response (the connection is fresh if needed).
  Result<HttpResponse> raw(const std::string& bytes, bool head = false);
  // Sends bytes without reading.
  Status send(const std::string& bytes);
  // Reads one response from the current connection.
  Result<HttpResponse> read(bool head = false);
  void close();
  bool connected() const { return fd_ >= 0; }

 private:
  Status connect();
  std::string host_;
  int port_;
  int timeout_ms_;
  int fd_ = -1;
  std::string pending_;  // bytes read past the last response
};

}  // namespace wharf::test
