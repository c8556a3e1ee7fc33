// Loads the real seccomp policy into forked children and checks what each system call returns.
//
// Safety and discrimination: most denied calls would do something drastic if they ever ran (the
// tests may run as root). Each probe therefore first installs a tiny "guard" filter that fails the
// probed syscall number with kAllowedByPolicy, then the policy on top of it. When several filters
// return SECCOMP_RET_ERRNO the most recently installed one wins, so the probe sees:
//   - the policy's errno when the policy denies the call, and
//   - kAllowedByPolicy when the policy lets it through (the guard then stops it).
// The call itself never reaches the kernel's implementation, and a denial can never be confused
// with the kernel refusing the (deliberately invalid) arguments.
#include "sandbox/seccomp_policy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/host_abi.h"

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

namespace packvisor::sandbox {
namespace {

// What a probe returns when the policy allows the call (see the file comment).
constexpr int kAllowedByPolicy = 4000;
// Reported instead of an errno when the child could not set itself up.
constexpr int kSetupBroken = 4001;

using Args = std::array<uint64_t, 6>;
constexpr uint64_t kMinusOne = ~uint64_t{0};
// Harmless invalid arguments: fd -1, pointer 1 (never mapped), flags all ones.
constexpr Args kInvalidArgs = {kMinusOne, 1, kMinusOne, 1, kMinusOne, 0};

const SeccompProgram& Policy(bool allow_io_uring = false) {
  static const SeccompProgram* programs[2] = {nullptr, nullptr};
  const SeccompProgram*& program = programs[allow_io_uring ? 1 : 0];
  if (program == nullptr) {
    auto compiled = CompileSeccompPolicy(SeccompOptions{.allow_io_uring = allow_io_uring});
    if (!compiled.ok()) {
      ADD_FAILURE() << "CompileSeccompPolicy: " << compiled.error().message();
      static const SeccompProgram kEmpty;
      return kEmpty;
    }
    program = new SeccompProgram(std::move(*compiled));
  }
  return *program;
}

struct ProbeResult {
  bool exited = false;  // the child exited normally (not killed by a signal)
  int signal = 0;       // the signal that killed it otherwise
  long ret = 0;
  int err = 0;  // errno when ret < 0, else 0
};

// Forks; the child sets NO_NEW_PRIVS, optionally the guard for `guard_nr`, optionally the
// policy, then runs `call` and reports its return value and errno through a pipe.
ProbeResult Probe(const SeccompProgram* policy, long guard_nr, const std::function<long()>& call) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return {};
  }
  pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return {};
  }
  if (pid == 0) {
    close(fds[0]);
    long report[2] = {-1, kSetupBroken};
    setsid();  // no controlling terminal for anything the probe might touch
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
      (void)!write(fds[1], report, sizeof(report));
      _exit(1);
    }
    if (guard_nr >= 0) {
      sock_filter guard[] = {
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(guard_nr), 0, 1),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | kAllowedByPolicy),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      };
      sock_fprog program{static_cast<unsigned short>(sizeof(guard) / sizeof(guard[0])), guard};
      if (LoadSeccompProgram(program) != 0) {
        (void)!write(fds[1], report, sizeof(report));
        _exit(1);
      }
    }
    if (policy != nullptr && LoadSeccompProgram(policy->AsFprog()) != 0) {
      (void)!write(fds[1], report, sizeof(report));
      _exit(1);
    }
    errno = 0;
    long ret = call();
    report[0] = ret;
    report[1] = ret < 0 ? errno : 0;
    (void)!write(fds[1], report, sizeof(report));
    _exit(0);
  }
  close(fds[1]);
  long report[2] = {0, kSetupBroken};
  ssize_t n = read(fds[0], report, sizeof(report));
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ProbeResult result;
  result.exited = WIFEXITED(status);
  result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  if (n == static_cast<ssize_t>(sizeof(report))) {
    result.ret = report[0];
    result.err = static_cast<int>(report[1]);
  } else {
    result.ret = 0;
    result.err = kSetupBroken;
  }
  return result;
}

// The errno the policy gives `nr(args)`: the policy's own errno, or kAllowedByPolicy.
int PolicyErrno(long nr, const Args& a, const SeccompProgram& policy = Policy()) {
  ProbeResult result =
      Probe(&policy, nr, [&] { return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]); });
  EXPECT_TRUE(result.exited) << "probe of syscall " << nr << " killed by signal " << result.signal;
  EXPECT_NE(result.err, kSetupBroken) << "probe of syscall " << nr << " could not be set up";
  return result.err;
}

