// `packvisor run`.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/os/error.h"
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

// A JSON object from `text` (--params-json, a parameters or secrets file, secrets on stdin),
// which may hold secrets: errors never quote it, and `text` is wiped. `what` names the source:
// "invalid JSON --params-json: not valid JSON". Text nested deeper than kMaxParameterDepth is
// refused before it is parsed.
Result<nlohmann::json> ParseObject(std::string& text, const std::string& what);

// A JSON object from the file at `path` (8 MiB at most); `what` names it in errors ("--params-json
// file"). Errors never quote the content.
Result<nlohmann::json> ReadObjectFile(const std::string& path, const std::string& what);
// The secrets file of `run --secrets-file` (and `submit --secrets-file`): a JSON object, in a file
// neither group nor others may access (checked on the open descriptor). Errors never quote it.
Result<nlohmann::json> ReadSecretsFile(const std::string& path);

// Human mode's end of a run, after the action's stdout and stderr were streamed: the parsed
// result (jsonl: one compact line per item; else pretty JSON) on stdout, then the summary line on
// stderr. Also `run --server` and `result` print with it.
void PrintRunResultHuman(const ExecutionResult& result);

}  // namespace packvisor
