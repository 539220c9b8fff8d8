// wharf-scanbench: the scanner's three figures, in process, on one core.
//
//   wharf-scanbench [--layer-mb 1024] [--images 10000] [--dir DIR]
//
// 1. Throughput: writes a gzip layer of --layer-mb MiB of tar (files like a distribution's:
//    text and config files, executables (ELF, read by the Go detector), a dpkg status, Python
//    and npm metadata, a jar), then times, on the same file:
//      inflate   ISA-L inflate of the whole stream, output dropped (the floor: target
//                scan <= 1.3x of it)
//      zlib      zlib inflate of the same (what a reader built on zlib would pay)
//      scan      scanLayer (inflate, tar, detectors)
//    and the scan's peak RSS (VmHWM reset before it; target < 64 MiB).
// 2. Re-matching: --images stored image results of 150 Debian packages each (from a pool
//    of 2,000) and a database of 20,000 advisories on them; times Scanner::rematchAll after
//    a new generation (target: 10,000 images in under 10 s).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <isa-l.h>

#include <archive.h>
#include <archive_entry.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/metadata/lmdb_metadata_store.h"
#include "core/registry/registry.h"
#include "core/scan/layer_reader.h"
#include "core/scan/layer_scan.h"
#include "core/scan/lmdb_scan_store.h"
#include "core/scan/scanner.h"
#include "shared/base/clock.h"
#include "shared/base/fs.h"
#include "shared/base/log.h"
#include "shared/store/blob_store.h"

using namespace wharf;
using nlohmann::json;

namespace {

int64_t vmHwmKiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6);
  return 0;
}
void resetHwm() { std::ofstream("/proc/self/clear_refs") << "5"; }
double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Text that compresses about as well as a distribution's files (3-4x with gzip).
std::string textOf(size_t n, std::mt19937_64& rng) {
  static const char* words[] = {"the", "config", "lib", "usr", "share", "install", "package", "version", "error",
                                "return", "function", "static", "const", "void", "include", "define", "struct",
                                "value", "string", "buffer", "/usr/lib/x86_64-linux-gnu", "0x7f", "license", "GPL"};
  std::string s;
  s.reserve(n + 32);
  while (s.size() < n) {
    s += words[rng() % (sizeof words / sizeof *words)];
    uint64_t r = rng();
    s += (r % 13 == 0) ? '\n' : ' ';
    if (r % 7 == 0) s += std::to_string(r % 100000);
  }
  s.resize(n);
  return s;
}

std::string randomBytes(size_t n, std::mt19937_64& rng) {
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t r = rng();
    std::memcpy(&s[i], &r, 8);
  }
  return s;
}

// Writes the tar through zlib (level 1) into path; returns the compressed size.
uint64_t writeLayer(const std::string& path, uint64_t tar_bytes) {
  gzFile gz = gzopen(path.c_str(), "wb1");
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, gz, nullptr,
      [](struct archive*, void* c, const void* b, size_t n) -> la_ssize_t {
        return gzwrite(static_cast<gzFile>(c), b, unsigned(n));
      },
      nullptr);
  std::mt19937_64 rng(42);
  auto add = [&](const std::string& name, const std::string& content, int mode) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, la_int64_t(content.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, mode);
    archive_write_header(a, e);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  };
  std::string status;
  for (int i = 0; i < 400; ++i)
    status += "Package: pkg" + std::to_string(i) + "\nStatus: install ok installed\nArchitecture: amd64\nSource: src" +
              std::to_string(i / 3) + "\nVersion: 1." + std::to_string(i) + "-1+deb12u1\nDescription: " + textOf(300, rng) + "\n\n";
  add("var/lib/dpkg/status", status, 0644);
  add("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n", 0644);
  uint64_t written = status.size();
  for (uint64_t i = 0; written < tar_bytes; ++i) {
    uint64_t kind = rng() % 100;
    if (kind < 8) {
      // An executable: 64 KiB to 4 MiB, half incompressible (code), not Go.
      size_t n = 65536 + rng() % (4 << 20);
      std::string bin = "\x7f" "ELF" + randomBytes(n / 2, rng) + textOf(n / 2, rng);
      add("usr/bin/tool" + std::to_string(i), bin, 0755);
      written += bin.size();
    } else if (kind < 10) {
      add("usr/lib/python3/dist-packages/mod" + std::to_string(i) + "-1.0.dist-info/METADATA",
          "Metadata-Version: 2.1\nName: mod" + std::to_string(i) + "\nVersion: 1.0\n", 0644);
    } else if (kind < 12) {
      add("app/node_modules/m" + std::to_string(i) + "/package.json",
          R"({"name":"m)" + std::to_string(i) + R"(","version":"1.0.0","description":")" + textOf(200, rng) + "\"}", 0644);
    } else {
      size_t n = 512 + rng() % 200000;
      std::string t = textOf(n, rng);
      add("usr/share/doc/f" + std::to_string(i) + ".txt", t, 0644);
      written += t.size();
    }
  }
  archive_write_close(a);
  archive_write_free(a);
  gzclose(gz);
  struct stat st {};
  ::stat(path.c_str(), &st);
  return uint64_t(st.st_size);
}

