#include <catch2/catch.hpp>

#include "shared/base/status.h"

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
