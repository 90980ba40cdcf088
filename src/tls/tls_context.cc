#include "tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "observability/logger.h"

namespace serving::tls {
namespace {

// ALPN: "http/1.1" if the client offers it (OpenSSL parses the client's list); a client that offers ALPN
// without it is refused rather than spoken to in a protocol it did not ask for.
int SelectHttp1(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  static const unsigned char kHttp1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp1, sizeof(kHttp1), in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

StatusOr<SslCtxPtr> LoadServerContext(const TlsFiles& files) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return Internal("cannot create a TLS context: " + OpenSslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert.c_str()) != 1)
    return InvalidArgument("TLS certificate " + Quote(files.cert) + ": " + OpenSslErrors());
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(), SSL_FILETYPE_PEM) != 1)
    // OpenSSL checks the key against the certificate here too ("key values mismatch"): name both files, as
    // either may be the one that was replaced.
    return InvalidArgument("TLS key " + Quote(files.key) + " (for the certificate " + Quote(files.cert) +
                           "): " + OpenSslErrors());
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return InvalidArgument("TLS key " + Quote(files.key) + " does not match the certificate " + Quote(files.cert));
  if (!files.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), files.client_ca.c_str(), nullptr) != 1)
      return InvalidArgument("TLS client CA " + Quote(files.client_ca) + ": " + OpenSslErrors());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca.c_str());
    if (names) SSL_CTX_set_client_CA_list(ctx.get(), names);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  if (files.http1_alpn) SSL_CTX_set_alpn_select_cb(ctx.get(), &SelectHttp1, nullptr);
  return ctx;
}

StatusOr<std::unique_ptr<TlsContext>> TlsContext::Create(std::string name, TlsFiles files,
                                                         std::chrono::milliseconds reload_interval,
                                                         SecurityMetrics* metrics) {
  SERVING_ASSIGN_OR_RETURN(auto ctx, LoadServerContext(files));
  std::vector<std::string> paths = {files.cert, files.key};
  if (!files.client_ca.empty()) paths.push_back(files.client_ca);
  std::unique_ptr<TlsContext> context(new TlsContext(std::move(name), std::move(files), metrics, std::move(ctx)));
  TlsContext* self = context.get();
  context->watcher_ =
      std::make_unique<auth::FileWatcher>(std::move(paths), reload_interval, [self] { self->Reload(); });
  return context;
}

TlsContext::TlsContext(std::string name, TlsFiles files, SecurityMetrics* metrics, SslCtxPtr ctx)
    : name_(std::move(name)), files_(std::move(files)), metrics_(metrics), ctx_(std::move(ctx)) {}

TlsContext::~TlsContext() { watcher_.reset(); }  // before the members its callback reads

SslCtxPtr TlsContext::Current() const {
  MutexLock lock(mu_);
  return ctx_;
}

void TlsContext::Reload() {
  auto ctx = LoadServerContext(files_);
  if (metrics_) metrics_->CountSecretReload(name_ + "-tls", ctx.ok());
  if (!ctx.ok()) {
    logging::Error("TLS certificate not reloaded: the previous one stays in use",
                   {{"listener", name_}, {"reason", ctx.status().message()}});
    return;
  }
  logging::Info("TLS certificate reloaded", {{"listener", name_}, {"cert", files_.cert}});
  MutexLock lock(mu_);
  ctx_ = std::move(ctx).value();
}

std::string OpenSslErrors(const char* fallback) {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? fallback : out;
}

std::string PeerIdentity(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  std::string out;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    BIO* bio = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(len));
    BIO_free(bio);
  }
  X509_free(cert);
  return out;
}

}  // namespace serving::tls
