// A real `packvisor worker` for the queue tests: its own config (broker URL on the test's vhost,
// its own state_dir, its own key pair, the test's cgroup parent) under a RunWorld, its stderr kept
// in a file, ready when it sends READY=1 on NOTIFY_SOCKET (never a sleep), and SIGKILLed at
// destruction even when the test failed. Plus a client of the test's own over AmqpConnection: it
// publishes requests and cancels and reads results from an exclusive reply queue, so that a test
// sees exactly the messages the protocol (docs/queue-protocol.md) says. Header-only.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sandbox/os/unique_fd.h"
#include "supervisor/queue/amqp.h"
#include "supervisor/queue/protocol.h"
#include "supervisor/queue/sealed_secrets.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/harness.h"
#include "tests/support/notified_process.h"
#include "tests/support/run_fixtures.h"

namespace packvisor::testing {

// The world's key pair ({root}/keys/worker.key, worker.pub), made once.
inline void EnsureKeyPair(const RunWorld& world) {
  std::string dir = world.Path("keys");
  if (std::filesystem::exists(dir + "/worker.key")) return;
  std::filesystem::create_directories(dir);
  auto written = queue::WriteKeyPair(dir + "/worker.key", dir + "/worker.pub");
  if (!written) throw std::runtime_error("keygen: " + written.error().message());
}

// The [worker] table of a test config: the broker, the world's keys, `extra` lines after.
inline std::string WorkerToml(const RunWorld& world, const std::string& broker_url,
                              const std::string& cgroup_parent, const std::string& extra = "") {
  EnsureKeyPair(world);
  return "[sandbox]\ncgroup_parent = \"" + cgroup_parent +
         "\"\n[execution]\nkill_grace_seconds = 1\n" + "[worker]\nbroker_url = \"" + broker_url +
         "\"\nkey_file = \"" + world.Path("keys/worker.key") + "\"\npublic_key_file = \"" +
         world.Path("keys/worker.pub") +
         "\"\nheartbeat_seconds = 5\nreconnect_max_seconds = 2\nname = \"test-worker\"\n" + extra;
}

class WorkerUnderTest {
 public:
  // Starts `packvisor --config CONFIG --log-level debug worker` with the config already written
  // at `config_path`; waits for READY=1.
  WorkerUnderTest(const RunWorld& world, std::string config_path, std::string name = "worker")
      : world_(world),
        config_path_(std::move(config_path)),
        log_path_(world.Path(name + ".log")),
        name_(std::move(name)) {
    Start();
  }
  ~WorkerUnderTest() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  WorkerUnderTest(const WorkerUnderTest&) = delete;
  WorkerUnderTest& operator=(const WorkerUnderTest&) = delete;

  pid_t pid() const { return pid_; }
  std::string Log() const { return ReadFileOrEmpty(log_path_); }
  const std::string& log_path() const { return log_path_; }

  bool Start() {
    std::string notify_path = world_.Path(name_ + "-notify-" + std::to_string(++starts_) + ".sock");
    std::vector<std::string> args = {PackvisorBinary(), "--config", config_path_,
                                     "--log-level",     "debug",    "worker"};
    return StartUntilReady(std::move(args), notify_path, log_path_, "worker", &pid_,
                           [this] { return Log(); });
  }

