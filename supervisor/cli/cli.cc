#include "supervisor/cli/cli.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/os/syscalls.h"
#include "supervisor/cli/check.h"
#include "supervisor/cli/command_line.h"
#include "supervisor/cli/env_commands.h"
#include "supervisor/cli/exec_command.h"
#include "supervisor/cli/pack_commands.h"
#include "supervisor/cli/queue_commands.h"
#include "supervisor/cli/remote_commands.h"
#include "supervisor/cli/run_command.h"
#include "supervisor/config/config.h"
#include "supervisor/executions/environments.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/executions/logging.h"

namespace packvisor {
namespace {

// `help [COMMAND...]`: the help of the top, or of the named command.
int PrintHelp(const CLI::App& app, const std::vector<std::string>& topic) {
  const CLI::App* command = &app;
  std::string path;
  for (const std::string& name : topic) {
    path += (path.empty() ? "" : " ") + name;
    const CLI::App* found = nullptr;
    for (const CLI::App* sub : command->get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->get_name() == name) found = sub;
    }
    if (found == nullptr) {
      std::fprintf(stderr, "packvisor: error: no command `%s` (see packvisor help)\n",
                   path.c_str());
      return kExitOwnError;
    }
    command = found;
  }
  std::string text = CommandHelp(app, path);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace

int RunCli(int argc, char** argv, const BuildInfo& build, ServeEntry serve_entry,
           WorkerEntry worker_entry) {
  os::EnsureStandardFds();
  // Nothing in the sandbox (or any other unprivileged process) may ptrace or read our memory.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  std::unique_ptr<CommandLine> cli = DefineCommandLine(build);
  CLI::App& app = cli->app;
  auto command = [&app](const char* name, const char* sub = nullptr) {
    CLI::App* found = app.get_subcommand(name);
    return sub == nullptr ? found : found->get_subcommand(sub);
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp&) {
    std::string text = FullHelpText(app);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::fprintf(stderr, "packvisor: error: %s (see --help)\n", what.c_str());
    return kExitOwnError;
  }
  // Neither needs a configuration.
  if (command("help")->parsed()) return PrintHelp(app, cli->help_topic);
  if (command("completion")->parsed()) {
    std::string script = BashCompletionScript(app);
    std::fwrite(script.data(), 1, script.size(), stdout);
    return 0;
  }

  if (command("serve")->parsed()) {
    if (serve_entry == nullptr) return kExitOwnError;
    bool level_given = app.get_option("--log-level")->count() > 0;
    return serve_entry(
        {cli->config_path, cli->serve_socket, level_given ? cli->log_level : "info"});
  }
  if (command("worker")->parsed()) {
    if (worker_entry == nullptr) return kExitOwnError;
    bool level_given = app.get_option("--log-level")->count() > 0;
    return worker_entry({cli->config_path, level_given ? cli->log_level : "info"});
  }

  SetUpLogging(cli->log_level, false);
  auto config = LoadConfig(cli->config_path);
  if (!config) {
    std::fprintf(stderr, "packvisor: error: %s\n", config.error().message().c_str());
    return kExitOwnError;
  }
  spdlog::debug("configuration: {}", config->source);

  // Not for a client of the daemon (which may be unprivileged): the daemon cleans up its own.
  if ((command("exec")->parsed() && !cli->exec.server) ||
      (command("run")->parsed() && !cli->run.server)) {
    // Cgroups left by supervisors that died (SIGKILL, power loss): anything in them is killed.
    int stale =
        sandbox::RemoveStaleCgroups(sandbox::CgroupLayout::Probe(), config->sandbox.cgroup_parent);
    if (stale > 0) spdlog::info("removed {} stale execution cgroup(s)", stale);
    // Staging and replaced environment trees of builders and executions that died.
    auto cleaned = envs::EnvironmentManager(EnvironmentSettingsFrom(*config)).CleanUpStale();
    if (!cleaned)
      spdlog::warn("cleaning up stale environment trees: {}", cleaned.error().message());
  }
  if (command("exec")->parsed()) return RunExecCommand(*config, cli->exec);
  if (command("check")->parsed()) return RunCheckCommand(*config);
  if (command("run")->parsed()) return RunRunCommand(*config, cli->run);
  if (command("submit")->parsed()) return RunSubmitCommand(*config, cli->submit);
  if (command("ps")->parsed()) return RunPsCommand(*config, cli->remote);
  if (command("logs")->parsed()) return RunLogsCommand(*config, cli->remote);
  if (command("cancel")->parsed()) return RunCancelCommand(*config, cli->remote);
  if (command("result")->parsed()) return RunResultCommand(*config, cli->remote);
  if (command("pack", "list")->parsed()) return RunPackListCommand(*config, cli->pack_list_json);
  if (command("pack", "validate")->parsed()) {
    return RunPackValidateCommand(*config, cli->validate_dir);
  }
  if (command("pack", "register")->parsed()) {
    return RunPackRegisterCommand(*config, cli->register_dir);
  }
  if (command("env", "setup")->parsed()) {
    return RunEnvSetupCommand(*config, cli->env_pack, cli->env_runtime, cli->env_force);
  }
  if (command("env", "list")->parsed()) return RunEnvListCommand(*config, cli->env_list_json);
  if (command("env", "rm")->parsed()) return RunEnvRemoveCommand(*config, cli->env_target);
  if (command("keygen")->parsed()) return RunKeygenCommand(*config, cli->keygen);
  return kExitOwnError;
}

}  // namespace packvisor
