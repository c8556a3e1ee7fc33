// Per-pack disk quota (catalog entry 30): {runtime_envs_dir}/{pack_ref} is the root of an ext4
// filesystem of the pack's own, kept in a sparse image {state_dir}/disks/{pack_ref}.img (root,
// 0600), attached to a loop device that clears itself when unmounted, and mounted nosuid,nodev.
// The pack's environments, their staging and replaced trees, and everything its actions write
// under /env share that size and its inodes: a pack that fills its disk gets ENOSPC, and neither
// the host nor another pack loses a byte.
//
// The mount lives in the host's mount namespace and outlives the supervisor; after a reboot the
// next use of the pack mounts the image again (its content is kept). Root never follows a path the
// sandbox could have written: the mount point is reached fd-relative without symlinks, and the
// filesystem is attached with the new mount API onto that fd.
#pragma once

#include <cstdint>
#include <string>

#include "sandbox/os/error.h"

namespace packvisor::envs {

struct PackDiskSettings {
  std::string runtime_envs_dir;
  std::string state_dir;
  uint64_t size_bytes = 0;  // 0: no filesystem of the pack's own (envs share runtime_envs_dir's)
};

// The smallest disk mkfs.ext4 can make with a journal (and that holds a minimal environment).
inline constexpr uint64_t kMinPackDiskBytes = 16ull << 20;

// Makes sure {runtime_envs_dir}/{pack_ref} is the pack's mounted disk, creating the image and its
// filesystem on first use. Serialized per pack by {state_dir}/locks/{pack_ref}.disk. A no-op when
// settings.size_bytes is 0. Fails closed: when the disk cannot be mounted nothing of the pack may
// run with an environment.
Result<void> EnsurePackDisk(const PackDiskSettings& settings, const std::string& pack_ref);

// After every environment of the pack was removed: unmounts the pack's disk, deletes its image
// and the empty mount point. A disk still in use (a running sandbox holds a bind of it) stays, as
// does anything not empty; neither is an error.
Result<void> ReleasePackDisk(const PackDiskSettings& settings, const std::string& pack_ref);

// For `packvisor check`: asks /dev/loop-control for a free loop device and opens it read-only,
// making its node first where /dev has none (a container's tmpfs), as attaching a disk would.
// Binds nothing. The error names the step that failed ("mknod /dev/loopN", "open /dev/loopN").
Result<void> ProbeFreeLoopDevice();

// The mkfs.ext4 binary (/usr/sbin or /sbin), or nullptr when e2fsprogs is missing.
const char* FindMkfsExt4();

// Whether the directory `name` under `parent_fd` is the root of another mount than its parent.
Result<bool> IsMountRoot(int parent_fd, const std::string& name);

// For a directory fd of {runtime_envs_dir}/{pack} about to be built into: fails unless it is the
// pack's mounted disk (when pack disks are on). Holding the fd then pins the mount, so nothing can
// unmount it under the build and let it write to the host's filesystem instead.
Result<void> CheckOnPackDisk(const PackDiskSettings& settings, int pack_fd,
                             const std::string& pack_ref);

}  // namespace packvisor::envs
