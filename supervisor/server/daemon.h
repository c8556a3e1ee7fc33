// `packvisor serve`: the daemon's lifecycle (docs/server.md). Loads the configuration and the
// runtimes, cleans up after a supervisor that died, marks the executions it left unfinished
// `abandoned`, makes (or takes from systemd) the Unix socket, serves the HTTP API on one event
// loop, and handles the signals there: SIGTERM/SIGINT drain and exit 0, SIGHUP reloads. Logs go to
// stderr (journald keeps them); nothing daemonises.
#pragma once

#include <sys/types.h>

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

// The configuration (with `socket_override` applied) and the runtimes, loaded as one context: at
// start and at each SIGHUP. The caller sets `warm_pool`, then shares it as immutable.
Result<std::shared_ptr<ServingContext>> LoadServingContext(
    const std::optional<std::string>& config_path,
    const std::optional<std::string>& socket_override);

// A listening socket the daemon bound itself, and how to find its file again: the directory it
// was bound in (held open, so that no path is walked again) and the file's identity.
struct BoundSocket {
  unique_fd listening;
  unique_fd directory;
  std::string name;  // the socket file's name in `directory`
  dev_t device = 0;
  ino_t inode = 0;
};

// Creates the socket's directory if missing (mode 0755, owned by root, each component opened
// O_NOFOLLOW from / so that no symlink is ever followed), refuses a directory that someone other
// than root owns or may write, replaces a stale socket (never anything else) and binds a listening
// Unix socket there, mode 0660, owned by root:`group`.
Result<BoundSocket> BindUnixSocket(const std::string& path, gid_t group);

// Removes the socket file `bound` made, at the daemon's exit: only when the name in its directory
// is still that very socket (same device and inode), never one another daemon bound since, nor
// anything else. A socket systemd passed (socket activation) is not a BoundSocket: it stays.
void RemoveBoundSocket(const BoundSocket& bound, const std::string& path);

}  // namespace packvisor
