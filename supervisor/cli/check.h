// `packvisor check`: probes the host for what the sandbox needs and prints a table.
//
// The probes themselves live in check.cc; the pure parts (parsing /proc files, judging and
// formatting the rows) are declared here so they can be unit-tested without a kernel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/config/config.h"

namespace packvisor {

// Prints the table to stdout; returns 0 only when the default sandbox can run on this host.
int RunCheckCommand(const Config& config);

// One line of /proc/self/mountinfo (only the fields `check` needs; octal escapes decoded).
struct MountInfoEntry {
  std::string root;           // field 4: the root of the mount within its filesystem
  std::string mount_point;    // field 5
  std::string mount_options;  // field 6: per-mount options, e.g. "ro,nosuid,nodev"
  std::string fs_type;        // first field after the " - " separator
  std::string source;         // second field after the separator
  std::string super_options;  // third field after the separator, e.g. "rw,memory"
};

// Parses mountinfo text; malformed lines are skipped.
std::vector<MountInfoEntry> ParseMountInfo(std::string_view text);

// Decodes the \ooo escapes the kernel writes for space, tab, newline and backslash.
std::string UnescapeMountField(std::string_view field);

struct CgroupMounts {
  std::optional<std::string> v2_mount_point;  // the first cgroup2 mount, if any
  // v1: controller name ("memory", "pids", "cpu", ...) -> mount point (the first one wins).
  std::map<std::string, std::string> v1_controllers;
};

// Finds the cgroup v2 mount and the controllers of the cgroup v1 mounts.
CgroupMounts FindCgroupMounts(const std::vector<MountInfoEntry>& mounts);

// Mounts covering part of /proc (a container runtime's masked and read-only paths: /proc/kcore,
// /proc/sys, ...), in mountinfo order. binfmt_misc at /proc/sys/fs/binfmt_misc is not counted: it
// sits on an empty directory, which the kernel accepts. With any of the others the kernel refuses
// a fresh proc mount in a user namespace (fs/namespace.c, mount_too_revealing), which every
// sandbox needs.
std::vector<std::string> ProcOvermounts(const std::vector<MountInfoEntry>& mounts);

// The cgroup mounts among `mount_points` that are mounted read-only.
std::vector<std::string> ReadOnlyMounts(const std::vector<MountInfoEntry>& mounts,
                                        const std::vector<std::string>& mount_points);

// Parses a cgroup.controllers (or cgroup.subtree_control) file: names separated by whitespace.
std::vector<std::string> ParseCgroupControllers(std::string_view text);

// True when a whitespace-separated word list (e.g. /proc/sys/kernel/seccomp/actions_avail)
// contains `word`.
bool HasWord(std::string_view text, std::string_view word);

// Parses the integer value of a sysctl file ("2\n"); nullopt when it is not one.
std::optional<long long> ParseSysctlInt(std::string_view text);

enum class CheckStatus {
  kOk,       // present and working
  kMissing,  // absent or not working
  kWarn,     // present, but the host setting weakens something or a later feature is unavailable
  kInfo,     // informational only
};

const char* CheckStatusName(CheckStatus status);

struct CheckRow {
  std::string feature;
  CheckStatus status = CheckStatus::kInfo;
  std::string meaning;    // what the status means for packvisor
  bool required = false;  // the default sandbox cannot run without it
};

// The table: a header, a rule, then one line per row; columns aligned, '|'-separated.
std::string FormatCheckTable(const std::vector<CheckRow>& rows);

// 0 when every required row is kOk, 1 otherwise.
int CheckExitCode(const std::vector<CheckRow>& rows);

// ---------------------------------------------------------------------------------------------
// Capabilities (check_setup.cc).

struct CapabilitySets {
  uint64_t effective = 0;  // bit N = capability N
  uint64_t bounding = 0;
};

// Reads a "CapEff:\t000001ffffffffff" line of /proc/PID/status; nullopt when absent or malformed.
std::optional<uint64_t> ParseCapabilityMask(std::string_view status_text, std::string_view field);

// The capabilities of the supervisor's process, from /proc/self/status.
std::optional<CapabilitySets> ReadOwnCapabilities();

// A capability packvisor uses in the host's user namespace, and what for.
struct NeededCapability {
  int number;
  const char* name;  // "CAP_SYS_ADMIN"
  const char* used_for;
};

// Every capability packvisor's own work needs (docs/launch-sequence.md says why for each).
const std::vector<NeededCapability>& NeededCapabilities();

// One row per needed capability missing from the effective set (required: nothing runs without
// them), or one "capabilities" row when none is missing.
std::vector<CheckRow> JudgeCapabilities(const CapabilitySets& sets);

// The names of `numbers` that `sets` lacks, joined with ", " ("" when it has them all).
std::string MissingCapabilityNames(const CapabilitySets& sets, const std::vector<int>& numbers);

// ---------------------------------------------------------------------------------------------
// Configured directories (check_setup.cc).

// What packvisor does with a configured directory.
enum class DirectoryUse {
  kRead,        // packs_base_dir, runtimes_dir: root reads them
  kRootWrites,  // state_dir, runtime_envs_dir: root creates, locks and writes beneath them,
                // opening every component without following symlinks
};

// lstat of one component of a configured path, from "/" down.
struct PathComponent {
  std::string path;
  bool exists = false;
  bool is_directory = false;
  bool is_symlink = false;
  uid_t owner = 0;
  gid_t group = 0;
  mode_t mode = 0;  // permission and sticky bits
};

// The facts `JudgeDirectory` needs, gathered by `InspectDirectory`.
struct DirectoryFacts {
  std::vector<PathComponent> components;  // "/" first; stops after the first missing one
  int access_errno = 0;  // faccessat of the directory for its use (R_OK|X_OK, or W_OK|X_OK)
  std::string path;      // the configured path ("" = the last component's)
};

DirectoryFacts InspectDirectory(const std::string& path, DirectoryUse use);

// The row of configuration key `key` (e.g. "state_dir") set to the directory the facts describe.
CheckRow JudgeDirectory(const std::string& key, DirectoryUse use, const DirectoryFacts& facts);

// Per-pack disks (envs.pack_disk_mb): the loop device control, mkfs.ext4 and CAP_SYS_ADMIN.
void ProbePackDisks(const Config& config, const CapabilitySets& caps, std::vector<CheckRow>& rows);

// The rows of every configured directory (runtimes_dir only when set).
std::vector<CheckRow> CheckConfiguredDirectories(const Config& config);

}  // namespace packvisor
