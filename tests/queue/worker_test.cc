// `packvisor worker` against the suite's real RabbitMQ broker (a vhost per test) or a private one:
// real worker processes started by the tests (tests/support/worker_fixture.h), real sandboxes, the
// protocol of docs/queue-protocol.md seen from a client of the test's own.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sodium.h>

#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
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

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Prints the SHA-256 of the secret `token` (never the token itself).
constexpr char kHashScript[] =
    "doc=$(cat)\n"
    "printf '%s' \"$doc\" | sed -n 's/.*\"token\": *\"\\([^\"]*\\)\".*/\\1/p' | tr -d '\\n' | "
    "sha256sum | cut -d' ' -f1\n";

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : digest) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

std::string ReadProcFile(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + name, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Ready + unacked messages of `queue` in `vhost` (nullopt: no such queue).
std::optional<int64_t> MessagesInQueue(const std::string& vhost, const std::string& queue) {
  ToolResult result = Rabbitmqctl(SharedBrokerDir(), {"list_queues", "-q", "--no-table-headers",
                                                      "-p", vhost, "name", "messages"});
  if (result.exit_code != 0) return std::nullopt;
  std::istringstream lines(result.output);
  std::string line;
  while (std::getline(lines, line)) {
    size_t tab = line.rfind('\t');
    if (tab != std::string::npos && line.substr(0, tab) == queue) {
      return std::stoll(line.substr(tab + 1));
    }
  }
  return std::nullopt;
}

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = TakeVhostUrl();
    vhost_ = url_.substr(url_.rfind('/') + 1);
    WriteActions(world_);
  }
  static void WriteActions(const RunWorld& world) {
    world.WriteSimpleAction("wq", "echo", "shell", "echo.sh", "cat\n",
                            "output_format: json\nparameters:\n  who: {type: string}\n");
    world.WriteSimpleAction("wq", "uuid", "shell", "uuid.sh", "cat /proc/sys/kernel/random/uuid\n");
    world.WriteSimpleAction("wq", "fail", "shell", "fail.sh", "echo out\necho err >&2\nexit 3\n");
    world.WriteSimpleAction("wq", "tree", "shell", "tree.sh", kTreeScript, kTreeParameters);
    world.WriteSimpleAction("wq", "hash", "shell", "hash.sh", kHashScript,
                            "parameters:\n  token: {type: string, secret: true, required: true}\n");
  }
  // Writes the world's config for a worker on `url` (the test's vhost by default).
  std::string Config(const std::string& extra = "", const std::string& url = "") {
    return world_.WriteConfig(WorkerToml(world_, url.empty() ? url_ : url, cgroup_.name(), extra));
  }
  void OpenGate(const RunWorld& world, const std::string& gate) const {
    world.WriteFile("packs/wq/gate-" + gate, "");
  }
  queue::QueueRequest Tree(const std::string& gate, const std::string& marker) const {
    return NewRequest("wq.tree", {{"gate", gate}, {"marker", marker}});
  }

  RunWorld world_;
  ScopedCgroupParent cgroup_;
  std::string url_;
  std::string vhost_;
};

