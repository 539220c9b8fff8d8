#include "shared/base/status.h"

#include <cstdio>
#include <cstdlib>

namespace wharf {
namespace {

struct Entry {
  Code code;
  std::string_view name;
  ErrorInfo info;
};

// The one table from error code to the spec's error code and HTTP status.
constexpr Entry kErrorTable[] = {
    {Code::kOk, "ok", {"", 200}},
    {Code::kInvalidArgument, "invalid_argument", {"UNSUPPORTED", 400}},
    {Code::kNotFound, "not_found", {"NOT_FOUND", 404}},
    {Code::kConflict, "conflict", {"CONFLICT", 409}},
    {Code::kTooLarge, "too_large", {"SIZE_INVALID", 413}},
    {Code::kTimeout, "timeout", {"TIMEOUT", 408}},
    {Code::kUnavailable, "unavailable", {"UNAVAILABLE", 503}},
    {Code::kIoError, "io_error", {"UNKNOWN", 500}},
    {Code::kCorruption, "corruption", {"UNKNOWN", 500}},
    {Code::kInternal, "internal", {"UNKNOWN", 500}},
    {Code::kCancelled, "cancelled", {"UNKNOWN", 499}},
    {Code::kBlobUnknown, "blob_unknown", {"BLOB_UNKNOWN", 404}},
    {Code::kBlobUploadInvalid, "blob_upload_invalid", {"BLOB_UPLOAD_INVALID", 400}},
    {Code::kBlobUploadUnknown, "blob_upload_unknown", {"BLOB_UPLOAD_UNKNOWN", 404}},
    {Code::kDigestInvalid, "digest_invalid", {"DIGEST_INVALID", 400}},
    {Code::kManifestBlobUnknown, "manifest_blob_unknown", {"MANIFEST_BLOB_UNKNOWN", 400}},
    {Code::kManifestInvalid, "manifest_invalid", {"MANIFEST_INVALID", 400}},
    {Code::kManifestUnknown, "manifest_unknown", {"MANIFEST_UNKNOWN", 404}},
    {Code::kNameInvalid, "name_invalid", {"NAME_INVALID", 400}},
    {Code::kNameUnknown, "name_unknown", {"NAME_UNKNOWN", 404}},
    {Code::kSizeInvalid, "size_invalid", {"SIZE_INVALID", 400}},
    {Code::kTagInvalid, "tag_invalid", {"TAG_INVALID", 400}},
    {Code::kRangeInvalid, "range_invalid", {"RANGE_INVALID", 416}},
    {Code::kUnauthorized, "unauthorized", {"UNAUTHORIZED", 401}},
    {Code::kDenied, "denied", {"DENIED", 403}},
    {Code::kUnsupported, "unsupported", {"UNSUPPORTED", 415}},
    {Code::kTooManyRequests, "too_many_requests", {"TOOMANYREQUESTS", 429}},
    {Code::kMethodNotAllowed, "method_not_allowed", {"UNSUPPORTED", 405}},
    {Code::kUriTooLong, "uri_too_long", {"UNSUPPORTED", 414}},
    {Code::kHeadersTooLarge, "headers_too_large", {"UNSUPPORTED", 431}},
    {Code::kNotImplemented, "not_implemented", {"UNSUPPORTED", 501}},
    {Code::kInsufficientStorage, "insufficient_storage", {"UNKNOWN", 507}},
};

const Entry& entry(Code code) {
  for (const Entry& e : kErrorTable) {
    if (e.code == code) return e;
  }
  return kErrorTable[static_cast<int>(Code::kInternal)];
}

}  // namespace

const ErrorInfo& errorInfo(Code code) { return entry(code).info; }
std::string_view codeName(Code code) { return entry(code).name; }

std::string Status::toString() const {
  if (isOk()) return "ok";
  std::string s(codeName(code_));
  s += ": ";
  s += message_;
  return s;
}

void assertFailed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"assertion failed\",\"expr\":\"%s\",\"at\":\"%s:%d\"}\n",
               expr, file, line);
  std::abort();
}

}  // namespace wharf
