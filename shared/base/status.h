// Status and Result<T>: the one error currency of Wharf.
//
// Anything a peer, a client or the disk can cause is a Status; bugs are WHARF_ASSERTs.
// No exception crosses a module boundary: third-party code that can throw
// (nlohmann::json) is called in its non-throwing forms.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace wharf {

// Error codes. The registry codes are those of the OCI distribution spec; the generic
// ones cover everything else. kErrorTable in status.cc maps each code to the spec's
// error code string and an HTTP status: that table is the only such mapping.
enum class Code : uint8_t {
  kOk = 0,
  // Generic.
  kInvalidArgument,   // 400 a malformed request or value
  kNotFound,          // 404 a route or object that does not exist
  kConflict,          // 409
  kTooLarge,          // 413 a body or value over a limit
  kTimeout,           // 408
  kUnavailable,       // 503 shutting down, overloaded
  kIoError,           // 500 the disk failed
  kCorruption,        // 500 stored data does not verify
  kInternal,          // 500 a bug or an unexpected state
  kCancelled,         // the peer went away; never sent
  // OCI distribution spec.
  kBlobUnknown,         // 404
  kBlobUploadInvalid,   // 400
  kBlobUploadUnknown,   // 404
  kDigestInvalid,       // 400
  kManifestBlobUnknown, // 400 (as distribution and the spec's error table use it)
  kManifestInvalid,     // 400
  kManifestUnknown,     // 404
  kNameInvalid,         // 400
  kNameUnknown,         // 404
  kSizeInvalid,         // 400
  kTagInvalid,          // 400
  kRangeInvalid,        // 416
  kUnauthorized,        // 401
  kDenied,              // 403
  kUnsupported,         // 415 / 405
  kTooManyRequests,     // 429
  kMethodNotAllowed,    // 405
  // HTTP layer and storage.
  kUriTooLong,          // 414
  kHeadersTooLarge,     // 431
  kNotImplemented,      // 501 a transfer coding or feature the server does not implement
  kInsufficientStorage, // 507 the disk (or its reserve) is full: writes refused, reads go on
};

struct ErrorInfo {
  std::string_view oci_code;  // "BLOB_UNKNOWN", ...; "UNKNOWN" for internal errors
  int http_status;
};
const ErrorInfo& errorInfo(Code code);
std::string_view codeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool isOk() const { return code_ == Code::kOk; }
  explicit operator bool() const { return isOk(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string toString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status error(Code code, std::string message) { return Status(code, std::move(message)); }

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool isOk() const { return value_.has_value(); }
  explicit operator bool() const { return isOk(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

[[noreturn]] void assertFailed(const char* expr, const char* file, int line);

}  // namespace wharf

#define WHARF_ASSERT(cond) \
  do { if (!(cond)) ::wharf::assertFailed(#cond, __FILE__, __LINE__); } while (0)

// Propagates a non-OK Status from the current function.
#define WHARF_RETURN_IF_ERROR(expr) \
  do { ::wharf::Status _st = (expr); if (!_st.isOk()) return _st; } while (0)
