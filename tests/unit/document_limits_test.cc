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
