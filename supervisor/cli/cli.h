// supervisor/cli/: the command line adapter (SPEC §8). It owns argv parsing (command_line.h), the
// dispatch, the `run`, `exec`, `pack`, `env` and `check` commands and everything they print, and
// the binary's main.cc, man page and bash completion. It calls supervisor/executions/ (and packs/,
// config/); nothing outside cli/ includes a cli/ header. Future adapters (server/, queue/) call
// executions/ the same way, never cli/.
//
// This header: parses argv, loads the configuration once, dispatches, and is the one place that
// turns an Error into a message and an exit status (supervisor/executions/exit_status.h).
#pragma once

#include <string_view>

namespace packvisor {

// What the build put into the binary (main.cc passes the generated values).
struct BuildInfo {
  std::string_view version;  // the CMake project version
  std::string_view commit;   // the git commit built from, "-dirty" if modified, or "unknown"
};

int RunCli(int argc, char** argv, const BuildInfo& build);

}  // namespace packvisor
