// Catalog group D (secrets and confidentiality across actions), entries 38-44, through the real
// `packvisor run` of a Python action (scripts/d_secret_action.py) that receives a fresh secret
// token on stdin (--secrets-file). The action never prints the token unless the test says so;
// it prints "reached" once the secret has arrived. The host looks for the token everywhere
// else: other processes' environ and cmdline while the action runs, packvisor's trace log and
// error text, files outside the execution, and the next action's view.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "security-tests/probe_suite.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using testing::TempDir;
using namespace probe_suite;

std::string Secret() { return "S3CR3T-" + testing::UniqueMarker("tok"); }

// A world with the pack "vault" whose action "secret" runs d_secret_action.py (under a file
// name unique to this test, so that host-side sampling can tell its process apart).
class SecretWorld : public World {
 public:
  SecretWorld() : script_("d-" + testing::UniqueMarker("act") + ".py") {
    Action("vault", "secret", "python", script_, Script("d_secret_action.py"),
           "parameters:\n"
           "  token:\n    type: string\n    secret: true\n    required: true\n"
           "  mode:\n    type: string\n    default: hold\n"
           "  needle:\n    type: string\n    default: ''\n"
           "  index:\n    type: integer\n    default: 0\n"
           "  count:\n    type: integer\n    default: 1\n");
  }
  const std::string& script() const { return script_; }
  // Writes a 0600 secrets file holding {"token": TOKEN}; returns its path.
  std::string SecretsFile(const std::string& token) const {
    std::string name = "secrets-" + testing::UniqueMarker("f") + ".json";
    Write(name, nlohmann::json({{"token", token}}).dump() + "\n", 0600);
    return Path(name);
  }
  Outcome RunSecret(const std::string& token, const std::string& mode,
                    const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {
        "--log-level",      "trace",     "run",         "vault.secret",
        "--json",           "--timeout", "3",           "--secrets-file",
        SecretsFile(token), "--param",   "mode=" + mode};
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args);
  }

 private:
  std::string script_;
};

// --- D38: secrets in environ or argv --------------------------------------------------------

// Host processes (not this one) whose environ or cmdline contains `needle`.
std::vector<std::string> HostProcessesHolding(const std::string& needle) {
  std::vector<std::string> hits;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (name == std::to_string(getpid())) continue;
    for (const char* what : {"environ", "cmdline"}) {
      if (ReadFile("/proc/" + name + "/" + what).find(needle) != std::string::npos) {
        hits.push_back(name + "/" + what + ": " + ReadFile("/proc/" + name + "/comm"));
      }
    }
  }
  return hits;
}

TEST(SecretsTest, D38_secret_absent_from_every_host_environ_and_cmdline) {
  RequireRoot();
  SecretWorld world;
  const std::string token = Secret();
  std::atomic<bool> done{false};
  Outcome run;
  std::thread runner([&] {
    run = world.RunSecret(token, "hold");
    done = true;
  });
  int samples_with_action = 0;
  std::set<std::string> leaks;
  while (!done) {
    for (const std::string& hit : HostProcessesHolding(token)) leaks.insert(hit);
    if (!testing::ProcessesWithMarker(world.script()).empty()) ++samples_with_action;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  runner.join();
  nlohmann::json result = Result(run);
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached " + std::to_string(token.size())))
      << "the secret never arrived: " << run.out << run.err;
  EXPECT_GE(samples_with_action, 5) << "the host hardly sampled while the action ran";
  std::string leak_text;
  for (const std::string& leak : leaks) leak_text += leak + "\n";
  EXPECT_TRUE(leaks.empty()) << "the secret is in host processes:\n" << leak_text;
  // The action's own view: not in its environ, argv, or any visible process's.
  EXPECT_TRUE(HasLine(out, "in_own_environ False")) << out;
  EXPECT_TRUE(HasLine(out, "in_own_cmdline False")) << out;
  EXPECT_TRUE(HasLine(out, "in_visible_procs False")) << out;
  EXPECT_EQ(run.out.find(token), std::string::npos);
  EXPECT_EQ(run.err.find(token), std::string::npos) << "the secret is in the trace log";
  EXPECT_EQ(result.value("status", ""), "succeeded") << run.out;
}

// --- D39: the sandbox init's (and the supervisor's) memory and environment ---------------------

TEST(SecretsTest, D39_init_environ_and_memory_not_readable_from_inside) {
  RequireRoot();
  SecretWorld world;
  const std::string token = Secret();
  Outcome run = world.RunSecret(token, "init");
  nlohmann::json result = Result(run);
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached " + std::to_string(token.size()))) << run.out << run.err;
  for (const char* what : {"environ", "mem", "maps", "fd", "root", "cwd"}) {
    std::string prefix = std::string("init ") + what + " errno ";
    bool denied = HasLine(out, prefix + std::to_string(EACCES)) ||
                  HasLine(out, prefix + std::to_string(EPERM));
    EXPECT_TRUE(denied) << "/proc/1/" << what << " of the sandbox init is readable:\n" << out;
  }
  // Control inside the same run: the action's own environ is readable, so the denials above
  // are about pid 1, not about /proc being unusable.
  EXPECT_TRUE(HasLine(out, "self environ ok")) << out;
  EXPECT_EQ(run.out.find(token), std::string::npos);
  EXPECT_EQ(run.err.find(token), std::string::npos);
}

// --- D40: core dumps ---------------------------------------------------------------------------

std::vector<std::string> CoreFiles(const std::string& root) {
  std::vector<std::string> cores;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           root, std::filesystem::directory_options::skip_permission_denied, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->path().filename().string().rfind("core", 0) == 0) cores.push_back(it->path());
  }
  return cores;
}

