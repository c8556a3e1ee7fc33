// systemd's service protocols for the long-lived adapters (the daemon, supervisor/server/, and the
// queue worker, supervisor/worker/, which never include each other), without libsystemd (Debian
// ships no libsystemd.a and packvisor is linked statically; both protocols are a few documented
// lines): readiness and status notification (sd_notify(3): one datagram to $NOTIFY_SOCKET) and
// socket activation (sd_listen_fds(3): inherited fds from 3, named by $LISTEN_PID/$LISTEN_FDS).
#pragma once

#include <string_view>
#include <vector>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor {

// Sends `state` ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...", newline-separated
// assignments) as one datagram to $NOTIFY_SOCKET: an absolute path, or "@name" for an abstract
// socket. Not under systemd ($NOTIFY_SOCKET unset or empty): does nothing and succeeds. The
// variable is kept, for the next notification; sandboxes never see it (their environment is
// built from scratch).
Result<void> NotifySystemd(std::string_view state);

// The sockets systemd passed (socket activation): when $LISTEN_PID is this process and
// $LISTEN_FDS = N > 0, fds 3 .. 3+N-1, each made close-on-exec and non-blocking. Always removes
// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from the environment (a child must not take them).
// Empty when not socket-activated. Call it once, at start, before any thread is created
// (unsetenv is not thread-safe).
std::vector<unique_fd> ListenFdsFromSystemd();

// The first fd of socket activation (SD_LISTEN_FDS_START).
inline constexpr int kListenFdsStart = 3;

}  // namespace packvisor
