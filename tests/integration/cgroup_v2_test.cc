// The cgroup v2 back end for real: the sandbox is cloned straight into its execution cgroup
// (CLONE_INTO_CGROUP) with the configured limits, and the cgroup is gone afterwards. Runs only
// where the supervisor's cgroup2 hierarchy offers memory, pids and cpu; on a v1 host (the CI
// machine: cgroup2 is mounted without controllers) it is skipped with that reason, and the v1
// path is what every other launch test exercises. The v2 file layout is unit-tested in
// tests/unit/cgroup_test.cc.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include "sandbox/cgroup.h"
#include "tests/support/harness.h"

namespace packvisor::testing {
namespace {

TEST(CgroupV2, SandboxIsClonedIntoItsLimitedCgroupWhichIsRemovedAfterwards) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (namespaces and cgroups)";
  const sandbox::CgroupLayout& layout = sandbox::CgroupLayout::Probe();
  if (layout.backend != sandbox::CgroupBackend::kV2) {
    GTEST_SKIP() << "no cgroup v2 back end on this host ("
                 << sandbox::CgroupBackendName(layout.backend)
                 << " is used): cgroup2 lacks delegated memory, pids and cpu controllers";
  }
  const std::string marker = UniqueMarker("pv-v2");
  pid_t supervisor = SpawnPackvisor({"exec", "--memory-mb", "96", "--pids", "40", "--timeout", "20",
                                     "--", "/bin/sh", "-c", "sleep 3", marker});
  pid_t action = 0;
  for (int i = 0; i < 300 && action == 0; ++i) {
    for (pid_t pid : ProcessesWithMarker(marker)) {
      if (pid != supervisor &&
          ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/comm") == "sh\n") {
        action = pid;
      }
    }
    if (action == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(action, 0) << "the action never started";
  std::string membership = ReadFileOrEmpty("/proc/" + std::to_string(action) + "/cgroup");
  ASSERT_EQ(membership.rfind("0::/", 0), 0u) << membership;
  std::string relative = membership.substr(3, membership.find('\n') - 3);
  EXPECT_NE(relative.find("/packvisor/"), std::string::npos) << membership;
  // The hierarchy's mount point: the supervisor's own cgroup directory less its own path.
  std::string own = ReadFileOrEmpty("/proc/self/cgroup");
  own = own.rfind("0::", 0) == 0 ? own.substr(3, own.find('\n') - 3) : "/";
  std::string mount = layout.v2_dir;
  if (own != "/" && mount.size() >= own.size()) mount.resize(mount.size() - own.size());
  std::string dir = mount + relative;
  EXPECT_EQ(ReadFileOrEmpty(dir + "/memory.max"), std::to_string(96ull << 20) + "\n");
  EXPECT_EQ(ReadFileOrEmpty(dir + "/pids.max"), "40\n");
  int status = 0;
  waitpid(supervisor, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(WaitForNoProcessesWithMarker(marker, 5000).empty());
  EXPECT_FALSE(std::filesystem::exists(dir)) << "the execution cgroup was left behind";
}

}  // namespace
}  // namespace packvisor::testing
