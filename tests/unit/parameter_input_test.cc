// Parameter input others wrote: --params-json and parameter/secrets files (ParseObject), --param
// texts (ParameterValueFromText) and their validation, on hostile input (docs/fuzzing.md, target
// parameters): depth, bytes that are not UTF-8, secrets in errors.
#include <gtest/gtest.h>

#include <string>

#include "supervisor/cli/run_command.h"
#include "supervisor/executions/parameter_document.h"
#include "supervisor/packs/packs.h"
#include "tests/support/text.h"

namespace packvisor {
namespace {

using nlohmann::json;
using packvisor::testing::Repeat;

constexpr int kDeep = 100000;

TEST(ParamsJson, HundredThousandDeepObjectIsRefusedWithOneLineNotACrash) {
  std::string text = Repeat("{\"a\":", kDeep) + "1" + Repeat("}", kDeep);
  auto parsed = ParseObject(text, "--params-json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message(), "invalid JSON --params-json: nested deeper than 64 levels");
  EXPECT_EQ(text.find_first_not_of('\0'), std::string::npos) << "the text is wiped";
}

TEST(ParamsJson, SixtyFourLevelsAreAccepted) {
  std::string text = Repeat("{\"a\":", 64) + "1" + Repeat("}", 64);
  auto parsed = ParseObject(text, "--params-json");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
}

TEST(ParameterText, HundredThousandDeepTextStaysTextNotACrash) {
  std::string text = Repeat("[", kDeep) + Repeat("]", kDeep);
  json value = ParameterValueFromText(ParamType::kArray, text);
  ASSERT_TRUE(value.is_string());
  Action action;
  action.parameters["a"].type = ParamType::kArray;
  auto validated = ValidateParameters(action, {{"a", value}});
  ASSERT_FALSE(validated.ok());
  EXPECT_EQ(validated.error().message(), "parameter \"a\": expected array, got string");
}

// A --param text is raw bytes: invalid UTF-8 used to pass validation and make the JSON document
// throw (nlohmann type_error 316) when it was written.
TEST(ParameterText, InvalidUtf8IsRefusedByValidationNotAThrowWhenTheDocumentIsWritten) {
  Action action;
  action.parameters["s"].type = ParamType::kString;
  action.parameters["o"].type = ParamType::kObject;
  auto text =
      ValidateParameters(action, {{"s", ParameterValueFromText(ParamType::kString, "\xff")}});
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().message(), "parameter \"s\": not valid UTF-8");
  auto key = ValidateParameters(action, {{"o", {{"\xed\xa0\x80", 1}}}});
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().message(), "parameter \"o\": not valid UTF-8");
  auto name = ValidateParameters(action, {{"\xc0\xaf", 1}});
  ASSERT_FALSE(name.ok());
  EXPECT_EQ(name.error().message(), "unknown parameter (its name is not valid UTF-8)");
  auto good = ValidateParameters(action, {{"s", "\xc3\xa9\xf0\x9f\x98\x80"}});
  ASSERT_TRUE(good.ok()) << good.error().message();
  EXPECT_NO_THROW(FormatParameterDocument(*good, ParameterFormat::kJson));
}

// fuzz target pack_yaml (crash-default-not-utf8, CI's first 30 s run): a pack's default that is
// not UTF-8 was filled in, so that the same value given was refused and the JSON document of the
// defaults would have thrown. The default is held to the same rule.
TEST(ParameterText, PackDefaultThatIsNotUtf8IsRefusedNotFilledIn) {
  Action action;
  action.parameters["text"].type = ParamType::kString;
  action.parameters["text"].default_value = json(std::string("th\x9c quick brown fox"));
  auto filled = ValidateParameters(action, json::object());
  ASSERT_FALSE(filled.ok());
  EXPECT_EQ(filled.error().message(), "parameter \"text\": its default: not valid UTF-8");
  auto given = ValidateParameters(action, {{"text", "fine"}});
  ASSERT_TRUE(given.ok()) << given.error().message();
}

// fuzz target parameters (crash-param-name-del-byte): an undeclared --param name with a DEL byte
// came back raw in the one-line error.
TEST(ParameterText, UnknownNameWithDelByteIsQuotedWithoutControlCharacters) {
  Action action;
  auto validated = ValidateParameters(action, {{"a\x7f\x01"
                                                "b",
                                                1}});
  ASSERT_FALSE(validated.ok());
  EXPECT_EQ(validated.error().message(), "unknown parameter \"a??b\" (accepted: none)");
}

}  // namespace
}  // namespace packvisor