long SyscallNumber(const std::string& name) { return seccomp_syscall_resolve_name(name.c_str()); }

std::string ErrnoName(int err) {
  if (err == kAllowedByPolicy) return "allowed by the policy";
  if (err == 0) return "success";
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : std::to_string(err);
}

// ---- Compilation and the deny list. ----

TEST(CompileSeccompPolicy, ProducesANonEmptyProgramWithinTheKernelLimit) {
  auto program = CompileSeccompPolicy(SeccompOptions{});
  ASSERT_TRUE(program.ok()) << program.error().message();
  EXPECT_GT(program->instructions.size(), 10u);
  EXPECT_LE(program->instructions.size(), static_cast<size_t>(BPF_MAXINSNS));
  sock_fprog fprog = program->AsFprog();
  EXPECT_EQ(fprog.len, program->instructions.size());
  EXPECT_EQ(fprog.filter, program->instructions.data());
}

TEST(CompileSeccompPolicy, IoUringOptInChangesTheProgram) {
  auto strict = CompileSeccompPolicy(SeccompOptions{});
  auto relaxed = CompileSeccompPolicy(SeccompOptions{.allow_io_uring = true});
  ASSERT_TRUE(strict.ok());
  ASSERT_TRUE(relaxed.ok());
  EXPECT_LT(relaxed->instructions.size(), strict->instructions.size());
}

TEST(DeniedSyscalls, CoversEveryCallTheSpecNames) {
  std::set<std::string> denied;
  for (const DeniedSyscall& d : DeniedSyscalls(SeccompOptions{})) denied.insert(d.name);
  // SPEC §6, "seccomp".
  for (const char* name : {"mount",
                           "umount2",
                           "pivot_root",
                           "chroot",
                           "unshare",
                           "setns",
                           "clone",
                           "keyctl",
                           "add_key",
                           "request_key",
                           "bpf",
                           "perf_event_open",
                           "ptrace",
                           "process_vm_readv",
                           "process_vm_writev",
                           "kexec_load",
                           "kexec_file_load",
                           "init_module",
                           "finit_module",
                           "delete_module",
                           "reboot",
                           "swapon",
                           "swapoff",
                           "acct",
                           "userfaultfd",
                           "open_by_handle_at",
                           "name_to_handle_at",
                           "ioctl",
                           "syslog",
                           "settimeofday",
                           "clock_settime",
                           "adjtimex",
                           "personality",
                           "io_uring_setup",
                           "io_uring_enter",
                           "io_uring_register"}) {
    EXPECT_TRUE(denied.count(name)) << name << " is not in the deny list";
  }
}

TEST(DeniedSyscalls, DeniedCallsFailWithEpermExceptClone3AndSocketFamilies) {
  for (const DeniedSyscall& d : DeniedSyscalls(SeccompOptions{})) {
    if (d.name == "clone3") {
      EXPECT_EQ(d.err, ENOSYS);
    } else if (d.name == "socket" || d.name == "socketpair") {
      EXPECT_EQ(d.err, EAFNOSUPPORT) << d.name;
    } else {
      EXPECT_EQ(d.err, EPERM) << d.name;
    }
  }
}

TEST(DeniedSyscalls, IoUringOptInRemovesOnlyIoUring) {
  auto strict = DeniedSyscalls(SeccompOptions{});
  auto relaxed = DeniedSyscalls(SeccompOptions{.allow_io_uring = true});
  std::set<std::string> strict_names, relaxed_names;
  for (const auto& d : strict) strict_names.insert(d.name);
  for (const auto& d : relaxed) relaxed_names.insert(d.name);
  for (const char* name : {"io_uring_setup", "io_uring_enter", "io_uring_register"}) {
    EXPECT_TRUE(strict_names.count(name)) << name;
    EXPECT_FALSE(relaxed_names.count(name)) << name;
    strict_names.erase(name);
  }
  EXPECT_EQ(strict_names, relaxed_names);
}

// ---- The guard itself (so that "allowed" results mean what they say). ----

TEST(SeccompProbe, GuardAloneReportsTheAllowedSentinel) {
  ProbeResult result = Probe(nullptr, SYS_getppid, [] { return syscall(SYS_getppid); });
  EXPECT_TRUE(result.exited);
  EXPECT_EQ(result.err, kAllowedByPolicy);
}

