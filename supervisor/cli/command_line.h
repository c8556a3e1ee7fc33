// The command line definition of SPEC §8 (CLI11), kept apart from the dispatch in cli.cc so that
// tests walk the same definition the binary parses with.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "supervisor/cli/cli.h"
#include "supervisor/cli/exec_command.h"
#include "supervisor/cli/queue_commands.h"
#include "supervisor/cli/remote_commands.h"
#include "supervisor/cli/run_command.h"

namespace packvisor {

// `packvisor --version`: "packvisor VERSION (commit COMMIT)".
std::string VersionText(const BuildInfo& build);

// The command line definition: every command, option and positional, bound to the fields below.
// It is the one source of the parser, `help`, `--help-all` (from which help2man makes the man
// page) and `completion bash`. Not copyable: the options point into it.
struct CommandLine {
  CommandLine() = default;
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  CLI::App app{"packvisor: sandboxed execution supervisor", "packvisor"};
  std::optional<std::string> config_path;
  std::string log_level = "warn";
  ExecOptions exec;
  RunOptions run;
  RemoteOptions remote;  // ps, logs, cancel, result
  SubmitOptions submit;
  bool pack_list_json = false;
  std::string validate_dir;
  std::string register_dir;
  std::string env_pack;
  std::optional<std::string> env_runtime;
  bool env_force = false;
  bool env_list_json = false;
  std::string env_target;
  std::vector<std::string> help_topic;      // `help [COMMAND...]`
  std::string completion_shell;             // `completion SHELL`
  std::optional<std::string> serve_socket;  // `serve --socket PATH`
  KeygenOptions keygen;                     // `keygen`
};

std::unique_ptr<CommandLine> DefineCommandLine(const BuildInfo& build);

// Every command of `app` below the top, as its path of names ("pack list"), depth first.
std::vector<std::string> CommandPaths(const CLI::App& app);

// The help of the command at `path` ("pack list"; "" for the top), its usage line naming the whole
// path.
std::string CommandHelp(const CLI::App& app, const std::string& path);

// `--help-all`: the help of the top, then under "Commands:" that of every command that is not
// hidden, indented under a "  packvisor PATH: DESCRIPTION" line (help2man makes the man page from
// it: the commands become a subsection).
std::string FullHelpText(const CLI::App& app);

// A bash completion script for `app` (SPEC §8's commands and options), made by walking it.
std::string BashCompletionScript(const CLI::App& app);

}  // namespace packvisor
