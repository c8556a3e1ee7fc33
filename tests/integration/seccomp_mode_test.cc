// sandbox.seccomp_mode = "allow" (issue 15): python and shell actions run under the measured allow
// list, a call outside it fails with EPERM, and the same action under the default "deny" mode
// makes that call (the positive control). Environment builds keep the deny list: the python
// action's first run builds its environment in allow mode's configuration.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

// getpriority(2) is on no allow list and on no deny list: allowed by "deny", refused by "allow".
constexpr const char kPythonAction[] =
    "import os\n"
    "try:\n"
    "    os.getpriority(os.PRIO_PROCESS, 0)\n"
    "    print('getpriority ok')\n"
    "except OSError as e:\n"
    "    print('getpriority errno', e.errno)\n"
    "print('python ran', sum(range(10)))\n";

constexpr const char kShellAction[] =
    "for word in a b c; do echo \"$word\"; done | wc -l\n"
    "echo shell ran \"$(cat /proc/self/status | grep -c '^Seccomp:.2')\"\n";

class SeccompModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.WriteSimpleAction("sm", "py", "python", "a.py", kPythonAction);
    world_.WriteSimpleAction("sm", "sh", "shell", "a.sh", kShellAction);
  }
  ExecutionResult Run(const std::string& mode, const std::string& action) {
    world_.WriteConfig("[sandbox]\nseccomp_mode = \"" + mode + "\"\n");
    RunRequest request = Request("sm." + action);
    request.timeout_seconds = 120;
    return world_.Run(world_.LoadedConfig(), std::move(request));
  }
  RunWorld world_;
};

TEST_F(SeccompModeTest, PythonActionRunsAndACallOutsideTheAllowListFailsWithEperm) {
  ExecutionResult r = Run("allow", "py");
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_NE(r.stdout_text.find("python ran 45\n"), std::string::npos) << Describe(r);
  EXPECT_NE(r.stdout_text.find("getpriority errno " + std::to_string(EPERM) + "\n"),
            std::string::npos)
      << Describe(r);
}

TEST_F(SeccompModeTest, ShellActionRunsUnderTheAllowList) {
  ExecutionResult r = Run("allow", "sh");
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_EQ(r.stdout_text, "3\nshell ran 1\n") << Describe(r);
}

// The timeout path: init forwards SIGTERM (kill) and the shell's `wait` under a trap sleeps in
// rt_sigsuspend; refused, the shell spun until the SIGKILL and the trap never ran.
TEST_F(SeccompModeTest, ShellTrapRunsAtTheTimeoutsTerm) {
  world_.WriteSimpleAction("sm", "trap", "shell", "trap.sh",
                           "trap 'echo got TERM; exit 3' TERM\nsleep 30 &\nwait\n");
  world_.WriteConfig("[sandbox]\nseccomp_mode = \"allow\"\n[execution]\nkill_grace_seconds = 20\n");
  RunRequest request = Request("sm.trap");
  request.timeout_seconds = 1;
  ExecutionResult r = world_.Run(world_.LoadedConfig(), std::move(request));
  EXPECT_EQ(r.status, ExecutionStatus::kTimedOut) << Describe(r);
  EXPECT_EQ(r.stdout_text, "got TERM\n") << Describe(r);
}

// Positive control: the same action under the default mode makes the call.
TEST_F(SeccompModeTest, DenyModeLetsTheSameCallThrough) {
  ExecutionResult r = Run("deny", "py");
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_NE(r.stdout_text.find("getpriority ok\n"), std::string::npos) << Describe(r);
}

}  // namespace
}  // namespace packvisor::testing
