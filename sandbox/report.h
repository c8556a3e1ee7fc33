// The child-to-parent protocol: fixed-size messages on the report pipe. Every message is smaller
// than PIPE_BUF, so each write is atomic and needs no allocation.
#pragma once

#include <cstdint>

namespace packvisor::sandbox {

// Every setup step the child performs, in order. A failure names one of these and an errno.
enum class SetupStep : int32_t {
  kNone = 0,
  kParentDeathSignal,
  kWaitForIdMaps,
  kJoinCgroup,  // v1: the child moves itself into the execution cgroup
  kSetGid,
  kSetGroups,
  kSetUid,
  kMountPrivate,
  kMountStagingRoot,
  kPivotRoot,
  kMountPlan,  // detail = index of the failed MountOp
  kDetachOldRoot,
  kRootReadOnly,
  kChdir,
  kSetHostname,
  kLoopbackUp,
  kSetsid,
  kSecurebits,
  kDropBoundingCaps,
  kClearAmbientCaps,
  kDropCaps,
  kNoNewPrivs,
  kSpeculation,  // force-disable speculative store bypass and indirect branch speculation
  kCloseFds,
  kBlockSignals,
  kForkAction,
  kResetSignals,
  kRlimits,  // detail = resource
  kSeccomp,
  kWaitForRelease,
  kExec,
  // Prepared sandboxes (sandbox/warm_pool.h) only: waiting for, or receiving, the claim.
  kWaitForClaim,
};

const char* SetupStepName(SetupStep step);
// A stable identifier ("no_new_privs", "seccomp", ...), used by the test-only fault injection.
const char* SetupStepToken(SetupStep step);
SetupStep SetupStepFromToken(const char* token);  // kNone when unknown

enum class MessageKind : int32_t {
  kSetupFailed = 1,   // step, err, detail
  kActionReady = 2,   // the action is set up and waits for release; detail = its securebits
  kActionExited = 3,  // detail = the action's wait status
  kPrepared = 4,      // a prepared sandbox finished its generic part and waits for a claim
};

struct ChildMessage {
  MessageKind kind;
  SetupStep step;
  int32_t err;
  int32_t detail;
};

}  // namespace packvisor::sandbox
