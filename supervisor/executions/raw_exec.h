// A raw command in the sandbox actions get (`packvisor exec`, and the daemon's root-only
// `POST /v1/exec`): one implementation for both adapters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "supervisor/executions/execution.h"

namespace packvisor {

struct RawExecRequest {
  std::string pack_dir;          // empty: no /pack
  std::string env_dir;           // empty: no /env
  std::string network = "none";  // "none" or "host"
  std::optional<double> timeout_seconds;
  // May lower the configured limits, never raise them.
  std::optional<uint64_t> memory_mb;
  std::optional<uint64_t> pids;
  std::optional<uint64_t> cpu_percent;
  std::vector<std::string> command;   // argv; non-empty
  std::string execution_id;           // generated when empty
  int cancel_fd = -1;                 // readable: cancel
  LiveOutput* live_stdout = nullptr;  // as in RunRequest
  LiveOutput* live_stderr = nullptr;
};

// Never throws and never returns an Error: bad input (an unknown network mode, a limit above the
// configured one, a pack dir that is not a directory) is a `rejected` result whose `error` is the
// one-line message `packvisor exec` prints today; its ExitStatus() is 125.
ExecutionResult RunRawExec(const ExecutionContext& context, RawExecRequest request);

}  // namespace packvisor
