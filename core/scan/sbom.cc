#include "core/scan/sbom.h"

#include <set>

#include "core/scan/vuln_db.h"
#include "shared/base/clock.h"
#include "shared/base/ids.h"
#include "shared/base/json_body.h"

namespace wharf {

namespace {

using nlohmann::json;

// purl-spec: everything but the unreserved characters is percent-encoded.
std::string pct(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string pctPath(std::string_view s) {
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t slash = s.find('/', start);
    out += pct(s.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) return out;
    out += '/';
    start = slash + 1;
  }
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

json osReleaseToJson(const OsRelease& os) {
  if (os.empty()) return nullptr;
  return {{"id", os.id}, {"version_id", os.version_id}, {"pretty_name", os.pretty_name}};
}

OsRelease osReleaseFromJson(const json& j) {
  OsRelease os;
  if (!j.is_object()) return os;
  os.id = jsonStringOr(j, "id");
  os.version_id = jsonStringOr(j, "version_id");
  os.pretty_name = jsonStringOr(j, "pretty_name");
  return os;
}

std::string purlOf(const Package& p, const OsRelease& os) {
  std::string ns, name = p.name;
  std::vector<std::pair<std::string, std::string>> qualifiers;
  if (p.type == "deb" || p.type == "rpm" || p.type == "apk") {
    ns = !os.id.empty() ? lower(os.id) : (p.type == "deb" ? "debian" : p.type == "apk" ? "alpine" : "");
    if (!p.arch.empty()) qualifiers.emplace_back("arch", p.arch);
    if (!os.version_id.empty())
      qualifiers.emplace_back("distro", p.type == "apk" ? os.version_id : lower(os.id) + "-" + os.version_id);
    if (!p.source_name.empty() && p.source_name != p.name) {
      std::string upstream = p.source_name;
      if (!p.source_version.empty() && p.source_version != p.version) upstream += "@" + p.source_version;
      qualifiers.emplace_back("upstream", upstream);
    }
  } else if (p.type == "maven") {
    auto colon = p.name.find(':');
    if (colon != std::string::npos) {
      ns = p.name.substr(0, colon);
      name = p.name.substr(colon + 1);
    }
  } else if (p.type == "golang" || p.type == "npm") {
    auto slash = p.name.rfind('/');
    if (slash != std::string::npos) {
      ns = p.name.substr(0, slash);
      name = p.name.substr(slash + 1);
    }
  } else if (p.type == "pypi") {
    name = lower(name);
    for (char& c : name)
      if (c == '_') c = '-';
  }
  std::sort(qualifiers.begin(), qualifiers.end());
  std::string out = "pkg:" + p.type + "/";
  if (!ns.empty()) out += pctPath(ns) + "/";
  out += pct(name);
  if (!p.version.empty()) out += "@" + pct(p.version);
  for (size_t i = 0; i < qualifiers.size(); ++i)
    out += (i == 0 ? "?" : "&") + qualifiers[i].first + "=" + pct(qualifiers[i].second);
  return out;
}

void describePackages(json& result) {
  if (!result.contains("packages") || !result["packages"].is_array()) return;
  OsRelease os = osReleaseFromJson(result.value("os", json()));
  for (auto& pj : result["packages"]) {
    auto p = packageFromJson(pj);
    if (!p.isOk()) continue;
    pj["purl"] = purlOf(*p, os);
    pj["ecosystem"] = matchKeyOf(*p, os).ecosystem;
  }
}

json spdxDocument(const json& result, const std::string& repository, const std::string& digest,
                  const std::string& namespace_uri) {
  OsRelease os = osReleaseFromJson(result.value("os", json()));
  std::string hex = digest.substr(digest.find(':') + 1);
  json image = {{"SPDXID", "SPDXRef-Image"},
                {"name", repository},
                {"versionInfo", digest},
                {"downloadLocation", "NOASSERTION"},
                {"filesAnalyzed", false},
                {"primaryPackagePurpose", "CONTAINER"},
                {"checksums", json::array({{{"algorithm", digest.rfind("sha512:", 0) == 0 ? "SHA512" : "SHA256"},
                                            {"checksumValue", hex}}})},
                {"externalRefs", json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                                               {"referenceType", "purl"},
                                               {"referenceLocator", "pkg:oci/" + pct(repository.substr(repository.rfind('/') + 1)) +
                                                                        "@" + pct(digest) + "?repository_url=" +
                                                                        pct(repository)}}})}};
  json packages = json::array({image});
  json relationships = json::array(
      {{{"spdxElementId", "SPDXRef-DOCUMENT"}, {"relationshipType", "DESCRIBES"}, {"relatedSpdxElement", "SPDXRef-Image"}}});
  size_t n = 0;
  for (const auto& pj : result.value("packages", json::array())) {
    auto p = packageFromJson(pj);
    if (!p.isOk()) continue;
    std::string id = "SPDXRef-Package-" + std::to_string(++n);
    json pkg = {{"SPDXID", id},
                {"name", p->name},
                {"versionInfo", p->version},
                {"downloadLocation", "NOASSERTION"},
                {"filesAnalyzed", false},
                {"primaryPackagePurpose", p->type == "golang" ? "APPLICATION" : "LIBRARY"},
                {"sourceInfo", "recorded in /" + p->path + (p->layer.empty() ? "" : " of layer " + p->layer)},
                {"externalRefs", json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                                               {"referenceType", "purl"},
                                               {"referenceLocator", purlOf(*p, os)}}})}};
    packages.push_back(std::move(pkg));
    relationships.push_back({{"spdxElementId", "SPDXRef-Image"}, {"relationshipType", "CONTAINS"}, {"relatedSpdxElement", id}});
  }
  int64_t created = result.value("scanned_at", int64_t(0));
  return {{"spdxVersion", "SPDX-2.3"},
          {"dataLicense", "CC0-1.0"},
          {"SPDXID", "SPDXRef-DOCUMENT"},
          {"name", repository + "@" + digest},
          {"documentNamespace", namespace_uri},
          {"creationInfo", {{"created", formatRfc3339(created).substr(0, 19) + "Z"}, {"creators", json::array({"Tool: wharf-core"})}}},
          {"packages", std::move(packages)},
          {"relationships", std::move(relationships)}};
}

