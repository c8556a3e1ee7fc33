// Environment lifecycle (SPEC §5): one environment per (pack, runtime) at
// {runtime_envs_dir}/{pack_ref}/{runtime}, built inside the sandbox (create, then install) in a
// staging directory beside it, published by an atomic rename, recorded by a ready marker that the
// sandbox cannot write. Every privileged file operation here is fd-relative and never follows a
// symlink (envs/safe_fs.h).
//
// On disk, in {runtime_envs_dir}/{pack_ref}/ (root-owned 0755):
//   {runtime}/                   the environment (owned by the sandbox's host ids, 0700)
//   .{runtime}.ready             ready marker: digest and the identity (dev, inode) of the dir
//   .{runtime}.used              touched by every execution that uses it (last use)
//   .{runtime}.failed            the last failed build: digest, error, time (not retried while
//                                the digest is unchanged)
//   .staging-{runtime}-{random}  a build in progress (or left by a dead builder)
//   .old-{runtime}-{random}      a replaced environment still in use when it was replaced
// and in {state_dir}/locks/: {pack}.{runtime}.build (one builder at a time, flock) and
// {pack}.{runtime}.inuse (shared by executions; removal of an old tree needs it exclusively).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "envs/lock.h"
#include "envs/pack_disk.h"
#include "envs/runtime.h"
#include "sandbox/os/error.h"
#include "sandbox/spec.h"

namespace packvisor::envs {

struct EnvironmentSettings {
  std::string runtime_envs_dir;
  std::string state_dir;
  // Ids, limits, kill grace and extra binds for build sandboxes (argv, env and dirs are set here).
  sandbox::SandboxSpec base_spec;
  std::vector<std::pair<std::string, std::string>> base_env;  // HOME, LANG, TMPDIR, passthrough
  std::map<std::string, std::string> install_env;             // build steps only
  bool install_network = true;
  uint64_t max_size_bytes = 2048ull << 20;
  // Size of each pack's own filesystem at {runtime_envs_dir}/{pack} (envs/pack_disk.h); 0: none.
  uint64_t pack_disk_bytes = 0;
  std::chrono::seconds build_timeout{900};
  bool show_progress = false;  // a progress line on stderr while a build runs (a terminal)
};

// kFailed: no ready environment for the current digest, and a build for that digest failed (it is
// not retried until the digest changes or a rebuild is forced).
enum class EnvironmentState { kMissing, kReady, kStale, kBroken, kFailed };
const char* EnvironmentStateName(EnvironmentState state);

struct EnvironmentInfo {
  std::string pack_ref;
  std::string runtime;
  std::string path;
  EnvironmentState state = EnvironmentState::kMissing;
  std::string digest;  // of the published environment ("" when none)
  uint64_t size_bytes = 0;
  std::optional<int64_t> last_used;  // unix time
  // The recorded failure of the last build, when one is recorded (whatever its digest).
  std::string failure;               // "install failed (exit 1): ERROR: ..."
  std::string failure_digest;        // the digest the failed build was for
  std::optional<int64_t> failed_at;  // unix time
};

// Whether Ensure builds an environment that is ready, or whose build failed for the same digest.
enum class Rebuild {
  kWhenNeeded,  // build only when missing or stale; a recorded failure fails at once
  kAlways,      // build whatever the state (`env setup --force`)
};

// A ready environment held by one execution (a shared in-use lock until destroyed).
struct EnvironmentLease {
  std::string host_dir;  // bind it at /env
  bool built_now = false;
  FileLock in_use;
};

class EnvironmentManager {
 public:
  explicit EnvironmentManager(EnvironmentSettings settings);

  // The ready environment of (pack, runtime); builds it first when it is missing or its digest
  // changed, waiting for another process's build of the same environment if one runs. A failed
  // build leaves any previous environment in place, records the failure beside it and returns an
  // error naming the step, its exit status, the installer's decisive line, then the last lines of
  // its output. While the digest is unchanged, a recorded failure is returned at once without
  // building (unless `rebuild` is kAlways).
  // `build_time` (optional) receives, whatever the outcome, the time spent building the
  // environment or waiting for another process's build of it: 0 when it was ready at once or a
  // recorded failure was returned.
  Result<EnvironmentLease> Ensure(const std::string& pack_ref, const std::string& pack_dir,
                                  const RuntimeDefinition& runtime,
                                  Rebuild rebuild = Rebuild::kWhenNeeded,
                                  std::chrono::milliseconds* build_time = nullptr);

  // State of one environment against the current pack and runtime definition.
  Result<EnvironmentInfo> Inspect(const std::string& pack_ref, const std::string& pack_dir,
                                  const RuntimeDefinition& runtime) const;

  // Every environment on disk (state kReady or kBroken from the marker alone), and every runtime
  // with only a recorded failure (kFailed); each with its recorded failure, if any.
  Result<std::vector<EnvironmentInfo>> List() const;

  // Removes one environment (and its recorded failure), or every environment of the pack when
  // runtime is empty. Refuses while an execution uses it. ENOENT when there is nothing to remove.
  Result<void> Remove(const std::string& pack_ref, const std::string& runtime);

  // Removes staging and replaced trees that no builder or execution holds (dead builders'
  // leftovers).
  Result<void> CleanUpStale();

  // The digest of (runtime definition, manifest bytes, interpreter identity).
  Result<std::string> Digest(const std::string& pack_dir, const RuntimeDefinition& runtime) const;

 private:
  Result<void> Build(int pack_fd, const std::string& pack_ref, const std::string& pack_dir,
                     const RuntimeDefinition& runtime, const std::string& digest);
  std::string LockPath(const std::string& pack_ref, const std::string& runtime,
                       const char* kind) const;
  // Removes replaced trees (.old-{runtime}-*) when no execution holds the environment.
  void RemoveReplacedTrees(const std::string& pack_ref, const std::string& runtime) const;
  PackDiskSettings DiskSettings() const {
    return {settings_.runtime_envs_dir, settings_.state_dir, settings_.pack_disk_bytes};
  }

  EnvironmentSettings settings_;
};

// Pack refs and runtime names become path components: ^[a-z0-9][a-z0-9_-]{0,63}$.
Result<void> CheckEnvironmentNames(const std::string& pack_ref, const std::string& runtime);

}  // namespace packvisor::envs
