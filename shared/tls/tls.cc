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

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsSession::TlsSession(const TlsContext& ctx, int fd) : ssl_(SSL_new(ctx.raw())) {
  WHARF_ASSERT(ssl_ != nullptr);
  SSL_set_fd(ssl_, fd);
  SSL_set_accept_state(ssl_);
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

}  // namespace wharf
