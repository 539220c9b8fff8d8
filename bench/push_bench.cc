// wharf-pushbench: blob pushes as a registry client makes them, and the reference they
// are held to, a plain S3 PUT of the same bytes, from one client (bench/scale_out.sh).
// Both send each file from one keep-alive connection per pusher, read and sent in 1 MiB
// pieces, with nothing else in the way: a shell running curl for each request costs a
// process and a pipe per request, which only the registry's three requests paid.
//
//   wharf-pushbench --registry http://127.0.0.1:5000 --repo bench/push [--chunked]
//                   [--parallel 4] [--rate-mbs 100] FILE...
//       Each file: POST /v2/<repo>/blobs/uploads/, one PATCH with the whole file
//       (Content-Length; --chunked: Transfer-Encoding: chunked, as Docker sends it), and
//       PUT ?digest= (the digests are computed before the clock starts).
//   wharf-pushbench --s3 's3://bucket/prefix?endpoint=http://127.0.0.1:7480&credentials=F'
//                   [--parallel 4] FILE...
//       Each file: one PUT of <prefix>obj-<file name> with an unsigned payload; with
//       --multipart-mb M, a multipart upload in parts of M MiB, two on their way at once
//       (what the store's multipart path costs: a body of unknown length goes that way).
//
// --rate-mbs paces each pusher's bytes to that many MB/s, as a client on a network sends
// them (a client on the same machine sends faster than any store takes them).
//
// Prints one JSON line: {"blobs":N,"bytes":B,"seconds":S,"mbs":M} (MB = 10^6 bytes).
// Any request that fails ends the run with its status and body, exit status 1.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "shared/http/blocking_client.h"
#include "shared/http/client.h"
#include "shared/oci/digest.h"
#include "shared/store/s3_client.h"

namespace {

using namespace wharf;

constexpr size_t kPiece = 1 << 20;

struct Options {
  std::string registry;  // http://host:port
  std::string repo;
  bool chunked = false;
  std::string s3;  // s3:// URL
  int parallel = 1;
  double rate_mbs = 0;  // 0: as fast as the connection takes them
  uint64_t multipart = 0;  // --s3: parts of this many bytes (0: one PUT)
  std::vector<std::string> files;
};

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "wharf-pushbench: " << what << "\n";
  std::exit(1);
}

uint64_t fileSize(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + path);
  off_t end = ::lseek(fd, 0, SEEK_END);
  ::close(fd);
  if (end < 0) fail("cannot seek " + path);
  return static_cast<uint64_t>(end);
}

// Sends a file's bytes [off, off + len) after a request head: as they are, or as HTTP
// chunks; at most rate_mbs MB/s if it is not 0.
void sendRange(BlockingClient& c, const std::string& path, uint64_t off, uint64_t len, bool chunked = false,
               double rate_mbs = 0) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + path);
  std::string buf(rate_mbs > 0 ? kPiece / 16 : kPiece, '\0');
  const auto started = std::chrono::steady_clock::now();
  for (uint64_t sent = 0; sent < len;) {
    if (rate_mbs > 0) std::this_thread::sleep_until(started + std::chrono::duration<double>(sent / (rate_mbs * 1e6)));
    ssize_t n = ::pread(fd, buf.data(), std::min<uint64_t>(buf.size(), len - sent), static_cast<off_t>(off + sent));
    if (n <= 0) fail("cannot read " + path);
    sent += static_cast<uint64_t>(n);
    std::string_view piece(buf.data(), static_cast<size_t>(n));
    Status st;
    if (chunked) {
      char size[24];
      std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
      st = c.send(size);
      if (st.isOk()) st = c.send(piece);
      if (st.isOk()) st = c.send("\r\n");
    } else {
      st = c.send(piece);
    }
    if (!st.isOk()) fail("sending " + path + ": " + st.message());
  }
  ::close(fd);
  if (chunked) {
    Status st = c.send("0\r\n\r\n");
    if (!st.isOk()) fail("sending " + path + ": " + st.message());
  }
}

