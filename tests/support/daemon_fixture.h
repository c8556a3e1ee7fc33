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
#include "tests/support/notified_process.h"
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
    std::vector<std::string> args = {PackvisorBinary(), "--config", world_.ConfigPath(),
                                     "serve",           "--socket", socket_};
    return StartUntilReady(std::move(args), notify_path, log_path_, "daemon", &pid_,
                           [this] { return Log(); });
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
