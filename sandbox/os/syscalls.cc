#include "sandbox/os/syscalls.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <sstream>

namespace packvisor::os {

pid_t Clone3(const Clone3Args& args) {
  struct clone_args kargs {};
  kargs.flags = args.flags;
  kargs.pidfd = reinterpret_cast<uint64_t>(args.pidfd);
  kargs.exit_signal = static_cast<uint64_t>(args.exit_signal);
  if (args.cgroup_fd >= 0) kargs.cgroup = static_cast<uint64_t>(args.cgroup_fd);
  return static_cast<pid_t>(syscall(SYS_clone3, &kargs, sizeof(kargs)));
}

int PidfdSendSignal(int pidfd, int signal) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

int PivotRoot(const char* new_root, const char* put_old) {
  return static_cast<int>(syscall(SYS_pivot_root, new_root, put_old));
}

int MountSetattr(const char* path, bool recursive, uint64_t attr_set, uint64_t attr_clr) {
  struct mount_attr attr {};
  attr.attr_set = attr_set;
  attr.attr_clr = attr_clr;
  unsigned flags = AT_SYMLINK_NOFOLLOW | (recursive ? AT_RECURSIVE : 0);
  return static_cast<int>(syscall(SYS_mount_setattr, AT_FDCWD, path, flags, &attr, sizeof(attr)));
}

int CloseRange(unsigned first, unsigned last, unsigned flags) {
  return static_cast<int>(syscall(SYS_close_range, first, last, flags));
}

int Openat2(int dirfd, const char* path, uint64_t flags, uint64_t mode, uint64_t resolve) {
  struct open_how how {};
  how.flags = flags;
  how.mode = mode;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

Result<unique_fd> OpenNoSymlinks(int dirfd, const std::string& path, int flags) {
  uint64_t resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  if (dirfd != AT_FDCWD) resolve |= RESOLVE_BENEATH;
  int fd;
  do {
    fd = Openat2(dirfd, path.c_str(), static_cast<uint64_t>(flags | O_CLOEXEC), 0, resolve);
  } while (fd < 0 && errno == EAGAIN);
  if (fd < 0) return ErrnoError("open", path);
  return unique_fd(fd);
}

Result<void> WriteAll(int fd, const void* data, size_t size, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", what);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Ok{};
}

namespace {

Result<std::string> ReadAll(unique_fd fd, const std::string& what) {
  std::string content;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", what);
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  return content;
}

}  // namespace

std::optional<std::string> RealPath(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) return std::nullopt;
  std::string out(real);
  std::free(real);
  return out;
}

Result<std::string> ReadFile(const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return ErrnoError("open", path);
  return ReadAll(std::move(fd), path);
}

Result<std::string> ReadFileAt(int dir_fd, const char* name, const std::string& what) {
  unique_fd fd(::openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW));
  if (!fd) return ErrnoError("open", what + "/" + name);
  return ReadAll(std::move(fd), what + "/" + name);
}

std::pair<char*, size_t> OwnArgumentArea() {
  static const std::pair<char*, size_t> area = []() -> std::pair<char*, size_t> {
    auto stat = ReadFile("/proc/self/stat");
    if (!stat) return {nullptr, 0};
    // Fields after the command name, which is in parentheses and may hold anything: field 3
    // (state) first, arg_start and arg_end are fields 48 and 49.
    size_t close = stat->rfind(')');
    if (close == std::string::npos) return {nullptr, 0};
    std::istringstream fields(stat->substr(close + 1));
    std::string field;
    unsigned long long start = 0, end = 0;
    for (int number = 3; number <= 49 && fields >> field; ++number) {
      if (number == 48) start = std::strtoull(field.c_str(), nullptr, 10);
      if (number == 49) end = std::strtoull(field.c_str(), nullptr, 10);
    }
    if (start == 0 || end <= start || end - start > (16u << 20)) return {nullptr, 0};
    return {reinterpret_cast<char*>(static_cast<uintptr_t>(start)),
            static_cast<size_t>(end - start)};
  }();
  return area;
}

Result<void> WriteFile(const std::string& path, const std::string& content) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW));
  if (!fd) return ErrnoError("open", path);
  return WriteAll(fd.get(), content.data(), content.size(), path);
}

void EnsureStandardFds() {
  for (int fd = 0; fd < 3; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0) continue;
    // Deliberately not O_CLOEXEC and not owned: it becomes the process's stdin/stdout/stderr.
    int opened = ::open("/dev/null", O_RDWR);
    if (opened >= 0 && opened != fd) {
      dup2(opened, fd);
      unique_fd discard(opened);
    }
  }
}

}  // namespace packvisor::os
