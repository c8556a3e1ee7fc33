// Per-execution cgroups: memory (swap 0), pids and CPU limits, usage (CPU time, peak memory, OOM
// kills), and killing the whole group. cgroup v2 is the primary back end (the child is cloned
// straight into its cgroup with CLONE_INTO_CGROUP); v1 (memory, pids, cpu/cpuacct, freezer
// hierarchies) is the fallback. Execution cgroups live under `{own cgroup}/{parent}` in each
// hierarchy, where {own cgroup} is the supervisor's own: an outer limit (a container's, a
// systemd unit's) keeps applying to every sandbox.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor::sandbox {

enum class CgroupBackend { kNone, kV2, kV1 };

// The most v1 hierarchies an execution cgroup spans (memory, pids, cpu, cpuacct, freezer).
inline constexpr int kMaxCgroupJoinFds = 5;
const char* CgroupBackendName(CgroupBackend backend);

struct CgroupLimits {
  uint64_t memory_max_bytes = 512ull << 20;
  uint64_t pids_max = 256;
  uint64_t cpu_max_percent = 100;  // 100 = one core
};

// Where the hierarchies are and which back end is usable, read from /proc/self/mountinfo and
// /proc/self/cgroup. Cached by Probe(); tests build one from text with Parse().
struct CgroupLayout {
  CgroupBackend backend = CgroupBackend::kNone;
  std::string v2_dir;  // the supervisor's own cgroup in the unified hierarchy (absolute)
  // v1: the supervisor's own cgroup directory in each hierarchy (absolute), empty if missing.
  std::string v1_memory, v1_pids, v1_cpu, v1_cpuacct, v1_freezer;
  std::string why_none;  // when kNone: what is missing

  static const CgroupLayout& Probe();
  static CgroupLayout Parse(const std::string& mountinfo, const std::string& self_cgroup,
                            const std::string& v2_controllers);
};

struct CgroupUsage {
  int64_t cpu_ms = 0;
  int64_t memory_peak_kb = 0;
  uint64_t oom_kills = 0;
};

// One write of a limit into an execution cgroup's directory: `file` gets `value`; an `optional`
// file is written only where the kernel offers it (memory.swap.max without swap accounting).
struct CgroupFileWrite {
  std::string file;
  std::string value;
  bool optional = false;
};

// cgroup v2: what the execution cgroup's directory gets for `limits`, in order (memory.max,
// memory.swap.max = 0, pids.max, cpu.max as "quota period").
std::vector<CgroupFileWrite> V2LimitWrites(const CgroupLimits& limits);

// cgroup v2 usage from the texts of cpu.stat (usage_usec), memory.peak (bytes) and memory.events
// (oom_kill).
CgroupUsage ParseV2Usage(const std::string& cpu_stat, const std::string& memory_peak,
                         const std::string& memory_events);

// One execution's cgroup. Removed (after killing anything left in it) on destruction.
class ExecutionCgroup {
 public:
  // Creates `{own}/{parent}/{name}` in every hierarchy of `layout` and writes the limits.
  static Result<ExecutionCgroup> Create(const CgroupLayout& layout, const std::string& parent,
                                        const std::string& name, const CgroupLimits& limits);
  ExecutionCgroup(ExecutionCgroup&&) = default;
  ExecutionCgroup& operator=(ExecutionCgroup&&) = delete;
  ~ExecutionCgroup();

  // v2: the directory fd for clone3's CLONE_INTO_CGROUP; -1 on v1.
  int clone_fd() const { return v2_fd_.get(); }
  // v1: the `tasks` file of every hierarchy, opened for writing (O_CLOEXEC); empty on v2. A
  // thread that writes "0" to them moves itself in. Unlike a `cgroup.procs` write of another
  // pid by the parent, moving oneself does not take the kernel's global threadgroup lock, whose
  // write side waits for an RCU grace period when no migration happened recently (5-30 ms on an
  // idle host). v1 checks the write against the opener's credentials (root), not the writer's.
  Result<std::vector<unique_fd>> OpenJoinFds() const;
  // "/{parent}/{name}": how every relevant line of /proc/<pid>/cgroup of a member ends (the
  // verification before exec checks it).
  const std::string& MembershipSuffix() const { return suffix_; }
  // Kills every process in the group (v2 cgroup.kill; v1 freeze, SIGKILL each, thaw).
  void KillAll() const;
  CgroupUsage ReadUsage() const;

 private:
  ExecutionCgroup() = default;
  void Remove();

  CgroupBackend backend_ = CgroupBackend::kNone;
  std::vector<std::string> dirs_;  // every directory created (v1: one per hierarchy)
  std::string memory_dir_, pids_dir_, cpu_dir_, cpuacct_dir_, freezer_dir_, v2_dir_;
  std::string suffix_;
  unique_fd v2_fd_;
  bool removed_ = false;
};

// One execution cgroup RemoveStaleCgroups removed.
struct StaleCgroup {
  std::string path;             // its directory in the first hierarchy (v2: the only one)
  size_t processes_killed = 0;  // members it still had (none when PDEATHSIG did its work)
  bool removed = true;          // false: a directory stayed busy (logged by the caller)
};

// Removes execution cgroups under `{own}/{parent}` whose creating supervisor (the pid in their
// name, "<pid>-<suffix>") no longer runs, killing anything left in them, in every hierarchy.
// Returns how many. A supervisor killed with SIGKILL leaves its execution cgroups behind (its
// sandboxes die with it through PR_SET_PDEATHSIG, their directories do not); `report`, when
// given, receives one entry per cgroup. A name whose pid a later process reuses stays until that
// process ends (it is empty: its members died with their supervisor).
int RemoveStaleCgroups(const CgroupLayout& layout, const std::string& parent,
                       std::vector<StaleCgroup>* report = nullptr);

}  // namespace packvisor::sandbox
