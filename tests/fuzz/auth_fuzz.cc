// libFuzzer target for what the authorization seam reads from outside: the tokens file (ParseTokens), Triton's
// restricted-API flag values (RestrictedApi::Add) and a request's Authorization header (Authorizer::Authorize,
// with the Bearer parsing and the constant-time token lookup). Input: "<file or flag>\n<header value>".
// scripts/fuzz.sh builds and runs it (make fuzz); the committed seeds in tests/fuzz/corpus/auth run as its corpus.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include "auth/authorizer.h"
#include "observability/logger.h"

using serving::auth::Authorizer;
using serving::auth::Category;
using serving::auth::RequestContext;
using serving::auth::Transport;

namespace {

// One authorizer with a tokens file and a restricted rule, made once.
const Authorizer& Fixed() {
  static const Authorizer* authorizer = [] {
    serving::logging::Configure(serving::logging::Level::kError, serving::logging::Format::kJson);
    const std::string path = "/tmp/auth-fuzz-" + std::to_string(getpid()) + ".json";
    std::ofstream(path) << R"({"tokens": [{"name": "a", "token": "fuzz-token-0123456789", "scopes": ["infer"]},
      {"name": "b", "token": "expired-token-0123456789", "scopes": ["metadata"], "expires": "2001-01-01T00:00:00Z"}]})";
    Authorizer::Options o;
    o.tokens_file = path;
    (void)o.restricted.Add(Transport::kHttp, "statistics:key=value");
    auto made = Authorizer::Create(o, nullptr);
    unlink(path.c_str());
    return made.ok() ? made->release() : nullptr;
  }();
  return *authorizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view first = input.substr(0, newline);
  const std::string_view header = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  auto tokens = serving::auth::ParseTokens(first);
  if (tokens.ok()) (void)tokens->Find(header);
  serving::auth::RestrictedApi restricted;
  (void)restricted.Add(Transport::kGrpc, first);

  const std::string value(header);
  for (Category category : {Category::kInference, Category::kMetadata, Category::kStatistics, Category::kHealth}) {
    RequestContext context;
    context.operation = "fuzz";
    context.category = category;
    context.header = [&value](std::string_view name) {
      return name == "authorization" || name == "key" ? value : std::string();
    };
    (void)Fixed().Authorize(context);
  }
  return 0;
}
