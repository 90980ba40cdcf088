#include "observability/tracing.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/inference_server.h"

namespace serving {
namespace {

TEST(TraceContext, ValidTraceparentKeepsTraceParentAndFlag) {
  auto c = ParseTraceContext("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "vendor=x");
  EXPECT_EQ(c.trace_id, "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(c.parent_span_id, "b7ad6b7169203331");
  EXPECT_TRUE(c.parent_sampled);
  EXPECT_EQ(c.tracestate, "vendor=x");
  c = ParseTraceContext("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", "");
  EXPECT_FALSE(c.parent_sampled);
  // A later version may append fields.
  EXPECT_EQ(ParseTraceContext("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03-later", "").parent_span_id,
            "b7ad6b7169203331");
}

TEST(TraceContext, MalformedTraceparentIsIgnoredWhole) {
  for (const char* bad : {"", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
                          "00-00000000000000000000000000000000-b7ad6b7169203331-01",
                          "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                          "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
                          "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
                          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01"}) {
    const auto c = ParseTraceContext(bad, "vendor=x");
    EXPECT_TRUE(c.trace_id.empty() && c.parent_span_id.empty() && c.tracestate.empty()) << bad;
  }
  EXPECT_TRUE(ParseTraceContext("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", std::string(513, 'a'))
                  .tracestate.empty());
}

TEST(TraceSampling, ParentDecidesElseTheRatioOfTheTraceId) {
  TraceContext sampled_parent;
  sampled_parent.trace_id = std::string(32, 'f');
  sampled_parent.parent_span_id = "b7ad6b7169203331";
  sampled_parent.parent_sampled = true;
  TraceContext unsampled_parent = sampled_parent;
  unsampled_parent.parent_sampled = false;
  EXPECT_TRUE(TraceSampled(sampled_parent, 0.0));
  EXPECT_FALSE(TraceSampled(unsampled_parent, 1.0));
  TraceContext low, high, random;
  low.trace_id = "ffffffffffffffff0000000000000001";
  high.trace_id = "0000000000000000ffffffffffffffff";
  EXPECT_TRUE(TraceSampled(low, 0.01));
  EXPECT_FALSE(TraceSampled(high, 0.99));
  EXPECT_TRUE(TraceSampled(high, 1.0));
  EXPECT_FALSE(TraceSampled(low, 0.0));
  int traced = 0;
  for (int i = 0; i < 10000; ++i) {
    random.trace_id = NewTraceId();
    traced += TraceSampled(random, 0.25);
  }
  EXPECT_NEAR(traced, 2500, 200);  // 5 standard deviations
}

TEST(OtlpJson, SpansUnderOneResourceInTheOtlpJsonMapping) {
  Span s;
  s.trace_id = "0af7651916cd43dd8448eb211c80319c";
  s.span_id = "00f067aa0ba902b7";
  s.parent_span_id = "b7ad6b7169203331";
  s.tracestate = "vendor=x";
  s.name = "infer m";
  s.server = true;
  s.start_unix_ns = 1700000000000000000;
  s.end_unix_ns = 1700000000000001000;
  s.attributes = {{"inference.model", std::string("m")}, {"inference.model_version", int64_t{2}}, {"flag", true}};
  s.events = {{"decoded", 1700000000000000500}};
  s.links = {{"0af7651916cd43dd8448eb211c80319c", "1111111111111111"}};
  s.error = "bad \xff input";
  const auto j = nlohmann::json::parse(EncodeOtlpJson({s}, {{"service.name", "inference-server"}}));
  const auto& rs = j["resourceSpans"][0];
  EXPECT_EQ(rs["resource"]["attributes"][0]["key"], "service.name");
  EXPECT_EQ(rs["resource"]["attributes"][0]["value"]["stringValue"], "inference-server");
  const auto& span = rs["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["traceId"], s.trace_id);
  EXPECT_EQ(span["spanId"], s.span_id);
  EXPECT_EQ(span["parentSpanId"], s.parent_span_id);
  EXPECT_EQ(span["traceState"], "vendor=x");
  EXPECT_EQ(span["kind"], 2);
  EXPECT_EQ(span["startTimeUnixNano"], "1700000000000000000");  // 64-bit integers as strings
  EXPECT_EQ(span["attributes"][1]["value"]["intValue"], "2");
  EXPECT_EQ(span["attributes"][2]["value"]["boolValue"], true);
  EXPECT_EQ(span["events"][0]["name"], "decoded");
  EXPECT_EQ(span["links"][0]["spanId"], "1111111111111111");
  EXPECT_EQ(span["status"]["code"], 2);
  EXPECT_EQ(span["status"]["message"], "bad \xef\xbf\xbd input");  // not UTF-8: replaced, not refused
}

TEST(OtlpJson, AnyStringIsWrittenAsJsonThatReadsBackTheSame) {
  const std::string hostile[] = {"plain",
                                 "quote \" and \\ backslash",
                                 std::string("nul \0 byte", 10),
                                 "\x01\x1f control",
                                 "caf\xc3\xa9 \xf0\x9f\x99\x82",
                                 "tab\tnew\nline",
                                 "</script>",
                                 ""};
  for (const auto& text : hostile) {
    Span s;
    s.trace_id = std::string(32, 'a');
    s.span_id = std::string(16, 'b');
    s.name = text;
    s.attributes = {{text, text}};
    s.error = text.empty() ? "x" : text;
    const auto j = nlohmann::json::parse(EncodeOtlpJson({s}, {{text, text}}));
    const auto& span = j["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    EXPECT_EQ(span["name"], text);
    EXPECT_EQ(span["attributes"][0]["key"], text);
    EXPECT_EQ(span["attributes"][0]["value"]["stringValue"], text);
    EXPECT_EQ(j["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"], text);
  }
  // Several spans in one body, none of them with optional fields.
  Span a, b;
  a.trace_id = b.trace_id = std::string(32, 'c');
  a.span_id = "1111111111111111";
  b.span_id = "2222222222222222";
  const auto j = nlohmann::json::parse(EncodeOtlpJson({a, b}, {}));
  const auto& spans = j["resourceSpans"][0]["scopeSpans"][0]["spans"];
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[1]["spanId"], "2222222222222222");
  EXPECT_FALSE(spans[0].contains("parentSpanId") || spans[0].contains("links") || spans[0].contains("status"));
}

}  // namespace
}  // namespace serving