TEST_F(WorkerTest, AnswersEveryRequestOnceAndRefusesBadInputWithResults) {
  WorkerUnderTest worker(world_, Config("max_concurrent = 2\n"));
  QueueClient client(url_);

  // A successful run: the result object of `run`, attempt 1, not redelivered.
  queue::QueueRequest echo = NewRequest("wq.echo", {{"who", "world"}});
  client.PublishRequest("shell", echo);
  auto result = client.NextResult();
  ASSERT_TRUE(result) << worker.Log();
  EXPECT_EQ((*result)["execution_id"], echo.execution_id);
  EXPECT_EQ((*result)["__correlation_id"], echo.execution_id);
  EXPECT_EQ((*result)["status"], "succeeded") << result->dump();
  EXPECT_EQ((*result)["exit_code"], 0);
  EXPECT_EQ((*result)["result"], nlohmann::json({{"who", "world"}}));
  EXPECT_EQ((*result)["attempt"], 1);
  EXPECT_EQ((*result)["redelivered"], false);

  // `submit --wait` prints what `run` prints and exits as it does.
  CommandResult submitted =
      world_.Cli({"submit", "--wait", "--json", "wq.echo", "--param", "who=submit"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.stderr_text << worker.Log();
  nlohmann::json printed = submitted.Json();
  EXPECT_EQ(printed["status"], "succeeded") << submitted.stdout_text;
  EXPECT_EQ(printed["result"], nlohmann::json({{"who", "submit"}}));
  EXPECT_EQ(printed["attempt"], 1);
  EXPECT_EQ(printed["redelivered"], false);
  CommandResult run = world_.Cli({"run", "wq.fail"});
  CommandResult queued = world_.Cli({"submit", "--wait", "wq.fail"});
  EXPECT_EQ(queued.exit_code, 3) << queued.stderr_text;
  EXPECT_EQ(queued.exit_code, run.exit_code);
  EXPECT_EQ(queued.stdout_text, run.stdout_text);
  EXPECT_THAT(queued.stderr_text, HasSubstr("err\n"));
  EXPECT_THAT(queued.stderr_text, HasSubstr("wq.fail: failed (exit 3)"));
  // --stream: the output comes from the output events, printed once, before the summary.
  CommandResult streamed = world_.Cli({"submit", "--wait", "--stream", "wq.fail"});
  EXPECT_EQ(streamed.exit_code, 3) << streamed.stderr_text;
  EXPECT_EQ(streamed.stdout_text, run.stdout_text);
  EXPECT_EQ(Lines(streamed.stderr_text).front(), "err") << streamed.stderr_text;
  CommandResult missing = world_.Cli({"submit", "--wait", "wq.missing"});
  EXPECT_EQ(missing.exit_code, 127) << missing.stderr_text;

  // Bad input: each a rejected result, and the worker keeps serving.
  std::map<std::string, nlohmann::json> rejected;
  client.Publish("shell", "{not json", "malformed");
  nlohmann::json version2 = nlohmann::json::parse(queue::RequestBody(NewRequest("wq.echo")));
  version2["version"] = 2;
  client.Publish("shell", version2.dump(), "version2");
  queue::QueueRequest unknown = NewRequest("wq.nope");
  client.Publish("shell", queue::RequestBody(unknown), "unknown");
  for (int i = 0; i < 3; ++i) {
    auto got = client.NextResult();
    ASSERT_TRUE(got) << worker.Log();
    rejected[(*got)["__correlation_id"]] = *got;
  }
  for (const char* name : {"malformed", "version2", "unknown"}) {
    ASSERT_TRUE(rejected.count(name)) << name;
    EXPECT_EQ(rejected[name]["status"], "rejected") << rejected[name].dump();
    EXPECT_TRUE(rejected[name]["error"].is_string()) << rejected[name].dump();
  }
  EXPECT_THAT(rejected["version2"]["error"].get<std::string>(), HasSubstr("version"));
  EXPECT_EQ(rejected["unknown"]["execution_id"], unknown.execution_id);

  // The same execution id delivered twice: run once, answered twice, the second redelivered.
  queue::QueueRequest uuid = NewRequest("wq.uuid");
  client.PublishRequest("shell", uuid);
  client.PublishRequest("shell", uuid);
  auto first = client.NextResult();
  auto second = client.NextResult();
  ASSERT_TRUE(first && second) << worker.Log();
  EXPECT_EQ((*first)["status"], "succeeded") << first->dump();
  EXPECT_EQ((*first)["stdout"], (*second)["stdout"]) << "the action ran twice";
  EXPECT_EQ((*first)["redelivered"].get<bool>() + (*second)["redelivered"].get<bool>(), 1)
      << first->dump() << "\n"
      << second->dump();
  EXPECT_EQ(StartsInLog(worker.Log(), uuid.execution_id), 1) << worker.Log();

  // Everything was acked.
  EXPECT_TRUE(WaitUntil([&] { return MessagesInQueue(vhost_, "packvisor.run.shell") == 0; }, 20000))
      << "packvisor.run.shell still holds messages";
  EXPECT_EQ(worker.Stop(SIGTERM), 0) << worker.Log();
}

TEST_F(WorkerTest, SealedSecretsReachTheActionAndNowhereElse) {
  WorkerUnderTest worker(world_, Config());
  auto since = std::chrono::system_clock::now() - std::chrono::seconds(2);
  QueueClient client(url_);
  // Everything the worker says on packvisor.events, for inspection.
  {
    auto url = ParseFixtureUrl(url_);
    auto events = queue::AmqpConnection::Open(url, {});
    ASSERT_TRUE(events) << events.error().message();
    queue::QueueOptions options;
    ASSERT_TRUE((*events)->DeclareQueue("test.events", options));
    ASSERT_TRUE((*events)->BindQueue("test.events", queue::kEventsExchange, "#"));
  }
  auto key = queue::LoadPublicKey(world_.Path("keys/worker.pub"));
  ASSERT_TRUE(key) << key.error().message();
  const std::string secret = "s3cret-" + UniqueMarker("tok");
  const std::string plain = "plain-" + UniqueMarker("tok");

  queue::QueueRequest hash = NewRequest("wq.hash");
  auto sealed = queue::SealSecrets({{"token", secret}}, *key);
  ASSERT_TRUE(sealed) << sealed.error().message();
  hash.sealed_secrets = *sealed;
  std::string body = queue::RequestBody(hash);
  EXPECT_THAT(body, Not(HasSubstr(secret)));
  client.Publish("shell", body, "sealed");
  auto result = client.NextResult();
  ASSERT_TRUE(result) << worker.Log();
  EXPECT_EQ((*result)["status"], "succeeded") << result->dump();
  EXPECT_EQ((*result)["stdout"], Sha256Hex(secret) + "\n") << result->dump();

  // Plain secrets: refused, never run, dead-lettered without the value.
  nlohmann::json with_plain = nlohmann::json::parse(queue::RequestBody(NewRequest("wq.hash")));
  std::string plain_id = with_plain["execution_id"];
  with_plain["secrets"] = {{"token", plain}};
  client.Publish("shell", with_plain.dump(), "plain");
  auto refused = client.NextResult();
  ASSERT_TRUE(refused) << worker.Log();
  EXPECT_EQ((*refused)["status"], "rejected") << refused->dump();
  EXPECT_THAT(refused->dump(), Not(HasSubstr(plain)));
  std::optional<queue::Delivery> dead;
  EXPECT_TRUE(WaitUntil(
      [&] {
        dead = GetMessage(url_, queue::kDeadQueue);
        return dead.has_value();
      },
      10000));
  ASSERT_TRUE(dead);
  EXPECT_THAT(dead->message.body, Not(HasSubstr(plain)));
  EXPECT_THAT(dead->message.body, HasSubstr("token"));
  EXPECT_TRUE(dead->message.headers.count(queue::kDeadLetterReasonHeader)) << dead->message.body;
  EXPECT_EQ(StartsInLog(worker.Log(), plain_id), 0) << worker.Log();
  auto record =
      std::filesystem::exists(world_.StateDir() + "/worker/executions/" + plain_id + ".json");
  EXPECT_FALSE(record) << "a refused request has no record";

  // Neither value anywhere: the log, the state files, the events, the worker's environ and argv.
  std::string log = worker.Log();
  for (const std::string& value : {secret, plain}) {
    EXPECT_THAT(log, Not(HasSubstr(value)));
    EXPECT_THAT(RecentFilesContaining(world_.StateDir(), value, since), IsEmpty());
    EXPECT_THAT(ReadProcFile(worker.pid(), "environ"), Not(HasSubstr(value)));
    EXPECT_THAT(ReadProcFile(worker.pid(), "cmdline"), Not(HasSubstr(value)));
  }
  int events = 0;
  while (auto event = GetMessage(url_, "test.events")) {
    ++events;
    EXPECT_THAT(event->message.body, Not(HasSubstr(secret)));
    EXPECT_THAT(event->message.body, Not(HasSubstr(plain)));
  }
  EXPECT_GE(events, 2) << "no running and result events";
}

TEST_F(WorkerTest, CancelKillsARunningExecutionAndARememberedOneNeverRuns) {
  WorkerUnderTest worker(world_, Config());
  QueueClient client(url_);
  std::string marker = UniqueMarker("cancel");
  queue::QueueRequest tree = Tree("never", marker);
  client.PublishRequest("shell", tree);
  ASSERT_TRUE(WaitUntil([&] { return !ProcessesWithMarker(marker).empty(); }, 30000))
      << worker.Log();
  client.Cancel(tree.execution_id);
  auto result = client.NextResult();
  ASSERT_TRUE(result) << worker.Log();
  EXPECT_EQ((*result)["status"], "cancelled") << result->dump();
  EXPECT_EQ((*result)["stdout"], "started\n");
  ExpectNoProcessOrCgroupLeft(marker, cgroup_);

  // A cancel that comes first is remembered; the request is then answered without running.
  queue::QueueRequest early = NewRequest("wq.uuid");
  client.Cancel(early.execution_id);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return worker.Log().find("execution " + early.execution_id + ": cancel remembered") !=
               std::string::npos;
      },
      10000))
      << worker.Log();
  client.PublishRequest("shell", early);
  auto cancelled = client.NextResult();
  ASSERT_TRUE(cancelled) << worker.Log();
  EXPECT_EQ((*cancelled)["execution_id"], early.execution_id);
  EXPECT_EQ((*cancelled)["status"], "cancelled") << cancelled->dump();
  EXPECT_EQ(StartsInLog(worker.Log(), early.execution_id), 0) << worker.Log();
}

