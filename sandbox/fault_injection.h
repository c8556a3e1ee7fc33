// Test-only fault injection (catalog entry 10): make one setup step fail, or silently skip it, or
// skip the verification from outside, so that tests can show the sandbox fails closed and that the
// verification catches a step that did not take effect. Compiled in only with
// PACKVISOR_TEST_HOOKS (the packvisor-test-hooks binary); in every other build it is always empty.
#pragma once

#include <cstdint>
#include <string>

#include "sandbox/report.h"

namespace packvisor::sandbox {

struct FaultInjection {
  SetupStep fail_step = SetupStep::kNone;  // reports EPERM instead of running the step
  uint64_t skipped_steps = 0;              // bit per SetupStep: does not run it, reports nothing
  bool skip_verification = false;          // releases the action without checking it
  bool no_cgroup = false;  // launches without an execution cgroup (benchmarks: its cost alone)

  bool Skips(SetupStep step) const {
    auto bit = static_cast<uint32_t>(step);
    return step != SetupStep::kNone && bit < 64 && (skipped_steps >> bit & 1U) != 0;
  }
};

// Test builds: PACKVISOR_TEST_FAIL_STEP=<token>, PACKVISOR_TEST_SKIP_STEP=<token>[,<token>...],
// PACKVISOR_TEST_SKIP_VERIFY=1 (tokens from SetupStepToken), PACKVISOR_TEST_NO_CGROUP=1 (used by
// bench/cgroup_bench.sh to measure what the cgroup adds to a launch). Other builds: no faults.
FaultInjection FaultInjectionForLaunch();

// Test builds: PACKVISOR_TEST_PACK_DISK_SOURCE=/dev/loopN makes a pack's disk be mounted from that
// device instead of the one found or attached for the pack's image, as if the device had been
// re-bound to another image between the lookup and the mount (catalog 30: the mount must refuse
// it). Other builds: always empty.
std::string PackDiskSourceOverride();

}  // namespace packvisor::sandbox
