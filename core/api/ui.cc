// The web UI at /ui/ (core/ui; its files embedded, core/api/ui_assets.h), and / sending
// browsers there. Every page is a view of the JSON API; this only serves files:
//
//   GET /                 -> 302 /ui/
//   GET /ui/assets/<f>    -> the file, cacheable forever (its name carries its hash)
//   GET /ui/<anything>    -> index.html (the UI routes in the browser)
//
// Every answer carries a strict Content-Security-Policy (scripts and styles from this
// origin only: no inline script, no eval), frame-ancestors 'none', nosniff and no
// referrer. Text assets go gzip-compressed to clients that accept it (compressed once,
// at first use).
#include <zlib.h>

#include <map>
#include <mutex>

#include "core/api/api.h"
#include "core/api/ui_assets.h"

namespace wharf {
namespace {

constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

std::string contentType(const std::string& path) {
  auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "json") return "application/json";
  if (ext == "woff2") return "font/woff2";
  return "application/octet-stream";
}

bool compressible(const std::string& type) {
  return type.rfind("text/", 0) == 0 || type == "image/svg+xml" || type == "application/json";
}

std::string gzipOf(const char* data, size_t size) {
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) != Z_OK) return "";
  std::string out(deflateBound(&z, uLong(size)) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  z.avail_in = uInt(size);
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : "";
}

const UiAsset* find(const std::string& path) {
  for (size_t i = 0; i < kUiAssetCount; ++i)
    if (path == kUiAssets[i].path) return &kUiAssets[i];
  return nullptr;
}

// Compressed bodies, made once per asset.
const std::string& gzipped(const UiAsset* a) {
  static std::mutex mu;
  static std::map<const UiAsset*, std::string> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(a);
  if (it == cache.end()) it = cache.emplace(a, gzipOf(a->data, a->size)).first;
  return it->second;
}

void secure(Response& r) {
  r.headers.add("Content-Security-Policy", kCsp);
  r.headers.add("X-Content-Type-Options", "nosniff");
  r.headers.add("Referrer-Policy", "no-referrer");
  r.headers.add("X-Frame-Options", "DENY");
  r.headers.add("Cross-Origin-Opener-Policy", "same-origin");
}

}  // namespace

bool isUiPath(std::string_view path) { return path == "/" || path == "/ui" || path.rfind("/ui/", 0) == 0; }

void handleUi(ApiContext& ctx, const ExchangePtr& ex) {
  (void)ctx;
  const Request& req = ex->request();
  Response r;
  secure(r);
  if (req.method != "GET" && req.method != "HEAD") {
    r = Response::error(Status(Code::kMethodNotAllowed, "method not allowed"));
    secure(r);
    return reply(ex, std::move(r));
  }
  if (req.path == "/" || req.path == "/ui") {
    r.status = 302;
    r.headers.add("Location", "/ui/");
    return reply(ex, std::move(r));
  }
  std::string path = req.path.substr(4);
  const UiAsset* a = path.rfind("assets/", 0) == 0 ? find(path) : find("index.html");
  if (a == nullptr) {
    if (kUiAssetCount == 0) {
      r = Response::text(404, "The web UI was not built into this wharf-core (npm ci in core/ui, then build again).\n");
    } else {
      r = Response::text(404, "not found\n");
    }
    secure(r);
    return reply(ex, std::move(r));
  }
  std::string type = contentType(a->path);
  r.headers.add("Content-Type", type);
  r.headers.add("Cache-Control", path.rfind("assets/", 0) == 0 ? "public, max-age=31536000, immutable" : "no-cache");
  r.headers.add("Vary", "Accept-Encoding");
  std::string body(a->data, a->size);
  const std::string* ae = req.headers.get("accept-encoding");
  if (compressible(type) && ae != nullptr && ae->find("gzip") != std::string::npos) {
    const std::string& z = gzipped(a);
    if (!z.empty()) {
      body = z;
      r.headers.add("Content-Encoding", "gzip");
    }
  }
  if (req.isHead()) {
    r.head_length = body.size();
  } else {
    r.body = std::move(body);
  }
  reply(ex, std::move(r));
}

}  // namespace wharf
