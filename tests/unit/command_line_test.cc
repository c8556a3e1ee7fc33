// The command line definition (supervisor/cli/command_line.cc): the bash completion covers it, and
// the user documentation in docs/ names every command, option and configuration key.
#include "supervisor/cli/command_line.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "supervisor/config/config.h"

namespace packvisor {
namespace {

std::unique_ptr<CommandLine> Definition() { return DefineCommandLine({"1.2.3", "0123456789ab"}); }

const CLI::App& At(const CLI::App& top, const std::string& path) {
  const CLI::App* command = &top;
  std::istringstream words(path);
  std::string word;
  while (words >> word) command = command->get_subcommand(word);
  return *command;
}

std::vector<std::string> LongOptions(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command.get_options()) {
    if (!option->nonpositional()) continue;
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(PACKVISOR_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(CommandLine, VersionTextNamesTheVersionAndTheCommit) {
  EXPECT_EQ(VersionText({"1.2.3", "0123456789ab"}), "packvisor 1.2.3 (commit 0123456789ab)");
}

TEST(CommandLine, CommandPathsCoverTheTree) {
  auto cli = Definition();
  std::vector<std::string> paths = CommandPaths(cli->app);
  for (const char* path : {"exec", "check", "run", "pack", "pack list", "pack validate",
                           "pack register", "env", "env setup", "env list", "env rm", "help",
                           "completion", "ps", "logs", "cancel", "result"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), path), paths.end()) << path;
  }
}

// The completion is made by walking the definition: every command path has its case, and every
// option of a command is among the words offered there.
TEST(CommandLine, BashCompletionHasEveryCommandAndOption) {
  auto cli = Definition();
  std::string script = BashCompletionScript(cli->app);
  std::vector<std::string> paths = CommandPaths(cli->app);
  paths.insert(paths.begin(), "");
  for (const std::string& path : paths) {
    std::string marker = "    '" + path + "') words='";
    size_t at = script.find(marker);
    ASSERT_NE(at, std::string::npos) << "no completion case for `" << path << "`";
    std::string words = " " +
                        script.substr(at + marker.size(),
                                      script.find('\'', at + marker.size()) - at - marker.size()) +
                        " ";
    for (const std::string& option : LongOptions(At(cli->app, path))) {
      EXPECT_NE(words.find(" " + option + " "), std::string::npos) << path << " " << option;
    }
    for (const CLI::App* sub :
         At(cli->app, path).get_subcommands([](const CLI::App*) { return true; })) {
      EXPECT_NE(words.find(" " + sub->get_name() + " "), std::string::npos)
          << path << " " << sub->get_name();
    }
  }
  // Global options fall through to every command.
  EXPECT_NE(script.find("'env rm') words='--config --help --help-all --log-level --version -h'"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("complete -o default -F _packvisor packvisor"), std::string::npos);
}

// help2man makes the man page from --help-all: every visible command and its options are there.
TEST(CommandLine, FullHelpHasEveryVisibleCommandAndOption) {
  auto cli = Definition();
  std::string text = FullHelpText(cli->app);
  for (const std::string& path : CommandPaths(cli->app)) {
    if (path == "completion") {
      EXPECT_EQ(text.find("packvisor completion"), std::string::npos) << "hidden, yet shown";
      continue;
    }
    size_t at = text.find("\n  packvisor " + path + ": ");
    ASSERT_NE(at, std::string::npos) << path;
    size_t next = text.find("\n  packvisor ", at + 1);
    std::string section = text.substr(at, next == std::string::npos ? next : next - at);
    for (const std::string& option : LongOptions(At(cli->app, path))) {
      if (option == "--help-all" || option == "--version") continue;  // the top's, shown there
      EXPECT_NE(section.find(option), std::string::npos) << path << " " << option;
    }
  }
  // The exit statuses (the footer) once, at the top.
  size_t footer = text.find("Exit status of run and exec");
  ASSERT_NE(footer, std::string::npos);
  EXPECT_EQ(text.find("Exit status of run and exec", footer + 1), std::string::npos);
}

TEST(CommandLine, DocsCliNamesEveryCommandAndOption) {
  std::string doc = ReadSource("docs/cli.md");
  ASSERT_FALSE(doc.empty());
  auto cli = Definition();
  for (const std::string& path : CommandPaths(cli->app)) {
    EXPECT_NE(doc.find("packvisor " + path), std::string::npos) << "docs/cli.md lacks " << path;
    for (const std::string& option : LongOptions(At(cli->app, path))) {
      EXPECT_NE(doc.find(option), std::string::npos)
          << "docs/cli.md lacks " << path << " " << option;
    }
  }
  for (const std::string& option : LongOptions(cli->app)) {
    EXPECT_NE(doc.find(option), std::string::npos) << "docs/cli.md lacks " << option;
  }
}

TEST(CommandLine, DocsConfigHasARowForEveryKey) {
  std::string doc = ReadSource("docs/config.md");
  ASSERT_FALSE(doc.empty());
  for (const std::string& key : ConfigKeyNames()) {
    EXPECT_NE(doc.find("\n| `" + key + "` |"), std::string::npos)
        << "docs/config.md has no row for " << key;
  }
}

}  // namespace
}  // namespace packvisor
