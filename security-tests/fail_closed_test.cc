// Catalog A10 (setup that fails open): with the test-only packvisor-test-hooks binary, one
// hardening step is made to fail (PACKVISOR_TEST_FAIL_STEP) or silently skipped
// (PACKVISOR_TEST_SKIP_STEP). Either way the execution must end as setup_failed (exit 125) and
// the action must never run: its marker (`touch /env/ran`, in an env dir owned by the sandbox's
// host id) never appears. A positive control switches off both the step and the verification
// and shows that the same action then runs unconfined, so these tests can fail.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "sandbox/report.h"
#include "security-tests/probe_suite.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using testing::TempDir;
using namespace probe_suite;

// The action of every case: leave a marker in the env, then show what confines it.
const std::vector<std::string> kMarkerAction = {
    "/bin/sh", "-c",
    "touch /env/ran; echo reached; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"};

struct Fixture {
  TempDir env;
  Fixture() { env.Chown(kSandboxHostId, kSandboxHostId); }
  std::string Marker() const { return env.Path("ran"); }
  Outcome Exec(const std::vector<std::string>& faults) const {
    std::vector<std::string> args = {"exec", "--env-dir", env.path(), "--timeout",
                                     "3",    "--json",    "--"};
    args.insert(args.end(), kMarkerAction.begin(), kMarkerAction.end());
    return RunBinary(PACKVISOR_TEST_HOOKS_BINARY, args, faults);
  }
};

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::string StepName(const std::string& token) {
  return sandbox::SetupStepName(sandbox::SetupStepFromToken(token.c_str()));
}

class FailStepTest : public ::testing::TestWithParam<std::string> {};

// PACKVISOR_TEST_FAIL_STEP: the step reports EPERM. The execution is setup_failed, names the
// step, and the action never ran.
TEST_P(FailStepTest, A10_failed_step_is_setup_failed_and_action_never_runs) {
  RequireRoot();
  const std::string token = GetParam();
  ASSERT_NE(sandbox::SetupStepFromToken(token.c_str()), sandbox::SetupStep::kNone) << token;
  Fixture fixture;
  Outcome run = fixture.Exec({"PACKVISOR_TEST_FAIL_STEP=" + token});
  nlohmann::json result = run.Json();
  ASSERT_FALSE(run.timed_out) << run.err;
  EXPECT_EQ(run.exit_code, 125) << run.out << run.err;
  EXPECT_EQ(result.value("status", ""), "setup_failed") << run.out;
  std::string error = result["error"].is_string() ? result["error"].get<std::string>() : "";
  EXPECT_NE(error.find("setup step '" + StepName(token) + "'"), std::string::npos)
      << "the error does not name the step: " << error;
  EXPECT_EQ(result.value("stdout", ""), "") << "the action printed something";
  EXPECT_FALSE(Exists(fixture.Marker())) << "the action ran although " << token << " failed";
}

INSTANTIATE_TEST_SUITE_P(Steps, FailStepTest,
                         ::testing::Values("no_new_privs", "seccomp", "drop_caps",
                                           "drop_bounding_caps", "clear_ambient_caps", "securebits",
                                           "setsid", "rlimits", "mount_plan", "pivot_root",
                                           "root_read_only", "close_fds", "speculation",
                                           "join_cgroup"),
                         [](const auto& info) { return info.param; });

class SkipStepTest : public ::testing::TestWithParam<std::string> {};

// PACKVISOR_TEST_SKIP_STEP: the step silently does not run. The supervisor's check of the child
// before exec (sandbox/verify.cc), or a later step that depends on it, must catch it.
TEST_P(SkipStepTest, A10_skipped_step_is_caught_before_the_action_runs) {
  RequireRoot();
  const std::string token = GetParam();
  ASSERT_NE(sandbox::SetupStepFromToken(token.c_str()), sandbox::SetupStep::kNone) << token;
  if (token == "speculation" && !SpeculationStepIsVisible(PR_SPEC_STORE_BYPASS) &&
      !SpeculationStepIsVisible(PR_SPEC_INDIRECT_BRANCH)) {
    GTEST_SKIP() << "skipping the speculation step changes nothing on this host: the kernel has "
                    "no per-task speculation control (PR_GET_SPECULATION_CTRL without "
                    "PR_SPEC_PRCTL), or its seccomp mode forces the same mitigations when the "
                    "filter is loaded";
  }
  Fixture fixture;
  Outcome run = fixture.Exec({"PACKVISOR_TEST_SKIP_STEP=" + token});
  nlohmann::json result = run.Json();
  ASSERT_FALSE(run.timed_out) << run.err;
  EXPECT_EQ(run.exit_code, 125) << "skipping " << token << " was not caught; the action ran:\n"
                                << run.out << run.err;
  EXPECT_EQ(result.value("status", ""), "setup_failed") << run.out;
  EXPECT_EQ(result.value("stdout", ""), "") << "the action printed something";
  EXPECT_FALSE(Exists(fixture.Marker())) << "the action ran although " << token << " was skipped";
}