TEST(SeccompProbe, PolicyDenialWinsOverTheGuard) {
  EXPECT_EQ(PolicyErrno(SYS_acct, kInvalidArgs), EPERM);
}

// ---- Every unconditional entry of the deny list that exists on this architecture, one test
// each (entries such as vm86 are in the list for other architectures only). ----

std::vector<DeniedSyscall> UnconditionalDenials() {
  std::vector<DeniedSyscall> result;
  for (const DeniedSyscall& d : DeniedSyscalls(SeccompOptions{})) {
    if (!d.conditional && SyscallNumber(d.name) >= 0) result.push_back(d);
  }
  return result;
}

class UnconditionallyDenied : public ::testing::TestWithParam<DeniedSyscall> {};

TEST_P(UnconditionallyDenied, FailsWithThePolicyErrno) {
  const DeniedSyscall& denied = GetParam();
  long nr = SyscallNumber(denied.name);
  ASSERT_GE(nr, 0) << denied.name;
  int err = PolicyErrno(nr, kInvalidArgs);
  EXPECT_EQ(err, denied.err) << denied.name << ": got " << ErrnoName(err) << ", expected "
                             << ErrnoName(denied.err);
}

INSTANTIATE_TEST_SUITE_P(DenyList, UnconditionallyDenied,
                         ::testing::ValuesIn(UnconditionalDenials()),
                         [](const ::testing::TestParamInfo<DeniedSyscall>& info) {
                           std::string name;
                           for (char c : info.param.name) name += std::isalnum(c) ? c : '_';
                           return "sys" + name;
                         });

TEST(UnconditionallyDeniedList, IsNotEmptyAndIncludesClone3) {
  auto list = UnconditionalDenials();
  EXPECT_GT(list.size(), 30u);
  EXPECT_TRUE(std::any_of(list.begin(), list.end(),
                          [](const DeniedSyscall& d) { return d.name == "clone3"; }));
}

TEST(IoUringOptIn, AllowsIoUringSetup) {
  long nr = SyscallNumber("io_uring_setup");
  ASSERT_GE(nr, 0);
  EXPECT_EQ(PolicyErrno(nr, kInvalidArgs), EPERM);
  EXPECT_EQ(PolicyErrno(nr, kInvalidArgs, Policy(/*allow_io_uring=*/true)), kAllowedByPolicy);
}

// ---- Conditional entries: namespaces. ----

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS,
                                        CLONE_NEWIPC, CLONE_NEWUSER,   CLONE_NEWPID,
                                        CLONE_NEWNET, CLONE_NEWTIME};

TEST(ConditionalDenials, UnshareNewUserIsDenied) {
  EXPECT_EQ(PolicyErrno(SYS_unshare, {CLONE_NEWUSER, 0, 0, 0, 0, 0}), EPERM);
}

TEST(ConditionalDenials, UnshareWithAnyNamespaceFlagIsDenied) {
  for (uint64_t flag : kNamespaceFlags) {
    EXPECT_EQ(PolicyErrno(SYS_unshare, {flag, 0, 0, 0, 0, 0}), EPERM) << std::hex << flag;
    // Mixed with harmless flags and high garbage bits.
    EXPECT_EQ(PolicyErrno(SYS_unshare, {flag | CLONE_FILES | (uint64_t{1} << 40), 0, 0, 0, 0, 0}),
              EPERM)
        << std::hex << flag;
  }
}

// Docker's default profile blocks unshare whatever its flags; so does the policy (issue 15).
TEST(ConditionalDenials, UnshareWithoutNamespaceFlagsIsDeniedToo) {
  EXPECT_EQ(PolicyErrno(SYS_unshare, {CLONE_FILES | CLONE_FS, 0, 0, 0, 0, 0}), EPERM);
  EXPECT_EQ(PolicyErrno(SYS_unshare, {0, 0, 0, 0, 0, 0}), EPERM);
}

TEST(ConditionalDenials, CloneNewUserIsDenied) {
  EXPECT_EQ(PolicyErrno(SYS_clone, {CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0}), EPERM);
}

