#include "supervisor/output.h"

#include <gtest/gtest.h>

namespace packvisor {
namespace {

TEST(CappedOutput, KeepsEverythingUnderTheLimit) {
  CappedOutput out(1000, "stdout");
  out.Consume("Hello, World!");
  EXPECT_FALSE(out.truncated());
  EXPECT_EQ(out.Text(), "Hello, World!");
  EXPECT_EQ(out.bytes_truncated(), 0u);
}

TEST(CappedOutput, ExactFitDoesNotTruncate) {
  CappedOutput out(128 + 10, "stdout");
  out.Consume("0123456789");
  EXPECT_FALSE(out.truncated());
}

TEST(CappedOutput, TruncatesWithMarkerAndCounts) {
  CappedOutput out(128 + 10, "stderr");
  out.Consume("0123456789abc");
  out.Consume("defgh");
  EXPECT_TRUE(out.truncated());
  EXPECT_EQ(out.Text(), "0123456789\n\n[OUTPUT TRUNCATED: stderr exceeded size limit]\n");
  EXPECT_EQ(out.bytes_truncated(), 8u);
}

TEST(CappedOutput, IsFullOnceTruncatedAndCountsSkippedBytes) {
  CappedOutput out(128 + 10, "stdout");
  out.Consume("0123456789");
  EXPECT_FALSE(out.Full());  // exactly at the limit: one more byte must still be looked at
  out.Consume("a");
  EXPECT_TRUE(out.Full());
  out.Skipped(1000);
  EXPECT_EQ(out.total_bytes(), 1011u);
  EXPECT_EQ(out.bytes_truncated(), 1001u);
  EXPECT_EQ(out.Text(), "0123456789\n\n[OUTPUT TRUNCATED: stdout exceeded size limit]\n");
}

TEST(CappedOutput, CutsAtUtf8Boundary) {
  CappedOutput out(128 + 4, "stdout");
  out.Consume("ab\xc3\xa9\xc3\xa9");  // "abéé": the limit falls after "ab\xc3\xa9"
  EXPECT_EQ(out.Text().substr(0, 4), "ab\xc3\xa9");
  CappedOutput split(128 + 3, "stdout");
  split.Consume("ab\xc3\xa9");  // the limit splits é
  EXPECT_EQ(split.Text().substr(0, 4), "ab\n\n");
  EXPECT_EQ(split.bytes_truncated(), 2u);
}

}  // namespace
}  // namespace packvisor