TEST(SecretsTest, D40_core_dumps_disabled) {
  RequireRoot();
  SecretWorld world;
  const std::string token = Secret();
  Outcome run = world.RunSecret(token, "crash");
  nlohmann::json result = Result(run);
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "crashing"))
      << "the action never crashed itself: " << run.out << run.err;
  EXPECT_TRUE(HasLine(out, "rlimit_core 0 0")) << out;
  EXPECT_TRUE(HasLine(out, "raise failed ValueError") ||
              HasLine(out, "raise failed PermissionError"))
      << "RLIMIT_CORE could be raised: " << out;
  EXPECT_EQ(result["signal"], 11) << result.dump();
  EXPECT_EQ(run.exit_code, 128 + SIGSEGV) << result.dump();
  std::string cores;
  for (const std::string& core : CoreFiles(world.Path(""))) cores += core + "\n";
  EXPECT_TRUE(cores.empty()) << "core files:\n" << cores;
  EXPECT_EQ(run.err.find(token), std::string::npos);
}

// Positive control: the crash method (SIGSEGV with RLIMIT_CORE raised, cwd in a directory)
// leaves a core file on the host when nothing stops it.
TEST(SecretsTest, D40_positive_control_crash_dumps_core_on_the_host) {
  RequireRoot();
  std::string pattern = ReadFile("/proc/sys/kernel/core_pattern");
  if (pattern.empty() || pattern[0] == '|' || pattern[0] == '/') {
    GTEST_SKIP() << "core_pattern is not a relative file name: " << pattern;
  }
  TempDir dir;
  Outcome run = RunBinary("/bin/sh", {"-c", "cd '" + dir.path() +
                                                "' && ulimit -c unlimited && /bin/sleep 5 & "
                                                "sleep 0.2; kill -SEGV $!; wait $!; echo $?"});
  EXPECT_EQ(run.out, std::to_string(128 + SIGSEGV) + "\n") << run.err;
  EXPECT_FALSE(CoreFiles(dir.path()).empty()) << "no core file: the D40 check proves nothing";
}

// --- D41: secrets left behind by the previous action -----------------------------------------

TEST(SecretsTest, D41_secret_of_previous_action) {
  RequireRoot();
  SecretWorld world;
  const std::string first = Secret();
  Outcome leave = world.RunSecret(first, "leave");
  std::string out = Stdout(Result(leave));
  ASSERT_TRUE(HasLine(out, "left"))
      << "the first action did not leave its traces: " << leave.out << leave.err;
  EXPECT_TRUE(HasLine(out, "wrote /tmp")) << out;
  EXPECT_TRUE(HasLine(out, "wrote /dev/shm")) << out;
  // The detached `sleep 30 TOKEN` died with the first execution.
  EXPECT_TRUE(testing::WaitForNoProcessesWithMarker(first, 1000).empty())
      << "a background process of the first action still holds its secret";

  // The needle goes in a parameter file: on packvisor's own argv it would show up in the
  // sandbox init's /proc/1/cmdline (init is a fork of the supervisor).
  const std::string second = Secret();
  world.Write("needle.json", nlohmann::json({{"needle", first}}).dump());
  Outcome search =
      world.RunSecret(second, "search", {"--params-json", "@" + world.Path("needle.json")});
  std::string found = Stdout(Result(search));
  ASSERT_TRUE(HasLine(found, "reached " + std::to_string(second.size())))
      << search.out << search.err;
  std::vector<std::string> searched = Tagged(found, "searched");
  ASSERT_EQ(searched.size(), 1u) << found;
  EXPECT_GT(std::stoi(searched[0]), 0) << found;
  // /env is shared by design between runs of a pack, but the first action did not write there.
  EXPECT_TRUE(Tagged(found, "found").empty()) << "the previous secret is visible:\n" << found;
}

