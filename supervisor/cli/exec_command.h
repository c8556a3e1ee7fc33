// `packvisor exec`: a raw command in the same sandbox as actions get (for tests and security
// suites).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "supervisor/config/config.h"
#include "supervisor/executions/execution_result.h"

namespace packvisor {

struct ExecOptions {
  std::string pack_dir;
  std::string env_dir;
  std::string network = "none";
  std::optional<double> timeout_seconds;
  std::optional<uint64_t> memory_mb;
  std::optional<uint64_t> pids;
  std::optional<uint64_t> cpu_percent;
  bool json = false;
  std::vector<std::string> command;
  // --server[=SOCKET]: run it on the daemon instead (remote_commands.h); "" = server.socket.
  std::optional<std::string> server;
};

// Human mode's end of an exec, after the command's output was streamed: a summary line on stderr
// when there is more to say than "it exited 0". Also `exec --server` prints with it.
void PrintExecResultHuman(const ExecutionResult& result);

// Runs it and prints the output (or the result object); returns the exit status of SPEC §8.
int RunExecCommand(const Config& config, const ExecOptions& options);

}  // namespace packvisor
