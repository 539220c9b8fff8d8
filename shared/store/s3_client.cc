#include "shared/store/s3_client.h"

#include <strings.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <cstring>

#include "shared/base/clock.h"
#include "shared/base/strings.h"
#include "shared/http/url.h"
#include "shared/metrics/metrics.h"
#include "shared/tls/crypto.h"

namespace wharf {
namespace {

constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kStreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
constexpr const char* kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr size_t kMaxIdle = 32;

std::string amzDateNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}


// aws_access_key_id / aws_secret_access_key of the [default] profile.
Status readCredentialsFile(const std::string& path, S3Credentials* out) {
  std::ifstream in(path);
  if (!in) return Status(Code::kInvalidArgument, "cannot read S3 credentials file " + path);
  std::string line, section;
  while (std::getline(in, line)) {
    line = trimSpace(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trimSpace(line.substr(1, line.size() - 2));
      continue;
    }
    if (section != "default") continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = trimSpace(line.substr(0, eq)), v = trimSpace(line.substr(eq + 1));
    if (k == "aws_access_key_id") out->access_key = v;
    if (k == "aws_secret_access_key") out->secret_key = v;
  }
  if (out->access_key.empty() || out->secret_key.empty()) {
    return Status(Code::kInvalidArgument, "S3 credentials file " + path +
                                              " has no [default] aws_access_key_id and aws_secret_access_key");
  }
  return Status::ok();
}

std::string canonicalQuery(const std::map<std::string, std::string>& q) {
  std::map<std::string, std::string> enc;
  for (const auto& [k, v] : q) enc[percentEncode(k)] = percentEncode(v);
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string scopeOf(const std::string& amz_date, const std::string& region) {
  return amz_date.substr(0, 8) + "/" + region + "/s3/aws4_request";
}

std::string signingKey(const S3Credentials& creds, const std::string& region, const std::string& amz_date) {
  std::string k = hmacSha256("AWS4" + creds.secret_key, amz_date.substr(0, 8));
  k = hmacSha256(k, region);
  k = hmacSha256(k, "s3");
  return hmacSha256(k, "aws4_request");
}

std::string signatureOf(const std::string& canonical, const S3Credentials& creds, const std::string& region,
                        const std::string& amz_date) {
  std::string scope = scopeOf(amz_date, region);
  std::string to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + sha256Hex(canonical);
  return hmacSha256Hex(signingKey(creds, region, amz_date), to_sign);
}

// The canonical request and the signed header list.
std::pair<std::string, std::string> canonicalRequest(const SigV4Input& in) {
  std::string headers, names;
  for (const auto& [k, v] : in.headers) {
    headers += k + ":" + trimSpace(v) + "\n";
    if (!names.empty()) names += ';';
    names += k;
  }
  std::string canonical =
      in.method + "\n" + in.path + "\n" + canonicalQuery(in.query) + "\n" + headers + "\n" + names + "\n" + in.payload_hash;
  return {canonical, names};
}

std::string encodePath(std::string_view key) {
  std::string out;
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    out += percentEncode(key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

std::string xmlDecode(std::string s) {
  static const std::pair<const char*, char> kEntities[] = {
      {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}, {"&#34;", '"'}, {"&#39;", '\''}, {"&amp;", '&'}};
  for (const auto& [e, c] : kEntities) {
    size_t pos = 0;
    std::string ent = e;
    while ((pos = s.find(ent, pos)) != std::string::npos) {
      s.replace(pos, ent.size(), 1, c);
      pos += 1;
    }
  }
  return s;
}

// What a request does, for the metrics: the S3 operation its method, query and headers make.
std::string opOf(const S3Client::Call& c) {
  bool part = c.query.count("partNumber") > 0, upload_id = c.query.count("uploadId") > 0;
  bool copy = false;
  for (const auto& [k, v] : c.headers) copy = copy || strcasecmp(k.c_str(), "x-amz-copy-source") == 0;
  if (c.method == "HEAD") return "head";
  if (c.method == "GET") return c.bucket_only ? "list" : "get";
  if (c.method == "PUT" && c.bucket_only) return "create_bucket";
  if (c.method == "PUT") return part ? (copy ? "copy_part" : "put_part") : (copy ? "copy" : "put");
  if (c.method == "POST") return upload_id ? "complete_multipart" : "start_multipart";
  if (c.method == "DELETE") return upload_id ? "abort_multipart" : "delete";
  return "other";
}

// One request of an operation for the metrics, from its start; a request that reached
// no answer, or a 5xx, counts as failed.
void recordRequest(const std::string& op, std::chrono::steady_clock::time_point start, bool ok) {
  auto& r = MetricsRegistry::global();
  std::string labels = "op=\"" + op + "\"";
  r.histogram("wharf_s3_request_seconds", "Time of requests to the S3 blob store, by operation.", labels)
      .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!ok) r.counter("wharf_s3_request_failures_total", "S3 requests unanswered or answered 5xx, by operation.", labels).inc();
}

}  // namespace

Result<S3Location> parseS3Url(const std::string& url, const EnvLookup& env) {
  S3Location loc;
  if (url.rfind("s3://", 0) != 0) return Status(Code::kInvalidArgument, "an S3 blob store URL starts with s3://");
  std::string rest = url.substr(5), query;
  if (auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  auto slash = rest.find('/');
  loc.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) loc.prefix = rest.substr(slash + 1);
  while (!loc.prefix.empty() && loc.prefix.back() == '/') loc.prefix.pop_back();
  if (!loc.prefix.empty()) loc.prefix += '/';
  // Bucket names as S3 has them: 3-63 of [a-z0-9.-], starting and ending alphanumeric.
  bool bucket_ok = loc.bucket.size() >= 3 && loc.bucket.size() <= 63 &&
                   loc.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") == std::string::npos &&
                   std::isalnum(static_cast<unsigned char>(loc.bucket.front())) &&
                   std::isalnum(static_cast<unsigned char>(loc.bucket.back()));
  if (!bucket_ok) return Status(Code::kInvalidArgument, "S3 bucket name \"" + loc.bucket + "\" is not valid");
  for (size_t start = 0; start < loc.prefix.size();) {
    size_t slash = loc.prefix.find('/', start);
    std::string segment = loc.prefix.substr(start, slash - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return Status(Code::kInvalidArgument, "S3 prefix \"" + loc.prefix + "\" has an empty, . or .. segment");
    }
    start = slash + 1;
  }
  for (char c : loc.prefix) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view("-_./").find(c) == std::string_view::npos) {
      return Status(Code::kInvalidArgument, "S3 prefix may hold only letters, digits and -_./");
    }
  }
  std::string endpoint, style, credentials_file, payload;
  for (const auto& [k, v] : parseQuery(query)) {
    if (k == "endpoint") endpoint = v;
    else if (k == "region") loc.region = v;
    else if (k == "style") style = v;
    else if (k == "credentials") credentials_file = v;
    else if (k == "ca_file") loc.ca_file = v;
    else if (k == "payload") payload = v;
    else if (k == "part_size_mb") {
      if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos || std::stoul(v) < 5 ||
          std::stoul(v) > 5120) {
        return Status(Code::kInvalidArgument, "part_size_mb must be 5 to 5120 (S3's part limits)");
      }
      loc.part_size = std::stoull(v) << 20;
    } else {
      return Status(Code::kInvalidArgument, "unknown S3 URL parameter \"" + k +
                                                "\" (endpoint, region, style, credentials, ca_file, part_size_mb, payload)");
    }
  }
  if (loc.region.empty() || loc.region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") != std::string::npos) {
    return Status(Code::kInvalidArgument, "S3 region \"" + loc.region + "\" is not valid");
  }
  if (style != "" && style != "path" && style != "virtual") {
    return Status(Code::kInvalidArgument, "style must be path or virtual");
  }
  if (endpoint.empty()) {
    endpoint = "https://s3." + loc.region + ".amazonaws.com";
    loc.virtual_host = style != "path";
  } else {
    loc.virtual_host = style == "virtual";
  }
  if (endpoint.rfind("http://", 0) == 0) {
    endpoint = endpoint.substr(7);
  } else if (endpoint.rfind("https://", 0) == 0) {
    endpoint = endpoint.substr(8);
    loc.tls = true;
  } else {
    return Status(Code::kInvalidArgument, "endpoint must start with http:// or https://");
  }
  if (payload != "" && payload != "signed" && payload != "unsigned") {
    return Status(Code::kInvalidArgument, "payload must be signed or unsigned");
  }
  loc.unsigned_payload = payload.empty() ? loc.tls : payload == "unsigned";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  loc.port = loc.tls ? 443 : 80;
  if (auto colon = endpoint.rfind(':'); colon != std::string::npos && endpoint.find(']') == std::string::npos) {
    std::string p = endpoint.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos || std::stoi(p) == 0 ||
        std::stoi(p) > 65535) {
      return Status(Code::kInvalidArgument, "endpoint port is not valid");
    }
    loc.port = std::stoi(p);
    endpoint = endpoint.substr(0, colon);
  }
  if (endpoint.empty() || endpoint.find('/') != std::string::npos) {
    return Status(Code::kInvalidArgument, "endpoint is http(s)://host[:port] without a path");
  }
  loc.host = endpoint;
  if (!credentials_file.empty()) {
    WHARF_RETURN_IF_ERROR(readCredentialsFile(credentials_file, &loc.credentials));
  } else {
    const char* ak = env("AWS_ACCESS_KEY_ID");
    const char* sk = env("AWS_SECRET_ACCESS_KEY");
    if (ak == nullptr || sk == nullptr || *ak == '\0' || *sk == '\0') {
      return Status(Code::kInvalidArgument,
                    "S3 credentials: give credentials=<file> in the URL or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
    loc.credentials = {ak, sk};
  }
  loc.display = "s3://" + loc.bucket + "/" + loc.prefix + " at " + (loc.tls ? "https://" : "http://") + loc.host + ":" +
                std::to_string(loc.port);
  return loc;
}

std::string sigV4Authorization(const SigV4Input& in, const S3Credentials& creds, const std::string& region,
                               const std::string& amz_date) {
  auto [canonical, names] = canonicalRequest(in);
  return "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" + scopeOf(amz_date, region) +
         ", SignedHeaders=" + names + ", Signature=" + signatureOf(canonical, creds, region, amz_date);
}

std::string sigV4ChunkSignature(const S3Credentials& creds, const std::string& region, const std::string& amz_date,
                                const std::string& previous, std::string_view chunk) {
  std::string to_sign = "AWS4-HMAC-SHA256-PAYLOAD\n" + amz_date + "\n" + scopeOf(amz_date, region) + "\n" + previous +
                        "\n" + kEmptySha256 + "\n" + sha256Hex(chunk);
  return hmacSha256Hex(signingKey(creds, region, amz_date), to_sign);
}

uint64_t awsChunkedLength(uint64_t length, uint64_t chunk) {
  auto framed = [](uint64_t n) {
    char hex[24];
    int digits = std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(n));
    return static_cast<uint64_t>(digits) + std::strlen(";chunk-signature=") + 64 + 2 + n + 2;
  };
  uint64_t full = length / chunk, rest = length % chunk;
  return full * framed(chunk) + (rest > 0 ? framed(rest) : 0) + framed(0);
}

