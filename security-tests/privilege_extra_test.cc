// Catalog groups A and B, more of them: file capabilities (A03), setns through /proc/*/ns
// (A05), descriptors of concurrent actions (B12), prctl options that would weaken the sandbox
// (B20) and native code from a memfd (B21). Every attack runs as a real hostile program through
// the real `packvisor exec`; it prints a marker before it attacks. Where it is cheap, a positive
// control runs the same program without the defence and shows the attack then works.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "security-tests/probe_suite.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using testing::TempDir;
using namespace probe_suite;

// In a forked child: become uid/gid 65534 with no groups.
void BecomeNobody() {
  if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
      setresuid(65534, 65534, 65534) != 0) {
    _exit(120);
  }
}

// `packvisor exec --pack-dir PACK [--env-dir ENV] --json --timeout 3 -- argv...` with `binary`.
nlohmann::json ExecIn(const TempDir& pack, const std::vector<std::string>& argv,
                      const std::string& binary = testing::PackvisorBinary(),
                      const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> args = {"exec", "--pack-dir", pack.path(), "--timeout",
                                   "3",    "--json",     "--"};
  args.insert(args.end(), argv.begin(), argv.end());
  Outcome run = RunBinary(binary, args, extra_env);
  EXPECT_FALSE(run.timed_out) << "packvisor hung: " << run.err;
  nlohmann::json result = run.Json();
  EXPECT_TRUE(result.contains("stdout")) << "no result object: " << run.out << run.err;
  return result;
}

std::map<std::string, std::string> StatusLines(const std::string& out) {
  std::map<std::string, std::string> status;
  for (const std::string& line : testing::Lines(out)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos || line.find(' ') < colon) continue;
    size_t start = line.find_first_not_of(" \t", colon + 1);
    status[line.substr(0, colon)] = start == std::string::npos ? "" : line.substr(start);
  }
  return status;
}

void ExpectFullyConfined(const std::string& out) {
  auto status = StatusLines(out);
  for (const char* key : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(status[key], "0000000000000000") << key << " in:\n" << out;
  }
  EXPECT_EQ(status["NoNewPrivs"], "1") << out;
  EXPECT_EQ(status["Seccomp"], "2") << out;
}

// --- A03: file capabilities ----------------------------------------------------------------

// A root-owned copy of the Python interpreter carrying cap_net_raw+ep (what `setcap
// cap_net_raw+ep` writes), plus the attack script, in a fresh pack.
class FileCapsPack {
 public:
  FileCapsPack() {
    std::string python = std::filesystem::canonical("/usr/bin/python3");
    pack_.Write("py", ReadFile(python), 0755);
    pack_.Write("a03_file_caps.py", Script("a03_file_caps.py"));
    // struct vfs_cap_data, revision 2, effective bit set; permitted = CAP_NET_RAW (13).
    const uint32_t blob[5] = {0x02000001u, 1u << 13, 0, 0, 0};
    ok_ = setxattr(pack_.Path("py").c_str(), "security.capability", blob, sizeof(blob), 0) == 0;
    error_ = errno;
  }
  bool ok() const { return ok_; }
  int error() const { return error_; }
  const TempDir& dir() const { return pack_; }

 private:
  TempDir pack_;
  bool ok_ = false;
  int error_ = 0;
};

TEST(PrivilegeExtraTest, A03_file_caps_binary_gains_nothing_in_the_sandbox) {
  RequireRoot();
  FileCapsPack pack;
  ASSERT_TRUE(pack.ok()) << "setxattr security.capability: " << strerror(pack.error());
  nlohmann::json result = ExecIn(pack.dir(), {"/pack/py", "/pack/a03_file_caps.py"});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();
  ExpectFullyConfined(out);
  EXPECT_FALSE(HasLine(out, "socket ok")) << "AF_PACKET socket created: " << out;
  std::vector<std::string> errs = Tagged(out, "socket errno");
  ASSERT_EQ(errs.size(), 1u) << out;
  EXPECT_TRUE(errs[0] == std::to_string(EPERM) || errs[0] == std::to_string(EAFNOSUPPORT))
      << "socket(AF_PACKET) failed with an unexpected errno " << errs[0];
}

// Second layer: even without the seccomp filter (test hooks), NNP and the nosuid pack mount
// keep the file capability from being granted, so the kernel itself refuses AF_PACKET.
TEST(PrivilegeExtraTest, A03_file_caps_inert_even_without_seccomp) {
  RequireRoot();
  FileCapsPack pack;
  ASSERT_TRUE(pack.ok()) << strerror(pack.error());
  nlohmann::json result =
      ExecIn(pack.dir(), {"/pack/py", "/pack/a03_file_caps.py"}, PACKVISOR_TEST_HOOKS_BINARY,
             {"PACKVISOR_TEST_SKIP_STEP=seccomp", "PACKVISOR_TEST_SKIP_VERIFY=1"});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << result.dump();
  auto status = StatusLines(out);
  EXPECT_EQ(status["Seccomp"], "0") << "the hook did not switch seccomp off: " << out;
  EXPECT_EQ(status["CapEff"], "0000000000000000") << out;
  EXPECT_EQ(status["CapPrm"], "0000000000000000") << out;
  EXPECT_TRUE(HasLine(out, "socket errno " + std::to_string(EPERM))) << out;
}