HttpResponse expect(Result<HttpResponse> r, int status, const std::string& what) {
  if (!r.isOk()) fail(what + ": " + r.status().message());
  if (r->status != status) fail(what + ": HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 300));
  return std::move(r).value();
}

// The path (and query) of a Location, which may be absolute.
std::string targetOf(const std::string& location) {
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) {
    size_t slash = location.find('/', location.find("://") + 3);
    return slash == std::string::npos ? "/" : location.substr(slash);
  }
  return location;
}

void pushToRegistry(BlockingClient& c, const Options& o, const std::string& path, const std::string& digest) {
  auto started = expect(c.request("POST", "/v2/" + o.repo + "/blobs/uploads/", {}, {}), 202, "POST " + path);
  std::string target = targetOf(started.header("location"));
  const uint64_t size = fileSize(path);
  std::string head = "PATCH " + target + " HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n" +
                     (o.chunked ? std::string("Transfer-Encoding: chunked\r\n")
                                : "Content-Length: " + std::to_string(size) + "\r\n") +
                     "\r\n";
  Status st = c.send(head);
  if (!st.isOk()) fail("PATCH " + path + ": " + st.message());
  sendRange(c, path, 0, size, o.chunked, o.rate_mbs);
  auto patched = expect(c.read(), 202, "PATCH " + path);
  target = targetOf(patched.header("location"));
  target += (target.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
  expect(c.request("PUT", target, {}, {}), 201, "PUT " + path);
}

std::string amzDate() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y%m%dT%H%M%SZ", &tm);
  return out;
}

// Signs and sends the head of a request to the store with an unsigned payload.
void sendS3Head(BlockingClient& c, const S3Location& loc, const std::string& method, const std::string& key,
                const std::map<std::string, std::string>& query, uint64_t length) {
  SigV4Input in;
  in.method = method;
  in.host = loc.host + ":" + std::to_string(loc.port);
  in.path = "/" + loc.bucket + "/" + loc.prefix + key;
  in.query = query;
  std::string date = amzDate();
  in.headers["host"] = in.host;
  in.headers["x-amz-date"] = date;
  in.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
  in.payload_hash = "UNSIGNED-PAYLOAD";
  std::string target = in.path;
  for (const auto& [k, v] : query) target += (target.find('?') == std::string::npos ? "?" : "&") + k + (v.empty() ? "=" : "=" + v);
  std::string head = method + " " + target + " HTTP/1.1\r\nHost: " + in.host + "\r\nContent-Length: " +
                     std::to_string(length) + "\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: " + date +
                     "\r\nAuthorization: " + sigV4Authorization(in, loc.credentials, loc.region, date) + "\r\n\r\n";
  Status st = c.send(head);
  if (!st.isOk()) fail(method + " " + key + ": " + st.message());
}

std::string xmlValue(const std::string& xml, const std::string& tag) {
  auto v = xmlValues(xml, tag);
  return v.empty() ? "" : v[0];
}

void putToS3(BlockingClient& c, const Options& o, const S3Location& loc, const std::string& path) {
  const uint64_t size = fileSize(path);
  const std::string key = "obj-" + path.substr(path.rfind('/') + 1);
  if (o.multipart == 0) {
    sendS3Head(c, loc, "PUT", key, {}, size);
    sendRange(c, path, 0, size, false, o.rate_mbs);
    expect(c.read(), 200, "PUT " + path);
    return;
  }
  sendS3Head(c, loc, "POST", key, {{"uploads", ""}}, 0);
  const std::string id = xmlValue(expect(c.read(), 200, "start " + path).body, "UploadId");
  if (id.empty()) fail("start " + path + ": no UploadId");
  const size_t parts = static_cast<size_t>((size + o.multipart - 1) / o.multipart);
  std::vector<std::string> etags(parts);
  // Two lanes, each its own connection: parts 1, 3, 5... and 2, 4, 6...
  auto lane = [&](BlockingClient& lc, size_t first) {
    for (size_t i = first; i < parts; i += 2) {
      uint64_t off = i * o.multipart, len = std::min(o.multipart, size - off);
      sendS3Head(lc, loc, "PUT", key, {{"partNumber", std::to_string(i + 1)}, {"uploadId", id}}, len);
      sendRange(lc, path, off, len);
      etags[i] = expect(lc.read(), 200, "part " + std::to_string(i + 1) + " of " + path).header("etag");
    }
  };
  BlockingClient second(loc.host, loc.port, 120'000);
  std::thread other([&] { lane(second, 1); });
  lane(c, 0);
  other.join();
  std::string body = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < parts; ++i) {
    body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags[i] + "</ETag></Part>";
  }
  body += "</CompleteMultipartUpload>";
  sendS3Head(c, loc, "POST", key, {{"uploadId", id}}, body.size());
  Status st = c.send(body);
  if (!st.isOk()) fail("complete " + path + ": " + st.message());
  auto done = expect(c.read(), 200, "complete " + path);
  if (done.body.find("<Error>") != std::string::npos) fail("complete " + path + ": " + done.body.substr(0, 300));
}

