#include "supervisor/cli/command_line.h"

#include <algorithm>
#include <functional>
#include <set>

namespace packvisor {

std::string VersionText(const BuildInfo& build) {
  return "packvisor " + std::string(build.version) + " (commit " + std::string(build.commit) + ")";
}

namespace {

// CLI11 would take the word after a bare `--server` as its value (`--server PACK.ACTION`): the
// socket is given only as `--server=SOCKET`.
constexpr const char* kServerHelp =
    "submit to the daemon: --server=SOCKET, or --server alone for server.socket";
constexpr const char* kDaemonSocketHelp =
    "the daemon's socket: --server=SOCKET (default: "
    "server.socket)";

}  // namespace

std::unique_ptr<CommandLine> DefineCommandLine(const BuildInfo& build) {
  auto cli = std::make_unique<CommandLine>();
  CLI::App& app = cli->app;
  app.fallthrough();
  app.require_subcommand(1);
  app.set_version_flag("--version", VersionText(build), "print the version and the git commit");
  app.set_help_all_flag("--help-all", "print the help of every command");
  app.footer(
      "Exit status of run and exec: the action's own exit code; 124 timed out; 125 packvisor's "
      "own error (usage, configuration, setup); 126 the command could not be started; 127 pack, "
      "action or command not found; 128+N killed by signal N. Other commands exit 0 on success "
      "and 125 on an error. Documentation: docs/cli.md of the source tree.");
  app.add_option("--config", cli->config_path, "configuration file (TOML)");
  app.add_option("--log-level", cli->log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  ExecOptions& exec = cli->exec;
  CLI::App* exec_cmd = app.add_subcommand("exec", "run a raw command in the sandbox");
  exec_cmd->add_option("--pack-dir", exec.pack_dir, "directory bound read-only at /pack");
  exec_cmd->add_option("--env-dir", exec.env_dir, "directory bound read-write at /env");
  exec_cmd->add_option("--network", exec.network, "none (default) or host");
  exec_cmd->add_option("--timeout", exec.timeout_seconds, "seconds");
  exec_cmd->add_option("--memory-mb", exec.memory_mb, "memory limit (MiB)");
  exec_cmd->add_option("--pids", exec.pids, "process limit");
  exec_cmd->add_option("--cpu-percent", exec.cpu_percent, "CPU limit (100 = one core)");
  exec_cmd->add_flag("--json", exec.json, "print the result object");
  exec_cmd->add_flag("--server{}", exec.server, kServerHelp);
  exec_cmd->add_option("command", exec.command, "command and arguments (after --)")->required();

  app.add_subcommand("check", "probe the host for the kernel features the sandbox needs");

  RunOptions& run = cli->run;
  CLI::App* run_cmd = app.add_subcommand("run", "run one action in a fresh sandbox");
  run_cmd->add_option("action", run.action_ref, "PACK.ACTION")->required();
  run_cmd->add_option("--param", run.params, "KEY=VALUE (read by KEY's declared type)");
  run_cmd->add_option("--params-json", run.params_json, "a JSON object, or @FILE");
  run_cmd->add_option("--secrets-file", run.secrets_file, "a JSON object of secrets");
  run_cmd->add_flag("--secrets-stdin", run.secrets_stdin, "read a JSON object of secrets on stdin");
  run_cmd->add_option("--timeout", run.timeout_seconds, "seconds (overrides the action's)");
  run_cmd->add_flag("--json", run.json, "print the result object");
  run_cmd->add_flag("--server{}", run.server, kServerHelp);

  // The commands that only talk to the daemon (remote_commands.h).
  RemoteOptions& remote = cli->remote;
  CLI::App* ps_cmd = app.add_subcommand("ps", "list the daemon's executions, newest first");
  ps_cmd->add_flag("--server{}", remote.server, kDaemonSocketHelp);
  ps_cmd->add_option("--status", remote.status, "only executions with this status");
  ps_cmd->add_option("--action", remote.action, "only executions of this PACK.ACTION");
  ps_cmd->add_option("--limit", remote.limit, "at most N (daemon default 100, max 1000)");
  ps_cmd->add_flag("--json", remote.json, "print the daemon's JSON document");
  CLI::App* logs_cmd = app.add_subcommand("logs", "print the stdout and stderr of an execution");
  logs_cmd->add_option("id", remote.execution_id, "execution id")->required();
  logs_cmd->add_flag("--follow,-f", remote.follow, "stream the output until the execution ends");
  logs_cmd->add_flag("--server{}", remote.server, kDaemonSocketHelp);
  CLI::App* cancel_cmd = app.add_subcommand("cancel", "cancel an execution on the daemon");
  cancel_cmd->add_option("id", remote.execution_id, "execution id")->required();
  cancel_cmd->add_flag("--json", remote.json, "print the final result object");
  cancel_cmd->add_flag("--server{}", remote.server, kDaemonSocketHelp);
  CLI::App* result_cmd =
      app.add_subcommand("result", "print an execution's result as run does (waits for its end)");
  result_cmd->add_option("id", remote.execution_id, "execution id")->required();
  result_cmd->add_flag("--json", remote.json, "print the result object");
  result_cmd->add_flag("--server{}", remote.server, kDaemonSocketHelp);

  CLI::App* pack_cmd = app.add_subcommand("pack", "inspect packs");
  pack_cmd->require_subcommand(1);
  CLI::App* pack_list = pack_cmd->add_subcommand("list", "packs under packs_base_dir");
  pack_list->add_flag("--json", cli->pack_list_json, "print one JSON document");
  CLI::App* pack_validate = pack_cmd->add_subcommand("validate", "report every problem of a pack");
  pack_validate->add_option("dir", cli->validate_dir, "pack directory")->required();
  CLI::App* pack_register =
      pack_cmd->add_subcommand("register", "validate a pack and set up its environments");
  pack_register->add_option("dir", cli->register_dir, "pack directory under packs_base_dir")
      ->required();

  CLI::App* env_cmd = app.add_subcommand("env", "manage runtime environments");
  env_cmd->require_subcommand(1);
  CLI::App* env_setup = env_cmd->add_subcommand("setup", "build a pack's environments");
  env_setup->add_option("pack", cli->env_pack, "pack ref")->required();
  env_setup->add_option("--runtime", cli->env_runtime, "only this runtime");
  env_setup->add_flag("--force", cli->env_force, "rebuild even when ready or after a failed build");
  CLI::App* env_list = env_cmd->add_subcommand("list", "environments on disk");
  env_list->add_flag("--json", cli->env_list_json, "print a JSON array");
  CLI::App* env_rm = env_cmd->add_subcommand("rm", "remove environments");
  env_rm->add_option("target", cli->env_target, "PACK or PACK/RUNTIME")->required();

  CLI::App* serve_cmd =
      app.add_subcommand("serve", "run the daemon: the HTTP API on a Unix socket");
  serve_cmd->add_option("--socket", cli->serve_socket, "socket path (overrides server.socket)");

  CLI::App* keygen_cmd =
      app.add_subcommand("keygen", "write the queue workers' key pair for sealed secrets");
  keygen_cmd->add_option("--private", cli->keygen.private_path,
                         "private key file (default: worker.key_file)");
  keygen_cmd->add_option("--public", cli->keygen.public_path,
                         "public key file (default: worker.public_key_file)");

  SubmitOptions& submit = cli->submit;
  CLI::App* submit_cmd =
      app.add_subcommand("submit", "publish an execution request to the queue workers (RabbitMQ)");
  submit_cmd->add_option("action", submit.action_ref, "PACK.ACTION")->required();
  submit_cmd->add_option("--broker", submit.broker, "broker URL (default: worker.broker_url)");
  submit_cmd->add_option("--param", submit.params, "KEY=VALUE (read by KEY's declared type)");
  submit_cmd->add_option("--params-file", submit.params_file, "a JSON object of parameters");
  submit_cmd->add_option("--secrets-file", submit.secrets_file,
                         "a JSON object of secrets, sealed to worker.public_key_file");
  submit_cmd->add_option("--runtime", submit.runtime,
                         "route to this runtime's queue (for a pack not installed here)");
  submit_cmd->add_option("--timeout", submit.timeout_seconds, "seconds (overrides the action's)");
  submit_cmd->add_flag("--wait", submit.wait, "wait for the result and print it as run does");
  submit_cmd->add_flag("--json", submit.json, "print JSON");
  submit_cmd->add_flag("--stream", submit.stream, "with --wait: show the output as it is written");

  app.add_subcommand("worker",
                     "run a queue worker: executions from RabbitMQ (worker.* configuration keys)");

  CLI::App* help_cmd = app.add_subcommand("help", "print the help of packvisor or of a command");
  help_cmd->add_option("command", cli->help_topic, "a command, e.g. `pack list`");

  // Hidden from the help: the build installs its output (share/bash-completion/completions).
  CLI::App* completion = app.add_subcommand("completion", "print a shell completion script");
  completion->group("");
  completion->add_option("shell", cli->completion_shell, "bash")
      ->required()
      ->check(CLI::IsMember({"bash"}));
  return cli;
}

namespace {

std::vector<const CLI::App*> Subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App*) { return true; });
}

