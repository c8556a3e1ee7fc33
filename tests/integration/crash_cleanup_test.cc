// CleanUpAfterCrash: what a SIGKILLed supervisor leaves on the host, made for real (a killed
// `packvisor run`, and leftovers put in place by hand), and removed by the next start; what a live
// process holds stays. Root, real cgroups, real processes.
#include "supervisor/executions/crash_cleanup.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/cgroup_fixtures.h"
#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

bool AnyContains(const std::vector<std::string>& lines, const std::string& needle) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
    return line.find(needle) != std::string::npos;
  });
}

// Waits (poll on pidfds: the kernel's exit event) until every process in `pids` has exited, or
// `timeout_ms`; returns those still running.
std::vector<pid_t> WaitForExit(const std::vector<pid_t>& pids, int timeout_ms) {
  std::vector<pid_t> left;
  for (pid_t pid : pids) {
    unique_fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) continue;  // already gone
    struct pollfd p = {pidfd.get(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) left.push_back(pid);
  }
  return left;
}

class CrashCleanupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cgroups_.usable()) GTEST_SKIP() << "no cgroup back end on this host";
    world_.WriteSimpleAction("crashp", "sleeper", "shell", "sleeper.sh", "sleep 1000\n");
    world_.WriteConfig("[sandbox]\ncgroup_parent = \"" + cgroups_.name() +
                       "\"\n[envs]\npack_disk_mb = 0\n");
    config_ = world_.LoadedConfig();
  }

  // The parent in every hierarchy, as packvisor makes it on first use.
  void MakeParents() {
    for (const std::string& dir : cgroups_.Dirs()) mkdir(dir.c_str(), 0755);
  }
  // A cgroup "<owner>-<suffix>" in every hierarchy; returns its directories.
  std::vector<std::string> MakeExecutionCgroup(pid_t owner, const std::string& suffix) {
    MakeParents();
    std::vector<std::string> dirs;
    for (const std::string& parent : cgroups_.Dirs()) {
      std::string dir = parent + "/" + std::to_string(owner) + "-" + suffix;
      EXPECT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
      dirs.push_back(dir);
    }
    return dirs;
  }

  ScopedCgroupParent cgroups_;
  RunWorld world_;
  Config config_;
};

TEST_F(CrashCleanupTest, AKilledRunLeavesOnlyItsCgroupAndTheNextStartRemovesIt) {
  pid_t supervisor = SpawnPackvisor({"--config", world_.ConfigPath(), "run", "crashp.sleeper"});
  // The sandbox's init, the action's shell and its sleep.
  bool running = WaitUntil([&] { return cgroups_.Members().size() >= 3; }, 20000);
  std::vector<pid_t> sandbox = cgroups_.Members();
  ASSERT_EQ(kill(supervisor, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(supervisor, &status, 0), supervisor);
  ASSERT_TRUE(running) << "the action never started";

  // PR_SET_PDEATHSIG: every process of the sandbox dies with its supervisor.
  EXPECT_TRUE(WaitForExit(sandbox, 10000).empty()) << "sandbox processes outlived the supervisor";
  EXPECT_TRUE(cgroups_.Members().empty());
  // What is left: the execution cgroup, one directory per hierarchy.
  ASSERT_EQ(cgroups_.Children().size(), cgroups_.Dirs().size());
  std::string leftover = std::filesystem::path(cgroups_.Children().front()).filename();
  EXPECT_EQ(leftover.rfind(std::to_string(supervisor) + "-", 0), 0u) << leftover;

  auto cleanup = CleanUpAfterCrash(config_);
  ASSERT_TRUE(cleanup.ok()) << cleanup.error().message();
  EXPECT_TRUE(cgroups_.Children().empty()) << JoinLines(cgroups_.Children());
  EXPECT_TRUE(AnyContains(cleanup->removed, "execution cgroup ")) << JoinLines(cleanup->removed);
  EXPECT_TRUE(AnyContains(cleanup->removed, leftover)) << JoinLines(cleanup->removed);
  EXPECT_TRUE(cleanup->kept.empty()) << JoinLines(cleanup->kept);

  // A second start finds nothing.
  auto again = CleanUpAfterCrash(config_);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->removed.empty()) << JoinLines(again->removed);
}