TEST(ConditionalDenials, CloneWithAnyNamespaceFlagIsDenied) {
  for (uint64_t flag : kNamespaceFlags) {
    if (flag == CLONE_NEWTIME) continue;  // overlaps CSIGNAL for clone; not a clone flag
    EXPECT_EQ(PolicyErrno(SYS_clone, {flag | SIGCHLD, 0, 0, 0, 0, 0}), EPERM) << std::hex << flag;
  }
}

TEST(ConditionalDenials, PlainCloneAsUsedByForkIsAllowed) {
  EXPECT_EQ(PolicyErrno(SYS_clone, {SIGCHLD, 0, 0, 0, 0, 0}), kAllowedByPolicy);
  uint64_t thread_flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                          CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
  EXPECT_EQ(PolicyErrno(SYS_clone, {thread_flags, 0, 0, 0, 0, 0}), kAllowedByPolicy);
}

TEST(ConditionalDenials, Clone3FailsWithEnosysSoLibcFallsBackToClone) {
  EXPECT_EQ(PolicyErrno(SYS_clone3, {1, 88, 0, 0, 0, 0}), ENOSYS);
}

// ---- ioctl. ----

TEST(ConditionalDenials, TiocstiIsDeniedEvenWithHighBitsSet) {
  EXPECT_EQ(PolicyErrno(SYS_ioctl, {0, TIOCSTI, 1, 0, 0, 0}), EPERM);
  // The kernel compares the request as 32 bits (CVE-2019-10063).
  EXPECT_EQ(PolicyErrno(SYS_ioctl, {0, TIOCSTI | (uint64_t{1} << 32), 1, 0, 0, 0}), EPERM);
  EXPECT_EQ(PolicyErrno(SYS_ioctl, {0, TIOCSTI | (uint64_t{0xdeadbeef} << 32), 1, 0, 0, 0}), EPERM);
}

TEST(ConditionalDenials, TioclinuxIsDenied) {
  EXPECT_EQ(PolicyErrno(SYS_ioctl, {0, TIOCLINUX, 1, 0, 0, 0}), EPERM);
  EXPECT_EQ(PolicyErrno(SYS_ioctl, {0, TIOCLINUX | (uint64_t{1} << 32), 1, 0, 0, 0}), EPERM);
}

TEST(ConditionalDenials, OtherIoctlsAreAllowed) {
  for (uint64_t request :
       {uint64_t{FIONREAD}, uint64_t{TCGETS}, uint64_t{TIOCGWINSZ}, uint64_t{FIOCLEX}}) {
    EXPECT_EQ(PolicyErrno(SYS_ioctl, {kMinusOne, request, 1, 0, 0, 0}), kAllowedByPolicy)
        << std::hex << request;
  }
}

// ---- personality. ----

TEST(ConditionalDenials, PersonalityQueryIsAllowedAndChangesAreDenied) {
  EXPECT_EQ(PolicyErrno(SYS_personality, {0xffffffff, 0, 0, 0, 0, 0}), kAllowedByPolicy);
  for (uint64_t persona : {uint64_t{PER_LINUX}, uint64_t{ADDR_NO_RANDOMIZE},
                           uint64_t{READ_IMPLIES_EXEC}, uint64_t{PER_LINUX32}}) {
    EXPECT_EQ(PolicyErrno(SYS_personality, {persona, 0, 0, 0, 0, 0}), EPERM) << persona;
  }
}

// ---- Device nodes. ----

TEST(ConditionalDenials, MknodOfACharOrBlockDeviceIsDenied) {
#ifdef SYS_mknod
  EXPECT_EQ(PolicyErrno(SYS_mknod, {1, S_IFCHR | 0600, makedev(1, 3), 0, 0, 0}), EPERM);
  EXPECT_EQ(PolicyErrno(SYS_mknod, {1, S_IFBLK | 0600, makedev(8, 0), 0, 0, 0}), EPERM);
#endif
  EXPECT_EQ(PolicyErrno(SYS_mknodat, {kMinusOne, 1, S_IFCHR | 0600, makedev(1, 3), 0, 0}), EPERM);
  EXPECT_EQ(PolicyErrno(SYS_mknodat, {kMinusOne, 1, S_IFBLK | 0600, makedev(8, 0), 0, 0}), EPERM);
}

