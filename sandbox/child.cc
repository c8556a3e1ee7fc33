#include "sandbox/child.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

// Reads the one-byte go-ahead; EOF means the parent died (or gave up), so the child must not go on.
bool WaitForByte(int fd) {
  char byte = 0;
  ssize_t n;
  do {
    n = read(fd, &byte, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1;
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

[[noreturn]] void RunAction(const ChildPlan& plan) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) Fail(plan, SetupStep::kParentDeathSignal, errno);
  // Dispositions the supervisor set (SIG_IGN survives exec) and init's blocked mask must not
  // reach the action.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    if (sigaction(sig, &action, nullptr) != 0 && errno != EINVAL) {
      Fail(plan, SetupStep::kResetSignals, errno, sig);
    }
  }
  sigset_t empty;
  sigemptyset(&empty);
  if (sigprocmask(SIG_SETMASK, &empty, nullptr) != 0) Fail(plan, SetupStep::kResetSignals, errno);

  int resource = 0;
  if (int err = ApplyRlimits(*plan.rlimits, &resource); err != 0) {
    Fail(plan, SetupStep::kRlimits, err, resource);
  }
  // The report and release pipes stay usable until exec, which closes them.
  if (os::CloseRange(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) Fail(plan, SetupStep::kCloseFds, errno);
  // seccomp last: after it only read, write and execve are needed.
  if (int err = LoadSeccompProgram(plan.seccomp); err != 0) Fail(plan, SetupStep::kSeccomp, err);
  Send(plan.report_fd, MessageKind::kActionReady, SetupStep::kNone, 0, 0);
  if (!WaitForByte(plan.release_fd)) Fail(plan, SetupStep::kWaitForRelease, ECANCELED);

  int err = ENOENT;
  for (const char* const* candidate = plan.exec_candidates; *candidate != nullptr; ++candidate) {
    execve(*candidate, const_cast<char* const*>(plan.argv), const_cast<char* const*>(plan.envp));
    // Keep the most telling error: a later ENOENT does not hide an earlier EACCES.
    if (errno != ENOENT || err == ENOENT) err = errno;
  }
  Send(plan.report_fd, MessageKind::kSetupFailed, SetupStep::kExec, err, 0);
  _exit(err == ENOENT ? kExitNotFound : kExitCannotExecute);
}

}  // namespace

// The order of these steps is the launch sequence of docs/launch-sequence.md; each ordering
// constraint is stated where it applies.
void RunChild(const ChildPlan& plan) {
  for (int fd : plan.parent_fds) {
    if (fd >= 0) os::CloseRange(static_cast<unsigned>(fd), static_cast<unsigned>(fd), 0);
  }
  // Before anything else, so that a supervisor dying from here on takes the sandbox with it.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) Fail(plan, SetupStep::kParentDeathSignal, errno);
  // The parent may have died before PDEATHSIG was armed; the go-ahead byte tells. Until it
  // arrives our uid is unmapped and we may not change ids.
  if (!WaitForByte(plan.id_maps_fd)) Fail(plan, SetupStep::kWaitForIdMaps, ECHILD);

  // Ids first: everything after, mounts included, runs as the unprivileged mapped ids. The
  // namespace's uid 0 is unmapped, so changing ids keeps our capabilities in this namespace.
  if (setresgid(plan.gid, plan.gid, plan.gid) != 0) Fail(plan, SetupStep::kSetGid, errno);
  // Drop root's supplementary groups while CAP_SETGID is still held.
  if (setgroups(0, nullptr) != 0) Fail(plan, SetupStep::kSetGroups, errno);
  if (setresuid(plan.uid, plan.uid, plan.uid) != 0) Fail(plan, SetupStep::kSetUid, errno);

  // Mounts: private first, so nothing we do propagates to the host.
  if (int err = MakeMountsPrivate(); err != 0) Fail(plan, SetupStep::kMountPrivate, err);
  int pivot_step = 0;
  if (int err = MountStagingRootAndPivot(plan.staging_tmpfs_options, &pivot_step); err != 0) {
    Fail(plan, pivot_step == 0 ? SetupStep::kMountStagingRoot : SetupStep::kPivotRoot, err);
  }
  int failed_op = 0;
  // proc is mounted inside the plan while the host's proc is still visible under the old root
  // (the kernel requires a fully visible proc before it lets a user namespace mount one).
  if (int err = ApplyMountPlan(*plan.mounts, &failed_op); err != 0) {
    Fail(plan, SetupStep::kMountPlan, err, failed_op);
  }
  if (int err = DetachOldRoot(); err != 0) Fail(plan, SetupStep::kDetachOldRoot, err);
  // Read-only root after the old root's mount point is removed from it.
  if (int err = MakeRootReadOnly(); err != 0) Fail(plan, SetupStep::kRootReadOnly, err);
  if (chdir(plan.working_dir) != 0) Fail(plan, SetupStep::kChdir, errno);

  // Namespaced host identity and network need CAP_SYS_ADMIN / CAP_NET_ADMIN: before the drop.
  if (sethostname(plan.hostname, strlen(plan.hostname)) != 0) {
    Fail(plan, SetupStep::kSetHostname, errno);
  }
  if (plan.new_network) {
    if (int err = BringUpLoopback(); err != 0) Fail(plan, SetupStep::kLoopbackUp, err);
  }
  // No controlling terminal: TIOCSTI and /dev/tty have nothing to reach (catalog 13).
  if (setsid() < 0) Fail(plan, SetupStep::kSetsid, errno);

  SetupStep cap_step = SetupStep::kNone;
  if (int err = plan.caps->DropAll(&cap_step); err != 0) Fail(plan, cap_step, err);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Fail(plan, SetupStep::kNoNewPrivs, errno);

  // Stdio becomes the pipes; every other inherited descriptor except the two protocol pipes goes.
  if (dup2(plan.stdin_fd, 0) < 0 || dup2(plan.stdout_fd, 1) < 0 || dup2(plan.stderr_fd, 2) < 0) {
    Fail(plan, SetupStep::kCloseFds, errno);
  }
  if (int err = CloseAllExcept(static_cast<unsigned>(plan.report_fd),
                               static_cast<unsigned>(plan.release_fd));
      err != 0) {
    Fail(plan, SetupStep::kCloseFds, err);
  }

  // Blocked before fork so that no SIGCHLD or SIGTERM is lost between fork and sigwaitinfo.
  sigset_t init_signals;
  InitSignalSet(&init_signals);
  if (sigprocmask(SIG_BLOCK, &init_signals, nullptr) != 0) Fail(plan, SetupStep::kBlockSignals, errno);
  pid_t action = fork();
  if (action < 0) Fail(plan, SetupStep::kForkAction, errno);
  if (action == 0) RunAction(plan);

  // Init holds no stdio of the action: output EOF is decided by the action's tree alone.
  unique_fd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (devnull) {
    dup2(devnull.get(), 0);
    dup2(devnull.get(), 1);
    dup2(devnull.get(), 2);
  }
  if (int err = LoadSeccompProgram(plan.seccomp); err != 0) {
    kill(action, SIGKILL);
    Fail(plan, SetupStep::kSeccomp, err);
  }
  RunInit(action, plan.report_fd);
}

}  // namespace packvisor::sandbox