TEST_F(WorkerTest, AKilledWorkersExecutionIsRunByTheNextWorkerAndNothingIsLeft) {
  std::string marker = UniqueMarker("killed");
  queue::QueueRequest tree = Tree("g", marker);
  QueueClient client(url_);
  {
    WorkerUnderTest first(world_, Config(), "first");
    client.PublishRequest("shell", tree);
    ASSERT_TRUE(WaitUntil([&] { return !ProcessesWithMarker(marker).empty(); }, 30000))
        << first.Log();
    EXPECT_EQ(first.Stop(SIGKILL), 128 + SIGKILL);
  }
  // Another worker, with a state_dir of its own, on the same cgroup parent: its start-up cleans
  // up what the dead one left, and it gets the redelivery.
  RunWorld second_world;
  WriteActions(second_world);
  OpenGate(second_world, "g");
  WorkerUnderTest second(second_world,
                         second_world.WriteConfig(WorkerToml(second_world, url_, cgroup_.name())),
                         "second");
  auto result = client.NextResult();
  ASSERT_TRUE(result) << second.Log();
  EXPECT_EQ((*result)["execution_id"], tree.execution_id);
  EXPECT_EQ((*result)["status"], "succeeded") << result->dump();
  EXPECT_EQ((*result)["stdout"], "started\nfinished\n");
  EXPECT_EQ((*result)["redelivered"], true);
  EXPECT_EQ((*result)["attempt"], 2);
  ExpectNoProcessOrCgroupLeft(marker, cgroup_);
}

