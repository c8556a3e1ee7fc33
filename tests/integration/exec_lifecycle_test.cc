// How sandboxes end: timeouts, SIGTERM then SIGKILL, daemonized grandchildren, the supervisor
// dying; and what the sandbox's processes look like from the host while they run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace packvisor::testing {
namespace {

using ::testing::IsEmpty;

constexpr uid_t kSandboxHostId = 100000;  // default sandbox.uid_range start

std::vector<std::string> ShellCommand(const std::string& script) {
  return {"/bin/sh", "-c", script};
}

// An env dir the sandbox user can write to.
void MakeWritableBySandbox(const TempDir& dir) { dir.Chown(kSandboxHostId, kSandboxHostId); }

// A daemon in the making: a subshell starts `setsid sh -c BODY` in the background and exits, so
// that the daemon is reparented to the sandbox's init, in its own session, with no tty.
std::string DoubleForkedDaemon(const std::string& body) {
  return "( setsid /bin/sh -c '" + body + "' </dev/null >/dev/null 2>&1 & ); ";
}

// Asserts that no process carries `marker` (after a short grace), then kills any that do, so that
// a failing test does not leave its sandbox running.
void ExpectNoSurvivors(const std::string& marker, int grace_ms) {
  std::vector<pid_t> left = WaitForNoProcessesWithMarker(marker, grace_ms);
  EXPECT_THAT(left, IsEmpty()) << "processes carrying " << marker << " survived";
  for (pid_t pid : left) kill(pid, SIGKILL);
}

int64_t ElapsedMs(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

TEST(ExecTimeout, KillsADoubleForkedSetsidGrandchild) {
  TempDir env;
  MakeWritableBySandbox(env);
  std::string marker = UniqueMarker("daemon");
  std::string script = DoubleForkedDaemon("echo $$ > /env/daemon.pid; sleep 30; : " + marker) +
                       "sleep 30; : " + marker;
  CommandResult r =
      RunExec({"--env-dir", env.path(), "--timeout", "1", "--json"}, ShellCommand(script));
  EXPECT_EQ(r.exit_code, 124) << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "timed_out");
  // The daemon really ran...
  EXPECT_FALSE(ReadFileOrEmpty(env.Path("daemon.pid")).empty());
  // ...and nothing carrying the marker survives on the host.
  ExpectNoSurvivors(marker, 300);
}

TEST(ExecTimeout, SigtermIgnoringTreeIsKilledAfterTheGrace) {
  TempDir env;
  MakeWritableBySandbox(env);
  std::string marker = UniqueMarker("stubborn");
  std::string loop =
      "trap \"\" TERM; echo up > /env/daemon.up; while :; do sleep 0.2; done; : " + marker;
  std::string script =
      DoubleForkedDaemon(loop) + "trap '' TERM; while :; do sleep 0.2; done; : " + marker;
  auto start = std::chrono::steady_clock::now();
  CommandResult r =
      RunExec({"--env-dir", env.path(), "--timeout", "1", "--json"}, ShellCommand(script));
  int64_t elapsed = ElapsedMs(start);
  EXPECT_EQ(r.exit_code, 124) << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "timed_out");
  EXPECT_EQ(j["timed_out"], true);
  EXPECT_EQ(ReadFileOrEmpty(env.Path("daemon.up")), "up\n");
  // SIGTERM at 1 s, SIGKILL after execution.kill_grace_seconds (5 by default).
  EXPECT_GE(j["duration_ms"].get<int64_t>(), 5500);
  EXPECT_LT(elapsed, 15000);
  ExpectNoSurvivors(marker, 300);
}

TEST(ExecTimeout, SigtermComesFirstSoTheActionCanCleanUp) {
  TempDir env;
  MakeWritableBySandbox(env);
  std::string script =
      "trap 'echo cleaned > /env/cleanup; exit 0' TERM; while :; do sleep 0.1; done";
  CommandResult r =
      RunExec({"--env-dir", env.path(), "--timeout", "1", "--json"}, ShellCommand(script));
  EXPECT_EQ(r.exit_code, 124) << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "timed_out");
  EXPECT_EQ(ReadFileOrEmpty(env.Path("cleanup")), "cleaned\n");
  // It ended on SIGTERM: well before the kill grace ran out.
  EXPECT_LT(j["duration_ms"].get<int64_t>(), 4000);
}

