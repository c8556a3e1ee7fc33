// ParseActionOutput on hostile stdout: nesting, alias expansion and shapes that made yaml-cpp or
// nlohmann-json throw or recurse, refused with one line (docs/fuzzing.md, target action_output).
#include "supervisor/executions/result_parsing.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/text.h"

namespace packvisor {
namespace {

using nlohmann::json;
using packvisor::testing::Repeat;

constexpr int kDeep = 100000;

void ExpectOneLine(const std::optional<std::string>& error) {
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->find('\n'), std::string::npos) << *error;
  EXPECT_LT(error->size(), 300u) << *error;
}

TEST(ActionOutputJson, HundredThousandDeepDocumentIsRefusedNotACrash) {
  ParsedOutput parsed =
      ParseActionOutput(Repeat("[", kDeep) + Repeat("]", kDeep), OutputFormat::kJson);
  EXPECT_TRUE(parsed.result.is_null());
  ExpectOneLine(parsed.error);
  EXPECT_EQ(*parsed.error,
            "output_format json: stdout is not valid JSON nested at most 64 levels deep, nor is "
            "its last line");
}

TEST(ActionOutputJson, SixtyFourLevelsStillParse) {
  ParsedOutput parsed = ParseActionOutput(Repeat("[", 64) + Repeat("]", 64), OutputFormat::kJson);
  EXPECT_FALSE(parsed.error);
  EXPECT_TRUE(parsed.result.is_array());
}

TEST(ActionOutputJson, DeepLogLinesBeforeAShallowLastLineStillGiveTheResult) {
  ParsedOutput parsed =
      ParseActionOutput(Repeat("{\"a\":", kDeep) + "1" + Repeat("}", kDeep) + "\n{\"ok\": true}\n",
                        OutputFormat::kJson);
  EXPECT_FALSE(parsed.error);
  EXPECT_EQ(parsed.result, json({{"ok", true}}));
}

TEST(ActionOutputJsonl, HundredThousandDeepLineIsSkippedAndCountedNotACrash) {
  ParsedOutput parsed = ParseActionOutput("1\n" + Repeat("[", kDeep) + Repeat("]", kDeep) + "\n2\n",
                                          OutputFormat::kJsonl);
  EXPECT_EQ(parsed.result, json::parse("[1, 2]"));
  ExpectOneLine(parsed.error);
  EXPECT_EQ(*parsed.error,
            "output_format jsonl: skipped 1 line that is not valid JSON nested at most 64 levels "
            "deep (the first at line 2)");
}

TEST(ActionOutputYaml, HundredThousandDeepFlowSequenceIsRefusedNotACrash) {
  ParsedOutput parsed =
      ParseActionOutput(Repeat("[", kDeep) + Repeat("]", kDeep), OutputFormat::kYaml);
  EXPECT_TRUE(parsed.result.is_null());
  ExpectOneLine(parsed.error);
  EXPECT_EQ(*parsed.error, "output_format yaml: line 1: nested deeper than 64 levels");
}

TEST(ActionOutputYaml, HundredThousandDeepFlowMappingIsRefusedNotACrash) {
  ParsedOutput parsed =
      ParseActionOutput(Repeat("{a: ", kDeep) + "1" + Repeat("}", kDeep), OutputFormat::kYaml);
  EXPECT_TRUE(parsed.result.is_null());
  ExpectOneLine(parsed.error);
  EXPECT_EQ(*parsed.error, "output_format yaml: line 1: nested deeper than 64 levels");
}

TEST(ActionOutputYaml, HundredThousandDeepBlockSequenceIsRefusedNotACrash) {
  // "- - - ... x": block sequences nested in the compact form, one level per "- ".
  ParsedOutput parsed = ParseActionOutput(Repeat("- ", kDeep) + "x\n", OutputFormat::kYaml);
  EXPECT_TRUE(parsed.result.is_null());
  ExpectOneLine(parsed.error);
  EXPECT_EQ(*parsed.error, "output_format yaml: line 1: nested deeper than 64 levels");
}

TEST(ActionOutputYaml, DeepBlockMappingIsRefusedAtTheSixtyFifthLevel) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += std::string(static_cast<size_t>(i), ' ') + "k:\n";
  ParsedOutput parsed = ParseActionOutput(text, OutputFormat::kYaml);
  EXPECT_TRUE(parsed.result.is_null());
  ExpectOneLine(parsed.error);
  EXPECT_EQ(*parsed.error, "output_format yaml: line 65: nested deeper than 64 levels");
}

TEST(ActionOutputYaml, AliasBombIsRefusedBeforeExpansion) {
  std::string text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    text += std::string(1, c) + ": &" + c + " [" +
            Repeat(std::string("*") + char(c - 1) + ", ", 9) + "*" + char(c - 1) + "]\n";
  }
  ParsedOutput parsed = ParseActionOutput(text, OutputFormat::kYaml);
  EXPECT_TRUE(parsed.result.is_null());
  ExpectOneLine(parsed.error);
  EXPECT_NE(parsed.error->find("nodes once aliases are expanded (refused)"), std::string::npos)
      << *parsed.error;
}

TEST(ActionOutputYaml, ADocumentWithoutAliasesIsNeverTooLarge) {
  std::string text = Repeat("- 1\n", 50000);  // 50,000 nodes, more than pack YAML may have
  ParsedOutput parsed = ParseActionOutput(text, OutputFormat::kYaml);
  EXPECT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.result.size(), 50000u);
}

TEST(ActionOutputYaml, SequenceAsMappingKeyIsAnErrorNotAnException) {
  ParsedOutput parsed = ParseActionOutput("? [a, b]\n: 1\n", OutputFormat::kYaml);
  EXPECT_TRUE(parsed.result.is_null());
  ExpectOneLine(parsed.error);
  EXPECT_EQ(*parsed.error, "output_format yaml: line 1: a mapping key is not a string");
}

TEST(ActionOutputYaml, SurrogateEscapeIsAnErrorNotAnUndumpableResult) {
  ParsedOutput parsed = ParseActionOutput("a: \"\\ud800\"\n", OutputFormat::kYaml);
  EXPECT_TRUE(parsed.result.is_null());
  ExpectOneLine(parsed.error);
  EXPECT_EQ(*parsed.error, "output_format yaml: line 1: not a valid YAML document");
}

}  // namespace
}  // namespace packvisor
