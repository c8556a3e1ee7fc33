// AmqpConnection (supervisor/queue/amqp.h) against a real RabbitMQ broker: the shared one with a
// vhost per test, or a PrivateBroker for the tests that stop or freeze it.
#include "supervisor/queue/amqp.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <fstream>
#include <string>
#include <vector>

#include "sandbox/os/unique_fd.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/harness.h"

namespace packvisor::queue {
namespace {

using packvisor::testing::GetMessage;
using packvisor::testing::ParseFixtureUrl;
using packvisor::testing::PrivateBroker;
using packvisor::testing::Rabbitmqctl;
using packvisor::testing::SharedBrokerDir;
using packvisor::testing::TakeVhostUrl;
using packvisor::testing::UniqueMarker;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A wait long enough for any broker event on a loaded host; a test waits for the event, this only
// bounds a broken implementation.
constexpr milliseconds kEventWait{30000};

std::unique_ptr<AmqpConnection> OpenOrDie(const std::string& url, ConnectOptions options = {}) {
  auto connection = AmqpConnection::Open(ParseFixtureUrl(url), options);
  if (!connection.ok()) {
    ADD_FAILURE() << connection.error().message();
    return nullptr;
  }
  return std::move(*connection);
}

#define ASSERT_OK(expr)                                                         \
  do {                                                                          \
    auto&& assert_ok_result_ = (expr);                                          \
    ASSERT_TRUE(assert_ok_result_.ok()) << assert_ok_result_.error().message(); \
  } while (0)

// The next delivery, failing the test when none comes.
Delivery NextOrFail(AmqpConnection& connection) {
  auto delivery = connection.NextDelivery(kEventWait);
  if (!delivery.ok()) {
    ADD_FAILURE() << delivery.error().message();
    return {};
  }
  if (!delivery->has_value()) {
    ADD_FAILURE() << "no delivery";
    return {};
  }
  return std::move(**delivery);
}

QueueOptions Quorum() {
  QueueOptions options;
  options.quorum = true;
  return options;
}

TEST(AmqpConnectionTest, ARoundTripKeepsEveryPropertyAndHeader) {
  std::string url = TakeVhostUrl();
  ConnectOptions options;
  options.connection_name = UniqueMarker("amqp-round-trip");
  auto connection = OpenOrDie(url, options);
  ASSERT_NE(connection, nullptr);
  ASSERT_OK(connection->DeclareExchange("packvisor.executions", "topic"));
  auto queue = connection->DeclareQueue("packvisor.run.python", Quorum());
  ASSERT_OK(queue);
  EXPECT_EQ(*queue, "packvisor.run.python");
  ASSERT_OK(connection->BindQueue("packvisor.run.python", "packvisor.executions", "run.python"));
  ASSERT_OK(connection->SetPrefetch(4));
  auto tag = connection->Consume("packvisor.run.python");
  ASSERT_OK(tag);

  Message sent;
  sent.body = R"({"id":"e1"})";
  sent.content_type = "application/json";
  sent.correlation_id = "corr-1";
  sent.reply_to = "amq.gen-reply";
  sent.message_id = "msg-1";
  sent.persistent = true;
  sent.headers = {{"x-packvisor-version", "1"}, {"x-packvisor-reason", "a reason, with ü"}};
  ASSERT_OK(connection->Publish("packvisor.executions", "run.python", sent));

  Delivery delivery = NextOrFail(*connection);
  EXPECT_EQ(delivery.consumer_tag, *tag);
  EXPECT_EQ(delivery.exchange, "packvisor.executions");
  EXPECT_EQ(delivery.routing_key, "run.python");
  EXPECT_FALSE(delivery.redelivered);
  EXPECT_EQ(delivery.delivery_count, std::nullopt);
  EXPECT_EQ(delivery.message.body, sent.body);
  EXPECT_EQ(delivery.message.content_type, sent.content_type);
  EXPECT_EQ(delivery.message.correlation_id, sent.correlation_id);
  EXPECT_EQ(delivery.message.reply_to, sent.reply_to);
  EXPECT_EQ(delivery.message.message_id, sent.message_id);
  EXPECT_TRUE(delivery.message.persistent);
  EXPECT_EQ(delivery.message.headers, sent.headers);
  ASSERT_OK(connection->Ack(delivery.delivery_tag));

  // A transient message without optional properties comes back without them.
  Message bare;
  bare.body = "x";
  bare.content_type = "";
  bare.persistent = false;
  ASSERT_OK(connection->Publish("", "packvisor.run.python", bare));
  Delivery second = NextOrFail(*connection);
  EXPECT_EQ(second.exchange, "");
  EXPECT_EQ(second.message.body, "x");
  EXPECT_EQ(second.message.content_type, "");
  EXPECT_EQ(second.message.correlation_id, "");
  EXPECT_FALSE(second.message.persistent);
  EXPECT_TRUE(second.message.headers.empty());
  ASSERT_OK(connection->Ack(second.delivery_tag));

  // Both acked: nothing is left for anyone else.
  auto idle = connection->NextDelivery(milliseconds(0));
  ASSERT_OK(idle);
  EXPECT_FALSE(idle->has_value());
  ASSERT_OK(connection->KeepAlive());
  connection.reset();
  EXPECT_FALSE(GetMessage(url, "packvisor.run.python").has_value());

  // connection_name reached the broker (the connection above is closed: open another).
  auto named = OpenOrDie(url, options);
  ASSERT_NE(named, nullptr);
  auto listed = Rabbitmqctl(SharedBrokerDir(), {"list_connections", "client_properties"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find(options.connection_name), std::string::npos) << listed.output;
}

TEST(AmqpConnectionTest, AnUnackedDeliveryIsRedeliveredWithItsCountWhenTheConnectionCloses) {
  std::string url = TakeVhostUrl();
  {
    auto connection = OpenOrDie(url);
    ASSERT_NE(connection, nullptr);
    ASSERT_OK(connection->DeclareQueue("work", Quorum()));
    Message message;
    message.body = "once";
    ASSERT_OK(connection->Publish("", "work", message));
    ASSERT_OK(connection->Consume("work"));
    Delivery first = NextOrFail(*connection);
    EXPECT_EQ(first.message.body, "once");
    EXPECT_FALSE(first.redelivered);
    EXPECT_EQ(first.delivery_count, std::nullopt);
    // Closed without an ack.
  }
  auto connection = OpenOrDie(url);
  ASSERT_NE(connection, nullptr);
  ASSERT_OK(connection->Consume("work"));
  Delivery again = NextOrFail(*connection);
  EXPECT_EQ(again.message.body, "once");
  EXPECT_TRUE(again.redelivered);
  EXPECT_EQ(again.delivery_count, std::optional<int64_t>(1));
  ASSERT_OK(connection->Ack(again.delivery_tag));
}

TEST(AmqpConnectionTest, TheDeliveryLimitDeadLettersWithTheReason) {
  std::string url = TakeVhostUrl();
  auto connection = OpenOrDie(url);
  ASSERT_NE(connection, nullptr);
  ASSERT_OK(connection->DeclareExchange("packvisor.dead", "fanout"));
  ASSERT_OK(connection->DeclareQueue("packvisor.dead", Quorum()));
  ASSERT_OK(connection->BindQueue("packvisor.dead", "packvisor.dead", ""));
  QueueOptions limited = Quorum();
  limited.delivery_limit = 1;
  limited.dead_letter_exchange = "packvisor.dead";
  ASSERT_OK(connection->DeclareQueue("poison", limited));
  Message message;
  message.body = "poison";
  message.message_id = "p1";
  ASSERT_OK(connection->Publish("", "poison", message));
  auto poison_consumer = connection->Consume("poison");
  ASSERT_OK(poison_consumer);
  auto dead_consumer = connection->Consume("packvisor.dead");
  ASSERT_OK(dead_consumer);

  // Requeue every delivery of "poison" until the broker gives up on it and dead-letters it.
  int deliveries = 0;
  for (;;) {
    Delivery delivery = NextOrFail(*connection);
    if (::testing::Test::HasFailure()) return;
    if (delivery.consumer_tag == *dead_consumer) {
      EXPECT_EQ(delivery.message.body, "poison");
      EXPECT_EQ(delivery.message.message_id, "p1");
      EXPECT_EQ(delivery.message.headers["x-first-death-reason"], "delivery_limit");
      EXPECT_EQ(delivery.message.headers["x-first-death-queue"], "poison");
      ASSERT_OK(connection->Ack(delivery.delivery_tag));
      break;
    }
    ASSERT_EQ(delivery.consumer_tag, *poison_consumer);
    ++deliveries;
    ASSERT_LE(deliveries, 2) << "delivered past its limit of 1 redelivery";
    ASSERT_OK(connection->Reject(delivery.delivery_tag, /*requeue=*/true));
  }
  EXPECT_EQ(deliveries, 2);
}

TEST(AmqpConnectionTest, AMandatoryPublishNoQueueTakesIsUnroutableAndTheConnectionGoesOn) {
  std::string url = TakeVhostUrl();
  for (bool confirms : {false, true}) {
    SCOPED_TRACE(confirms ? "with confirms" : "without confirms");
    auto connection = OpenOrDie(url);
    ASSERT_NE(connection, nullptr);
    if (confirms) ASSERT_OK(connection->EnableConfirms());
    Message message;
    message.body = "result";
    auto unroutable = connection->Publish("", "amq.gen-gone", message, /*mandatory=*/true);
    ASSERT_FALSE(unroutable.ok());
    EXPECT_EQ(unroutable.error().err, EHOSTUNREACH);
    EXPECT_NE(unroutable.error().message().find("unroutable"), std::string::npos)
        << unroutable.error().message();
    EXPECT_NE(unroutable.error().message().find("NO_ROUTE"), std::string::npos)
        << unroutable.error().message();

    // Still usable: a routable mandatory publish succeeds and arrives.
    ASSERT_OK(connection->DeclareQueue("replies", QueueOptions{}));
    ASSERT_OK(connection->Publish("", "replies", message, /*mandatory=*/true));
    // Without confirms the message may still be on its way: consume it rather than poll.
    ASSERT_OK(connection->Consume("replies"));
    Delivery delivery = NextOrFail(*connection);
    EXPECT_EQ(delivery.message.body, "result");
    ASSERT_OK(connection->Ack(delivery.delivery_tag));
  }
}

TEST(AmqpConnectionTest, UnderConfirmsAPublishReturnsOnceTheBrokerHasTheMessage) {
  std::string url = TakeVhostUrl();
  auto connection = OpenOrDie(url);
  ASSERT_NE(connection, nullptr);
  ASSERT_OK(connection->DeclareQueue("results", Quorum()));
  ASSERT_OK(connection->EnableConfirms());
  ASSERT_OK(connection->EnableConfirms());  // idempotent
  for (int i = 0; i < 3; ++i) {
    Message message;
    message.body = "m" + std::to_string(i);
    ASSERT_OK(connection->Publish("", "results", message, /*mandatory=*/true));
  }
  // Confirmed means enqueued: another connection sees all three, in order, right away.
  for (int i = 0; i < 3; ++i) {
    auto fetched = GetMessage(url, "results");
    ASSERT_TRUE(fetched.has_value()) << "message " << i;
    EXPECT_EQ(fetched->message.body, "m" + std::to_string(i));
  }
  EXPECT_FALSE(GetMessage(url, "results").has_value());
}

// Deliveries that arrive while a method waits for its answer (a declare's -ok, a publish's
// confirm) are not lost: NextDelivery returns them afterwards, in order.
TEST(AmqpConnectionTest, DeliveriesArrivingDuringOtherMethodsAreKept) {
  std::string url = TakeVhostUrl();
  auto connection = OpenOrDie(url);
  ASSERT_NE(connection, nullptr);
  ASSERT_OK(connection->DeclareQueue("busy", Quorum()));
  ASSERT_OK(connection->EnableConfirms());
  for (int i = 0; i < 5; ++i) {
    Message message;
    message.body = "before-" + std::to_string(i);
    ASSERT_OK(connection->Publish("", "busy", message));
  }
  ASSERT_OK(connection->Consume("busy"));
  // The broker pushes the five deliveries at once; these calls read them before their answers.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(connection->DeclareQueue("other-" + std::to_string(i), Quorum()));
    Message message;
    message.body = "during-" + std::to_string(i);
    ASSERT_OK(connection->Publish("", "busy", message, /*mandatory=*/true));
  }
  std::vector<std::string> bodies;
  for (int i = 0; i < 8; ++i) {
    Delivery delivery = NextOrFail(*connection);
    if (::testing::Test::HasFailure()) return;
    bodies.push_back(delivery.message.body);
    ASSERT_OK(connection->Ack(delivery.delivery_tag));
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{"before-0", "before-1", "before-2", "before-3",
                                              "before-4", "during-0", "during-1", "during-2"}));
  auto idle = connection->NextDelivery(milliseconds(0));
  ASSERT_OK(idle);
  EXPECT_FALSE(idle->has_value());
}

TEST(AmqpConnectionTest, ABrokerErrorClosesTheChannelWithItsReplyText) {
  std::string url = TakeVhostUrl();
  auto connection = OpenOrDie(url);
  ASSERT_NE(connection, nullptr);
  ASSERT_OK(connection->DeclareQueue("q", Quorum()));
  auto mismatch = connection->DeclareQueue("q", QueueOptions{});  // classic over quorum
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message().find("PRECONDITION_FAILED"), std::string::npos)
      << mismatch.error().message();
  EXPECT_EQ(mismatch.error().err, 0);
  EXPECT_NE(mismatch.error().message().find("queue.declare q"), std::string::npos)
      << mismatch.error().message();
  auto after = connection->DeclareQueue("q", Quorum());
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.error().message().find("open a new one"), std::string::npos)
      << after.error().message();
}

