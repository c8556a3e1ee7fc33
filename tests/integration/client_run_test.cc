// `packvisor run --server` and `exec --server` against a real daemon (tests/support/
// daemon_fixture.h) on a real socket: the same output, result object and exit status as the local
// command for the demo pack and test actions; output that arrives live; SIGINT that cancels the
// execution on the daemon; secrets that never reach the client's argv or environ.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "sandbox/os/unique_fd.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/harness.h"
#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

// The summary line's durations differ between two runs: "in 12 ms" → "in N ms".
std::string WithoutDurations(const std::string& text) {
  return std::regex_replace(text, std::regex("[0-9]+ ms"), "N ms");
}

// The result object without what differs between two executions of the same thing.
nlohmann::json Comparable(nlohmann::json result) {
  for (const char* key : {"execution_id", "duration_ms", "env_build_ms", "usage"}) {
    EXPECT_TRUE(result.contains(key)) << key << " missing from " << result.dump();
    result.erase(key);
  }
  return result;
}

// The demo pack (examples/packs/hello) and actions of our own, a daemon serving them.
class ClientRun : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(world_.PacksDir());
    std::filesystem::copy(SourceDir() + "/examples/packs/hello", world_.PackDir("hello"),
                          std::filesystem::copy_options::recursive);
    world_.WriteSimpleAction("t", "fail", "shell", "fail.sh",
                             "echo to-stdout\necho to-stderr >&2\nexit 3\n");
    world_.WriteSimpleAction("t", "sleep", "shell", "sleep.sh", "echo started\nsleep 600\n");
    world_.WriteSimpleAction("t", "typed", "shell", "typed.sh", "cat\n",
                             "parameters:\n  n:\n    type: integer\n  s:\n    type: string\n"
                             "  o:\n    type: object\n");
    world_.WriteSimpleAction("t", "lines", "shell", "lines.sh", "echo '{\"a\": 1}'; echo '[2]'\n",
                             "output_format: jsonl\n");
    world_.WriteSimpleAction("t", "object", "shell", "object.sh", "echo '{\"a\": 1}'\n",
                             "output_format: json\n");
    world_.WriteFile("secrets.json", R"({"api_key": "k-0123456789"})", 0600);
    daemon_ = std::make_unique<DaemonUnderTest>(world_, "[execution]\nkill_grace_seconds = 1\n");
    server_ = "--server=" + daemon_->socket();
  }

  // `run ARGS` locally and `run --server=SOCKET ARGS`, compared: exit status, stdout, stderr
  // (durations aside), and with --json the result object (ids and durations aside).
  void ExpectSameAsLocal(const std::vector<std::string>& args) {
    std::string what = "run";
    for (const std::string& arg : args) what += " " + arg;
    std::vector<std::string> local = {"run"};
    local.insert(local.end(), args.begin(), args.end());
    std::vector<std::string> remote = {"run", server_};
    remote.insert(remote.end(), args.begin(), args.end());
    CommandResult l = world_.Cli(local);
    CommandResult r = world_.Cli(remote);
    EXPECT_EQ(r.exit_code, l.exit_code)
        << what << "\nlocal: " << l.stderr_text << "\nremote: " << r.stderr_text;
    EXPECT_EQ(r.stdout_text, l.stdout_text) << what;
    EXPECT_EQ(WithoutDurations(r.stderr_text), WithoutDurations(l.stderr_text)) << what;

    local.push_back("--json");
    remote.push_back("--json");
    CommandResult lj = world_.Cli(local);
    CommandResult rj = world_.Cli(remote);
    EXPECT_EQ(rj.exit_code, lj.exit_code) << what << " --json: " << rj.stderr_text;
    EXPECT_EQ(rj.exit_code, l.exit_code) << what;
    ASSERT_NO_THROW(rj.Json()) << what << ": " << rj.stdout_text << rj.stderr_text;
    EXPECT_EQ(Comparable(rj.Json()), Comparable(lj.Json())) << what;
    EXPECT_EQ(rj.stderr_text, lj.stderr_text) << what;
  }

  RunWorld world_;
  std::unique_ptr<DaemonUnderTest> daemon_;
  std::string server_;
};