TEST_F(WorkerTest, AMessageThatKillsEveryWorkerEndsInTheDeadQueue) {
  std::string config = Config("delivery_limit = 1\n");
  std::string marker = UniqueMarker("poison");
  QueueClient client(url_);
  for (int kill_count = 0; kill_count < 2; ++kill_count) {
    WorkerUnderTest worker(world_, config, "poisoned-" + std::to_string(kill_count));
    if (kill_count == 0) client.PublishRequest("shell", Tree("never", marker));
    ASSERT_TRUE(WaitUntil([&] { return !ProcessesWithMarker(marker).empty(); }, 30000))
        << worker.Log();
    EXPECT_EQ(worker.Stop(SIGKILL), 128 + SIGKILL);
    ASSERT_THAT(WaitForNoProcessesWithMarker(marker, 10000), IsEmpty());
  }
  std::optional<queue::Delivery> dead;
  ASSERT_TRUE(WaitUntil(
      [&] {
        dead = GetMessage(url_, queue::kDeadQueue);
        return dead.has_value();
      },
      20000))
      << "nothing reached packvisor.dead";
  EXPECT_EQ(dead->message.headers["x-first-death-reason"], "delivery_limit");
  EXPECT_THAT(dead->message.body, HasSubstr(marker));
  EXPECT_FALSE(client.NextResult(500)) << "a poison message got a result";
}

