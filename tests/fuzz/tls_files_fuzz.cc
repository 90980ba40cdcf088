// libFuzzer target for the TLS files the server (re)loads: LoadServerContext, the path TlsContext::Reload takes
// whenever a certificate, key or client CA file changes (a Kubernetes Secret update). The parsing is
// OpenSSL's; what is ours is reading three files in order, checking the key against the certificate and turning
// each failure into one INVALID_ARGUMENT naming the file. Input: one mode byte, then the fuzzed file. The
// other files are a valid self-signed P-256 pair made in memory at start (no private key is committed):
//   mode % 3 == 0: the fuzzed bytes are the certificate chain (with the valid key)
//   mode % 3 == 1: the fuzzed bytes are the key (with the valid certificate)
//   mode % 3 == 2: the fuzzed bytes are the client CA bundle (with the valid pair)
// Checked besides crashes and leaks: a success or an INVALID_ARGUMENT naming the file that failed, and nothing
// left on OpenSSL's error queue of the thread (it would be blamed on the next TLS error logged there).
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "observability/logger.h"
#include "tls/tls_context.h"

namespace {

std::string Pem(int (*write)(BIO*, void*), void* object) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio || write(bio, object) != 1) std::abort();
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

struct ValidPair {
  std::string cert, key;
};

// A self-signed certificate for CN=fuzz with a fresh P-256 key, as PEM.
const ValidPair& Valid() {
  static const ValidPair pair = [] {
    serving::logging::Configure(serving::logging::Level::kError, serving::logging::Format::kJson);
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    if (!key || !cert) std::abort();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * 365);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("fuzz"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    if (X509_sign(cert, key, EVP_sha256()) == 0) std::abort();
    ValidPair p;
    p.cert = Pem([](BIO* b, void* c) { return PEM_write_bio_X509(b, static_cast<X509*>(c)); }, cert);
    p.key = Pem(
        [](BIO* b, void* k) {
          return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0, nullptr, nullptr);
        },
        key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return p;
  }();
  return pair;
}

std::string Write(const char* what, const std::string& content) {
  static const std::string dir = [] {
    std::string d = "/tmp/tls-files-fuzz-" + std::to_string(getpid());
    mkdir(d.c_str(), 0700);
    return d;
  }();
  const std::string path = dir + "/" + what;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 3;
  const std::string fuzzed(reinterpret_cast<const char*>(data) + 1, size - 1);
  const ValidPair& valid = Valid();
  serving::tls::TlsFiles files;
  files.cert = Write("cert.pem", mode == 0 ? fuzzed : valid.cert);
  files.key = Write("key.pem", mode == 1 ? fuzzed : valid.key);
  if (mode == 2) files.client_ca = Write("ca.pem", fuzzed);
  files.http1_alpn = true;

  auto ctx = serving::tls::LoadServerContext(files);
  if (!ctx.ok()) {
    if (ctx.status().code() != serving::StatusCode::kInvalidArgument) std::abort();
    const std::string& m = ctx.status().message();
    const std::string& named = mode == 0 ? files.cert : mode == 1 ? files.key : files.client_ca;
    if (m.find(named) == std::string::npos) std::abort();
  }
  if (ERR_peek_error() != 0) std::abort();  // an error left for the next one on this thread to report
  return 0;
}