TEST_F(ClientRun, TheDemoPackPrintsAndExitsAsTheLocalRun) {
  // Builds the python and node environments once, so that neither side reports a build.
  ASSERT_EQ(world_
                .Cli({"run", "hello.weather", "--param", "city=Oslo", "--secrets-file",
                      world_.Path("secrets.json")})
                .exit_code,
            0);
  ASSERT_EQ(world_.Cli({"run", "hello.count"}).exit_code, 0);
  ExpectSameAsLocal({"hello.greet", "--param", "name=Ada", "--param", "times=2"});
  ExpectSameAsLocal({"hello.noop"});
  ExpectSameAsLocal(
      {"hello.weather", "--param", "city=Paris", "--secrets-file", world_.Path("secrets.json")});
  // jsonl: the same result object, and in human mode one line per item as the local run prints
  // it (the daemon's result line carries "result_is_lines", docs/api.md).
  ExpectSameAsLocal({"hello.count", "--param", "text=a b a"});
}

// The stream's result line of a jsonl action says so, live and for an execution already finished
// (read back from the store), and only for jsonl.
TEST_F(ClientRun, TheResultLineOfAJsonlActionCarriesResultIsLines) {
  auto last_line = [&](const std::string& id) {
    HttpResponse r = HttpGet(daemon_->socket(), "/v1/executions/" + id + "/output");
    std::vector<std::string> lines = Lines(r.body);
    EXPECT_FALSE(lines.empty()) << r.body;
    return lines.empty() ? nlohmann::json() : nlohmann::json::parse(lines.back());
  };
  HttpResponse lines = SubmitAction(daemon_->socket(), "t.lines", nlohmann::json::object(), true);
  ASSERT_EQ(lines.status, 200) << lines.body;
  EXPECT_EQ(lines.Json()["result"], nlohmann::json::parse(R"([{"a": 1}, [2]])"));
  EXPECT_FALSE(lines.Json().contains("result_is_lines")) << "the result object stays SPEC §7's";
  nlohmann::json finished = last_line(lines.Json()["execution_id"]);
  EXPECT_EQ(finished.value("result_is_lines", false), true) << finished.dump();
  HttpResponse object = SubmitAction(daemon_->socket(), "t.object", nlohmann::json::object(), true);
  ASSERT_EQ(object.status, 200) << object.body;
  EXPECT_FALSE(last_line(object.Json()["execution_id"]).contains("result_is_lines"));
  // Human mode: one compact line per item, as the local run.
  ExpectSameAsLocal({"t.lines"});
  CommandResult r = world_.Cli({"run", server_, "t.lines"});
  const std::string lines_text = "{\"a\":1}\n[2]\n";  // not the pretty JSON of an array
  ASSERT_GE(r.stdout_text.size(), lines_text.size()) << r.stdout_text;
  EXPECT_EQ(r.stdout_text.substr(r.stdout_text.size() - lines_text.size()), lines_text)
      << r.stdout_text;
}

// --timeout 0.05 is reported as given, not rounded up to whole seconds, locally and through the
// daemon, for exec and run.
TEST_F(ClientRun, AFractionalTimeoutIsReportedAsGiven) {
  for (bool remote : {false, true}) {
    std::vector<std::string> exec = {"exec"};
    if (remote) exec.push_back(server_);
    exec.insert(exec.end(), {"--timeout", "0.05", "--", "/bin/sleep", "30"});
    CommandResult e = world_.Cli(exec);
    EXPECT_EQ(e.exit_code, 124) << e.stderr_text;
    EXPECT_NE(e.stderr_text.find("timed out after 0.05 s"), std::string::npos)
        << (remote ? "exec --server: " : "exec: ") << e.stderr_text;
    exec.insert(exec.begin() + 1, "--json");
    CommandResult j = world_.Cli(exec);
    ASSERT_NO_THROW(j.Json()) << j.stdout_text << j.stderr_text;
    EXPECT_EQ(j.Json()["error"], "timed out after 0.05 s");
  }
  ExpectSameAsLocal({"t.sleep", "--timeout", "1.5"});
  CommandResult r = world_.Cli({"run", server_, "t.sleep", "--timeout", "1.5", "--json"});
  EXPECT_EQ(r.Json()["error"], "timed out after 1.5 s") << r.stdout_text;
}

