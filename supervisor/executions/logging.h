// The supervisor's log (spdlog to stderr) as every adapter sets it up: one place for its format.
#pragma once

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include <initializer_list>
#include <string>

#include "sandbox/os/syscalls.h"

namespace packvisor {

// `flush_each_line`: a long-lived process (the daemon) flushes every info line, so that its log
// is whole when it is killed; a one-shot command flushes at exit.
inline void SetUpLogging(const std::string& level, bool flush_each_line) {
  auto logger = spdlog::stderr_color_mt("packvisor");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  if (flush_each_line) spdlog::flush_on(spdlog::level::info);
}

// The start of a long-lived adapter (the daemon, the queue worker), before any thread exists:
// standard fds present, not dumpable (nothing in a sandbox, or any other unprivileged process,
// may ptrace it or read its memory: it holds secrets in flight, the worker its private key), the
// log flushed per line, `signals` blocked so that every later thread inherits the mask and the
// process reads them from a signalfd (returned in *blocked), and SIGPIPE ignored (a peer gone
// away is a failed write, not a dead process).
inline void StartLongLivedProcess(const std::string& log_level, std::initializer_list<int> signals,
                                  sigset_t* blocked) {
  os::EnsureStandardFds();
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  SetUpLogging(log_level, true);
  sigemptyset(blocked);
  for (int signal_number : signals) sigaddset(blocked, signal_number);
  pthread_sigmask(SIG_BLOCK, blocked, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace packvisor
