#include "sandbox/seccomp_policy.h"

#include <linux/audit.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <iterator>
#include <memory>

#include "sandbox/os/unique_fd.h"

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

#if !defined(__x86_64__)
#error "the seccomp policy's syscall numbers (kHighestReviewedSyscall) are reviewed for x86_64 only"
#endif

namespace packvisor::sandbox {
namespace {

constexpr uint32_t kNativeAuditArch = AUDIT_ARCH_X86_64;

// Calls that are denied whatever their arguments.
constexpr const char* kDeniedAlways[] = {
    // Mount table and root changes (catalog 6, 7).
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "move_mount",
    "mount_setattr",
    // Namespaces (catalog 4, 5): setns and unshare always (Docker's default profile blocks
    // unshare whatever its flags: CLONE_FILES/CLONE_FS/CLONE_SYSVSEM alone buy an action
    // nothing); clone with CLONE_NEW* below.
    "setns",
    "unshare",
    // Kernel keyrings (catalog 17).
    "keyctl",
    "add_key",
    "request_key",
    // Exploit primitives and cross-process access (catalog 8, 16).
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    // Host-wide, privileged and obsolete calls (catalog 18).
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "open_by_handle_at",
    "name_to_handle_at",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "nfsservctl",
    "vhangup",
    "iopl",
    "ioperm",
    "fanotify_init",
    "sethostname",
    "setdomainname",
    "uselib",
    "_sysctl",
    "get_kernel_syms",
    "query_module",
    "vm86",
    "vm86old",
    // Blocked by Docker's default profile and needed by no runtime (catalog B73-B92,
    // docs/threat-model.md "Against Docker's default profile"). LDT editing (amd64 Docker allows
    // it; it has had its own kernel bugs), NUMA placement (host topology and cross-process page
    // moves), memory protection keys, another process's memory advice, obsolete filesystem
    // queries, and numbers that never had an implementation on x86_64.
    "modify_ldt",
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
    "migrate_pages",
    "move_pages",
    "set_mempolicy_home_node",
    "pkey_mprotect",
    "pkey_alloc",
    "pkey_free",
    "process_madvise",
    "sysfs",
    "ustat",
    "getpmsg",
    "putpmsg",
    "afs_syscall",
    "tuxcall",
    "security",
    "vserver",
};
constexpr const char* kIoUring[] = {"io_uring_setup", "io_uring_enter", "io_uring_register"};

// SeccompMode::kAllow. Measured: every call made under the filter by init, the actions and the
// environment builds of the demo (examples/) and the test packs (tests/fixtures/packs), with
// `strace -f -ff --pidns-translation` and scripts/seccomp-filtered-syscalls.py, 2026-12-07
// (python 3.11, node 20, dash). Added from reading the code: kill and tgkill (init forwards
// SIGTERM with kill(-1); abort() raises with tgkill), restart_syscall (the kernel's own restart
// of an interrupted sleep); and rt_sigsuspend, found by a timeout run in allow mode (dash's
// `wait` with a TERM trap: refused, it spun until SIGKILL).
constexpr const char* kAllowList[] = {
    "access", "arch_prctl", "bind", "brk", "capget", "chdir", "chmod", "clock_nanosleep", "clone",
    "clone3", "close", "close_range", "connect", "dup", "dup2", "epoll_create1", "epoll_ctl",
    "epoll_pwait", "eventfd2", "execve", "exit", "exit_group", "fadvise64", "fchdir", "fcntl",
    "fstat", "fstatfs", "futex", "getcwd", "getdents64", "getegid", "geteuid", "getgid", "getpgrp",
    "getpid", "getppid", "getrandom", "gettid", "getuid", "ioctl", "lseek", "madvise", "mkdir",
    "mmap", "mprotect", "munmap", "newfstatat", "openat", "pipe2", "pkey_alloc", "prctl", "pread64",
    "prlimit64", "read", "readlink", "rmdir", "rseq", "rt_sigaction", "rt_sigprocmask",
    "rt_sigreturn", "rt_sigtimedwait", "sched_getaffinity", "set_robust_list", "set_tid_address",
    "sigaltstack", "socket", "statfs", "statx", "symlink", "sysinfo", "umask", "uname", "unlink",
    "utimensat", "vfork", "wait4", "write",
    // From the code and the timeout run, not the measurement.
    "kill", "tgkill", "restart_syscall", "rt_sigsuspend"};

// clone's namespace flags (CLONE_NEWTIME overlaps CSIGNAL there: clone cannot create a time
// namespace; unshare is denied whatever its flags).
constexpr uint64_t kCloneNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS,
                                             CLONE_NEWIPC, CLONE_NEWUSER,   CLONE_NEWPID,
                                             CLONE_NEWNET};

// Runs before libseccomp's program (its jumps are relative, so they survive the prepend):
// a native-ABI call numbered above kHighestReviewedSyscall fails with ENOSYS, as on a kernel
// that lacks it, so that libc falls back to an older call. A foreign arch and the x32 range
// (>= __X32_SYSCALL_BIT) go on to libseccomp's program, which kills them.
constexpr sock_filter kUnreviewedPrefix[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kNativeAuditArch, 0, 4),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 2, 0),
    BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, kHighestReviewedSyscall, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
};

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using ScopedCtx = std::unique_ptr<void, CtxDeleter>;