// --- D42: secrets of concurrent actions --------------------------------------------------------

TEST(SecretsTest, D42_concurrent_actions_cannot_see_each_others_secrets) {
  RequireRoot();
  SecretWorld world;
  // Build the environment once so that the four runs start together.
  ASSERT_EQ(Result(world.RunSecret(Secret(), "init")).value("status", ""), "succeeded");
  constexpr int kPeers = 4;
  std::vector<std::string> tokens;
  for (int i = 0; i < kPeers; ++i) tokens.push_back(Secret());
  std::vector<Outcome> runs(kPeers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPeers; ++i) {
    threads.emplace_back([&, i] {
      runs[i] = world.RunSecret(
          tokens[i], "peers",
          {"--param", "index=" + std::to_string(i), "--param", "count=" + std::to_string(kPeers)});
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kPeers; ++i) {
    std::string out = Stdout(Result(runs[i]));
    ASSERT_TRUE(HasLine(out, "reached-peers")) << runs[i].out << runs[i].err;
    EXPECT_TRUE(Tagged(out, "saw connected").empty()) << "abstract socket reached: " << out;
    for (int j = 0; j < kPeers; ++j) {
      if (j == i) continue;
      EXPECT_EQ(out.find(tokens[j]), std::string::npos)
          << "action " << i << " saw the secret of action " << j;
    }
  }
}

// --- D43: secrets in logs, error text and files --------------------------------------------

// Regular files under `root` changed since `since` (at most 8 MiB) that contain `needle`.
std::vector<std::string> FilesContaining(const std::string& root, const std::string& needle,
                                         std::filesystem::file_time_type since) {
  std::vector<std::string> hits;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           root, std::filesystem::directory_options::skip_permission_denied, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::error_code fec;
    if (it->is_symlink(fec) || !it->is_regular_file(fec)) continue;
    if (it->last_write_time(fec) < since || it->file_size(fec) > (8u << 20)) continue;
    if (ReadFile(it->path()).find(needle) != std::string::npos) hits.push_back(it->path());
  }
  return hits;
}

TEST(SecretsTest, D43_secret_not_in_trace_log_error_text_or_host_files) {
  RequireRoot();
  SecretWorld world;
  const auto start = std::filesystem::file_time_type::clock::now() - std::chrono::seconds(1);
  const std::string token = Secret();
  // The action prints its own secret on stdout and stderr and fails: that output belongs to the
  // result, never to packvisor's log.
  Outcome printed = world.RunSecret(token, "stderr");
  nlohmann::json result = Result(printed);
  ASSERT_TRUE(HasLine(Stdout(result), "reached " + std::to_string(token.size())))
      << printed.out << printed.err;
  EXPECT_EQ(result.value("status", ""), "failed") << printed.out;
  EXPECT_FALSE(printed.err.empty()) << "no trace log to check";
  EXPECT_EQ(printed.err.find(token), std::string::npos)
      << "the secret is in packvisor's trace log:\n"
      << printed.err;

  // Rejected runs: the secret's value breaks the declared type or enum, a name also given as a
  // parameter, a malformed secrets file. Neither the error text nor the log may quote the
  // secret. (An undeclared name is ignored, not rejected: run_secrets_test.cc checks that its
  // value is never quoted either.)
  world.Action("vault", "typed", "python", world.script(), "",
               "parameters:\n  pin:\n    type: integer\n    secret: true\n"
               "  color:\n    type: string\n    secret: true\n    enum: [red, blue]\n");
  struct Bad {
    std::string secrets;
    std::vector<std::string> extra;
  };
  for (const Bad& bad :
       std::vector<Bad>{{nlohmann::json({{"pin", token}}).dump(), {}},
                        {nlohmann::json({{"color", token}}).dump(), {}},
                        {nlohmann::json({{"pin", token}}).dump(), {"--param", "pin=other"}},
                        {nlohmann::json({{"pin", nlohmann::json::array({1, token})}}).dump(), {}},
                        {"{\"pin\": \"" + token + "\"", {}}}) {
    for (bool json : {true, false}) {
      std::string file = "bad-" + testing::UniqueMarker("s") + ".json";
      world.Write(file, bad.secrets + "\n", 0600);
      std::vector<std::string> args = {"--log-level", "trace",          "run",
                                       "vault.typed", "--secrets-file", world.Path(file)};
      if (json) args.push_back("--json");
      args.insert(args.end(), bad.extra.begin(), bad.extra.end());
      Outcome run = world.Cli(args);
      EXPECT_EQ(run.exit_code, 125) << bad.secrets << ": " << run.out << run.err;
      EXPECT_EQ(run.out.find(token), std::string::npos)
          << "the rejected secret is quoted in the output: " << run.out;
      EXPECT_EQ(run.err.find(token), std::string::npos)
          << "the rejected secret is quoted in the log: " << run.err;
    }
  }

  // Files: nothing the runs left under the envs and state dirs, or new under /tmp, /var/tmp
  // and /dev/shm on the host, holds the secret (the test's own secrets files excepted).
  std::vector<std::string> hits;
  for (const std::string& root : {world.Path("envs"), world.Path("state"), std::string("/tmp"),
                                  std::string("/var/tmp"), std::string("/dev/shm")}) {
    for (const std::string& hit : FilesContaining(root, token, start)) {
      std::string name = std::filesystem::path(hit).filename();
      if (name.rfind("secrets-", 0) == 0 || name.rfind("bad-", 0) == 0) continue;
      hits.push_back(hit);
    }
  }
  std::string hit_text;
  for (const std::string& hit : hits) hit_text += hit + "\n";
  EXPECT_TRUE(hits.empty()) << "files outside the execution hold the secret:\n" << hit_text;
}

// --- D44: stdin delivery that could hang or kill the supervisor -------------------------------

TEST(SecretsTest, D44_action_never_reading_4MiB_stdin_or_closing_it_finishes) {
  RequireRoot();
  World world;
  const std::string params = "parameters:\n  blob:\n    type: string\n";
  world.Action("stdin", "noread", "python", "noread.py",
               "import time\nprint('reached', flush=True)\ntime.sleep(0.5)\nprint('done')\n",
               params);
  world.Action("stdin", "close", "python", "close.py",
               "import os, time\nos.close(0)\nprint('reached', flush=True)\ntime.sleep(1)\n"
               "print('done')\n",
               params);
  world.Action("stdin", "quick", "python", "quick.py", "print('quick')\n");
  world.Write("big.json", nlohmann::json({{"blob", std::string(4 << 20, 'x')}}).dump());
  world.Write("one.json", nlohmann::json({{"blob", std::string(1 << 20, 'y')}}).dump());
  ASSERT_EQ(Result(world.Cli({"run", "stdin.quick", "--json"})).value("status", ""),
            "succeeded");  // builds the environment

  Outcome quick;
  std::thread concurrent([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    quick = world.Cli({"run", "stdin.quick", "--json", "--timeout", "3"}, {}, 10000);
  });
  Outcome noread = world.Cli({"run", "stdin.noread", "--json", "--timeout", "3", "--params-json",
                              "@" + world.Path("big.json")},
                             {}, 10000);
  concurrent.join();
  Outcome closed = world.Cli({"run", "stdin.close", "--json", "--timeout", "3", "--params-json",
                              "@" + world.Path("one.json")},
                             {}, 10000);
  for (const auto& [name, run] :
       {std::pair<std::string, const Outcome*>{"noread", &noread}, {"close", &closed}}) {
    nlohmann::json result = Result(*run);
    std::string out = Stdout(result);
    ASSERT_TRUE(HasLine(out, "reached")) << name << ": " << run->out.substr(0, 600) << run->err;
    EXPECT_FALSE(run->timed_out) << name << ": the supervisor hung";
    EXPECT_EQ(run->exit_code, 0) << name << ": " << run->out.substr(0, 600) << run->err;
    EXPECT_EQ(result.value("status", ""), "succeeded") << name;
    EXPECT_TRUE(HasLine(out, "done")) << name << ": " << out;
    EXPECT_LT(run->seconds, 3.0) << name;
  }
  EXPECT_EQ(Result(quick).value("status", ""), "succeeded") << quick.out << quick.err;
  EXPECT_LT(quick.seconds, 2.0) << "a concurrent action was held up";
}

}  // namespace
}  // namespace packvisor
