// The claim of a prepared sandbox (sandbox/warm_pool.h): what the launcher sends to a sandbox
// that has done the generic part of its setup and waits. One ClaimMessage on the sandbox's
// control socket carries the execution's descriptors (SCM_RIGHTS, in ClaimFd order, then one per
// mount op that moves a detached tree); everything else (argv, environment, files for /tmp,
// working directory, rlimits) is in a memfd laid out as below, which the sandbox maps privately
// and relocates in place: the child stays allocation-free.
#pragma once

#include <cstdint>

#include "sandbox/rlimits.h"

namespace packvisor::sandbox {

inline constexpr uint32_t kClaimMagic = 0x70766331;  // "pvc1"

enum ClaimFd : int {
  kClaimStdin = 0,  // read end of the stdin pipe
  kClaimStdout,     // write ends of the output pipes
  kClaimStderr,
  kClaimReport,   // write end: ChildMessage records, as in a fresh launch
  kClaimRelease,  // read end: one byte once the launcher has verified the action
  kClaimPayload,  // the memfd
  kClaimFixedFds,
};
// The fixed descriptors and the pack and env trees.
inline constexpr int kMaxClaimFds = kClaimFixedFds + 2;

struct ClaimMessage {
  uint32_t magic = kClaimMagic;
  uint32_t fd_count = 0;
};

// One mount op of the claim (pack and env trees, files written into /tmp). Offsets are from the
// payload's start; 0 means none.
struct ClaimOp {
  uint32_t kind;     // MountOpKind
  int32_t fd_index;  // index in the claim's descriptors of the detached tree, or -1
  uint64_t source;   // offset of the bytes (file content, bind source)
  uint64_t source_size;
  uint64_t target;  // offset of a NUL-terminated path
  uint64_t attr_set;
  uint64_t attr_clr;
  uint32_t mode;
  uint32_t reserved;
};

// At offset 0 of the payload. The arrays hold offsets of NUL-terminated strings and end with 0;
// the child turns them into pointers in its private mapping.
struct ClaimPayload {
  uint64_t size;  // of the whole payload
  uint64_t argv;
  uint64_t envp;
  uint64_t exec_candidates;
  uint64_t working_dir;  // offset of the path
  uint64_t ops;          // offset of `op_count` ClaimOp records
  uint64_t op_count;
  RlimitPlan rlimits;
};

}  // namespace packvisor::sandbox
