// Per-runtime (`[limits]` in a runtime definition) and per-action (`limits:` in the action YAML)
// cgroup limits, bounded by the configuration's ceilings (docs/resource-limits.md). Real binary,
// real sandbox, real cgroups.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Allocates and touches 160 MiB in 16 MiB steps, then says so.
constexpr char kBalloon[] =
    "import sys\nprint('reached', flush=True)\nchunks = []\nfor _ in range(10):\n"
    "    chunks.append(bytearray(16 << 20))\nprint('allocated', flush=True)\n";

// Starts 40 background sleepers, then says how many it made.
constexpr char kForker[] =
    "echo reached; i=0; while [ $i -lt 40 ]; do sleep 3 & i=$((i+1)); done; echo made $i\n";

class RunLimitsTest : public ::testing::Test {
 protected:
  CommandResult Run(const std::string& action) { return world_.Cli({"run", action, "--json"}); }
  RunWorld world_;
};

TEST_F(RunLimitsTest, ActionMemoryLimitLowersTheDefault) {
  world_.WriteSimpleAction("lim", "small", "python", "balloon.py", kBalloon,
                           "limits:\n  memory_mb: 48\n");
  world_.WriteSimpleAction("lim", "plain", "python", "balloon2.py", kBalloon);
  world_.WriteConfig("[sandbox]\nmemory_max_mb = 512\n");
  nlohmann::json limited = Run("lim.small").Json();
  EXPECT_THAT(limited["stdout"].get<std::string>(), HasSubstr("reached"));
  EXPECT_EQ(limited["status"], "failed") << limited.dump();
  EXPECT_EQ(limited["error"], "out of memory (limit 48 MiB)") << limited.dump();
  // The same allocation fits the configuration's default: the action's limit made the difference.
  nlohmann::json plain = Run("lim.plain").Json();
  EXPECT_EQ(plain["status"], "succeeded") << plain.dump();
  EXPECT_THAT(plain["stdout"].get<std::string>(), HasSubstr("allocated"));
}

TEST_F(RunLimitsTest, RuntimeLimitAppliesAndAnActionMayRaiseItWithinTheCeiling) {
  world_.WriteRuntime("tinysh.toml",
                      "name = \"tinysh\"\n[interpreter]\nbinary = \"/bin/sh\"\n"
                      "file_extension = \".tsh\"\n[limits]\npids = 16\n");
  world_.WriteSimpleAction("lim", "few", "tinysh", "few.tsh", kForker);
  world_.WriteSimpleAction("lim", "many", "tinysh", "many.tsh", kForker, "limits:\n  pids: 64\n");
  world_.WriteConfig("[sandbox]\npids_max = 32\npids_ceiling = 128\n");
  nlohmann::json few = Run("lim.few").Json();
  EXPECT_THAT(few["stdout"].get<std::string>(), HasSubstr("reached"));
  EXPECT_THAT(few["stdout"].get<std::string>(), ::testing::Not(HasSubstr("made 40"))) << few.dump();
  nlohmann::json many = Run("lim.many").Json();
  EXPECT_EQ(many["status"], "succeeded") << many.dump();
  EXPECT_THAT(many["stdout"].get<std::string>(), HasSubstr("made 40"));
}

TEST_F(RunLimitsTest, RequestAboveTheCeilingIsRejectedBeforeAnythingStarts) {
  world_.WriteSimpleAction("lim", "greedy", "python", "greedy.py", "print('ran')\n",
                           "limits:\n  memory_mb: 4096\n");
  world_.WriteConfig("[sandbox]\nmemory_max_mb = 256\nmemory_ceiling_mb = 1024\n");
  CommandResult human = world_.Cli({"run", "lim.greedy"});
  EXPECT_EQ(human.exit_code, 125);
  EXPECT_EQ(human.stdout_text, "");
  EXPECT_THAT(human.stderr_text,
              HasSubstr(world_.PackDir("lim") + "/actions/greedy.yaml: limits.memory_mb: 4096 "
                                                "exceeds sandbox.memory_ceiling_mb 1024"));
  EXPECT_EQ(std::count(human.stderr_text.begin(), human.stderr_text.end(), '\n'), 1)
      << human.stderr_text;
  CommandResult json = Run("lim.greedy");
  EXPECT_EQ(json.exit_code, 125);
  EXPECT_EQ(json.Json()["status"], "rejected");
  EXPECT_THAT(DirectoryEntries(world_.EnvsDir()), IsEmpty()) << "an environment was built";
}

}  // namespace
}  // namespace packvisor::testing
