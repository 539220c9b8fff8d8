#include "shared/tls/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace wharf {
namespace {
std::string lastSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}
}  // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::server(const std::string& cert_file, const std::string& key_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return Status(Code::kInternal, "SSL_CTX_new: " + lastSslError());
  std::shared_ptr<TlsContext> out(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return Status(Code::kInvalidArgument, "tls certificate " + cert_file + ": " + lastSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status(Code::kInvalidArgument, "tls key " + key_file + ": " + lastSslError());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Status(Code::kInvalidArgument, "tls key " + key_file + " does not match certificate " + cert_file);
  }
  return out;
}

Result<std::shared_ptr<TlsContext>> TlsContext::client(const std::string& ca_file, bool insecure) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Status(Code::kInternal, "SSL_CTX_new: " + lastSslError());
  std::shared_ptr<TlsContext> out(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                             : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
    if (ok != 1) return Status(Code::kInvalidArgument, "cannot load CA certificates " + ca_file);
  }
  return out;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsSession::TlsSession(const TlsContext& ctx, int fd, const std::string& server_name) : ssl_(SSL_new(ctx.raw())) {
  WHARF_ASSERT(ssl_ != nullptr);
  SSL_set_fd(ssl_, fd);
  if (server_name.empty()) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_tlsext_host_name(ssl_, server_name.c_str());
    SSL_set1_host(ssl_, server_name.c_str());
    SSL_set_connect_state(ssl_);
  }
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

TlsIo TlsSession::result(int ret) {
  if (ret > 0) return {TlsIo::kDone, static_cast<size_t>(ret)};
  int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ: return {TlsIo::kWantRead};
    case SSL_ERROR_WANT_WRITE: return {TlsIo::kWantWrite};
    case SSL_ERROR_ZERO_RETURN: return {TlsIo::kEof};
    default:
      ERR_clear_error();
      return {TlsIo::kError};
  }
}

TlsIo TlsSession::read(char* buf, size_t len) { return result(SSL_read(ssl_, buf, static_cast<int>(len))); }

TlsIo TlsSession::write(const char* buf, size_t len) {
  if (len == 0) return {TlsIo::kDone, 0};
  return result(SSL_write(ssl_, buf, static_cast<int>(len)));
}

Result<std::unique_ptr<TlsClient>> TlsClient::connect(int fd, const std::string& host, const std::string& ca_file,
                                                      bool insecure) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Status(Code::kInternal, "SSL_CTX_new: " + lastSslError());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (!insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                             : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
    if (ok != 1) {
      SSL_CTX_free(ctx);
      return Status(Code::kInvalidArgument, "cannot load CA certificates " + ca_file);
    }
  }
  SSL* ssl = SSL_new(ctx);
  std::unique_ptr<TlsClient> client(new TlsClient(ctx, ssl));
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, host.c_str());
  if (!insecure) SSL_set1_host(ssl, host.c_str());
  if (SSL_connect(ssl) != 1) return Status(Code::kUnavailable, "TLS to " + host + ": " + lastSslError());
  return client;
}

TlsClient::~TlsClient() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
}

Result<size_t> TlsClient::read(char* buf, size_t len) {
  int r = SSL_read(ssl_, buf, static_cast<int>(len));
  if (r > 0) return static_cast<size_t>(r);
  int e = SSL_get_error(ssl_, r);
  ERR_clear_error();
  if (e == SSL_ERROR_ZERO_RETURN) return size_t{0};
  return Status(Code::kUnavailable, "TLS read failed");
}

Status TlsClient::write(const char* data, size_t len) {
  size_t off = 0;
  while (off < len) {
    int w = SSL_write(ssl_, data + off, static_cast<int>(len - off));
    if (w <= 0) {
      ERR_clear_error();
      return Status(Code::kUnavailable, "TLS write failed");
    }
    off += static_cast<size_t>(w);
  }
  return Status::ok();
}

bool TlsClient::pending() const { return SSL_pending(ssl_) > 0; }

}  // namespace wharf
