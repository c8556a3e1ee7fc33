// `packvisor serve`: the daemon's lifecycle (docs/server.md). Loads the configuration and the
// runtimes, cleans up after a supervisor that died, marks the executions it left unfinished
// `abandoned`, makes (or takes from systemd) the Unix socket, serves the HTTP API on one event
// loop, and handles the signals there: SIGTERM/SIGINT drain and exit 0, SIGHUP reloads. Logs go to
// stderr (journald keeps them); nothing daemonises.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/server/scheduler.h"

namespace packvisor {

struct ServeOptions {
  std::optional<std::string> config_path;  // the global --config
  std::optional<std::string> socket;       // --socket: overrides server.socket
  std::string log_level = "info";          // the global --log-level, when given
};

// Runs until SIGTERM or SIGINT has drained the daemon (0), or fails to start (125, the error
// logged).
int RunServe(const ServeOptions& options);

// The configuration (with `socket_override` applied) and the runtimes, loaded as one immutable
// context: at start and at each SIGHUP.
Result<std::shared_ptr<const ServingContext>> LoadServingContext(
    const std::optional<std::string>& config_path,
    const std::optional<std::string>& socket_override);

// Creates the socket's directory if missing (mode 0755, owned by root, each component opened
// O_NOFOLLOW from / so that no symlink is ever followed), refuses a directory that someone other
// than root owns or may write, replaces a stale socket (never anything else) and binds a listening
// Unix socket there, mode 0660, owned by root:`group`.
Result<unique_fd> BindUnixSocket(const std::string& path, gid_t group);

}  // namespace packvisor
