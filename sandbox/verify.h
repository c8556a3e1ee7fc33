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
Result<void> VerifyConfinedAction(pid_t init_pid, const SandboxSpec& spec,
                                  const std::string& cgroup_suffix);

// Pure checks on /proc text, exposed for unit tests. Each returns the first problem found.
Result<void> CheckStatusText(const std::string& status, const IdMapping& ids);
Result<void> CheckLimitsText(const std::string& limits, const ResourceLimits& expected);
Result<void> CheckMountinfoText(const std::string& mountinfo, bool has_pack, bool has_env);

}  // namespace packvisor::sandbox
