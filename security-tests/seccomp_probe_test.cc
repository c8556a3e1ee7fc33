// Catalog groups A and B, syscall side: the static probe (probes/probe.c) runs each attack
// through the real `packvisor exec` and must find it blocked by the policy's errno or by SIGSYS.
// A positive control runs the same probe outside any sandbox and must find the kernel running
// the calls, which proves that the table can fail.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sandbox/os/unique_fd.h"
#include "sandbox/seccomp_policy.h"
#include "security-tests/probe_suite.h"
#include "tests/support/harness.h"
#include "tests/support/host_abi.h"

extern char** environ;

namespace packvisor {
namespace {

using testing::CommandResult;
using testing::RunPackvisor;
using testing::TempDir;

constexpr int kSigsys = 31;

// What the probe said about one case.
struct ProbeOutcome {
  bool reached = false;
  bool ok = false;
  std::optional<int> err;
};

ProbeOutcome ParseProbe(const std::string& out, const std::string& name) {
  ProbeOutcome outcome;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line == name + " reached") outcome.reached = true;
    if (line == name + " ok") outcome.ok = true;
    const std::string prefix = name + " errno=";
    if (line.rfind(prefix, 0) == 0) outcome.err = std::stoi(line.substr(prefix.size()));
  }
  return outcome;
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return (name ? name : "?") + std::string("(") + std::to_string(err) + ")";
}