Result<void> Check(int rc, const std::string& what) {
  if (rc < 0) return Error{-rc, "seccomp rule", what};
  return Ok{};
}

// Adds a rule unless the syscall does not exist on this architecture.
Result<void> Deny(scmp_filter_ctx ctx, const char* name, int err,
                  std::initializer_list<scmp_arg_cmp> args = {}) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return Ok{};
  return Check(seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(static_cast<uint32_t>(err)), nr,
                                      static_cast<unsigned>(args.size()), args.begin()),
               name);
}

}  // namespace

std::vector<int> AllowedSocketFamilies() { return {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK}; }

std::vector<std::string> AllowListSyscalls() {
  return std::vector<std::string>(std::begin(kAllowList), std::end(kAllowList));
}

std::vector<DeniedSyscall> DeniedSyscalls(const SeccompOptions& options) {
  std::vector<DeniedSyscall> denied;
  for (const char* name : kDeniedAlways) denied.push_back({name, EPERM, false});
  if (!options.allow_io_uring) {
    for (const char* name : kIoUring) denied.push_back({name, EPERM, false});
  }
  denied.push_back({"clone3", ENOSYS, false});
  denied.push_back({"clone", EPERM, true});
  denied.push_back({"ioctl", EPERM, true});
  denied.push_back({"personality", EPERM, true});
  denied.push_back({"mknod", EPERM, true});
  denied.push_back({"mknodat", EPERM, true});
  denied.push_back({"socket", EAFNOSUPPORT, true});
  denied.push_back({"socketpair", EAFNOSUPPORT, true});
  return denied;
}

sock_fprog SeccompProgram::AsFprog() const {
  return sock_fprog{static_cast<unsigned short>(instructions.size()),
                    const_cast<sock_filter*>(instructions.data())};
}

namespace {

// libseccomp's program for `c`, as instructions.
Result<std::vector<sock_filter>> Export(scmp_filter_ctx c) {
  unique_fd memfd(memfd_create("packvisor-seccomp", MFD_CLOEXEC));
  if (!memfd) return ErrnoError("memfd_create", "seccomp export");
  PV_TRY(Check(seccomp_export_bpf(c, memfd.get()), "export"));
  off_t size = lseek(memfd.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    return Failure("seccomp export", "", "unexpected BPF size " + std::to_string(size));
  }
  std::vector<sock_filter> instructions(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(memfd.get(), instructions.data(), static_cast<size_t>(size), 0) != size) {
    return ErrnoError("read", "exported seccomp filter");
  }
  return instructions;
}

// Default EPERM; the allow list returns SECCOMP_RET_ALLOW (rewritten into a jump by the caller).
Result<std::vector<sock_filter>> CompileAllowList() {
  ScopedCtx ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!ctx) return Failure("seccomp_init", "", "libseccomp could not create a filter");
  scmp_filter_ctx c = ctx.get();
  PV_TRY(Check(seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "badarch"));
  PV_TRY(Check(seccomp_attr_set(c, SCMP_FLTATR_CTL_NNP, 0), "nnp"));
  for (const char* name : kAllowList) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return Failure("seccomp allow list", name, "unknown syscall");
    PV_TRY(Check(seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 0), name));
  }
  return Export(c);
}