  // Sends `signal` and waits for the exit; the exit status (128+N when killed by N).
  int Stop(int signal = SIGTERM) {
    if (pid_ <= 0) return -1;
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  const RunWorld& world_;
  std::string config_path_;
  std::string log_path_;
  std::string name_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

// A client of the queue protocol on its own connections: one publishes (confirms on), one
// consumes an exclusive reply queue (and, when asked, a queue bound to packvisor.events).
// With `durable_reply_queue`, the reply queue is that durable classic queue instead: it survives
// a broker restart, and a client made after the restart reads what was answered meanwhile.
class QueueClient {
 public:
  explicit QueueClient(const std::string& url, const std::string& durable_reply_queue = "")
      : url_(url) {
    publish_ = Open("test client (publish)");
    if (auto confirms = publish_->EnableConfirms(); !confirms) Throw(confirms.error());
    consume_ = Open("test client (consume)");
    queue::QueueOptions own;
    own.durable = !durable_reply_queue.empty();
    own.exclusive = durable_reply_queue.empty();
    own.auto_delete = durable_reply_queue.empty();
    auto reply = consume_->DeclareQueue(durable_reply_queue, own);
    if (!reply) Throw(reply.error());
    reply_queue_ = *reply;
    if (auto tag = consume_->Consume(reply_queue_); !tag) Throw(tag.error());
  }

  const std::string& reply_queue() const { return reply_queue_; }

  // Publishes `body` to packvisor.executions with run.<runtime>, reply_to this client, the
  // correlation id `correlation` (the execution id when empty). Mandatory: fails when no queue
  // takes it.
  void Publish(const std::string& runtime, const std::string& body,
               const std::string& correlation = "x", bool with_reply = true) {
    queue::Message message;
    message.body = body;
    message.correlation_id = correlation;
    if (with_reply) message.reply_to = reply_queue_;
    auto published = publish_->Publish(queue::kExecutionsExchange, queue::RunRoutingKey(runtime),
                                       message, /*mandatory=*/true);
    if (!published) Throw(published.error());
  }

  void PublishRequest(const std::string& runtime, const queue::QueueRequest& request) {
    Publish(runtime, queue::RequestBody(request), request.execution_id);
  }

  void Cancel(const std::string& execution_id) {
    queue::Message message;
    message.body = queue::CancelBody(execution_id);
    auto published = publish_->Publish(queue::kCancelExchange, "", message);
    if (!published) Throw(published.error());
  }

  // The next result on the reply queue (its body parsed, with correlation_id), or nullopt after
  // `timeout_ms`.
  std::optional<nlohmann::json> NextResult(int timeout_ms = 60000) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < until) {
      auto delivery = consume_->NextDelivery(std::chrono::milliseconds(200));
      if (!delivery) Throw(delivery.error());
      if (!*delivery) continue;
      auto acked = consume_->Ack((*delivery)->delivery_tag);
      if (!acked) Throw(acked.error());
      nlohmann::json body = nlohmann::json::parse((*delivery)->message.body, nullptr, false);
      if (body.is_discarded()) throw std::runtime_error("a result that is not JSON");
      body["__correlation_id"] = (*delivery)->message.correlation_id;
      return body;
    }
    return std::nullopt;
  }

 private:
  std::unique_ptr<queue::AmqpConnection> Open(const std::string& name) {
    queue::ConnectOptions options;
    options.connection_name = name;
    options.heartbeat = std::chrono::seconds(0);
    auto connection = queue::AmqpConnection::Open(ParseFixtureUrl(url_), options);
    if (!connection) Throw(connection.error());
    return std::move(*connection);
  }
  [[noreturn]] static void Throw(const Error& error) {
    throw std::runtime_error("test client: " + error.message());
  }

  std::string url_;
  std::unique_ptr<queue::AmqpConnection> publish_;
  std::unique_ptr<queue::AmqpConnection> consume_;
  std::string reply_queue_;
};

// A request of version 1 for `action_ref` with a fresh execution id.
inline queue::QueueRequest NewRequest(const std::string& action_ref,
                                      nlohmann::json parameters = nlohmann::json::object()) {
  queue::QueueRequest request;
  request.execution_id = UniqueMarker("ex");
  request.action_ref = action_ref;
  request.parameters = std::move(parameters);
  request.submitted_at = "2026-12-07T00:00:00Z";
  return request;
}

// How many lines of a worker's log say that execution `id` started (an execution run once: 1).
inline int StartsInLog(const std::string& log, const std::string& id) {
  int count = 0;
  for (const std::string& line : Lines(log)) {
    if (line.find("execution " + id + " ") != std::string::npos &&
        line.find(": started") != std::string::npos) {
      ++count;
    }
  }
  return count;
}

// Whether `worker`'s log says it lost the broker and then consumes again (within 60 s).
inline bool WaitUntilReconnected(const WorkerUnderTest& worker) {
  return WaitUntil(
      [&] {
        std::string log = worker.Log();
        size_t lost = log.find("broker connection lost");
        return lost != std::string::npos && log.find("consuming", lost) != std::string::npos;
      },
      60000);
}

}  // namespace packvisor::testing