TEST(AmqpConnectionTest, AWrongPasswordIsOneLineWithoutThePassword) {
  BrokerUrl url = ParseFixtureUrl(TakeVhostUrl());
  url.password = "not-the-password-7f3a";
  auto connection = AmqpConnection::Open(url, ConnectOptions{});
  ASSERT_FALSE(connection.ok());
  std::string message = connection.error().message();
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(message.find("not-the-password-7f3a"), std::string::npos) << message;
  EXPECT_NE(message.find("login"), std::string::npos) << message;
  EXPECT_NE(message.find("ACCESS_REFUSED"), std::string::npos) << message;
  EXPECT_EQ(connection.error().err, EACCES);
  EXPECT_NE(message.find(url.host + ":" + std::to_string(url.port)), std::string::npos) << message;
}

TEST(AmqpConnectionTest, AClosedPortIsAConnectError) {
  // A port bound but not listening refuses connections for as long as we hold it.
  unique_fd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(holder);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(holder.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);

  BrokerUrl url;
  url.host = "127.0.0.1";
  url.port = ntohs(address.sin_port);
  auto connection = AmqpConnection::Open(url, ConnectOptions{});
  ASSERT_FALSE(connection.ok());
  std::string message = connection.error().message();
  EXPECT_NE(message.find("AMQP connect"), std::string::npos) << message;
  EXPECT_EQ(connection.error().err, ECONNREFUSED);
  EXPECT_NE(message.find("127.0.0.1:" + std::to_string(url.port)), std::string::npos) << message;
}

