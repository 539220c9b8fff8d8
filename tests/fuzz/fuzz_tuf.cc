// Fuzzes what the trust server and the edges read from peers: TUF envelopes, roots and
// their keys and certificates, whole repositories (verifyRepository over a JSON object of
// role -> file, as tests/fuzz/corpus/tuf has them), delegations, and cosign payloads.
// Every reader ends in OK or kInvalidArgument; what verifies names SHA-256 targets.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/base/json_body.h"
#include "shared/tuf/cosign.h"
#include "shared/tuf/repository.h"
#include "tests/fuzz/fuzz_support.h"

using namespace wharf;

namespace {

const std::string kGun = "fuzz.example:5000/team/app";
constexpr int64_t kNowMs = 1'800'000'000'000;  // the seeds are valid then (2027)

void expectInvalid(const Status& s, const char* what) {
  if (!s.isOk() && s.code() != Code::kInvalidArgument) wharf::fuzz::violated(what, s.message());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (256 << 10)) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  expectInvalid(tuf::parseSigned(text, "Targets").status(), "parseSigned");
  expectInvalid(tuf::parseRoot(text).status(), "parseRoot");
  expectInvalid(tuf::validateRoot(text, nullptr, kGun, kNowMs).status(), "validateRoot");
  expectInvalid(tuf::cosignPayloadDigest(text).status(), "cosignPayloadDigest");

  if (!jsonNestedWithin(text, 32)) return 0;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return 0;
  std::map<std::string, std::string> files;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.value().is_string()) files[it.key()] = it.value().get<std::string>();
  auto repo = tuf::verifyRepository(kGun, files, nullptr, kNowMs);
  expectInvalid(repo.status(), "verifyRepository");
  if (repo.isOk()) {
    for (const auto& [name, t] : repo->targets) {
      if (t.sha256_hex.size() != 64) wharf::fuzz::violated("a target without a SHA-256", name);
      (void)repo->find(name, t.sha256_hex, kNowMs);
    }
    // Pinned to its own root, the same files verify again.
    if (auto root = tuf::parseRoot(files["root"]); root.isOk())
      if (!tuf::verifyRepository(kGun, files, &*root, kNowMs).isOk()) wharf::fuzz::violated("not stable under its own pin");
  }
  if (auto targets = tuf::parseSigned(files["targets"], "Targets"); targets.isOk())
    for (const auto& [role, bytes] : files)
      if (role.rfind("targets/", 0) == 0) expectInvalid(tuf::delegationOf(*targets, "targets", role).status(), "delegationOf");
  return 0;
}
