#include "shared/tuf/cosign.h"

#include "shared/base/json_body.h"
#include "shared/tls/crypto.h"

namespace wharf::tuf {

using nlohmann::json;

std::string cosignSignatureTag(const std::string& digest) {
  std::string tag = digest;
  if (auto colon = tag.find(':'); colon != std::string::npos) tag[colon] = '-';
  return tag + ".sig";
}

Result<std::string> cosignPayloadDigest(std::string_view payload) {
  auto bad = [](const std::string& why) { return Status(Code::kInvalidArgument, "cosign payload: " + why); };
  if (payload.size() > (1u << 20) || !jsonNestedWithin(payload, 16)) return bad("not JSON, or too large");
  json j = json::parse(payload, nullptr, false);
  if (!j.is_object() || !j.contains("critical") || !j["critical"].is_object()) return bad("has no critical section");
  const json& c = j["critical"];
  if (jsonStringOr(c, "type") != "cosign container image signature")
    return bad("critical.type is not \"cosign container image signature\"");
  if (!c.contains("image") || !c["image"].is_object() || !c.contains("identity") || !c["identity"].is_object())
    return bad("critical needs image and identity");
  std::string digest = jsonStringOr(c["image"], "docker-manifest-digest");
  if (digest.empty()) return bad("critical.image.docker-manifest-digest is missing");
  return digest;
}

std::vector<std::pair<std::string, std::string>> cosignLayers(const json& manifest) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!manifest.is_object() || !manifest.contains("layers") || !manifest["layers"].is_array()) return out;
  for (const auto& l : manifest["layers"]) {
    if (!l.is_object() || !l.contains("annotations") || !l["annotations"].is_object()) continue;
    std::string sig = jsonStringOr(l["annotations"], kCosignSignatureAnnotation);
    std::string digest = jsonStringOr(l, "digest");
    if (!sig.empty() && !digest.empty()) out.emplace_back(digest, sig);
  }
  return out;
}

Result<std::string> verifyCosign(std::string_view payload, std::string_view signature_b64, const std::string& image_digest,
                                 const std::vector<std::shared_ptr<const CosignKey>>& keys) {
  bool ok = false;
  std::string der = base64Decode(std::string(signature_b64), &ok);
  if (!ok || der.empty()) return Status(Code::kInvalidArgument, "cosign signature: not base64");
  std::string by;
  for (const auto& k : keys)
    if (k->verify(payload, der)) {
      by = k->id();
      break;
    }
  if (by.empty()) return Status(Code::kInvalidArgument, "cosign signature: made by none of the policy's keys");
  auto digest = cosignPayloadDigest(payload);
  if (!digest.isOk()) return digest.status();
  if (*digest != image_digest)
    return Status(Code::kInvalidArgument, "cosign signature: signs " + *digest + ", not " + image_digest);
  return by;
}

}  // namespace wharf::tuf
