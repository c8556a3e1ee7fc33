#include "sandbox/child.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/claim.h"
#include "sandbox/init.h"
#include "sandbox/network.h"
#include "sandbox/os/syscalls.h"
#include "sandbox/report.h"
#include "sandbox/seccomp_policy.h"

namespace packvisor::sandbox {
namespace {

constexpr int kSetupFailedExit = 125;

void Send(int fd, MessageKind kind, SetupStep step, int err, int detail) {
  ChildMessage message{kind, step, err, detail};
  (void)!write(fd, &message, sizeof(message));
}

[[noreturn]] void Fail(const ChildPlan& plan, SetupStep step, int err, int detail = 0) {
  Send(plan.report_fd, MessageKind::kSetupFailed, step, err, detail);
  _exit(kSetupFailedExit);
}

// 0, or the errno of the call that just returned `rc`.
int Errno(long rc) { return rc < 0 ? errno : 0; }

// Runs one setup step, `op` returning 0 or an errno; any failure ends the child after reporting
// {step, errno, *detail}. Test builds may make the step fail or skip it
// (sandbox/fault_injection.h).
template <typename Op>
void Do(const ChildPlan& plan, SetupStep step, Op&& op, const int* detail = nullptr) {
#ifdef PACKVISOR_TEST_HOOKS
  if (plan.faults.Skips(step)) return;
  if (plan.faults.fail_step == step) Fail(plan, step, EPERM);
#endif
  if (int err = op(); err != 0) Fail(plan, step, err, detail != nullptr ? *detail : 0);
}

// Reads the one-byte go-ahead; EOF means the parent died (or gave up), so the child must not go on.
int WaitForByte(int fd, int err_on_eof) {
  char byte = 0;
  ssize_t n;
  do {
    n = read(fd, &byte, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1 ? 0 : err_on_eof;
}

// True while the parent holds the write end of `fd`'s pipe.
bool ParentAlive(int fd) {
  struct pollfd poll_fd = {fd, 0, 0};
  return poll(&poll_fd, 1, 0) == 0 || (poll_fd.revents & (POLLHUP | POLLERR)) == 0;
}

// Closes every descriptor >= 3 except `keep_a` and `keep_b`.
int CloseAllExcept(unsigned keep_a, unsigned keep_b) {
  unsigned lo = keep_a < keep_b ? keep_a : keep_b;
  unsigned hi = keep_a < keep_b ? keep_b : keep_a;
  unsigned ranges[3][2] = {{3, lo - 1}, {lo + 1, hi - 1}, {hi + 1, ~0U}};
  for (auto& range : ranges) {
    if (range[0] > range[1] || range[0] < 3) continue;
    if (os::CloseRange(range[0], range[1], 0) != 0) return errno;
  }
  return 0;
}

int ResetSignals() {
  // Dispositions the supervisor set (SIG_IGN survives exec) and init's blocked mask must not
  // reach the action.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    if (sigaction(sig, &action, nullptr) != 0 && errno != EINVAL) return errno;
  }
  sigset_t empty;
  sigemptyset(&empty);
  return Errno(sigprocmask(SIG_SETMASK, &empty, nullptr));
}

// Catalog 22: force-disables speculative store bypass and indirect branch speculation for this
// task; both are inherited by fork and kept across exec, and FORCE means the action cannot turn
// them back on. Kernels since 5.16 only mitigate per task on request (spec_store_bypass_disable
// and spectre_v2_user default to "prctl"), so the seccomp filter alone does not do it.
// Accepted failures, where the kernel decides for every task and there is nothing to force:
// ENXIO (the man page's "control ... is not possible": not affected, mitigated for all, or off
// for all), and EPERM when PR_GET_SPECULATION_CTRL confirms there is no per-task control (the
// indirect-branch prctl answers EPERM, not ENXIO, when spectre_v2_user is off or the CPU has no
// IBPB/STIBP, i.e. speculation is already force-enabled for everyone). An EPERM while per-task
// control exists, or any other errno, fails the launch.
int ForceSpeculationMitigations() {
  constexpr unsigned long kMisfeatures[] = {PR_SPEC_STORE_BYPASS, PR_SPEC_INDIRECT_BRANCH};
  for (unsigned long which : kMisfeatures) {
    if (prctl(PR_SET_SPECULATION_CTRL, which, PR_SPEC_FORCE_DISABLE, 0, 0) == 0) continue;
    int err = errno;
    if (err == ENXIO) continue;
    if (err == EPERM) {
      int state = prctl(PR_GET_SPECULATION_CTRL, which, 0, 0, 0);
      if (state >= 0 && (state & PR_SPEC_PRCTL) == 0) continue;
    }
    return err;
  }
  return 0;
}

[[noreturn]] void RunAction(const ChildPlan& plan) {
  Do(plan, SetupStep::kParentDeathSignal, [] { return Errno(prctl(PR_SET_PDEATHSIG, SIGKILL)); });
  Do(plan, SetupStep::kResetSignals, [] { return ResetSignals(); });
  int resource = 0;
  Do(
      plan, SetupStep::kRlimits, [&] { return ApplyRlimits(*plan.rlimits, &resource); }, &resource);
  // The report and release pipes stay usable until exec, which closes them.
  Do(plan, SetupStep::kCloseFds, [] { return Errno(os::CloseRange(3, ~0U, CLOSE_RANGE_CLOEXEC)); });
  // The uid switch made this process non-dumpable, and its memory was created in the host's user
  // namespace: the supervisor could then read its /proc entries (ns/, fdinfo/, cwd) only with
  // CAP_SYS_PTRACE. Dumpable, they are open to the owner of the sandbox's user namespace (the
  // verifying supervisor thread and nothing else: no other process runs as the pack's host id in
  // the host's user namespace). execve sets dumpability anew. The call cannot fail for 1; were it
  // to, the verification fails closed.
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  // Securebits are not in /proc: the action reports them for the verification.
  Send(plan.report_fd, MessageKind::kActionReady, SetupStep::kNone, 0,
       prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
  Do(plan, SetupStep::kWaitForRelease, [&] { return WaitForByte(plan.release_fd, ECANCELED); });

  int err = ENOENT;
  for (const char* const* candidate = plan.exec_candidates; *candidate != nullptr; ++candidate) {
    execve(*candidate, const_cast<char* const*>(plan.argv), const_cast<char* const*>(plan.envp));
    // Keep the most telling error: a later ENOENT does not hide an earlier EACCES.
    if (errno != ENOENT || err == ENOENT) err = errno;
  }
  Send(plan.report_fd, MessageKind::kSetupFailed, SetupStep::kExec, err, 0);
  _exit(err == ENOENT ? kExitNotFound : kExitCannotExecute);
}

[[noreturn]] void DropAndRunAction(const ChildPlan& plan);

}  // namespace

int JoinCgroup(const int (&fds)[kMaxCgroupJoinFds]) {
  for (int fd : fds) {
    if (fd < 0) continue;
    if (write(fd, "0", 1) != 1) return errno != 0 ? errno : EIO;
    os::CloseRange(static_cast<unsigned>(fd), static_cast<unsigned>(fd), 0);
  }
  return 0;
}

namespace {

// The generic part shared by a fresh launch and a prepared sandbox, from the id maps to the
// detached old root; `parent_alive_fd` hangs up when the supervisor is gone (the release pipe of a
// fresh launch, the pool's lifeline for a prepared sandbox). Allocation-free and linear: any
// failure is reported as {step, errno} and ends the process (Do).
void SetUpIdsAndRoot(const ChildPlan& plan, int parent_alive_fd) {
  // The parent may have died before PDEATHSIG was armed; the go-ahead byte tells. Until it
  // arrives our uid is unmapped and we may not change ids.
  Do(plan, SetupStep::kWaitForIdMaps, [&] { return WaitForByte(plan.id_maps_fd, ECHILD); });
  // cgroup v1: into the execution cgroup before anything else, and only now: the parent has reset
  // our scheduling policy (v1's cpu controller refuses real-time tasks into a group without an
  // RT budget). Writing "0" moves the writing thread, which is this whole single-threaded process
  // (see ExecutionCgroup::OpenJoinFds). On v2 clone3 put us there already.
  Do(plan, SetupStep::kJoinCgroup, [&] { return JoinCgroup(plan.cgroup_join_fds); });

  // Ids first: everything after, mounts included, runs as the unprivileged mapped ids. The
  // namespace's uid 0 is unmapped, so changing ids keeps our capabilities in this namespace.
  // Raw system calls, not glibc's wrappers: those broadcast the change to every thread of the
  // process (nptl "setxid") and would wait forever for the supervisor's other threads, which do
  // not exist in this single-threaded copy.
  Do(plan, SetupStep::kSetGid,
     [&] { return Errno(syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid)); });
  // Drop root's supplementary groups while CAP_SETGID is still held.
  Do(plan, SetupStep::kSetGroups, [] { return Errno(syscall(SYS_setgroups, 0, nullptr)); });
  Do(plan, SetupStep::kSetUid,
     [&] { return Errno(syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid)); });
  // The kernel clears the parent-death signal when the euid/egid change: arm it again, then make
  // sure the parent did not die in between (its end of `parent_alive_fd` would have hung up).
  Do(plan, SetupStep::kParentDeathSignal, [&] {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return errno;
    return ParentAlive(parent_alive_fd) ? 0 : ECHILD;
  });

  // Our copy of the supervisor's command line: replaced before anything of the action exists.
  if (plan.argument_area != nullptr && plan.argument_area_size > sizeof(kInitTitle)) {
    memset(plan.argument_area, 0, plan.argument_area_size);
    memcpy(plan.argument_area, kInitTitle, sizeof(kInitTitle));
  }

  // Mounts: private first, so nothing we do propagates to the host.
  Do(plan, SetupStep::kMountPrivate, [] { return MakeMountsPrivate(); });
  Do(plan, SetupStep::kMountStagingRoot,
     [&] { return MountStagingRoot(plan.staging_tmpfs_options); });
  Do(plan, SetupStep::kPivotRoot, [] { return PivotToStagingRoot(); });
  // proc is mounted inside the plan while the host's proc is still visible under the old root
  // (the kernel requires a fully visible proc before it lets a user namespace mount one).
  int failed_op = 0;
  Do(
      plan, SetupStep::kMountPlan, [&] { return ApplyMountPlan(*plan.mounts, &failed_op); },
      &failed_op);
  Do(plan, SetupStep::kDetachOldRoot, [] { return DetachOldRoot(); });
}

// Namespaced host identity and network need CAP_SYS_ADMIN / CAP_NET_ADMIN: before the drop.
void SetUpHostIdentity(const ChildPlan& plan) {
  Do(plan, SetupStep::kSetHostname,
     [&] { return Errno(sethostname(plan.hostname, strlen(plan.hostname))); });
  if (plan.new_network) Do(plan, SetupStep::kLoopbackUp, [] { return BringUpLoopback(); });
  // No controlling terminal: TIOCSTI and /dev/tty have nothing to reach (catalog 13).
  Do(plan, SetupStep::kSetsid, [] { return Errno(setsid()); });
}

// Read-only root after the old root's mount point is removed from it (and, in a prepared
// sandbox, after the claim created /pack and /env on it), then the action's working directory.
void FinishRoot(const ChildPlan& plan) {
  Do(plan, SetupStep::kRootReadOnly, [] { return MakeRootReadOnly(); });
  Do(plan, SetupStep::kChdir, [&] { return Errno(chdir(plan.working_dir)); });
}

}  // namespace

// The order of these steps is the launch sequence of docs/launch-sequence.md; each ordering
// constraint is stated where it applies.
void RunChild(const ChildPlan& plan) {
  for (int fd : plan.parent_fds) {
    if (fd >= 0) os::CloseRange(static_cast<unsigned>(fd), static_cast<unsigned>(fd), 0);
  }
  // Before anything else, so that a supervisor dying from here on takes the sandbox with it.
  Do(plan, SetupStep::kParentDeathSignal, [] { return Errno(prctl(PR_SET_PDEATHSIG, SIGKILL)); });
  SetUpIdsAndRoot(plan, plan.release_fd);
  FinishRoot(plan);
  SetUpHostIdentity(plan);
  DropAndRunAction(plan);
}

namespace {

// Closes every descriptor >= 3 but the `count` in `keep` (unsorted, -1 entries ignored).
int CloseAllBut(const int* keep, int count) {
  int sorted[16];
  int n = 0;
  for (int i = 0; i < count && n < 16; ++i) {
    if (keep[i] < 3) continue;
    int j = n++;
    while (j > 0 && sorted[j - 1] > keep[i]) {
      sorted[j] = sorted[j - 1];
      --j;
    }
    sorted[j] = keep[i];
  }
  unsigned from = 3;
  for (int i = 0; i <= n; ++i) {
    unsigned to = i < n ? static_cast<unsigned>(sorted[i]) : ~0U;
    if (to > from && os::CloseRange(from, i < n ? to - 1 : to, 0) != 0) return errno;
    if (i < n) from = to + 1;
  }
  return 0;
}

// Receives the claim: the descriptors into `fds` (count in *fd_count). 0, or an errno (ECANCELED
// on EOF: the launcher closed its end, the pool is being destroyed).
int ReceiveClaim(int control_fd, int (&fds)[kMaxClaimFds], int* fd_count) {
  ClaimMessage message{};
  struct iovec iov = {&message, sizeof(message)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxClaimFds)];
  struct msghdr header {};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  header.msg_control = control;
  header.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(control_fd, &header, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  if (n == 0) return ECANCELED;
  if (static_cast<size_t>(n) != sizeof(message) || message.magic != kClaimMagic ||
      (header.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0) {
    return EPROTO;
  }
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&header);
  if (cmsg == nullptr || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
    return EPROTO;
  }
  int count = static_cast<int>((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
  if (count != static_cast<int>(message.fd_count) || count < kClaimFixedFds ||
      count > kMaxClaimFds) {
    return EPROTO;
  }
  memcpy(fds, CMSG_DATA(cmsg), sizeof(int) * static_cast<size_t>(count));
  *fd_count = count;
  return 0;
}

// Turns an array of payload offsets (ending with 0) into pointers, in place.
bool Relocate(char* base, uint64_t size, uint64_t array_offset) {
  if (array_offset == 0 || array_offset % sizeof(uint64_t) != 0 || array_offset >= size) {
    return false;
  }
  auto* entries = reinterpret_cast<uint64_t*>(base + array_offset);
  for (uint64_t i = 0;; ++i) {
    if (array_offset + (i + 1) * sizeof(uint64_t) > size) return false;
    if (entries[i] == 0) return true;
    if (entries[i] >= size) return false;
    entries[i] = reinterpret_cast<uint64_t>(base + entries[i]);
  }
}

// Maps the claim's payload privately and relocates it; the ops are checked against its size.
int MapPayload(int fd, const ClaimPayload** out) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return errno;
  auto size = static_cast<uint64_t>(st.st_size);
  if (size < sizeof(ClaimPayload)) return EPROTO;
  void* mapped = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (mapped == MAP_FAILED) return errno;
  char* base = static_cast<char*>(mapped);
  auto* payload = reinterpret_cast<ClaimPayload*>(base);
  if (payload->size != size || payload->working_dir == 0 || payload->working_dir >= size ||
      payload->ops % alignof(ClaimOp) != 0 ||
      payload->ops + payload->op_count * sizeof(ClaimOp) > size ||
      !Relocate(base, size, payload->argv) || !Relocate(base, size, payload->envp) ||
      !Relocate(base, size, payload->exec_candidates)) {
    return EPROTO;
  }
  const auto* ops = reinterpret_cast<const ClaimOp*>(base + payload->ops);
  for (uint64_t i = 0; i < payload->op_count; ++i) {
    if (ops[i].target == 0 || ops[i].target >= size || ops[i].source > size ||
        ops[i].source_size > size - ops[i].source) {
      return EPROTO;
    }
  }
  // The strings were written NUL-terminated by the launcher; the last byte makes sure of it.
  base[size - 1] = '\0';
  *out = payload;
  return 0;
}

}  // namespace

// The generic part of RunChild, in the same order and for the same reasons (see RunChild and
// docs/launch-sequence.md), then the wait for a claim, then the per-execution part.
void RunPreparedChild(const PreparedChildPlan& prepared) {
  ChildPlan plan = prepared.base;
  // Everything inherited from the zygote but our own descriptors (its command socket, its copies
  // of the other ends) goes first: EOF on the id-maps pipe must mean the zygote is gone.
  Do(plan, SetupStep::kCloseFds,
     [&] { return CloseAllBut(prepared.keep_fds, sizeof(prepared.keep_fds) / sizeof(int)); });
  // The parent is the daemon (CLONE_PARENT). If it died before PDEATHSIG was armed, its end of
  // the lifeline is closed already (a process's files go before its children are reparented).
  Do(plan, SetupStep::kParentDeathSignal, [&] {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return errno;
    return ParentAlive(prepared.lifeline_fd) ? 0 : ECHILD;
  });
  SetUpIdsAndRoot(plan, prepared.lifeline_fd);
  // The root stays writable until the claim: /pack and /env are created on it then.
  SetUpHostIdentity(plan);

  // Ready. A claim, or EOF when the pool is destroyed (or the daemon dies: PDEATHSIG as well).
  Send(plan.report_fd, MessageKind::kPrepared, SetupStep::kNone, 0, 0);
  int fds[kMaxClaimFds] = {-1, -1, -1, -1, -1, -1, -1, -1};
  int fd_count = 0;
  Do(plan, SetupStep::kWaitForClaim, [&] { return ReceiveClaim(plan.report_fd, fds, &fd_count); });
  const ClaimPayload* payload = nullptr;
  Do(plan, SetupStep::kWaitForClaim, [&] { return MapPayload(fds[kClaimPayload], &payload); });
  const char* base = reinterpret_cast<const char*>(payload);
  plan.stdin_fd = fds[kClaimStdin];
  plan.stdout_fd = fds[kClaimStdout];
  plan.stderr_fd = fds[kClaimStderr];
  plan.report_fd = fds[kClaimReport];
  plan.release_fd = fds[kClaimRelease];
  plan.rlimits = &payload->rlimits;
  plan.argv = reinterpret_cast<const char* const*>(base + payload->argv);
  plan.envp = reinterpret_cast<const char* const*>(base + payload->envp);
  plan.exec_candidates = reinterpret_cast<const char* const*>(base + payload->exec_candidates);
  plan.working_dir = base + payload->working_dir;

  // The per-execution mounts (pack, env) and files, reported like the ops of a fresh plan: the
  // detail is the op's index in the launcher's claim plan.
  const auto* ops = reinterpret_cast<const ClaimOp*>(base + payload->ops);
  for (uint64_t i = 0; i < payload->op_count; ++i) {
    const ClaimOp& op = ops[i];
    int index = static_cast<int>(i);
    int source_fd = op.fd_index >= kClaimFixedFds && op.fd_index < fd_count ? fds[op.fd_index] : -1;
    if (op.fd_index >= 0 && source_fd < 0) Fail(plan, SetupStep::kMountPlan, EPROTO, index);
    RawMountOp raw{static_cast<MountOpKind>(op.kind),
                   op.source != 0 ? base + op.source : "",
                   op.source_size,
                   base + op.target,
                   op.attr_set,
                   op.attr_clr,
                   "",
                   static_cast<mode_t>(op.mode),
                   source_fd};
    Do(
        plan, SetupStep::kMountPlan, [&] { return ApplyRawMountOp(raw); }, &index);
  }
  FinishRoot(plan);
  DropAndRunAction(plan);
}

namespace {

// The last drop, stdio, seccomp, the fork of the action and init: the common end of a fresh
// launch (RunChild) and of a claimed prepared sandbox (RunPreparedChild).
[[noreturn]] void DropAndRunAction(const ChildPlan& plan) {
  Do(plan, SetupStep::kSecurebits, [&] { return plan.caps->LockSecurebits(); });
  Do(plan, SetupStep::kDropBoundingCaps, [&] { return plan.caps->DropBounding(); });
  Do(plan, SetupStep::kClearAmbientCaps, [&] { return plan.caps->ClearAmbient(); });
  Do(plan, SetupStep::kDropCaps, [&] { return plan.caps->DropSets(); });
  Do(plan, SetupStep::kNoNewPrivs, [] { return Errno(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)); });
  // Before the action is forked, so init and the action both carry it; before seccomp, so that
  // the filter may deny this prctl to the action without affecting setup.
  Do(plan, SetupStep::kSpeculation, [] { return ForceSpeculationMitigations(); });

