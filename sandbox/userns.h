// User namespace id maps. Parent side only: the supervisor, as root in the initial namespace,
// writes the maps of the child, which waits for them before changing its ids.
#pragma once

#include <sys/types.h>

#include <string>

#include "sandbox/os/error.h"
#include "sandbox/spec.h"

namespace packvisor::sandbox {

// The text of one uid_map/gid_map line: "inside host 1\n".
std::string IdMapLine(unsigned inside, unsigned host);

// Writes /proc/<pid>/uid_map and gid_map. setgroups stays "allow" so that the child can drop the
// supplementary groups it inherited from root with setgroups(0, NULL) before it drops CAP_SETGID.
Result<void> WriteIdMaps(pid_t child, const IdMapping& ids);

// What the parent does for a cloned sandbox before letting it go on: WriteIdMaps, then take a
// real-time policy inherited from the supervisor away (untrusted code never keeps one: it could
// starve the host, and cgroup v1's cpu controller refuses real-time tasks into a group without an
// RT budget). The reset asks for CAP_SYS_NICE, which a supervisor with a normal policy never uses.
Result<void> WriteIdMapsAndResetPolicy(pid_t child, const IdMapping& ids);

// A new user namespace is owned by its creator's effective uid/gid, and the kernel charges the
// per-user budgets of what is made inside it (inotify instances and watches, user namespaces, ...)
// in the initial namespace to that owner. While alive, this makes the calling thread's effective
// ids the sandbox's host ids, so that a clone3(CLONE_NEWUSER) made under it gives the namespace to
// the pack's own host id: a pack that exhausts such a budget exhausts its own, never root's or
// another pack's (catalog entry 49). The fs ids stay 0, so file and cgroup permission checks
// during the clone (CLONE_INTO_CGROUP) are root's.
//
// Thread-local by construction: raw setres[ug]id syscalls change only this thread (glibc's
// wrappers would change every thread of the supervisor). The real and saved ids stay 0, so the
// switch back cannot be refused; if it ever were, the process aborts rather than go on as the
// pack's uid. A no-op when the caller is not root (the namespace is then the caller's anyway).
class ScopedNamespaceOwner {
 public:
  static Result<ScopedNamespaceOwner> Become(const IdMapping& ids);
  ScopedNamespaceOwner(ScopedNamespaceOwner&& other) noexcept : active_(other.active_) {
    other.active_ = false;
  }
  ScopedNamespaceOwner(const ScopedNamespaceOwner&) = delete;
  ScopedNamespaceOwner& operator=(const ScopedNamespaceOwner&) = delete;
  ScopedNamespaceOwner& operator=(ScopedNamespaceOwner&&) = delete;
  ~ScopedNamespaceOwner();

 private:
  explicit ScopedNamespaceOwner(bool active) : active_(active) {}
  bool active_;
};

}  // namespace packvisor::sandbox
