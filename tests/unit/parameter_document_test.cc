#include "supervisor/executions/parameter_document.h"

#include <gtest/gtest.h>

#include "supervisor/executions/result_parsing.h"
#include "supervisor/packs/packs.h"

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
  ParsedOutput parsed = ParseActionOutput(FormatParameterDocument(inputs, ParameterFormat::kYaml),
                                          OutputFormat::kYaml);
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.result, inputs);
}

// fuzz target parameter_documents: a plain YAML key such as `yes`, `1` or `null` is no string to
// YAML 1.1 loaders (PyYAML); every key is double-quoted.
TEST(ParameterDocumentYaml, PlainKeysThatLoadersReadAsNonStringsAreQuoted) {
  json inputs = {{"o", {{"yes", 1}, {"1", 2}, {"null", 3}, {"", 4}}}};
  std::string doc = FormatParameterDocument(inputs, ParameterFormat::kYaml);
  for (const char* key : {"\"yes\": 1", "\"1\": 2", "\"null\": 3", "\"\": 4", "\"o\":"}) {
    EXPECT_NE(doc.find(key), std::string::npos) << key << " in " << doc;
  }
}

// fuzz target parameter_documents: nlohmann writes 1e100 as 1e+100, which YAML 1.1 loaders read
// as a string; the YAML document writes 1.0e+100.
TEST(ParameterDocumentYaml, FloatsWithoutADotGetOneSoYaml11LoadersReadNumbers) {
  json inputs = {{"big", 1e100}, {"small", 1e-7}, {"plain", 1.5}};
  std::string doc = FormatParameterDocument(inputs, ParameterFormat::kYaml);
  EXPECT_NE(doc.find("\"big\": 1.0e+100"), std::string::npos) << doc;
  EXPECT_NE(doc.find("\"small\": 1.0e-07"), std::string::npos) << doc;
  EXPECT_NE(doc.find("\"plain\": 1.5"), std::string::npos) << doc;
  ParsedOutput parsed = ParseActionOutput(doc, OutputFormat::kYaml);
  EXPECT_EQ(parsed.result, inputs);
}

// fuzz target parameter_documents: nested keys holding '.', '=', a quote or a newline made lines
// that read back as other keys (or two lines with one key), and an empty object vanished. Such
// objects are one compact JSON value.
TEST(ParameterDocumentDotenv, ObjectsWithKeysALineCannotCarryAreOneJsonValue) {
  json inputs = {{"a", {{"b.c", 1}, {"b", {{"c", 2}}}}},
                 {"e", json::object()},
                 {"k", {{"x=y\n", "v"}}},
                 {"ok", {{"x-1", {{"y_2", true}}}}}};
  EXPECT_EQ(FormatParameterDocument(inputs, ParameterFormat::kDotenv),
            "a='{\"b\":{\"c\":2},\"b.c\":1}'\ne='{}'\nk='{\"x=y\\n\":\"v\"}'\nok.x-1.y_2='true'\n");
}

// fuzz target parameter_documents (crash-yaml-long-escaped-key): a 600-byte key with control
// characters passed 1024 characters once escaped, an implicit key no loader accepts.
TEST(ParameterDocumentYaml, LongKeyWithEscapesIsAnExplicitKeyThatLoads) {
  std::string key(600, 'k');
  key[5] = '\x01';
  json inputs = {{key, 1}, {"a", 2}};
  ParsedOutput parsed = ParseActionOutput(FormatParameterDocument(inputs, ParameterFormat::kYaml),
                                          OutputFormat::kYaml);
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.result, inputs);
}

// fuzz target parameter_documents (crash-yaml-noncharacter-string): the string "\ufffe" did not
// read back from the YAML document (yaml-cpp's emitter writes U+FFFD for a noncharacter):
// ValidateParameters refuses noncharacters. U+0085 and U+2028 are line breaks to YAML 1.1
// loaders: the document escapes every non-ASCII character.
TEST(ParameterDocumentYaml, NoncharacterIsRefusedByValidationAndNonAsciiIsEscaped) {
  json inputs = {{"u", "\u00e9\u4e2d\U0001F600"},  // C++ escapes: UTF-8 in the strings
                 {"breaks", "a\u0085b\u2028c"},
                 {"k\u00e9y", 1}};
  std::string doc = FormatParameterDocument(inputs, ParameterFormat::kYaml);
  for (unsigned char c : doc) EXPECT_LT(c, 0x80) << doc;
  ParsedOutput parsed = ParseActionOutput(doc, OutputFormat::kYaml);
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.result, inputs) << doc;

  Action action;
  action.parameters["s"].type = ParamType::kString;
  action.parameters["o"].type = ParamType::kObject;
  for (json params : {json{{"s", "x\uFFFEy"}}, json{{"s", "\uFFFF"}}, json{{"s", "\U0010FFFE"}},
                      json{{"o", {{"\uFDD0", 1}}}}}) {
    auto refused = ValidateParameters(action, params);
    ASSERT_FALSE(refused.ok()) << params.dump();
    EXPECT_NE(refused.error().message().find("noncharacter"), std::string::npos)
        << refused.error().message();
  }
  EXPECT_TRUE(ValidateParameters(action, {{"s", "\uFFFD\uFDCF\uFDF0"}}).ok());
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

