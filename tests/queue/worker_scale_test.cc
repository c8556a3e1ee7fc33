// Several `packvisor worker`s on one vhost: many requests of mixed runtimes answered exactly once,
// a worker SIGKILLed while its peer lives, and a broker restarted while an execution runs. Real
// workers, real sandboxes, real brokers (tests/support/worker_fixture.h, broker_fixture.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/broker_fixture.h"
#include "tests/support/cgroup_fixtures.h"
#include "tests/support/harness.h"
#include "tests/support/run_fixtures.h"
#include "tests/support/tree_action.h"
#include "tests/support/worker_fixture.h"

namespace packvisor::testing {
namespace {

using ::testing::IsEmpty;

// Prints 7*n+1 for the integer parameter n, read from the parameters document on stdin.
constexpr char kShellScript[] =
    "n=$(cat | sed -n 's/.*\"n\": *\\([0-9]*\\).*/\\1/p')\n"
    "echo \"shell $((n * 7 + 1))\"\n";
constexpr char kPythonScript[] =
    "import json, sys\n"
    "n = json.load(sys.stdin)['n']\n"
    "print('python', n * 7 + 1)\n";
constexpr char kNodeScript[] =
    "let text = '';\n"
    "process.stdin.on('data', (chunk) => { text += chunk; });\n"
    "process.stdin.on('end', () => { console.log('node ' + (JSON.parse(text).n * 7 + 1)); });\n";
constexpr char kNParameter[] = "parameters:\n  n: {type: integer, required: true}\n";

// The execution ids this worker's log says it started.
std::set<std::string> Started(const std::string& log, const std::set<std::string>& ids) {
  std::set<std::string> started;
  for (const std::string& line : Lines(log)) {
    if (line.find(": started") == std::string::npos) continue;
    for (const std::string& id : ids) {
      if (line.find("execution " + id + " ") != std::string::npos) started.insert(id);
    }
  }
  return started;
}

class WorkerScaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = TakeVhostUrl();
    world_.WriteSimpleAction("ws", "sh", "shell", "sh.sh", kShellScript, kNParameter);
    world_.WriteSimpleAction("ws", "py", "python", "py.py", kPythonScript, kNParameter);
    world_.WriteSimpleAction("ws", "js", "node", "js.js", kNodeScript, kNParameter);
    world_.WriteSimpleAction("ws", "tree", "shell", "tree.sh", kTreeScript, kTreeParameters);
  }
  // A config of its own for worker `name`: the world's packs and environments, a state_dir of
  // its own (a state_dir takes one worker).
  std::string Config(const std::string& name, const std::string& extra = "",
                     const std::string& url = "") {
    std::string text = "packs_base_dir = \"" + world_.PacksDir() + "\"\nruntime_envs_dir = \"" +
                       world_.EnvsDir() + "\"\nstate_dir = \"" + world_.Path("state-" + name) +
                       "\"\n" +
                       WorkerToml(world_, url.empty() ? url_ : url, cgroup_.name(),
                                  "max_concurrent = 2\n" + extra);
    world_.WriteFile(name + ".toml", text);
    return world_.Path(name + ".toml");
  }
  void OpenGate(const std::string& gate) const { world_.WriteFile("packs/ws/gate-" + gate, ""); }
  // The processes of `marker` are gone, and so is every cgroup below the test's parent.

  RunWorld world_;
  ScopedCgroupParent cgroup_;
  std::string url_;
};