json cycloneDxDocument(const json& result, const std::string& repository, const std::string& digest) {
  OsRelease os = osReleaseFromJson(result.value("os", json()));
  json components = json::array();
  std::set<std::string> refs;
  if (!os.empty())
    components.push_back({{"type", "operating-system"}, {"bom-ref", "os"}, {"name", os.id}, {"version", os.version_id},
                          {"description", os.pretty_name}});
  for (const auto& pj : result.value("packages", json::array())) {
    auto p = packageFromJson(pj);
    if (!p.isOk()) continue;
    std::string purl = purlOf(*p, os);
    std::string ref = purl;
    // Two copies of one package (two node_modules trees) are two components.
    for (int i = 2; !refs.insert(ref).second; ++i) ref = purl + "#" + std::to_string(i);
    json props = json::array({{{"name", "wharf:path"}, {"value", "/" + p->path}}});
    if (!p->layer.empty()) props.push_back({{"name", "wharf:layer"}, {"value", p->layer}});
    components.push_back({{"type", p->type == "golang" ? "application" : "library"},
                          {"bom-ref", ref},
                          {"name", p->name},
                          {"version", p->version},
                          {"purl", purl},
                          {"properties", std::move(props)}});
  }
  int64_t created = result.value("scanned_at", int64_t(0));
  return {{"bomFormat", "CycloneDX"},
          {"specVersion", "1.5"},
          {"serialNumber", "urn:uuid:" + newUuid()},
          {"version", 1},
          {"metadata",
           {{"timestamp", formatRfc3339(created).substr(0, 19) + "Z"},
            {"tools", {{"components", json::array({{{"type", "application"}, {"name", "wharf-core"}}})}}},
            {"component", {{"type", "container"}, {"bom-ref", "image"}, {"name", repository}, {"version", digest}}}}},
          {"components", std::move(components)}};
}

}  // namespace wharf
