// Real RabbitMQ brokers for the queue tests (packvisor_queue_tests): the suite's shared broker
// (started once by the ctest fixture `rabbitmq`, or by this process when run by hand), a vhost of
// its own per test, private brokers a test may stop and restart, and inspection helpers that go
// around AmqpConnection (rabbitmqctl, basic.get through rabbitmq-c directly) so that they check
// it rather than trust it. The brokers are run by tests/support/rabbitmq-broker.sh.
//
// Failures to start or query a broker throw std::runtime_error (a test failure naming the cause).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "supervisor/queue/amqp.h"

namespace packvisor::testing {

// tests/support/rabbitmq-broker.sh in the source tree.
std::string BrokerScript();

// The directory of the suite's broker: $PACKVISOR_TEST_BROKER_DIR (set by ctest for the tests
// that require the `rabbitmq` fixture), else a private broker started on first use by this
// process and stopped at its exit (running the binary by hand needs no setup).
const std::string& SharedBrokerDir();
// amqp://guest:guest@127.0.0.1:PORT of the shared broker (vhost "/": no test should use it).
std::string SharedBroker();
// The shared broker also listens for amqps (rabbitmq-broker.sh --tls): amqps://guest:guest@
// localhost:PORT, its CA and the client certificate it requires (SharedBrokerTlsFile("ca.pem"),
// "client.pem", "client.key").
std::string SharedTlsBroker();
std::string SharedBrokerTlsFile(const std::string& name);

// A vhost of the shared broker no other test (in any process of this run) uses: the next of
// t1..t64 under a flock'ed counter in the broker's directory. Throws when all are taken.
std::string TakeVhost();
// amqp://guest:guest@127.0.0.1:PORT/<TakeVhost()>.
std::string TakeVhostUrl();
// amqps://guest:guest@localhost:PORT/<TakeVhost()>.
std::string TakeTlsVhostUrl();

// A broker of the test's own, for tests that stop or restart it. Starts in the constructor and
// is stopped in the destructor (also when the test failed). Restart() keeps the ports, the node
// and the data: durable queues and persistent messages survive it.
class PrivateBroker {
 public:
  struct Options {
    // Also listen for amqps (rabbitmq-broker.sh --tls): a server certificate for "localhost"
    // only, from a CA of its own (TlsFile("ca.pem")), and a client certificate required
    // (TlsFile("client.pem"), TlsFile("client.key")).
    bool tls = false;
  };
  PrivateBroker() : PrivateBroker(Options{}) {}
  explicit PrivateBroker(Options options);
  ~PrivateBroker();
  PrivateBroker(const PrivateBroker&) = delete;
  PrivateBroker& operator=(const PrivateBroker&) = delete;

  void Start();
  void Stop();
  void Restart() {
    Stop();
    Start();
  }
  // amqp://guest:guest@127.0.0.1:PORT (vhost "/"); the same across restarts.
  const std::string& url() const { return url_; }
  // The URL on vhost t1..t64.
  std::string VhostUrl(const std::string& vhost) const { return url_ + "/" + vhost; }
  const std::string& dir() const { return dir_; }
  // amqps://guest:guest@localhost:PORT with Options::tls, else "".
  const std::string& tls_url() const { return tls_url_; }
  std::string TlsFile(const std::string& name) const { return dir_ + "/tls/" + name; }

 private:
  Options options_;
  std::string dir_;
  std::string url_;
  std::string tls_url_;
  bool running_ = false;
};

// What a command printed (stdout and stderr together) and its exit status.
struct ToolResult {
  int exit_code = -1;
  std::string output;
};

// `rabbitmqctl args...` against the broker in `broker_dir` (its ctl.env). ~1 s a call.
ToolResult Rabbitmqctl(const std::string& broker_dir, const std::vector<std::string>& args);

// The number of ready messages in `queue` of `vhost` (rabbitmqctl list_queues); nullopt when the
// queue does not exist.
std::optional<int64_t> QueueMessageCount(const std::string& broker_dir, const std::string& vhost,
                                         const std::string& queue);

// queue::ParseBrokerUrl, throwing on a bad URL.
queue::BrokerUrl ParseFixtureUrl(const std::string& url);

// basic.get of one message from `queue` on a connection of its own (AmqpConnection::Get); acks it
// when `ack`, else it is requeued when the connection closes. nullopt when the queue is empty.
// Throws on a broker error.
std::optional<queue::Delivery> GetMessage(const std::string& url, const std::string& queue,
                                          bool ack = true);

}  // namespace packvisor::testing
