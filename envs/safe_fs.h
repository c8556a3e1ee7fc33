// Filesystem operations the root supervisor performs inside trees that sandboxed code could have
// written (environments, staging directories). Every one is relative to a directory fd, never
// follows a symlink (O_NOFOLLOW, openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), and never crosses
// onto another filesystem.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor::envs {

// Opens (O_PATH-free, readable) the directory `name` directly beneath `dirfd`; `name` is one
// path component. Fails on symlinks.
Result<unique_fd> OpenDirBeneath(int dirfd, const std::string& name);

// Opens an absolute directory path that must not contain any symlink. Creates missing
// components with `mode` when create is true (root-owned).
Result<unique_fd> OpenDirPath(const std::string& path, bool create, mode_t mode = 0755);

// The names in the open directory `dirfd` (not "." and ".."); the fd itself is left as it was.
Result<std::vector<std::string>> DirectoryEntriesAt(int dirfd);

// Removes `name` beneath `dirfd` and everything under it, without following symlinks (a symlink
// is removed, never its target) and without leaving the filesystem of `dirfd`. Missing is fine.
Result<void> RemoveTreeAt(int dirfd, const std::string& name);

// Total apparent size in bytes of the tree `name` beneath `dirfd` (links not followed); stops
// and reports once `stop_after` is exceeded.
Result<uint64_t> TreeSizeAt(int dirfd, const std::string& name, uint64_t stop_after = UINT64_MAX);

// chown -R without following links (lchown semantics, fd-relative).
Result<void> ChownTreeAt(int dirfd, const std::string& name, uid_t uid, gid_t gid);

// Reads a small regular file beneath dirfd without following symlinks (at most max_bytes).
Result<std::string> ReadSmallFileAt(int dirfd, const std::string& name, size_t max_bytes);

// Writes `content` to `name` beneath dirfd atomically (temp file + fsync + renameat), mode 0644.
Result<void> WriteFileAtomicAt(int dirfd, const std::string& name, const std::string& content);

// A random suffix for staging names.
std::string RandomSuffix();

}  // namespace packvisor::envs
