// The decisive line and the one-line failure detail of an environment build step
// (envs/build_output.h), on outputs the real installers print.
#include "envs/build_output.h"

#include <gtest/gtest.h>

#include <string>

namespace packvisor::envs {
namespace {

constexpr const char* kPipMissing =
    "Looking in links: /pack/wheels\n"
    "ERROR: Could not find a version that satisfies the requirement nope-pkg (from versions: "
    "none)\n"
    "ERROR: No matching distribution found for nope-pkg\n";

constexpr const char* kNpmMissingFile =
    "npm warn tarball tarball data for x@file:/pack/vendor/missing.tgz (null) seems to be "
    "corrupted. Trying again.\n"
    "npm error code ENOENT\n"
    "npm error syscall open\n"
    "npm error path /pack/vendor/missing.tgz\n"
    "npm error errno -2\n"
    "npm error enoent ENOENT: no such file or directory, open '/pack/vendor/missing.tgz'\n"
    "npm error enoent This is related to npm not being able to find a file.\n"
    "npm error enoent\n"
    "\n"
    "npm error A complete log of this run can be found in: /tmp/.npm/_logs/x-debug-0.log\n";

constexpr const char* kNpmOffline =
    "npm error code ENOTCACHED\n"
    "npm error request to https://registry.npmjs.org/leftpadzz failed: cache mode is "
    "'only-if-cached' but no cached response is available.\n"
    "npm error A complete log of this run can be found in: /tmp/.npm/_logs/y-debug-0.log\n";

TEST(DecisiveLine, PipNamesTheMissingDistribution) {
  EXPECT_EQ(DecisiveLine(OutputLines(kPipMissing)),
            "ERROR: No matching distribution found for nope-pkg");
}

TEST(DecisiveLine, NpmSkipsItsBookkeepingLines) {
  EXPECT_EQ(DecisiveLine(OutputLines(kNpmMissingFile)),
            "npm error enoent ENOENT: no such file or directory, open '/pack/vendor/missing.tgz'");
  EXPECT_EQ(DecisiveLine(OutputLines(kNpmOffline)),
            "npm error request to https://registry.npmjs.org/leftpadzz failed: cache mode is "
            "'only-if-cached' but no cached response is available.");
}

TEST(DecisiveLine, PythonExceptionAndPlainOutput) {
  EXPECT_EQ(DecisiveLine(OutputLines("Traceback (most recent call last):\n  File \"x\", line 1\n"
                                     "ModuleNotFoundError: No module named 'ensurepip'\n")),
            "ModuleNotFoundError: No module named 'ensurepip'");
  // Nothing reads as an error: the last non-empty line.
  EXPECT_EQ(DecisiveLine(OutputLines("allocated 8 MiB\nallocated 16 MiB\n\n  \n")),
            "allocated 16 MiB");
  EXPECT_EQ(DecisiveLine(OutputLines("")), "");
}

TEST(StepFailureDetail, DecisiveLineFirstThenTheTail) {
  EXPECT_EQ(StepFailureDetail("install", "exit 1", kPipMissing, 8),
            "install failed (exit 1): ERROR: No matching distribution found for nope-pkg; output: "
            "Looking in links: /pack/wheels | ERROR: Could not find a version that satisfies the "
            "requirement nope-pkg (from versions: none)");
  // The tail keeps the last lines only.
  EXPECT_EQ(StepFailureDetail("create", "killed by signal 9", "a\nb\nc\nd\n", 2),
            "create failed (killed by signal 9): d; output: b | c");
  EXPECT_EQ(StepFailureDetail("create", "exit 3", "only\n", 8), "create failed (exit 3): only");
  EXPECT_EQ(StepFailureDetail("create", "exit 3", "", 8), "create failed (exit 3)");
}

TEST(OutputLines, DropsBlankLinesAndCutsLongOnes) {
  std::string long_line(500, 'x');
  auto lines = OutputLines("one\r\n\n   \n" + long_line + "\ntwo   ");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "one");
  EXPECT_EQ(lines[1].size(), 200u);
  EXPECT_EQ(lines[2], "two");
}

TEST(BuildOutputTail, KeepsTheEndOfALongOutput) {
  BuildOutputTail tail;
  for (int i = 0; i < 10000; ++i) tail.Consume("line " + std::to_string(i) + "\n");
  EXPECT_LT(tail.text().size(), 40u << 10);
  EXPECT_EQ(DecisiveLine(OutputLines(tail.text())), "line 9999");
}

}  // namespace
}  // namespace packvisor::envs
