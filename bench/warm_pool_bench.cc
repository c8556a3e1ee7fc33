// Times RunSandbox of /bin/true in one process, fresh and claimed from a warm pool
// (sandbox/warm_pool.h), alternating, with a cgroup under PARENT. Between two claims the pool is
// let refill (not timed): what is measured is a claim that finds a prepared sandbox.
//
//   g++ -std=c++20 -O2 -I. -o /tmp/warm_pool_bench bench/warm_pool_bench.cc \
//     build/sandbox/libpackvisor_sandbox.a $(pkg-config --libs libseccomp libcap) -pthread
//   sudo /tmp/warm_pool_bench [RUNS] [PARENT]       (root)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sandbox/launcher.h"
#include "sandbox/warm_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(p * static_cast<double>(values.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace packvisor::sandbox;
  int runs = argc > 1 ? std::atoi(argv[1]) : 200;
  std::string parent = argc > 2 ? argv[2] : "packvisor-bench";
  SandboxSpec spec;
  spec.argv = {"/bin/true"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cgroup = CgroupLimits{};
  spec.cgroup_parent = parent;
  auto pool = WarmPool::Create({{spec}, 1});
  if (!pool) {
    std::fprintf(stderr, "%s\n", pool.error().message().c_str());
    return 1;
  }
  std::vector<double> fresh, claimed;
  for (int i = 0; i < runs; ++i) {
    for (WarmPool* use : {static_cast<WarmPool*>(nullptr), pool->get()}) {
      if (use != nullptr && !(*pool)->WaitUntilFull()) return 1;
      StringSink out, err;
      LaunchIo io;
      io.stdout_sink = &out;
      io.stderr_sink = &err;
      auto start = Clock::now();
      auto result = RunSandbox(spec, io, use);
      double ms = Ms(Clock::now() - start);
      if (!result || result->outcome != Outcome::kExited || result->exit_code != 0) {
        std::fprintf(stderr, "launch failed: %s\n",
                     result ? result->FailureMessage().c_str() : result.error().message().c_str());
        return 1;
      }
      (use == nullptr ? fresh : claimed).push_back(ms);
    }
  }
  std::printf("RunSandbox(/bin/true), %d runs each, ms: median p90 min\n", runs);
  std::printf("fresh    %.3f %.3f %.3f\n", Percentile(fresh, 0.5), Percentile(fresh, 0.9),
              Percentile(fresh, 0.0));
  std::printf("claimed  %.3f %.3f %.3f\n", Percentile(claimed, 0.5), Percentile(claimed, 0.9),
              Percentile(claimed, 0.0));
  return 0;
}
