#include "supervisor/cli/check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace packvisor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// Taken from a hybrid-mode host (v1 controllers, an empty cgroup2 at /sys/fs/cgroup/unified).
constexpr const char* kHybridMountInfo =
    "23 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(ParseMountInfo, ReadsFieldsAroundTheSeparator) {
  auto entries = ParseMountInfo(kHybridMountInfo);
  ASSERT_EQ(entries.size(), 8u);
  EXPECT_EQ(entries[0].root, "/");
  EXPECT_EQ(entries[0].mount_point, "/");
  EXPECT_EQ(entries[0].fs_type, "ext4");
  EXPECT_EQ(entries[0].source, "/dev/vda");
  EXPECT_EQ(entries[0].super_options, "rw");
  EXPECT_EQ(entries[4].mount_point, "/sys/fs/cgroup/memory");
  EXPECT_EQ(entries[4].fs_type, "cgroup");
  EXPECT_EQ(entries[4].super_options, "rw,memory");
}

TEST(ParseMountInfo, HandlesSeveralOptionalFields) {
  auto entries = ParseMountInfo(
      "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 propagate_from:2 - ext3 /dev/root "
      "rw,errors=continue\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].root, "/mnt1");
  EXPECT_EQ(entries[0].mount_point, "/mnt2");
  EXPECT_EQ(entries[0].fs_type, "ext3");
  EXPECT_EQ(entries[0].source, "/dev/root");
  EXPECT_EQ(entries[0].super_options, "rw,errors=continue");
}

TEST(ParseMountInfo, DecodesOctalEscapes) {
  auto entries =
      ParseMountInfo("50 23 0:40 / /mnt/with\\040space\\134x rw - cgroup2 cgroup2 rw,nsdelegate\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].mount_point, "/mnt/with space\\x");
}

TEST(ParseMountInfo, SkipsMalformedLinesAndBlankLines) {
  auto entries = ParseMountInfo(
      "\n"
      "garbage\n"
      "1 2 3 4 5 6 no separator here\n"
      "1 2 - cgroup2 cgroup2 rw\n"             // too few fields before the separator
      "31 23 0:28 / /ok rw - tmpfs tmpfs\n");  // no super options: still usable
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].mount_point, "/ok");
  EXPECT_EQ(entries[0].super_options, "");
}

TEST(UnescapeMountField, LeavesOtherBackslashesAlone) {
  EXPECT_EQ(UnescapeMountField("a\\011b"), "a\tb");
  EXPECT_EQ(UnescapeMountField("a\\012b"), "a\nb");
  EXPECT_EQ(UnescapeMountField("a\\9zz"), "a\\9zz");
  EXPECT_EQ(UnescapeMountField("trailing\\04"), "trailing\\04");
  EXPECT_EQ(UnescapeMountField(""), "");
}

TEST(FindCgroupMounts, HybridHost) {
  CgroupMounts mounts = FindCgroupMounts(ParseMountInfo(kHybridMountInfo));
  ASSERT_TRUE(mounts.v2_mount_point.has_value());
  EXPECT_EQ(*mounts.v2_mount_point, "/sys/fs/cgroup/unified");
  EXPECT_THAT(
      mounts.v1_controllers,
      ElementsAre(Pair("cpu", "/sys/fs/cgroup/cpu"), Pair("cpuacct", "/sys/fs/cgroup/cpuacct"),
                  Pair("memory", "/sys/fs/cgroup/memory"), Pair("pids", "/sys/fs/cgroup/pids")));
}

