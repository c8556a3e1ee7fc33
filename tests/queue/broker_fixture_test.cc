// The test broker itself (tests/support/rabbitmq-broker.sh, broker_fixture.h): what every queue
// test relies on.
#include "tests/support/broker_fixture.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>

namespace packvisor::testing {
namespace {

TEST(AmqpBrokerFixtureTest, VhostsAreNeverHandedOutTwice) {
  std::string first = TakeVhost();
  std::string second = TakeVhost();
  EXPECT_NE(first, second);
  EXPECT_EQ(TakeVhostUrl().rfind(SharedBroker() + "/t", 0), 0u);
  // The vhost exists with guest's permissions: a missing queue is a queue-level 404, not a
  // vhost or login refusal.
  ToolResult permissions = Rabbitmqctl(SharedBrokerDir(), {"list_permissions", "-p", second});
  ASSERT_EQ(permissions.exit_code, 0) << permissions.output;
  EXPECT_NE(permissions.output.find("guest\t.*\t.*\t.*"), std::string::npos) << permissions.output;
  EXPECT_EQ(QueueMessageCount(SharedBrokerDir(), second, "no-such-queue"), std::nullopt);
  try {
    GetMessage(SharedBroker() + "/" + second, "no-such-queue");
    ADD_FAILURE() << "basic.get on a missing queue succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("NOT_FOUND"), std::string::npos) << e.what();
  }
}

std::set<pid_t> PidsOf(const std::string& pid_file) {
  std::set<pid_t> pids;
  std::ifstream in(pid_file);
  pid_t pid;
  while (in >> pid) pids.insert(pid);
  return pids;
}

// Processes whose environment mentions `dir`: the broker's whole tree inherits HOME=DIR/home, also
// the helpers (erl_child_setup, inet_gethost) that make sessions of their own.
std::set<pid_t> ProcessesWithEnvironmentMentioning(const std::string& dir) {
  std::set<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "environ", std::ios::binary);
    std::string environ((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (environ.find(dir) != std::string::npos) found.insert(std::stoi(name));
  }
  return found;
}

TEST(AmqpBrokerFixtureTest, APrivateBrokerStopsWithNothingLeftAndRestartsOnTheSameUrl) {
  std::string dir;
  std::set<pid_t> pids;
  {
    PrivateBroker broker;
    dir = broker.dir();
    std::string url = broker.url();
    EXPECT_EQ(url.rfind("amqp://guest:guest@127.0.0.1:", 0), 0u) << url;
    pids = PidsOf(dir + "/server.pid");
    std::set<pid_t> epmd = PidsOf(dir + "/epmd.pid");
    pids.insert(epmd.begin(), epmd.end());
    ASSERT_EQ(pids.size(), 2u);

    broker.Restart();
    EXPECT_EQ(broker.url(), url);
    EXPECT_EQ(QueueMessageCount(dir, "t1", "no-such-queue"), std::nullopt);
    std::set<pid_t> restarted = PidsOf(dir + "/server.pid");
    std::set<pid_t> epmd_restarted = PidsOf(dir + "/epmd.pid");
    restarted.insert(epmd_restarted.begin(), epmd_restarted.end());
    EXPECT_EQ(restarted.size(), 2u);
    pids.insert(restarted.begin(), restarted.end());
    EXPECT_GE(ProcessesWithEnvironmentMentioning(dir + "/").size(), 3u);
  }
  for (pid_t pid : pids) EXPECT_NE(::kill(pid, 0), 0) << "pid " << pid << " survived stop";
  EXPECT_EQ(ProcessesWithEnvironmentMentioning(dir + "/").size(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace packvisor::testing
