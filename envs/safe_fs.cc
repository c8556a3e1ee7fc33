#include "envs/safe_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "sandbox/os/syscalls.h"

namespace packvisor::envs {
namespace {

constexpr uint64_t kBeneath =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

bool IsSingleComponent(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

template <typename Visit>
Result<void> WalkAt(int dirfd, const std::string& name, dev_t device, Visit& visit, int depth) {
  if (depth > 256) return Failure("walk", name, "directory tree too deep");
  struct stat st {};
  if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Ok{};
    return ErrnoError("stat", name);
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != device) return Failure("walk", name, "crosses onto another filesystem");
    auto child = os::OpenNoSymlinks(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!child) return child.error();
    auto names = DirectoryEntriesAt(child->get());
    if (!names) return names.error();
    for (const std::string& entry : *names) {
      PV_TRY(WalkAt(child->get(), entry, device, visit, depth + 1));
    }
  }
  return visit(dirfd, name, st);
}

}  // namespace

Result<std::vector<std::string>> DirectoryEntriesAt(int dirfd) {
  int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return ErrnoError("dup", "directory");
  DIR* dir = fdopendir(dup);
  if (dir == nullptr) {
    unique_fd owned(dup);
    return ErrnoError("fdopendir", "directory");
  }
  rewinddir(dir);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  int err = errno;
  closedir(dir);
  if (err != 0) return Error{err, "readdir", "directory"};
  return names;
}

Result<unique_fd> OpenDirBeneath(int dirfd, const std::string& name) {
  if (!IsSingleComponent(name)) return Failure("open directory", name, "not a single component");
  // One component: the only mount it can cross onto is one at `name` itself, and only root can
  // make those (a pack's disk, envs/pack_disk.h), so entering it is allowed.
  int fd = os::Openat2(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                       kBeneath & ~static_cast<uint64_t>(RESOLVE_NO_XDEV));
  if (fd < 0) return ErrnoError("open directory", name);
  return unique_fd(fd);
}

Result<unique_fd> OpenDirPath(const std::string& path, bool create, mode_t mode) {
  if (path.empty() || path[0] != '/') return Failure("open directory", path, "not absolute");
  unique_fd current(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!current) return ErrnoError("open", "/");
  size_t start = 1;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    if (part == "." || part == "..") return Failure("open directory", path, "not normalized");
    if (create && mkdirat(current.get(), part.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoError("mkdir", path);
    }
    int fd =
        os::Openat2(current.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (fd < 0) return ErrnoError("open directory", path);
    current.reset(fd);
  }
  return current;
}

namespace {

constexpr int kRemoveDepth = 32;

// Removes `name` beneath `dirfd` down to kRemoveDepth; deeper directories are moved up into
// `top_fd` (same filesystem) under fresh names queued in `later`, so that a tree of any depth
// is removed with a bounded number of open descriptors.
Result<void> RemoveBounded(int dirfd, const std::string& name, dev_t device, int top_fd,
                           std::vector<std::string>& later, int depth) {
  struct stat st {};
  if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Ok{};
    return ErrnoError("stat", name);
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != device) return Failure("remove", name, "crosses onto another filesystem");
    if (depth >= kRemoveDepth) {
      std::string moved = ".packvisor-remove-" + RandomSuffix();
      if (renameat(dirfd, name.c_str(), top_fd, moved.c_str()) != 0) {
        return ErrnoError("move up for removal", name);
      }
      later.push_back(moved);
      return Ok{};
    }
    auto child = os::OpenNoSymlinks(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!child) return child.error();
    auto names = DirectoryEntriesAt(child->get());
    if (!names) return names.error();
    for (const std::string& entry : *names) {
      PV_TRY(RemoveBounded(child->get(), entry, device, top_fd, later, depth + 1));
    }
  }
  int flags = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
  if (unlinkat(dirfd, name.c_str(), flags) != 0 && errno != ENOENT) {
    return ErrnoError("remove", name);
  }
  return Ok{};
}

}  // namespace

Result<void> RemoveTreeAt(int dirfd, const std::string& name) {
  if (!IsSingleComponent(name)) return Failure("remove", name, "not a single component");
  struct stat parent {};
  if (fstat(dirfd, &parent) != 0) return ErrnoError("stat", "parent directory");
  std::vector<std::string> pending = {name};
  while (!pending.empty()) {
    std::string next = pending.back();
    pending.pop_back();
    PV_TRY(RemoveBounded(dirfd, next, parent.st_dev, dirfd, pending, 0));
  }
  return Ok{};
}

Result<uint64_t> TreeSizeAt(int dirfd, const std::string& name, uint64_t stop_after) {
  struct stat parent {};
  if (fstat(dirfd, &parent) != 0) return ErrnoError("stat", "parent directory");
  uint64_t total = 0;
  auto add = [&](int, const std::string& entry, const struct stat& st) -> Result<void> {
    total += static_cast<uint64_t>(st.st_blocks) * 512;
    if (total > stop_after) return Failure("size", entry, "limit exceeded");
    return Ok{};
  };
  auto walked = WalkAt(dirfd, name, parent.st_dev, add, 0);
  if (!walked && total <= stop_after) return walked.error();
  return total;
}

Result<void> ChownTreeAt(int dirfd, const std::string& name, uid_t uid, gid_t gid) {
  struct stat parent {};
  if (fstat(dirfd, &parent) != 0) return ErrnoError("stat", "parent directory");
  auto chown = [&](int at, const std::string& entry, const struct stat&) -> Result<void> {
    if (fchownat(at, entry.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError("chown", entry);
    }
    return Ok{};
  };
  return WalkAt(dirfd, name, parent.st_dev, chown, 0);
}

Result<std::string> ReadSmallFileAt(int dirfd, const std::string& name, size_t max_bytes) {
  int fd =
      os::Openat2(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0, kBeneath);
  if (fd < 0) return ErrnoError("open", name);
  unique_fd file(fd);
  struct stat st {};
  if (fstat(file.get(), &st) != 0) return ErrnoError("stat", name);
  if (!S_ISREG(st.st_mode)) return Failure("read", name, "not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return Failure("read", name, "file too large");
  // Sized from the file, not from the limit: callers pass generous limits for small files.
  std::string content;
  content.reserve(static_cast<size_t>(st.st_size));
  char buffer[8192];
  for (;;) {
    ssize_t n = read(file.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read", name);
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
    if (content.size() > max_bytes) return Failure("read", name, "file too large");
  }
  return content;
}

Result<void> WriteFileAtomicAt(int dirfd, const std::string& name, const std::string& content) {
  std::string temp = "." + name + ".tmp-" + RandomSuffix();
  unique_fd file(
      openat(dirfd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!file) return ErrnoError("create", temp);
  auto written = os::WriteAll(file.get(), content.data(), content.size(), temp);
  if (written && fsync(file.get()) != 0) written = ErrnoError("fsync", temp);
  if (written && renameat(dirfd, temp.c_str(), dirfd, name.c_str()) != 0) {
    written = ErrnoError("rename", name);
  }
  if (!written) unlinkat(dirfd, temp.c_str(), 0);
  return written;
}

std::string RandomSuffix() {
  unsigned char bytes[8] = {};
  (void)!getrandom(bytes, sizeof(bytes), 0);
  char text[17];
  for (int i = 0; i < 8; ++i) std::snprintf(text + 2 * i, 3, "%02x", bytes[i]);
  return text;
}

}  // namespace packvisor::envs