std::string sigV4PresignQuery(SigV4Input in, const S3Credentials& creds, const std::string& region,
                              const std::string& amz_date, int64_t expires_s) {
  in.query["X-Amz-Algorithm"] = "AWS4-HMAC-SHA256";
  in.query["X-Amz-Credential"] = creds.access_key + "/" + scopeOf(amz_date, region);
  in.query["X-Amz-Date"] = amz_date;
  in.query["X-Amz-Expires"] = std::to_string(expires_s);
  std::string names;
  for (const auto& [k, v] : in.headers) names += (names.empty() ? "" : ";") + k;
  in.query["X-Amz-SignedHeaders"] = names;
  in.payload_hash = kUnsignedPayload;
  auto [canonical, unused] = canonicalRequest(in);
  return canonicalQuery(in.query) + "&X-Amz-Signature=" + signatureOf(canonical, creds, region, amz_date);
}

std::vector<std::string> xmlValues(std::string_view xml, std::string_view tag) {
  std::vector<std::string> out;
  std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    size_t start = pos + open.size();
    size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    out.push_back(xmlDecode(std::string(xml.substr(start, end - start))));
    pos = end + close.size();
  }
  return out;
}

int64_t parseIsoTimeMs(std::string_view text) {
  std::tm tm{};
  int ms = 0;
  std::string s(text);
  if (sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
             &tm.tm_sec) != 6) {
    return 0;
  }
  if (auto dot = s.find('.'); dot != std::string::npos) ms = std::atoi(s.substr(dot + 1, 3).c_str());
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

