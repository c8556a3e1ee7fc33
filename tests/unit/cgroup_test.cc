// The cgroup back ends against their file layouts (sandbox/cgroup.h): which back end a host's
// mountinfo and /proc/self/cgroup give, what a v2 execution cgroup's files get, and how v2 usage
// files are read. The v1 path runs for real in the integration and security suites (the CI host
// has v1 controllers); a v2 host runs the same suites through CLONE_INTO_CGROUP.
#include "sandbox/cgroup.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/scratch_dir.h"

namespace packvisor::sandbox {
namespace {

constexpr char kUnifiedMountInfo[] =
    "24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "30 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

constexpr char kHybridMountInfo[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(CgroupLayout, UnifiedHostWithTheControllersIsV2InTheSupervisorsOwnCgroup) {
  CgroupLayout layout = CgroupLayout::Parse(
      kUnifiedMountInfo, "0::/system.slice/packvisor.service\n", "cpuset cpu io memory pids\n");
  EXPECT_EQ(layout.backend, CgroupBackend::kV2);
  EXPECT_EQ(layout.v2_dir, "/sys/fs/cgroup/system.slice/packvisor.service");
  CgroupLayout root = CgroupLayout::Parse(kUnifiedMountInfo, "0::/\n", "cpu memory pids");
  EXPECT_EQ(root.v2_dir, "/sys/fs/cgroup");
}

TEST(CgroupLayout, UnifiedHostMissingAControllerIsNotV2) {
  CgroupLayout layout = CgroupLayout::Parse(kUnifiedMountInfo, "0::/\n", "cpu io memory\n");
  EXPECT_EQ(layout.backend, CgroupBackend::kNone);
  EXPECT_THAT(layout.why_none, ::testing::HasSubstr("lacks memory/pids/cpu"));
}

TEST(CgroupLayout, HybridHostFallsBackToV1PerHierarchy) {
  CgroupLayout layout = CgroupLayout::Parse(
      kHybridMountInfo,
      "12:pids:/worker\n11:memory:/worker\n6:cpu,cpuacct:/worker\n5:freezer:/\n0::/\n", "");
  EXPECT_EQ(layout.backend, CgroupBackend::kV1);
  EXPECT_EQ(layout.v1_memory, "/sys/fs/cgroup/memory/worker");
  EXPECT_EQ(layout.v1_pids, "/sys/fs/cgroup/pids/worker");
  EXPECT_EQ(layout.v1_cpu, "/sys/fs/cgroup/cpu,cpuacct/worker");
  EXPECT_EQ(layout.v1_cpuacct, layout.v1_cpu);
  EXPECT_EQ(layout.v1_freezer, "/sys/fs/cgroup/freezer");
}

// podman/docker without a cgroup namespace (issue 14): the container's own group is mounted as
// each hierarchy's root, while /proc/self/cgroup names it from the host's root.
constexpr char kContainerMountInfo[] =
    "700 690 0:28 / /sys/fs/cgroup ro,relatime - tmpfs tmpfs rw,mode=755\n"
    "701 700 0:29 /libpod_parent/libpod-abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "702 700 0:32 /libpod_parent/libpod-abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    "703 700 0:36 /libpod_parent/libpod-abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
    "704 700 0:38 /libpod_parent/libpod-abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";

TEST(CgroupLayout, InAContainerThePathIsTakenBelowTheMountsRoot) {
  CgroupLayout layout = CgroupLayout::Parse(kContainerMountInfo,
                                            "12:pids:/libpod_parent/libpod-abc\n"
                                            "11:memory:/libpod_parent/libpod-abc/worker\n"
                                            "6:cpu,cpuacct:/libpod_parent/libpod-abc\n"
                                            "0::/libpod_parent/libpod-abc\n",
                                            "");
  EXPECT_EQ(layout.backend, CgroupBackend::kV1) << layout.why_none;
  EXPECT_EQ(layout.v1_memory, "/sys/fs/cgroup/memory/worker");
  EXPECT_EQ(layout.v1_pids, "/sys/fs/cgroup/pids");
  EXPECT_EQ(layout.v1_cpu, "/sys/fs/cgroup/cpu,cpuacct");
}

TEST(CgroupLayout, InAContainerWithACgroupNamespaceTheGroupIsTheMount) {
  CgroupLayout layout =
      CgroupLayout::Parse(kHybridMountInfo, "12:pids:/\n11:memory:/\n6:cpu,cpuacct:/\n0::/\n", "");
  EXPECT_EQ(layout.backend, CgroupBackend::kV1);
  EXPECT_EQ(layout.v1_memory, "/sys/fs/cgroup/memory");
  EXPECT_EQ(layout.v1_pids, "/sys/fs/cgroup/pids");
}

TEST(CgroupLayout, AGroupOutsideTheMountsRootIsNotReachable) {
  CgroupLayout layout = CgroupLayout::Parse(
      kContainerMountInfo, "12:pids:/other\n11:memory:/other\n6:cpu,cpuacct:/other\n", "");
  EXPECT_EQ(layout.backend, CgroupBackend::kNone);
  EXPECT_EQ(layout.v1_memory, "");
}

TEST(CgroupLayout, NeitherBackEndSaysWhatIsMissing) {
  CgroupLayout layout = CgroupLayout::Parse("", "", "");
  EXPECT_EQ(layout.backend, CgroupBackend::kNone);
  EXPECT_THAT(layout.why_none, ::testing::HasSubstr("no cgroup2 mount"));
  EXPECT_THAT(layout.why_none, ::testing::HasSubstr("no cgroup v1"));
}

TEST(V2LimitWrites, MemoryWithoutSwapPidsAndCpuQuotaPerPeriod) {
  std::vector<CgroupFileWrite> writes =
      V2LimitWrites({.memory_max_bytes = 64ull << 20, .pids_max = 32, .cpu_max_percent = 150});
  ASSERT_EQ(writes.size(), 4u);
  EXPECT_EQ(writes[0].file, "memory.max");
  EXPECT_EQ(writes[0].value, "67108864");
  EXPECT_FALSE(writes[0].optional);
  EXPECT_EQ(writes[1].file, "memory.swap.max");
  EXPECT_EQ(writes[1].value, "0");
  EXPECT_TRUE(writes[1].optional);
  EXPECT_EQ(writes[2].file, "pids.max");
  EXPECT_EQ(writes[2].value, "32");
  EXPECT_EQ(writes[3].file, "cpu.max");
  EXPECT_EQ(writes[3].value, "150000 100000");
}

TEST(ParseV2Usage, ReadsCpuPeakAndOomKills) {
  CgroupUsage usage =
      ParseV2Usage("usage_usec 2345678\nuser_usec 2000000\nsystem_usec 345678\nnr_periods 0\n",
                   "73400320\n", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n");
  EXPECT_EQ(usage.cpu_ms, 2345);
  EXPECT_EQ(usage.memory_peak_kb, 71680);
  EXPECT_EQ(usage.oom_kills, 1u);
  CgroupUsage empty = ParseV2Usage("", "", "");
  EXPECT_EQ(empty.cpu_ms, 0);
  EXPECT_EQ(empty.memory_peak_kb, 0);
  EXPECT_EQ(empty.oom_kills, 0u);
}

// The daemon's move into a leaf of its delegated v2 cgroup, against a directory laid out like one
// (the kernel's side, EBUSY without the move, needs a v2 host: tests/integration/cgroup_v2_test.cc
// runs there).
TEST(MoveSelfToLeafCgroup, WritesItsPidIntoTheLeafOnV2AndDoesNothingOnV1) {
  testing::ScratchDir own;
  CgroupLayout v2;
  v2.backend = CgroupBackend::kV2;
  v2.v2_dir = own.path();
  own.Write("supervisor/cgroup.procs", "");  // the kernel makes it with the directory
  ASSERT_TRUE(MoveSelfToLeafCgroup(v2, "supervisor").ok());
  std::ifstream procs(own.Path("supervisor/cgroup.procs"));
  std::stringstream text;
  text << procs.rdbuf();
  EXPECT_EQ(text.str(), std::to_string(getpid()));
  EXPECT_FALSE(MoveSelfToLeafCgroup(v2, "a/b").ok());
  EXPECT_FALSE(MoveSelfToLeafCgroup(v2, "..").ok());

  CgroupLayout v1;
  v1.backend = CgroupBackend::kV1;
  v1.v1_memory = own.Path("memory");
  EXPECT_TRUE(MoveSelfToLeafCgroup(v1, "supervisor").ok());
  EXPECT_FALSE(std::filesystem::exists(own.Path("memory")));
}

}  // namespace
}  // namespace packvisor::sandbox