void CollectPaths(const CLI::App& app, const std::string& prefix, std::vector<std::string>& out) {
  for (const CLI::App* sub : Subcommands(app)) {
    std::string path = prefix.empty() ? sub->get_name() : prefix + " " + sub->get_name();
    out.push_back(path);
    CollectPaths(*sub, path, out);
  }
}

// The option names of `app` as typed ("--json", "-h"), and those that take a value.
void OptionWords(const CLI::App& app, std::set<std::string>& words,
                 std::set<std::string>& takes_value) {
  for (const CLI::Option* option : app.get_options()) {
    if (!option->nonpositional()) continue;
    std::vector<std::string> names;
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
    for (const std::string& name : option->get_snames()) names.push_back("-" + name);
    for (const std::string& name : names) {
      words.insert(name);
      if (option->get_items_expected_max() > 0) takes_value.insert(name);
    }
  }
}

// The values an option accepts when it is checked against a fixed set: CLI11 shows such a set in
// the option's type name as "{a,b,c}".
std::vector<std::string> FixedValues(const CLI::Option& option) {
  std::string type = option.get_type_name();
  size_t open = type.find('{');
  size_t close = type.find('}', open);
  std::vector<std::string> values;
  if (open == std::string::npos || close == std::string::npos) return values;
  std::string list = type.substr(open + 1, close - open - 1);
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) values.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return values;
}