TEST_F(WorkerTest, SigtermFinishesWhatRunsPublishesItsResultAndExitsZero) {
  WorkerUnderTest worker(world_, Config());
  QueueClient client(url_);
  std::string marker = UniqueMarker("drain");
  queue::QueueRequest tree = Tree("drain", marker);
  client.PublishRequest("shell", tree);
  ASSERT_TRUE(WaitUntil([&] { return !ProcessesWithMarker(marker).empty(); }, 30000))
      << worker.Log();
  kill(worker.pid(), SIGTERM);
  ASSERT_TRUE(WaitUntil([&] { return worker.Log().find("draining") != std::string::npos; }, 10000))
      << worker.Log();
  OpenGate(world_, "drain");
  auto result = client.NextResult();
  ASSERT_TRUE(result) << worker.Log();
  EXPECT_EQ((*result)["status"], "succeeded") << result->dump();
  EXPECT_EQ((*result)["stdout"], "started\nfinished\n");
  EXPECT_EQ(worker.Stop(SIGTERM), 0) << worker.Log();
  EXPECT_TRUE(
      WaitUntil([&] { return MessagesInQueue(vhost_, "packvisor.run.shell") == 0; }, 20000));
}

TEST(WorkerBrokerRestartTest, TheWorkerReconnectsAndRunsWhatIsPublishedAfterTheRestart) {
  PrivateBroker broker;
  RunWorld world;
  ScopedCgroupParent cgroup;
  world.WriteSimpleAction("wq", "uuid", "shell", "uuid.sh", "cat /proc/sys/kernel/random/uuid\n");
  std::string url = broker.VhostUrl("t1");
  WorkerUnderTest worker(world, world.WriteConfig(WorkerToml(world, url, cgroup.name())));
  broker.Restart();
  ASSERT_TRUE(WaitUntilReconnected(worker)) << worker.Log();
  QueueClient client(url);
  queue::QueueRequest request = NewRequest("wq.uuid");
  client.PublishRequest("shell", request);
  auto result = client.NextResult();
  ASSERT_TRUE(result) << worker.Log();
  EXPECT_EQ((*result)["status"], "succeeded") << result->dump();
}

TEST(WorkerStartTest, ASecondWorkerOnTheSameStateDirAndAWorkerWithoutItsKeyRefuseToStart) {
  RunWorld world;
  ScopedCgroupParent cgroup;
  std::string url = TakeVhostUrl();
  std::string config = world.WriteConfig(WorkerToml(world, url, cgroup.name()));
  WorkerUnderTest worker(world, config);
  CommandResult second = RunPackvisor({"--config", config, "worker"});
  EXPECT_EQ(second.exit_code, 125);
  EXPECT_THAT(second.stderr_text, HasSubstr("another packvisor worker"));
  EXPECT_EQ(Lines(second.stderr_text).size(), 1u) << second.stderr_text;

  RunWorld keyless;
  std::string no_key = keyless.WriteConfig("[worker]\nbroker_url = \"" + url + "\"\nkey_file = \"" +
                                           keyless.Path("none.key") + "\"\n");
  CommandResult refused = RunPackvisor({"--config", no_key, "worker"});
  EXPECT_EQ(refused.exit_code, 125);
  EXPECT_THAT(refused.stderr_text, HasSubstr("worker.key_file"));
}

}  // namespace
}  // namespace packvisor::testing
