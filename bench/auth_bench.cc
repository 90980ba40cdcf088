// The cost of the authorization step every request passes (docs/benchmarks.md#security): Authorize() with no
// policy, with a bearer token among 1 and 1,000 tokens (every digest is compared, in constant time), and with a
// Triton restricted-API header.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "auth/authorizer.h"

namespace serving::auth {
namespace {

std::unique_ptr<Authorizer> WithTokens(int count) {
  const auto path = std::filesystem::temp_directory_path() / ("auth-bench-" + std::to_string(getpid()) + ".json");
  std::ofstream out(path);
  out << R"({"tokens": [)";
  for (int i = 0; i < count; ++i)
    out << (i ? "," : "") << R"({"name": "t)" << i << R"(", "token": "token-0123456789-)" << i
        << R"(", "scopes": ["infer"]})";
  out << "]}";
  out.close();
  Authorizer::Options o;
  o.tokens_file = path.string();
  auto a = Authorizer::Create(o, nullptr);
  std::filesystem::remove(path);
  return std::move(a).value();
}

void Ask(benchmark::State& state, const Authorizer& a, const std::string& authorization, const char* header = "",
         const std::string& value = "") {
  RequestContext c;
  c.operation = "POST /v2/models/{model}/infer";
  c.category = Category::kInference;
  c.header = [&](std::string_view name) {
    if (name == "authorization") return authorization;
    return name == header ? value : std::string();
  };
  for (auto _ : state) benchmark::DoNotOptimize(a.Authorize(c));
}

void BM_NoPolicy(benchmark::State& state) {
  auto a = Authorizer::Create({}, nullptr);
  Ask(state, **a, "");
}
BENCHMARK(BM_NoPolicy);

void BM_BearerToken(benchmark::State& state) {
  auto a = WithTokens(static_cast<int>(state.range(0)));
  Ask(state, *a, "Bearer token-0123456789-0");
}
BENCHMARK(BM_BearerToken)->Arg(1)->Arg(1000);

void BM_TritonRestrictedHeader(benchmark::State& state) {
  Authorizer::Options o;
  (void)o.restricted.Add(Transport::kHttp, "inference:infer-key=infer-value");
  auto a = Authorizer::Create(std::move(o), nullptr);
  Ask(state, **a, "", "infer-key", "infer-value");
}
BENCHMARK(BM_TritonRestrictedHeader);

}  // namespace
}  // namespace serving::auth

BENCHMARK_MAIN();
