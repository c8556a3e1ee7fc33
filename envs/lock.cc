#include "envs/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <thread>

namespace packvisor::envs {
namespace {

Result<unique_fd> OpenLockFile(const std::string& path) {
  unique_fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return ErrnoError("open lock", path);
  return fd;
}

}  // namespace

Result<FileLock> FileLock::Acquire(const std::string& path, std::chrono::milliseconds timeout) {
  auto fd = OpenLockFile(path);
  if (!fd) return fd.error();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(5);
  while (flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return ErrnoError("lock", path);
    if (std::chrono::steady_clock::now() >= deadline) {
      return Failure("lock", path, "timed out waiting for another build");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
  return FileLock(std::move(*fd));
}

Result<FileLock> FileLock::AcquireShared(const std::string& path) {
  auto fd = OpenLockFile(path);
  if (!fd) return fd.error();
  while (flock(fd->get(), LOCK_SH) != 0) {
    if (errno != EINTR) return ErrnoError("lock", path);
  }
  return FileLock(std::move(*fd));
}

Result<FileLock> FileLock::TryAcquire(const std::string& path) {
  auto fd = OpenLockFile(path);
  if (!fd) return fd.error();
  if (flock(fd->get(), LOCK_EX | LOCK_NB) != 0) return ErrnoError("lock", path);
  return FileLock(std::move(*fd));
}

}  // namespace packvisor::envs