// The command at `path` ("pack list"; "" for the top).
const CLI::App& CommandAt(const CLI::App& app, const std::string& path) {
  const CLI::App* command = &app;
  size_t start = 0;
  while (start < path.size()) {
    size_t space = std::min(path.find(' ', start), path.size());
    command = command->get_subcommand(path.substr(start, space - start));
    start = space + 1;
  }
  return *command;
}

// "a|b|c", a bash case pattern; "--" (handled before any such pattern) when there is none.
std::string CasePattern(const std::set<std::string>& words) {
  std::string pattern;
  for (const std::string& word : words) pattern += (pattern.empty() ? "" : "|") + word;
  return pattern.empty() ? "--" : pattern;
}

std::string Join(const std::set<std::string>& words) {
  std::string out;
  for (const std::string& word : words) out += (out.empty() ? "" : " ") + word;
  return out;
}

}  // namespace

std::vector<std::string> CommandPaths(const CLI::App& app) {
  std::vector<std::string> paths;
  CollectPaths(app, "", paths);
  return paths;
}

std::string CommandHelp(const CLI::App& app, const std::string& path) {
  const CLI::App* command = &CommandAt(app, path);
  // Not App::help(), which shows the command that was parsed (`help`) instead.
  std::string name = path.empty() ? app.get_name() : app.get_name() + " " + path;
  return command->get_formatter()->make_help(command, name, CLI::AppFormatMode::Normal);
}

