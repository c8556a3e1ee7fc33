// AmqpConnection over amqps against the shared broker: a CA of its own, a server certificate for
// "localhost" only, and a client certificate required (rabbitmq-broker.sh --tls).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "supervisor/queue/amqp.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/scratch_dir.h"

namespace packvisor::queue {
namespace {

using packvisor::testing::ParseFixtureUrl;
using packvisor::testing::SharedBrokerTlsFile;
using packvisor::testing::TakeTlsVhostUrl;
using std::chrono::milliseconds;

// Trusts the broker's CA and presents the client certificate.
ConnectOptions Trusting() {
  ConnectOptions options;
  options.tls.ca_file = SharedBrokerTlsFile("ca.pem");
  options.tls.cert_file = SharedBrokerTlsFile("client.pem");
  options.tls.key_file = SharedBrokerTlsFile("client.key");
  return options;
}

TEST(AmqpTlsTest, AVerifiedConnectionCarriesMessages) {
  BrokerUrl url = ParseFixtureUrl(TakeTlsVhostUrl());
  ASSERT_TRUE(url.tls);
  ASSERT_EQ(url.host, "localhost");
  auto connection = AmqpConnection::Open(url, Trusting());
  ASSERT_TRUE(connection.ok()) << connection.error().message();
  QueueOptions private_queue;
  private_queue.durable = false;
  private_queue.exclusive = true;
  auto queue = (*connection)->DeclareQueue("", private_queue);
  ASSERT_TRUE(queue.ok()) << queue.error().message();
  Message message;
  message.body = "over tls";
  ASSERT_TRUE((*connection)->Publish("", *queue, message).ok());
  ASSERT_TRUE((*connection)->Consume(*queue).ok());
  auto delivery = (*connection)->NextDelivery(milliseconds(30000));
  ASSERT_TRUE(delivery.ok()) << delivery.error().message();
  ASSERT_TRUE(delivery->has_value());
  EXPECT_EQ((*delivery)->message.body, "over tls");
}

// Each check refuses on its own: the other two are satisfied in every case.
TEST(AmqpTlsTest, AnUntrustedBrokerIsRefused) {
  BrokerUrl url = ParseFixtureUrl(TakeTlsVhostUrl());
  ConnectOptions options = Trusting();
  options.tls.ca_file = "";  // the system's CAs do not know the test CA
  auto connection = AmqpConnection::Open(url, options);
  ASSERT_FALSE(connection.ok());
  EXPECT_NE(connection.error().message().find("AMQP connect (TLS)"), std::string::npos)
      << connection.error().message();

  options.tls.verify_peer = false;
  options.tls.verify_hostname = false;
  auto unverified = AmqpConnection::Open(url, options);
  EXPECT_TRUE(unverified.ok()) << unverified.error().message();
}

TEST(AmqpTlsTest, ABrokerCertificateForAnotherNameIsRefused) {
  BrokerUrl url = ParseFixtureUrl(TakeTlsVhostUrl());
  url.host = "127.0.0.1";  // the certificate names localhost only
  auto connection = AmqpConnection::Open(url, Trusting());
  ASSERT_FALSE(connection.ok());
  EXPECT_NE(connection.error().message().find("AMQP connect (TLS)"), std::string::npos)
      << connection.error().message();

  ConnectOptions options = Trusting();
  options.tls.verify_hostname = false;
  auto by_address = AmqpConnection::Open(url, options);
  EXPECT_TRUE(by_address.ok()) << by_address.error().message();
}

TEST(AmqpTlsTest, TheBrokerRefusesAConnectionWithoutAClientCertificate) {
  BrokerUrl url = ParseFixtureUrl(TakeTlsVhostUrl());
  ConnectOptions options = Trusting();
  options.tls.cert_file = "";
  options.tls.key_file = "";
  auto connection = AmqpConnection::Open(url, options);
  EXPECT_FALSE(connection.ok());

  options.tls.key_file = SharedBrokerTlsFile("client.key");
  auto key_alone = AmqpConnection::Open(url, options);
  ASSERT_FALSE(key_alone.ok());
  EXPECT_NE(key_alone.error().message().find("without a cert_file"), std::string::npos)
      << key_alone.error().message();

  options.tls.cert_file = SharedBrokerTlsFile("client.pem");
  options.tls.key_file = SharedBrokerTlsFile("missing.key");
  auto missing = AmqpConnection::Open(url, options);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("missing.key"), std::string::npos)
      << missing.error().message();
}

// worker.cert_file is one PEM file with the certificate and its key.
TEST(AmqpTlsTest, TheClientKeyMayBeInTheCertificateFile) {
  BrokerUrl url = ParseFixtureUrl(TakeTlsVhostUrl());
  packvisor::testing::ScratchDir scratch;
  std::string combined;
  for (const char* name : {"client.pem", "client.key"}) {
    std::ifstream in(SharedBrokerTlsFile(name));
    combined.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ConnectOptions options = Trusting();
  options.tls.cert_file = scratch.Write("client-with-key.pem", combined);
  options.tls.key_file = "";
  auto connection = AmqpConnection::Open(url, options);
  EXPECT_TRUE(connection.ok()) << connection.error().message();
}

}  // namespace
}  // namespace packvisor::queue
