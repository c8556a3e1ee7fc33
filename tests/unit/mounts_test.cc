#include "sandbox/mounts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/mount.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace packvisor::sandbox {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kRoNosuidNodev = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

HostLayout HandMadeLayout() {
  HostLayout host;
  host.root_entries = {
      {"/usr", HostLayout::Entry::kDir, {}},
      {"/bin", HostLayout::Entry::kSymlink, "usr/bin"},
      {"/lib", HostLayout::Entry::kSymlink, "usr/lib"},
      {"/lib64", HostLayout::Entry::kSymlink, "usr/lib64"},
      {"/sbin", HostLayout::Entry::kDir, {}},
  };
  host.etc_entries = {
      {"/etc/ld.so.cache", HostLayout::Entry::kFile, {}},
      {"/etc/ssl", HostLayout::Entry::kDir, {}},
      {"/etc/localtime", HostLayout::Entry::kSymlink, "/usr/share/zoneinfo/Etc/UTC"},
  };
  host.devices = {"null", "zero", "urandom"};
  host.proc_read_only = {"sys", "sysrq-trigger"};
  return host;
}

SandboxSpec SpecWithPackAndEnv() {
  SandboxSpec spec;
  spec.argv = {"/bin/true"};
  spec.pack_dir = "/srv/packs/demo";
  spec.env_dir = "/srv/envs/demo/python";
  spec.limits.tmp_size_bytes = 32ull << 20;
  return spec;
}

std::vector<const MountOp*> OpsAt(const MountPlan& plan, const std::string& target) {
  std::vector<const MountOp*> found;
  for (const MountOp& op : plan.ops) {
    if (op.target == target) found.push_back(&op);
  }
  return found;
}

// The single op at `target`; fails the test when there is not exactly one.
const MountOp& OnlyOpAt(const MountPlan& plan, const std::string& target) {
  static const MountOp kNone(MountOpKind::kMakeDir, "", "<none>");
  auto found = OpsAt(plan, target);
  EXPECT_EQ(found.size(), 1u) << "ops at " << target;
  return found.empty() ? kNone : *found.front();
}

size_t IndexOf(const MountPlan& plan, MountOpKind kind, const std::string& target) {
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    if (plan.ops[i].kind == kind && plan.ops[i].target == target) return i;
  }
  return plan.ops.size();
}

TEST(BuildMountPlan, BindsThePackReadOnlyNosuidNodevAtPack) {
  MountPlan plan = BuildMountPlan(SpecWithPackAndEnv(), HandMadeLayout());
  const MountOp& op = OnlyOpAt(plan, "/pack");
  EXPECT_EQ(op.kind, MountOpKind::kBindDir);
  EXPECT_EQ(op.source, "/oldroot/srv/packs/demo");
  EXPECT_EQ(op.attr_set & kRoNosuidNodev, kRoNosuidNodev);
  EXPECT_EQ(op.attr_clr & MOUNT_ATTR_RDONLY, 0u);
}

