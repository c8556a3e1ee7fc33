// Verification from outside (catalog entry 10): after the action process has finished its setup
// and before it may exec, the supervisor reads its /proc entries and checks that every hardening
// step really took effect. Any mismatch fails the launch closed.
#pragma once

#include <sys/types.h>

#include <string>

#include "sandbox/os/error.h"
#include "sandbox/spec.h"

namespace packvisor::sandbox {

// Checks the single child of the sandbox init `init_pid` (host pid).
// `cgroup_suffix` (when not empty): every memory/pids/cpu (v1) or unified (v2) line of the
// action's /proc/<pid>/cgroup must end with it.
// `stdio` (when not null): the device and inode of the pipes the action's fds 0, 1 and 2 must be
// (the launcher's), so that an action whose stdio was never redirected (still the supervisor's,
// or a prepared sandbox's inherited ones) is refused.
struct StdioIdentity {
  dev_t dev[3] = {};
  ino_t ino[3] = {};
};
Result<void> VerifyConfinedAction(pid_t init_pid, const SandboxSpec& spec,
                                  const std::string& cgroup_suffix,
                                  const StdioIdentity* stdio = nullptr);

// Per speculation misfeature (catalog 22): whether the kernel lets each task choose its own
// mitigation (PR_SPEC_PRCTL in PR_GET_SPECULATION_CTRL). The mode is system-wide, so the
// supervisor's own answer holds for the child. Where there is per-task control the child forces
// the mitigation on; where there is none, the kernel's global state applies to every task.
struct SpeculationControl {
  bool store_bypass = false;
  bool indirect_branch = false;
};
SpeculationControl HostSpeculationControl();

// Pure checks on /proc text, exposed for unit tests. Each returns the first problem found.
// CheckSpeculationText: with per-task control, `Speculation_Store_Bypass` must be "thread force
// mitigated" and `SpeculationIndirectBranch` "conditional force disabled"; a per-task state that
// is not forced ("thread vulnerable", "thread mitigated", "conditional enabled/disabled") is
// refused in any case. Without per-task control the global state ("not vulnerable", "globally
// mitigated", "vulnerable"; "not affected", "always disabled/enabled") is accepted: no task can
// change it, and `packvisor check` is where a host running with mitigations off is reported.
Result<void> CheckSpeculationText(const std::string& status, SpeculationControl control);
Result<void> CheckStatusText(const std::string& status, const IdMapping& ids);
Result<void> CheckLimitsText(const std::string& limits, const ResourceLimits& expected);
Result<void> CheckMountinfoText(const std::string& mountinfo, bool has_pack, bool has_env);

}  // namespace packvisor::sandbox