TEST_F(WorkerScaleTest, TwoWorkersAnswer200MixedSubmissionsExactlyOnce) {
  // The python and node environments are built once, before the workers start.
  std::string setup_config = Config("setup");
  for (const char* runtime : {"python", "node"}) {
    CommandResult setup =
        RunPackvisor({"--config", setup_config, "env", "setup", "ws", "--runtime", runtime});
    ASSERT_EQ(setup.exit_code, 0) << runtime << ": " << setup.stderr_text;
  }
  WorkerUnderTest first(world_, Config("first"), "first");
  WorkerUnderTest second(world_, Config("second"), "second");
  QueueClient client(url_);

  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"shell", "ws.sh"}, {"python", "ws.py"}, {"node", "ws.js"}};
  std::map<std::string, std::string> expected;  // execution id -> stdout
  for (int n = 0; n < 200; ++n) {
    const auto& [runtime, action] = kinds[n % kinds.size()];
    queue::QueueRequest request = NewRequest(action, {{"n", n}});
    expected[request.execution_id] = runtime + " " + std::to_string(n * 7 + 1) + "\n";
    client.PublishRequest(runtime, request);
  }

  std::map<std::string, int> answers;
  std::vector<std::string> wrong;
  for (size_t got = 0; got < expected.size(); ++got) {
    auto result = client.NextResult(180000);
    ASSERT_TRUE(result) << got << " results of " << expected.size() << "\n"
                        << first.Log() << second.Log();
    std::string id = (*result)["__correlation_id"];
    EXPECT_EQ((*result)["execution_id"], id);
    ++answers[id];
    auto want = expected.find(id);
    if (want == expected.end()) {
      wrong.push_back("unknown id " + id);
    } else if ((*result)["status"] != "succeeded" || (*result)["stdout"] != want->second) {
      wrong.push_back(result->dump());
    }
  }
  EXPECT_THAT(wrong, IsEmpty());
  EXPECT_EQ(answers.size(), expected.size());
  for (const auto& [id, count] : answers) EXPECT_EQ(count, 1) << id;
  EXPECT_FALSE(client.NextResult(2000)) << "a result more than the requests";
  // Both took part (each consumes every runtime's queue with prefetch max_concurrent).
  EXPECT_NE(first.Log().find(": started"), std::string::npos) << first.Log();
  EXPECT_NE(second.Log().find(": started"), std::string::npos) << second.Log();
  EXPECT_EQ(first.Stop(SIGTERM), 0) << first.Log();
  EXPECT_EQ(second.Stop(SIGTERM), 0) << second.Log();
}

TEST_F(WorkerScaleTest, ASigkilledWorkersExecutionsAreAllCompletedByItsPeer) {
  WorkerUnderTest first(world_, Config("first"), "first");
  WorkerUnderTest second(world_, Config("second"), "second");
  QueueClient client(url_);
  // Four gated trees: with max_concurrent 2 each, both workers run two (none waits in a queue).
  std::map<std::string, std::string> markers;  // execution id -> marker
  std::set<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    std::string marker = UniqueMarker("peer");
    queue::QueueRequest tree = NewRequest("ws.tree", {{"gate", "g"}, {"marker", marker}});
    markers[tree.execution_id] = marker;
    ids.insert(tree.execution_id);
    client.PublishRequest("shell", tree);
  }
  std::set<std::string> on_first, on_second;
  ASSERT_TRUE(WaitUntil(
      [&] {
        on_first = Started(first.Log(), ids);
        on_second = Started(second.Log(), ids);
        if (on_first.size() + on_second.size() != ids.size()) return false;
        for (const auto& [id, marker] : markers) {
          if (ProcessesWithMarker(marker).empty()) return false;
        }
        return true;
      },
      60000))
      << first.Log() << second.Log();
  // The one that runs more of them dies.
  bool kill_first = on_first.size() >= on_second.size();
  WorkerUnderTest& victim = kill_first ? first : second;
  WorkerUnderTest& survivor = kill_first ? second : first;
  const std::set<std::string>& killed = kill_first ? on_first : on_second;
  ASSERT_FALSE(killed.empty());
  EXPECT_EQ(victim.Stop(SIGKILL), 128 + SIGKILL);
  // Its sandboxes die with it (no cleanup by anyone: the survivor does not clean up for a peer).
  for (const std::string& id : killed) {
    EXPECT_THAT(WaitForNoProcessesWithMarker(markers[id], 20000), IsEmpty())
        << "a sandbox of the killed worker survived it";
  }
  OpenGate("g");

  std::map<std::string, nlohmann::json> results;
  for (size_t got = 0; got < ids.size(); ++got) {
    auto result = client.NextResult(120000);
    ASSERT_TRUE(result) << got << " of " << ids.size() << "\n" << survivor.Log();
    std::string id = (*result)["__correlation_id"];
    EXPECT_EQ(results.count(id), 0u) << "answered twice: " << id;
    results[id] = *result;
  }
  EXPECT_FALSE(client.NextResult(2000)) << "more results than requests";
  for (const std::string& id : ids) {
    ASSERT_EQ(results.count(id), 1u) << "lost: " << id << "\n" << survivor.Log();
    const nlohmann::json& result = results[id];
    EXPECT_EQ(result["status"], "succeeded") << result.dump();
    EXPECT_EQ(result["stdout"], "started\nfinished\n") << result.dump();
    bool was_killed = killed.count(id) != 0;
    EXPECT_EQ(result["redelivered"], was_killed) << result.dump();
    EXPECT_EQ(result["attempt"], was_killed ? 2 : 1) << result.dump();
  }
  EXPECT_EQ(Started(survivor.Log(), killed), killed) << "the survivor did not run them";
  EXPECT_EQ(survivor.Stop(SIGTERM), 0) << survivor.Log();
  for (const auto& [id, marker] : markers) ExpectNoProcessOrCgroupLeft(marker, cgroup_);
}