std::string FullHelpText(const CLI::App& app) {
  std::string text = CommandHelp(app, "") + "\nCommands:\n";
  for (const std::string& path : CommandPaths(app)) {
    const CLI::App* command = &CommandAt(app, path);
    bool hidden = false;
    for (const CLI::App* at = command; at != &app; at = at->get_parent()) {
      hidden = hidden || at->get_group().empty();
    }
    if (hidden) continue;
    text += "  " + app.get_name() + " " + path + ": " + command->get_description() + "\n";
    std::string help = CommandHelp(app, path);
    // Its description is the header above; the footer is the top's, printed once.
    size_t first_line = help.find('\n');
    if (help.compare(0, first_line, command->get_description()) == 0) {
      help.erase(0, first_line + 1);
    }
    if (!app.get_footer().empty()) {
      size_t footer = help.find(app.get_footer());
      if (footer != std::string::npos) help.erase(footer);
    }
    size_t line_start = 0;
    while (line_start < help.size()) {
      size_t end = help.find('\n', line_start);
      if (end == std::string::npos) end = help.size();
      std::string line = help.substr(line_start, end - line_start);
      if (!line.empty()) text += "    " + line;
      text += "\n";
      line_start = end + 1;
    }
    while (text.size() >= 2 && text.compare(text.size() - 2, 2, "\n\n") == 0) text.pop_back();
    text += "\n";
  }
  return text;
}

std::string BashCompletionScript(const CLI::App& app) {
  // Per command path: its subcommands and its options, plus those of its ancestors when they
  // fall through (global options are accepted after the command word).
  struct Node {
    std::string path;
    std::set<std::string> words;
  };
  std::vector<Node> nodes;
  std::set<std::string> value_options;
  std::map<std::string, std::vector<std::string>> fixed_values;
  std::function<void(const CLI::App&, const std::string&, std::set<std::string>)> walk =
      [&](const CLI::App& command, const std::string& path, std::set<std::string> inherited) {
        std::set<std::string> options;
        OptionWords(command, options, value_options);
        for (const CLI::Option* option : command.get_options()) {
          std::vector<std::string> values = FixedValues(*option);
          if (values.empty() || !option->nonpositional()) continue;
          for (const std::string& name : option->get_lnames()) fixed_values["--" + name] = values;
        }
        Node node{path, inherited};
        node.words.insert(options.begin(), options.end());
        for (const CLI::App* sub : Subcommands(command)) node.words.insert(sub->get_name());
        if (command.get_fallthrough()) inherited.insert(options.begin(), options.end());
        nodes.push_back(node);
        for (const CLI::App* sub : Subcommands(command)) {
          walk(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), inherited);
        }
      };
  walk(app, "", {});

  std::string name = app.get_name();
  std::string function = "_" + name;
  std::replace(function.begin(), function.end(), '-', '_');
  std::string script =
      "# bash completion for " + name + ", generated from its command line definition (`" + name +
      " completion bash`).\n" + function +
      "() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path='' word i\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    word=${COMP_WORDS[i]}\n"
      "    # After `--` come a command and its arguments: complete file names.\n"
      "    [[ $word == -- ]] && { COMPREPLY=(); return 0; }\n"
      "    case $word in\n"
      "      " +
      CasePattern(value_options) +
      ") ((i++)); continue ;;\n"
      "    esac\n"
      "    case \"$path/$word\" in\n";
  for (const Node& node : nodes) {
    if (node.path.empty()) continue;
    size_t last_space = node.path.rfind(' ');
    std::string parent = last_space == std::string::npos ? "" : node.path.substr(0, last_space);
    std::string last =
        last_space == std::string::npos ? node.path : node.path.substr(last_space + 1);
    script += "      '" + parent + "/" + last + "') path='" + node.path + "' ;;\n";
  }
  script +=
      "    esac\n"
      "  done\n"
      "  case $prev in\n";
  for (const auto& [option, values] : fixed_values) {
    std::string list;
    for (const std::string& value : values) list += (list.empty() ? "" : " ") + value;
    script +=
        "    " + option + ") COMPREPLY=($(compgen -W '" + list + "' -- \"$cur\")); return 0 ;;\n";
  }
  std::set<std::string> free_values;  // options whose value is any text or a file name
  for (const std::string& option : value_options) {
    if (!fixed_values.count(option)) free_values.insert(option);
  }
  script += "    " + CasePattern(free_values) +
            ") COMPREPLY=(); return 0 ;;\n"
            "  esac\n"
            "  local words\n"
            "  case $path in\n";
  for (const Node& node : nodes) {
    script += "    '" + node.path + "') words='" + Join(node.words) + "' ;;\n";
  }
  script +=
      "  esac\n"
      "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      "}\n"
      "complete -o default -F " +
      function + " " + name + "\n";
  return script;
}

}  // namespace packvisor
