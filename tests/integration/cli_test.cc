// The command line around the commands: --version, help, the bash completion, the man page and
// what `cmake --install` puts in place. The completion and the man page are checked against the
// same command line definition the binary parses with (supervisor/cli/command_line.cc).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "supervisor/cli/command_line.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using testing::CommandResult;
using testing::ReadFileOrEmpty;
using testing::RunPackvisor;
using testing::RunShell;
using testing::ShellQuote;
using testing::TempDir;

std::unique_ptr<CommandLine> Definition() { return DefineCommandLine({"0.0.0", "test"}); }

// Every option name of the command at `path` ("" for the top), as typed.
std::vector<std::string> OptionNames(const CLI::App& top, const std::string& path) {
  const CLI::App* command = &top;
  std::string rest = path;
  while (!rest.empty()) {
    size_t space = rest.find(' ');
    command = command->get_subcommand(rest.substr(0, space));
    rest = space == std::string::npos ? "" : rest.substr(space + 1);
  }
  std::vector<std::string> names;
  for (const CLI::Option* option : command->get_options()) {
    if (!option->nonpositional()) continue;
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

// The words bash offers after `packvisor WORDS... <TAB>`, with the installed-style script sourced.
std::string Complete(const std::string& script_path, const std::vector<std::string>& words) {
  std::string array = "packvisor";
  for (const std::string& word : words) array += " " + ShellQuote(word);
  std::string program = "source " + ShellQuote(script_path) + "; COMP_WORDS=(" + array +
                        "); COMP_CWORD=" + std::to_string(words.size()) +
                        "; _packvisor; printf '%s\\n' \"${COMPREPLY[@]}\"";
  return RunShell("bash -c " + ShellQuote(program)).stdout_text;
}

// An installed packvisor under test ($PACKVISOR_UNDER_TEST) has no build tree beside it.
bool TestingTheBuild() { return std::getenv("PACKVISOR_UNDER_TEST") == nullptr; }

TEST(CliTest, VersionPrintsTheProjectVersionAndTheCommit) {
  CommandResult version = RunPackvisor({"--version"});
  ASSERT_EQ(version.exit_code, 0) << version.stderr_text;
  std::smatch match;
  ASSERT_TRUE(std::regex_match(version.stdout_text, match,
                               std::regex(R"(packvisor (\d+\.\d+\.\d+) \(commit ([^)]+)\)\n)")))
      << version.stdout_text;
  std::string commit = match[2];
  EXPECT_TRUE(std::regex_match(commit, std::regex(R"([0-9a-f]{12}(-dirty)?|unknown)"))) << commit;
  // Built from this checkout: the commit is its HEAD (the build records it at every build).
  CommandResult head = RunShell("git -C " + ShellQuote(testing::SourceDir()) +
                                " rev-parse --short=12 HEAD 2>/dev/null");
  if (head.exit_code == 0 && TestingTheBuild()) {
    EXPECT_EQ(commit.substr(0, 12), head.stdout_text.substr(0, 12));
  }
  // Accepted after a command word too, and never needs a configuration.
  CommandResult after = RunPackvisor({"--config", "/nonexistent.toml", "pack", "--version"});
  EXPECT_EQ(after.exit_code, 0) << after.stderr_text;
  EXPECT_EQ(after.stdout_text, version.stdout_text);
}

TEST(CliTest, HelpPrintsTheHelpOfEveryCommand) {
  CommandResult top = RunPackvisor({"help"});
  ASSERT_EQ(top.exit_code, 0) << top.stderr_text;
  for (const char* command : {"exec", "check", "run", "pack", "env", "help"}) {
    EXPECT_NE(top.stdout_text.find(command), std::string::npos) << command;
  }
  auto definition = Definition();
  for (const std::string& path : CommandPaths(definition->app)) {
    std::vector<std::string> args = {"help"};
    for (size_t start = 0; start <= path.size();) {
      size_t space = std::min(path.find(' ', start), path.size());
      args.push_back(path.substr(start, space - start));
      start = space + 1;
    }
    CommandResult help = RunPackvisor(args);
    EXPECT_EQ(help.exit_code, 0) << path << ": " << help.stderr_text;
    EXPECT_NE(help.stdout_text.find("packvisor " + path), std::string::npos) << path << ":\n"
                                                                             << help.stdout_text;
    for (const std::string& option : OptionNames(definition->app, path)) {
      EXPECT_NE(help.stdout_text.find(option), std::string::npos) << path << " " << option;
    }
  }
  CommandResult unknown = RunPackvisor({"help", "pack", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 125);
  EXPECT_NE(unknown.stderr_text.find("no command `pack nosuch`"), std::string::npos)
      << unknown.stderr_text;
}

TEST(CliTest, BashCompletionOffersEveryCommandAndOptionOfTheDefinition) {
  TempDir dir;
  CommandResult script = RunPackvisor({"completion", "bash"});
  ASSERT_EQ(script.exit_code, 0) << script.stderr_text;
  dir.Write("packvisor.bash", script.stdout_text);
  ASSERT_EQ(RunShell("bash -n " + ShellQuote(dir.Path("packvisor.bash"))).exit_code, 0);

  auto definition = Definition();
  std::vector<std::string> paths = CommandPaths(definition->app);
  ASSERT_GT(paths.size(), 10u);
  std::vector<std::string> top_words = testing::Lines(Complete(dir.Path("packvisor.bash"), {""}));
  for (const std::string& path : paths) {
    std::vector<std::string> words;
    for (size_t start = 0; start <= path.size();) {
      size_t space = std::min(path.find(' ', start), path.size());
      words.push_back(path.substr(start, space - start));
      start = space + 1;
    }
    // The command itself is offered after its parent...
    std::string last = words.back();
    words.back() = "";
    std::vector<std::string> offered = testing::Lines(Complete(dir.Path("packvisor.bash"), words));
    EXPECT_NE(std::find(offered.begin(), offered.end(), last), offered.end())
        << "`packvisor " << path << "` is not completed";
    // ...and each of its options after it.
    words.back() = last;
    words.push_back("-");
    offered = testing::Lines(Complete(dir.Path("packvisor.bash"), words));
    for (const std::string& option : OptionNames(definition->app, path)) {
      EXPECT_NE(std::find(offered.begin(), offered.end(), option), offered.end())
          << "`packvisor " << path << " " << option << "` is not completed";
    }
  }
  for (const std::string& option : OptionNames(definition->app, "")) {
    EXPECT_NE(std::find(top_words.begin(), top_words.end(), option), top_words.end()) << option;
  }
  // Values of an option with a fixed set, and a command path after an option's value.
  std::vector<std::string> levels =
      testing::Lines(Complete(dir.Path("packvisor.bash"), {"--log-level", "d"}));
  EXPECT_EQ(levels, std::vector<std::string>{"debug"});
  std::vector<std::string> env_words =
      testing::Lines(Complete(dir.Path("packvisor.bash"), {"--config", "env", "env", "s"}));
  EXPECT_EQ(env_words, std::vector<std::string>{"setup"});
}

TEST(CliTest, ManPageIsGeneratedFromTheDefinition) {
  if (!TestingTheBuild()) GTEST_SKIP() << "testing an installed packvisor";
  std::string page = ReadFileOrEmpty(PACKVISOR_MAN_PAGE);
  ASSERT_FALSE(page.empty()) << "no man page at " << PACKVISOR_MAN_PAGE;
  EXPECT_NE(page.find(".TH PACKVISOR \"1\""), std::string::npos) << page.substr(0, 300);
  CommandResult version = RunPackvisor({"--version"});
  std::smatch match;
  std::regex_search(version.stdout_text, match, std::regex(R"(\d+\.\d+\.\d+)"));
  EXPECT_NE(page.find(match[0].str()), std::string::npos) << "the version is not in the page";
  auto definition = Definition();
  for (const std::string& path : CommandPaths(definition->app)) {
    if (path == "completion") continue;  // hidden from the help, so from the page
    EXPECT_NE(page.find(path), std::string::npos) << "the page does not mention " << path;
  }
  EXPECT_NE(page.find("\\-\\-secrets\\-file"), std::string::npos);
  EXPECT_NE(page.find("124"), std::string::npos) << "exit statuses missing";
}

TEST(CliTest, CmakeInstallPutsTheBinaryManPageAndCompletionInPlace) {
  if (!TestingTheBuild()) GTEST_SKIP() << "testing an installed packvisor";
  TempDir prefix;
  CommandResult installed = RunShell(
      std::string(PACKVISOR_CMAKE_COMMAND) + " --install " + ShellQuote(PACKVISOR_BUILD_DIR) +
      " --component packvisor --prefix " + ShellQuote(prefix.path()) + " 2>&1");
  ASSERT_EQ(installed.exit_code, 0) << installed.stdout_text;
  struct stat st {};
  EXPECT_EQ(stat(prefix.Path("bin/packvisor").c_str(), &st), 0);
  EXPECT_EQ(ReadFileOrEmpty(prefix.Path("share/man/man1/packvisor.1")),
            ReadFileOrEmpty(PACKVISOR_MAN_PAGE));
  std::string completion =
      ReadFileOrEmpty(prefix.Path("share/bash-completion/completions/packvisor"));
  EXPECT_EQ(completion, RunPackvisor({"completion", "bash"}).stdout_text);
  EXPECT_NE(completion.find("complete -o default -F _packvisor packvisor"), std::string::npos);
}

}  // namespace
}  // namespace packvisor
