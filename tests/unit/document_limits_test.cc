// envs/document_limits: depth measured before a parser library recurses.
#include "envs/document_limits.h"

#include <gtest/gtest.h>

#include <string>

namespace packvisor {
namespace {

TEST(JsonNestsDeeperThan, CountsArraysAndObjectsAndStopsAtTheLimit) {
  EXPECT_FALSE(JsonNestsDeeperThan(R"({"a": [1, {"b": []}]})", 4));
  EXPECT_TRUE(JsonNestsDeeperThan(R"({"a": [1, {"b": []}]})", 3));
  EXPECT_FALSE(JsonNestsDeeperThan("[[]][[]][[]]", 2));  // siblings do not add up
}

TEST(JsonNestsDeeperThan, BracketsInsideStringsAndEscapesDoNotCount) {
  EXPECT_FALSE(JsonNestsDeeperThan(R"(["[[[[", "\"[[[[", "\\"])", 1));
  EXPECT_TRUE(JsonNestsDeeperThan(R"(["\\", [[]]])", 2));
}

TEST(JsonNestsDeeperThan, AHundredThousandDeepDocumentIsRefusedWithoutParsing) {
  std::string deep(100'000, '[');
  deep += std::string(100'000, ']');
  EXPECT_TRUE(JsonNestsDeeperThan(deep, 64));
  std::string deep_objects;
  for (int i = 0; i < 100'000; ++i) deep_objects += R"({"a":)";
  EXPECT_TRUE(JsonNestsDeeperThan(deep_objects, 64));  // unterminated too
}

}  // namespace
}  // namespace packvisor

namespace packvisor {
namespace {

TEST(TomlNestsDeeperThan, CountsHeadersDottedKeysAndInlineValues) {
  EXPECT_FALSE(TomlNestsDeeperThan("a = 1\n", 1));
  EXPECT_TRUE(TomlNestsDeeperThan("a.b = 1\n", 1));
  EXPECT_FALSE(TomlNestsDeeperThan("a.b = 1\n", 2));
  EXPECT_TRUE(TomlNestsDeeperThan("a = [[1]]\n", 1));
  EXPECT_FALSE(TomlNestsDeeperThan("a = [[1]]\n", 2));
  EXPECT_TRUE(TomlNestsDeeperThan("a = {b.c = {d = 1}}\n", 3));
  EXPECT_FALSE(TomlNestsDeeperThan("a = {b.c = {d = 1}}\n", 4));
  // A header's components count twice (each may be an array of tables holding a table), and the
  // keys beneath it add to it.
  EXPECT_FALSE(TomlNestsDeeperThan("[a.b]\nc = 1\n", 5));
  EXPECT_TRUE(TomlNestsDeeperThan("[a.b]\nc = 1\n", 4));
  EXPECT_TRUE(TomlNestsDeeperThan("[[a.b.c]]\n", 5));
}

TEST(TomlNestsDeeperThan, StringsCommentsAndNumbersDoNotCount) {
  EXPECT_FALSE(TomlNestsDeeperThan(R"("a.b.c.d" = "[[[[{{{{")", 1));
  EXPECT_FALSE(TomlNestsDeeperThan("a = '''[[[[\n[[[['''\n# [[[[ a.b.c.d.e\n", 1));
  EXPECT_FALSE(TomlNestsDeeperThan("a = \"\"\"x\"\"\"\"\"\nb = 1.5e3\n", 1));
  EXPECT_FALSE(TomlNestsDeeperThan("['a.b.c.d']\n", 2));
  // Quotes ending a multi-line string are part of it, not the start of another string.
  EXPECT_TRUE(TomlNestsDeeperThan("a = \"\"\"x\"\"\"\"\nb.c.d = 1\n", 2));
}

TEST(TomlNestsDeeperThan, WideDocumentsAreNotDeep) {
  std::string floats = "a = [";
  for (int i = 0; i < 100'000; ++i) floats += "1.5, ";
  floats += "]\n";
  EXPECT_FALSE(TomlNestsDeeperThan(floats, 2));
  std::string keys;
  for (int i = 0; i < 100'000; ++i) keys += "k" + std::to_string(i) + " = 1\n";
  EXPECT_FALSE(TomlNestsDeeperThan(keys, 1));
}

TEST(TomlNestsDeeperThan, AHundredThousandDeepDocumentIsRefusedWithoutParsing) {
  const int deep = 100'000;
  std::string arrays = "a = " + std::string(deep, '[') + std::string(deep, ']');
  std::string tables = "a = ";
  std::string dotted;
  std::string header = "[";
  for (int i = 0; i < deep; ++i) {
    tables += "{b = ";
    dotted += "a.";
    header += "a.";
  }
  dotted += "a = 1\n";
  header += "a]\n";
  for (const std::string& text : {arrays, tables, dotted, header, "[" + header + "]"}) {
    EXPECT_TRUE(TomlNestsDeeperThan(text, kMaxTomlDepth)) << text.substr(0, 20);
  }
}

}  // namespace
}  // namespace packvisor
