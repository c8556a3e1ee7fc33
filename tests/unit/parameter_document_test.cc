#include "supervisor/parameter_document.h"

#include <gtest/gtest.h>

#include "supervisor/result_parsing.h"

namespace packvisor {
namespace {

using nlohmann::json;

TEST(ParameterDocument, JsonIsOneCompactLine) {
  json inputs = {{"name", "world"}, {"count", 3}, {"api_key", "s3cr3t"}};
  std::string doc = FormatParameterDocument(inputs, ParameterFormat::kJson);
  EXPECT_EQ(doc.find('\n'), doc.size() - 1);
  EXPECT_EQ(json::parse(doc), inputs);
}

TEST(ParameterDocument, DotenvIsSortedFlattenedAndQuoted) {
  json inputs = {{"b", "it's"}, {"a", {{"x", 1}, {"y", nullptr}}}, {"list", {1, 2}}, {"t", true}};
  EXPECT_EQ(FormatParameterDocument(inputs, ParameterFormat::kDotenv),
            "a.x='1'\na.y=''\nb='it'\\''s'\nlist='[1,2]'\nt='true'\n");
}

TEST(ParameterDocument, YamlRoundTrips) {
  json inputs = {{"name", "x: y"}, {"n", 2}, {"nested", {{"k", "v"}}}};
  auto parsed = ParseActionOutput(FormatParameterDocument(inputs, ParameterFormat::kYaml),
                                  OutputFormat::kYaml);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, inputs);
}

TEST(ShellHelpers, NonExportedVariablesWithEscaping) {
  json inputs = {{"api-key", "a'b"}, {"9lives", 9}};
  std::string script = ShellHelpersScript(inputs, "echo hi");
  EXPECT_EQ(script.rfind("#!/bin/bash\nset -e\n", 0), 0u);
  EXPECT_NE(script.find("PARAM_API_KEY='a'\\''b'\napi_key='a'\\''b'\n"), std::string::npos);
  EXPECT_NE(script.find("PARAM__LIVES='9'\n_lives='9'\n"), std::string::npos);
  EXPECT_EQ(script.find("export"), std::string::npos);
  EXPECT_NE(script.find("# Action code\necho hi\n"), std::string::npos);
}

TEST(ResultParsing, JsonWholeOrLastLine) {
  EXPECT_EQ(*ParseActionOutput("{\"a\": 1}\n", OutputFormat::kJson), json({{"a", 1}}));
  EXPECT_EQ(*ParseActionOutput("log line\nmore\n{\"ok\": true}\n\n", OutputFormat::kJson),
            json({{"ok", true}}));
  EXPECT_FALSE(ParseActionOutput("not json\nstill not\n", OutputFormat::kJson).ok());
  EXPECT_TRUE(ParseActionOutput("", OutputFormat::kJson)->is_null());
  EXPECT_TRUE(ParseActionOutput("{\"a\":1}", OutputFormat::kText)->is_null());
}

TEST(ResultParsing, JsonlAndYaml) {
  EXPECT_EQ(*ParseActionOutput("{\"a\":1}\n\n[2]\n3\n", OutputFormat::kJsonl),
            json::parse("[{\"a\":1},[2],3]"));
  EXPECT_FALSE(ParseActionOutput("{\"a\":1}\nbad\n", OutputFormat::kJsonl).ok());
  EXPECT_EQ(*ParseActionOutput("a: 1\nb: [x, 'y']\nc: true\n", OutputFormat::kYaml),
            json::parse("{\"a\":1,\"b\":[\"x\",\"y\"],\"c\":true}"));
}

TEST(ResultParsing, FailureSummaryFollowsTheOldRule) {
  EXPECT_EQ(FailureSummary(3, ""), "exited with code 3");
  EXPECT_EQ(FailureSummary(1, "boom\n"), "boom");
  EXPECT_EQ(FailureSummary(1, "1\n2\n3\n4\n5\n6 last\n"), "6 last");
}

}  // namespace
}  // namespace packvisor