// Positive control: on the host, as uid 65534, the same copy really gets CAP_NET_RAW and opens
// the packet socket.
TEST(PrivilegeExtraTest, A03_positive_control_file_caps_work_on_the_host) {
  RequireRoot();
  FileCapsPack pack;
  ASSERT_TRUE(pack.ok()) << strerror(pack.error());
  Outcome run = RunBinary(pack.dir().Path("py"), {pack.dir().Path("a03_file_caps.py")}, {}, {},
                          10000, BecomeNobody);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(StatusLines(run.out)["CapEff"], "0000000000002000") << run.out;
  EXPECT_TRUE(HasLine(run.out, "socket ok")) << run.out;
}

// --- A05: setns into another namespace ------------------------------------------------------

TEST(PrivilegeExtraTest, A05_setns_on_every_proc_ns_fails_and_only_sandbox_pids_visible) {
  RequireRoot();
  TempDir pack;
  pack.Write("a05_setns_walk.py", Script("a05_setns_walk.py"));
  nlohmann::json result = ExecIn(pack, {"/usr/bin/python3", "/pack/a05_setns_walk.py", "all"});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();

  // Only the sandbox: its init (pid 1) and the action, whose parent is init.
  std::vector<std::string> self = Tagged(out, "self");
  ASSERT_EQ(self.size(), 1u) << out;
  std::vector<std::string> pids = Tagged(out, "pids");
  ASSERT_EQ(pids.size(), 1u) << out;
  std::vector<std::string> visible = Fields(pids[0]);
  EXPECT_EQ(std::set<std::string>(visible.begin(), visible.end()),
            (std::set<std::string>{"1", self[0]}))
      << "processes outside the sandbox are visible: " << pids[0];
  EXPECT_TRUE(HasLine(out, "ppid " + self[0] + " 1")) << out;

  int setns_lines = 0;
  for (const std::string& line : Tagged(out, "setns")) {
    ++setns_lines;
    std::vector<std::string> f = Fields(line);
    ASSERT_EQ(f.size(), 3u) << line;
    EXPECT_EQ(f[1] + " " + f[2], "errno " + std::to_string(EPERM)) << "setns " << line;
  }
  for (const std::string& line : Tagged(out, "open")) {
    std::vector<std::string> f = Fields(line);
    ASSERT_EQ(f.size(), 3u) << line;
    EXPECT_TRUE(f[2] == std::to_string(EACCES) || f[2] == std::to_string(EPERM)) << line;
  }
  // At least the action's own namespaces (cgroup ipc mnt net pid time user uts...) were tried.
  EXPECT_GE(setns_lines, 8) << out;
  EXPECT_TRUE(HasLine(out, "attempts " + std::to_string(setns_lines))) << out;
  EXPECT_TRUE(HasLine(out, "joined 0")) << out;
}