TEST_F(CrashCleanupTest, ACgroupOfADeadSupervisorLosesItsMembersOneOfALiveOneIsKept) {
  // A pid that no longer runs: a child that exited and was reaped.
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  waitpid(dead, nullptr, 0);
  std::vector<std::string> stale = MakeExecutionCgroup(dead, "stale");
  std::vector<std::string> live = MakeExecutionCgroup(getpid(), "live");
  // Something still in the stale one (as if it had escaped the parent-death signal).
  pid_t member = fork();
  if (member == 0) {
    for (;;) pause();
  }
  ASSERT_GT(member, 0);
  for (const std::string& dir : stale) {
    std::ofstream(dir + "/cgroup.procs") << member << "\n";
  }
  ASSERT_THAT(cgroups_.Members(), Contains(member));

  auto cleanup = CleanUpAfterCrash(config_);
  ASSERT_TRUE(cleanup.ok()) << cleanup.error().message();
  int status = 0;
  ASSERT_EQ(waitpid(member, &status, 0), member);  // the kill is the event
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (const std::string& dir : stale) EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  for (const std::string& dir : live) EXPECT_TRUE(std::filesystem::exists(dir)) << dir;
  EXPECT_TRUE(AnyContains(cleanup->removed, std::to_string(dead) + "-stale (1 processes killed)"))
      << JoinLines(cleanup->removed);
  EXPECT_FALSE(AnyContains(cleanup->removed, "-live")) << JoinLines(cleanup->removed);
  for (auto it = live.rbegin(); it != live.rend(); ++it) rmdir(it->c_str());
}

TEST_F(CrashCleanupTest, StagingTreesAndOldTemporaryFilesAreRemovedFreshOnesKept) {
  // An environment build that died: its staging tree (its build lock is free).
  world_.WriteFile("envs/crashp/.staging-python-0123456789abcdef/bin/python3", "x");
  // Atomic writes that died between create and rename, an hour and more ago...
  world_.WriteFile("state/.ids.tmp-0123456789abcdef", "{");
  world_.WriteFile("envs/crashp/..python.ready.tmp-00112233445566aa", "{");
  struct timespec old_times[2] = {{time(nullptr) - 2 * kStaleTempFileAgeSeconds, 0},
                                  {time(nullptr) - 2 * kStaleTempFileAgeSeconds, 0}};
  for (const char* name :
       {"state/.ids.tmp-0123456789abcdef", "envs/crashp/..python.ready.tmp-00112233445566aa"}) {
    ASSERT_EQ(utimensat(AT_FDCWD, world_.Path(name).c_str(), old_times, AT_SYMLINK_NOFOLLOW), 0);
  }
  // ...and one a live process may be about to rename, and a file that only looks similar.
  world_.WriteFile("state/.ids.tmp-fedcba9876543210", "{");
  world_.WriteFile("state/notes.tmp-0123456789abcdef", "mine");

  auto cleanup = CleanUpAfterCrash(config_);
  ASSERT_TRUE(cleanup.ok()) << cleanup.error().message();
  EXPECT_FALSE(
      std::filesystem::exists(world_.Path("envs/crashp/.staging-python-0123456789abcdef")));
  EXPECT_FALSE(std::filesystem::exists(world_.Path("state/.ids.tmp-0123456789abcdef")));
  EXPECT_FALSE(
      std::filesystem::exists(world_.Path("envs/crashp/..python.ready.tmp-00112233445566aa")));
  EXPECT_TRUE(std::filesystem::exists(world_.Path("state/.ids.tmp-fedcba9876543210")));
  EXPECT_TRUE(std::filesystem::exists(world_.Path("state/notes.tmp-0123456789abcdef")));
  EXPECT_TRUE(AnyContains(cleanup->removed, "environment staging tree " + world_.EnvsDir() +
                                                "/crashp/.staging-python-0123456789abcdef"))
      << JoinLines(cleanup->removed);
  EXPECT_TRUE(AnyContains(cleanup->removed,
                          "temporary file " + world_.StateDir() + "/.ids.tmp-0123456789abcdef"))
      << JoinLines(cleanup->removed);
  EXPECT_EQ(cleanup->removed.size(), 3u) << JoinLines(cleanup->removed);
}

}  // namespace
}  // namespace packvisor::testing