std::string Describe(const ProbeOutcome& o) {
  if (o.err) return "errno " + ErrnoName(*o.err);
  return o.ok ? "ok (the call ran and succeeded)" : "no result line";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A fresh 0755 pack dir (unique per test) holding a root-owned copy of the probe.
class ProbePack {
 public:
  ProbePack() {
    std::string probe = ReadFile(PACKVISOR_PROBE_BINARY);
    if (probe.empty()) throw std::runtime_error("cannot read " PACKVISOR_PROBE_BINARY);
    dir_.Write("probe", probe, 0755);
  }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
};

CommandResult RunProbeInSandbox(const std::vector<std::string>& cases) {
  ProbePack pack;
  std::vector<std::string> args = {"exec",   "--pack-dir", pack.path(),
                                   "--json", "--",         "/pack/probe"};
  args.insert(args.end(), cases.begin(), cases.end());
  return RunPackvisor(args);
}

// Runs the probe directly on the host (no sandbox), stdin /dev/null; returns stdout and status.
struct DirectResult {
  std::string out;
  int status = 0;
};

DirectResult RunProbeOnHost(const std::vector<std::string>& cases) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
  unique_fd out_r(out[0]), out_w(out[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  std::vector<std::string> full = {PACKVISOR_PROBE_BINARY};
  full.insert(full.end(), cases.begin(), cases.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, full[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn probe");
  out_w.reset();
  DirectResult result;
  char buf[4096];
  ssize_t n;
  while ((n = read(out_r.get(), buf, sizeof(buf))) > 0) result.out.append(buf, size_t(n));
  waitpid(pid, &result.status, 0);
  return result;
}

std::optional<int> PolicyErrno(const std::string& syscall_name) {
  for (const auto& denied : sandbox::DeniedSyscalls(sandbox::SeccompOptions{})) {
    if (denied.name == syscall_name) return denied.err;
  }
  return std::nullopt;
}

void RequireRoot() {
  if (geteuid() != 0) GTEST_SKIP() << "security tests need root (packvisor sets up namespaces)";
}

enum class Expect {
  kPolicyErrno,  // fails with the errno DeniedSyscalls() gives `policy_syscall`
  kSigsys,       // the process is killed by SIGSYS (bad architecture)
  kUnreviewed,   // numbered above kHighestReviewedSyscall: fails with ENOSYS
};

struct ProbeRow {
  const char* probe_case;
  const char* policy_syscall;
  Expect expect = Expect::kPolicyErrno;
  // True where the kernel itself already answers EPERM to a capability-less caller (measured
  // with the probe as uid 65534 on the host): the row then shows the combined defence, not the
  // filter alone. The host control below covers the kernel side of these where it is harmless.
  bool kernel_eperm_without_caps = false;
};

std::ostream& operator<<(std::ostream& os, const ProbeRow& row) { return os << row.probe_case; }

std::string RowName(const ::testing::TestParamInfo<ProbeRow>& info) {
  return info.param.probe_case;
}

// One group per catalog entry.
const ProbeRow kA04NestedUserns[] = {
    {"clone3_newuser", "clone3"},
    {"clone_newuser", "clone"},
    {"unshare_newuser", "unshare"},
    {"unshare_newns", "unshare", Expect::kPolicyErrno, true},
};
const ProbeRow kA05Setns[] = {{"setns", "setns"}};
const ProbeRow kA06MountLayout[] = {
    {"mount", "mount"},
    {"umount2", "umount2"},
    {"pivot_root", "pivot_root", Expect::kPolicyErrno, true},
    {"fsopen", "fsopen", Expect::kPolicyErrno, true},
    {"fsconfig", "fsconfig"},
    {"fsmount", "fsmount", Expect::kPolicyErrno, true},
    {"fspick", "fspick", Expect::kPolicyErrno, true},
    {"open_tree", "open_tree"},
    {"move_mount", "move_mount", Expect::kPolicyErrno, true},
    {"mount_setattr", "mount_setattr"},
};
const ProbeRow kA07Chroot[] = {{"chroot", "chroot"}};
const ProbeRow kA08Ptrace[] = {
    {"ptrace", "ptrace"},
    {"process_vm_readv", "process_vm_readv"},
    {"process_vm_writev", "process_vm_writev"},
    {"pidfd_getfd", "pidfd_getfd"},
    {"kcmp", "kcmp"},
    {"ptrace_traceme", "ptrace"},
};
const ProbeRow kB13Tiocsti[] = {
    {"ioctl_tiocsti", "ioctl"},
    {"ioctl_tiocsti_highbits", "ioctl"},
    {"ioctl_tiocsti_fdm1", "ioctl"},
    {"ioctl_tioclinux", "ioctl"},
};
const ProbeRow kB14Int80[] = {{"int80_getpid", "", Expect::kSigsys}};
// The policy treats x32 as a foreign architecture (KILL_PROCESS). ENOSYS is not accepted: this
// kernel answers ENOSYS to x32 calls by itself, so it would not prove anything about the filter.
const ProbeRow kB14X32[] = {{"x32_getpid", "", Expect::kSigsys}};
const ProbeRow kB15IoUring[] = {
    {"io_uring_setup", "io_uring_setup"},
    {"io_uring_enter", "io_uring_enter"},
    {"io_uring_register", "io_uring_register"},
};
const ProbeRow kB16BpfUserfaultfdPerf[] = {
    {"bpf", "bpf", Expect::kPolicyErrno, true},
    {"userfaultfd", "userfaultfd"},
    {"perf_event_open", "perf_event_open"},
};
const ProbeRow kB17Keyrings[] = {
    {"keyctl", "keyctl"},
    {"add_key", "add_key"},
    {"request_key", "request_key"},
};
const ProbeRow kB18PrivilegedSyscalls[] = {
    {"kexec_load", "kexec_load"},
    {"kexec_file_load", "kexec_file_load"},
    {"init_module", "init_module"},
    {"finit_module", "finit_module"},
    {"delete_module", "delete_module"},
    {"create_module", "create_module"},
    {"reboot", "reboot", Expect::kPolicyErrno, true},
    {"swapon", "swapon", Expect::kPolicyErrno, true},
    {"swapoff", "swapoff", Expect::kPolicyErrno, true},
    {"acct", "acct", Expect::kPolicyErrno, true},
    {"syslog", "syslog", Expect::kPolicyErrno, true},
    {"settimeofday", "settimeofday"},
    {"clock_settime", "clock_settime"},
    {"adjtimex", "adjtimex"},
    {"clock_adjtime", "clock_adjtime"},
    {"open_by_handle_at", "open_by_handle_at"},
    {"name_to_handle_at", "name_to_handle_at"},
    {"quotactl", "quotactl"},
    {"quotactl_fd", "quotactl_fd"},
    {"lookup_dcookie", "lookup_dcookie"},
    {"nfsservctl", "nfsservctl"},
    {"uselib", "uselib"},
    {"_sysctl", "_sysctl"},
    {"get_kernel_syms", "get_kernel_syms"},
    {"query_module", "query_module"},
    {"vhangup", "vhangup", Expect::kPolicyErrno, true},
    {"iopl", "iopl"},
    {"ioperm", "ioperm"},
    {"fanotify_init", "fanotify_init", Expect::kPolicyErrno, true},
    {"sethostname", "sethostname", Expect::kPolicyErrno, true},
    {"setdomainname", "setdomainname", Expect::kPolicyErrno, true},
    {"personality_linux32", "personality"},
    {"personality_read_implies_exec", "personality"},
    {"mknod_chr", "mknod"},
    {"mknod_blk", "mknod"},
    {"mknodat_chr", "mknodat"},
};
const ProbeRow kB19SocketFamilies[] = {
    {"socket_packet", "socket"},
    {"socket_vsock", "socket"},
    {"socket_alg", "socket"},
    {"socket_netlink_audit", "socket"},
    {"socket_key", "socket"},
    {"socket_highbits", "socket"},
    {"socket_packet_highbits", "socket"},
    {"socketpair_vsock", "socketpair"},
    {"socketpair_highbits", "socketpair"},
};

// Issue 15: Docker's default profile blocks these (security-tests/data/docker-default-blocked.txt)
// and the policy used to allow them; catalog B73-B93 (docs/threat-model.md), one row each.
const ProbeRow kB73DockerBlockedSet[] = {
    {"modify_ldt", "modify_ldt"},                            // B73
    {"mbind", "mbind"},                                      // B74
    {"set_mempolicy", "set_mempolicy"},                      // B75
    {"get_mempolicy", "get_mempolicy"},                      // B76
    {"migrate_pages", "migrate_pages"},                      // B77
    {"move_pages", "move_pages"},                            // B78
    {"set_mempolicy_home_node", "set_mempolicy_home_node"},  // B79
    {"pkey_mprotect", "pkey_mprotect"},                      // B80
    {"pkey_alloc", "pkey_alloc"},                            // B81
    {"pkey_free", "pkey_free"},                              // B82
    {"process_madvise", "process_madvise"},                  // B83
    {"sysfs", "sysfs"},                                      // B84
    {"ustat", "ustat"},                                      // B85
    {"getpmsg", "getpmsg"},                                  // B86
    {"putpmsg", "putpmsg"},                                  // B87
    {"afs_syscall", "afs_syscall"},                          // B88
    {"tuxcall", "tuxcall"},                                  // B89
    {"security", "security"},                                // B90
    {"vserver", "vserver"},                                  // B91
    {"unshare_files", "unshare"},                            // B92
    {"cachestat", "", Expect::kUnreviewed},  // B93: numbers above kHighestReviewedSyscall
    {"fchmodat2", "", Expect::kUnreviewed},
    {"mseal", "", Expect::kUnreviewed},
};

class SandboxProbeTest : public ::testing::TestWithParam<ProbeRow> {
 protected:
  void SetUp() override { RequireRoot(); }
};

TEST_P(SandboxProbeTest, Blocked) {
  const ProbeRow& row = GetParam();
  if (std::string(row.probe_case) == "int80_getpid" && !testing::KernelRunsI386SystemCalls()) {
    GTEST_SKIP() << "this kernel runs no i386 system calls (int $0x80 is a SIGSEGV without any "
                    "filter): there is nothing for the filter to kill";
  }
  CommandResult run = RunProbeInSandbox({row.probe_case});
  nlohmann::json result;
  ASSERT_NO_THROW(result = run.Json())
      << "stdout: " << run.stdout_text << "\nstderr: " << run.stderr_text;
  std::string out = result.value("stdout", "");
  ProbeOutcome outcome = ParseProbe(out, row.probe_case);
  ASSERT_TRUE(outcome.reached) << "the attack never ran; result: " << result.dump();

  if (row.expect == Expect::kSigsys) {
    EXPECT_EQ(result["signal"], kSigsys)
        << row.probe_case << " was not killed by SIGSYS; probe said " << Describe(outcome)
        << "; result: " << result.dump();
    EXPECT_FALSE(outcome.ok || outcome.err) << "the call returned: " << Describe(outcome);
    return;
  }
  std::optional<int> expected = row.expect == Expect::kUnreviewed ? std::optional<int>(ENOSYS)
                                                                  : PolicyErrno(row.policy_syscall);
  ASSERT_TRUE(expected) << row.policy_syscall << " is no longer in DeniedSyscalls()";
  ASSERT_TRUE(outcome.err) << row.probe_case << " was not blocked: " << Describe(outcome)
                           << "; result: " << result.dump();
  EXPECT_EQ(*outcome.err, *expected)
      << row.probe_case << ": got " << ErrnoName(*outcome.err) << ", policy says "
      << ErrnoName(*expected) << " (EBADF/EFAULT/EINVAL/ESRCH/ENOTTY mean the kernel ran it)"
      << (row.kernel_eperm_without_caps ? "; note: the kernel alone says EPERM to this caller"
                                        : "");
  EXPECT_TRUE(result["signal"].is_null()) << result.dump();
}

INSTANTIATE_TEST_SUITE_P(A04_nested_userns, SandboxProbeTest, ::testing::ValuesIn(kA04NestedUserns),
                         RowName);
INSTANTIATE_TEST_SUITE_P(A05_setns, SandboxProbeTest, ::testing::ValuesIn(kA05Setns), RowName);
INSTANTIATE_TEST_SUITE_P(A06_mount_layout, SandboxProbeTest, ::testing::ValuesIn(kA06MountLayout),
                         RowName);
INSTANTIATE_TEST_SUITE_P(A07_chroot, SandboxProbeTest, ::testing::ValuesIn(kA07Chroot), RowName);
INSTANTIATE_TEST_SUITE_P(A08_ptrace_and_process_vm, SandboxProbeTest,
                         ::testing::ValuesIn(kA08Ptrace), RowName);
INSTANTIATE_TEST_SUITE_P(B13_tiocsti, SandboxProbeTest, ::testing::ValuesIn(kB13Tiocsti), RowName);
INSTANTIATE_TEST_SUITE_P(B14_int80_i386, SandboxProbeTest, ::testing::ValuesIn(kB14Int80), RowName);
INSTANTIATE_TEST_SUITE_P(B14_x32, SandboxProbeTest, ::testing::ValuesIn(kB14X32), RowName);
INSTANTIATE_TEST_SUITE_P(B15_io_uring, SandboxProbeTest, ::testing::ValuesIn(kB15IoUring), RowName);
INSTANTIATE_TEST_SUITE_P(B16_bpf_userfaultfd_perf, SandboxProbeTest,
                         ::testing::ValuesIn(kB16BpfUserfaultfdPerf), RowName);
INSTANTIATE_TEST_SUITE_P(B17_keyrings, SandboxProbeTest, ::testing::ValuesIn(kB17Keyrings),
                         RowName);
INSTANTIATE_TEST_SUITE_P(B18_privileged_syscalls, SandboxProbeTest,
                         ::testing::ValuesIn(kB18PrivilegedSyscalls), RowName);
INSTANTIATE_TEST_SUITE_P(B19_socket_families, SandboxProbeTest,
                         ::testing::ValuesIn(kB19SocketFamilies), RowName);
INSTANTIATE_TEST_SUITE_P(B73_docker_blocked_set, SandboxProbeTest,
                         ::testing::ValuesIn(kB73DockerBlockedSet), RowName);

// Defence off: the same cases in the same sandbox with only the seccomp step skipped (the
// test-hooks binary, PACKVISOR_TEST_SKIP_STEP=seccomp with the verification that would catch it
// switched off). Each call now reaches the kernel and gets a different answer than the
// policy's (EINVAL/EFAULT/ESRCH/EBADF, ENOSYS for never-implemented numbers, or success), so
// the rows above can fail and their errno is the filter's, not the kernel's.
TEST(B73_docker_blocked_set, B73_defence_off_every_case_reaches_the_kernel) {
  RequireRoot();
  std::vector<const ProbeRow*> rows;
  for (const ProbeRow& row : kB73DockerBlockedSet) rows.push_back(&row);
  // Last: PTRACE_TRACEME makes init the probe's tracer for the rest of its life.
  const ProbeRow kReadImpliesExec = {"personality_read_implies_exec", "personality"};
  const ProbeRow kTraceme = {"ptrace_traceme", "ptrace"};
  rows.push_back(&kReadImpliesExec);
  rows.push_back(&kTraceme);
  std::vector<std::string> cases;
  for (const ProbeRow* row : rows) cases.push_back(row->probe_case);
  ProbePack pack;
  std::vector<std::string> args = {"exec", "--pack-dir", pack.path(), "--timeout",
                                   "10",   "--json",     "--",        "/pack/probe"};
  args.insert(args.end(), cases.begin(), cases.end());
  probe_suite::Outcome run =
      probe_suite::RunBinary(PACKVISOR_TEST_HOOKS_BINARY, args,
                             {"PACKVISOR_TEST_SKIP_STEP=seccomp", "PACKVISOR_TEST_SKIP_VERIFY=1"});
  ASSERT_FALSE(run.timed_out) << run.err;
  nlohmann::json result = run.Json();
  ASSERT_EQ(result.value("status", ""), "succeeded") << run.out << run.err;
  std::string out = result.value("stdout", "");
  for (const ProbeRow* row : rows) {
    ProbeOutcome outcome = ParseProbe(out, row->probe_case);
    ASSERT_TRUE(outcome.reached) << row->probe_case << ": " << out;
    ASSERT_TRUE(outcome.ok || outcome.err) << row->probe_case << ": " << out;
    int policy =
        row->expect == Expect::kUnreviewed ? ENOSYS : PolicyErrno(row->policy_syscall).value_or(0);
    EXPECT_TRUE(outcome.ok || *outcome.err != policy)
        << row->probe_case << " gives the policy's " << ErrnoName(policy)
        << " without the filter too: its sandbox row would prove nothing";
  }
  // The calls that succeed without the filter: the denial is what stops them.
  for (const char* name : {"unshare_files", "personality_read_implies_exec", "ptrace_traceme"}) {
    EXPECT_TRUE(ParseProbe(out, name).ok) << name << ": " << Describe(ParseProbe(out, name));
  }
}

// Every syscall the policy denies (and that exists on this architecture) has a probe row, so a
// new deny-list entry without an attack test fails here.
TEST(B18_privileged_syscalls, EveryDeniedSyscallHasAProbeRow) {
  std::vector<const ProbeRow*> rows;
  auto add = [&](const auto& group) {
    for (const ProbeRow& row : group) rows.push_back(&row);
  };
  add(kA04NestedUserns), add(kA05Setns), add(kA06MountLayout), add(kA07Chroot), add(kA08Ptrace);
  add(kB13Tiocsti), add(kB15IoUring), add(kB16BpfUserfaultfdPerf), add(kB17Keyrings);
  add(kB18PrivilegedSyscalls), add(kB19SocketFamilies), add(kB73DockerBlockedSet);
  for (const auto& denied : sandbox::DeniedSyscalls(sandbox::SeccompOptions{})) {
    // Negative numbers are libseccomp's pseudo-syscalls: the call does not exist natively.
    if (seccomp_syscall_resolve_name(denied.name.c_str()) < 0) continue;
    bool covered = false;
    for (const ProbeRow* row : rows) covered = covered || denied.name == row->policy_syscall;
    EXPECT_TRUE(covered) << "no probe row attacks denied syscall " << denied.name;
  }
}

// An allowed call inside the sandbox still reports "ok": the probe can tell the difference and
// the filter does not simply fail everything.
TEST(A00_probe_sanity, AllowedCallRunsInsideTheSandbox) {
  RequireRoot();
  CommandResult run = RunProbeInSandbox({"personality_query"});
  nlohmann::json result = run.Json();
  ProbeOutcome outcome = ParseProbe(result.value("stdout", ""), "personality_query");
  EXPECT_TRUE(outcome.reached) << result.dump();
  EXPECT_TRUE(outcome.ok) << Describe(outcome);
}

// Several cases in one sandboxed run (the non-fatal ones): all reached, all blocked.
TEST(A00_probe_sanity, SeveralCasesInOneRun) {
  RequireRoot();
  std::vector<std::string> cases = {"keyctl", "bpf", "chroot", "socket_vsock", "ioctl_tiocsti"};
  CommandResult run = RunProbeInSandbox(cases);
  nlohmann::json result = run.Json();
  for (const std::string& name : cases) {
    ProbeOutcome outcome = ParseProbe(result.value("stdout", ""), name);
    EXPECT_TRUE(outcome.reached) << name;
    EXPECT_TRUE(outcome.err && (*outcome.err == EPERM || *outcome.err == EAFNOSUPPORT))
        << name << ": " << Describe(outcome);
  }
}

// --- B13 on a real terminal ----------------------------------------------------------------------

// What a program did with a terminal as its stdin, stdout and stderr.
struct PtyRun {
  int status = -1;  // wait status
  bool timed_out = false;
  std::string output;      // every byte the master read while the program ran
  std::string after;       // bytes the master read in the 500 ms after it exited
  int pending_input = -1;  // bytes still queued as terminal input (typed, or pushed by TIOCSTI)
};

// Runs `argv` in a new session whose controlling terminal is a fresh pty: stdin, stdout and
// stderr are its slave, as for an operator typing `packvisor exec ...` in a shell. Input is
// echoed (ECHO, no ICANON, no signals, no output processing), so every byte pushed into the
// terminal's input shows up on the master, and whatever nobody read stays queued on the slave.
PtyRun RunOnPty(const std::vector<std::string>& argv, int timeout_ms = 20000) {
  PtyRun run;
  unique_fd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master || grantpt(master.get()) != 0 || unlockpt(master.get()) != 0) {
    throw std::runtime_error("posix_openpt");
  }
  char name[128];
  if (ptsname_r(master.get(), name, sizeof(name)) != 0) throw std::runtime_error("ptsname_r");
  // The test keeps a slave open of its own: the terminal then outlives the program, so what it
  // left in the input queue can be counted, and late echoes still reach the master.
  unique_fd slave(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) throw std::runtime_error("open pty slave");
  termios mode{};
  if (tcgetattr(slave.get(), &mode) != 0) throw std::runtime_error("tcgetattr");
  mode.c_iflag = 0;
  mode.c_oflag = 0;
  mode.c_lflag = ECHO;
  mode.c_cc[VMIN] = 1;
  mode.c_cc[VTIME] = 0;
  if (tcsetattr(slave.get(), TCSANOW, &mode) != 0) throw std::runtime_error("tcsetattr");

  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    // A new session, then the first terminal it opens becomes its controlling terminal.
    if (setsid() < 0) _exit(120);
    int tty = open(name, O_RDWR);
    if (tty < 0 || ioctl(tty, TIOCSCTTY, 0) != 0) _exit(121);
    if (dup2(tty, 0) < 0 || dup2(tty, 1) < 0 || dup2(tty, 2) < 0) _exit(122);
    if (tty > 2) close(tty);
    execve(cargv[0], cargv.data(), environ);
    _exit(127);
  }
  if (pid < 0) throw std::runtime_error("fork");

  auto read_for = [&](std::string* sink, int ms, bool until_exit) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (true) {
      if (until_exit && waitpid(pid, &run.status, WNOHANG) == pid) return true;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return false;
      pollfd p = {master.get(), POLLIN, 0};
      int ready = poll(&p, 1, static_cast<int>(std::min<long>(left, until_exit ? 20 : left)));
      if (ready <= 0) continue;
      char buf[4096];
      ssize_t n = read(master.get(), buf, sizeof(buf));
      if (n > 0) sink->append(buf, static_cast<size_t>(n));
    }
  };
  if (!read_for(&run.output, timeout_ms, true)) {
    run.timed_out = true;
    kill(pid, SIGKILL);
    waitpid(pid, &run.status, 0);
  }
  read_for(&run.after, 500, false);
  int queued = -1;
  if (ioctl(slave.get(), FIONREAD, &queued) == 0) run.pending_input = queued;
  return run;
}

// The payload bytes of the probe's tty_* cases (probes/probe.c).
const std::set<char> kInjectedBytes = {'\x01', '\x02', '\x05', '\x06'};

std::string Visible(const std::string& bytes) {
  std::string shown;
  for (unsigned char c : bytes) {
    if (c == '\n' || (c >= 0x20 && c < 0x7f)) {
      shown += static_cast<char>(c);
    } else {
      char hex[8];
      snprintf(hex, sizeof(hex), "\\x%02x", c);
      shown += hex;
    }
  }
  return shown;
}

const std::vector<std::string> kTtyCases = {
    "tty_tiocsti_fd0",          "tty_tiocsti_fd1",
    "tty_tiocsti_fd2",          "tty_tiocsti_highbits_fd0",
    "tty_tiocsti_highbits_fd1", "tty_tiocsti_highbits_fd2",
    "tty_devtty_tiocsti",       "tty_devtty_tiocsti_highbits",
    "tty_tioclinux_fd0",        "tty_tioclinux_fd1",
    "tty_tioclinux_fd2"};

TEST(B13_tiocsti_on_a_terminal, B13_action_cannot_push_input_into_the_operators_terminal) {
  RequireRoot();
  ProbePack pack;
  std::vector<std::string> argv = {testing::PackvisorBinary(),
                                   "exec",
                                   "--pack-dir",
                                   pack.path(),
                                   "--timeout",
                                   "10",
                                   "--json",
                                   "--",
                                   "/pack/probe"};
  argv.insert(argv.end(), kTtyCases.begin(), kTtyCases.end());
  PtyRun run = RunOnPty(argv);
  ASSERT_FALSE(run.timed_out) << Visible(run.output);
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << Visible(run.output);

  // packvisor's own output on the terminal is its --json result line, and nothing else may be
  // on it but its own log lines; the action's output is inside the JSON, escaped.
  nlohmann::json result;
  int json_lines = 0;
  for (const std::string& line : testing::Lines(run.output)) {
    if (line.empty() || line[0] != '{') continue;
    try {
      result = nlohmann::json::parse(line);
      ++json_lines;
    } catch (const std::exception&) {
    }
  }
  ASSERT_EQ(json_lines, 1) << "packvisor's result line not found on the terminal:\n"
                           << Visible(run.output);
  std::string out = result.value("stdout", "");
  for (const std::string& name : kTtyCases) {
    ProbeOutcome outcome = ParseProbe(out, name);
    EXPECT_TRUE(outcome.reached) << name << " never ran: " << result.dump();
    EXPECT_FALSE(outcome.ok) << name << " succeeded";
    EXPECT_TRUE(outcome.err) << name << ": " << Describe(outcome);
    if (name.rfind("tty_devtty", 0) == 0) {
      // No controlling terminal (setsid) and no /dev/tty node: the open itself fails.
      int err = outcome.err.value_or(0);
      EXPECT_TRUE(err == ENOENT || err == ENXIO) << name << ": " << Describe(outcome);
    } else {
      EXPECT_EQ(outcome.err.value_or(0), EPERM)
          << name << " was not stopped by the filter: " << Describe(outcome);
    }
  }
  EXPECT_EQ(out.find("tty_devtty open ok"), std::string::npos) << out;

  // Nothing reached the terminal's input: no echo of a payload byte, during the run or in the
  // 500 ms after it, and nothing left queued for the operator's shell to read.
  for (char c : run.output + run.after) {
    EXPECT_EQ(kInjectedBytes.count(c), 0u) << "an injected byte reached the terminal:\n"
                                           << Visible(run.output + run.after);
  }
  EXPECT_EQ(run.after, "") << "the terminal got bytes after packvisor exited: "
                           << Visible(run.after);
  EXPECT_EQ(run.pending_input, 0) << "bytes are queued as terminal input";
}

// Positive control: the same probe cases, unsandboxed, on the same kind of terminal. As root the
// kernel pushes the payloads (including the high-bits variant), and RunOnPty sees them both as
// echo and as queued input, so the test above can fail.
TEST(B13_tiocsti_on_a_terminal, B13_positive_control_unsandboxed_probe_injects) {
  RequireRoot();
  std::vector<std::string> argv = {PACKVISOR_PROBE_BINARY, "tty_tiocsti_fd0",
                                   "tty_tiocsti_highbits_fd1", "tty_devtty_tiocsti"};
  PtyRun run = RunOnPty(argv);
  ASSERT_FALSE(run.timed_out);
  // The echo of a pushed byte lands in the middle of the probe's own lines.
  std::string said;
  for (char c : run.output) {
    if (kInjectedBytes.count(c) == 0) said += c;
  }
  for (const char* name : {"tty_tiocsti_fd0", "tty_tiocsti_highbits_fd1", "tty_devtty_tiocsti"}) {
    ProbeOutcome outcome = ParseProbe(said, name);
    EXPECT_TRUE(outcome.reached) << name;
    EXPECT_TRUE(outcome.ok) << name << ": " << Describe(outcome) << "\n" << Visible(run.output);
  }
  for (char c : {'\x01', '\x02', '\x05'}) {
    EXPECT_NE(run.output.find(c), std::string::npos) << "payload " << int(c) << " not echoed:\n"
                                                     << Visible(run.output);
  }
  EXPECT_EQ(run.pending_input, 3) << "the three pushed bytes should wait as terminal input";
}

// Positive control: the same probe, outside any sandbox, as root. Only harmless cases (bad
// pointers, bad flags, fd -1, /dev/null stdin); nothing that could change the host.
struct HostRow {
  const char* probe_case;
  const char* policy_syscall;  // "" for the ABI cases
};

std::ostream& operator<<(std::ostream& os, const HostRow& row) { return os << row.probe_case; }

const HostRow kHostRows[] = {
    {"keyctl", "keyctl"},
    {"add_key", "add_key"},
    {"personality_query", "personality"},
    {"socket_netlink_audit", "socket"},
    {"socket_vsock", "socket"},
    {"socket_highbits", "socket"},
    {"socketpair_vsock", "socketpair"},
    {"socketpair_highbits", "socketpair"},
    {"ioctl_tiocsti_fdm1", "ioctl"},
    {"ioctl_tiocsti_highbits", "ioctl"},
    {"setns", "setns"},
    {"chroot", "chroot"},
    {"pivot_root", "pivot_root"},
    {"fsopen", "fsopen"},
    {"fspick", "fspick"},
    {"fsmount", "fsmount"},
    {"move_mount", "move_mount"},
    {"syslog", "syslog"},
    {"bpf", "bpf"},
    {"perf_event_open", "perf_event_open"},
    {"io_uring_setup", "io_uring_setup"},
    {"ptrace", "ptrace"},
    {"mknod_chr", "mknod"},
    {"int80_getpid", ""},
    {"x32_getpid", ""},
};

class UnsandboxedProbeTest : public ::testing::TestWithParam<HostRow> {
 protected:
  void SetUp() override { RequireRoot(); }
};

TEST_P(UnsandboxedProbeTest, KernelRunsTheCall) {
  const HostRow& row = GetParam();
  if (std::string(row.probe_case) == "int80_getpid" && !testing::KernelRunsI386SystemCalls()) {
    GTEST_SKIP() << "this kernel runs no i386 system calls: no positive control possible";
  }
  DirectResult run = RunProbeOnHost({row.probe_case});
  ASSERT_TRUE(WIFEXITED(run.status)) << row.probe_case << " died unsandboxed: " << run.status;
  ProbeOutcome outcome = ParseProbe(run.out, row.probe_case);
  ASSERT_TRUE(outcome.reached) << run.out;
  ASSERT_TRUE(outcome.ok || outcome.err) << run.out;
  if (std::string(row.policy_syscall).empty()) return;  // not killed: that is the control
  std::optional<int> policy = PolicyErrno(row.policy_syscall);
  ASSERT_TRUE(policy);
  if (outcome.err) {
    EXPECT_NE(*outcome.err, *policy)
        << row.probe_case << " gives the policy's errno even without a sandbox, so its sandbox "
        << "row cannot tell a blocked call from a run one";
    EXPECT_TRUE(*outcome.err == EBADF || *outcome.err == EFAULT || *outcome.err == EINVAL ||
                *outcome.err == ESRCH || *outcome.err == ENOTTY || *outcome.err == E2BIG)
        << row.probe_case << ": unexpected kernel answer " << ErrnoName(*outcome.err);
  }
}

std::string HostRowName(const ::testing::TestParamInfo<HostRow>& info) {
  return info.param.probe_case;
}

INSTANTIATE_TEST_SUITE_P(A00_positive_control_unsandboxed, UnsandboxedProbeTest,
                         ::testing::ValuesIn(kHostRows), HostRowName);

// The filter alone, without the capability layer: the compiled policy is loaded into a child that
// keeps all of root's capabilities, so the kernel itself would answer these calls with
// EFAULT/EINVAL/E2BIG/ok (see the control above). Getting the policy's errno here proves that
// the rows marked kernel_eperm_without_caps are blocked by seccomp, not only by missing caps.
// Only calls that are harmless even if the filter let them through (bad pointers or flags).
const char* const kFilterAloneCases[] = {
    "unshare_newns", "pivot_root", "fsopen", "fsmount", "fspick",       "move_mount",
    "bpf",           "syslog",     "chroot", "keyctl",  "socket_vsock", "ioctl_tiocsti_fdm1",
};

DirectResult RunProbeUnderFilterOnly(const std::string& probe_case) {
  auto program = sandbox::CompileSeccompPolicy(sandbox::SeccompOptions{});
  if (!program.ok()) throw std::runtime_error("CompileSeccompPolicy failed");
  sock_fprog fprog = program->AsFprog();
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
  unique_fd out_r(out[0]), out_w(out[1]);
  std::string path = PACKVISOR_PROBE_BINARY;
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_w.get(), 1) < 0) _exit(120);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(121);
    if (sandbox::LoadSeccompProgram(fprog) != 0) _exit(122);
    execl(path.c_str(), path.c_str(), probe_case.c_str(), static_cast<char*>(nullptr));
    _exit(123);
  }
  if (pid < 0) throw std::runtime_error("fork");
  out_w.reset();
  DirectResult result;
  char buf[4096];
  ssize_t n;
  while ((n = read(out_r.get(), buf, sizeof(buf))) > 0) result.out.append(buf, size_t(n));
  waitpid(pid, &result.status, 0);
  return result;
}

class FilterAloneProbeTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { RequireRoot(); }
};

TEST_P(FilterAloneProbeTest, PolicyErrnoEvenWithAllCapabilities) {
  const std::string probe_case = GetParam();
  std::string syscall_name = probe_case;
  for (const char* family : {"unshare", "socket", "ioctl"}) {
    if (probe_case.rfind(family, 0) == 0) syscall_name = family;
  }
  std::optional<int> policy = PolicyErrno(syscall_name);
  ASSERT_TRUE(policy) << syscall_name;
  DirectResult run = RunProbeUnderFilterOnly(probe_case);
  ASSERT_TRUE(WIFEXITED(run.status)) << "status " << run.status << ": " << run.out;
  ASSERT_EQ(WEXITSTATUS(run.status), 0) << "could not set up the filter-only child: " << run.out;
  ProbeOutcome outcome = ParseProbe(run.out, probe_case);
  ASSERT_TRUE(outcome.reached) << run.out;
  ASSERT_TRUE(outcome.err) << probe_case << " ran under the filter: " << Describe(outcome);
  EXPECT_EQ(*outcome.err, *policy) << probe_case << ": got " << ErrnoName(*outcome.err);
}

INSTANTIATE_TEST_SUITE_P(A00_filter_alone_as_root, FilterAloneProbeTest,
                         ::testing::ValuesIn(kFilterAloneCases),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

}  // namespace
}  // namespace packvisor
