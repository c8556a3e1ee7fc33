// Secret handling of executions (SPEC §7: secrets arrive on stdin, never in argv, environ, logs,
// error messages or files on the host). First the seven cases of the original platform's
// security_tests.rs (two of which it failed: the shell inline prelude and the one-line stdin
// document), run in-process through RunExecution with real sandboxes; then leak hunting on the
// host while actions run: every /proc/*/environ and /proc/*/cmdline, packvisor's trace log, the
// result's error text, and new files under /tmp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kSecretParameters[] =
    "parameters:\n"
    "  api_key: {type: string, secret: true}\n"
    "  password: {type: string, secret: true}\n"
    "  secret_a: {type: string, secret: true}\n"
    "  secret_b: {type: string, secret: true}\n"
    "  marker: {type: string}\n";

class RunSecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.WriteSimpleAction("sec", "py", "python", "py.py", "print('file action')\n",
                             std::string(kSecretParameters) + "output_format: json\n");
    world_.WriteSimpleAction("sec", "sh", "shell", "sh.sh", "echo file action\n",
                             kSecretParameters);
  }
  RunWorld world_;
};

// ---- security_tests.rs ------------------------------------------------------------------------

TEST_F(RunSecretsTest, PythonInlineSecretsNotInEnviron) {
  const char* code =
      "import json, os, sys\n"
      "inputs = json.loads(sys.stdin.readline())\n"
      "values = [inputs['api_key'], inputs['password']]\n"
      "leak = any(v in e for v in values for e in os.environ.values())\n"
      "leak = leak or any(k in os.environ for k in\n"
      "    ('SECRET_API_KEY', 'SECRET_PASSWORD', 'api_key', 'password', 'PARAM_API_KEY'))\n"
      "print(json.dumps({'secrets_in_environ': leak, 'environ_check': True,\n"
      "                  'received': inputs['api_key'] == 'sk-test-abc123xyz' and\n"
      "                              inputs['password'] == 'sup3r-s3cret-pw'}))\n";
  ExecutionResult r = world_.Run(
      InlineRequest("sec.py", code, nlohmann::json::object(),
                    {{"api_key", "sk-test-abc123xyz"}, {"password", "sup3r-s3cret-pw"}}));
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_EQ(r.result["secrets_in_environ"], false) << Describe(r);
  EXPECT_EQ(r.result["environ_check"], true);
  EXPECT_EQ(r.result["received"], true);
}

TEST_F(RunSecretsTest, ShellInlineSecretsAreVariablesButNotInEnviron) {
  // Failed on the original platform: the inline code must be wrapped with non-exported
  // `api_key='...'` / `PARAM_API_KEY='...'` assignments built from parameters ∪ secrets.
  const char* code =
      "if [ \"$api_key\" != 'sk-shell-test-12345' ] || \\\n"
      "   [ \"$PARAM_API_KEY\" != 'sk-shell-test-12345' ]; then\n"
      "  echo 'ERROR: Secret not accessible via merged inputs'; exit 1\n"
      "fi\n"
      "if [ \"$password\" != 'p@ss'\\''w\"rd $HOME' ] || [ \"$PARAM_PASSWORD\" != \"$password\" ]\n"
      "then\n"
      "  echo 'ERROR: password not accessible'; exit 1\n"
      "fi\n"
      "if printenv | grep -q -F 'sk-shell-test-12345'; then echo SECURITY_FAIL; exit 1; fi\n"
      "if printenv | grep -q -F -- \"$password\"; then echo SECURITY_FAIL; exit 1; fi\n"
      "if printenv | grep -q -e SECRET_API_KEY -e '^api_key=' -e '^PARAM_API_KEY='; then\n"
      "  echo SECURITY_FAIL; exit 1\n"
      "fi\n"
      "if bash -c 'test -n \"$api_key$PARAM_API_KEY\"'; then echo CHILD_SEES_IT; exit 1; fi\n"
      "echo SECURITY_PASS\n";
  ExecutionResult r = world_.Run(
      InlineRequest("sec.sh", code, nlohmann::json::object(),
                    {{"api_key", "sk-shell-test-12345"}, {"password", "p@ss'w\"rd $HOME"}}));
  EXPECT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_THAT(r.stdout_text, HasSubstr("SECURITY_PASS")) << Describe(r);
  EXPECT_THAT(r.stdout_text, Not(HasSubstr("SECURITY_FAIL")));
}