Result<std::vector<sock_filter>> CompileDenyList(const SeccompOptions& options) {
  ScopedCtx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return Failure("seccomp_init", "", "libseccomp could not create a filter");
  scmp_filter_ctx c = ctx.get();
  // Native architecture only: an i386 (int 0x80) or x32 call kills the process (catalog 14).
  PV_TRY(Check(seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "badarch"));
  PV_TRY(Check(seccomp_attr_set(c, SCMP_FLTATR_CTL_NNP, 0), "nnp"));

  for (const char* name : kDeniedAlways) PV_TRY(Deny(c, name, EPERM));
  if (!options.allow_io_uring) {
    for (const char* name : kIoUring) PV_TRY(Deny(c, name, EPERM));
  }
  // seccomp cannot read clone3's flags (they are in memory): ENOSYS makes libc fall back to
  // clone, whose flags it can check.
  PV_TRY(Deny(c, "clone3", ENOSYS));
  for (uint64_t flag : kCloneNamespaceFlags) {
    // clone's flags are compared on single bits, so high garbage bits cannot hide one.
    PV_TRY(Deny(c, "clone", EPERM, {SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)}));
  }
  // Terminal injection, compared on the low 32 bits as the kernel does (CVE-2019-10063).
  for (uint64_t request : {uint64_t{TIOCSTI}, uint64_t{TIOCLINUX}}) {
    PV_TRY(Deny(c, "ioctl", EPERM, {SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, request)}));
  }
  // Only the query form of personality(2) is allowed.
  PV_TRY(Deny(c, "personality", EPERM, {SCMP_A0(SCMP_CMP_NE, 0xffffffffu)}));
  // Device nodes; fifos and regular files stay possible.
  for (uint64_t type : {uint64_t{S_IFCHR}, uint64_t{S_IFBLK}}) {
    PV_TRY(Deny(c, "mknod", EPERM, {SCMP_A1(SCMP_CMP_MASKED_EQ, S_IFMT, type)}));
    PV_TRY(Deny(c, "mknodat", EPERM, {SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, type)}));
  }
  // Socket families (catalog 19): everything but the allowed ones, including values with high
  // bits set (caught by the >= AF_MAX rule on the full 64-bit argument).
  std::vector<int> allowed = AllowedSocketFamilies();
  for (const char* call : {"socket", "socketpair"}) {
    for (int family = 0; family < AF_MAX; ++family) {
      bool ok = false;
      for (int a : allowed) ok = ok || a == family;
      if (!ok) PV_TRY(Deny(c, call, EAFNOSUPPORT, {SCMP_A0(SCMP_CMP_EQ, uint64_t(family))}));
    }
    PV_TRY(Deny(c, call, EAFNOSUPPORT, {SCMP_A0(SCMP_CMP_GE, uint64_t{AF_MAX})}));
  }
  PV_TRY(Deny(c, "socket", EAFNOSUPPORT,
              {SCMP_A0(SCMP_CMP_EQ, uint64_t{AF_NETLINK}), SCMP_A2(SCMP_CMP_NE, 0)}));

  return Export(c);
}

}  // namespace

Result<SeccompProgram> CompileSeccompPolicy(const SeccompOptions& options) {
  auto deny = CompileDenyList(options);
  if (!deny) return deny.error();
  SeccompProgram program;
  program.instructions.assign(std::begin(kUnreviewedPrefix), std::end(kUnreviewedPrefix));
  if (options.mode == SeccompMode::kAllow) {
    auto compiled_allow = CompileAllowList();
    if (!compiled_allow) return compiled_allow.error();
    std::vector<sock_filter>& allow = *compiled_allow;
    // Classic BPF jumps forward only, and JA's offset is 32 bits: each "allow" becomes a jump
    // to the first instruction after the allow-list program, where the deny list starts.
    for (size_t i = 0; i < allow.size(); ++i) {
      sock_filter& insn = allow[i];
      if (insn.code == (BPF_RET | BPF_K) && insn.k == SECCOMP_RET_ALLOW) {
        insn = BPF_JUMP(BPF_JMP | BPF_JA, static_cast<uint32_t>(allow.size() - i - 1), 0, 0);
      }
    }
    program.instructions.insert(program.instructions.end(), allow.begin(), allow.end());
  }
  program.instructions.insert(program.instructions.end(), deny->begin(), deny->end());
  if (program.instructions.size() > BPF_MAXINSNS) {
    return Failure("seccomp export", "", "filter exceeds BPF_MAXINSNS");
  }
  return program;
}

int LoadSeccompProgram(const sock_fprog& program) {
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) return errno;
  return 0;
}

}  // namespace packvisor::sandbox
