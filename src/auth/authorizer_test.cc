#include "auth/authorizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace serving::auth {
namespace {

class CountingMetrics : public SecurityMetrics {
 public:
  void CountAuthFailure(std::string_view transport, std::string_view reason) override {
    std::lock_guard<std::mutex> lock(mu);
    failures[std::string(transport) + "/" + std::string(reason)]++;
  }
  void CountSecretReload(std::string_view secret, bool ok) override {
    std::lock_guard<std::mutex> lock(mu);
    reloads[std::string(secret) + (ok ? "/ok" : "/error")]++;
  }
  int Reloads(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    return reloads[key];
  }
  std::mutex mu;
  std::map<std::string, int> failures;
  std::map<std::string, int> reloads;
};

constexpr const char* kTokens = R"({"tokens": [
  {"name": "client", "token": "client-token-0123456789", "scopes": ["infer", "metadata"]},
  {"name": "admin", "token": "admin-token-0123456789", "scopes": ["model-control", "statistics", "health"]},
  {"name": "old", "token": "old-token-0123456789", "scopes": ["infer"], "expires": "2001-01-01T00:00:00Z"}]})";

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("authz-" + std::to_string(getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    Write(kTokens);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) {
    // Written aside and renamed over, as an atomic update would be.
    std::ofstream(dir_ / "tokens.tmp") << text;
    std::filesystem::rename(dir_ / "tokens.tmp", dir_ / "tokens.json");
  }
  std::unique_ptr<Authorizer> Make(Authorizer::Options o = {}) {
    if (o.tokens_file.empty()) o.tokens_file = (dir_ / "tokens.json").string();
    auto a = Authorizer::Create(std::move(o), &metrics_);
    EXPECT_TRUE(a.ok()) << a.status().message();
    return std::move(a).value();
  }
  Decision Ask(const Authorizer& a, Category category, const std::string& authorization,
               Transport transport = Transport::kHttp, std::map<std::string, std::string> extra = {}) {
    RequestContext c;
    c.transport = transport;
    c.operation = "op";
    c.category = category;
    extra["authorization"] = authorization;
    c.header = [extra](std::string_view name) {
      auto it = extra.find(std::string(name));
      return it == extra.end() ? std::string() : it->second;
    };
    return a.Authorize(c);
  }

  std::filesystem::path dir_;
  CountingMetrics metrics_;
};

TEST_F(AuthorizerTest, AValidTokenWithTheScopeIsLetInAndNamed) {
  auto a = Make();
  EXPECT_TRUE(a->enabled());
  Decision d = Ask(*a, Category::kInference, "Bearer client-token-0123456789");
  EXPECT_TRUE(d.ok()) << d.status.message();
  EXPECT_EQ(d.principal, "client");
  EXPECT_TRUE(Ask(*a, Category::kModelConfig, "bearer   client-token-0123456789 ").ok());  // scheme in any case
  EXPECT_TRUE(Ask(*a, Category::kMetadata, " \tBearer client-token-0123456789\t").ok());   // white space around
  EXPECT_TRUE(Ask(*a, Category::kRepositoryIndex, "Bearer client-token-0123456789").ok());
  EXPECT_TRUE(Ask(*a, Category::kModelControl, "Bearer admin-token-0123456789").ok());
  EXPECT_TRUE(metrics_.failures.empty());
}

TEST_F(AuthorizerTest, EachRefusalHasItsCodeChallengeAndReasonCounted) {
  auto a = Make();
  struct Case {
    Category category;
    std::string authorization;
    StatusCode code;
    std::string reason;
    std::string challenge_part;
  };
  for (const Case& c : std::vector<Case>{
           {Category::kInference, "", StatusCode::kUnauthenticated, "missing", "Bearer realm=\"inference\""},
           {Category::kInference, "Basic YWxhZGRpbjpvcGVuc2VzYW1l", StatusCode::kUnauthenticated, "malformed",
            "invalid_request"},
           {Category::kInference, "Bearer two words", StatusCode::kUnauthenticated, "malformed", "invalid_request"},
           {Category::kInference, "Bearer wrong-token-0123456789", StatusCode::kUnauthenticated, "invalid",
            "invalid_token"},
           {Category::kInference, "Bearer old-token-0123456789", StatusCode::kUnauthenticated, "expired",
            "invalid_token"},
           {Category::kModelControl, "Bearer client-token-0123456789", StatusCode::kPermissionDenied, "scope",
            "scope=\"model-control\""},
           {Category::kStatistics, "Bearer client-token-0123456789", StatusCode::kPermissionDenied, "scope",
            "insufficient_scope"},
       }) {
    Decision d = Ask(*a, c.category, c.authorization);
    EXPECT_EQ(d.status.code(), c.code) << c.authorization << ": " << d.status.message();
    EXPECT_NE(d.challenge.find(c.challenge_part), std::string::npos) << d.challenge;
    EXPECT_GE(metrics_.failures["http/" + c.reason], 1) << c.reason;
    EXPECT_EQ(d.status.message().find("0123456789"), std::string::npos) << "a refusal echoes no token";
  }
  EXPECT_NE(Ask(*a, Category::kInference, "Bearer old-token-0123456789").status.message().find("2001-01-01"),
            std::string::npos);
}

