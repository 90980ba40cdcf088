#include "tls/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace serving::tls {
namespace {

// A self-signed certificate for `cn` and its key, written as PEM to `dir/name.crt` and `dir/name.key`.
void WriteSelfSigned(const std::filesystem::path& dir, const std::string& name, const std::string& cn) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert, subject);
  X509_sign(cert, key, EVP_sha256());
  FILE* f = fopen((dir / (name + ".crt.tmp")).c_str(), "w");
  PEM_write_X509(f, cert);
  fclose(f);
  f = fopen((dir / (name + ".key.tmp")).c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  std::filesystem::rename(dir / (name + ".crt.tmp"), dir / (name + ".crt"));
  std::filesystem::rename(dir / (name + ".key.tmp"), dir / (name + ".key"));
  X509_free(cert);
  EVP_PKEY_free(key);
}

std::string SubjectOf(const SslCtxPtr& ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx.get());
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
  return buf;
}

class Reloads : public SecurityMetrics {
 public:
  void CountAuthFailure(std::string_view, std::string_view) override {}
  void CountSecretReload(std::string_view secret, bool ok) override {
    EXPECT_EQ(secret, "http-tls");
    (ok ? good : bad)++;
  }
  std::atomic<int> good{0}, bad{0};
};

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tls-" + std::to_string(getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    WriteSelfSigned(dir_, "a", "first");
    WriteSelfSigned(dir_, "b", "second");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  TlsFiles Files(const std::string& cert, const std::string& key) {
    return {(dir_ / cert).string(), (dir_ / key).string(), "", true};
  }
  std::filesystem::path dir_;
};

TEST_F(TlsContextTest, LoadsAMatchingPairAndRefusesWhatDoesNot) {
  auto ok = LoadServerContext(Files("a.crt", "a.key"));
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ok->get()), TLS1_2_VERSION);
  auto mismatched = LoadServerContext(Files("a.crt", "b.key"));
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("b.key"), std::string::npos) << mismatched.status().message();
  EXPECT_NE(mismatched.status().message().find("a.crt"), std::string::npos) << mismatched.status().message();
  auto missing = LoadServerContext(Files("nope.crt", "a.key"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.crt"), std::string::npos);
  std::ofstream(dir_ / "junk.pem") << "-----BEGIN CERTIFICATE-----\nnot base64\n";
  EXPECT_FALSE(LoadServerContext(Files("junk.pem", "a.key")).ok());
  TlsFiles with_ca = Files("a.crt", "a.key");
  with_ca.client_ca = (dir_ / "missing-ca.pem").string();
  EXPECT_FALSE(LoadServerContext(with_ca).ok());
}

TEST_F(TlsContextTest, AChangedPairIsServedAndABrokenOneKeepsThePrevious) {
  Reloads metrics;
  std::filesystem::copy_file(dir_ / "a.crt", dir_ / "live.crt");
  std::filesystem::copy_file(dir_ / "a.key", dir_ / "live.key");
  auto ctx = TlsContext::Create("http", Files("live.crt", "live.key"), std::chrono::milliseconds(20), &metrics);
  ASSERT_TRUE(ctx.ok());
  EXPECT_NE(SubjectOf((*ctx)->Current()).find("first"), std::string::npos);
  // Both files replaced (renamed over, as an atomic update does).
  std::filesystem::rename(dir_ / "b.crt", dir_ / "live.crt");
  std::filesystem::rename(dir_ / "b.key", dir_ / "live.key");
  for (int i = 0; i < 500 && SubjectOf((*ctx)->Current()).find("second") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_NE(SubjectOf((*ctx)->Current()).find("second"), std::string::npos);
  EXPECT_GE(metrics.good.load(), 1);
  // A certificate that no longer matches its key: the previous pair stays.
  std::filesystem::copy_file(dir_ / "a.crt", dir_ / "live.crt", std::filesystem::copy_options::overwrite_existing);
  for (int i = 0; i < 500 && metrics.bad.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(metrics.bad.load(), 1);
  EXPECT_NE(SubjectOf((*ctx)->Current()).find("second"), std::string::npos);
}

}  // namespace
}  // namespace serving::tls