// Waits for NextDelivery to fail; fails the test if the connection looks alive for `rounds` of
// one second each (far more than the heartbeat: a hang, not a slow host).
void ExpectNextDeliveryFails(AmqpConnection& connection, int rounds, const std::string& what) {
  for (int i = 0; i < rounds; ++i) {
    auto delivery = connection.NextDelivery(milliseconds(1000));
    if (!delivery.ok()) {
      EXPECT_NE(delivery.error().message().find("AMQP wait for a delivery"), std::string::npos)
          << delivery.error().message();
      return;
    }
    ASSERT_FALSE(delivery->has_value()) << what;
  }
  ADD_FAILURE() << what << ": NextDelivery still waits after " << rounds << " s";
}

// The broker's process group (rabbitmq-broker.sh starts it with setsid).
pid_t BrokerProcessGroup(const PrivateBroker& broker) {
  pid_t pid = 0;
  std::ifstream(broker.dir() + "/server.pid") >> pid;
  return pid;
}

TEST(AmqpConnectionTest, ALostBrokerIsAnErrorNotAHang) {
  PrivateBroker broker;
  ConnectOptions options;
  options.heartbeat = seconds(1);

  // A frozen broker sends nothing, not even a FIN: only the heartbeat can notice.
  auto frozen = OpenOrDie(broker.VhostUrl("t1"), options);
  ASSERT_NE(frozen, nullptr);
  ASSERT_OK(frozen->DeclareQueue("q", Quorum()));
  ASSERT_OK(frozen->Consume("q"));
  pid_t group = BrokerProcessGroup(broker);
  ASSERT_GT(group, 1);
  ASSERT_EQ(::kill(-group, SIGSTOP), 0);
  ExpectNextDeliveryFails(*frozen, 30, "frozen broker");
  ASSERT_EQ(::kill(-group, SIGCONT), 0);

  // A stopped broker closes its connections.
  auto stopped = OpenOrDie(broker.VhostUrl("t1"), options);
  ASSERT_NE(stopped, nullptr);
  ASSERT_OK(stopped->Consume("q"));
  broker.Stop();
  ExpectNextDeliveryFails(*stopped, 30, "stopped broker");
  auto keep_alive = stopped->KeepAlive();
  EXPECT_FALSE(keep_alive.ok());
}

}  // namespace
}  // namespace packvisor::queue