TEST(BuildMountPlan, BindsTheEnvReadWriteNosuidNodevAtEnv) {
  MountPlan plan = BuildMountPlan(SpecWithPackAndEnv(), HandMadeLayout());
  const MountOp& op = OnlyOpAt(plan, "/env");
  EXPECT_EQ(op.kind, MountOpKind::kBindDir);
  EXPECT_EQ(op.source, "/oldroot/srv/envs/demo/python");
  EXPECT_EQ(op.attr_set & (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
            uint64_t{MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV});
  EXPECT_EQ(op.attr_set & MOUNT_ATTR_RDONLY, 0u);
  // RDONLY is cleared explicitly, not merely left unset.
  EXPECT_EQ(op.attr_clr & MOUNT_ATTR_RDONLY, uint64_t{MOUNT_ATTR_RDONLY});
}

TEST(BuildMountPlan, HasNoPackOrEnvOpsWhenTheyAreEmpty) {
  SandboxSpec spec = SpecWithPackAndEnv();
  spec.pack_dir.clear();
  spec.env_dir.clear();
  MountPlan plan = BuildMountPlan(spec, HandMadeLayout());
  EXPECT_TRUE(OpsAt(plan, "/pack").empty());
  EXPECT_TRUE(OpsAt(plan, "/env").empty());
  for (const MountOp& op : plan.ops) {
    EXPECT_THAT(op.target, Not(HasSubstr("/pack"))) << op.Describe();
    EXPECT_THAT(op.source, Not(HasSubstr("/srv/"))) << op.Describe();
  }
}

TEST(BuildMountPlan, MountsASizeLimitedPrivateTmpfsAtTmp) {
  SandboxSpec spec = SpecWithPackAndEnv();
  MountPlan plan = BuildMountPlan(spec, HandMadeLayout());
  const MountOp& op = OnlyOpAt(plan, "/tmp");
  EXPECT_EQ(op.kind, MountOpKind::kTmpfs);
  EXPECT_THAT(op.data, HasSubstr("size=" + std::to_string(32ull << 20)));
  EXPECT_THAT(op.data, HasSubstr("mode=1777"));
  EXPECT_EQ(op.attr_set & (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
            uint64_t{MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV});
}

TEST(BuildMountPlan, TmpSizeFollowsTheSpec) {
  SandboxSpec spec = SpecWithPackAndEnv();
  spec.limits.tmp_size_bytes = 12345 * 4096ull;
  MountPlan plan = BuildMountPlan(spec, HandMadeLayout());
  EXPECT_THAT(OnlyOpAt(plan, "/tmp").data, HasSubstr("size=" + std::to_string(12345 * 4096ull)));
  EXPECT_THAT(OnlyOpAt(plan, "/dev/shm").data,
              HasSubstr("size=" + std::to_string(12345 * 4096ull)));
}

TEST(BuildMountPlan, MountsAFreshProcAndCoversHostWideEntriesReadOnly) {
  MountPlan plan = BuildMountPlan(SpecWithPackAndEnv(), HandMadeLayout());
  size_t proc = IndexOf(plan, MountOpKind::kProc, "/proc");
  ASSERT_LT(proc, plan.ops.size());
  const MountOp& sys = OnlyOpAt(plan, "/proc/sys");
  EXPECT_EQ(sys.kind, MountOpKind::kBindDir);
  EXPECT_EQ(sys.source, "/proc/sys");  // the new proc, not the host's
  EXPECT_EQ(sys.attr_set & MOUNT_ATTR_RDONLY, uint64_t{MOUNT_ATTR_RDONLY});
  const MountOp& sysrq = OnlyOpAt(plan, "/proc/sysrq-trigger");
  EXPECT_EQ(sysrq.kind, MountOpKind::kBindFile);
  EXPECT_EQ(sysrq.attr_set & MOUNT_ATTR_RDONLY, uint64_t{MOUNT_ATTR_RDONLY});
  EXPECT_GT(IndexOf(plan, MountOpKind::kBindDir, "/proc/sys"), proc);
}

TEST(BuildMountPlan, BuildsAMinimalReadOnlyDevWithOnlyTheProbedDevices) {
  MountPlan plan = BuildMountPlan(SpecWithPackAndEnv(), HandMadeLayout());
  size_t dev = IndexOf(plan, MountOpKind::kTmpfs, "/dev");
  ASSERT_LT(dev, plan.ops.size());
  EXPECT_EQ(plan.ops[dev].attr_set & MOUNT_ATTR_NOSUID, uint64_t{MOUNT_ATTR_NOSUID});
  for (const char* name : {"null", "zero", "urandom"}) {
    const MountOp& op = OnlyOpAt(plan, std::string("/dev/") + name);
    EXPECT_EQ(op.kind, MountOpKind::kBindFile);
    EXPECT_EQ(op.source, std::string("/oldroot/dev/") + name);
    EXPECT_EQ(op.attr_set & MOUNT_ATTR_NOSUID, uint64_t{MOUNT_ATTR_NOSUID});
  }
  // Not probed on this "host": not in the plan. No terminal either.
  EXPECT_TRUE(OpsAt(plan, "/dev/full").empty());
  EXPECT_TRUE(OpsAt(plan, "/dev/random").empty());
  EXPECT_TRUE(OpsAt(plan, "/dev/tty").empty());
  EXPECT_TRUE(OpsAt(plan, "/dev/console").empty());
  EXPECT_EQ(OnlyOpAt(plan, "/dev/fd").kind, MountOpKind::kSymlink);
  EXPECT_EQ(OnlyOpAt(plan, "/dev/fd").source, "/proc/self/fd");
  EXPECT_EQ(OnlyOpAt(plan, "/dev/shm").kind, MountOpKind::kTmpfs);
  // /dev goes read-only after everything in it was created.
  size_t set_attr = IndexOf(plan, MountOpKind::kSetAttr, "/dev");
  ASSERT_LT(set_attr, plan.ops.size());
  EXPECT_EQ(plan.ops[set_attr].attr_set & MOUNT_ATTR_RDONLY, uint64_t{MOUNT_ATTR_RDONLY});
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    if (plan.ops[i].target.rfind("/dev/", 0) == 0) {
      EXPECT_GT(i, dev) << plan.ops[i].Describe();
      EXPECT_LT(i, set_attr) << plan.ops[i].Describe();
    }
  }
}

TEST(BuildMountPlan, RecreatesRootSymlinksAndBindsRootDirsReadOnly) {
  MountPlan plan = BuildMountPlan(SpecWithPackAndEnv(), HandMadeLayout());
  for (const auto& [link, target] : std::vector<std::pair<std::string, std::string>>{
           {"/bin", "usr/bin"}, {"/lib", "usr/lib"}, {"/lib64", "usr/lib64"}}) {
    const MountOp& op = OnlyOpAt(plan, link);
    EXPECT_EQ(op.kind, MountOpKind::kSymlink) << link;
    EXPECT_EQ(op.source, target) << link;
  }
  for (const char* dir : {"/usr", "/sbin"}) {
    const MountOp& op = OnlyOpAt(plan, dir);
    EXPECT_EQ(op.kind, MountOpKind::kBindDir) << dir;
    EXPECT_EQ(op.source, std::string("/oldroot") + dir);
    EXPECT_EQ(op.attr_set & kRoNosuidNodev, kRoNosuidNodev) << dir;
  }
}

TEST(BuildMountPlan, BindsProbedEtcEntriesReadOnlyByType) {
  MountPlan plan = BuildMountPlan(SpecWithPackAndEnv(), HandMadeLayout());
  EXPECT_EQ(OnlyOpAt(plan, "/etc").kind, MountOpKind::kMakeDir);
  const MountOp& cache = OnlyOpAt(plan, "/etc/ld.so.cache");
  EXPECT_EQ(cache.kind, MountOpKind::kBindFile);
  EXPECT_EQ(cache.attr_set & kRoNosuidNodev, kRoNosuidNodev);
  const MountOp& ssl = OnlyOpAt(plan, "/etc/ssl");
  EXPECT_EQ(ssl.kind, MountOpKind::kBindDir);
  EXPECT_EQ(ssl.attr_set & kRoNosuidNodev, kRoNosuidNodev);
  const MountOp& localtime = OnlyOpAt(plan, "/etc/localtime");
  EXPECT_EQ(localtime.kind, MountOpKind::kSymlink);
  EXPECT_EQ(localtime.source, "/usr/share/zoneinfo/Etc/UTC");
  EXPECT_TRUE(OpsAt(plan, "/etc/shadow").empty());
}

TEST(BuildMountPlan, SynthesizesPasswdAndGroupForTheActionUser) {
  MountPlan plan = BuildMountPlan(SpecWithPackAndEnv(), HandMadeLayout());
  const MountOp& passwd = OnlyOpAt(plan, "/etc/passwd");
  EXPECT_EQ(passwd.kind, MountOpKind::kWriteFile);
  EXPECT_THAT(passwd.source, HasSubstr("action:x:1000:1000:"));
  EXPECT_EQ(passwd.mode, 0644u);
  const MountOp& group = OnlyOpAt(plan, "/etc/group");
  EXPECT_EQ(group.kind, MountOpKind::kWriteFile);
  EXPECT_THAT(group.source, HasSubstr("action:x:1000:"));
}

TEST(BuildMountPlan, PasswdFollowsTheInsideIds) {
  SandboxSpec spec = SpecWithPackAndEnv();
  spec.ids.inside_uid = 2001;
  spec.ids.inside_gid = 3002;
  MountPlan plan = BuildMountPlan(spec, HandMadeLayout());
  EXPECT_THAT(OnlyOpAt(plan, "/etc/passwd").source, HasSubstr("action:x:2001:3002:"));
  EXPECT_THAT(OnlyOpAt(plan, "/etc/group").source, HasSubstr("action:x:3002:"));
  // Host ids never appear inside.
  EXPECT_THAT(OnlyOpAt(plan, "/etc/passwd").source, Not(HasSubstr("100000")));
}

TEST(BuildMountPlan, BindsResolvConfOnlyWhenTheHostLayoutHasIt) {
  // ProbeHostLayout adds resolv.conf (resolved) only for host networking; the plan binds it from
  // the resolved path.
  HostLayout host = HandMadeLayout();
  MountPlan without = BuildMountPlan(SpecWithPackAndEnv(), host);
  EXPECT_TRUE(OpsAt(without, "/etc/resolv.conf").empty());

  host.etc_entries.push_back({"/etc/resolv.conf", HostLayout::Entry::kFile, "/run/resolv.conf"});
  MountPlan with = BuildMountPlan(SpecWithPackAndEnv(), host);
  const MountOp& op = OnlyOpAt(with, "/etc/resolv.conf");
  EXPECT_EQ(op.kind, MountOpKind::kBindFile);
  EXPECT_EQ(op.source, "/oldroot/run/resolv.conf");
  EXPECT_EQ(op.attr_set & kRoNosuidNodev, kRoNosuidNodev);
}

TEST(ProbeHostLayout, IncludesResolvConfOnlyWithHostNetwork) {
  SandboxSpec spec = SpecWithPackAndEnv();
  spec.pack_dir.clear();
  spec.env_dir.clear();
  auto is_resolv = [](const HostLayout::Entry& e) { return e.path == "/etc/resolv.conf"; };
  spec.network = NetworkMode::kNone;
  auto none = ProbeHostLayout(spec);
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_TRUE(std::none_of(none->etc_entries.begin(), none->etc_entries.end(), is_resolv));

  spec.network = NetworkMode::kHost;
  auto host = ProbeHostLayout(spec);
  ASSERT_TRUE(host.ok()) << host.error().message();
  char resolved[4096];
  if (realpath("/etc/resolv.conf", resolved) == nullptr) {
    GTEST_SKIP() << "this host has no resolvable /etc/resolv.conf";
  }
  auto it = std::find_if(host->etc_entries.begin(), host->etc_entries.end(), is_resolv);
  ASSERT_NE(it, host->etc_entries.end());
  EXPECT_EQ(it->symlink_target, resolved);
}

TEST(ProbeHostLayout, RejectsASymlinkExtraBind) {
  SandboxSpec spec;
  spec.argv = {"/bin/true"};
  // /proc/self is a symlink on every Linux host.
  spec.extra_ro_binds = {"/proc/self"};
  auto host = ProbeHostLayout(spec);
  ASSERT_FALSE(host.ok());
  EXPECT_THAT(host.error().message(), HasSubstr("symbolic link"));
}

TEST(BuildMountPlan, ExtraBindsGetTheirParentsCreatedFirst) {
  HostLayout host = HandMadeLayout();
  host.extra_binds = {{"/opt/tools/bin", HostLayout::Entry::kDir, {}}};
  MountPlan plan = BuildMountPlan(SpecWithPackAndEnv(), host);
  size_t opt = IndexOf(plan, MountOpKind::kMakeDir, "/opt");
  size_t tools = IndexOf(plan, MountOpKind::kMakeDir, "/opt/tools");
  size_t bind = IndexOf(plan, MountOpKind::kBindDir, "/opt/tools/bin");
  ASSERT_LT(bind, plan.ops.size());
  EXPECT_LT(opt, tools);
  EXPECT_LT(tools, bind);
  EXPECT_EQ(plan.ops[bind].source, "/oldroot/opt/tools/bin");
  EXPECT_EQ(plan.ops[bind].attr_set & kRoNosuidNodev, kRoNosuidNodev);
}

TEST(BuildMountPlan, EveryBindSourceLiesUnderTheOldRootOrTheNewProc) {
  HostLayout host = HandMadeLayout();
  host.extra_binds = {{"/opt/tools", HostLayout::Entry::kDir, {}}};
  MountPlan plan = BuildMountPlan(SpecWithPackAndEnv(), host);
  for (const MountOp& op : plan.ops) {
    if (op.kind != MountOpKind::kBindDir && op.kind != MountOpKind::kBindFile) continue;
    bool old_root = op.source.rfind("/oldroot/", 0) == 0;
    bool new_proc = op.source.rfind("/proc/", 0) == 0 && op.source == op.target;
    EXPECT_TRUE(old_root || new_proc) << op.Describe();
  }
}

TEST(MountOp, DescribesBindsWithTheHostPath) {
  MountOp op(MountOpKind::kBindDir, "/oldroot/srv/packs/demo", "/pack");
  EXPECT_EQ(op.Describe(), "bind /srv/packs/demo at /pack");
  MountOp link(MountOpKind::kSymlink, "usr/bin", "/bin");
  EXPECT_EQ(link.Describe(), "symlink /bin -> usr/bin");
}

}  // namespace
}  // namespace packvisor::sandbox

