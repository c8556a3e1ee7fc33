// Times, inside one process, what an execution cgroup costs the supervisor: creating it with its
// limits, moving a process into it (v1; a no-op on v2, where clone3 places the child), reading the
// usage after the process is gone, and killing and removing the group. A forked child that only
// waits for a byte and exits stands in for the sandbox. GAP_MS of idle time before each iteration
// shows the cost of an isolated launch: on cgroup v1 without `favordynmods`, moving a process
// (cgroup.procs) takes the kernel's global cgroup_threadgroup_rwsem for writing, which waits for
// an RCU grace period unless another migration happened within the last one.
//
//   cgroup_phase PARENT [ITERATIONS [GAP_MS]]   (root; built and run by bench/cgroup_bench.sh)
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"

namespace {

using Clock = std::chrono::steady_clock;
using packvisor::sandbox::CgroupLayout;
using packvisor::sandbox::CgroupLimits;
using packvisor::sandbox::ExecutionCgroup;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(p * static_cast<double>(values.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cgroup_phase PARENT [ITERATIONS [GAP_MS]]\n");
    return 2;
  }
  const std::string parent = argv[1];
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 300;
  const int gap_ms = argc > 3 ? std::atoi(argv[3]) : 0;
  const CgroupLayout& layout = CgroupLayout::Probe();
  if (layout.backend == packvisor::sandbox::CgroupBackend::kNone) {
    std::fprintf(stderr, "no cgroup back end: %s\n", layout.why_none.c_str());
    return 1;
  }
  std::vector<double> create, adopt, usage, remove, total;
  for (int i = 0; i < iterations; ++i) {
    if (gap_ms > 0) usleep(static_cast<useconds_t>(gap_ms) * 1000);
    // As the launcher does: create the group, open its v1 `tasks` files, and let the child move
    // itself in by writing "0" (v2: the child would be cloned into it; nothing to join).
    std::optional<ExecutionCgroup> group;
    auto t0 = Clock::now();
    auto created = ExecutionCgroup::Create(
        layout, parent, std::to_string(getpid()) + "-phase" + std::to_string(i), CgroupLimits{});
    if (!created) {
      std::fprintf(stderr, "create: %s\n", created.error().message().c_str());
      return 1;
    }
    group.emplace(std::move(*created));
    auto join_fds = group->OpenJoinFds();
    if (!join_fds) {
      std::fprintf(stderr, "open join fds: %s\n", join_fds.error().message().c_str());
      return 1;
    }
    auto t1 = Clock::now();
    int report[2];
    if (pipe(report) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
      auto start = Clock::now();
      for (const auto& fd : *join_fds) {
        if (write(fd.get(), "0", 1) != 1) _exit(1);
      }
      double joined = Ms(Clock::now() - start);
      _exit(write(report[1], &joined, sizeof(joined)) == sizeof(joined) ? 0 : 1);
    }
    close(report[1]);
    double child_join_ms = -1;
    if (read(report[0], &child_join_ms, sizeof(child_join_ms)) != sizeof(child_join_ms)) {
      std::fprintf(stderr, "join: the child could not move itself in\n");
      return 1;
    }
    close(report[0]);
    join_fds->clear();
    waitpid(child, nullptr, 0);
    auto t3 = Clock::now();
    (void)group->ReadUsage();
    auto t4 = Clock::now();
    group.reset();
    auto t5 = Clock::now();
    auto t2 = t1 + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double, std::milli>(child_join_ms));
    create.push_back(Ms(t1 - t0));
    adopt.push_back(Ms(t2 - t1));
    usage.push_back(Ms(t4 - t3));
    remove.push_back(Ms(t5 - t4));
    total.push_back(Ms(t2 - t0) + Ms(t5 - t3));
  }
  std::printf(
      "supervisor-side cgroup cost (%s back end), %d iterations, %d ms idle before each, ms:\n",
      packvisor::sandbox::CgroupBackendName(layout.backend), iterations, gap_ms);
  for (auto [name, values] : {std::pair{"create+limits", &create},
                              std::pair{"join (child)", &adopt}, std::pair{"read usage", &usage},
                              std::pair{"kill+remove", &remove}, std::pair{"total", &total}}) {
    std::printf("  %-14s median %6.3f  p90 %6.3f  max %6.3f\n", name, Percentile(*values, 0.5),
                Percentile(*values, 0.9), Percentile(*values, 1.0));
  }
  return 0;
}
