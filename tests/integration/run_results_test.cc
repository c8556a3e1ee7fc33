// Results of `packvisor run` (SPEC §7, §8): output_format json (whole stdout, then the last line),
// jsonl, yaml and text; parse failures; non-zero exits and their error summary; timeouts; the
// exit statuses for unknown packs and actions. Real binary, real sandbox.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;

class RunResultsTest : public ::testing::Test {
 protected:
  // A shell action printing `body` (a shell script) with the given output_format.
  void ShellAction(const std::string& name, const std::string& body,
                   const std::string& output_format) {
    world_.WriteSimpleAction("res", name, "shell", name + ".sh", body,
                             output_format.empty() ? "" : "output_format: " + output_format + "\n");
  }
  CommandResult Run(const std::string& action, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"run", action, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return world_.Cli(args);
  }
  RunWorld world_;
};

TEST_F(RunResultsTest, JsonWholeStdout) {
  ShellAction("whole", "printf '{\\n  \"a\": 1,\\n  \"b\": [true, null, \"x\"]\\n}\\n'\n", "json");
  CommandResult r = Run("res.whole");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["result"], nlohmann::json({{"a", 1}, {"b", {true, nullptr, "x"}}}));
  EXPECT_TRUE(j["error"].is_null());
}

TEST_F(RunResultsTest, JsonLastLineFallback) {
  ShellAction("last",
              "echo 'starting up...'\necho 'log: {not json'\necho\n"
              "echo '{\"answer\": 42}'\necho\n",
              "json");
  CommandResult r = Run("res.last");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["result"], nlohmann::json({{"answer", 42}}));
}

TEST_F(RunResultsTest, JsonScalarResult) {
  ShellAction("scalar", "echo '\"just a string\"'\n", "json");
  CommandResult r = Run("res.scalar");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["result"], "just a string");
}

TEST_F(RunResultsTest, JsonlIsAnArrayOfLines) {
  ShellAction("lines", "echo '{\"i\": 1}'\necho '[2]'\necho\necho '\"three\"'\n", "jsonl");
  CommandResult r = Run("res.lines");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["result"], nlohmann::json::parse(R"([{"i": 1}, [2], "three"])"));
}

TEST_F(RunResultsTest, YamlDocument) {
  ShellAction("yaml",
              "cat <<'EOF'\nname: demo\ncount: 3\nratio: 0.5\nok: true\n"
              "items:\n  - a\n  - b\nnested:\n  k: v\nnothing: null\nEOF\n",
              "yaml");
  CommandResult r = Run("res.yaml");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["result"], nlohmann::json::parse(R"({"name": "demo", "count": 3,
      "ratio": 0.5, "ok": true, "items": ["a", "b"], "nested": {"k": "v"}, "nothing": null})"));
}

TEST_F(RunResultsTest, TextGivesNoResultAndKeepsStdout) {
  ShellAction("text", "echo '{\"looks\": \"like json\"}'\n", "text");
  CommandResult r = Run("res.text");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_TRUE(j["result"].is_null());
  EXPECT_EQ(j["stdout"], "{\"looks\": \"like json\"}\n");
}

TEST_F(RunResultsTest, DefaultOutputFormatIsText) {
  ShellAction("dflt", "echo '{\"a\": 1}'\n", "");
  CommandResult r = Run("res.dflt");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_TRUE(r.Json()["result"].is_null());
}

// SPEC §7, as the original platform: a parse failure sets `error` and leaves `result` null; the
// status and the exit status follow the action's own exit code.
TEST_F(RunResultsTest, JsonParseFailureKeepsTheActionsStatusAndExitCode) {
  ShellAction("badjson", "echo 'this is not json'\necho 'nor {this'\n", "json");
  CommandResult r = Run("res.badjson");
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["exit_code"], 0);
  EXPECT_TRUE(j["result"].is_null());
  ASSERT_TRUE(j["error"].is_string());
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("json"));
}

TEST_F(RunResultsTest, JsonlBadLinesAreSkippedAndCounted) {
  ShellAction("badjsonl", "echo '{\"ok\": 1}'\necho 'oops'\n", "jsonl");
  CommandResult r = Run("res.badjsonl");
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["result"], nlohmann::json::parse(R"([{"ok": 1}])"));
  ASSERT_TRUE(j["error"].is_string());
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("skipped 1 line"));
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("line 2"));
}

TEST_F(RunResultsTest, YamlParseFailureKeepsTheActionsStatus) {
  ShellAction("badyaml", "printf 'a: [1, 2\\nb: {\\n'\n", "yaml");
  CommandResult r = Run("res.badyaml");
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_TRUE(j["result"].is_null());
  EXPECT_TRUE(j["error"].is_string());
}