std::string sha256Of(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + path);
  Hasher h(DigestAlgorithm::kSha256);
  std::string buf(kPiece, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) fail("cannot read " + path);
    if (n == 0) break;
    h.update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return h.digest().str();
}

int usage(int code) {
  (code == 0 ? std::cout : std::cerr)
      << "Usage: wharf-pushbench --registry http://HOST:PORT --repo NAME [--chunked] [--parallel N] [--rate-mbs R] FILE...\n"
         "       wharf-pushbench --s3 's3://BUCKET[/PREFIX]?endpoint=...&credentials=...' [--parallel N]\n"
         "                       [--rate-mbs R | --multipart-mb M] FILE...\n"
         "Pushes each file as a registry client does (POST, one PATCH, PUT ?digest=), or PUTs it\n"
         "as a plain S3 object (unsigned payload; in parts of M MiB, two at once, with\n"
         "--multipart-mb), N at a time on keep-alive connections (each\n"
         "sending at most R MB/s if given), and\n"
         "prints {\"blobs\",\"bytes\",\"seconds\",\"mbs\"} as one JSON line (MB = 10^6 bytes).\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") return usage(0);
    if (a == "--registry") o.registry = value();
    else if (a == "--repo") o.repo = value();
    else if (a == "--chunked") o.chunked = true;
    else if (a == "--s3") o.s3 = value();
    else if (a == "--parallel") o.parallel = std::atoi(value().c_str());
    else if (a == "--rate-mbs") o.rate_mbs = std::atof(value().c_str());
    else if (a == "--multipart-mb") o.multipart = std::strtoull(value().c_str(), nullptr, 10) << 20;
    else if (!a.empty() && a[0] == '-') return usage(2);
    else o.files.push_back(a);
  }
  if (o.files.empty() || o.parallel < 1 || o.rate_mbs < 0 || (o.multipart > 0 && (o.s3.empty() || o.rate_mbs > 0)) || o.registry.empty() == o.s3.empty() || (!o.registry.empty() && o.repo.empty())) {
    return usage(2);
  }
  std::string host;
  int port = 0;
  S3Location loc;
  if (!o.registry.empty()) {
    auto url = parseBaseUrl(o.registry);
    if (!url.isOk() || url->tls) fail("--registry must be an http:// URL");
    host = url->host;
    port = url->port;
  } else {
    auto parsed = parseS3Url(o.s3, [](const char* name) { return std::getenv(name); });
    if (!parsed.isOk()) fail(parsed.status().message());
    loc = *parsed;
    if (loc.tls || loc.virtual_host) fail("--s3 must be a path-style http:// endpoint");
    host = loc.host;
    port = loc.port;
  }
  std::vector<std::string> digests;
  if (!o.registry.empty()) {
    for (const auto& f : o.files) digests.push_back(sha256Of(f));
  }

  std::atomic<size_t> next{0};
  uint64_t bytes = 0;
  for (const auto& f : o.files) {
    bytes += fileSize(f);
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pushers;
  for (int p = 0; p < o.parallel; ++p) {
    pushers.emplace_back([&] {
      BlockingClient c(host, port, 120'000);
      for (size_t i; (i = next.fetch_add(1)) < o.files.size();) {
        if (!o.registry.empty()) pushToRegistry(c, o, o.files[i], digests[i]);
        else putToS3(c, o, loc, o.files[i]);
      }
    });
  }
  for (auto& t : pushers) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json out = {{"blobs", o.files.size()}, {"bytes", bytes}, {"seconds", secs},
                        {"mbs", static_cast<double>(bytes) / 1e6 / secs}};
  std::cout << out.dump() << "\n";
  return 0;
}
