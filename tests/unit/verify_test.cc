#include "sandbox/verify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace packvisor::sandbox {
namespace {

using ::testing::HasSubstr;

// /proc/<pid>/status of a confined action as the host sees it (host ids 100000).
const char kGoodStatus[] =
    "Name:\tsh\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "Pid:\t4242\n"
    "PPid:\t4241\n"
    "Uid:\t100000\t100000\t100000\t100000\n"
    "Gid:\t100000\t100000\t100000\t100000\n"
    "FDSize:\t64\n"
    "Groups:\t\n"
    "NStgid:\t4242\t2\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t0000000000000000\n"
    "CapEff:\t0000000000000000\n"
    "CapBnd:\t0000000000000000\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t1\n"
    "Seccomp:\t2\n"
    "Seccomp_filters:\t1\n"
    "Speculation_Store_Bypass:\tthread vulnerable\n";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << "sample lacks " << from;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

IdMapping DefaultIds() { return IdMapping{}; }

TEST(CheckStatusText, AcceptsAFullyConfinedProcess) {
  auto result = CheckStatusText(kGoodStatus, DefaultIds());
  EXPECT_TRUE(result.ok()) << result.error().message();
}

TEST(CheckStatusText, RejectsMissingNoNewPrivs) {
  auto result =
      CheckStatusText(Replace(kGoodStatus, "NoNewPrivs:\t1", "NoNewPrivs:\t0"), DefaultIds());
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message(), HasSubstr("NoNewPrivs"));
}

TEST(CheckStatusText, RejectsSeccompNotInFilterMode) {
  for (const char* mode : {"0", "1"}) {
    auto result = CheckStatusText(
        Replace(kGoodStatus, "Seccomp:\t2\n", std::string("Seccomp:\t") + mode + "\n"),
        DefaultIds());
    ASSERT_FALSE(result.ok()) << mode;
    EXPECT_THAT(result.error().message(), HasSubstr("Seccomp"));
  }
}

TEST(CheckStatusText, RejectsAnyRemainingCapability) {
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    std::string line = std::string(cap) + ":\t0000000000000000";
    std::string text = Replace(kGoodStatus, line, std::string(cap) + ":\t0000000000200000");
    auto result = CheckStatusText(text, DefaultIds());
    ASSERT_FALSE(result.ok()) << cap;
    EXPECT_THAT(result.error().message(), HasSubstr(cap));
  }
}

TEST(CheckStatusText, RejectsHostRootUidInAnyPosition) {
  // Real, effective, saved and filesystem uid: each alone must be caught.
  const char* variants[] = {"Uid:\t0\t100000\t100000\t100000", "Uid:\t100000\t0\t100000\t100000",
                            "Uid:\t100000\t100000\t0\t100000", "Uid:\t100000\t100000\t100000\t0"};
  for (const char* uid : variants) {
    auto result = CheckStatusText(Replace(kGoodStatus, "Uid:\t100000\t100000\t100000\t100000", uid),
                                  DefaultIds());
    ASSERT_FALSE(result.ok()) << uid;
    EXPECT_THAT(result.error().message(), HasSubstr("Uid"));
  }
}

TEST(CheckStatusText, RejectsAGidOtherThanTheMappedOne) {
  auto result = CheckStatusText(
      Replace(kGoodStatus, "Gid:\t100000\t100000\t100000\t100000", "Gid:\t100000\t100000\t0\t0"),
      DefaultIds());
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message(), HasSubstr("Gid"));
}

TEST(CheckStatusText, ComparesAgainstTheGivenHostIds) {
  IdMapping ids;
  ids.host_uid = 100123;
  ids.host_gid = 100123;
  EXPECT_FALSE(CheckStatusText(kGoodStatus, ids).ok());
  std::string text = Replace(kGoodStatus, "Uid:\t100000\t100000\t100000\t100000",
                             "Uid:\t100123\t100123\t100123\t100123");
  text =
      Replace(text, "Gid:\t100000\t100000\t100000\t100000", "Gid:\t100123\t100123\t100123\t100123");
  auto result = CheckStatusText(text, ids);
  EXPECT_TRUE(result.ok()) << result.error().message();
}

TEST(CheckStatusText, RejectsSupplementaryGroups) {
  auto result =
      CheckStatusText(Replace(kGoodStatus, "Groups:\t\n", "Groups:\t0 100000\n"), DefaultIds());
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message(), HasSubstr("Groups"));
}

TEST(CheckStatusText, FailsClosedWhenFieldsAreMissing) {
  EXPECT_FALSE(CheckStatusText("", DefaultIds()).ok());
  EXPECT_FALSE(CheckStatusText(Replace(kGoodStatus, "NoNewPrivs:\t1\n", ""), DefaultIds()).ok());
  EXPECT_FALSE(CheckStatusText(Replace(kGoodStatus, "Seccomp:\t2\n", ""), DefaultIds()).ok());
  EXPECT_FALSE(
      CheckStatusText(Replace(kGoodStatus, "CapBnd:\t0000000000000000\n", ""), DefaultIds()).ok());
}

TEST(CheckStatusText, IsNotFooledByAFieldNameInsideAnotherField) {
  // "Seccomp_filters" must not be read as "Seccomp".
  std::string text = Replace(kGoodStatus, "Seccomp:\t2\n", "");
  text = Replace(text, "Seccomp_filters:\t1", "Seccomp_filters:\t2");
  EXPECT_FALSE(CheckStatusText(text, DefaultIds()).ok());
}

