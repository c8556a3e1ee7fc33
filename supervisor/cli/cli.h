// supervisor/cli/: the command line adapter (SPEC §8). It owns argv parsing (command_line.h), the
// dispatch, the `run`, `exec`, `pack`, `env` and `check` commands and everything they print, and
// the binary's main.cc, man page and bash completion. It calls supervisor/executions/ (and packs/,
// config/); nothing outside cli/ includes a cli/ header. Future adapters (server/, queue/) call
// executions/ the same way, never cli/.
//
// This header: parses argv, loads the configuration once, dispatches, and is the one place that
// turns an Error into a message and an exit status (supervisor/executions/exit_status.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace packvisor {

// What the build put into the binary (main.cc passes the generated values).
struct BuildInfo {
  std::string_view version;  // the CMake project version
  std::string_view commit;   // the git commit built from, "-dirty" if modified, or "unknown"
};

// `packvisor serve`'s arguments, parsed here and handed to the daemon by the composition root
// (supervisor/main.cc): cli/ never includes server/.
struct ServeArguments {
  std::optional<std::string> config_path;  // --config
  std::optional<std::string> socket;       // serve --socket
  std::string log_level;                   // --log-level, "info" when not given
};
using ServeEntry = int (*)(const ServeArguments& arguments);

// `packvisor worker`'s arguments, handed to the queue worker (supervisor/worker/) the same way.
struct WorkerArguments {
  std::optional<std::string> config_path;  // --config
  std::string log_level;                   // --log-level, "info" when not given
};
using WorkerEntry = int (*)(const WorkerArguments& arguments);

// `serve` runs `serve_entry`, `worker` runs `worker_entry` (125 when there is none).
int RunCli(int argc, char** argv, const BuildInfo& build, ServeEntry serve_entry = nullptr,
           WorkerEntry worker_entry = nullptr);

}  // namespace packvisor