S3Client::S3Client(S3Location location) : loc_(std::move(location)) {}
S3Client::~S3Client() = default;

std::string S3Client::connectHost() const { return loc_.virtual_host ? loc_.bucket + "." + loc_.host : loc_.host; }
// What BlockingClient sends as Host: (always with the port).
std::string S3Client::hostHeader() const { return connectHost() + ":" + std::to_string(loc_.port); }

std::string S3Client::path(const Call& call) const {
  std::string key = call.bucket_only ? "" : loc_.prefix + call.key;
  if (loc_.virtual_host) return "/" + encodePath(key);
  return "/" + loc_.bucket + (call.bucket_only && key.empty() ? "" : "/" + encodePath(key));
}

std::string S3Client::copySource(const std::string& key) const {
  return "/" + loc_.bucket + "/" + encodePath(loc_.prefix + key);
}

std::unique_ptr<BlockingClient> S3Client::lease() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  auto c = std::make_unique<BlockingClient>(connectHost(), loc_.port, 30'000);
  if (loc_.tls) c->useTls(loc_.ca_file);
  return c;
}

void S3Client::giveBack(std::unique_ptr<BlockingClient> client) {
  std::lock_guard lock(mu_);
  if (idle_.size() < kMaxIdle && client->connected()) idle_.push_back(std::move(client));
}

