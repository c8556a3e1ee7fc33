// `packvisor run`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "supervisor/config/config.h"
#include "supervisor/executions/execution_result.h"

namespace packvisor {

struct RunOptions {
  std::string action_ref;
  std::vector<std::string> params;          // K=V; V read by the declared type (RunRequest)
  std::optional<std::string> params_json;   // JSON text, or @FILE
  std::optional<std::string> secrets_file;  // a JSON object
  bool secrets_stdin = false;               // a JSON object on stdin
  std::optional<double> timeout_seconds;
  bool json = false;
  // --server[=SOCKET]: submit to the daemon instead (remote_commands.h); "" = server.socket.
  std::optional<std::string> server;
};

int RunRunCommand(const Config& config, const RunOptions& options);

// Human mode's end of a run, after the action's stdout and stderr were streamed: the parsed
// result (jsonl: one compact line per item; else pretty JSON) on stdout, then the summary line on
// stderr. Also `run --server` and `result` print with it.
void PrintRunResultHuman(const ExecutionResult& result);

}  // namespace packvisor
