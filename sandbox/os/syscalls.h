// Thin wrappers for system calls glibc 2.36 does not wrap, or wraps in headers that conflict.
// All return -1 and set errno on failure, like the libc calls they stand beside.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor::os {

struct Clone3Args {
  uint64_t flags = 0;
  int* pidfd = nullptr;
  int exit_signal = 0;
  int cgroup_fd = -1;  // with CLONE_INTO_CGROUP
};
// Like fork(): returns 0 in the child, the child's pid in the parent.
pid_t Clone3(const Clone3Args& args);
int PidfdSendSignal(int pidfd, int signal);
int PivotRoot(const char* new_root, const char* put_old);
// mount_setattr(2) with attr_set/attr_clr; recursive applies it to the whole subtree.
int MountSetattr(const char* path, bool recursive, uint64_t attr_set, uint64_t attr_clr);
int CloseRange(unsigned first, unsigned last, unsigned flags);
int Openat2(int dirfd, const char* path, uint64_t flags, uint64_t mode, uint64_t resolve);

// Opens a path beneath dirfd (or absolute from "/") without following any symlink on the way.
Result<unique_fd> OpenNoSymlinks(int dirfd, const std::string& path, int flags);

// Writes the whole buffer (retrying short writes and EINTR).
Result<void> WriteAll(int fd, const void* data, size_t size, const std::string& what);
// Reads a whole (small) file.
Result<std::string> ReadFile(const std::string& path);
// realpath(3): the canonical absolute path (symlinks followed), nullopt when it does not resolve.
// For the unprivileged side of checks only: root never follows a path untrusted code could write.
std::optional<std::string> RealPath(const std::string& path);
// This process's argument area [start, start + size), where the kernel keeps argv's strings and
// what /proc/<pid>/cmdline shows (arg_start and arg_end of /proc/self/stat). Read once per
// process; {nullptr, 0} when it cannot be read.
std::pair<char*, size_t> OwnArgumentArea();

// The same, relative to a directory fd (e.g. a pinned /proc/<pid>); `what` names it in errors.
Result<std::string> ReadFileAt(int dir_fd, const char* name, const std::string& what);
Result<void> WriteFile(const std::string& path, const std::string& content);

// Makes sure fds 0, 1 and 2 are open (on /dev/null), so no pipe or file is ever given one of them.
void EnsureStandardFds();

}  // namespace packvisor::os