TEST_F(ClientRun, FailuresAndRefusalsPrintAndExitAsTheLocalRun) {
  ExpectSameAsLocal({"t.fail"});                                  // the action's own 3
  ExpectSameAsLocal({"hello.nope"});                              // 127: no such action
  ExpectSameAsLocal({"nopack.nope"});                             // 127: no such pack
  ExpectSameAsLocal({"hello.greet", "--param", "times=9"});       // 125: above its maximum
  ExpectSameAsLocal({"hello.weather", "--param", "city=Paris"});  // 125: secret missing
  ExpectSameAsLocal({"t.sleep", "--timeout", "1"});               // 124: timed out
}

// --param texts are read by the declared type on the daemon, as locally: "5" is the integer 5
// for `n`, the string "5" for `s`, an object for `o`.
TEST_F(ClientRun, ParamTextsAreReadByTheDeclaredType) {
  ExpectSameAsLocal({"t.typed", "--param", "n=5", "--param", "s=5", "--param", "o={\"a\":1}"});
  CommandResult r = world_.Cli({"run", server_, "t.typed", "--param", "n=5", "--param", "s=5"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(nlohmann::json::parse(r.stdout_text), (nlohmann::json{{"n", 5}, {"s", "5"}}));
}

TEST_F(ClientRun, ExecOnTheDaemonPrintsAndExitsAsTheLocalExec) {
  for (bool json : {false, true}) {
    std::vector<std::string> local = {"exec"};
    std::vector<std::string> remote = {"exec", server_};
    if (json) {
      local.push_back("--json");
      remote.push_back("--json");
    }
    for (auto* args : {&local, &remote}) {
      args->insert(args->end(), {"--", "/bin/sh", "-c", "echo out; echo err >&2; exit 4"});
    }
    CommandResult l = world_.Cli(local);
    CommandResult r = world_.Cli(remote);
    EXPECT_EQ(r.exit_code, 4) << r.stderr_text;
    EXPECT_EQ(r.exit_code, l.exit_code);
    if (json) {
      EXPECT_EQ(Comparable(r.Json()), Comparable(l.Json()));
    } else {
      EXPECT_EQ(r.stdout_text, l.stdout_text);
      EXPECT_EQ(WithoutDurations(r.stderr_text), WithoutDurations(l.stderr_text));
    }
  }
}

// A client process with its stdout and stderr on pipes.
struct Client {
  pid_t pid = -1;
  unique_fd out;
  unique_fd err;

  // Reads stdout until `text` has appeared (or the end); returns what was read.
  std::string ReadStdoutUntil(const std::string& text) {
    std::string got;
    char buffer[4096];
    while (got.find(text) == std::string::npos) {
      ssize_t n = read(out.get(), buffer, sizeof(buffer));
      if (n <= 0) break;
      got.append(buffer, static_cast<size_t>(n));
    }
    return got;
  }
  static std::string ReadAll(int fd) {
    std::string got;
    char buffer[4096];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0) got.append(buffer, static_cast<size_t>(n));
    return got;
  }
  int Wait() {
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  ~Client() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

std::unique_ptr<Client> StartClient(const RunWorld& world, const std::vector<std::string>& args) {
  int out[2], err[2];
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
  auto client = std::make_unique<Client>();
  std::vector<std::string> full = {PackvisorBinary(), "--config", world.ConfigPath()};
  full.insert(full.end(), args.begin(), args.end());
  client->pid = fork();
  if (client->pid == 0) {
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup2(null, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> argv;
    for (std::string& arg : full) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  client->out.reset(out[0]);
  client->err.reset(err[0]);
  return client;
}

// The action waits for /pack/go, which the test creates only after the client printed the
// action's first line: that line came through while the action was still running.
TEST_F(ClientRun, OutputArrivesLiveAndInOrder) {
  world_.WriteSimpleAction(
      "t", "live", "shell", "live.sh",
      "echo first\necho first-err >&2\nwhile [ ! -e /pack/go ]; do sleep 0.05; done\n"
      "echo second\necho second-err >&2\n");
  std::unique_ptr<Client> client = StartClient(world_, {"run", server_, "t.live"});
  std::string before = client->ReadStdoutUntil("first\n");
  EXPECT_EQ(before, "first\n");
  world_.WriteFile("packs/t/go", "");
  std::string after = Client::ReadAll(client->out.get());
  std::string err = Client::ReadAll(client->err.get());
  EXPECT_EQ(client->Wait(), 0) << err;
  EXPECT_EQ(before + after, "first\nsecond\n");
  EXPECT_EQ(err.rfind("first-err\nsecond-err\npackvisor: t.live: succeeded (exit 0) in ", 0), 0u)
      << err;
}

// SIGINT to the client cancels the execution on the daemon: the client prints the cancelled
// result and exits 143, and the action's processes are gone.
TEST_F(ClientRun, SigintCancelsTheExecutionOnTheDaemon) {
  std::string marker = UniqueMarker("client-sigint");
  world_.WriteSimpleAction("t", "long", "shell", "long.sh",
                           "echo started\nexec -a " + marker + " sleep 600\n");
  for (bool json : {false, true}) {
    std::vector<std::string> args = {"run", server_, "t.long"};
    if (json) args.push_back("--json");
    std::unique_ptr<Client> client = StartClient(world_, args);
    if (!json) {
      ASSERT_EQ(client->ReadStdoutUntil("started\n"), "started\n");
    } else {
      ASSERT_TRUE(WaitUntil([&] { return !ProcessesWithMarker(marker).empty(); }, 60000));
    }
    kill(client->pid, SIGINT);
    std::string out = Client::ReadAll(client->out.get());
    std::string err = Client::ReadAll(client->err.get());
    EXPECT_EQ(client->Wait(), 143) << err;
    if (json) {
      nlohmann::json result = nlohmann::json::parse(out);
      EXPECT_EQ(result["status"], "cancelled");
      EXPECT_EQ(result["stdout"], "started\n");
    } else {
      EXPECT_NE(err.find("packvisor: t.long: cancelled"), std::string::npos) << err;
    }
    EXPECT_EQ(WaitForNoProcessesWithMarker(marker, 30000), std::vector<pid_t>{});
  }
}

// Secrets travel in the request body only: the client's argv and environ never hold them (the
// action blocks until the test has looked).
TEST_F(ClientRun, SecretsAreNotInTheClientsArgvOrEnviron) {
  world_.WriteSimpleAction("t", "secretive", "shell", "secretive.sh",
                           "read -r input\necho ready\n"
                           "while [ ! -e /pack/go2 ]; do sleep 0.05; done\n"
                           "case \"$input\" in *k-0123456789*) echo delivered ;; esac\n",
                           "parameters:\n  api_key:\n    type: string\n    secret: true\n");
  std::unique_ptr<Client> client = StartClient(
      world_, {"run", server_, "t.secretive", "--secrets-file", world_.Path("secrets.json")});
  ASSERT_EQ(client->ReadStdoutUntil("ready\n"), "ready\n");
  for (const char* file : {"cmdline", "environ"}) {
    std::string text = ReadFileOrEmpty("/proc/" + std::to_string(client->pid) + "/" + file);
    EXPECT_FALSE(text.empty()) << file;
    EXPECT_EQ(text.find("k-0123456789"), std::string::npos) << file;
  }
  world_.WriteFile("packs/t/go2", "");
  std::string out = Client::ReadAll(client->out.get());
  std::string err = Client::ReadAll(client->err.get());
  EXPECT_EQ(client->Wait(), 0) << err;
  EXPECT_EQ(out, "delivered\n");
  EXPECT_EQ(err.find("k-0123456789"), std::string::npos);
}

}  // namespace
}  // namespace packvisor::testing
