#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "shared/base/status.h"

// Each file's own names: the test binaries are unity builds.
namespace status_test {

using namespace wharf;

TEST_CASE("every error code maps to an OCI code and HTTP status") {
  CHECK(errorInfo(Code::kBlobUnknown).oci_code == "BLOB_UNKNOWN");
  CHECK(errorInfo(Code::kBlobUnknown).http_status == 404);
  CHECK(errorInfo(Code::kDigestInvalid).http_status == 400);
  CHECK(errorInfo(Code::kRangeInvalid).http_status == 416);
  CHECK(errorInfo(Code::kTooLarge).http_status == 413);
  CHECK(errorInfo(Code::kManifestBlobUnknown).oci_code == "MANIFEST_BLOB_UNKNOWN");
  for (int c = 0; c <= static_cast<int>(Code::kMethodNotAllowed); ++c) {
    bool named = codeName(static_cast<Code>(c)) != "internal" || static_cast<Code>(c) == Code::kInternal;
    CHECK(named);
  }
}

TEST_CASE("Result holds a value or a status") {
  Result<int> ok = 5;
  REQUIRE(ok.isOk());
  CHECK(*ok == 5);
  Result<int> bad = Status(Code::kNotFound, "nope");
  REQUIRE_FALSE(bad.isOk());
  CHECK(bad.status().code() == Code::kNotFound);
  CHECK(bad.status().toString() == "not_found: nope");
}

TEST_CASE("Status defaults to OK and formats codes by name") {
  Status ok;
  CHECK(ok.isOk());
  CHECK(static_cast<bool>(ok));
  CHECK(ok.code() == Code::kOk);
  CHECK(ok.toString() == "ok");
  CHECK(Status::ok().isOk());

  Status bad = error(Code::kDigestInvalid, "wrong");
  CHECK_FALSE(bad.isOk());
  CHECK_FALSE(static_cast<bool>(bad));
  CHECK(bad.message() == "wrong");
  CHECK(bad.toString() == "digest_invalid: wrong");
}

TEST_CASE("the error table has the spec's codes and statuses") {
  CHECK(codeName(Code::kOk) == "ok");
  CHECK(errorInfo(Code::kOk).http_status == 200);
  CHECK(errorInfo(Code::kInternal).oci_code == "UNKNOWN");
  CHECK(errorInfo(Code::kInternal).http_status == 500);
  CHECK(errorInfo(Code::kIoError).http_status == 500);
  CHECK(errorInfo(Code::kNameUnknown).oci_code == "NAME_UNKNOWN");
  CHECK(errorInfo(Code::kNameInvalid).http_status == 400);
  CHECK(errorInfo(Code::kManifestUnknown).http_status == 404);
  CHECK(errorInfo(Code::kBlobUploadUnknown).oci_code == "BLOB_UPLOAD_UNKNOWN");
  CHECK(errorInfo(Code::kUnauthorized).http_status == 401);
  CHECK(errorInfo(Code::kDenied).http_status == 403);
  CHECK(errorInfo(Code::kTooManyRequests).oci_code == "TOOMANYREQUESTS");
  CHECK(errorInfo(Code::kTooManyRequests).http_status == 429);
  // Every code has a distinct name.
  std::set<std::string_view> names;
  for (int c = 0; c <= static_cast<int>(Code::kMethodNotAllowed); ++c) names.insert(codeName(static_cast<Code>(c)));
  CHECK(names.size() == static_cast<size_t>(Code::kMethodNotAllowed) + 1);
}

TEST_CASE("Result moves its value out and keeps an OK-less status") {
  Result<std::string> r = std::string("payload");
  REQUIRE(r.isOk());
  CHECK(r->size() == 7);
  std::string moved = std::move(r).value();
  CHECK(moved == "payload");

  Result<std::string> e = error(Code::kConflict, "busy");
  CHECK_FALSE(static_cast<bool>(e));
  CHECK(e.status().code() == Code::kConflict);
}

namespace {
Status failsAt(int n, int* reached) {
  WHARF_RETURN_IF_ERROR(n == 1 ? error(Code::kTimeout, "one") : Status::ok());
  *reached = 1;
  WHARF_RETURN_IF_ERROR(n == 2 ? error(Code::kTimeout, "two") : Status::ok());
  *reached = 2;
  return Status::ok();
}
}  // namespace

TEST_CASE("WHARF_RETURN_IF_ERROR returns the first failure") {
  int reached = 0;
  CHECK(failsAt(1, &reached).message() == "one");
  CHECK(reached == 0);
  CHECK(failsAt(2, &reached).message() == "two");
  CHECK(reached == 1);
  CHECK(failsAt(3, &reached).isOk());
  CHECK(reached == 2);
}

}  // namespace status_test
