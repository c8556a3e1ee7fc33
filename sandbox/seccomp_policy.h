// The seccomp profile, as code. Compiled with libseccomp in the parent and exported to classic BPF
// before clone; the child only loads the program (the last step before exec).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/os/error.h"

namespace packvisor::sandbox {

// The highest x86_64 syscall number whose call was reviewed for the policy (450,
// set_mempolicy_home_node: the newest call in Docker's default profile's era; libseccomp 2.5.4's
// table ends at 456). Every native call numbered above it fails with ENOSYS, so a call added by a
// newer kernel (cachestat, fchmodat2, map_shadow_stack, futex_wake, mseal, ...) is refused until
// someone reviews it and raises this number; libc falls back on ENOSYS as on an older kernel.
constexpr uint32_t kHighestReviewedSyscall = 450;

// sandbox.seccomp_mode (docs/config.md). kDeny: the deny list on a default-allow filter. kAllow:
// in addition, only AllowListSyscalls() pass; every other call fails with EPERM (calls above
// kHighestReviewedSyscall still fail with ENOSYS).
enum class SeccompMode { kDeny, kAllow };

struct SeccompOptions {
  bool allow_io_uring = false;  // a runtime may opt in (deny mode only: no allow list has it)
  SeccompMode mode = SeccompMode::kDeny;
};

// The allow list of SeccompMode::kAllow: the calls python, node and the shell made in the
// sandbox over the demo and the test packs (measured with strace; docs/threat-model.md,
// "Allow-list mode"), plus those packvisor's init and signal paths need. A call on it still
// meets the deny list (TIOCSTI, socket families, clone flags, pkey_alloc, ...).
std::vector<std::string> AllowListSyscalls();

// One entry of the deny list: the syscall and the errno it fails with. When `conditional`, the
// call is denied only for some arguments (namespace flags, TIOCSTI, device nodes, ...).
struct DeniedSyscall {
  std::string name;
  int err;
  bool conditional;
};

// The deny list for these options, in the order the rules are added.
std::vector<DeniedSyscall> DeniedSyscalls(const SeccompOptions& options);

// Socket families that stay allowed; every other family fails with EAFNOSUPPORT.
// AF_NETLINK is allowed only with protocol NETLINK_ROUTE (the namespace's own interfaces).
std::vector<int> AllowedSocketFamilies();

struct SeccompProgram {
  std::vector<sock_filter> instructions;
  sock_fprog AsFprog() const;
};

// Builds the filter for the native architecture only (any other arch kills the process; on
// x86_64 the x32 ABI counts as another arch) and exports it to BPF, preceded by the ENOSYS rule
// for calls numbered above kHighestReviewedSyscall. In kAllow mode the allow-list program runs
// first and its "allow" answers continue into the deny-list program, so a call passes only if
// both let it through.
Result<SeccompProgram> CompileSeccompPolicy(const SeccompOptions& options);

// The same programs, compiled at build time (sandbox/seccomp_gen.cc) and embedded: what a launch
// loads. Thread-safe.
const SeccompProgram& BuiltinSeccompProgram(const SeccompOptions& options);

// Child side: installs the program (no_new_privs must already be set). Returns 0 or an errno.
int LoadSeccompProgram(const sock_fprog& program);

}  // namespace packvisor::sandbox