  // Stdio becomes the pipes; every other inherited descriptor except the two protocol pipes goes.
  Do(plan, SetupStep::kCloseFds, [&] {
    if (dup2(plan.stdin_fd, 0) < 0 || dup2(plan.stdout_fd, 1) < 0 || dup2(plan.stderr_fd, 2) < 0) {
      return errno;
    }
    return CloseAllExcept(static_cast<unsigned>(plan.report_fd),
                          static_cast<unsigned>(plan.release_fd));
  });

  // Blocked before fork so that no SIGCHLD or SIGTERM is lost between fork and sigwaitinfo.
  sigset_t init_signals;
  InitSignalSet(&init_signals);
  Do(plan, SetupStep::kBlockSignals,
     [&] { return Errno(sigprocmask(SIG_BLOCK, &init_signals, nullptr)); });
  // seccomp is the last hardening step: loaded once here, it covers init and is inherited by the
  // action, whose remaining steps (signal dispositions, rlimits, close-on-exec, the release
  // handshake, execve) are all calls the filter allows. One load instead of two: each load
  // JIT-compiles the program in the kernel.
  Do(plan, SetupStep::kSeccomp, [&] { return LoadSeccompProgram(plan.seccomp); });
  // A raw clone, not glibc's fork(): fork() takes locks (malloc arenas, stdio) that another thread
  // of the supervisor may have held when this process was cloned from it.
  pid_t action = static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0));
  if (action < 0) Fail(plan, SetupStep::kForkAction, errno);
  if (action == 0) RunAction(plan);

  // Init holds no stdio of the action: output EOF is decided by the action's tree alone.
  unique_fd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (devnull) {
    dup2(devnull.get(), 0);
    dup2(devnull.get(), 1);
    dup2(devnull.get(), 2);
  }
  RunInit(action, plan.report_fd);
}

}  // namespace

}  // namespace packvisor::sandbox