Result<HttpResponse> S3Client::send(const Call& call) {
  std::string date = amzDateNow();
  std::string payload = call.body.empty()         ? kEmptySha256
                        : loc_.unsigned_payload ? kUnsignedPayload
                                                : sha256Hex(call.body);
  SigV4Input in;
  in.method = call.method;
  in.host = hostHeader();
  in.path = path(call);
  in.query = call.query;
  in.payload_hash = payload;
  in.headers["host"] = in.host;
  in.headers["x-amz-content-sha256"] = payload;
  in.headers["x-amz-date"] = date;
  for (const auto& [k, v] : call.headers) {
    std::string lower;
    for (char c : k) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.rfind("x-amz-", 0) == 0) in.headers[lower] = v;
  }
  HeaderList headers = call.headers;
  headers.emplace_back("x-amz-content-sha256", payload);
  headers.emplace_back("x-amz-date", date);
  headers.emplace_back("Authorization", sigV4Authorization(in, loc_.credentials, loc_.region, date));
  std::string target = in.path;
  if (!call.query.empty()) target += "?" + canonicalQuery(call.query);
  const auto start = std::chrono::steady_clock::now();
  auto client = lease();
  auto r = client->request(call.method, target, headers, call.body);
  recordRequest(opOf(call), start, r.isOk() && r->status < 500);
  if (!r.isOk()) {
    return Status(Code::kUnavailable, "S3 store " + loc_.display + " unreachable: " + r.status().message());
  }
  if (!r->closed) giveBack(std::move(client));
  return r;
}

S3Client::StreamedPut::StreamedPut(S3Client& s3, std::string key, uint64_t length, const char* op)
    : s3_(s3), key_(std::move(key)), length_(length), op_(op), started_(std::chrono::steady_clock::now()) {}

S3Client::StreamedPut::~StreamedPut() = default;  // unfinished: the connection closes, S3 stores nothing