TEST(ConditionalDenials, MknodOfFifosAndRegularFilesIsAllowed) {
#ifdef SYS_mknod
  EXPECT_EQ(PolicyErrno(SYS_mknod, {1, S_IFIFO | 0600, 0, 0, 0, 0}), kAllowedByPolicy);
  EXPECT_EQ(PolicyErrno(SYS_mknod, {1, S_IFREG | 0600, 0, 0, 0, 0}), kAllowedByPolicy);
#endif
  EXPECT_EQ(PolicyErrno(SYS_mknodat, {kMinusOne, 1, S_IFIFO | 0600, 0, 0, 0}), kAllowedByPolicy);
}

// ---- Socket families. ----

TEST(ConditionalDenials, PacketSocketsAreDenied) {
  EXPECT_EQ(PolicyErrno(SYS_socket, {AF_PACKET, SOCK_RAW, 0, 0, 0, 0}), EAFNOSUPPORT);
  // High garbage bits must not smuggle AF_PACKET past the filter (the kernel truncates to int).
  EXPECT_EQ(PolicyErrno(SYS_socket, {(uint64_t{1} << 32) | AF_PACKET, SOCK_RAW, 0, 0, 0, 0}),
            EAFNOSUPPORT);
}

TEST(ConditionalDenials, NetlinkIsAllowedOnlyForRoute) {
  EXPECT_EQ(PolicyErrno(SYS_socket, {AF_NETLINK, SOCK_RAW, NETLINK_AUDIT, 0, 0, 0}), EAFNOSUPPORT);
  EXPECT_EQ(PolicyErrno(SYS_socket, {AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT, 0, 0, 0}),
            EAFNOSUPPORT);
  EXPECT_EQ(PolicyErrno(SYS_socket, {AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, 0, 0, 0}),
            kAllowedByPolicy);
}

TEST(ConditionalDenials, EverySocketFamilyButTheAllowedOnesIsDenied) {
  std::vector<int> allowed = AllowedSocketFamilies();
  for (int family = 0; family <= AF_MAX + 1; ++family) {
    bool ok = std::find(allowed.begin(), allowed.end(), family) != allowed.end();
    int expected = ok ? kAllowedByPolicy : EAFNOSUPPORT;
    EXPECT_EQ(PolicyErrno(SYS_socket, {uint64_t(family), SOCK_STREAM, 0, 0, 0, 0}), expected)
        << "socket family " << family;
    EXPECT_EQ(PolicyErrno(SYS_socketpair, {uint64_t(family), SOCK_STREAM, 0, 1, 0, 0}), expected)
        << "socketpair family " << family;
  }
}

TEST(AllowedSocketFamilies, AreUnixInetInet6AndNetlink) {
  std::vector<int> allowed = AllowedSocketFamilies();
  std::sort(allowed.begin(), allowed.end());
  std::vector<int> expected = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(allowed, expected);
}

// ---- Allowed calls really work under the policy (no guard: they execute). ----

TEST(AllowedUnderPolicy, GetpidReturnsThePid) {
  ProbeResult result = Probe(
      &Policy(), -1, [] { return syscall(SYS_getpid) == getpid() && getpid() > 0 ? 1L : -1L; });
  EXPECT_TRUE(result.exited);
  EXPECT_EQ(result.ret, 1) << ErrnoName(result.err);
}

TEST(AllowedUnderPolicy, ForkWorksAndTheChildIsReaped) {
  ProbeResult result = Probe(&Policy(), -1, []() -> long {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(42);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
  });
  EXPECT_TRUE(result.exited);
  EXPECT_EQ(result.ret, 42) << ErrnoName(result.err);
}

TEST(AllowedUnderPolicy, ThreadsCanBeCreatedDespiteClone3Enosys) {
  ProbeResult result = Probe(&Policy(), -1, []() -> long {
    long value = 0;
    try {
      std::thread thread([&] { value = 7; });
      thread.join();
    } catch (...) {
      return -1;
    }
    return value;
  });
  EXPECT_TRUE(result.exited);
  EXPECT_EQ(result.ret, 7) << ErrnoName(result.err);
}

TEST(AllowedUnderPolicy, UnixInetAndRouteNetlinkSocketsCanBeCreated) {
  for (auto [family_value, type_value, protocol_value] :
       std::vector<std::array<int, 3>>{{AF_UNIX, SOCK_STREAM, 0},
                                       {AF_INET, SOCK_DGRAM, 0},
                                       {AF_INET6, SOCK_DGRAM, 0},
                                       {AF_NETLINK, SOCK_RAW, NETLINK_ROUTE}}) {
    // Copies: clang 14 (the sanitizer build) refuses structured bindings captured by a lambda.
    int family = family_value, type = type_value, protocol = protocol_value;
    ProbeResult result = Probe(&Policy(), -1, [&] {
      return static_cast<long>(socket(family, type | SOCK_CLOEXEC, protocol));
    });
    EXPECT_TRUE(result.exited);
    if (result.err == EAFNOSUPPORT && family == AF_INET6) continue;  // host without IPv6
    EXPECT_GE(result.ret, 0) << "family " << family << ": " << ErrnoName(result.err);
  }
}