// The broker restarts while an execution runs: the worker reconnects, the execution's result
// reaches the caller once (through a durable reply queue, which outlives the restart), and a
// request published after the restart is answered too.
TEST(WorkerBrokerRestartDuringRunTest, TheRunningExecutionIsAnsweredOnceAndNothingIsLost) {
  PrivateBroker broker;
  RunWorld world;
  ScopedCgroupParent cgroup;
  world.WriteSimpleAction("ws", "tree", "shell", "tree.sh", kTreeScript, kTreeParameters);
  world.WriteSimpleAction("ws", "sh", "shell", "sh.sh", kShellScript, kNParameter);
  std::string url = broker.VhostUrl("t1");
  WorkerUnderTest worker(world, world.WriteConfig(WorkerToml(world, url, cgroup.name())));
  const std::string replies = "test.replies";
  std::string marker = UniqueMarker("restart");
  queue::QueueRequest tree = NewRequest("ws.tree", {{"gate", "r"}, {"marker", marker}});
  {
    QueueClient client(url, replies);
    client.PublishRequest("shell", tree);
    ASSERT_TRUE(WaitUntil([&] { return !ProcessesWithMarker(marker).empty(); }, 60000))
        << worker.Log();
    broker.Restart();
  }
  ASSERT_TRUE(WaitUntilReconnected(worker)) << worker.Log();
  EXPECT_FALSE(ProcessesWithMarker(marker).empty()) << "the execution did not outlive the restart";
  QueueClient client(url, replies);
  queue::QueueRequest after = NewRequest("ws.sh", {{"n", 6}});
  client.PublishRequest("shell", after);
  world.WriteFile("packs/ws/gate-r", "");

  std::map<std::string, nlohmann::json> results;
  for (int got = 0; got < 2; ++got) {
    auto result = client.NextResult(120000);
    ASSERT_TRUE(result) << got << " results\n" << worker.Log();
    std::string id = (*result)["__correlation_id"];
    EXPECT_EQ(results.count(id), 0u) << "answered twice: " << id << "\n" << worker.Log();
    results[id] = *result;
  }
  EXPECT_FALSE(client.NextResult(3000)) << "more results than requests\n" << worker.Log();
  ASSERT_EQ(results.count(tree.execution_id), 1u) << worker.Log();
  ASSERT_EQ(results.count(after.execution_id), 1u) << worker.Log();
  EXPECT_EQ(results[tree.execution_id]["status"], "succeeded") << results[tree.execution_id].dump();
  EXPECT_EQ(results[tree.execution_id]["stdout"], "started\nfinished\n");
  EXPECT_EQ(results[after.execution_id]["stdout"], "shell 43\n");
  EXPECT_EQ(StartsInLog(worker.Log(), tree.execution_id), 1) << worker.Log();
  EXPECT_EQ(worker.Stop(SIGTERM), 0) << worker.Log();
  EXPECT_THAT(WaitForNoProcessesWithMarker(marker, 10000), IsEmpty());
  EXPECT_TRUE(WaitUntil([&] { return cgroup.Children().empty(); }, 10000))
      << "cgroups left: " << JoinLines(cgroup.Children());
}

}  // namespace
}  // namespace packvisor::testing