Result<std::unique_ptr<S3Client::StreamedPut>> S3Client::startPut(const std::string& key, uint64_t length,
                                                                   const std::map<std::string, std::string>& query) {
  std::unique_ptr<StreamedPut> put(new StreamedPut(*this, key, length, query.empty() ? "put_streamed" : "put_part_streamed"));
  put->date_ = amzDateNow();
  put->chunked_ = !loc_.unsigned_payload;
  Call c;
  c.method = "PUT";
  c.key = key;
  SigV4Input in;
  in.method = "PUT";
  in.host = hostHeader();
  in.path = path(c);
  in.query = query;
  in.headers["host"] = in.host;
  in.headers["x-amz-date"] = put->date_;
  const std::string target = query.empty() ? in.path : in.path + "?" + canonicalQuery(query);
  std::string head;
  if (put->chunked_) {
    const std::string encoded = std::to_string(awsChunkedLength(length, kStreamChunk));
    in.payload_hash = kStreamingPayload;
    in.headers["content-encoding"] = "aws-chunked";
    in.headers["content-length"] = encoded;
    in.headers["x-amz-content-sha256"] = kStreamingPayload;
    in.headers["x-amz-decoded-content-length"] = std::to_string(length);
    std::string auth = sigV4Authorization(in, loc_.credentials, loc_.region, put->date_);
    put->previous_ = auth.substr(auth.rfind('=') + 1);  // the seed signature
    head = "PUT " + target + " HTTP/1.1\r\nHost: " + in.host + "\r\nContent-Encoding: aws-chunked\r\n" +
           "Content-Length: " + encoded + "\r\nx-amz-content-sha256: " + kStreamingPayload +
           "\r\nx-amz-date: " + put->date_ + "\r\nx-amz-decoded-content-length: " + std::to_string(length) +
           "\r\nAuthorization: " + auth + "\r\n\r\n";
  } else {
    in.payload_hash = kUnsignedPayload;
    in.headers["x-amz-content-sha256"] = kUnsignedPayload;
    std::string auth = sigV4Authorization(in, loc_.credentials, loc_.region, put->date_);
    head = "PUT " + target + " HTTP/1.1\r\nHost: " + in.host + "\r\nContent-Length: " + std::to_string(length) +
           "\r\nx-amz-content-sha256: " + kUnsignedPayload + "\r\nx-amz-date: " + put->date_ +
           "\r\nAuthorization: " + auth + "\r\n\r\n";
  }
  // A fresh connection: a kept-alive one the store closed would fail mid-body, where the
  // request cannot be retried.
  put->client_ = std::make_unique<BlockingClient>(connectHost(), loc_.port, 30'000);
  if (loc_.tls) put->client_->useTls(loc_.ca_file);
  Status st = put->client_->send(head);
  if (!st.isOk()) {
    recordRequest(put->op_, put->started_, false);
    return Status(Code::kUnavailable, "S3 store " + loc_.display + " unreachable: " + st.message());
  }
  if (put->chunked_) put->buffer_.reserve(kStreamChunk);
  return put;
}

Status S3Client::StreamedPut::sendChunk(std::string_view chunk) {
  std::string sig = sigV4ChunkSignature(s3_.loc_.credentials, s3_.loc_.region, date_, previous_, chunk);
  char size[24];
  std::snprintf(size, sizeof size, "%zx", chunk.size());
  std::string frame = std::string(size) + ";chunk-signature=" + sig + "\r\n";
  previous_ = std::move(sig);
  if (chunk.size() < 64 * 1024) {
    frame.append(chunk);
    frame += "\r\n";
    return client_->send(frame);
  }
  WHARF_RETURN_IF_ERROR(client_->send(frame));
  WHARF_RETURN_IF_ERROR(client_->send(chunk));
  return client_->send("\r\n");
}

Status S3Client::StreamedPut::sendChunked(std::string_view data) {
  while (!data.empty()) {
    // Whole chunks straight from the caller's bytes; the rest waits in the buffer.
    if (buffer_.empty() && data.size() >= kStreamChunk) {
      WHARF_RETURN_IF_ERROR(sendChunk(data.substr(0, kStreamChunk)));
      data.remove_prefix(kStreamChunk);
      continue;
    }
    size_t take = std::min(data.size(), kStreamChunk - buffer_.size());
    buffer_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (buffer_.size() == kStreamChunk) {
      WHARF_RETURN_IF_ERROR(sendChunk(buffer_));
      buffer_.clear();
    }
  }
  return Status::ok();
}

Status S3Client::StreamedPut::write(std::string_view data) {
  if (!error_.isOk()) return error_;
  if (data.size() > length_ - written_) {
    error_ = Status(Code::kInvalidArgument, "streamed PUT of " + key_ + " given more than its " + std::to_string(length_) + " bytes");
    return error_;
  }
  written_ += data.size();
  error_ = chunked_ ? sendChunked(data) : client_->send(data);
  if (error_.isOk()) return Status::ok();
  recordRequest(op_, started_, false);
  // A store that refused the request may have answered before it stopped reading: its
  // answer says why (a stuck one is not waited for again).
  if (error_.code() != Code::kTimeout && client_->connected()) {
    if (auto r = client_->read(false); r.isOk() && r->status / 100 != 2) {
      error_ = errorOf(*r, "PUT " + key_);
      return error_;
    }
  }
  error_ = Status(Code::kUnavailable, "S3 store " + s3_.loc_.display + ": streamed PUT of " + key_ + ": " + error_.message());
  return error_;
}

Result<std::string> S3Client::StreamedPut::finish(int* http_status) {
  if (http_status != nullptr) *http_status = 0;
  if (!error_.isOk()) return error_;
  if (written_ != length_) {
    return Status(Code::kInvalidArgument, "streamed PUT of " + key_ + " has " + std::to_string(written_) + " of its " +
                                              std::to_string(length_) + " bytes");
  }
  Status st;
  if (chunked_) {
    st = buffer_.empty() ? Status::ok() : sendChunk(buffer_);
    if (st.isOk()) st = sendChunk({});
  }
  // Even when sending failed, the store may have answered (a refusal) before it stopped
  // reading: its answer counts.
  bool readable = st.isOk() || (st.code() != Code::kTimeout && client_->connected());
  auto r = readable ? client_->read(false) : Result<HttpResponse>(st);
  recordRequest(op_, started_, r.isOk() && r->status < 500);
  if (!r.isOk()) {
    return Status(Code::kUnavailable, "S3 store " + s3_.loc_.display + " unreachable: " + (st.isOk() ? r.status() : st).message());
  }
  if (http_status != nullptr) *http_status = r->status;
  if (r->status / 100 != 2) return errorOf(*r, "PUT " + key_);
  if (!st.isOk()) return Status(Code::kUnavailable, "S3 store " + s3_.loc_.display + ": PUT " + key_ + " cut short: " + st.message());
  if (!r->closed) s3_.giveBack(std::move(client_));
  std::string etag = r->header("etag");
  if (etag.empty()) return Status(Code::kIoError, "S3 store stored " + key_ + " without an ETag");
  return etag;
}

Status S3Client::errorOf(const HttpResponse& r, const std::string& what) {
  auto codes = xmlValues(r.body, "Code");
  auto messages = xmlValues(r.body, "Message");
  std::string detail = "HTTP " + std::to_string(r.status);
  if (!codes.empty()) detail += " " + codes[0];
  if (!messages.empty() && !messages[0].empty()) detail += ": " + messages[0];
  if (r.status == 404) return Status(Code::kNotFound, what + ": " + detail);
  if (r.status >= 500) return Status(Code::kUnavailable, what + ": S3 store answered " + detail);
  return Status(Code::kIoError, what + ": S3 store refused: " + detail);
}

Result<HttpResponse> S3Client::call(const Call& c) {
  auto r = send(c);
  if (!r.isOk()) return r.status();
  if (r->status / 100 != 2) return errorOf(*r, c.method + " " + (c.bucket_only ? loc_.bucket : c.key));
  return r;
}

Status S3Client::readRange(const std::string& key, uint64_t offset, char* out, size_t len) {
  if (len == 0) return Status::ok();
  Call c;
  c.key = key;
  c.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + len - 1));
  auto r = call(c);
  if (!r.isOk()) return r.status();
  if (r->body.size() != len) {
    return Status(Code::kIoError, "GET " + key + ": S3 store sent " + std::to_string(r->body.size()) + " bytes of " +
                                      std::to_string(len) + " asked");
  }
  std::memcpy(out, r->body.data(), len);
  return Status::ok();
}

