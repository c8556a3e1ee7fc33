// Starting a long-lived packvisor process under test (the daemon, the queue worker) the way
// systemd does: a NOTIFY_SOCKET of the test's own, a clean environment, stdin from /dev/null and
// stdout/stderr appended to a log file; ready when it says READY=1.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "sandbox/os/unique_fd.h"

namespace packvisor::testing {

// Forks and execs `args` (args[0] is the binary) with NOTIFY_SOCKET=`notify_path`, then waits for
// READY=1. Sets *pid to the child. False, with `what` and `log()` in the test failure, when the
// child exits or 60 s pass first (*pid is then -1 for an exited child).
inline bool StartUntilReady(std::vector<std::string> args, const std::string& notify_path,
                            const std::string& log_path, const std::string& what, pid_t* pid,
                            const std::function<std::string()>& log) {
  unique_fd notify(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  struct sockaddr_un address {};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, notify_path.c_str(), notify_path.size() + 1);
  if (!notify || bind(notify.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address))) {
    ADD_FAILURE() << "notify socket " << notify_path << ": " << std::strerror(errno);
    return false;
  }
  std::string notify_env = "NOTIFY_SOCKET=" + notify_path;
  *pid = fork();
  if (*pid == 0) {
    int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    dup2(null, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    // A clean environment: what the process's environ holds is checked by tests.
    char* envp[] = {notify_env.data(), const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
                    nullptr};
    execve(argv[0], argv.data(), envp);
    _exit(127);
  }
  if (*pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return false;
  }
  for (int waited_ms = 0; waited_ms < 60000; waited_ms += 100) {
    struct pollfd pfd {
      notify.get(), POLLIN, 0
    };
    if (poll(&pfd, 1, 100) == 1) {
      char message[512] = {};
      ssize_t n = recv(notify.get(), message, sizeof(message) - 1, 0);
      if (n > 0 &&
          std::string(message, static_cast<size_t>(n)).find("READY=1") != std::string::npos) {
        unlink(notify_path.c_str());
        return true;
      }
      continue;
    }
    int status = 0;
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = -1;
      ADD_FAILURE() << "the " << what << " exited before it was ready; its log:\n" << log();
      unlink(notify_path.c_str());
      return false;
    }
  }
  ADD_FAILURE() << "the " << what << " was not ready within 60 s; its log:\n" << log();
  unlink(notify_path.c_str());
  return false;
}

}  // namespace packvisor::testing
