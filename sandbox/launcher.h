// Parent side of a launch: prepares the child's plan from a validated SandboxSpec, clones the
// sandbox, writes its id maps, feeds stdin, drains stdout/stderr, enforces the timeout and
// reports how it ended.
//
// Thread-safety: RunSandbox may be called from several threads at once. The calling thread must
// outlive the call (PR_SET_PDEATHSIG fires when the creating thread exits). The launcher ignores
// SIGPIPE process-wide (a child that closes stdin early must not kill the supervisor).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sandbox/os/error.h"
#include "sandbox/report.h"
#include "sandbox/spec.h"

namespace packvisor::sandbox {

// Receives a stream's bytes as they arrive. Called on the launching thread only.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void Consume(std::string_view chunk) = 0;
  // True once the sink keeps nothing more of its stream. The launcher then moves the rest from
  // the pipe to /dev/null without copying it (splice) and reports only its length to Skipped().
  virtual bool Full() const { return false; }
  virtual void Skipped(uint64_t bytes) { (void)bytes; }
};

// Keeps everything (tests, small outputs).
class StringSink : public OutputSink {
 public:
  void Consume(std::string_view chunk) override { data.append(chunk); }
  std::string data;
};

struct LaunchIo {
  std::string_view stdin_data;  // written, then stdin is closed
  OutputSink* stdout_sink = nullptr;
  OutputSink* stderr_sink = nullptr;
  int cancel_fd = -1;  // when readable: SIGTERM, grace, SIGKILL, outcome kCancelled
};

enum class Outcome {
  kExited,       // the action exited; exit_code
  kSignaled,     // the action was killed by a signal; signal
  kTimedOut,     // the timeout expired and the sandbox was killed
  kCancelled,    // cancel_fd fired and the sandbox was killed
  kSetupFailed,  // a setup step failed: failed_step, failed_errno; the action never ran
  kExecFailed,   // everything was set up but the command could not be executed (ENOENT, EACCES)
};

const char* OutcomeName(Outcome outcome);

struct SandboxResult {
  Outcome outcome = Outcome::kSetupFailed;
  int exit_code = -1;
  int signal = 0;
  SetupStep failed_step = SetupStep::kNone;
  int failed_errno = 0;
  std::string failure_detail;  // e.g. the mount op that failed
  std::chrono::milliseconds duration{0};
  int64_t cpu_ms = 0;       // CPU time of the whole sandbox (cgroup, else rusage of the tree)
  int64_t max_rss_kb = 0;   // peak memory of the cgroup (else the largest resident set)
  bool oom_killed = false;  // the cgroup's memory limit killed a process
  uint64_t memory_limit_bytes = 0;  // the cgroup's memory limit (0: none)
  // When the launcher let the verified action go on to exec (its release byte written); unset
  // when it was never released (a setup failure, a stop before the release).
  std::optional<std::chrono::steady_clock::time_point> released_at;

  // "setup step 'pivot_root' failed: Operation not permitted" and the like.
  std::string FailureMessage() const;
};

class WarmPool;

// Runs one sandbox to completion. An Error means the launch itself could not be attempted
// (invalid spec, resources exhausted); everything that happens to the sandbox is in the result.
Result<SandboxResult> RunSandbox(const SandboxSpec& spec, LaunchIo& io);

// The same, claiming a prepared sandbox from `pool` when one matches the spec
// (sandbox/warm_pool.h): only the per-execution part of the setup remains, and the verification
// before exec is the same. No match, or a prepared sandbox that cannot take the claim (it died
// meanwhile, its cgroup refused the limits): a fresh launch, as with a null pool. The timeout and
// `duration` count from the claim.
Result<SandboxResult> RunSandbox(const SandboxSpec& spec, LaunchIo& io, WarmPool* pool);

}  // namespace packvisor::sandbox
