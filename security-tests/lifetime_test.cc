// Catalog group F (process lifetime and killing), through the real `packvisor exec`: actions that
// ignore SIGTERM, double-fork into a new session, leave children holding stdout, stop themselves,
// outlive a SIGKILLed supervisor, race pid reuse, or pile up orphans. Each test proves the attack
// ran (the action's own report, or its processes seen from the host) and that nothing of the
// sandbox is left afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "security-tests/suite_support.h"
#include "supervisor/config/config.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using testing::CommandResult;
using testing::RunPackvisor;
using testing::TempDir;

// Helpers shared with the other suites of groups E-H: security-tests/suite_support.h.
using namespace security_suite;

// The pids of `marker` processes that are sandbox processes (not packvisor or its init, whose
// command lines hold the marker as an argument too).
std::vector<pid_t> SandboxProcesses(const std::string& marker) {
  std::vector<pid_t> found;
  const std::string packvisor = std::filesystem::weakly_canonical(testing::PackvisorBinary());
  for (pid_t pid : testing::ProcessesWithMarker(marker)) {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    if (!ec && exe.string() == packvisor) continue;
    found.push_back(pid);
  }
  return found;
}

class LifetimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "security tests need root (packvisor sets up namespaces)";
    config_ = EffectiveConfig();
    // Build-tree runs use a 1 s grace so the suite stays fast; an installed run (the operator's
    // config in $PACKVISOR_TEST_CONFIG) keeps that config's grace.
    if (!testing::TestConfigFromEnvironment()) {
      config_dir_.Write("packvisor.toml", "[execution]\nkill_grace_seconds = 1\n");
      config_args_ = {"--config", config_dir_.Path("packvisor.toml")};
      config_.execution.kill_grace_seconds = 1;
    }
  }

  nlohmann::json Exec(const std::vector<std::string>& options, const std::vector<std::string>& argv,
                      CommandResult* raw = nullptr) {
    std::vector<std::string> args = config_args_;
    args.push_back("exec");
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--json");
    args.push_back("--");
    args.insert(args.end(), argv.begin(), argv.end());
    CommandResult run = RunPackvisor(args);
    if (raw != nullptr) *raw = run;
    return ParseResult(run);
  }

  // An env dir the sandbox's uid (whichever host id it gets) may write, for heartbeats.
  void MakeEnvWritable() { chmod(env_.path().c_str(), 0777); }

  Config config_;
  TempDir config_dir_;
  std::vector<std::string> config_args_;
  TempDir pack_;
  TempDir env_;
};

// --- F51: sleep forever and ignore SIGTERM ------------------------------------------------------