double inflateIsal(const std::string& path) {
  auto t = std::chrono::steady_clock::now();
  int fd = ::open(path.c_str(), O_RDONLY);
  std::vector<uint8_t> in(1 << 20), out(1 << 20);
  inflate_state st;
  isal_inflate_init(&st);
  st.crc_flag = ISAL_GZIP;
  for (;;) {
    ssize_t n = ::read(fd, in.data(), in.size());
    if (n <= 0) break;
    st.next_in = in.data();
    st.avail_in = uint32_t(n);
    while (st.avail_in > 0 && st.block_state != ISAL_BLOCK_FINISH) {
      st.next_out = out.data();
      st.avail_out = uint32_t(out.size());
      if (isal_inflate(&st) < 0) return -1;
    }
  }
  ::close(fd);
  return since(t);
}

double inflateZlib(const std::string& path) {
  auto t = std::chrono::steady_clock::now();
  gzFile gz = gzopen(path.c_str(), "rb");
  gzbuffer(gz, 1 << 20);
  std::vector<char> out(1 << 20);
  while (gzread(gz, out.data(), unsigned(out.size())) > 0) {
  }
  gzclose(gz);
  return since(t);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t layer_mb = 1024, images = 10000;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--layer-mb") layer_mb = std::stoull(argv[i + 1]);
    else if (k == "--images") images = std::stoull(argv[i + 1]);
    else if (k == "--dir") dir = argv[i + 1];
  }
  if (argc > 1 && std::string(argv[1]) == "--help") {
    std::puts("wharf-scanbench [--layer-mb 1024] [--images 10000] [--dir DIR]: see the header of bench/scan_bench.cc");
    return 0;
  }
  setLogLevel(LogLevel::kWarn);
  bool own = dir.empty();
  if (own) {
    char tmpl[] = "/tmp/wharf-scanbench-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  json out;

  // 1. Throughput and memory.
  std::string layer = dir + "/layer.tar.gz";
  auto t0 = std::chrono::steady_clock::now();
  uint64_t compressed = writeLayer(layer, layer_mb << 20);
  std::fprintf(stderr, "layer: %llu MiB of tar, %.1f MiB gzip, written in %.1f s\n", (unsigned long long)layer_mb,
               double(compressed) / (1 << 20), since(t0));
  // Page cache warm for all three.
  (void)inflateIsal(layer);
  double isal = inflateIsal(layer);
  double zl = inflateZlib(layer);
  resetHwm();
  int64_t hwm_before = vmHwmKiB();
  int fd = ::open(layer.c_str(), O_RDONLY);
  auto t1 = std::chrono::steady_clock::now();
  ScanLimits limits;
  auto scan = scanLayer(fdByteSource(fd), compressed, limits);
  double scan_s = since(t1);
  ::close(fd);
  int64_t hwm = vmHwmKiB();
  if (!scan.isOk()) {
    std::fprintf(stderr, "scan failed: %s\n", scan.status().message().c_str());
    return 1;
  }
  double mb = double(compressed) / (1 << 20);
  out["layer"] = {{"tar_mib", layer_mb},
                  {"gzip_mib", mb},
                  {"members", scan->stats.members},
                  {"packages", scan->packages.size()},
                  {"inflate_isal_s", isal},
                  {"inflate_zlib_s", zl},
                  {"scan_s", scan_s},
                  {"scan_mb_per_s", mb / scan_s},
                  {"inflate_isal_mb_per_s", mb / isal},
                  {"scan_over_inflate", scan_s / isal},
                  {"zlib_over_isal", zl / isal},
                  {"peak_rss_mib", double(hwm) / 1024},
                  {"rss_before_mib", double(hwm_before) / 1024}};
  ::unlink(layer.c_str());
  std::fprintf(stderr, "%s\n", out["layer"].dump().c_str());

  // 2. Re-matching stored images after a database update.
  {
    auto blobs = std::move(openFsBlobStore(dir + "/blobs")).value();
    LmdbMetadataOptions fast;  // populating only: the scanner reads it
    fast.durable = false;
    auto meta = std::move(openLmdbMetadataStore(dir + "/meta.lmdb", fast)).value();
    Registry registry(*blobs, *meta, RealClock::instance());
    LmdbEnv::Options eo;
    eo.map_size = 16ull << 30;
    auto store = std::move(LmdbScanStore::open(std::move(LmdbEnv::open(dir + "/scan.lmdb", eo)).value())).value();
    std::mt19937_64 rng(7);
    const int pool = 2000;
    // 20,000 advisories, 10 per source package; `extra` more on the first 20 packages (a
    // day's update); fixed_minor moves every fixed version (everything changes).
    auto makeGeneration = [&](int fixed_minor, int extra) {
      auto gen = store->beginGeneration();
      std::vector<std::pair<std::string, std::string>> batch;
      for (int i = 0; i < 20000 + extra; ++i) {
        int pkg = i < 20000 ? i % pool : (i - 20000) % 20;
        std::string id = "DSA-" + std::to_string(10000 + i) + "-1";
        json a = {{"id", id},
                  {"modified", "2026-01-01T00:00:00Z"},
                  {"aliases", {"CVE-2026-" + std::to_string(i)}},
                  {"affected", {{{"package", {{"ecosystem", "Debian:12"}, {"name", "src" + std::to_string(pkg)}}},
                                 {"ranges", {{{"type", "ECOSYSTEM"},
                                              {"events", {{{"introduced", "0"}},
                                                          {{"fixed", "1." + std::to_string(i % 50 + fixed_minor) + "-1"}}}}}}}}}},
                  {"severity", {{{"type", "CVSS_V3"}, {"score", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}}}}};
        batch.emplace_back(id, a.dump());
      }
      (void)store->addAdvisories(*gen, batch);
      (void)store->commitGeneration(*gen, {{"generation", *gen}, {"updated_at", RealClock::instance().nowMillis()},
                                           {"advisories", batch.size()}});
    };
    makeGeneration(0, 0);
    std::vector<std::pair<std::string, json>> docs;
    for (uint64_t i = 0; i < images; ++i) {
      json packages = json::array();
      for (int k = 0; k < 150; ++k) {
        int p = int(rng() % pool);
        packages.push_back({{"type", "deb"}, {"name", "pkg" + std::to_string(p)}, {"version", "1." + std::to_string(40 + rng() % 60) + "-1"},
                            {"source", "src" + std::to_string(p)}, {"path", "var/lib/dpkg/status"},
                            {"layer", "sha256:" + std::string(64, 'a')}});
      }
      std::string digest = "sha256:" + std::to_string(1000000 + i) + std::string(57, 'b');
      // A stored manifest (re-matching drops results of content that is gone).
      (void)meta->commitBlob("bench/app", digest, 1000, "", RealClock::instance().nowMillis());
      docs.emplace_back(digest,
                        json{{"status", "completed"}, {"repository", "bench/app"}, {"os", {{"id", "debian"}, {"version_id", "12"}}},
                             {"packages", packages}, {"findings", json::array()}});
      if (docs.size() == 1000) {
        (void)store->putImages(docs);
        docs.clear();
      }
    }
    (void)store->putImages(docs);
    ScannerOptions so;
    so.tmp_dir = dir;
    Scanner scanner(registry, *store, nullptr, RealClock::instance(), so);
    (void)scanner.load();
    (void)scanner.rematchAll(nullptr);  // first match: every image gets its findings
    // Every stored inventory, page by page: what a re-match reads.
    auto forEach = [&](const std::function<void(const std::string&, const ScanStore::Inventory&)>& fn) {
      std::string after;
      for (;;) {
        auto last = store->inventoryPage(after, 512, fn);
        if (!last.isOk() || last->empty()) return;
        after = *last;
      }
    };
    uint64_t findings = 0;
    forEach([&](const std::string& d, const ScanStore::Inventory&) {
      findings += scanner.result(d)->value("findings", json::array()).size();
    });
    auto td = std::chrono::steady_clock::now();
    uint64_t seen = 0;
    forEach([&](const std::string&, const ScanStore::Inventory& inv) { seen += inv.inv.packages.size(); });
    double decode_s = since(td);
    out["rematch"] = {{"images", images}, {"packages_per_image", 150}, {"advisories", 20000},
                      {"findings_per_image", double(findings) / double(images)},
                      {"read_inventories_s", decode_s}};
    for (auto [name, minor, extra] : {std::tuple{"day_update", 0, 40}, std::tuple{"everything_changes", 7, 40}}) {
      makeGeneration(minor, extra);
      auto t2 = std::chrono::steady_clock::now();
      (void)scanner.load();
      double load_s = since(t2);
      resetHwm();
      auto t3 = std::chrono::steady_clock::now();
      auto r = scanner.rematchAll(nullptr);
      double rematch_s = since(t3);
      out["rematch"][name] = {{"load_db_s", load_s},
                              {"rematch_s", rematch_s},
                              {"changed", r.isOk() ? (*r)["changed"] : json(nullptr)},
                              {"peak_rss_mib", double(vmHwmKiB()) / 1024}};
    }
  }
  std::printf("%s\n", out.dump(2).c_str());
  if (own) (void)removeTree(dir);
  return 0;
}
