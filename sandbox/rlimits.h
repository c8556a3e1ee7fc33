// Resource limits, computed by the parent and applied by the action process before exec.
#pragma once

#include <sys/resource.h>

#include <array>

#include "sandbox/spec.h"

namespace packvisor::sandbox {

struct RlimitPlan {
  struct Entry {
    int resource;
    struct rlimit value;
  };
  std::array<Entry, 4> entries;
};

RlimitPlan BuildRlimitPlan(const ResourceLimits& limits);

// Child side: returns 0 or an errno; *failed_resource names the resource that failed.
int ApplyRlimits(const RlimitPlan& plan, int* failed_resource);

}  // namespace packvisor::sandbox
