// One environment build at a time across processes: an flock on a file under
// state_dir/locks. The kernel drops the lock when its holder dies, so a dead builder never leaves
// a stale lock behind.
#pragma once

#include <chrono>
#include <string>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor::envs {

class FileLock {
 public:
  // Blocks until the exclusive lock on `path` (created 0600 if missing) is held, or `timeout`.
  static Result<FileLock> Acquire(const std::string& path, std::chrono::milliseconds timeout);
  // Shared lock: held by executions that use an environment, so that removal waits for them.
  static Result<FileLock> AcquireShared(const std::string& path);
  // Exclusive lock if free right now; an error with EWOULDBLOCK otherwise.
  static Result<FileLock> TryAcquire(const std::string& path);

  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;

 private:
  explicit FileLock(unique_fd fd) : fd_(std::move(fd)) {}
  unique_fd fd_;
};

}  // namespace packvisor::envs
