// The commands that talk to a running daemon (`packvisor serve`) through its HTTP API
// (docs/api.md) over daemon_client.h: `run --server`, `exec --server`, `ps`, `logs`, `cancel`
// and `result`. They print what the local `run` and `exec` print and exit with the same statuses
// (docs/cli.md); they load no pack and launch nothing themselves.
#pragma once

#include <optional>
#include <string>

#include "supervisor/cli/exec_command.h"
#include "supervisor/config/config.h"
#include "supervisor/executions/execution.h"

namespace packvisor {

// `--server[=SOCKET]`: the value only after '=' (`--server PACK.ACTION` takes no value); empty
// or absent: the configuration's `server.socket`.
std::string DaemonSocket(const Config& config, const std::optional<std::string>& server);

// `run --server`: submits `request` (its parameters, --param texts and secrets as the local run
// collected them; the secrets are wiped here), streams the output live (human mode) and prints
// the result as the local run does. SIGINT/SIGTERM cancel the execution on the daemon.
int RunRemoteRun(const Config& config, const std::string& socket, RunRequest request, bool json);

// `exec --server`: POST /v1/exec (root only on the daemon's side), printed as the local exec.
int RunRemoteExec(const Config& config, const ExecOptions& options);

// The options of `ps`, `logs`, `cancel` and `result` (one is parsed at a time).
struct RemoteOptions {
  std::optional<std::string> server;  // --server[=SOCKET]
  std::string execution_id;           // logs, cancel, result
  std::optional<std::string> status;  // ps --status
  std::optional<std::string> action;  // ps --action
  std::optional<int> limit;           // ps --limit
  bool follow = false;                // logs --follow
  bool json = false;                  // ps, cancel, result --json
};

int RunPsCommand(const Config& config, const RemoteOptions& options);
int RunLogsCommand(const Config& config, const RemoteOptions& options);
int RunCancelCommand(const Config& config, const RemoteOptions& options);
int RunResultCommand(const Config& config, const RemoteOptions& options);

}  // namespace packvisor