TEST_F(AuthorizerTest, OpenCategoriesNeedNoTokenAndTheDefaultOnesAreHealthAndMetrics) {
  auto a = Make();
  EXPECT_TRUE(Ask(*a, Category::kHealth, "").ok());
  EXPECT_TRUE(Ask(*a, Category::kMetrics, "").ok());
  EXPECT_FALSE(Ask(*a, Category::kMetadata, "").ok());
  Authorizer::Options closed;
  closed.open = {};
  auto b = Make(closed);
  EXPECT_EQ(Ask(*b, Category::kHealth, "").status.code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(Ask(*b, Category::kHealth, "Bearer admin-token-0123456789").ok());
  EXPECT_EQ(Ask(*b, Category::kHealth, "Bearer client-token-0123456789").status.code(), StatusCode::kPermissionDenied);
}

TEST_F(AuthorizerTest, TritonRestrictedHeadersApplyPerTransportAndEvenToOpenCategories) {
  Authorizer::Options o;
  o.tokens_file = "-";  // replaced below: no tokens at all
  ASSERT_TRUE(o.restricted.Add(Transport::kHttp, "health,model-repository:admin-key=letmein").ok());
  ASSERT_TRUE(o.restricted.Add(Transport::kGrpc, "inference:infer-key=go").ok());
  o.tokens_file.clear();
  auto made = Authorizer::Create(std::move(o), &metrics_);
  ASSERT_TRUE(made.ok());
  const Authorizer& a = **made;
  EXPECT_TRUE(a.enabled());
  Decision d = Ask(a, Category::kModelControl, "");
  EXPECT_EQ(d.status.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(d.status.message().find("This API is restricted, expecting header 'admin-key'"), std::string::npos);
  EXPECT_EQ(Ask(a, Category::kRepositoryIndex, "", Transport::kHttp, {{"admin-key", "letmeiN"}}).status.code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(Ask(a, Category::kRepositoryIndex, "", Transport::kHttp, {{"admin-key", "letmein"}}).ok());
  EXPECT_FALSE(Ask(a, Category::kHealth, "").ok());
  EXPECT_TRUE(Ask(a, Category::kInference, "").ok());  // restricted over gRPC only
  EXPECT_FALSE(Ask(a, Category::kInference, "", Transport::kGrpc, {{"infer-key", "go"}}).ok());
  EXPECT_TRUE(Ask(a, Category::kInference, "", Transport::kGrpc, {{"triton-grpc-protocol-infer-key", "go"}}).ok());
  EXPECT_GE(metrics_.failures["grpc/restricted"], 1);
}

TEST_F(AuthorizerTest, WithoutAnyPolicyEverythingIsAllowed) {
  auto made = Authorizer::Create({}, &metrics_);
  ASSERT_TRUE(made.ok());
  EXPECT_FALSE((*made)->enabled());
  EXPECT_TRUE(Ask(**made, Category::kModelControl, "").ok());
}

TEST_F(AuthorizerTest, ABrokenTokensFileAtStartIsAnError) {
  Write("{\"tokens\": [");
  Authorizer::Options o;
  o.tokens_file = (dir_ / "tokens.json").string();
  auto made = Authorizer::Create(o, &metrics_);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("tokens.json"), std::string::npos);
  o.tokens_file = (dir_ / "missing.json").string();
  EXPECT_FALSE(Authorizer::Create(o, &metrics_).ok());
}

// Waits (at most 10 s) until `done`.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST_F(AuthorizerTest, AChangedFileIsReloadedAndABrokenOneKeepsThePreviousTokens) {
  Authorizer::Options o;
  o.reload_interval = std::chrono::milliseconds(20);
  auto a = Make(o);
  a->StartReloading();
  Write(R"({"tokens": [{"name": "new", "token": "new-token-0123456789", "scopes": ["infer"]}]})");
  ASSERT_TRUE(Eventually([&] { return Ask(*a, Category::kInference, "Bearer new-token-0123456789").ok(); }));
  EXPECT_FALSE(Ask(*a, Category::kInference, "Bearer client-token-0123456789").ok()) << "rotated out";
  EXPECT_GE(metrics_.Reloads("tokens/ok"), 1);

  Write(R"({"tokens": [{"name": "bad", "token": "short", "scopes": ["infer"]}]})");
  ASSERT_TRUE(Eventually([&] { return metrics_.Reloads("tokens/error") >= 1; }));
  EXPECT_TRUE(Ask(*a, Category::kInference, "Bearer new-token-0123456789").ok()) << "the previous tokens stay";
  a->StopReloading();
}

}  // namespace
}  // namespace serving::auth
