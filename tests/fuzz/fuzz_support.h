// Shared by the fuzz targets: a fixed signing key (so that the committed token seeds stay
// valid) and small helpers. Test-only: the key signs nothing outside the fuzzers.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace wharf::fuzz {

// P-256, PKCS#8. Its public half is derived at start-up (publicPemOf).
constexpr const char* kTokenKeyPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgb1yv//HL5y5ouKXU\n"
    "7VziycbQ2BlzOzxmFKSnKJow36ShRANCAASckHFR5gDxjJz4oHaMzC2Bj6SES3e4\n"
    "LduYGVhlkil4ijimsADjglObH9m9myjMOMbq+Wkf78TsWf/JylZyqypk\n"
    "-----END PRIVATE KEY-----\n";
constexpr const char* kTokenKid = "fuzz-key";
constexpr const char* kIssuer = "wharf-core";
constexpr const char* kAudience = "wharf";
// The verifiers' "now": the committed token seeds are valid around it.
constexpr int64_t kNowS = 1'700'000'000;

// An invariant the code under test broke: report it and abort (libFuzzer saves the input).
[[noreturn]] inline void violated(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz invariant violated: %s %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace wharf::fuzz

#define FUZZ_CHECK(cond, detail) \
  do {                           \
    if (!(cond)) ::wharf::fuzz::violated(#cond, (detail)); \
  } while (0)
