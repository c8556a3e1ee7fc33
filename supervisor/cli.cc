#include "supervisor/cli.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>

#include "sandbox/cgroup.h"
#include "sandbox/os/syscalls.h"
#include "supervisor/check.h"
#include "supervisor/config.h"
#include "supervisor/environments.h"
#include "supervisor/exec_command.h"
#include "supervisor/pack_commands.h"
#include "supervisor/run_command.h"

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

  RunOptions run;
  CLI::App* run_cmd = app.add_subcommand("run", "run one action in a fresh sandbox");
  run_cmd->add_option("action", run.action_ref, "PACK.ACTION")->required();
  run_cmd->add_option("--param", run.params, "KEY=VALUE (read by KEY's declared type)");
  run_cmd->add_option("--params-json", run.params_json, "a JSON object, or @FILE");
  run_cmd->add_option("--secrets-file", run.secrets_file, "a JSON object of secrets");
  run_cmd->add_flag("--secrets-stdin", run.secrets_stdin, "read a JSON object of secrets on stdin");
  run_cmd->add_option("--timeout", run.timeout_seconds, "seconds (overrides the action's)");
  run_cmd->add_flag("--json", run.json, "print the result object");

  CLI::App* pack_cmd = app.add_subcommand("pack", "inspect packs");
  pack_cmd->require_subcommand(1);
  CLI::App* pack_list = pack_cmd->add_subcommand("list", "packs under packs_base_dir");
  bool pack_list_json = false;
  pack_list->add_flag("--json", pack_list_json, "print one JSON document");
  std::string validate_dir;
  CLI::App* pack_validate = pack_cmd->add_subcommand("validate", "report every problem of a pack");
  pack_validate->add_option("dir", validate_dir, "pack directory")->required();
  std::string register_dir;
  CLI::App* pack_register =
      pack_cmd->add_subcommand("register", "validate a pack and set up its environments");
  pack_register->add_option("dir", register_dir, "pack directory under packs_base_dir")->required();

  CLI::App* env_cmd = app.add_subcommand("env", "manage runtime environments");
  env_cmd->require_subcommand(1);
  std::string env_pack;
  std::optional<std::string> env_runtime;
  CLI::App* env_setup = env_cmd->add_subcommand("setup", "build a pack's environments");
  env_setup->add_option("pack", env_pack, "pack ref")->required();
  env_setup->add_option("--runtime", env_runtime, "only this runtime");
  bool env_force = false;
  env_setup->add_flag("--force", env_force, "rebuild even when ready or after a failed build");
  CLI::App* env_list = env_cmd->add_subcommand("list", "environments on disk");
  bool env_list_json = false;
  env_list->add_flag("--json", env_list_json, "print a JSON array");
  std::string env_target;
  CLI::App* env_rm = env_cmd->add_subcommand("rm", "remove environments");
  env_rm->add_option("target", env_target, "PACK or PACK/RUNTIME")->required();

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

  if (exec_cmd->parsed() || run_cmd->parsed()) {
    // Cgroups left by supervisors that died (SIGKILL, power loss): anything in them is killed.
    int stale =
        sandbox::RemoveStaleCgroups(sandbox::CgroupLayout::Probe(), config->sandbox.cgroup_parent);
    if (stale > 0) spdlog::info("removed {} stale execution cgroup(s)", stale);
    // Staging and replaced environment trees of builders and executions that died.
    auto cleaned = envs::EnvironmentManager(EnvironmentSettingsFrom(*config)).CleanUpStale();
    if (!cleaned)
      spdlog::warn("cleaning up stale environment trees: {}", cleaned.error().message());
  }
  if (exec_cmd->parsed()) return RunExecCommand(*config, exec);
  if (app.got_subcommand("check")) return RunCheckCommand(*config);
  if (run_cmd->parsed()) return RunRunCommand(*config, run);
  if (pack_list->parsed()) return RunPackListCommand(*config, pack_list_json);
  if (pack_validate->parsed()) return RunPackValidateCommand(*config, validate_dir);
  if (pack_register->parsed()) return RunPackRegisterCommand(*config, register_dir);
  if (env_setup->parsed()) return RunEnvSetupCommand(*config, env_pack, env_runtime, env_force);
  if (env_list->parsed()) return RunEnvListCommand(*config, env_list_json);
  if (env_rm->parsed()) return RunEnvRemoveCommand(*config, env_target);
  return kExitOwnError;
}

}  // namespace packvisor
