// TLS with OpenSSL 3 over a non-blocking socket.
//
// TlsContext is built once from PEM files and shared by all connections (thread-safe
// after construction). A TlsSession wraps one SSL object bound to one fd and is used
// only on its connection's loop thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "shared/base/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace wharf {

class TlsContext {
 public:
  // Loads a server certificate chain and private key (PEM). Fails with a message naming
  // the file when it cannot be read or the key does not match the certificate.
  static Result<std::shared_ptr<TlsContext>> server(const std::string& cert_file, const std::string& key_file);
  // A client context that verifies servers against ca_file (empty: the system CAs),
  // unless insecure.
  static Result<std::shared_ptr<TlsContext>> client(const std::string& ca_file, bool insecure);
  ~TlsContext();
  SSL_CTX* raw() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// The outcome of one non-blocking TLS I/O call.
struct TlsIo {
  enum Kind { kDone, kWantRead, kWantWrite, kEof, kError } kind;
  size_t bytes = 0;
};

class TlsSession {
 public:
  // Server side; with a server_name, the client side (SNI and host name check).
  TlsSession(const TlsContext& ctx, int fd, const std::string& server_name = "");
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Each call drives the handshake first when it is not finished.
  TlsIo read(char* buf, size_t len);
  TlsIo write(const char* buf, size_t len);

 private:
  TlsIo result(int ret);
  SSL* ssl_;
};

// The client side of TLS over a connected, blocking socket, for tools (wharfctl).
class TlsClient {
 public:
  // Handshakes on fd (not owned), verifying the server's certificate and host name
  // against ca_file (empty: the system CAs) unless insecure.
  static Result<std::unique_ptr<TlsClient>> connect(int fd, const std::string& host, const std::string& ca_file,
                                                    bool insecure);
  ~TlsClient();
  // Bytes read (0 at the end of the stream), or an error.
  Result<size_t> read(char* buf, size_t len);
  Status write(const char* data, size_t len);
  bool pending() const;  // decrypted bytes are buffered

 private:
  TlsClient(SSL_CTX* ctx, SSL* ssl) : ctx_(ctx), ssl_(ssl) {}
  SSL_CTX* ctx_;
  SSL* ssl_;
};

}  // namespace wharf