// The mountinfo of a correctly set-up sandbox (abridged from a real launch).
const char kGoodMountinfo[] =
    "42 66 254:0 /srv/pack /pack ro,nosuid,nodev,relatime - ext4 /dev/vda rw\n"
    "43 66 254:0 /srv/env /env rw,nosuid,nodev,relatime - ext4 /dev/vda rw\n"
    "66 44 0:40 / / ro,nosuid,nodev,relatime - tmpfs tmpfs rw,size=4096k,mode=755\n"
    "67 66 254:0 /usr /usr ro,nosuid,nodev,relatime - ext4 /dev/vda rw\n"
    "68 66 254:0 /etc/ld.so.cache /etc/ld.so.cache ro,nosuid,nodev,relatime - ext4 /dev/vda rw\n"
    "86 66 0:41 / /tmp rw,nosuid,nodev,relatime - tmpfs tmpfs rw,size=65536k\n"
    "87 66 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "88 87 0:42 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "92 66 0:43 / /dev ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,size=64k\n"
    "93 92 0:6 /null /dev/null rw,nosuid,noexec,relatime - devtmpfs devtmpfs rw\n"
    "98 92 0:44 / /dev/shm rw,nosuid,nodev,relatime - tmpfs tmpfs rw,size=65536k\n";

TEST(CheckMountinfoText, AcceptsACorrectSandbox) {
  auto result = CheckMountinfoText(kGoodMountinfo, true, true);
  EXPECT_TRUE(result.ok()) << result.error().message();
}

TEST(CheckMountinfoText, RequiresPackAndEnvExactlyWhenConfigured) {
  EXPECT_FALSE(CheckMountinfoText(kGoodMountinfo, false, true).ok());
  EXPECT_FALSE(CheckMountinfoText(kGoodMountinfo, true, false).ok());
  std::string no_pack =
      Replace(kGoodMountinfo,
              "42 66 254:0 /srv/pack /pack ro,nosuid,nodev,relatime - ext4 /dev/vda rw\n", "");
  auto result = CheckMountinfoText(no_pack, true, true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message(), HasSubstr("/pack"));
  EXPECT_TRUE(CheckMountinfoText(no_pack, false, true).ok());
}

TEST(CheckMountinfoText, RejectsAWritablePack) {
  auto result = CheckMountinfoText(
      Replace(kGoodMountinfo, "/pack ro,nosuid,nodev", "/pack rw,nosuid,nodev"), true, true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message(), HasSubstr("/pack"));
}

TEST(CheckMountinfoText, RejectsAPackOrEnvWithDevices) {
  EXPECT_FALSE(
      CheckMountinfoText(Replace(kGoodMountinfo, "/pack ro,nosuid,nodev,", "/pack ro,nosuid,"),
                         true, true)
          .ok());
  EXPECT_FALSE(CheckMountinfoText(
                   Replace(kGoodMountinfo, "/env rw,nosuid,nodev,", "/env rw,nosuid,"), true, true)
                   .ok());
}

TEST(CheckMountinfoText, RejectsAReadOnlyEnv) {
  auto result = CheckMountinfoText(
      Replace(kGoodMountinfo, "/env rw,nosuid,nodev", "/env ro,nosuid,nodev"), true, true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message(), HasSubstr("/env"));
}

TEST(CheckMountinfoText, RejectsAWritableRoot) {
  auto result =
      CheckMountinfoText(Replace(kGoodMountinfo, " / / ro,nosuid", " / / rw,nosuid"), true, true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message(), HasSubstr("read-only /"));
}

TEST(CheckMountinfoText, RejectsAnyMountWithoutNosuid) {
  auto result = CheckMountinfoText(Replace(kGoodMountinfo, "/usr ro,nosuid,nodev", "/usr ro,nodev"),
                                   true, true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message(), HasSubstr("nosuid on /usr"));
}

TEST(CheckMountinfoText, RejectsTmpOrShmWithDevices) {
  EXPECT_FALSE(CheckMountinfoText(Replace(kGoodMountinfo, "/tmp rw,nosuid,nodev", "/tmp rw,nosuid"),
                                  true, true)
                   .ok());
  EXPECT_FALSE(
      CheckMountinfoText(Replace(kGoodMountinfo, "/dev/shm rw,nosuid,nodev", "/dev/shm rw,nosuid"),
                         true, true)
          .ok());
}

TEST(CheckMountinfoText, RejectsAStillAttachedOldRoot) {
  std::string text = std::string(kGoodMountinfo) +
                     "99 66 254:0 / /oldroot rw,nosuid,relatime - ext4 /dev/vda rw\n";
  auto result = CheckMountinfoText(text, true, true);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message(), HasSubstr("old root"));
}

TEST(CheckMountinfoText, RejectsMissingRootAndMalformedLines) {
  std::string no_root =
      Replace(kGoodMountinfo,
              "66 44 0:40 / / ro,nosuid,nodev,relatime - tmpfs tmpfs rw,size=4096k,mode=755\n", "");
  EXPECT_FALSE(CheckMountinfoText(no_root, true, true).ok());
  EXPECT_FALSE(CheckMountinfoText(std::string(kGoodMountinfo) + "garbage line\n", true, true).ok());
  EXPECT_FALSE(CheckMountinfoText("", false, false).ok());
}

}  // namespace
}  // namespace packvisor::sandbox