TEST(AllowedUnderPolicy, FionreadOnAPipeWorks) {
  ProbeResult result = Probe(&Policy(), -1, []() -> long {
    int p[2];
    if (pipe(p) != 0) return -1;
    if (write(p[1], "abc", 3) != 3) return -1;
    int available = 0;
    if (ioctl(p[0], FIONREAD, &available) != 0) return -1;
    return available;
  });
  EXPECT_TRUE(result.exited);
  EXPECT_EQ(result.ret, 3) << ErrnoName(result.err);
}

TEST(AllowedUnderPolicy, PersonalityQueryWorksAndChangeFails) {
  ProbeResult query = Probe(&Policy(), -1, [] { return syscall(SYS_personality, 0xffffffffUL); });
  EXPECT_TRUE(query.exited);
  EXPECT_GE(query.ret, 0) << ErrnoName(query.err);
  ProbeResult change =
      Probe(&Policy(), -1, [] { return syscall(SYS_personality, ADDR_NO_RANDOMIZE); });
  EXPECT_EQ(change.err, EPERM);
}

TEST(AllowedUnderPolicy, DeniedCallsReturnAnErrorInsteadOfKilling) {
  ProbeResult result = Probe(&Policy(), -1, [] { return syscall(SYS_unshare, CLONE_NEWUSER); });
  EXPECT_TRUE(result.exited);
  EXPECT_EQ(result.ret, -1);
  EXPECT_EQ(result.err, EPERM);
}

// ---- Foreign ABIs are killed, not filtered. ----

#if defined(__x86_64__)
TEST(ForeignArchitecture, I386SyscallKillsTheProcess) {
  if (!testing::KernelRunsI386SystemCalls()) {
    GTEST_SKIP() << "this kernel runs no i386 system calls (int $0x80 is a SIGSEGV without any "
                    "filter): there is nothing for the filter to kill";
  }
  ProbeResult result = Probe(&Policy(), -1, []() -> long {
    long ret = 20;  // i386 getpid
    asm volatile("int $0x80" : "+a"(ret) : : "memory");
    return ret;
  });
  EXPECT_FALSE(result.exited) << "int 0x80 returned " << result.ret;
  EXPECT_EQ(result.signal, SIGSYS);
}

TEST(ForeignArchitecture, X32SyscallKillsTheProcess) {
  ProbeResult result = Probe(&Policy(), -1, [] {
    return syscall(0x40000000L | SYS_getpid);  // __X32_SYSCALL_BIT
  });
  EXPECT_FALSE(result.exited) << "x32 getpid returned " << result.ret;
  EXPECT_EQ(result.signal, SIGSYS);
}
#endif

}  // namespace
}  // namespace packvisor::sandbox

namespace packvisor::sandbox {
namespace {

TEST(BuiltinSeccompProgram, EqualsAFreshCompilationOfThePolicy) {
  for (int variant : {0, 1, 2}) {
    bool io_uring = variant == 1;
    SeccompOptions options{.allow_io_uring = io_uring,
                           .mode = variant == 2 ? SeccompMode::kAllow : SeccompMode::kDeny};
    auto fresh = CompileSeccompPolicy(options);
    ASSERT_TRUE(fresh.ok()) << fresh.error().message();
    const SeccompProgram& builtin = BuiltinSeccompProgram(options);
    ASSERT_EQ(builtin.instructions.size(), fresh->instructions.size()) << "io_uring=" << io_uring;
    for (size_t i = 0; i < builtin.instructions.size(); ++i) {
      const sock_filter& a = builtin.instructions[i];
      const sock_filter& b = fresh->instructions[i];
      EXPECT_TRUE(a.code == b.code && a.jt == b.jt && a.jf == b.jf && a.k == b.k)
          << "instruction " << i << " differs (io_uring=" << io_uring << ")";
    }
  }
}

}  // namespace
}  // namespace packvisor::sandbox
