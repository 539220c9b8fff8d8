// S3Client: the S3 REST API as the S3 blob store uses it, on any S3-compatible store
// (AWS S3, Ceph radosgw, MinIO), signed with AWS Signature Version 4 on OpenSSL.
//
// Why not libs3: it buffers through libcurl callbacks on its own request contexts and
// threads; what the blob store needs is a few calls (ranged GET, streamed GET, PUT of a
// part held in memory, multipart, copy, list) on keep-alive connections of its own, and
// SigV4 is two HMAC chains. The HTTP/1.1 client is the project's BlockingClient.
//
// Thread-safe: calls run on the caller's thread (blocking; never on a loop thread) over
// a pool of keep-alive connections.
//
// Errors: transport failures and 5xx are kUnavailable (the store is away; retry later);
// 404 is kNotFound; other refusals are kIoError with S3's error code and message.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shared/base/status.h"
#include "shared/http/blocking_client.h"

namespace wharf {

struct S3Credentials {
  std::string access_key;
  std::string secret_key;
};

// Where the blobs live, from
//   s3://bucket[/prefix]?endpoint=http://host:port&region=us-east-1&style=path|virtual
//       &credentials=/path/to/file&ca_file=/path/ca.pem&part_size_mb=16
// Credentials: the file (AWS shared-credentials format, [default] section:
// aws_access_key_id, aws_secret_access_key), else the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY). Without endpoint: https://s3.<region>.amazonaws.com,
// virtual-host style; with one: path style unless style=virtual.
struct S3Location {
  std::string bucket;
  std::string prefix;  // "" or ending in '/'
  bool tls = false;
  std::string host;
  int port = 0;
  std::string region = "us-east-1";
  bool virtual_host = false;
  std::string ca_file;
  uint64_t part_size = 16ull << 20;
  // Request bodies go unsigned (x-amz-content-sha256: UNSIGNED-PAYLOAD): no SHA-256 of
  // every byte in the core for the signature, none in the store to check it. The default
  // over https, where TLS carries the bytes' integrity (as AWS's SDKs do); over http they
  // are signed unless the URL says payload=unsigned (a store on a trusted network).
  bool unsigned_payload = false;
  S3Credentials credentials;
  std::string display;  // the URL without credentials, for logs and errors
};
using EnvLookup = std::function<const char*(const char*)>;
Result<S3Location> parseS3Url(const std::string& url, const EnvLookup& env);

// AWS Signature Version 4 of one request (exposed for the tests against AWS's examples).
struct SigV4Input {
  std::string method;
  std::string host;                               // as sent in Host:
  std::string path;                               // already URI-encoded, '/' kept
  std::map<std::string, std::string> query;       // raw names and values
  std::map<std::string, std::string> headers;     // lower-case names (host added)
  std::string payload_hash;                       // hex SHA-256, or UNSIGNED-PAYLOAD
};
// The Authorization header's value. amz_date: "20130524T000000Z".
std::string sigV4Authorization(const SigV4Input& in, const S3Credentials& creds, const std::string& region,
                               const std::string& amz_date);
// The signature of one chunk of a streamed (aws-chunked) payload, chained to the previous
// chunk's (the seed signature of the request's Authorization for the first).
std::string sigV4ChunkSignature(const S3Credentials& creds, const std::string& region, const std::string& amz_date,
                                const std::string& previous, std::string_view chunk);
// The Content-Length of length bytes sent as aws-chunked in chunks of chunk bytes (the
// signed chunk headers and the final empty chunk included).
uint64_t awsChunkedLength(uint64_t length, uint64_t chunk);
// The query string (without '?') of a presigned GET valid for expires_s seconds.
std::string sigV4PresignQuery(SigV4Input in, const S3Credentials& creds, const std::string& region,
                              const std::string& amz_date, int64_t expires_s);

class S3Client {
 public:
  explicit S3Client(S3Location location);
  ~S3Client();