// Positive control: as root on the host the script does join namespaces (its own uts, ipc and
// net, which changes nothing), so "joined 0" above is meaningful.
TEST(PrivilegeExtraTest, A05_positive_control_setns_works_on_the_host) {
  RequireRoot();
  TempDir dir;
  dir.Write("a05_setns_walk.py", Script("a05_setns_walk.py"));
  Outcome run = RunBinary("/usr/bin/python3", {dir.Path("a05_setns_walk.py"), "self"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(HasLine(run.out, "joined 3")) << run.out;
}

// --- B12: fds of concurrent actions ----------------------------------------------------------

TEST(PrivilegeExtraTest, B12_fds_of_20_concurrent_actions_are_stdio_pipes_only) {
  RequireRoot();
  constexpr int kActions = 20;
  std::vector<std::unique_ptr<TempDir>> packs;
  for (int i = 0; i < kActions; ++i) {
    packs.push_back(std::make_unique<TempDir>());
    packs.back()->Write("probe", ReadFile(PACKVISOR_PROBE_BINARY), 0755);
  }
  std::vector<Outcome> runs(kActions);
  std::vector<std::thread> threads;
  for (int i = 0; i < kActions; ++i) {
    threads.emplace_back([&, i] {
      runs[i] = RunBinary(testing::PackvisorBinary(),
                          {"exec", "--pack-dir", packs[i]->path(), "--timeout", "5", "--json", "--",
                           "/bin/sh", "-c", "/pack/probe fds; sleep 0.5"},
                          {}, {}, 30000);
    });
  }
  for (auto& t : threads) t.join();

  std::set<std::string> all_inodes;
  for (int i = 0; i < kActions; ++i) {
    std::string out = runs[i].Json().value("stdout", "");
    ASSERT_TRUE(HasLine(out, "fds reached"))
        << "action " << i << ": " << runs[i].out << runs[i].err;
    std::set<int> fds;
    std::set<std::string> inodes;
    for (const std::string& line : Tagged(out, "fds")) {
      std::vector<std::string> f = Fields(line);
      if (f.size() != 3 || f[1] != "->") continue;
      fds.insert(std::stoi(f[0]));
      EXPECT_EQ(f[2].rfind("pipe:[", 0), 0u) << "action " << i << " fd " << line;
      inodes.insert(f[2]);
    }
    EXPECT_EQ(fds, (std::set<int>{0, 1, 2})) << "action " << i << ":\n" << out;
    EXPECT_EQ(inodes.size(), 3u) << "stdin, stdout and stderr share a pipe: " << out;
    for (const std::string& inode : inodes) {
      EXPECT_TRUE(all_inodes.insert(inode).second)
          << inode << " of action " << i << " is also another action's pipe";
    }
  }
  EXPECT_EQ(all_inodes.size(), static_cast<size_t>(3 * kActions));
}

// --- B20: prctl options that would weaken the confinement -------------------------------------

constexpr int kLockedSecurebits = 0xef;  // NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE + locks

TEST(PrivilegeExtraTest, B20_prctl_cannot_unlock_securebits_caps_or_no_new_privs) {
  RequireRoot();
  TempDir pack;
  pack.Write("b20_prctl.py", Script("b20_prctl.py"));
  nlohmann::json result = ExecIn(pack, {"/usr/bin/python3", "/pack/b20_prctl.py"});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();
  const std::string eperm = std::to_string(EPERM);
  EXPECT_TRUE(HasLine(out, "securebits_before " + std::to_string(kLockedSecurebits))) << out;
  EXPECT_TRUE(HasLine(out, "set_securebits_0 rc -1 errno " + eperm)) << out;
  EXPECT_TRUE(HasLine(out, "set_keepcaps rc -1 errno " + eperm)) << out;
  EXPECT_TRUE(HasLine(out, "capbset_drop rc -1 errno " + eperm)) << out;
  EXPECT_TRUE(HasLine(out, "ambient_raise rc -1 errno " + eperm)) << out;
  // The kernel only accepts 1 for PR_SET_NO_NEW_PRIVS: there is no way back.
  EXPECT_TRUE(HasLine(out, "set_no_new_privs_0 rc -1 errno " + std::to_string(EINVAL))) << out;
  EXPECT_TRUE(HasLine(out, "securebits_after " + std::to_string(kLockedSecurebits))) << out;
  EXPECT_TRUE(HasLine(out, "no_new_privs_after 1")) << out;
  ExpectFullyConfined(out);
}

// Positive control: as root on the host (no sandbox) the same calls succeed.
TEST(PrivilegeExtraTest, B20_positive_control_prctl_weakening_works_on_the_host) {
  RequireRoot();
  Outcome run = RunBinary("/usr/bin/python3",
                          {std::string(PACKVISOR_SECURITY_SCRIPTS_DIR) + "/b20_prctl.py"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(HasLine(run.out, "set_securebits_0 rc 0 errno 0")) << run.out;
  EXPECT_TRUE(HasLine(run.out, "capbset_drop rc 0 errno 0")) << run.out;
}

// --- B21: native code from a memfd ----------------------------------------------------------

// Policy (docs and catalog 21): packvisor does not forbid memfd_create or exec from a memfd, and
// it does not treat noexec as a boundary. What matters is that a new image from a memfd gains
// nothing: it still has no capabilities, no_new_privs and the seccomp filter.
TEST(PrivilegeExtraTest, B21_memfd_exec_runs_but_stays_confined) {
  RequireRoot();
  TempDir pack;
  pack.Write("b21_memfd_exec.py", Script("b21_memfd_exec.py"));
  nlohmann::json result = ExecIn(pack, {"/usr/bin/python3", "/pack/b21_memfd_exec.py"});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();
  EXPECT_TRUE(Tagged(out, "exec errno").empty()) << "exec from a memfd failed: " << out;
  auto status = StatusLines(out);
  ASSERT_TRUE(status.count("Name")) << "the memfd image did not run: " << result.dump();
  EXPECT_NE(status["Name"], "python3") << out;
  ExpectFullyConfined(out);
  EXPECT_EQ(result.value("exit_code", -1), 0) << result.dump();
}

}  // namespace
}  // namespace packvisor