Status S3Client::readStream(const std::string& key, const std::function<Status(std::string_view)>& sink) {
  std::string date = amzDateNow();
  Call c;
  c.key = key;
  SigV4Input in;
  in.method = "GET";
  in.host = hostHeader();
  in.path = path(c);
  in.headers["host"] = in.host;
  in.headers["x-amz-content-sha256"] = kEmptySha256;
  in.headers["x-amz-date"] = date;
  in.payload_hash = kEmptySha256;
  HeaderList headers = {{"x-amz-content-sha256", kEmptySha256},
                        {"x-amz-date", date},
                        {"Authorization", sigV4Authorization(in, loc_.credentials, loc_.region, date)}};
  const auto start = std::chrono::steady_clock::now();
  auto client = lease();
  auto r = client->stream(in.path, headers, [&](const HttpResponse&, std::string_view piece) { return sink(piece); });
  recordRequest("get", start, r.isOk() && r->status < 500);
  if (!r.isOk()) {
    if (r.status().code() == Code::kUnavailable || r.status().code() == Code::kTimeout) {
      return Status(Code::kUnavailable, "S3 store " + loc_.display + " unreachable: " + r.status().message());
    }
    return r.status();
  }
  if (r->status / 100 != 2) return errorOf(*r, "GET " + key);
  if (!r->closed) giveBack(std::move(client));
  return Status::ok();
}