  struct Call {
    std::string method = "GET";
    std::string key;  // object key under the prefix; "" with bucket_only: the bucket
    bool bucket_only = false;
    std::map<std::string, std::string> query;
    HeaderList headers;
    std::string_view body;
  };
  // Any status S3 answers comes back as a response (the caller judges it); a transport
  // failure is kUnavailable.
  Result<HttpResponse> send(const Call& call);
  // As send(), then: 2xx is the response, anything else the error it stands for.
  Result<HttpResponse> call(const Call& call);
  // Reads [offset, offset+len) of an object into out.
  Status readRange(const std::string& key, uint64_t offset, char* out, size_t len);
  // Streams a whole object to sink.
  Status readStream(const std::string& key, const std::function<Status(std::string_view)>& sink);
  // A PUT of an object whose length is known and whose bytes come later, streamed on a
  // connection of its own: in signed chunks (aws-chunked, STREAMING-AWS4-HMAC-SHA256-
  // PAYLOAD: the store checks every chunk), or as they are with an unsigned payload. The
  // object exists only once finish() sent the last byte and the store took it; a put
  // destroyed before (the caller's request broke off) closes its connection, and the
  // store keeps nothing.
  class StreamedPut {
   public:
    ~StreamedPut();
    // Sends data on (full chunks at once); an error ends the put.
    Status write(std::string_view data);
    // After exactly length bytes: the last chunks, then the store's answer (the ETag).
    // http_status, if given, gets the answer's status (0: none came).
    Result<std::string> finish(int* http_status = nullptr);
    uint64_t written() const { return written_; }
    uint64_t length() const { return length_; }

   private:
    friend class S3Client;
    StreamedPut(S3Client& s3, std::string key, uint64_t length, const char* op);
    Status sendChunk(std::string_view chunk);
    Status sendChunked(std::string_view data);  // whole chunks now, the rest buffered
    S3Client& s3_;
    std::string key_;
    uint64_t length_;
    const char* op_;  // for the request's metrics
    uint64_t written_ = 0;
    std::string date_;
    std::string previous_;  // the last signature sent
    bool chunked_ = true;   // aws-chunked; false: the bytes as they are (unsigned payload)
    std::string buffer_;    // bytes of the next chunk
    Status error_;
    std::unique_ptr<BlockingClient> client_;
    std::chrono::steady_clock::time_point started_;  // for the request's metrics
  };
  static constexpr size_t kStreamChunk = 1 << 20;
  // With query partNumber and uploadId: a part of that multipart upload.
  Result<std::unique_ptr<StreamedPut>> startPut(const std::string& key, uint64_t length,
                                                const std::map<std::string, std::string>& query = {});
  // A presigned GET of the object, valid for expires_s.
  std::string presignedGet(const std::string& key, int64_t expires_s);
  // One page of ListObjectsV2 under prefix (relative to the store's prefix).
  struct Listed {
    std::string key;  // relative to the store's prefix
    uint64_t size = 0;
    int64_t mtime_ms = 0;
  };
  Status list(const std::string& prefix, const std::function<bool(const Listed&)>& fn);

  // The x-amz-copy-source value naming an object of this store.
  std::string copySource(const std::string& key) const;
  const S3Location& location() const { return loc_; }
  // The error an S3 response stands for (its XML Code and Message when present).
  static Status errorOf(const HttpResponse& r, const std::string& what);

 private:
  std::unique_ptr<BlockingClient> lease();
  void giveBack(std::unique_ptr<BlockingClient> client);
  std::string path(const Call& call) const;
  std::string hostHeader() const;
  std::string connectHost() const;

  S3Location loc_;
  std::mutex mu_;
  std::vector<std::unique_ptr<BlockingClient>> idle_;  // GUARDED_BY(mu_)
};

// Values of every <tag>...</tag> in an S3 XML answer (entities decoded), in order.
std::vector<std::string> xmlValues(std::string_view xml, std::string_view tag);
// "2026-12-07T05:00:00.000Z" as ms since the epoch; 0 if malformed.
int64_t parseIsoTimeMs(std::string_view text);

}  // namespace wharf