TEST_F(LifetimeTest, F51_term_ignoring_action_is_killed_after_the_grace) {
  HostGuard guard;
  const std::string marker = testing::UniqueMarker("pv-f51");
  // The trap proves SIGTERM arrived and was shrugged off; the loop goes on after it.
  const std::string script =
      "trap 'echo got-TERM' TERM; echo started; while :; do sleep 0.05; done";
  CommandResult raw;
  nlohmann::json result = Exec({"--timeout", "1"}, {"/bin/sh", "-c", script, marker}, &raw);
  std::vector<pid_t> left = SandboxProcesses(marker);

  std::string out = Field(result, "stdout");
  EXPECT_NE(out.find("started\n"), std::string::npos) << result.dump();
  EXPECT_NE(out.find("got-TERM\n"), std::string::npos) << "SIGTERM never reached the action";
  EXPECT_EQ(result.value("status", ""), "timed_out") << result.dump();
  EXPECT_EQ(result.value("timed_out", false), true);
  EXPECT_EQ(raw.exit_code, 124);
  const int64_t expected_ms = 1000 + config_.execution.kill_grace_seconds * 1000;
  int64_t duration = result.value("duration_ms", int64_t{-1});
  EXPECT_GE(duration, expected_ms - 100) << "killed before the grace ran out";
  EXPECT_LE(duration, expected_ms + 1500) << "not killed promptly after the grace";
  EXPECT_TRUE(left.empty()) << left.size() << " sandbox processes left";
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

TEST_F(LifetimeTest, F51_action_blocking_every_signal_is_killed_after_the_grace) {
  HostGuard guard;
  const std::string marker = testing::UniqueMarker("pv-f51b");
  const std::string code =
      "import signal, time\n"
      "signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))\n"
      "print('blocked', len(signal.pthread_sigmask(signal.SIG_BLOCK, [])), flush=True)\n"
      "while True: time.sleep(0.05)\n";
  CommandResult raw;
  nlohmann::json result = Exec({"--timeout", "1"}, {"/usr/bin/python3", "-c", code, marker}, &raw);
  std::vector<pid_t> left = SandboxProcesses(marker);
  EXPECT_NE(Field(result, "stdout").find("blocked "), std::string::npos) << result.dump();
  EXPECT_EQ(result.value("status", ""), "timed_out") << result.dump();
  EXPECT_LE(result.value("duration_ms", int64_t{-1}),
            1000 + config_.execution.kill_grace_seconds * 1000 + 1500);
  EXPECT_TRUE(left.empty()) << left.size() << " sandbox processes left";
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- F52: double fork + setsid
// --------------------------------------------------------------------

TEST_F(LifetimeTest, F52_double_forked_setsid_grandchild_dies_with_the_run) {
  HostGuard guard;
  MakeEnvWritable();
  const std::string marker = testing::UniqueMarker("pv-f52");
  pack_.Write("f52_double_fork.py", Script("f52_double_fork.py"));
  CommandResult raw;
  nlohmann::json result =
      Exec({"--pack-dir", pack_.path(), "--env-dir", env_.path(), "--timeout", "30"},
           {"/usr/bin/python3", "/pack/f52_double_fork.py", "/env/hb", marker}, &raw);
  std::vector<pid_t> left = SandboxProcesses(marker);
  struct stat st {};
  off_t size_at_result = stat(env_.Path("hb").c_str(), &st) == 0 ? st.st_size : -1;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  off_t size_later = stat(env_.Path("hb").c_str(), &st) == 0 ? st.st_size : -1;

  std::string out = Field(result, "stdout");
  std::smatch parent, grandchild;
  ASSERT_TRUE(std::regex_search(out, parent, std::regex("parent pid=(\\d+) sid=(\\d+)")))
      << result.dump();
  ASSERT_TRUE(std::regex_search(out, grandchild, std::regex("grandchild pid=(\\d+) sid=(\\d+)")))
      << result.dump();
  EXPECT_NE(parent[2].str(), grandchild[2].str()) << "the grandchild did not get a new session";
  EXPECT_EQ(result.value("status", ""), "succeeded") << result.dump();
  EXPECT_GT(size_at_result, 0) << "the grandchild never wrote its heartbeat";
  EXPECT_EQ(size_later, size_at_result) << "the heartbeat kept growing after the result";
  EXPECT_TRUE(left.empty()) << left.size() << " processes of the run survived it";
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- F53: a background child holds stdout open
// ------------------------------------------------------

TEST_F(LifetimeTest, F53_run_ends_when_main_exits_although_a_child_holds_stdout) {
  HostGuard guard;
  const std::string marker = testing::UniqueMarker("pv-f53");
  const std::string script =
      "sh -c 'while :; do sleep 0.05; done' bg-" + marker + " & echo main-exits; exit 0";
  auto start = std::chrono::steady_clock::now();
  CommandResult raw;
  nlohmann::json result = Exec({"--timeout", "30"}, {"/bin/sh", "-c", script, marker}, &raw);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<pid_t> left = SandboxProcesses(marker);
  EXPECT_EQ(Field(result, "stdout"), "main-exits\n") << result.dump();
  EXPECT_EQ(result.value("status", ""), "succeeded") << result.dump();
  EXPECT_EQ(result.value("exit_code", -1), 0);
  EXPECT_LT(seconds, 1.5) << "the run waited for the background child";
  EXPECT_TRUE(left.empty()) << left.size() << " processes left (the background child?)";
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- F54: stopped processes
// ---------------------------------------------------------------------------

TEST_F(LifetimeTest, F54_stopped_processes_are_killed_at_the_timeout) {
  HostGuard guard;
  const std::string marker = testing::UniqueMarker("pv-f54");
  // A child stops itself, the main process reports the child's state and then stops itself too.
  const std::string script =
      "sh -c 'kill -STOP $$; sleep 100' stopped-" + marker +
      " & child=$!; sleep 0.3; echo child-state $(cut -d' ' -f3 /proc/$child/stat); "
      "kill -STOP $$; sleep 100";
  CommandResult raw;
  nlohmann::json result = Exec({"--timeout", "1"}, {"/bin/sh", "-c", script, marker}, &raw);
  std::vector<pid_t> left = SandboxProcesses(marker);
  EXPECT_NE(Field(result, "stdout").find("child-state T\n"), std::string::npos)
      << "the child never stopped: " << result.dump();
  EXPECT_EQ(result.value("status", ""), "timed_out") << result.dump();
  EXPECT_LE(result.value("duration_ms", int64_t{-1}),
            1000 + config_.execution.kill_grace_seconds * 1000 + 1500);
  EXPECT_TRUE(left.empty()) << left.size() << " stopped processes survived";
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- F55: the supervisor dies
// ---------------------------------------------------------------------

TEST_F(LifetimeTest, F55_sigkilled_supervisor_takes_the_sandbox_with_it) {
  HostGuard guard;
  const std::string marker = testing::UniqueMarker("pv-f55");
  pack_.Write("f52_double_fork.py", Script("f52_double_fork.py"));
  // The main process loops; a double-forked setsid grandchild loops too.
  const std::string script =
      "python3 /pack/f52_double_fork.py /tmp/hb " + marker + "; while :; do sleep 0.05; done";
  std::vector<std::string> args = config_args_;
  for (const std::string& a : {std::string("exec"), std::string("--pack-dir"), pack_.path(),
                               std::string("--timeout"), std::string("60"), std::string("--"),
                               std::string("/bin/sh"), std::string("-c"), script, marker}) {
    args.push_back(a);
  }
  pid_t supervisor = testing::SpawnPackvisor(args);
  size_t seen = 0;
  for (int i = 0; i < 500 && seen < 2; ++i) {
    seen = SandboxProcesses(marker).size();  // the sh main and the python grandchild
    if (seen < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(kill(supervisor, SIGKILL), 0);
  int status = 0;
  waitpid(supervisor, &status, 0);
  std::vector<pid_t> left = testing::WaitForNoProcessesWithMarker(marker, 1000);
  ASSERT_GE(seen, 2u) << "the sandbox never started its processes";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(left.empty()) << left.size() << " sandbox processes outlived the supervisor by 1 s";
  guard.ExpectUnchanged();
}

// --- F56: pid reuse
// -----------------------------------------------------------------------------------

// A host process that blocks every signal and reports each one it receives on a pipe.
class SignalSentinel {
 public:
  SignalSentinel() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    pid_ = fork();
    if (pid_ == 0) {
      sigset_t all;
      sigfillset(&all);
      sigprocmask(SIG_BLOCK, &all, nullptr);
      close(fds[0]);
      for (;;) {
        int sig = sigwaitinfo(&all, nullptr);
        if (sig > 0) (void)!write(fds[1], &sig, sizeof(sig));
      }
    }
    close(fds[1]);
    read_fd_ = fds[0];
    fcntl(read_fd_, F_SETFL, O_NONBLOCK);
  }
  ~SignalSentinel() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(read_fd_);
  }
  pid_t pid() const { return pid_; }
  std::vector<int> Received() const {
    std::vector<int> signals;
    int sig;
    while (read(read_fd_, &sig, sizeof(sig)) == static_cast<ssize_t>(sizeof(sig))) {
      signals.push_back(sig);
    }
    return signals;
  }
  bool AliveAndRunning() const {
    if (waitpid(pid_, nullptr, WNOHANG) != 0) return false;
    std::string stat = testing::ReadFileOrEmpty("/proc/" + std::to_string(pid_) + "/stat");
    size_t close = stat.rfind(')');
    return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] == 'S';
  }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
};

TEST_F(LifetimeTest, F56_many_runs_timing_out_at_exit_never_signal_a_host_process) {
  HostGuard guard;
  SignalSentinel sentinel;
  // Actions that end right around their 50 ms timeout, so kills race the exit.
  const std::vector<std::string> scripts = {"sleep 0.04", "sleep 0.05", "sleep 0.06", "exit 0"};
  std::atomic<int> timed_out{0}, succeeded{0}, other{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 5; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < 10; ++i) {
        std::vector<std::string> args = config_args_;
        for (const char* a : {"exec", "--timeout", "0.05", "--json", "--", "/bin/sh", "-c"}) {
          args.push_back(a);
        }
        args.push_back(scripts[static_cast<size_t>(w + i) % scripts.size()]);
        CommandResult run = RunPackvisor(args);
        if (run.exit_code == 124) {
          ++timed_out;
        } else if (run.exit_code == 0) {
          ++succeeded;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(timed_out + succeeded + other, 50);
  EXPECT_GT(timed_out, 0) << "no run reached its timeout: the race was not exercised";
  EXPECT_GT(succeeded, 0) << "every run timed out: the exit side of the race was not exercised";
  EXPECT_EQ(other, 0);
  EXPECT_TRUE(sentinel.Received().empty()) << "the host sentinel got a signal";
  EXPECT_TRUE(sentinel.AliveAndRunning()) << "the host sentinel was killed or stopped";
  guard.ExpectUnchanged();
}

// The lint half of F56: signals go through pidfds. Raw kill() is allowed only in the sandbox's
// init (it runs inside the pid namespace, where every pid is the sandbox's).
TEST(F56_pid_reuse, NoRawKillOutsideThePidfdWrapper) {
  const std::string source = testing::SourceDir();
  if (!std::filesystem::is_directory(source + "/sandbox")) {
    GTEST_SKIP() << "source tree not available (installed run)";
  }
  std::vector<std::string> offenders;
  std::regex raw_kill("(^|[^_a-zA-Z0-9.>])kill(pg)?\\s*\\(");
  for (const char* dir : {"sandbox", "supervisor", "envs"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(source + "/" + dir)) {
      std::string path = entry.path().string();
      if (path.size() < 3 ||
          (path.substr(path.size() - 3) != ".cc" && path.substr(path.size() - 2) != ".h")) {
        continue;
      }
      if (entry.path().filename() == "init.cc") continue;
      int number = 0;
      for (const std::string& line : testing::Lines(testing::ReadFileOrEmpty(path))) {
        ++number;
        std::string code = line.substr(0, line.find("//"));
        // kill(pid, 0) only asks whether a pid exists; it sends nothing.
        if (std::regex_search(code, raw_kill) && code.find(", 0)") == std::string::npos) {
          offenders.push_back(path.substr(source.size() + 1) + ":" + std::to_string(number) + ": " +
                              line);
        }
      }
    }
  }
  std::string list;
  for (const std::string& o : offenders) list += "  " + o + "\n";
  EXPECT_TRUE(offenders.empty()) << "raw kill() by pid number (pid reuse hazard):\n" << list;
}

// --- F57: hiding resource use from accounting
// ------------------------------------------------------

// Two double-forked setsid burners spin until together they used 2 s of CPU; the main process
// never waits for them and exits, and they die with the sandbox, so no wait4 ever sees their
// time. The reported CPU time must still include it: it comes from the cgroup.
TEST_F(LifetimeTest, F57_detached_children_cpu_is_accounted) {
  HostGuard guard;
  const std::string marker = testing::UniqueMarker("pv-f57");
  pack_.Write("f57_hidden_cpu.py", Script("f57_hidden_cpu.py"));
  CommandResult raw;
  nlohmann::json result =
      Exec({"--pack-dir", pack_.path(), "--timeout", "60"},
           {"/usr/bin/python3", "/pack/f57_hidden_cpu.py", "2000", marker}, &raw);
  std::vector<pid_t> left = SandboxProcesses(marker);

  // The attack ran: both burners started in sessions of their own and burned 2 s between them,
  // none of which reached the main process's wait4 accounting.
  std::string out = Field(result, "stdout");
  std::smatch main_sid, m;
  ASSERT_TRUE(std::regex_search(out, main_sid, std::regex("main pid=\\d+ sid=(\\d+)")))
      << result.dump();
  std::vector<std::string> sessions;
  for (const char* burner : {"burner 0", "burner 1"}) {
    ASSERT_TRUE(std::regex_search(
        out, m, std::regex(std::string(burner) + " started pid=(\\d+) sid=(\\d+)")))
        << burner << " never started: " << result.dump();
    EXPECT_NE(m[2].str(), main_sid[1].str()) << burner << " shares the main process's session";
    sessions.push_back(m[2].str());
  }
  EXPECT_NE(sessions[0], sessions[1]) << "the burners share one session";
  ASSERT_TRUE(std::regex_search(out, m, std::regex("burners cpu_ms (\\d+)"))) << out;
  const int64_t burned = std::stoll(m[1].str());
  EXPECT_GE(burned, 2000) << "the burners stopped early: " << out;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("wait4 children cpu_ms (\\d+)"))) << out;
  EXPECT_LT(std::stoll(m[1].str()), 200) << "the burners' time reached wait4 after all: " << out;

  // The defence held: the cgroup counted it.
  EXPECT_EQ(result.value("status", ""), "succeeded") << result.dump();
  ASSERT_TRUE(result.contains("usage") && result["usage"].contains("cpu_ms")) << result.dump();
  const int64_t reported = result["usage"]["cpu_ms"].get<int64_t>();
  EXPECT_GE(reported, 1800) << "detached children's CPU time is missing from usage.cpu_ms";
  EXPECT_GE(reported, burned - 50) << "reported " << reported << " ms, burners alone " << burned;
  EXPECT_TRUE(left.empty()) << left.size() << " burners survived the run";
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- F58: the action is not PID 1
// -----------------------------------------------------------------

TEST_F(LifetimeTest, F58_action_is_not_pid1_and_its_orphans_are_reaped) {
  HostGuard guard;
  pack_.Write("f58_orphans.py", Script("f58_orphans.py"));
  CommandResult raw;
  nlohmann::json result = Exec({"--pack-dir", pack_.path(), "--timeout", "60"},
                               {"/usr/bin/python3", "/pack/f58_orphans.py", "1000"}, &raw);
  std::string out = Field(result, "stdout");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("self pid (\\d+) ppid (\\d+)"))) << out;
  EXPECT_NE(m[1].str(), "1") << "the action is PID 1 of the sandbox";
  EXPECT_EQ(m[2].str(), "1") << "the action's parent is not the sandbox init";
  ASSERT_TRUE(std::regex_search(out, m, std::regex("orphans made (\\d+)"))) << out;
  EXPECT_GE(std::stoi(m[1].str()), 900) << "the orphan burst did not happen";
  ASSERT_TRUE(std::regex_search(out, m, std::regex("zombies (\\d+)"))) << out;
  EXPECT_LT(std::stoi(m[1].str()), 10) << "orphans are not reaped";
  // SIGTERM to itself works: a PID 1 without a handler would have ignored it.
  EXPECT_EQ(out.find("still alive"), std::string::npos) << out;
  EXPECT_EQ(result.value("signal", nlohmann::json()), nlohmann::json(SIGTERM)) << result.dump();
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

}  // namespace
}  // namespace packvisor
