// A real `packvisor serve` for tests: its own config, state_dir and socket under a RunWorld (a
// TempDir), its stderr kept in a file, stopped (SIGKILL if it must) at destruction even when the
// test fails. Readiness is the systemd notification the daemon sends (READY=1 on a datagram
// socket named by NOTIFY_SOCKET), not a sleep. Header-only: tests/CMakeLists.txt builds
// tests/integration/*_test.cc + tests/support/harness.cc.
//
//   RunWorld world;  world.WriteSimpleAction(...);
//   DaemonUnderTest daemon(world);              // started, READY=1 received
//   HttpResponse r = HttpPost(daemon.socket(), "/v1/executions?wait=true", {...});
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "sandbox/os/unique_fd.h"
#include "tests/support/harness.h"
#include "tests/support/http_client.h"
#include "tests/support/run_fixtures.h"

namespace packvisor::testing {

class DaemonUnderTest {
 public:
  // Writes the world's config with `extra_toml` (e.g. "[server]\nmax_concurrent = 2\n") when
  // `write_config` (else uses the config already written), and starts the daemon on
  // {world}/packvisor.sock.
  explicit DaemonUnderTest(RunWorld& world, const std::string& extra_toml = "",
                           bool write_config = true)
      : world_(world),
        socket_(world.Path("run/packvisor.sock")),
        log_path_(world.Path("daemon.log")) {
    if (write_config) world_.WriteConfig(extra_toml);
    Start();
  }
  ~DaemonUnderTest() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  DaemonUnderTest(const DaemonUnderTest&) = delete;
  DaemonUnderTest& operator=(const DaemonUnderTest&) = delete;

  const std::string& socket() const { return socket_; }
  pid_t pid() const { return pid_; }
  // Everything the daemon wrote to stderr so far (all its runs).
  std::string Log() const { return ReadFileOrEmpty(log_path_); }

  // Starts it (again): forks `packvisor --config CONFIG serve --socket SOCKET`, then waits for
  // READY=1 (false, with the log in the failure, when it exits or 60 s pass first).
  bool Start() {
    std::string notify_path = world_.Path("notify-" + std::to_string(++starts_) + ".sock");
    unique_fd notify(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct sockaddr_un address {};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, notify_path.c_str(), notify_path.size() + 1);
    if (!notify || bind(notify.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address))) {
      ADD_FAILURE() << "notify socket " << notify_path << ": " << std::strerror(errno);
      return false;
    }
    std::vector<std::string> args = {PackvisorBinary(), "--config", world_.ConfigPath(),
                                     "serve",           "--socket", socket_};
    std::string notify_env = "NOTIFY_SOCKET=" + notify_path;
    pid_ = fork();
    if (pid_ == 0) {
      int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      int null = open("/dev/null", O_RDWR | O_CLOEXEC);
      dup2(null, 0);
      dup2(log, 1);
      dup2(log, 2);
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      // A clean environment: what the daemon's environ holds is checked by tests.
      char* envp[] = {notify_env.data(), const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
                      nullptr};
      execve(argv[0], argv.data(), envp);
      _exit(127);
    }
    if (pid_ < 0) {
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
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "the daemon exited before it was ready; its log:\n" << Log();
        unlink(notify_path.c_str());
        return false;
      }
    }
    ADD_FAILURE() << "the daemon was not ready within 60 s; its log:\n" << Log();
    unlink(notify_path.c_str());
    return false;
  }

  // Sends `signal` and waits for the exit; returns the exit status (128+N when killed by N).
  int Stop(int signal = SIGTERM) {
    if (pid_ <= 0) return -1;
    kill(pid_, signal);
    return Wait();
  }
  // Waits for the daemon to exit on its own; its exit status (128+N when killed by N).
  int Wait() {
    if (pid_ <= 0) return -1;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void Signal(int signal) const { kill(pid_, signal); }

 private:
  RunWorld& world_;
  std::string socket_;
  std::string log_path_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

// POST /v1/executions (?wait=true when `wait`) with {action_ref, parameters, secrets}.
inline HttpResponse SubmitAction(const std::string& socket, const std::string& action_ref,
                                 const nlohmann::json& parameters = nlohmann::json::object(),
                                 bool wait = false,
                                 const nlohmann::json& secrets = nlohmann::json::object()) {
  nlohmann::json body = {{"action_ref", action_ref}, {"parameters", parameters}};
  if (!secrets.empty()) body["secrets"] = secrets;
  return HttpPost(socket, wait ? "/v1/executions?wait=true" : "/v1/executions", body);
}

}  // namespace packvisor::testing