INSTANTIATE_TEST_SUITE_P(Steps, SkipStepTest,
                         ::testing::Values("no_new_privs", "seccomp", "drop_caps",
                                           "drop_bounding_caps", "securebits", "setsid", "rlimits",
                                           "mount_plan", "pivot_root", "root_read_only",
                                           "close_fds", "speculation", "join_cgroup"),
                         [](const auto& info) { return info.param; });

// Positive control: with seccomp skipped AND the verification switched off, the very same action
// runs and sees no filter. This proves the marker and status checks above can fail.
TEST(A10_positive_control, A10_skip_seccomp_and_verify_runs_unconfined) {
  RequireRoot();
  Fixture fixture;
  Outcome run = fixture.Exec({"PACKVISOR_TEST_SKIP_STEP=seccomp", "PACKVISOR_TEST_SKIP_VERIFY=1"});
  nlohmann::json result = run.Json();
  ASSERT_FALSE(run.timed_out) << run.err;
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(result.value("status", ""), "succeeded") << run.out;
  std::string out = result.value("stdout", "");
  EXPECT_NE(out.find("reached\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Seccomp:\t0\n"), std::string::npos) << out;
  EXPECT_TRUE(Exists(fixture.Marker())) << "the unconfined action left no marker";
}

// The same hooks binary without any fault runs the action normally (the fault variables, not
// the binary, make the difference above).
TEST(A10_positive_control, A10_hooks_binary_without_faults_runs_confined) {
  RequireRoot();
  Fixture fixture;
  Outcome run = fixture.Exec({});
  nlohmann::json result = run.Json();
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  std::string out = result.value("stdout", "");
  EXPECT_NE(out.find("Seccomp:\t2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("NoNewPrivs:\t1\n"), std::string::npos) << out;
  EXPECT_TRUE(Exists(fixture.Marker()));
}

// Environment builds run in the same sandbox: a failing step there fails the execution as
// setup_failed, publishes no environment and runs no action.
TEST(A10_env_build, A10_failed_step_during_env_build_publishes_nothing) {
  RequireRoot();
  TempDir world;
  world.Write("packs/fc/pack.yaml", "ref: fc\nversion: 1.0.0\ndescription: t\n");
  world.Write("packs/fc/actions/a.yaml", "name: a\nrunner_type: python\nentry_point: a.py\n");
  world.Write("packs/fc/actions/a.py", "open('/env/ran', 'w').write('x')\nprint('reached')\n");
  world.Write("pv.toml", "packs_base_dir = \"" + world.Path("packs") + "\"\nruntime_envs_dir = \"" +
                             world.Path("envs") + "\"\nstate_dir = \"" + world.Path("state") +
                             "\"\n");
  Outcome run = RunBinary(PACKVISOR_TEST_HOOKS_BINARY,
                          {"--config", world.Path("pv.toml"), "run", "fc.a", "--json"},
                          {"PACKVISOR_TEST_FAIL_STEP=seccomp"});
  nlohmann::json result = run.Json();
  ASSERT_FALSE(run.timed_out) << run.err;
  EXPECT_EQ(run.exit_code, 125) << run.out << run.err;
  EXPECT_EQ(result.value("status", ""), "setup_failed") << run.out;
  EXPECT_FALSE(Exists(world.Path("envs/fc/python/bin/python3"))) << "an environment was published";
  EXPECT_FALSE(Exists(world.Path("envs/fc/.python.ready"))) << "a ready marker was written";
  EXPECT_FALSE(Exists(world.Path("envs/fc/python/ran")));
}

}  // namespace
}  // namespace packvisor
