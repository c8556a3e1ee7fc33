#include "sandbox/report.h"

#include <cstring>

namespace packvisor::sandbox {

const char* SetupStepName(SetupStep step) {
  switch (step) {
    case SetupStep::kNone:
      return "none";
    case SetupStep::kParentDeathSignal:
      return "set parent-death signal";
    case SetupStep::kWaitForIdMaps:
      return "wait for id maps";
    case SetupStep::kJoinCgroup:
      return "join the execution cgroup";
    case SetupStep::kSetGid:
      return "setresgid";
    case SetupStep::kSetGroups:
      return "setgroups";
    case SetupStep::kSetUid:
      return "setresuid";
    case SetupStep::kMountPrivate:
      return "make mounts private";
    case SetupStep::kMountStagingRoot:
      return "mount new root tmpfs";
    case SetupStep::kPivotRoot:
      return "pivot_root";
    case SetupStep::kMountPlan:
      return "mount";
    case SetupStep::kDetachOldRoot:
      return "detach old root";
    case SetupStep::kRootReadOnly:
      return "make root read-only";
    case SetupStep::kChdir:
      return "chdir to working directory";
    case SetupStep::kSetHostname:
      return "sethostname";
    case SetupStep::kLoopbackUp:
      return "bring up loopback";
    case SetupStep::kSetsid:
      return "setsid";
    case SetupStep::kSecurebits:
      return "lock securebits";
    case SetupStep::kDropBoundingCaps:
      return "drop bounding capabilities";
    case SetupStep::kClearAmbientCaps:
      return "clear ambient capabilities";
    case SetupStep::kDropCaps:
      return "drop capabilities";
    case SetupStep::kNoNewPrivs:
      return "set no_new_privs";
    case SetupStep::kSpeculation:
      return "force speculation mitigations";
    case SetupStep::kCloseFds:
      return "close inherited fds";
    case SetupStep::kBlockSignals:
      return "block signals in init";
    case SetupStep::kForkAction:
      return "fork action";
    case SetupStep::kResetSignals:
      return "reset signal dispositions";
    case SetupStep::kRlimits:
      return "setrlimit";
    case SetupStep::kSeccomp:
      return "load seccomp filter";
    case SetupStep::kWaitForRelease:
      return "wait for release";
    case SetupStep::kExec:
      return "exec";
    case SetupStep::kWaitForClaim:
      return "wait for claim";
  }
  return "unknown step";
}

const char* SetupStepToken(SetupStep step) {
  switch (step) {
    case SetupStep::kNone:
      return "none";
    case SetupStep::kParentDeathSignal:
      return "pdeathsig";
    case SetupStep::kWaitForIdMaps:
      return "wait_id_maps";
    case SetupStep::kJoinCgroup:
      return "join_cgroup";
    case SetupStep::kSetGid:
      return "setgid";
    case SetupStep::kSetGroups:
      return "setgroups";
    case SetupStep::kSetUid:
      return "setuid";
    case SetupStep::kMountPrivate:
      return "mount_private";
    case SetupStep::kMountStagingRoot:
      return "mount_staging_root";
    case SetupStep::kPivotRoot:
      return "pivot_root";
    case SetupStep::kMountPlan:
      return "mount_plan";
    case SetupStep::kDetachOldRoot:
      return "detach_old_root";
    case SetupStep::kRootReadOnly:
      return "root_read_only";
    case SetupStep::kChdir:
      return "chdir";
    case SetupStep::kSetHostname:
      return "sethostname";
    case SetupStep::kLoopbackUp:
      return "loopback";
    case SetupStep::kSetsid:
      return "setsid";
    case SetupStep::kSecurebits:
      return "securebits";
    case SetupStep::kDropBoundingCaps:
      return "drop_bounding_caps";
    case SetupStep::kClearAmbientCaps:
      return "clear_ambient_caps";
    case SetupStep::kDropCaps:
      return "drop_caps";
    case SetupStep::kNoNewPrivs:
      return "no_new_privs";
    case SetupStep::kSpeculation:
      return "speculation";
    case SetupStep::kCloseFds:
      return "close_fds";
    case SetupStep::kBlockSignals:
      return "block_signals";
    case SetupStep::kForkAction:
      return "fork_action";
    case SetupStep::kResetSignals:
      return "reset_signals";
    case SetupStep::kRlimits:
      return "rlimits";
    case SetupStep::kSeccomp:
      return "seccomp";
    case SetupStep::kWaitForRelease:
      return "wait_release";
    case SetupStep::kExec:
      return "exec";
    case SetupStep::kWaitForClaim:
      return "wait_claim";
  }
  return "unknown";
}

SetupStep SetupStepFromToken(const char* token) {
  for (int i = 0; i <= static_cast<int>(SetupStep::kWaitForClaim); ++i) {
    auto step = static_cast<SetupStep>(i);
    if (std::strcmp(SetupStepToken(step), token) == 0) return step;
  }
  return SetupStep::kNone;
}

}  // namespace packvisor::sandbox