TEST_F(RunSecretsTest, PythonSecretsIsolatedBetweenActions) {
  // Failed on the original platform: stdin must hold exactly one JSON line with
  // parameters ∪ secrets, fresh per execution, then EOF.
  const char* code =
      "import json, sys\n"
      "line = sys.stdin.readline()\n"
      "d = json.loads(line)\n"
      "rest = sys.stdin.read()\n"
      "print(json.dumps({'a': d.get('secret_a'), 'b': d.get('secret_b'),\n"
      "                  'has_a': 'secret_a' in d or 'value_a' in line + rest,\n"
      "                  'keys': sorted(d), 'rest': rest}))\n";
  ExecutionResult first = world_.Run(
      InlineRequest("sec.py", code, nlohmann::json::object(), {{"secret_a", "value_a"}}));
  ASSERT_EQ(first.status, ExecutionStatus::kSucceeded) << Describe(first);
  EXPECT_EQ(first.result["a"], "value_a");

  ExecutionResult second = world_.Run(
      InlineRequest("sec.py", code, nlohmann::json::object(), {{"secret_b", "value_b"}}));
  ASSERT_EQ(second.status, ExecutionStatus::kSucceeded) << Describe(second);
  EXPECT_EQ(second.result["b"], "value_b") << Describe(second);
  EXPECT_EQ(second.result["has_a"], false) << Describe(second);
  EXPECT_EQ(second.result["keys"], nlohmann::json({"secret_b"}));
  EXPECT_EQ(second.result["rest"], "") << "stdin must end after the one document";
}

TEST_F(RunSecretsTest, PythonEmptySecrets) {
  world_.WriteSimpleAction("sec", "plain", "python", "plain.py", "print('file')\n");
  ExecutionResult r = world_.Run(InlineRequest("sec.plain", "print('ok')\n"));
  EXPECT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "ok\n");
}

TEST_F(RunSecretsTest, ShellEmptySecrets) {
  ExecutionResult r = world_.Run(
      InlineRequest("sec.sh",
                    "if [ -z \"$nonexistent\" ] && [ -z \"$PARAM_NONEXISTENT\" ]; then echo PASS;\n"
                    "else echo FAIL; fi\n"));
  EXPECT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_EQ(r.stdout_text, "PASS\n");
}

TEST_F(RunSecretsTest, ShellFileActionSecretsNotInEnviron) {
  world_.WriteSimpleAction("sec", "shfile", "shell", "shfile.sh",
                           "read -r line\n"
                           "case \"$line\" in *SUPER_SECRET_VALUE*) ;; *) echo MISSING; exit 1;; "
                           "esac\n"
                           "if printenv | grep -q SUPER_SECRET_VALUE; then echo FAIL; exit 1; fi\n"
                           "if tr '\\0' '\\n' < /proc/$$/cmdline | grep -q SUPER_SECRET_VALUE\n"
                           "then\n"
                           "  echo FAIL_ARGV; exit 1\n"
                           "fi\n"
                           "echo PASS\n",
                           "parameters:\n  api_key: {type: string, secret: true}\n");
  ExecutionResult r = world_.Run(
      Request("sec.shfile", nlohmann::json::object(), {{"api_key", "SUPER_SECRET_VALUE"}}));
  EXPECT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_EQ(r.stdout_text, "PASS\n");
}