TEST(ExecLifecycle, ExitingActionTakesItsDaemonWithIt) {
  TempDir env;
  MakeWritableBySandbox(env);
  std::string marker = UniqueMarker("orphan");
  std::string script = DoubleForkedDaemon("echo $$ > /env/daemon.pid; sleep 30; : " + marker) +
                       "while [ ! -s /env/daemon.pid ]; do sleep 0.05; done; exit 5";
  auto start = std::chrono::steady_clock::now();
  CommandResult r = RunExec({"--env-dir", env.path(), "--timeout", "20"}, ShellCommand(script));
  EXPECT_EQ(r.exit_code, 5) << r.stderr_text;
  EXPECT_LT(ElapsedMs(start), 10000) << "packvisor waited for the daemon";
  EXPECT_FALSE(ReadFileOrEmpty(env.Path("daemon.pid")).empty());
  ExpectNoSurvivors(marker, 300);
}

TEST(ExecLifecycle, SandboxDiesWithTheSupervisor) {
  TempDir env;
  MakeWritableBySandbox(env);
  std::string marker = UniqueMarker("orphaned-sandbox");
  pid_t supervisor = SpawnPackvisor({"exec", "--env-dir", env.path(), "--timeout", "30", "--",
                                     "/bin/sh", "-c", "echo > /env/ready; sleep 30; : " + marker});
  bool ready = WaitForPath(env.Path("ready"), 5000);
  std::vector<pid_t> running = ProcessesWithMarker(marker);
  kill(supervisor, SIGKILL);
  int status = 0;
  waitpid(supervisor, &status, 0);
  ASSERT_TRUE(ready) << "the action never started";
  // packvisor, the sandbox init and the shell all carry the marker in their argv.
  EXPECT_GE(running.size(), 2u);
  ExpectNoSurvivors(marker, 2000);
}

std::map<std::string, std::string> StatusOf(pid_t pid) {
  std::map<std::string, std::string> fields;
  for (const std::string& line :
       Lines(ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/status"))) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::istringstream in(line.substr(colon + 1));
    std::string word, value;
    while (in >> word) value += (value.empty() ? "" : " ") + word;
    fields[line.substr(0, colon)] = value;
  }
  return fields;
}

TEST(ExecHostView, SandboxProcessesRunAsTheUnprivilegedHostId) {
  TempDir env;
  MakeWritableBySandbox(env);
  std::string marker = UniqueMarker("hostview");
  pid_t supervisor = SpawnPackvisor({"exec", "--env-dir", env.path(), "--timeout", "10", "--",
                                     "/bin/sh", "-c", "echo > /env/ready; sleep 2; : " + marker});
  bool ready = WaitForPath(env.Path("ready"), 5000);
  std::vector<pid_t> pids = ProcessesWithMarker(marker);
  std::vector<std::map<std::string, std::string>> statuses;
  for (pid_t pid : pids) {
    if (pid == supervisor) continue;
    statuses.push_back(StatusOf(pid));
    // The action shell's parent is the sandbox's init, whose command line (its title) does not
    // carry the marker.
    std::string parent = statuses.back()["PPid"];
    if (!parent.empty() && std::stoi(parent) != supervisor) {
      statuses.push_back(StatusOf(std::stoi(parent)));
    }
  }
  int status = 0;
  waitpid(supervisor, &status, 0);
  ASSERT_TRUE(ready);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // The sandbox init and the action shell.
  ASSERT_GE(statuses.size(), 2u);
  std::string id = std::to_string(kSandboxHostId);
  std::string four = id + " " + id + " " + id + " " + id;
  for (auto& fields : statuses) {
    if (fields.empty()) continue;  // exited meanwhile
    EXPECT_EQ(fields["Uid"], four) << fields["Name"];
    EXPECT_EQ(fields["Gid"], four) << fields["Name"];
    EXPECT_EQ(fields["CapEff"], "0000000000000000") << fields["Name"];
    EXPECT_EQ(fields["Groups"], "") << fields["Name"];
  }
}

}  // namespace
}  // namespace packvisor::testing