TEST_F(RunResultsTest, ParseFailureWithANonZeroExitKeepsThatCode) {
  ShellAction("badexit", "echo 'not json'\nexit 5\n", "json");
  CommandResult r = Run("res.badexit");
  EXPECT_EQ(r.exit_code, 5) << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "failed");
}

TEST_F(RunResultsTest, ParseFailureInHumanModeExitsWithTheActionsCode) {
  ShellAction("badjson", "echo 'not json'\n", "json");
  CommandResult r = world_.Cli({"run", "res.badjson"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stderr_text, HasSubstr("output_format json"));
}

TEST_F(RunResultsTest, NonZeroExitIsFailedWithTheStderrSummary) {
  ShellAction("exit3", "echo 'partial output'\necho 'disk is full' >&2\nexit 3\n", "json");
  CommandResult r = Run("res.exit3");
  EXPECT_EQ(r.exit_code, 3) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["exit_code"], 3);
  EXPECT_EQ(j["error"], "disk is full");
  EXPECT_TRUE(j["result"].is_null());
  EXPECT_EQ(j["stdout"], "partial output\n");
}

TEST_F(RunResultsTest, NonZeroExitWithLongStderrUsesItsLastLine) {
  ShellAction("long",
              "for i in 1 2 3 4 5 6 7; do echo \"noise $i\" >&2; done\n"
              "echo 'the real reason' >&2\nexit 2\n",
              "text");
  CommandResult r = Run("res.long");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.Json()["error"], "the real reason");
}

TEST_F(RunResultsTest, NonZeroExitWithoutStderrNamesTheCode) {
  ShellAction("quiet", "exit 42\n", "text");
  CommandResult r = Run("res.quiet");
  EXPECT_EQ(r.exit_code, 42);
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "failed");
  ASSERT_TRUE(j["error"].is_string());
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("42"));
}

TEST_F(RunResultsTest, TimeoutExits124) {
  ShellAction("slow", "echo before\nsleep 30\necho after\n", "text");
  CommandResult r = Run("res.slow", {"--timeout", "1"});
  EXPECT_EQ(r.exit_code, 124) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "timed_out");
  EXPECT_EQ(j["timed_out"], true);
  EXPECT_TRUE(j["result"].is_null());
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("timed out"));
  EXPECT_EQ(j["stdout"], "before\n");
  EXPECT_LT(j["duration_ms"].get<int64_t>(), 8000);
}

TEST_F(RunResultsTest, ActionTimeoutFromYamlApplies) {
  world_.WriteSimpleAction("res", "yslow", "shell", "yslow.sh", "sleep 30\n",
                           "timeout_seconds: 1\n");
  CommandResult r = Run("res.yslow");
  EXPECT_EQ(r.exit_code, 124) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "timed_out");
}

TEST_F(RunResultsTest, UnknownPackExits127) {
  ShellAction("ok", "true\n", "");
  CommandResult r = Run("nosuchpack.ok");
  EXPECT_EQ(r.exit_code, 127) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "rejected");
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("nosuchpack"));
  CommandResult human = world_.Cli({"run", "nosuchpack.ok"});
  EXPECT_EQ(human.exit_code, 127);
  EXPECT_EQ(Lines(human.stderr_text).size(), 1u) << human.stderr_text;
}

TEST_F(RunResultsTest, UnknownActionExits127) {
  ShellAction("ok", "true\n", "");
  CommandResult r = Run("res.nosuchaction");
  EXPECT_EQ(r.exit_code, 127) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "rejected");
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("nosuchaction"));
}

TEST_F(RunResultsTest, SignalGives128PlusN) {
  ShellAction("killed", "kill -KILL $$\n", "");
  CommandResult r = Run("res.killed");
  EXPECT_EQ(r.exit_code, 137) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["signal"], 9);
  EXPECT_EQ(r.Json()["status"], "failed");
}

TEST_F(RunResultsTest, ResultObjectHasEveryDocumentedField) {
  ShellAction("fields", "echo hi\n", "");
  CommandResult r = Run("res.fields");
  ASSERT_EQ(r.exit_code, 0);
  nlohmann::json j = r.Json();
  for (const char* key :
       {"execution_id", "action_ref", "status", "exit_code", "signal", "result", "stdout", "stderr",
        "stdout_truncated", "stderr_truncated", "stdout_bytes_truncated", "stderr_bytes_truncated",
        "timed_out", "duration_ms", "env_build_ms", "error", "usage"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["action_ref"], "res.fields");
  EXPECT_TRUE(j["usage"].contains("cpu_ms"));
  EXPECT_TRUE(j["usage"].contains("max_rss_kb"));
  EXPECT_EQ(Lines(r.stdout_text).size(), 1u) << "--json prints exactly the result object";
}

}  // namespace
}  // namespace packvisor::testing
