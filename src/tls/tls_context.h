// TlsContext: a server certificate chain, its key and an optional client CA, loaded from PEM files into an
// OpenSSL SSL_CTX (TLS 1.2 at least) and re-read whenever the files change, so a Kubernetes Secret update (a
// symlink swap) or a rename over the files reaches new connections without a restart. A set of files that
// does not load (unreadable, not PEM, a key that does not match the certificate) keeps the previous context,
// logged and counted; at startup it is an error.
//
// Threading: Current() from any thread; the files are checked by the context's own thread.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "auth/file_watch.h"
#include "core/mutex.h"
#include "core/status.h"
#include "observability/security_metrics.h"

namespace serving::tls {

struct TlsFiles {
  std::string cert;         // PEM certificate chain
  std::string key;          // PEM private key
  std::string client_ca;    // PEM CA bundle: clients must present a certificate it signed; empty: none asked
  bool http1_alpn = false;  // select "http/1.1" in ALPN (a client offering ALPN without it is refused)
};

using SslCtxPtr = std::shared_ptr<SSL_CTX>;

// Loads and checks `files` into a new server context; INVALID_ARGUMENT naming the file and OpenSSL's reason.
StatusOr<SslCtxPtr> LoadServerContext(const TlsFiles& files);

class TlsContext {
 public:
  // `name` labels the metric and log lines ("http"); `metrics` may be null.
  static StatusOr<std::unique_ptr<TlsContext>> Create(std::string name, TlsFiles files,
                                                      std::chrono::milliseconds reload_interval,
                                                      SecurityMetrics* metrics);
  ~TlsContext();

  // The context new connections use.
  SslCtxPtr Current() const;

 private:
  TlsContext(std::string name, TlsFiles files, SecurityMetrics* metrics, SslCtxPtr ctx);
  void Reload();

  const std::string name_;
  const TlsFiles files_;
  SecurityMetrics* const metrics_;
  mutable Mutex mu_;
  SslCtxPtr ctx_ GUARDED_BY(mu_);
  std::unique_ptr<auth::FileWatcher> watcher_;
};

// OpenSSL's queued errors on this thread as one line (and the queue emptied); `fallback` when there are none.
std::string OpenSslErrors(const char* fallback = "unknown error");

// The subject of the peer's verified certificate on `ssl` ("CN=client-1,O=..."); empty without one.
std::string PeerIdentity(SSL* ssl);

}  // namespace serving::tls
