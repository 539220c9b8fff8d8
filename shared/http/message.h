// HTTP/1.1 request and response values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "shared/base/fs.h"
#include "shared/base/status.h"

namespace wharf {

// Header list in arrival order. Names are stored lower-case; lookups are by lower-case name.
class Headers {
 public:
  struct Field {
    std::string name;
    std::string value;
  };
  void add(std::string name, std::string value);
  // Replaces every field of that name.
  void set(std::string name, std::string value);
  const std::string* get(std::string_view lower_name) const;
  const std::vector<Field>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }

 private:
  std::vector<Field> fields_;
};

struct Request {
  std::string method;
  std::string target;  // raw request-target as received
  std::string path;    // percent-decoded, validated path (see url.h)
  std::string query;   // raw query string without '?'
  Headers headers;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool expect_continue = false;
  bool keep_alive = true;
  std::string peer;  // remote address
  std::string id;    // this request's id (X-Request-Id in the response, request_id in logs)

  bool isHead() const { return method == "HEAD"; }
  // Value of the first query parameter with that name, percent-decoded.
  std::optional<std::string> queryParam(std::string_view name) const;
  // Every value of a repeated query parameter, percent-decoded.
  std::vector<std::string> queryParams(std::string_view name) const;
  bool hasBody() const { return chunked || (content_length && *content_length > 0); }
};

// A byte range of an open file, sent with sendfile(2) on plain TCP.
struct FileBody {
  std::shared_ptr<Fd> fd;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// A response body produced over time (a blob being filled from upstream, an event
// feed). The connection asks for the next piece whenever it has written what it had.
class BodySource {
 public:
  struct Piece {
    std::string data;  // bytes, or
    FileBody file;     // a file range (file.fd set)
    bool end = false;  // this is the last piece (it may be empty)
  };
  virtual ~BodySource() = default;
  // Calls cb exactly once with the next piece, or with an error: the connection then
  // closes, so a body cut short never looks complete. Called on the connection's loop
  // thread; cb must be called there too (now or later).
  virtual void next(std::function<void(Status, Piece)> cb) = 0;
  // The whole length when known (sent as Content-Length); else chunked encoding is used.
  virtual std::optional<uint64_t> length() const = 0;
};

struct Response {
  int status = 200;
  Headers headers;
  std::variant<std::monostate, std::string, FileBody, std::shared_ptr<BodySource>> body;
  // Content-Length to announce when there is no body to send (HEAD, or a body-less
  // response that describes an entity).
  std::optional<uint64_t> head_length;

  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static Response json(int status, std::string body);
  // The distribution spec's error body ({"errors":[{"code","message"}]}) with the HTTP
  // status of the Status's code (see the table in shared/base/status.cc).
  static Response error(const Status& status);
  uint64_t bodyLength() const;
};

std::string_view reasonPhrase(int status);

}  // namespace wharf
