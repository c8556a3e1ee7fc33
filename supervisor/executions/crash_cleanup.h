// What a supervisor killed without warning (SIGKILL, OOM killer, power loss) leaves on the host,
// and its removal: the daemon calls CleanUpAfterCrash at start, before it accepts work, and logs
// what it removed. docs/crash-cleanup.md lists every piece of per-execution host state and why
// each one is either removed here or cannot outlive the supervisor.
#pragma once

#include <string>
#include <vector>

#include "sandbox/os/error.h"
#include "supervisor/config/config.h"

namespace packvisor {

struct CrashCleanup {
  // One line per thing removed, for the log: "execution cgroup /sys/fs/cgroup/.../packvisor/
  // 1234-ab12 (2 processes killed)", "environment staging tree /opt/.../core/.staging-python-…".
  std::vector<std::string> removed;
  // Leftovers that could not be removed (still busy, permission), one line each; not an error:
  // the next start tries again.
  std::vector<std::string> kept;
};

// Removes, for the configuration's sandbox.cgroup_parent, runtime_envs_dir and state_dir:
// execution cgroups (every hierarchy) whose supervisor is gone, killing anything still in them;
// staging and replaced environment trees no live builder or execution holds; and temporary files
// of atomic writes (`.NAME.tmp-XXXXXXXXXXXXXXXX`) older than kStaleTempFileAge. Safe while other
// packvisor processes run: what a live process holds (its cgroups, its build lock) is never
// touched. The execution records' own temporary files are ExecutionStore's
// (MarkUnfinishedAbandoned).
Result<CrashCleanup> CleanUpAfterCrash(const Config& config);

// A temporary file of an atomic write is renamed within the call that made it; one this old
// belongs to a process that died.
inline constexpr int kStaleTempFileAgeSeconds = 3600;

}  // namespace packvisor