TEST_F(RunSecretsTest, PythonFileActionSecretsNotInEnviron) {
  world_.WriteSimpleAction(
      "sec", "pyfile", "python", "pyfile.py",
      "import json, os, sys\n"
      "inputs = json.loads(sys.stdin.readline())\n"
      "secret = inputs['api_key']\n"
      "leaked = any(secret in v for v in os.environ.values()) or 'api_key' in os.environ\n"
      "leaked = leaked or secret in open('/proc/self/cmdline').read()\n"
      "print(json.dumps({'leaked': leaked, 'received': secret == 'TOP_SECRET_API_KEY'}))\n",
      "parameters:\n  api_key: {type: string, secret: true}\noutput_format: json\n");
  ExecutionResult r = world_.Run(
      Request("sec.pyfile", nlohmann::json::object(), {{"api_key", "TOP_SECRET_API_KEY"}}));
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_EQ(r.result["leaked"], false) << Describe(r);
  EXPECT_EQ(r.result["received"], true) << Describe(r);
}

// ---- Leak hunting on the host -----------------------------------------------------------------

// A fresh secret value no other test or run uses.
std::string FreshToken() { return "S3CR3T-" + UniqueMarker("tok"); }

// Samples every /proc/<pid>/environ and /proc/<pid>/cmdline of the host (as root) every 25 ms
// until stopped: records where `token` appears and how many samples saw a process whose cmdline
// holds `marker` (proof that the sampling overlapped the action).
class ProcSampler {
 public:
  ProcSampler(std::string token, std::string marker)
      : token_(std::move(token)), marker_(std::move(marker)), thread_([this] { Loop(); }) {
    // The thread is fully started before any execution begins (see run_threads_test.cc for
    // what a thread still being created does to an in-process launch).
    while (samples_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~ProcSampler() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int samples_with_marker() const { return samples_with_marker_; }
  int samples() const { return samples_; }
  std::vector<std::string> leaks() {
    std::lock_guard<std::mutex> lock(mutex_);
    return leaks_;
  }

 private:
  void Loop() {
    while (!stop_) {
      bool saw_marker = false;
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        std::string name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        for (const char* file : {"environ", "cmdline"}) {
          std::string path = "/proc/" + name + "/" + file;
          std::string content = ReadFileOrEmpty(path);
          if (content.find(token_) != std::string::npos) {
            std::lock_guard<std::mutex> lock(mutex_);
            leaks_.push_back(path + " (cmdline: " +
                             ReadFileOrEmpty("/proc/" + name + "/cmdline").substr(0, 200) + ")");
          }
          if (std::string(file) == "cmdline" && content.find(marker_) != std::string::npos) {
            saw_marker = true;
          }
        }
      }
      ++samples_;
      if (saw_marker) ++samples_with_marker_;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }

  std::string token_;
  std::string marker_;
  std::atomic<bool> stop_{false};
  std::atomic<int> samples_{0};
  std::atomic<int> samples_with_marker_{0};
  std::mutex mutex_;
  std::vector<std::string> leaks_;
  std::thread thread_;
};

// New or modified files under /tmp and /dev/shm since `since` that contain `token`, except
// `allowed` (files the test itself wrote).
std::vector<std::string> HostFilesWithToken(const std::string& token,
                                            std::chrono::system_clock::time_point since,
                                            const std::vector<std::string>& allowed = {}) {
  std::vector<std::string> found;
  for (const char* root : {"/tmp", "/dev/shm"}) {
    for (const std::string& path : RecentFilesContaining(root, token, since)) {
      if (std::find(allowed.begin(), allowed.end(), path) == allowed.end()) found.push_back(path);
    }
  }
  return found;
}

// A python file action that reads its inputs, then runs `sh -c 'sleep 1.5' MARKER` (so the
// marker shows in a host-visible cmdline while the action runs) and reports that it got the
// secret, without printing it.
constexpr char kSleepingPython[] =
    "import json, subprocess, sys\n"
    "d = json.loads(sys.stdin.readline())\n"
    "ok = d['api_key'].startswith('S3CR3T-')\n"
    "subprocess.run(['/bin/sh', '-c', 'sleep 1.5', d['marker']], check=True)\n"
    "print(json.dumps({'received': ok}))\n";

class RunSecretLeakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.WriteSimpleAction("leak", "py", "python", "py.py", kSleepingPython,
                             std::string(kSecretParameters) + "output_format: json\n");
    world_.WriteSimpleAction(
        "leak", "sh", "shell", "sh.sh", "echo file\n",
        "parameters:\n  api_key: {type: string, secret: true}\n  marker: {type: string}\n");
    world_.WriteSimpleAction(
        "leak", "typed", "python", "typed.py", "print('must not run')\n",
        "parameters:\n  pin: {type: integer, secret: true}\n"
        "  mode: {type: string, enum: [a, b], secret: true}\n  user: {type: string}\n");
    world_.WriteSimpleAction("leak", "fails", "python", "fails.py",
                             "import json, sys\n"
                             "d = json.loads(sys.stdin.readline())\n"
                             "sys.stderr.write('something went wrong\\n')\n"
                             "sys.exit(3)\n",
                             "parameters:\n  api_key: {type: string, secret: true}\n");
    world_.WriteConfig();
  }

