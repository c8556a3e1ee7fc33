#include "supervisor/cli.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>

#include "sandbox/os/syscalls.h"
#include "supervisor/check.h"
#include "supervisor/config.h"
#include "supervisor/exec_command.h"

namespace packvisor {
namespace {

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("packvisor");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int RunCli(int argc, char** argv) {
  os::EnsureStandardFds();
  // Nothing in the sandbox (or any other unprivileged process) may ptrace or read our memory.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  CLI::App app{"packvisor: sandboxed execution supervisor"};
  app.fallthrough();
  app.require_subcommand(1);
  std::optional<std::string> config_path;
  std::string log_level = "warn";
  app.add_option("--config", config_path, "configuration file (TOML)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  ExecOptions exec;
  CLI::App* exec_cmd = app.add_subcommand("exec", "run a raw command in the sandbox");
  exec_cmd->add_option("--pack-dir", exec.pack_dir, "directory bound read-only at /pack");
  exec_cmd->add_option("--env-dir", exec.env_dir, "directory bound read-write at /env");
  exec_cmd->add_option("--network", exec.network, "none (default) or host");
  exec_cmd->add_option("--timeout", exec.timeout_seconds, "seconds");
  exec_cmd->add_option("--memory-mb", exec.memory_mb, "memory limit (MiB)");
  exec_cmd->add_option("--pids", exec.pids, "process limit");
  exec_cmd->add_option("--cpu-percent", exec.cpu_percent, "CPU limit (100 = one core)");
  exec_cmd->add_flag("--json", exec.json, "print the result object");
  exec_cmd->add_option("command", exec.command, "command and arguments (after --)")->required();

  app.add_subcommand("check", "probe the host for the kernel features the sandbox needs");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::fprintf(stderr, "packvisor: error: %s (see --help)\n", what.c_str());
    return kExitOwnError;
  }

  SetUpLogging(log_level);
  auto config = LoadConfig(config_path);
  if (!config) {
    std::fprintf(stderr, "packvisor: error: %s\n", config.error().message().c_str());
    return kExitOwnError;
  }
  spdlog::debug("configuration: {}", config->source);

  if (exec_cmd->parsed()) return RunExecCommand(*config, exec);
  if (app.got_subcommand("check")) return RunCheckCommand(*config);
  return kExitOwnError;
}

}  // namespace packvisor
