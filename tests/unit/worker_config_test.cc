// The worker.* configuration keys (docs/config.md): every key read, the defaults, and one-line
// refusals naming the file, the line and the key. A broker URL's password never appears in them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "supervisor/config/config.h"

namespace packvisor {
namespace {

class WorkerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/packvisor-worker-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& content) {
    std::string path = dir_ + "/packvisor.toml";
    std::ofstream(path) << content;
    return path;
  }
  std::string ErrorOf(const std::string& content) {
    auto config = LoadConfigFile(Write(content));
    return config.ok() ? std::string() : config.error().message();
  }

  std::string dir_;
};

TEST_F(WorkerConfigTest, ReadsEveryKey) {
  auto config = LoadConfigFile(Write(R"([worker]
broker_url = "amqps://packvisor:s3cret@rabbit.example:5999/prod"
ca_file = "certs/ca.pem"
cert_file = "/etc/packvisor/client.pem"
key_file = "/srv/keys/worker.key"
public_key_file = "keys/worker.pub"
runtimes = ["python", "shell", "python"]
max_concurrent = 7
delivery_limit = 5
cancel_memory_seconds = 60
drain_seconds = 0
reconnect_max_seconds = 5
heartbeat_seconds = 0
name = "worker-1.eu"
broker_password_file = "/etc/packvisor/broker.password"
)"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  const WorkerConfig& w = config->worker;
  EXPECT_EQ(w.broker_url, "amqps://packvisor:s3cret@rabbit.example:5999/prod");
  EXPECT_EQ(w.ca_file, dir_ + "/certs/ca.pem");
  EXPECT_EQ(w.cert_file, "/etc/packvisor/client.pem");
  EXPECT_EQ(w.key_file, "/srv/keys/worker.key");
  EXPECT_EQ(w.public_key_file, dir_ + "/keys/worker.pub");
  EXPECT_EQ(w.runtimes, (std::vector<std::string>{"python", "shell"}));
  EXPECT_EQ(w.max_concurrent, 7u);
  EXPECT_EQ(w.delivery_limit, 5);
  EXPECT_EQ(w.cancel_memory_seconds, 60);
  EXPECT_EQ(w.drain_seconds, 0);
  EXPECT_EQ(w.reconnect_max_seconds, 5);
  EXPECT_EQ(w.heartbeat_seconds, 0);
  EXPECT_EQ(w.name, "worker-1.eu");
  EXPECT_EQ(w.broker_password_file, "/etc/packvisor/broker.password");
}

TEST_F(WorkerConfigTest, EmptyAndZeroMeanTheDefaults) {
  auto config = LoadConfigFile(
      Write("[worker]\nname = \"\"\nmax_concurrent = 0\nca_file = \"\"\ncert_file = \"\"\n"
            "broker_password_file = \"\"\nruntimes = []\n"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->worker.name, HostName());
  EXPECT_FALSE(config->worker.name.empty());
  EXPECT_EQ(config->worker.max_concurrent, OnlineCores());
  EXPECT_EQ(config->worker.ca_file, "");
  EXPECT_EQ(config->worker.cert_file, "");
  EXPECT_EQ(config->worker.broker_password_file, "");
  EXPECT_TRUE(config->worker.runtimes.empty());
}

TEST_F(WorkerConfigTest, RefusalsNameTheFileLineAndKey) {
  struct Case {
    std::string toml;
    std::string tail;  // what the message ends with, after the file name
  };
  const std::vector<Case> cases = {
      {"[worker]\nbroker_url = \"http://rabbit/\"\n",
       ":2: worker.broker_url: invalid broker URL: expected a URL starting with amqp:// or "
       "amqps://"},
      {"[worker]\nbroker_url = 5672\n", ":2: worker.broker_url: expected a string, got 5672"},
      {"[worker]\n\nbroker_url = \"amqp://u:p@host:0/\"\n",
       ":3: worker.broker_url: invalid broker URL: the vhost after the '/' is empty (write %2F "
       "for the default vhost \"/\")"},
      {"[worker]\nbroker_url = \"amqp://host:99999\"\n",
       ":2: worker.broker_url: invalid broker URL: the port must be a number from 1 to "
       "65535"},
      {"[worker]\nbroker_url = \"amqp://host/?heartbeat=5\"\n",
       ":2: worker.broker_url: invalid broker URL: query parameters and fragments are not "
       "supported (the worker.* keys set heartbeat, TLS and timeouts)"},
      {"[worker]\nca_file = 1\n", ":2: worker.ca_file: expected a path, got 1"},
      {"[worker]\nkey_file = \"\"\n", ":2: worker.key_file: expected a path, got \"\""},
      {"[worker]\npublic_key_file = \"~/worker.pub\"\n",
       ":2: worker.public_key_file: '~' is not expanded; write an absolute path or one relative "
       "to the file"},
      {"[worker]\nruntimes = \"python\"\n",
       ":2: worker.runtimes: expected an array of runtime names, got \"python\""},
      {"[worker]\nruntimes = [\"python\", \"Py thon\"]\n",
       ":2: worker.runtimes[1]: expected a runtime name (^[a-z0-9][a-z0-9_-]{0,63}$), got "
       "\"Py thon\""},
      {"[worker]\nmax_concurrent = -1\n",
       ":2: worker.max_concurrent: expected a non-negative integer, got -1"},
      {"[worker]\nmax_concurrent = 1025\n",
       ":2: worker.max_concurrent: expected an integer from 0 to 1024, got 1025"},
      {"[worker]\ndelivery_limit = 0\n",
       ":2: worker.delivery_limit: expected a positive integer, got 0"},
      {"[worker]\ndelivery_limit = 1001\n",
       ":2: worker.delivery_limit: expected an integer from 1 to 1000, got 1001"},
      {"[worker]\ncancel_memory_seconds = 0\n",
       ":2: worker.cancel_memory_seconds: expected a positive integer, got 0"},
      {"[worker]\ndrain_seconds = 86401\n",
       ":2: worker.drain_seconds: expected an integer from 0 to 86400, got 86401"},
      {"[worker]\nreconnect_max_seconds = 0\n",
       ":2: worker.reconnect_max_seconds: expected a positive integer, got 0"},
      {"[worker]\nheartbeat_seconds = 3601\n",
       ":2: worker.heartbeat_seconds: expected an integer from 0 to 3600, got 3601"},
      {"[worker]\nheartbeat_seconds = 30.0\n",
       ":2: worker.heartbeat_seconds: expected a non-negative integer, got 30.0"},
      {"[worker]\nname = \"my worker\"\n",
       ":2: worker.name: expected 1 to 64 of [A-Za-z0-9._-], got \"my worker\""},
      {"[worker]\nname = \"" + std::string(65, 'w') + "\"\n",
       ":2: worker.name: expected 1 to 64 of [A-Za-z0-9._-], got \"" + std::string(65, 'w') + "\""},
      {"[worker]\nbroker_password_file = true\n",
       ":2: worker.broker_password_file: expected a path, got true"},
      {"[worker]\nbroker_ulr = \"x\"\n",
       ":2: worker.broker_ulr: unknown key (did you mean worker.broker_url?)"},
      {"drain_seconds = 3\n",
       ":1: drain_seconds: unknown key (did you mean server.drain_seconds?)"},
      {"worker = 1\n", ":1: worker: expected a table, got 1"},
  };
  for (const Case& c : cases) {
    std::string message = ErrorOf(c.toml);
    EXPECT_EQ(message, "invalid configuration " + dir_ + "/packvisor.toml" + c.tail) << c.toml;
  }
}

// A refused URL with a password never puts the password into the error.
TEST_F(WorkerConfigTest, BrokerUrlErrorsNeverHoldThePassword) {
  const std::vector<std::string> urls = {
      "amqp://user:hunter2pw@host:notaport/",
      "amqp://user:hunter2pw@/vhost",
      "amqp://user:hunter2pw%zz@host/",
      "amqp://user:hunter2pw@host/a/b",
      "amqp://user:hunter2pw@host/?x=hunter2",
      "amqps://user:hunter2pw@[::1/",
      "amqp://:hunter2pw@host/",
      "ftp://user:hunter2pw@host/",
      "amqp://user:hunter2pw",
  };
  for (const std::string& url : urls) {
    std::string message = ErrorOf("[worker]\nbroker_url = \"" + url + "\"\n");
    ASSERT_FALSE(message.empty()) << url;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace packvisor
