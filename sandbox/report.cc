#include "sandbox/report.h"

namespace packvisor::sandbox {

const char* SetupStepName(SetupStep step) {
  switch (step) {
    case SetupStep::kNone: return "none";
    case SetupStep::kParentDeathSignal: return "set parent-death signal";
    case SetupStep::kWaitForIdMaps: return "wait for id maps";
    case SetupStep::kSetGid: return "setresgid";
    case SetupStep::kSetGroups: return "setgroups";
    case SetupStep::kSetUid: return "setresuid";
    case SetupStep::kMountPrivate: return "make mounts private";
    case SetupStep::kMountStagingRoot: return "mount new root tmpfs";
    case SetupStep::kPivotRoot: return "pivot_root";
    case SetupStep::kMountPlan: return "mount";
    case SetupStep::kDetachOldRoot: return "detach old root";
    case SetupStep::kRootReadOnly: return "make root read-only";
    case SetupStep::kChdir: return "chdir to working directory";
    case SetupStep::kSetHostname: return "sethostname";
    case SetupStep::kLoopbackUp: return "bring up loopback";
    case SetupStep::kSetsid: return "setsid";
    case SetupStep::kSecurebits: return "lock securebits";
    case SetupStep::kDropBoundingCaps: return "drop bounding capabilities";
    case SetupStep::kClearAmbientCaps: return "clear ambient capabilities";
    case SetupStep::kDropCaps: return "drop capabilities";
    case SetupStep::kNoNewPrivs: return "set no_new_privs";
    case SetupStep::kCloseFds: return "close inherited fds";
    case SetupStep::kBlockSignals: return "block signals in init";
    case SetupStep::kForkAction: return "fork action";
    case SetupStep::kResetSignals: return "reset signal dispositions";
    case SetupStep::kRlimits: return "setrlimit";
    case SetupStep::kSeccomp: return "load seccomp filter";
    case SetupStep::kWaitForRelease: return "wait for release";
    case SetupStep::kExec: return "exec";
  }
  return "unknown step";
}

}  // namespace packvisor::sandbox
