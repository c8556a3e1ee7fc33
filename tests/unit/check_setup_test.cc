// The capability and directory judgements of `packvisor check` (supervisor/cli/check_setup.cc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>

#include "supervisor/cli/check.h"

namespace packvisor {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kAll = (1ull << (CAP_LAST_CAP + 1)) - 1;
// Docker's default set: no CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_NET_ADMIN, CAP_SYS_RESOURCE...
constexpr uint64_t kDockerDefault =
    1ull << CAP_CHOWN | 1ull << CAP_DAC_OVERRIDE | 1ull << CAP_FSETID | 1ull << CAP_FOWNER |
    1ull << CAP_MKNOD | 1ull << CAP_NET_RAW | 1ull << CAP_SETGID | 1ull << CAP_SETUID |
    1ull << CAP_SETFCAP | 1ull << CAP_SETPCAP | 1ull << CAP_NET_BIND_SERVICE |
    1ull << CAP_SYS_CHROOT | 1ull << CAP_KILL | 1ull << CAP_AUDIT_WRITE;

TEST(ParseCapabilityMask, ReadsTheNamedLineOfProcStatus) {
  const char* status =
      "Name:\tpackvisor\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n"
      "CapEff:\t000001fffeffffff\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n";
  EXPECT_EQ(ParseCapabilityMask(status, "CapEff"), 0x000001fffeffffffull);
  EXPECT_EQ(ParseCapabilityMask(status, "CapBnd"), 0xa80425fbull);
  EXPECT_EQ(ParseCapabilityMask(status, "CapAmb"), 0u);
  EXPECT_EQ(ParseCapabilityMask(status, "Cap"), std::nullopt);
  EXPECT_EQ(ParseCapabilityMask("CapEff:\tzz\n", "CapEff"), std::nullopt);
  EXPECT_EQ(ParseCapabilityMask("CapEff:\t00000000000000000\n", "CapEff"), std::nullopt);
}

TEST(JudgeCapabilities, AllPresentIsOneOkRow) {
  auto rows = JudgeCapabilities({kAll, kAll});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].feature, "capabilities");
  EXPECT_EQ(rows[0].status, CheckStatus::kOk);
  EXPECT_EQ(CheckExitCode(rows), 0);
  // CAP_SYS_PTRACE, CAP_SYS_NICE, CAP_SYS_RESOURCE and CAP_NET_ADMIN are not needed.
  uint64_t without = kAll & ~(1ull << CAP_SYS_PTRACE | 1ull << CAP_SYS_NICE |
                              1ull << CAP_SYS_RESOURCE | 1ull << CAP_NET_ADMIN);
  EXPECT_EQ(JudgeCapabilities({without, without})[0].status, CheckStatus::kOk);
}

TEST(JudgeCapabilities, DockerDefaultSetNamesCapSysAdmin) {
  auto rows = JudgeCapabilities({kDockerDefault, kDockerDefault});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].feature, "CAP_SYS_ADMIN");
  EXPECT_EQ(rows[0].status, CheckStatus::kMissing);
  EXPECT_TRUE(rows[0].required);
  EXPECT_THAT(rows[0].meaning, HasSubstr("--cap-add SYS_ADMIN"));
  EXPECT_EQ(CheckExitCode(rows), 1);
  EXPECT_EQ(MissingCapabilityNames({kDockerDefault, kDockerDefault}, {CAP_SYS_ADMIN, CAP_KILL}),
            "CAP_SYS_ADMIN");
  EXPECT_EQ(MissingCapabilityNames({kAll, kAll}, {CAP_SYS_ADMIN}), "");
}

TEST(JudgeCapabilities, InTheBoundingSetButNotEffectiveSaysSo) {
  auto rows = JudgeCapabilities({kAll & ~(1ull << CAP_SETUID), kAll});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].feature, "CAP_SETUID");
  EXPECT_THAT(rows[0].meaning, ::testing::Not(HasSubstr("bounding")));
}

PathComponent Dir(const std::string& path, uid_t owner, mode_t mode) {
  PathComponent c;
  c.path = path;
  c.exists = true;
  c.is_directory = true;
  c.owner = owner;
  c.mode = mode;
  return c;
}

DirectoryFacts Facts(std::vector<PathComponent> components) {
  DirectoryFacts facts;
  facts.components = std::move(components);
  return facts;
}

PathComponent Absent(const std::string& path) {
  PathComponent c;
  c.path = path;
  return c;
}

TEST(JudgeDirectory, RootOwnedStateDirIsOk) {
  DirectoryFacts facts = Facts({Dir("/", 0, 0755), Dir("/var", 0, 0755), Dir("/var/lib", 0, 0755),
                                Dir("/var/lib/packvisor", 0, 0755)});
  CheckRow row = JudgeDirectory("state_dir", DirectoryUse::kRootWrites, facts);
  EXPECT_EQ(row.status, CheckStatus::kOk) << row.meaning;
}