namespace packvisor::sandbox {
namespace {

TEST(MountPlanCopies, SmallEtcEntriesAreWrittenNotBound) {
  HostLayout host;
  HostLayout::Entry file("/etc/hosts", HostLayout::Entry::kFile);
  file.copied = true;
  file.content = "127.0.0.1 localhost\n";
  HostLayout::Entry dir("/etc/python3", HostLayout::Entry::kDir);
  dir.copied = true;
  HostLayout::Entry child("/etc/python3/debian_config", HostLayout::Entry::kFile);
  child.copied = true;
  child.content = "[install]\n";
  host.etc_entries = {file, dir, child, {"/etc/ssl", HostLayout::Entry::kDir}};
  SandboxSpec spec;
  spec.argv = {"/bin/true"};
  MountPlan plan = BuildMountPlan(spec, host);
  std::vector<std::string> order;
  for (const MountOp& op : plan.ops) {
    if (op.target == "/etc/hosts") {
      EXPECT_EQ(op.kind, MountOpKind::kWriteFile);
      EXPECT_EQ(op.source, "127.0.0.1 localhost\n");
      EXPECT_EQ(op.mode, 0644u);
    }
    if (op.target == "/etc/python3") {
      EXPECT_EQ(op.kind, MountOpKind::kMakeDir);
    }
    if (op.target == "/etc/python3/debian_config") {
      EXPECT_EQ(op.kind, MountOpKind::kWriteFile);
    }
    if (op.target == "/etc/ssl") {
      EXPECT_EQ(op.kind, MountOpKind::kBindDir);
    }
    if (op.target.rfind("/etc/python3", 0) == 0) order.push_back(op.target);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"/etc/python3", "/etc/python3/debian_config"}));
}

TEST(MountPlanCopies, ProbeCopiesSmallFilesAndBindsLargeTrees) {
  SandboxSpec spec;
  spec.argv = {"/bin/true"};
  auto host = ProbeHostLayout(spec);
  ASSERT_TRUE(host.ok()) << host.error().message();
  for (const auto& entry : host->etc_entries) {
    if (entry.path == "/etc/nsswitch.conf") {
      EXPECT_TRUE(entry.copied);
    }
    if (entry.path == "/etc/ssl") {
      EXPECT_FALSE(entry.copied);  // hundreds of certificates
    }
  }
}

}  // namespace
}  // namespace packvisor::sandbox