TEST(ParameterDocument, DotenvNullIsAnEmptyValue) {
  json inputs = {{"name", "ann"}, {"nickname", nullptr}};
  EXPECT_EQ(FormatParameterDocument(inputs, ParameterFormat::kDotenv), "name='ann'\nnickname=''\n");
}

TEST(ParameterText, StringTakesTheRawText) {
  EXPECT_EQ(ParameterValueFromText(ParamType::kString, "2"), json("2"));
  EXPECT_EQ(ParameterValueFromText(ParamType::kString, "true"), json("true"));
  EXPECT_EQ(ParameterValueFromText(ParamType::kString, "\"q\""), json("\"q\""));
  EXPECT_EQ(ParameterValueFromText(ParamType::kString, "{\"a\": 1}"), json("{\"a\": 1}"));
  EXPECT_EQ(ParameterValueFromText(ParamType::kString, ""), json(""));
}

TEST(ParameterText, OtherAndUndeclaredTypesTryJsonFirst) {
  EXPECT_EQ(ParameterValueFromText(ParamType::kInteger, "2"), json(2));
  EXPECT_EQ(ParameterValueFromText(ParamType::kBoolean, "false"), json(false));
  EXPECT_EQ(ParameterValueFromText(ParamType::kArray, "[1, \"a\"]"), json::parse("[1, \"a\"]"));
  EXPECT_EQ(ParameterValueFromText(std::nullopt, "2.5"), json(2.5));
  EXPECT_EQ(ParameterValueFromText(std::nullopt, "abc"), json("abc"));
  EXPECT_EQ(ParameterValueFromText(std::nullopt, "null"), json(nullptr));
  // Not JSON: the text, which validation then refuses for an integer parameter.
  EXPECT_EQ(ParameterValueFromText(ParamType::kInteger, "many"), json("many"));
}

TEST(ResultParsing, JsonWholeOrLastLine) {
  EXPECT_EQ(ParseActionOutput("{\"a\": 1}\n", OutputFormat::kJson).result, json({{"a", 1}}));
  ParsedOutput last = ParseActionOutput("log line\nmore\n{\"ok\": true}\n\n", OutputFormat::kJson);
  EXPECT_EQ(last.result, json({{"ok", true}}));
  EXPECT_FALSE(last.error);
  EXPECT_TRUE(ParseActionOutput("", OutputFormat::kJson).result.is_null());
  EXPECT_TRUE(ParseActionOutput("{\"a\":1}", OutputFormat::kText).result.is_null());
}

TEST(ResultParsing, JsonThatDoesNotParseIsAnErrorAndNoResult) {
  ParsedOutput bad = ParseActionOutput("not json\nstill not {\n", OutputFormat::kJson);
  EXPECT_TRUE(bad.result.is_null());
  ASSERT_TRUE(bad.error);
  EXPECT_EQ(*bad.error, "output_format json: stdout is not valid JSON, nor is its last line");
  ParsedOutput secret = ParseActionOutput("s3cr3t-value\n", OutputFormat::kJson);
  ASSERT_TRUE(secret.error);
  EXPECT_EQ(secret.error->find("s3cr3t"), std::string::npos) << "never quotes the output";
}

TEST(ResultParsing, JsonlSkipsBadLinesCountingThemWithTheFirstLineNumber) {
  ParsedOutput all = ParseActionOutput("{\"a\":1}\n\n[2]\n3\n", OutputFormat::kJsonl);
  EXPECT_EQ(all.result, json::parse("[{\"a\":1},[2],3]"));
  EXPECT_FALSE(all.error);
  ParsedOutput some =
      ParseActionOutput("\n{\"a\":1}\nbad\n[2]\nworse {\n3\n", OutputFormat::kJsonl);
  EXPECT_EQ(some.result, json::parse("[{\"a\":1},[2],3]"));
  ASSERT_TRUE(some.error);
  EXPECT_EQ(*some.error,
            "output_format jsonl: skipped 2 lines that are not valid JSON (the first at line 3)");
  ParsedOutput one = ParseActionOutput("bad\n{}\n", OutputFormat::kJsonl);
  EXPECT_EQ(one.result, json::parse("[{}]"));
  EXPECT_EQ(*one.error,
            "output_format jsonl: skipped 1 line that is not valid JSON (the first at line 1)");
  ParsedOutput none = ParseActionOutput("bad\nworse\n", OutputFormat::kJsonl);
  EXPECT_TRUE(none.result.is_null());
  EXPECT_TRUE(none.error);
}

TEST(ResultParsing, Yaml) {
  EXPECT_EQ(ParseActionOutput("a: 1\nb: [x, 'y']\nc: true\n", OutputFormat::kYaml).result,
            json::parse("{\"a\":1,\"b\":[\"x\",\"y\"],\"c\":true}"));
  ParsedOutput bad = ParseActionOutput("a: [1, 2\nb: {\n", OutputFormat::kYaml);
  EXPECT_TRUE(bad.result.is_null());
  ASSERT_TRUE(bad.error);
  EXPECT_EQ(bad.error->rfind("output_format yaml: ", 0), 0u) << *bad.error;
}

TEST(ResultParsing, FailureSummaryFollowsTheOldRule) {
  EXPECT_EQ(FailureSummary(3, ""), "exited with code 3");
  EXPECT_EQ(FailureSummary(1, "boom\n"), "boom");
  EXPECT_EQ(FailureSummary(1, "1\n2\n3\n4\n5\n6 last\n"), "6 last");
}

}  // namespace
}  // namespace packvisor
