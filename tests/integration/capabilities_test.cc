// What the supervisor needs of its host set-up: the launch works without CAP_SYS_NICE and
// CAP_SYS_PTRACE (dropped from the bounding and effective sets with capsh), and `packvisor check`
// names a missing capability and judges the directories its configuration names.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "supervisor/cli/check.h"
#include "tests/support/harness.h"
#include "tests/support/run_fixtures.h"

namespace packvisor {
namespace {

using testing::CommandResult;
using testing::RunPackvisor;
using testing::RunWorld;
using testing::ShellQuote;
using testing::TempDir;

bool HaveCapsh() {
  return access("/usr/sbin/capsh", X_OK) == 0 || access("/sbin/capsh", X_OK) == 0;
}

// Runs packvisor ARGS under `capsh --drop=CAPS` (removed from the bounding set, so the shell capsh
// execs, and packvisor after it, have them in no set); stdout captured, stderr appended to it.
CommandResult RunWithout(const std::string& caps, const std::vector<std::string>& args) {
  std::string command = "capsh --drop=" + caps + " -- -c 'exec \"$0\" \"$@\"' " +
                        ShellQuote(testing::PackvisorBinary());
  for (const std::string& arg : args) command += " " + ShellQuote(arg);
  return testing::RunShell(command + " 2>&1");
}

// The line of the check table whose feature column is `feature`, or "".
std::string CheckLine(const std::string& table, const std::string& feature) {
  for (const std::string& line : testing::Lines(table)) {
    if (line.rfind(feature + " ", 0) == 0) return line;
  }
  return "";
}

TEST(CapabilitiesTest, ExecRunsWithoutSysNiceAndSysPtrace) {
  if (!HaveCapsh()) GTEST_SKIP() << "capsh (libcap2-bin) is not installed";
  CommandResult exec = RunWithout("cap_sys_nice,cap_sys_ptrace",
                                  {"exec", "--", "/bin/sh", "-c", "echo confined; id -u"});
  EXPECT_EQ(exec.exit_code, 0) << exec.stdout_text;
  EXPECT_EQ(exec.stdout_text, "confined\n1000\n");
  // The shell really ran without them: a capsh that did not drop would make this test vacuous.
  CommandResult probe = RunWithout("cap_sys_nice,cap_sys_ptrace", {"--version"});
  EXPECT_EQ(probe.exit_code, 0);
  FILE* pipe =
      popen("capsh --drop=cap_sys_nice,cap_sys_ptrace -- -c 'grep CapEff /proc/self/status'", "r");
  ASSERT_NE(pipe, nullptr);
  char line[256] = {};
  ASSERT_NE(fgets(line, sizeof line, pipe), nullptr);
  pclose(pipe);
  auto effective = ParseCapabilityMask(line, "CapEff");
  ASSERT_TRUE(effective);
  EXPECT_EQ(*effective >> 19 & 1, 0u) << "CAP_SYS_PTRACE still effective: " << line;
  EXPECT_EQ(*effective >> 23 & 1, 0u) << "CAP_SYS_NICE still effective: " << line;
}

TEST(CapabilitiesTest, RunWithAPackDiskWorksWithoutSysNiceAndSysPtrace) {
  if (!HaveCapsh()) GTEST_SKIP() << "capsh (libcap2-bin) is not installed";
  RunWorld world;
  world.WriteSimpleAction("capless", "hello", "shell", "hello.sh", "echo hello from $(id -u)\n");
  std::string config = world.WriteConfig();
  CommandResult run =
      RunWithout("cap_sys_nice,cap_sys_ptrace", {"--config", config, "run", "capless.hello"});
  EXPECT_EQ(run.exit_code, 0) << run.stdout_text;
  EXPECT_NE(run.stdout_text.find("hello from 1000"), std::string::npos) << run.stdout_text;
  RunPackvisor({"--config", config, "env", "rm", "capless"});
}

TEST(CapabilitiesTest, CheckNamesAMissingCapability) {
  if (!HaveCapsh()) GTEST_SKIP() << "capsh (libcap2-bin) is not installed";
  RunWorld world;
  world.WritePack("hello");
  std::string config = world.WriteConfig();
  CommandResult check = RunWithout("cap_sys_admin", {"--config", config, "check"});
  EXPECT_EQ(check.exit_code, 1) << check.stdout_text;
  std::string row = CheckLine(check.stdout_text, "CAP_SYS_ADMIN");
  EXPECT_NE(row.find("| MISSING |"), std::string::npos) << check.stdout_text;
  EXPECT_NE(row.find("bounding set"), std::string::npos) << row;
  EXPECT_NE(check.stdout_text.find("cannot run on this host"), std::string::npos);
  // With every capability, the same configuration has no such row.
  CommandResult full = RunPackvisor({"--config", config, "check"});
  EXPECT_EQ(CheckLine(full.stdout_text, "CAP_SYS_ADMIN"), "") << full.stdout_text;
  EXPECT_NE(CheckLine(full.stdout_text, "capabilities").find("| ok "), std::string::npos)
      << full.stdout_text;
}

TEST(CheckConfigurationTest, NamesTheFileItLoadedAndJudgesItsDirectories) {
  RunWorld world;
  world.WritePack("hello");
  std::string config = world.WriteConfig();
  CommandResult check = RunPackvisor({"--config", config, "check"});
  EXPECT_NE(check.stdout_text.find("configuration: " + config + "\n"), std::string::npos)
      << check.stdout_text;
  EXPECT_NE(CheckLine(check.stdout_text, "packs_base_dir").find("| ok "), std::string::npos)
      << check.stdout_text;
  // Not created yet: created at first use.
  std::string envs = CheckLine(check.stdout_text, "runtime_envs_dir");
  EXPECT_NE(envs.find("| ok "), std::string::npos) << check.stdout_text;
  EXPECT_NE(envs.find("does not exist yet"), std::string::npos) << envs;

  // A state_dir any user can write to is refused, by name.
  ASSERT_EQ(mkdir(world.StateDir().c_str(), 0777), 0);
  ASSERT_EQ(chmod(world.StateDir().c_str(), 0777), 0);
  CommandResult open_state = RunPackvisor({"--config", config, "check"});
  std::string state = CheckLine(open_state.stdout_text, "state_dir");
  EXPECT_NE(state.find("| MISSING |"), std::string::npos) << open_state.stdout_text;
  EXPECT_NE(state.find("writable by every user (mode 0777)"), std::string::npos) << state;
  EXPECT_EQ(open_state.exit_code, 1);
  EXPECT_NE(open_state.stdout_text.find("missing: state_dir"), std::string::npos)
      << open_state.stdout_text;
  ASSERT_EQ(chmod(world.StateDir().c_str(), 0755), 0);

  // runtime_envs_dir through a symlink: root opens it without following symlinks.
  ASSERT_EQ(mkdir(world.Path("real-envs").c_str(), 0755), 0);
  ASSERT_EQ(symlink(world.Path("real-envs").c_str(), world.EnvsDir().c_str()), 0);
  CommandResult linked = RunPackvisor({"--config", config, "check"});
  std::string link_row = CheckLine(linked.stdout_text, "runtime_envs_dir");
  EXPECT_NE(link_row.find("| MISSING |"), std::string::npos) << linked.stdout_text;
  EXPECT_NE(link_row.find("is a symbolic link"), std::string::npos) << link_row;
}

TEST(CheckConfigurationTest, BuiltInDefaultsAreNamed) {
  if (testing::TestConfigFromEnvironment()) GTEST_SKIP() << "$PACKVISOR_TEST_CONFIG is set";
  struct stat st {};
  if (lstat(kSystemConfigPath, &st) == 0) GTEST_SKIP() << kSystemConfigPath << " exists";
  CommandResult check = RunPackvisor({"check"}, "", {"PACKVISOR_CONFIG="});
  EXPECT_EQ(check.stdout_text.rfind("configuration: built-in defaults\n", 0), 0u)
      << check.stdout_text;
}

}  // namespace
}  // namespace packvisor
