#include "tests/support/oci_layout.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "shared/base/fs.h"
#include "shared/oci/digest.h"

namespace wharf::test {
namespace {

std::string writeBlob(const std::string& dir, const std::string& data) {
  Digest d = digestOf(data);
  std::string path = dir + "/blobs/sha256/" + d.hex();
  if (!writeFileDurable(path, data).isOk()) throw std::runtime_error("cannot write " + path);
  return d.str();
}

void octal(char* field, size_t width, uint64_t value) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(value));
}

}  // namespace

std::string randomData(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

std::string makeTar(const std::map<std::string, std::string>& files) {
  std::string out;
  for (const auto& [name, content] : files) {
    char h[512];
    std::memset(h, 0, sizeof h);
    std::snprintf(h, 100, "%s", name.c_str());
    octal(h + 100, 8, 0644);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, content.size());
    octal(h + 136, 12, 1700000000);
    std::memset(h + 148, ' ', 8);
    h[156] = '0';
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
    out.append(h, 512);
    out += content;
    out.append((512 - content.size() % 512) % 512, '\0');
  }
  out.append(1024, '\0');
  return out;
}

std::string gzip(const std::string& data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  return out;
}

LayoutResult writeOciLayout(const std::string& dir, const std::string& tag, const std::vector<ImageSpec>& images) {
  if (!makeDirs(dir + "/blobs/sha256").isOk()) throw std::runtime_error("mkdir " + dir);
  if (!writeFileDurable(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})").isOk()) {
    throw std::runtime_error("oci-layout");
  }
  LayoutResult result;
  nlohmann::json manifest_descs = nlohmann::json::array();
  for (const auto& img : images) {
    nlohmann::json layers = nlohmann::json::array();
    nlohmann::json diff_ids = nlohmann::json::array();
    for (const auto& files : img.layers) {
      std::string tar = makeTar(files);
      std::string gz = gzip(tar);
      std::string d = writeBlob(dir, gz);
      result.blobs.push_back(d);
      layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", d}, {"size", gz.size()}});
      diff_ids.push_back(digestOf(tar).str());
    }
    nlohmann::json config = {{"architecture", img.architecture},
                             {"os", "linux"},
                             {"config", nlohmann::json::object()},
                             {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
    std::string config_bytes = config.dump();
    std::string cd = writeBlob(dir, config_bytes);
    result.blobs.push_back(cd);
    nlohmann::json manifest = {
        {"schemaVersion", 2},
        {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
        {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd}, {"size", config_bytes.size()}}},
        {"layers", layers}};
    std::string mbytes = manifest.dump();
    std::string md = writeBlob(dir, mbytes);
    result.manifests.push_back(md);
    manifest_descs.push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                              {"digest", md},
                              {"size", mbytes.size()},
                              {"platform", {{"architecture", img.architecture}, {"os", "linux"}}}});
  }
  nlohmann::json top;
  if (images.size() == 1) {
    top = manifest_descs[0];
    top.erase("platform");
    result.digest = result.manifests[0];
  } else {
    nlohmann::json index = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", manifest_descs}};
    std::string ibytes = index.dump();
    result.digest = writeBlob(dir, ibytes);
    top = {{"mediaType", "application/vnd.oci.image.index.v1+json"}, {"digest", result.digest}, {"size", ibytes.size()}};
  }
  top["annotations"] = {{"org.opencontainers.image.ref.name", tag}};
  nlohmann::json index_json;
  std::string existing;
  if (readFile(dir + "/index.json", &existing).isOk()) index_json = nlohmann::json::parse(existing, nullptr, false);
  if (!index_json.is_object()) index_json = {{"schemaVersion", 2}, {"manifests", nlohmann::json::array()}};
  index_json["manifests"].push_back(top);
  if (!writeFileDurable(dir + "/index.json", index_json.dump()).isOk()) throw std::runtime_error("index.json");
  return result;
}

}  // namespace wharf::test