  // The whole CLI output, checked for the token.
  void ExpectNoToken(const CommandResult& r, const std::string& token) {
    EXPECT_THAT(r.stdout_text, Not(HasSubstr(token)));
    EXPECT_THAT(r.stderr_text, Not(HasSubstr(token)));
  }

  RunWorld world_;
};

TEST_F(RunSecretLeakTest, SecretsStdinNeverInHostProcOrLogsOrTmpFiles) {
  std::string token = FreshToken();
  std::string marker = UniqueMarker("leak-marker");
  auto since = std::chrono::system_clock::now() - std::chrono::seconds(1);
  ProcSampler sampler(token, marker);
  CommandResult r = world_.Cli({"--log-level", "trace", "run", "leak.py", "--param",
                                "marker=" + marker, "--secrets-stdin", "--json"},
                               nlohmann::json({{"api_key", token}}).dump());
  sampler.Stop();
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["result"]["received"], true);
  EXPECT_GE(sampler.samples_with_marker(), 3) << "the sampler did not see the action run";
  EXPECT_THAT(sampler.leaks(), IsEmpty());
  ExpectNoToken(r, token);
  EXPECT_THAT(HostFilesWithToken(token, since), IsEmpty());
}

TEST_F(RunSecretLeakTest, SecretsFileNeverInHostProcOrLogsOrOtherTmpFiles) {
  std::string token = FreshToken();
  std::string marker = UniqueMarker("leak-marker");
  world_.WriteFile("secrets.json", nlohmann::json({{"api_key", token}}).dump(), 0600);
  auto since = std::chrono::system_clock::now() - std::chrono::seconds(1);
  ProcSampler sampler(token, marker);
  CommandResult r =
      world_.Cli({"--log-level", "trace", "run", "leak.py", "--param", "marker=" + marker,
                  "--secrets-file", world_.Path("secrets.json"), "--json"});
  sampler.Stop();
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["result"]["received"], true);
  EXPECT_GE(sampler.samples_with_marker(), 3) << "the sampler did not see the action run";
  EXPECT_THAT(sampler.leaks(), IsEmpty());
  ExpectNoToken(r, token);
  EXPECT_THAT(HostFilesWithToken(token, since, {world_.Path("secrets.json")}), IsEmpty());
}

TEST_F(RunSecretLeakTest, HumanOutputAndTraceLogCarryNoSecret) {
  std::string token = FreshToken();
  std::string marker = UniqueMarker("leak-marker");
  CommandResult r = world_.Cli(
      {"--log-level", "trace", "run", "leak.py", "--param", "marker=" + marker, "--secrets-stdin"},
      nlohmann::json({{"api_key", token}}).dump());
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  ExpectNoToken(r, token);
}

