// `packvisor check`: probes the host for what the sandbox needs and prints a table.
//
// The probes themselves live in check.cc; the pure parts (parsing /proc files, judging and
// formatting the rows) are declared here so they can be unit-tested without a kernel.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/config.h"

namespace packvisor {

// Prints the table to stdout; returns 0 only when the default sandbox can run on this host.
int RunCheckCommand(const Config& config);

// One line of /proc/self/mountinfo (only the fields `check` needs; octal escapes decoded).
struct MountInfoEntry {
  std::string root;           // field 4: the root of the mount within its filesystem
  std::string mount_point;    // field 5
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

}  // namespace packvisor