TEST(JudgeDirectory, WritableByOthersIsRefusedForWhatRootWrites) {
  DirectoryFacts facts =
      Facts({Dir("/", 0, 0755), Dir("/srv", 0, 0755), Dir("/srv/state", 0, 0777)});
  CheckRow row = JudgeDirectory("state_dir", DirectoryUse::kRootWrites, facts);
  EXPECT_EQ(row.status, CheckStatus::kMissing);
  EXPECT_TRUE(row.required);
  EXPECT_THAT(row.meaning, HasSubstr("/srv/state is writable by every user (mode 0777)"));
  facts.components.back().mode = 0755;
  facts.components.back().owner = 1000;
  EXPECT_THAT(JudgeDirectory("state_dir", DirectoryUse::kRootWrites, facts).meaning,
              HasSubstr("its owner uid 1000"));
  // A group other than root's that may write.
  facts.components.back() = Dir("/srv/state", 0, 0775);
  facts.components.back().group = 50;
  EXPECT_EQ(JudgeDirectory("state_dir", DirectoryUse::kRootWrites, facts).status,
            CheckStatus::kMissing);
  facts.components.back().group = 0;
  EXPECT_EQ(JudgeDirectory("state_dir", DirectoryUse::kRootWrites, facts).status, CheckStatus::kOk);
}

TEST(JudgeDirectory, AnAncestorOthersCanWriteIsRefusedUnlessSticky) {
  DirectoryFacts facts =
      Facts({Dir("/", 0, 0755), Dir("/shared", 0, 0777), Dir("/shared/s", 0, 0755)});
  CheckRow row = JudgeDirectory("state_dir", DirectoryUse::kRootWrites, facts);
  EXPECT_EQ(row.status, CheckStatus::kMissing);
  EXPECT_THAT(row.meaning, HasSubstr("/shared is writable by every user"));
  facts.components[1].mode = 01777;  // like /tmp
  EXPECT_EQ(JudgeDirectory("state_dir", DirectoryUse::kRootWrites, facts).status, CheckStatus::kOk);
  // ...but in a sticky directory the entry must be root's.
  facts.components[2].owner = 1000;
  EXPECT_EQ(JudgeDirectory("state_dir", DirectoryUse::kRootWrites, facts).status,
            CheckStatus::kMissing);
}

TEST(JudgeDirectory, MissingDirectories) {
  DirectoryFacts envs = Facts({Dir("/", 0, 0755), Dir("/opt", 0, 0755), Absent("/opt/packvisor")});
  CheckRow created = JudgeDirectory("runtime_envs_dir", DirectoryUse::kRootWrites, envs);
  EXPECT_EQ(created.status, CheckStatus::kOk);
  EXPECT_THAT(created.meaning,
              HasSubstr("/opt/packvisor does not exist yet; packvisor creates it"));
  envs.path = "/opt/packvisor/envs";
  EXPECT_THAT(JudgeDirectory("runtime_envs_dir", DirectoryUse::kRootWrites, envs).meaning,
              HasSubstr("/opt/packvisor/envs does not exist yet (nor does /opt/packvisor)"));
  envs.access_errno = EROFS;
  CheckRow read_only = JudgeDirectory("runtime_envs_dir", DirectoryUse::kRootWrites, envs);
  EXPECT_EQ(read_only.status, CheckStatus::kMissing);
  EXPECT_THAT(read_only.meaning, HasSubstr("cannot be created in /opt"));

  DirectoryFacts packs = Facts({Dir("/", 0, 0755), Absent("/packs")});
  CheckRow no_packs = JudgeDirectory("packs_base_dir", DirectoryUse::kRead, packs);
  EXPECT_EQ(no_packs.status, CheckStatus::kWarn);
  EXPECT_FALSE(no_packs.required);
  CheckRow no_runtimes = JudgeDirectory("runtimes_dir", DirectoryUse::kRead, packs);
  EXPECT_EQ(no_runtimes.status, CheckStatus::kMissing);
  EXPECT_TRUE(no_runtimes.required);
}

TEST(JudgeDirectory, SymlinksAndFiles) {
  PathComponent link = Dir("/var/lib", 0, 0777);
  link.is_directory = false;
  link.is_symlink = true;
  DirectoryFacts facts = Facts({Dir("/", 0, 0755), Dir("/var", 0, 0755), link});
  CheckRow row = JudgeDirectory("state_dir", DirectoryUse::kRootWrites, facts);
  EXPECT_EQ(row.status, CheckStatus::kMissing);
  EXPECT_THAT(row.meaning, HasSubstr("/var/lib is a symbolic link"));
  PathComponent file = Dir("/packs", 0, 0644);
  file.is_directory = false;
  DirectoryFacts packs = Facts({Dir("/", 0, 0755), file});
  EXPECT_THAT(JudgeDirectory("packs_base_dir", DirectoryUse::kRead, packs).meaning,
              HasSubstr("/packs is not a directory"));
}

TEST(JudgeDirectory, PacksOthersCanWriteAreAWarning) {
  DirectoryFacts facts = Facts({Dir("/", 0, 0755), Dir("/packs", 0, 0777)});
  CheckRow row = JudgeDirectory("packs_base_dir", DirectoryUse::kRead, facts);
  EXPECT_EQ(row.status, CheckStatus::kWarn);
  EXPECT_THAT(row.meaning, HasSubstr("writable by every user"));
}

TEST(InspectDirectory, WalksFromTheRootAndStopsAtTheFirstMissingComponent) {
  DirectoryFacts facts = InspectDirectory("/proc/self/nonexistent/deeper", DirectoryUse::kRead);
  ASSERT_EQ(facts.components.size(), 4u);
  EXPECT_EQ(facts.components[0].path, "/");
  EXPECT_TRUE(facts.components[2].exists);
  EXPECT_FALSE(facts.components[3].exists);
  EXPECT_EQ(facts.components[3].path, "/proc/self/nonexistent");
  // Root writes: /proc/self is a symlink, not followed.
  DirectoryFacts written = InspectDirectory("/proc/self/x", DirectoryUse::kRootWrites);
  EXPECT_TRUE(written.components[2].is_symlink);
}

}  // namespace
}  // namespace packvisor