TEST_F(RunSecretLeakTest, InlineShellSecretNeverOnHost) {
  // The inline shell prelude holds the secret in a file: it must stay in the sandbox's tmpfs.
  std::string token = FreshToken();
  std::string marker = UniqueMarker("leak-marker");
  auto since = std::chrono::system_clock::now() - std::chrono::seconds(1);
  ProcSampler sampler(token, marker);
  RunRequest request = InlineRequest("leak.sh",
                                     "case \"$api_key\" in S3CR3T-*) echo RECEIVED;; esac\n"
                                     "sh -c 'sleep 1.5' \"$marker\"\n",
                                     {{"marker", marker}}, {{"api_key", token}});
  request.timeout_seconds = 20;
  ExecutionResult r = world_.Run(std::move(request));
  sampler.Stop();
  EXPECT_EQ(r.status, ExecutionStatus::kSucceeded) << Describe(r);
  EXPECT_EQ(r.stdout_text, "RECEIVED\n");
  EXPECT_GE(sampler.samples_with_marker(), 3) << "the sampler did not see the action run";
  EXPECT_THAT(sampler.leaks(), IsEmpty());
  EXPECT_THAT(HostFilesWithToken(token, since), IsEmpty());
  EXPECT_THAT(r.ToJson().dump(), Not(HasSubstr(token)));
}

TEST_F(RunSecretLeakTest, RejectedSecretOfWrongTypeIsNotQuoted) {
  std::string token = FreshToken();
  CommandResult r =
      world_.Cli({"--log-level", "trace", "run", "leak.typed", "--secrets-stdin", "--json"},
                 nlohmann::json({{"pin", token}}).dump());
  EXPECT_EQ(r.exit_code, 125) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "rejected");
  ASSERT_TRUE(j["error"].is_string());
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("pin"));
  ExpectNoToken(r, token);
}

TEST_F(RunSecretLeakTest, RejectedSecretOutsideEnumIsNotQuoted) {
  std::string token = FreshToken();
  CommandResult r =
      world_.Cli({"--log-level", "trace", "run", "leak.typed", "--secrets-stdin", "--json"},
                 nlohmann::json({{"mode", token}}).dump());
  EXPECT_EQ(r.exit_code, 125) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "rejected");
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("mode"));
  ExpectNoToken(r, token);
}

TEST_F(RunSecretLeakTest, IgnoredUnknownSecretIsNamedButNotQuoted) {
  // A secret the action does not declare is not delivered (one secrets file may serve a whole
  // pack); the trace log names it, never its value.
  std::string token = FreshToken();
  CommandResult r =
      world_.Cli({"--log-level", "trace", "run", "leak.sh", "--secrets-stdin", "--json"},
                 nlohmann::json({{"not_declared", token}}).dump());
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "succeeded");
  EXPECT_THAT(r.stderr_text, HasSubstr("not_declared"));
  ExpectNoToken(r, token);
}

TEST_F(RunSecretLeakTest, SecretClashingWithParameterIsNotQuoted) {
  std::string token = FreshToken();
  CommandResult r = world_.Cli({"--log-level", "trace", "run", "leak.typed", "--param",
                                "user=alice", "--secrets-stdin", "--json"},
                               nlohmann::json({{"user", token}}).dump());
  EXPECT_EQ(r.exit_code, 125) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "rejected");
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("user"));
  ExpectNoToken(r, token);
}

TEST_F(RunSecretLeakTest, MalformedSecretsJsonIsNotQuoted) {
  std::string token = FreshToken();
  for (const std::string& text :
       {"{\"api_key\": \"" + token + "\"", "[\"" + token + "\"]", "{\"api_key\": " + token + "}"}) {
    CommandResult r = world_.Cli({"run", "leak.fails", "--secrets-stdin", "--json"}, text);
    EXPECT_EQ(r.exit_code, 125) << text << ": " << r.stderr_text;
    EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << r.stderr_text;
    ExpectNoToken(r, token);
    CommandResult traced = world_.Cli(
        {"--log-level", "trace", "run", "leak.fails", "--secrets-stdin", "--json"}, text);
    EXPECT_EQ(traced.exit_code, 125);
    ExpectNoToken(traced, token);
  }
}

TEST_F(RunSecretLeakTest, FailingActionErrorCarriesNoSecret) {
  std::string token = FreshToken();
  CommandResult r =
      world_.Cli({"--log-level", "trace", "run", "leak.fails", "--secrets-stdin", "--json"},
                 nlohmann::json({{"api_key", token}}).dump());
  EXPECT_EQ(r.exit_code, 3) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["error"], "something went wrong");
  ExpectNoToken(r, token);
}

}  // namespace
}  // namespace packvisor::testing
