#include "sandbox/userns.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "sandbox/os/syscalls.h"

namespace packvisor::sandbox {

std::string IdMapLine(unsigned inside, unsigned host) {
  return std::to_string(inside) + " " + std::to_string(host) + " 1\n";
}

Result<void> WriteIdMaps(pid_t child, const IdMapping& ids) {
  std::string proc = "/proc/" + std::to_string(child);
  PV_TRY(os::WriteFile(proc + "/uid_map", IdMapLine(ids.inside_uid, ids.host_uid)));
  PV_TRY(os::WriteFile(proc + "/gid_map", IdMapLine(ids.inside_gid, ids.host_gid)));
  return Ok{};
}

namespace {

constexpr long kUnchanged = -1;

// The thread's effective and fs ids back to root. Cannot fail while the real and saved ids are 0;
// if it does anyway, nothing this thread would do next is safe.
void RestoreRootIds() {
  if (syscall(SYS_setresuid, kUnchanged, 0, kUnchanged) != 0 ||
      syscall(SYS_setresgid, kUnchanged, 0, kUnchanged) != 0) {
    std::fprintf(stderr, "packvisor: cannot switch the launcher thread back to root (errno %d)\n",
                 errno);
    std::abort();
  }
}

}  // namespace

Result<ScopedNamespaceOwner> ScopedNamespaceOwner::Become(const IdMapping& ids) {
  if (geteuid() != 0 || getuid() != 0) return ScopedNamespaceOwner(false);
  // The gid first: changing it needs CAP_SETGID, which the effective set loses with euid 0.
  if (syscall(SYS_setresgid, kUnchanged, ids.host_gid, kUnchanged) != 0) {
    return ErrnoError("setresgid (user namespace owner)", std::to_string(ids.host_gid));
  }
  if (syscall(SYS_setresuid, kUnchanged, ids.host_uid, kUnchanged) != 0) {
    int saved = errno;
    RestoreRootIds();
    errno = saved;
    return ErrnoError("setresuid (user namespace owner)", std::to_string(ids.host_uid));
  }
  // setfs[ug]id report the previous value, not errors; setting 0 (the real id) is always allowed,
  // and raises the fs capabilities back into the effective set.
  syscall(SYS_setfsuid, 0);
  syscall(SYS_setfsgid, 0);
  return ScopedNamespaceOwner(true);
}

ScopedNamespaceOwner::~ScopedNamespaceOwner() {
  if (active_) RestoreRootIds();
}

Result<void> WriteIdMapsAndResetPolicy(pid_t child, const IdMapping& ids) {
  if (auto written = WriteIdMaps(child, ids); !written) return written;
  int policy = sched_getscheduler(child) & ~SCHED_RESET_ON_FORK;
  if (policy == SCHED_FIFO || policy == SCHED_RR || policy == SCHED_DEADLINE) {
    struct sched_param normal {};
    if (sched_setscheduler(child, SCHED_OTHER, &normal) != 0) {
      return ErrnoError("sched_setscheduler", "sandbox");
    }
  }
  return {};
}

}  // namespace packvisor::sandbox
