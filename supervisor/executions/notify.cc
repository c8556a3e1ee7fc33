// sd_notify and sd_listen_fds, as systemd documents them (see notify.h for why not libsystemd).
#include "supervisor/executions/notify.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace packvisor {
namespace {

// A decimal number that is the whole text, or -1.
long long Decimal(const char* text) {
  if (text == nullptr || *text == '\0') return -1;
  long long value = -1;
  const char* end = text + std::strlen(text);
  auto [stop, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || stop != end || value < 0) return -1;
  return value;
}

}  // namespace

Result<void> NotifySystemd(std::string_view state) {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path == nullptr || *socket_path == '\0') return Ok{};
  std::string path = socket_path;
  struct sockaddr_un address {};
  address.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || path.size() > sizeof(address.sun_path) - 1) {
    return Failure("notify systemd", "NOTIFY_SOCKET=" + path,
                   "not an absolute path or an @abstract name that fits sun_path");
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  socklen_t length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  if (path[0] == '@') {
    address.sun_path[0] = '\0';  // abstract namespace: no terminating NUL counted
  } else {
    length += 1;  // the path's NUL
  }
  unique_fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("notify systemd: socket");
  ssize_t sent = sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                        reinterpret_cast<const struct sockaddr*>(&address), length);
  if (sent < 0) return ErrnoError("notify systemd", path);
  if (static_cast<size_t>(sent) != state.size()) {
    return Failure("notify systemd", path, "the datagram was cut short");
  }
  return Ok{};
}

std::vector<unique_fd> ListenFdsFromSystemd() {
  long long pid = Decimal(std::getenv("LISTEN_PID"));
  long long count = Decimal(std::getenv("LISTEN_FDS"));
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  std::vector<unique_fd> fds;
  // Meant for another process (inherited through a fork that did not clean up): not ours.
  if (pid != static_cast<long long>(getpid()) || count <= 0) return fds;
  // More than a process could hold would be a corrupt variable; fds beyond it are not ours.
  long long max_fds = sysconf(_SC_OPEN_MAX);
  if (max_fds > 0 && count > max_fds - kListenFdsStart) return fds;
  for (int fd = kListenFdsStart; fd < kListenFdsStart + count; ++fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) continue;  // not open after all
    if ((flags & FD_CLOEXEC) == 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    // systemd passes a socket blocking unless its unit says NonBlocking=yes; the event loop's
    // accept loop runs until EAGAIN, and on a blocking socket it would hang in accept(2) after
    // the first connection.
    int status = fcntl(fd, F_GETFL);
    if (status >= 0 && (status & O_NONBLOCK) == 0) fcntl(fd, F_SETFL, status | O_NONBLOCK);
    fds.emplace_back(fd);
  }
  return fds;
}

}  // namespace packvisor
