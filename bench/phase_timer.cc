// Times the phases of one `packvisor exec -- /bin/true` inside one process, to see where a launch
// spends its time: compiling the seccomp policy, building the spec, and RunSandbox as a whole
// (wall clock and the CPU time of the supervisor and of the sandbox processes it reaped).
//
//   phase_timer [ITERATIONS]     (root; built and run by bench/exec_bench.sh --phases)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sandbox/launcher.h"
#include "sandbox/seccomp_policy.h"
#include "supervisor/config/config.h"
#include "supervisor/config/sandbox_defaults.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double CpuMs(int who) {
  struct rusage usage {};
  getrusage(who, &usage);
  auto ms = [](const timeval& tv) { return tv.tv_sec * 1e3 + tv.tv_usec / 1e3; };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 100;
  packvisor::Config config;  // the defaults, as `packvisor exec` without a config file
  std::vector<double> compile, spec_ms, launch, self_cpu, child_cpu;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    auto program = packvisor::sandbox::CompileSeccompPolicy({});
    auto t1 = Clock::now();
    if (!program) return 1;
    packvisor::sandbox::SandboxSpec spec = packvisor::BaseSandboxSpec(config);
    spec.argv = {"/bin/true"};
    spec.env = packvisor::SandboxEnvironment(config, "", {});
    if (!spec.Validate()) return 1;
    auto t2 = Clock::now();
    packvisor::sandbox::StringSink out, err;
    packvisor::sandbox::LaunchIo io;
    io.stdout_sink = &out;
    io.stderr_sink = &err;
    double self0 = CpuMs(RUSAGE_SELF), child0 = CpuMs(RUSAGE_CHILDREN);
    auto t3 = Clock::now();
    auto result = packvisor::sandbox::RunSandbox(spec, io);
    auto t4 = Clock::now();
    if (!result || result->exit_code != 0) return 1;
    self_cpu.push_back(CpuMs(RUSAGE_SELF) - self0);
    child_cpu.push_back(CpuMs(RUSAGE_CHILDREN) - child0);
    compile.push_back(Ms(t1 - t0));
    spec_ms.push_back(Ms(t2 - t1));
    launch.push_back(Ms(t4 - t3));
  }
  std::printf("phases over %d launches (medians, ms):\n", iterations);
  std::printf("  CompileSeccompPolicy        %7.3f\n", Median(compile));
  std::printf("  BaseSandboxSpec+Validate    %7.3f\n", Median(spec_ms));
  std::printf("  RunSandbox (wall)           %7.3f  (policy compiled once, cached)\n",
              Median(launch));
  std::printf("    supervisor CPU in it      %7.3f\n", Median(self_cpu));
  std::printf("    sandbox processes' CPU    %7.3f\n", Median(child_cpu));
  return 0;
}
