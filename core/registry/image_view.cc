#include "core/registry/image_view.h"

#include "shared/base/strings.h"

#include "shared/base/json_body.h"
#include "shared/oci/manifest.h"

namespace wharf {

namespace {

using nlohmann::json;

constexpr uint64_t kMaxConfigBytes = 8u << 20;

bool startsWith(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

json descriptorJson(const Descriptor& d) {
  return {{"digest", d.digest.str()}, {"media_type", d.media_type}, {"size", d.size}};
}

}  // namespace

std::string dockerfileLine(const std::string& created_by) {
  std::string s = trimSpace(created_by);
  // BuildKit: "RUN /bin/sh -c make # buildkit", "COPY . /src # buildkit", "ENV A=1".
  if (s.size() > 10 && s.compare(s.size() - 10, 10, "# buildkit") == 0) s = trimSpace(s.substr(0, s.size() - 10));
  if (startsWith(s, "RUN ")) s = trimSpace(s.substr(4));
  // Build arguments recorded before the shell: "|2 A=1 B=2 /bin/sh -c ...".
  if (startsWith(s, "|")) {
    size_t sh = s.find("/bin/sh -c ");
    if (sh != std::string::npos) s = s.substr(sh);
  }
  for (const char* shell : {"/bin/sh -c ", "/bin/bash -c ", "sh -c "}) {
    if (!startsWith(s, shell)) continue;
    std::string rest = trimSpace(s.substr(std::string(shell).size()));
    if (startsWith(rest, "#(nop)")) return trimSpace(rest.substr(6));
    return "RUN " + rest;
  }
  return s;
}

Result<json> imageView(Registry& registry, const std::string& repo, const std::string& digest) {
  auto record = registry.metadata().manifest(repo, digest);
  if (!record.isOk()) return record.status();
  auto body = registry.readContent(digest, kMaxManifestBytes);
  if (!body.isOk()) return body.status();
  auto m = parseManifest(*body, record->media_type);
  if (!m.isOk()) return m.status();
  json out = {{"repository", repo}, {"digest", digest}, {"media_type", record->media_type}, {"size", record->size},
              {"pushed", record->pushed_ms}};
  if (m->subject) out["subject"] = descriptorJson(*m->subject);
  if (!m->artifact_type.empty()) out["artifact_type"] = m->artifact_type;
  if (m->annotations.is_object() && !m->annotations.empty()) out["annotations"] = m->annotations;
  if (m->is_index) {
    // The platforms, from the document itself (parseManifest keeps descriptors only).
    json raw = json::parse(*body, nullptr, false);
    json children = json::array();
    for (size_t i = 0; i < m->manifests.size(); ++i) {
      json d = descriptorJson(m->manifests[i]);
      if (raw.is_object() && raw.contains("manifests") && raw["manifests"].is_array() && i < raw["manifests"].size() &&
          raw["manifests"][i].is_object() && raw["manifests"][i].contains("platform") &&
          raw["manifests"][i]["platform"].is_object())
        d["platform"] = raw["manifests"][i]["platform"];
      children.push_back(std::move(d));
    }
    out["manifests"] = children;
    return out;
  }
  json layers = json::array();
  uint64_t total = 0;
  for (const auto& l : m->layers) {
    layers.push_back(descriptorJson(l));
    total += l.size;
  }
  out["layers"] = layers;
  out["total_size"] = total;
  if (!m->config) return out;
  out["config_digest"] = m->config->digest.str();
  auto cfg_bytes = registry.readContent(m->config->digest.str(), kMaxConfigBytes);
  if (!cfg_bytes.isOk()) return out;  // an artifact whose config is not stored here
  if (!jsonNestedWithin(*cfg_bytes, 64)) return out;
  json cfg = json::parse(*cfg_bytes, nullptr, false);
  if (!cfg.is_object()) return out;
  json view = json::object();
  for (const char* k : {"architecture", "os", "variant", "created", "author"})
    if (cfg.contains(k) && cfg[k].is_string()) view[k] = cfg[k];
  const json& c = cfg.contains("config") && cfg["config"].is_object() ? cfg["config"] : json::object();
  auto copy = [&](const char* from, const char* to) {
    if (c.contains(from) && !c[from].is_null()) view[to] = c[from];
  };
  copy("Labels", "labels");
  copy("Env", "env");
  copy("Entrypoint", "entrypoint");
  copy("Cmd", "cmd");
  copy("WorkingDir", "working_dir");
  copy("User", "user");
  copy("ExposedPorts", "exposed_ports");
  copy("StopSignal", "stop_signal");
  out["config"] = view;
  // History: one entry per build step; those that made a layer take the next one.
  json history = json::array();
  size_t next_layer = 0;
  if (cfg.contains("history") && cfg["history"].is_array()) {
    for (const auto& h : cfg["history"]) {
      if (!h.is_object()) continue;
      bool empty = h.value("empty_layer", false);
      std::string created_by = jsonStringOr(h, "created_by");
      json e = {{"created", jsonStringOr(h, "created")},
                {"created_by", created_by},
                {"instruction", dockerfileLine(created_by)},
                {"empty_layer", empty}};
      if (!jsonStringOr(h, "comment").empty()) e["comment"] = jsonStringOr(h, "comment");
      if (!empty && next_layer < m->layers.size()) {
        e["layer"] = m->layers[next_layer].digest.str();
        e["layer_size"] = m->layers[next_layer].size;
        ++next_layer;
      }
      history.push_back(std::move(e));
    }
  }
  out["history"] = history;
  return out;
}

}  // namespace wharf
