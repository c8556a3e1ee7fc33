// The one typed description of a sandbox. Built by the supervisor, checked once by Validate(),
// then passed down const& to the launcher, which only carries it out.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/os/error.h"
#include "sandbox/seccomp_policy.h"

namespace packvisor::sandbox {

enum class NetworkMode { kNone, kHost };

// The action runs as inside_uid/inside_gid; on the host those are host_uid/host_gid, never 0.
struct IdMapping {
  uid_t inside_uid = 1000;
  gid_t inside_gid = 1000;
  uid_t host_uid = 100000;
  gid_t host_gid = 100000;
};

struct ResourceLimits {
  uint64_t nofile = 1024;
  uint64_t nproc = 256;
  uint64_t fsize_bytes = 1024ull << 20;
  uint64_t tmp_size_bytes = 64ull << 20;  // /tmp and /dev/shm tmpfs sizes
};

// Mount points inside the sandbox.
inline constexpr const char* kPackMountPoint = "/pack";
inline constexpr const char* kEnvMountPoint = "/env";

// A file the child writes into the sandbox's private /tmp before the action starts (a parameter
// file, inline code). It exists only on that tmpfs, never on the host, owned by the action user.
struct SandboxFile {
  std::string path;     // "/tmp/<name>": one component below /tmp
  std::string content;  // may hold secrets: the caller wipes it after the launch
  unsigned mode = 0400;
};

struct SandboxSpec {
  // argv[0] is looked up in the sandbox's PATH (from env) unless it contains a '/'.
  std::vector<std::string> argv;
  // The complete environment, "NAME=value" each; nothing else passes through.
  std::vector<std::string> env;
  std::string pack_dir;  // absolute host directory bound read-only at /pack; empty: no /pack
  std::string env_dir;   // absolute host directory bound read-write at /env; empty: no /env
  NetworkMode network = NetworkMode::kNone;
  std::vector<std::string> extra_ro_binds;  // absolute host paths, bound read-only at the same path
  std::vector<SandboxFile> files;           // written into the private /tmp
  IdMapping ids;
  ResourceLimits limits;
  // The execution's cgroup limits; nullopt only when the caller chose rlimits-only mode.
  std::optional<CgroupLimits> cgroup;
  std::string cgroup_parent = "packvisor";
  std::chrono::milliseconds timeout{std::chrono::seconds(600)};
  std::chrono::milliseconds kill_grace{std::chrono::seconds(5)};
  std::string hostname = "packvisor";
  std::string working_dir = kPackMountPoint;  // falls back to "/" when there is no pack
  // sandbox.seccomp_mode for actions and `exec`; environment builds always get kDeny.
  SeccompMode seccomp_mode = SeccompMode::kDeny;

  // Checks every field (paths absolute, normalized and existing directories; ids in range and never
  // 0 on the host; argv non-empty; env entries well formed) and returns the first problem.
  Result<void> Validate() const;
};

// "PATH" value of an environment list, or the default sandbox PATH when the list has none.
std::string SandboxPath(const std::vector<std::string>& env);

}  // namespace packvisor::sandbox
