// The records kept beside an environment (envs/environment_records.h) and the build output they
// quote (envs/build_output.h): what the sandboxed installer printed can always be recorded and
// read back, and a record of the wrong shape reads as none instead of throwing.
#include "envs/environment_records.h"

#include <gtest/gtest.h>

#include <string>

#include "envs/build_output.h"

namespace packvisor::envs {
namespace {

TEST(EnvironmentRecords, MarkerAndFailureRecordReadBack) {
  auto marker = ParseReadyMarker(ReadyMarkerText({"sha256:ab", 42}, "python", 1700000000));
  ASSERT_TRUE(marker.has_value());
  EXPECT_EQ(marker->digest, "sha256:ab");
  EXPECT_EQ(marker->ino, 42u);
  auto record = ParseFailureRecord(FailureRecordText({"sha256:ab", "install failed", 7}, "node"));
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->digest, "sha256:ab");
  EXPECT_EQ(record->error, "install failed");
  EXPECT_EQ(record->failed_at, 7);
}

// nlohmann's value("ino", 0) threw type_error when the field had another type.
TEST(EnvironmentRecords, WrongTypedFieldsAreNoRecordNotAnException) {
  EXPECT_FALSE(ParseReadyMarker(R"({"digest": "d", "ino": "1"})").has_value());
  EXPECT_FALSE(ParseReadyMarker(R"({"digest": "d", "ino": -1})").has_value());
  EXPECT_FALSE(ParseFailureRecord(R"({"digest": "d", "error": "e", "failed_at": []})"));
  EXPECT_FALSE(ParseFailureRecord(R"({"digest": "d", "error": 1})").has_value());
  EXPECT_FALSE(ParseReadyMarker("not json").has_value());
  EXPECT_FALSE(ParseReadyMarker(std::string(100'000, '[')).has_value());
  EXPECT_TRUE(ParseReadyMarker(R"({"digest": "d"})").has_value());
}

// json::dump threw type_error 316 on bytes that are not UTF-8, and OutputLines cut lines inside a
// multi-byte character: a failed build printing either made recording the failure throw.
TEST(EnvironmentRecords, BuildOutputThatIsNotUtf8IsRecordedNotAnException) {
  std::string output = "ERROR: caf\xc3\xa9 \xff\xfe \xe2\x82 \x1b[31mred\x1b[0m\tend\n";
  output += "ERROR: " + std::string(150, 'x') + "\n";
  std::string accents = "ERROR: ";
  for (int i = 0; i < 150; ++i) accents += "\xc3\xa9";
  output += accents + "\n";
  std::string detail = StepFailureDetail("install", "exit 1", output, 8);
  EXPECT_EQ(detail.find('\x1b'), std::string::npos);
  EXPECT_NE(detail.find("caf\xc3\xa9 ?? ?? ?[31mred?[0m end"), std::string::npos) << detail;
  auto record = ParseFailureRecord(FailureRecordText({"sha256:ab", detail, 1}, "python"));
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->error, detail);
  // A raw byte that is not UTF-8 is replaced when written, never thrown on.
  auto raw = ParseFailureRecord(FailureRecordText({"sha256:ab", "bad \xff byte", 1}, "python"));
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->error, "bad \xef\xbf\xbd byte");
}

TEST(OutputLines, CutsLongLinesBetweenCharacters) {
  std::string accents;
  for (int i = 0; i < 150; ++i) accents += "\xc3\xa9";  // 300 bytes
  auto lines = OutputLines("x" + accents + "\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].size(), 199u);  // "x" and 99 characters of two bytes
}

}  // namespace
}  // namespace packvisor::envs
