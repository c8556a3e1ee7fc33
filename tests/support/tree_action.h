// A shell action that leaves a process tree to kill (tests of cancel, drain and killed
// supervisors, through the daemon and the queue worker), and the check that nothing of it is left.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "tests/support/cgroup_fixtures.h"
#include "tests/support/harness.h"

namespace packvisor::testing {

// Waits for /pack/gate-GATE; MARKER names a background child (a tree to kill) that also waits.
// Prints "started" at once and "finished" once the gate is open. Parameters: kTreeParameters.
inline constexpr char kTreeScript[] =
    "doc=$(cat)\n"
    "field() { printf '%s' \"$doc\" | sed -n \"s/.*\\\"$1\\\": *\\\"\\([^\\\"]*\\)\\\".*/\\1/p\"; "
    "}\n"
    "gate=/pack/gate-$(field gate); marker=$(field marker)\n"
    "sh -c \"while [ ! -e $gate ]; do sleep 0.02; done; : $marker\" &\n"
    "echo started\n"
    "while [ ! -e \"$gate\" ]; do sleep 0.02; done\n"
    "echo finished\n";

inline constexpr char kTreeParameters[] =
    "parameters:\n  gate: {type: string, required: true}\n"
    "  marker: {type: string, required: true}\n";

// No process of `marker` is left (waited for, up to 10 s; survivors are killed after the failure)
// and no cgroup below `cgroup`.
inline void ExpectNoProcessOrCgroupLeft(const std::string& marker,
                                        const ScopedCgroupParent& cgroup) {
  std::vector<pid_t> left = WaitForNoProcessesWithMarker(marker, 10000);
  EXPECT_THAT(left, ::testing::IsEmpty()) << "processes of the sandbox survived";
  for (pid_t pid : left) kill(pid, SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return cgroup.Children().empty(); }, 10000))
      << "cgroups left: " << JoinLines(cgroup.Children());
}

}  // namespace packvisor::testing
