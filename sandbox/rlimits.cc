#include "sandbox/rlimits.h"

#include <cerrno>

namespace packvisor::sandbox {

RlimitPlan BuildRlimitPlan(const ResourceLimits& limits) {
  auto both = [](uint64_t v) { return rlimit{static_cast<rlim_t>(v), static_cast<rlim_t>(v)}; };
  return RlimitPlan{{{
      {RLIMIT_CORE, both(0)},  // no core dumps: they would hold secrets (catalog entry 40)
      {RLIMIT_NOFILE, both(limits.nofile)},
      {RLIMIT_NPROC, both(limits.nproc)},
      {RLIMIT_FSIZE, both(limits.fsize_bytes)},
  }}};
}

int ApplyRlimits(const RlimitPlan& plan, int* failed_resource) {
  for (const auto& entry : plan.entries) {
    if (setrlimit(static_cast<__rlimit_resource>(entry.resource), &entry.value) != 0) {
      *failed_resource = entry.resource;
      return errno;
    }
  }
  return 0;
}

}  // namespace packvisor::sandbox
