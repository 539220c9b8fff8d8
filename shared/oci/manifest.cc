#include "shared/oci/manifest.h"

#include "shared/base/json_body.h"
#include "shared/oci/media_types.h"

namespace wharf {
namespace {

constexpr size_t kMaxDepth = 64;

Status invalid(std::string msg) { return Status(Code::kManifestInvalid, std::move(msg)); }

Result<Descriptor> parseDescriptor(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return invalid(where + " is not an object");
  Descriptor d;
  auto mt = j.find("mediaType");
  if (mt == j.end() || !mt->is_string() || mt->get_ref<const std::string&>().empty()) {
    return invalid(where + ".mediaType is missing");
  }
  d.media_type = mt->get<std::string>();
  auto dg = j.find("digest");
  if (dg == j.end() || !dg->is_string()) return invalid(where + ".digest is missing");
  auto digest = Digest::parse(dg->get_ref<const std::string&>());
  if (!digest.isOk()) return invalid(where + ".digest: " + digest.status().message());
  d.digest = *digest;
  auto sz = j.find("size");
  if (sz == j.end() || !sz->is_number_integer() || sz->get<int64_t>() < 0) {
    return invalid(where + ".size must be a non-negative integer");
  }
  d.size = sz->get<int64_t>();
  if (auto at = j.find("artifactType"); at != j.end()) {
    if (!at->is_string()) return invalid(where + ".artifactType must be a string");
    d.artifact_type = at->get<std::string>();
  }
  if (auto an = j.find("annotations"); an != j.end() && !an->is_null()) {
    if (!an->is_object()) return invalid(where + ".annotations must be an object");
    for (auto it = an->begin(); it != an->end(); ++it) {
      if (!it.value().is_string()) return invalid(where + ".annotations values must be strings");
    }
    d.annotations = *an;
  }
  if (auto urls = j.find("urls"); urls != j.end() && !urls->is_null()) {
    if (!urls->is_array()) return invalid(where + ".urls must be an array");
    d.has_urls = !urls->empty();
  }
  return d;
}

Status parseDescriptorList(const nlohmann::json& doc, const char* key, std::vector<Descriptor>* out) {
  auto it = doc.find(key);
  if (it == doc.end()) return Status::ok();
  if (!it->is_array()) return invalid(std::string(key) + " must be an array");
  out->reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    auto d = parseDescriptor((*it)[i], std::string(key) + "[" + std::to_string(i) + "]");
    if (!d.isOk()) return d.status();
    out->push_back(std::move(d).value());
  }
  return Status::ok();
}

}  // namespace

nlohmann::json Descriptor::toJson() const {
  nlohmann::json j = {{"mediaType", media_type}, {"digest", digest.str()}, {"size", size}};
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  if (annotations.is_object() && !annotations.empty()) j["annotations"] = annotations;
  return j;
}

std::string Manifest::effectiveArtifactType() const {
  if (!artifact_type.empty()) return artifact_type;
  if (config) return config->media_type;
  return "";
}

Result<Manifest> parseManifest(std::string_view body, std::string_view content_type) {
  if (body.size() > kMaxManifestBytes) return Status(Code::kTooLarge, "manifest is larger than 4 MiB");
  if (!jsonNestedWithin(body, kMaxDepth)) return invalid("manifest nests deeper than 64 levels");
  nlohmann::json doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return invalid("manifest is not valid JSON");
  if (!doc.is_object()) return invalid("manifest is not a JSON object");

  std::string ct = media::stripParameters(content_type);
  if (ct == media::kDockerSchema1 || ct == media::kDockerSchema1Signed) {
    return invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI");
  }
  auto sv = doc.find("schemaVersion");
  if (sv == doc.end() || !sv->is_number_integer()) return invalid("schemaVersion is missing");
  if (sv->get<int64_t>() == 1) return invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI");
  if (sv->get<int64_t>() != 2) return invalid("schemaVersion must be 2");

  Manifest m;
  std::string doc_type;
  if (auto mt = doc.find("mediaType"); mt != doc.end()) {
    if (!mt->is_string()) return invalid("mediaType must be a string");
    doc_type = mt->get<std::string>();
  }
  bool has_layers = doc.contains("layers");
  bool has_manifests = doc.contains("manifests");
  bool has_config = doc.contains("config");
  if (has_manifests && (has_layers || has_config)) {
    return invalid("ambiguous manifest: it has both \"manifests\" and \"layers\"/\"config\"");
  }
  // A Content-Type of application/json or none makes no claim.
  bool ct_claims = !ct.empty() && ct != "application/json" && ct != "application/octet-stream";
  if (!doc_type.empty() && ct_claims && doc_type != ct) {
    return invalid("mediaType \"" + doc_type + "\" does not match Content-Type \"" + std::string(ct) + "\"");
  }
  std::string type = !doc_type.empty() ? doc_type : ct_claims ? ct
                                                     : has_manifests ? std::string(media::kOciIndex)
                                                                     : std::string(media::kOciManifest);
  if (!media::isManifest(type) && !media::isIndex(type)) {
    return invalid("unsupported manifest media type \"" + type + "\"");
  }
  m.media_type = type;
  m.is_index = media::isIndex(type);
  if (m.is_index && (has_layers || has_config)) return invalid("an index must not have layers or config");
  if (!m.is_index && has_manifests) return invalid("an image manifest must not have manifests");

  if (auto at = doc.find("artifactType"); at != doc.end()) {
    if (!at->is_string()) return invalid("artifactType must be a string");
    m.artifact_type = at->get<std::string>();
  }
  if (auto an = doc.find("annotations"); an != doc.end() && !an->is_null()) {
    if (!an->is_object()) return invalid("annotations must be an object");
    for (auto it = an->begin(); it != an->end(); ++it) {
      if (!it.value().is_string()) return invalid("annotations values must be strings");
    }
    m.annotations = *an;
  }
  if (m.is_index) {
    if (!has_manifests) return invalid("index has no manifests array");
    WHARF_RETURN_IF_ERROR(parseDescriptorList(doc, "manifests", &m.manifests));
  } else {
    if (!has_config) return invalid("image manifest has no config");
    auto cfg = parseDescriptor(doc["config"], "config");
    if (!cfg.isOk()) return cfg.status();
    m.config = std::move(cfg).value();
    if (!has_layers && type != media::kOciManifest) return invalid("image manifest has no layers array");
    WHARF_RETURN_IF_ERROR(parseDescriptorList(doc, "layers", &m.layers));
  }
  if (auto sub = doc.find("subject"); sub != doc.end() && !sub->is_null()) {
    auto s = parseDescriptor(*sub, "subject");
    if (!s.isOk()) return s.status();
    m.subject = std::move(s).value();
  }
  return m;
}

}  // namespace wharf
