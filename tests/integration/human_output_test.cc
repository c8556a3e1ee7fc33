// Human output of `run` and `exec` (issue 11, item 12): the action's output is streamed live to
// the CLI's stdout/stderr (exactly what is captured: nothing past the cap, then the marker), the
// summary line says when output was truncated, `exec --json` fills `error` for a non-zero exit,
// error lines say what and where once, and `exec --pack-dir/--env-dir` take relative paths.
// Real binary, real sandbox; the streaming tests put the CLI on a pseudo-terminal.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// What a run on a terminal showed, and when (ms after the start) each line arrived.
struct TerminalRun {
  std::string text;  // "\r\n" turned into "\n"
  std::vector<std::pair<std::string, int64_t>> lines;
  int exit_code = -1;

  int64_t MsUntilLine(const std::string& line) const {
    for (const auto& [text_line, ms] : lines) {
      if (text_line == line) return ms;
    }
    return -1;
  }
};

// Runs `packvisor ARGS...` with stdin, stdout and stderr on a new pseudo-terminal (forkpty).
TerminalRun RunOnTerminal(const std::vector<std::string>& args) {
  std::vector<std::string> full = {PackvisorBinary()};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : full) argv.push_back(arg.data());
  argv.push_back(nullptr);
  TerminalRun run;
  Clock::time_point start = Clock::now();
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) throw std::runtime_error("forkpty failed");
  if (pid == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  unique_fd terminal(master);
  std::string pending;
  for (;;) {
    struct pollfd readable = {terminal.get(), POLLIN, 0};
    if (poll(&readable, 1, 20000) <= 0) break;  // a hung run fails the test below
    char buffer[4096];
    ssize_t n = read(terminal.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EIO: every holder of the terminal's other end has closed it
    int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    for (ssize_t i = 0; i < n; ++i) {
      if (buffer[i] == '\r') continue;
      run.text += buffer[i];
      if (buffer[i] == '\n') {
        run.lines.emplace_back(pending, ms);
        pending.clear();
      } else {
        pending += buffer[i];
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

// The config arguments the harness would give (an installed suite's configuration).
std::vector<std::string> ConfigArgs() {
  std::optional<std::string> config = TestConfigFromEnvironment();
  if (!config) return {};
  return {"--config", *config};
}

TEST(LiveOutput, ExecStreamsToTheTerminalAsItIsWritten) {
  std::vector<std::string> args = ConfigArgs();
  for (const char* arg : {"exec", "--", "/bin/sh", "-c", "echo one; sleep 2; echo two"}) {
    args.push_back(arg);
  }
  TerminalRun run = RunOnTerminal(args);
  ASSERT_EQ(run.exit_code, 0) << run.text;
  int64_t one = run.MsUntilLine("one");
  int64_t two = run.MsUntilLine("two");
  ASSERT_GE(one, 0) << run.text;
  ASSERT_GE(two, 0) << run.text;
  // Without streaming both lines arrive together, after the 2 s sleep.
  EXPECT_LT(one, 1000) << "the first line took " << one << " ms to reach the terminal";
  EXPECT_GE(two - one, 1500) << "one at " << one << " ms, two at " << two << " ms";
}

TEST(LiveOutput, RunStreamsTheActionsStdoutAndStderr) {
  RunWorld world;
  std::filesystem::create_directories(world.PacksDir());
  std::filesystem::copy(SourceDir() + "/tests/fixtures/packs/original_outputs",
                        world.PackDir("original_outputs"),
                        std::filesystem::copy_options::recursive);
  world.WriteConfig();
  TerminalRun run =
      RunOnTerminal({"--config", world.ConfigPath(), "run", "original_outputs.slow_lines"});
  ASSERT_EQ(run.exit_code, 0) << run.text;
  int64_t one = run.MsUntilLine("one");
  int64_t err_one = run.MsUntilLine("err-one");
  int64_t two = run.MsUntilLine("two");
  ASSERT_GE(one, 0) << run.text;
  ASSERT_GE(err_one, 0) << run.text;
  ASSERT_GE(two, 0) << run.text;
  EXPECT_GE(two - one, 1500) << run.text;
  EXPECT_GE(two - err_one, 1500) << run.text;
  // The summary comes last, once.
  ASSERT_FALSE(run.lines.empty());
  EXPECT_THAT(run.lines.back().first, HasSubstr("original_outputs.slow_lines: succeeded"));
}

TEST(LiveOutput, WhatIsStreamedIsExactlyWhatIsCapturedUpToTheCap) {
  RunWorld world;
  world.WriteConfig("[execution]\nmax_stdout_bytes = 1024\nmax_stderr_bytes = 1024\n");
  // Multi-byte characters, so the cut at the cap must fall on a UTF-8 boundary in both.
  std::vector<std::string> command = {
      "/bin/sh", "-c",
      "i=0; while [ $i -lt 600 ]; do printf 'ab\\303\\251'; i=$((i+1)); done; "
      "echo to-err >&2"};
  std::vector<std::string> human = {"exec", "--"};
  human.insert(human.end(), command.begin(), command.end());
  std::vector<std::string> json = {"exec", "--json", "--"};
  json.insert(json.end(), command.begin(), command.end());
  CommandResult streamed = world.Cli(human);
  CommandResult captured = world.Cli(json);
  ASSERT_EQ(streamed.exit_code, 0) << streamed.stderr_text;
  ASSERT_EQ(captured.exit_code, 0) << captured.stderr_text;
  nlohmann::json j = captured.Json();
  ASSERT_EQ(j["stdout_truncated"], true);
  EXPECT_EQ(streamed.stdout_text, j["stdout"].get<std::string>());
  EXPECT_THAT(streamed.stdout_text, HasSubstr("[OUTPUT TRUNCATED: stdout exceeded size limit]"));
  EXPECT_LE(streamed.stdout_text.size(), 1024u);
  // stderr: the action's line, then the summary, which says what was truncated.
  std::vector<std::string> lines = Lines(streamed.stderr_text);
  ASSERT_EQ(lines.size(), 2u) << streamed.stderr_text;
  EXPECT_EQ(lines[0], "to-err");
  EXPECT_THAT(lines[1], HasSubstr("stdout truncated"));
  EXPECT_THAT(lines[1], HasSubstr(std::to_string(j["stdout_bytes_truncated"].get<uint64_t>())));
}

TEST(LiveOutput, JsonModeStreamsNothing) {
  RunWorld world;
  CommandResult r = world.Cli({"exec", "--json", "--", "/bin/sh", "-c", "echo out; echo err >&2"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(Lines(r.stdout_text).size(), 1u) << r.stdout_text;
  EXPECT_EQ(r.Json()["stdout"], "out\n");
  EXPECT_EQ(r.stderr_text, "");
}

TEST(HumanSummary, RunSaysWhenOutputWasTruncated) {
  RunWorld world;
  world.WriteSimpleAction("big", "flood", "shell", "flood.sh",
                          "head -c 5000 /dev/zero | tr '\\0' x\n");
  world.WriteConfig("[execution]\nmax_stdout_bytes = 1024\n");
  CommandResult r = world.Cli({"run", "big.flood"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::vector<std::string> lines = Lines(r.stderr_text);
  ASSERT_EQ(lines.size(), 1u) << r.stderr_text;
  EXPECT_THAT(lines[0], HasSubstr("big.flood: succeeded"));
  EXPECT_THAT(lines[0], HasSubstr("stdout truncated"));
  EXPECT_THAT(lines[0], HasSubstr("execution.max_stdout_bytes"));
}

TEST(ExecJson, NonZeroExitFillsErrorAsRunDoes) {
  CommandResult r =
      RunExec({"--json"}, {"/bin/sh", "-c", "echo partial; echo disk is full >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["error"], "disk is full");
  CommandResult quiet = RunExec({"--json"}, {"/bin/sh", "-c", "exit 4"});
  EXPECT_EQ(quiet.exit_code, 4);
  EXPECT_EQ(quiet.Json()["error"], "exited with code 4");
}

// ---- Error lines: what and where, once. ----

size_t Occurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

TEST(ErrorLines, NameTheActionOnce) {
  RunWorld world;
  world.WriteSimpleAction("style", "greet", "shell", "greet.sh", "echo hi\n",
                          "parameters:\n  who: {type: string, required: true}\n"
                          "  token: {type: string, secret: true, required: true}\n");
  world.WriteSimpleAction("style", "off", "shell", "off.sh", "echo hi\n", "enabled: false\n");
  world.WriteSimpleAction("style", "who", "shell", "who.sh", "echo hi\n",
                          "parameters:\n  who: {type: string, required: true}\n");
  struct Case {
    std::vector<std::string> args;
    std::string action;
    std::vector<std::string> needles;
  };
  for (const Case& c : std::vector<Case>{
           {{"run", "style.who"}, "style.who", {"missing required parameter \"who\""}},
           {{"run", "style.greet", "--param", "who=x"},
            "style.greet",
            {"missing required secret \"token\"", "--secrets-file", "--secrets-stdin"}},
           {{"run", "style.greet", "--param", "who=x", "--param", "whom=y"},
            "style.greet",
            {"unknown parameter \"whom\""}},
           {{"run", "style.off"}, "style.off", {"disabled", "off.yaml"}},
       }) {
    CommandResult r = world.Cli(c.args);
    EXPECT_EQ(r.exit_code, 125) << r.stderr_text;
    std::vector<std::string> lines = Lines(r.stderr_text);
    ASSERT_EQ(lines.size(), 1u) << r.stderr_text;
    EXPECT_EQ(lines[0].rfind("packvisor: " + c.action + ": rejected: ", 0), 0u) << lines[0];
    EXPECT_EQ(Occurrences(lines[0], c.action), 1u) << lines[0];
    for (const std::string& needle : c.needles) EXPECT_THAT(lines[0], HasSubstr(needle));
  }
}

// ---- Relative paths (item 10). ----

// Runs `packvisor ARGS...` from `cwd` (a shell cd, then exec); returns stdout, and the exit code.
std::pair<std::string, int> RunIn(const std::string& cwd, const std::vector<std::string>& args) {
  std::string command = "cd '" + cwd + "' && exec '" + PackvisorBinary() + "'";
  for (const std::string& arg : ConfigArgs()) command += " '" + arg + "'";
  for (const std::string& arg : args) command += " '" + arg + "'";
  command += " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed");
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  int status = pclose(pipe);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

TEST(ExecPaths, RelativePackAndEnvDirsAreTakenFromTheWorkingDirectory) {
  TempDir dir;
  dir.Write("mypack/marker-in-pack", "p\n");
  dir.Write("myenv/marker-in-env", "e\n");
  auto [out, code] = RunIn(dir.path(), {"exec", "--pack-dir", "./mypack", "--env-dir", "myenv/",
                                        "--", "/bin/ls", "/pack", "/env"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("marker-in-pack"));
  EXPECT_THAT(out, HasSubstr("marker-in-env"));
  dir.Write("sub/placeholder", "");
  auto [up, up_code] =
      RunIn(dir.path() + "/sub", {"exec", "--pack-dir", "../mypack", "--", "/bin/ls", "/pack"});
  EXPECT_EQ(up_code, 0) << up;
  EXPECT_THAT(up, HasSubstr("marker-in-pack"));
  // A '..' after a name of the argument (which may be a symbolic link) is refused, as in an
  // absolute path.
  auto [inner, inner_code] =
      RunIn(dir.path(), {"exec", "--pack-dir", "mypack/../mypack", "--", "/bin/true"});
  EXPECT_EQ(inner_code, 125) << inner;
  EXPECT_THAT(inner, HasSubstr(dir.path() + "/mypack/../mypack"));
  auto [missing, missing_code] =
      RunIn(dir.path(), {"exec", "--pack-dir", "./nope", "--", "/bin/true"});
  EXPECT_EQ(missing_code, 125) << missing;
  EXPECT_THAT(missing, HasSubstr(dir.path() + "/nope")) << "the error names the resolved path";
}

}  // namespace
}  // namespace packvisor::testing
