// The child side of a launch: one linear, allocation-free setup function. Everything it uses was
// computed by the parent before clone; it only makes system calls and, on failure, reports
// {step, errno} on the report pipe and exits.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include "sandbox/caps.h"
#include "sandbox/cgroup.h"
#include "sandbox/fault_injection.h"
#include "sandbox/mounts.h"
#include "sandbox/rlimits.h"

namespace packvisor::sandbox {

struct ChildPlan {
  // Descriptors as numbered in the parent (the clone child has a copy of its table).
  int stdin_fd = -1;   // read end of the stdin pipe
  int stdout_fd = -1;  // write ends of the output pipes
  int stderr_fd = -1;
  int report_fd = -1;   // write end: ChildMessage records
  int id_maps_fd = -1;  // read end: one byte once the parent has written the id maps
  int release_fd = -1;  // read end: one byte once the parent has verified the action
  // The parent's ends of those pipes; the child closes its copies first, so that EOF on the
  // go-ahead pipes really means the parent is gone.
  int parent_fds[6] = {-1, -1, -1, -1, -1, -1};
  // cgroup v1: the execution cgroup's `tasks` files, opened by the parent (write permission is
  // the opener's); the child writes "0" to each, moving itself in (see ExecutionCgroup).
  int cgroup_join_fds[kMaxCgroupJoinFds] = {-1, -1, -1, -1, -1};

  uid_t uid = 0;
  gid_t gid = 0;
  const char* staging_tmpfs_options = nullptr;
  const MountPlan* mounts = nullptr;
  const char* working_dir = nullptr;
  const char* hostname = nullptr;
  bool new_network = true;
  const CapabilityPlan* caps = nullptr;
  const RlimitPlan* rlimits = nullptr;
  sock_fprog seccomp{};

  const char* const* argv = nullptr;  // null-terminated
  const char* const* envp = nullptr;  // null-terminated
  // Absolute paths to try, in order, for argv[0] (the parent resolved it against PATH).
  const char* const* exec_candidates = nullptr;

  // The supervisor's argument area (what /proc/<pid>/cmdline shows), in this copy of its memory:
  // init overwrites it with kInitTitle, so the action cannot read the supervisor's command line
  // (host paths, the config file, the run's arguments) from /proc/1/cmdline. Null: left alone.
  char* argument_area = nullptr;
  size_t argument_area_size = 0;

  FaultInjection faults;  // always empty outside the test-hooks build
};

// What /proc/1/cmdline shows inside the sandbox.
inline constexpr char kInitTitle[] = "packvisor-init";

// Exit status the action process uses when exec fails: 127 for "not found", 126 otherwise.
inline constexpr int kExitNotFound = 127;
inline constexpr int kExitCannotExecute = 126;

// Runs as PID 1 of the new pid namespace. Never returns.
[[noreturn]] void RunChild(const ChildPlan& plan);

// A prepared sandbox (sandbox/warm_pool.h), cloned by the zygote with CLONE_PARENT. `base` holds
// the generic part: report_fd is the control socket (setup failures, then kPrepared, then the
// claim arrives on it), id_maps_fd, cgroup_join_fds, ids, the generic mount plan (no /pack, /env
// or files), hostname, network, capability and seccomp plans, argument area, faults. The
// per-execution fields (stdio, release, argv, envp, candidates, working_dir, rlimits) come with
// the claim (sandbox/claim.h).
struct PreparedChildPlan {
  ChildPlan base;
  // Read end of the daemon's lifeline pipe, whose write end only the daemon holds: POLLHUP means
  // the daemon is gone. Checked once PDEATHSIG is armed (getppid() cannot tell: the parent is
  // outside our pid namespace, so it reads 0 either way); a daemon that died before would
  // otherwise leave us orphaned with nothing to kill us.
  int lifeline_fd = -1;
  // Descriptors to keep besides 0-2 (every other one inherited from the zygote is closed first).
  int keep_fds[kMaxCgroupJoinFds + 3] = {-1, -1, -1, -1, -1, -1, -1, -1};
};

[[noreturn]] void RunPreparedChild(const PreparedChildPlan& plan);

}  // namespace packvisor::sandbox