TEST(FindCgroupMounts, CombinedV1ControllersShareAMountPoint) {
  CgroupMounts mounts = FindCgroupMounts(ParseMountInfo(
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "33 31 0:30 / /sys/fs/cgroup/net_cls rw - cgroup cgroup rw,net_cls,release_agent=/x\n"));
  EXPECT_FALSE(mounts.v2_mount_point.has_value());
  EXPECT_THAT(mounts.v1_controllers, ElementsAre(Pair("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
                                                 Pair("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
                                                 Pair("net_cls", "/sys/fs/cgroup/net_cls")));
}

TEST(FindCgroupMounts, UnifiedHostFirstV2MountWins) {
  CgroupMounts mounts = FindCgroupMounts(ParseMountInfo(
      "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
      "90 23 0:26 / /other rw - cgroup2 cgroup2 rw\n"));
  ASSERT_TRUE(mounts.v2_mount_point.has_value());
  EXPECT_EQ(*mounts.v2_mount_point, "/sys/fs/cgroup");
  EXPECT_TRUE(mounts.v1_controllers.empty());
}

TEST(FindCgroupMounts, NoCgroups) {
  CgroupMounts mounts = FindCgroupMounts(ParseMountInfo("1 0 0:1 / / rw - ext4 /dev/x rw\n"));
  EXPECT_FALSE(mounts.v2_mount_point.has_value());
  EXPECT_TRUE(mounts.v1_controllers.empty());
}

TEST(ParseCgroupControllers, SplitsOnWhitespace) {
  EXPECT_THAT(ParseCgroupControllers("cpuset cpu io memory hugetlb pids rdma misc\n"),
              ElementsAre("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"));
  EXPECT_TRUE(ParseCgroupControllers("").empty());
  EXPECT_TRUE(ParseCgroupControllers("\n").empty());
  EXPECT_THAT(ParseCgroupControllers("  memory\tpids "), ElementsAre("memory", "pids"));
}

TEST(HasWord, MatchesWholeWordsOnly) {
  const char* actions = "kill_process kill_thread trap errno user_notif trace log allow\n";
  EXPECT_TRUE(HasWord(actions, "kill_process"));
  EXPECT_TRUE(HasWord(actions, "errno"));
  EXPECT_TRUE(HasWord(actions, "allow"));
  EXPECT_FALSE(HasWord(actions, "kill"));
  EXPECT_FALSE(HasWord("kill_thread errno", "kill_process"));
  EXPECT_FALSE(HasWord("", "errno"));
}

TEST(ParseSysctlInt, ParsesOneInteger) {
  EXPECT_EQ(ParseSysctlInt("2\n"), 2);
  EXPECT_EQ(ParseSysctlInt("-1\n"), -1);
  EXPECT_EQ(ParseSysctlInt("96365"), 96365);
  EXPECT_FALSE(ParseSysctlInt("").has_value());
  EXPECT_FALSE(ParseSysctlInt("abc\n").has_value());
  EXPECT_FALSE(ParseSysctlInt("1 2\n").has_value());
  EXPECT_FALSE(ParseSysctlInt("3x").has_value());
}

TEST(FormatCheckTable, AlignsColumns) {
  std::vector<CheckRow> rows = {
      {"pidfd", CheckStatus::kOk, "works", true},
      {"cgroup v2", CheckStatus::kWarn, "no controllers", false},
      {"x", CheckStatus::kMissing, "", true},
  };
  EXPECT_EQ(FormatCheckTable(rows),
            "feature   | status  | what it means\n"
            "----------|---------|--------------\n"
            "pidfd     | ok      | works\n"
            "cgroup v2 | warn    | no controllers\n"
            "x         | MISSING |\n");
}

TEST(CheckExitCode, OnlyRequiredRowsCount) {
  std::vector<CheckRow> rows = {
      {"pidfd", CheckStatus::kOk, "", true},
      {"cgroup v2", CheckStatus::kWarn, "", false},
      {"sysctl", CheckStatus::kInfo, "", false},
      {"cgroup v1", CheckStatus::kMissing, "", false},
  };
  EXPECT_EQ(CheckExitCode(rows), 0);
  rows.push_back({"close_range", CheckStatus::kMissing, "", true});
  EXPECT_EQ(CheckExitCode(rows), 1);
  EXPECT_EQ(CheckExitCode({{"trial", CheckStatus::kWarn, "", true}}), 1);
  EXPECT_EQ(CheckExitCode({}), 0);
}

TEST(CheckStatusName, Names) {
  EXPECT_STREQ(CheckStatusName(CheckStatus::kOk), "ok");
  EXPECT_STREQ(CheckStatusName(CheckStatus::kMissing), "MISSING");
  EXPECT_STREQ(CheckStatusName(CheckStatus::kWarn), "warn");
  EXPECT_STREQ(CheckStatusName(CheckStatus::kInfo), "info");
  EXPECT_THAT(FormatCheckTable({}), HasSubstr("what it means"));
}

// /proc/self/mountinfo of `packvisor check` in a podman container with its default masks (cgroup
// v1, read-only hierarchies), shortened.
constexpr char kContainerMountInfo[] =
    "540 470 0:60 / / rw,relatime master:200 - overlay overlay rw,lowerdir=/l,upperdir=/u\n"
    "541 540 0:63 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "546 540 0:66 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
    "547 546 0:67 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755\n"
    "550 547 0:33 /libpod_parent/libpod-1 /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime "
    "master:15 - cgroup cgroup rw,memory\n"
    "551 547 0:34 /libpod_parent/libpod-1 /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime - "
    "cgroup cgroup rw,pids\n"
    "552 547 0:35 /libpod_parent/libpod-1 /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec "
    "- cgroup cgroup rw,cpu,cpuacct\n"
    "480 541 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw\n"
    "481 541 0:70 / /proc/acpi ro,relatime - tmpfs tmpfs ro\n"
    "482 541 0:63 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw\n";

TEST(ProcOvermounts, NamesEveryMaskedOrReadOnlyPathButBinfmtMisc) {
  EXPECT_THAT(ProcOvermounts(ParseMountInfo(kContainerMountInfo)),
              ::testing::ElementsAre("/proc/kcore", "/proc/acpi", "/proc/sys"));
  EXPECT_THAT(ProcOvermounts(ParseMountInfo(
                  "30 25 0:28 / /proc/sys/fs/binfmt_misc rw,relatime - autofs systemd-1 rw\n"
                  "31 30 0:29 / /proc/sys/fs/binfmt_misc rw,relatime - binfmt_misc binfmt_misc "
                  "rw\n")),
              ::testing::IsEmpty());
}

TEST(ReadOnlyMounts, NamesTheReadOnlyHierarchiesTheLastMountWins) {
  auto mounts = ParseMountInfo(kContainerMountInfo);
  EXPECT_THAT(ReadOnlyMounts(mounts, {"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"}),
              ::testing::ElementsAre("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"));
  // -v /sys/fs/cgroup:/sys/fs/cgroup:rw mounts the host's hierarchies over the read-only ones.
  std::string bound = std::string(kContainerMountInfo) +
                      "600 547 0:33 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime - "
                      "cgroup cgroup rw,memory\n";
  EXPECT_THAT(ReadOnlyMounts(ParseMountInfo(bound), {"/sys/fs/cgroup/memory"}),
              ::testing::IsEmpty());
  EXPECT_EQ(ParseMountInfo(kContainerMountInfo)[4].mount_options,
            "ro,nosuid,nodev,noexec,relatime");
}

}  // namespace
}  // namespace packvisor