std::string S3Client::presignedGet(const std::string& key, int64_t expires_s) {
  Call c;
  c.key = key;
  SigV4Input in;
  in.method = "GET";
  in.host = hostHeader();
  in.path = path(c);
  in.headers["host"] = in.host;
  std::string query = sigV4PresignQuery(in, loc_.credentials, loc_.region, amzDateNow(), expires_s);
  return std::string(loc_.tls ? "https://" : "http://") + in.host + in.path + "?" + query;
}

Status S3Client::list(const std::string& prefix, const std::function<bool(const Listed&)>& fn) {
  std::string token;
  while (true) {
    Call c;
    c.bucket_only = true;
    c.query["list-type"] = "2";
    c.query["prefix"] = loc_.prefix + prefix;
    c.query["max-keys"] = "1000";
    if (!token.empty()) c.query["continuation-token"] = token;
    auto r = call(c);
    if (!r.isOk()) return r.status();
    // Each <Contents> holds one object's Key, LastModified and Size.
    std::string_view body = r->body;
    size_t pos = 0;
    while ((pos = body.find("<Contents>", pos)) != std::string_view::npos) {
      size_t end = body.find("</Contents>", pos);
      if (end == std::string_view::npos) break;
      std::string_view one = body.substr(pos, end - pos);
      pos = end;
      auto keys = xmlValues(one, "Key");
      auto sizes = xmlValues(one, "Size");
      auto times = xmlValues(one, "LastModified");
      if (keys.empty() || keys[0].rfind(loc_.prefix, 0) != 0) continue;
      Listed l;
      l.key = keys[0].substr(loc_.prefix.size());
      if (!sizes.empty() && !sizes[0].empty() && sizes[0].size() < 20 &&
          sizes[0].find_first_not_of("0123456789") == std::string::npos) {
        l.size = std::stoull(sizes[0]);
      }
      if (!times.empty()) l.mtime_ms = parseIsoTimeMs(times[0]);
      if (!fn(l)) return Status::ok();
    }
    auto truncated = xmlValues(body, "IsTruncated");
    auto next = xmlValues(body, "NextContinuationToken");
    if (truncated.empty() || truncated[0] != "true" || next.empty() || next[0].empty()) return Status::ok();
    token = next[0];
  }
}

}  // namespace wharf
