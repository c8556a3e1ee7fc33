// queue::ParseBrokerUrl and RedactedBrokerUrl (supervisor/queue/broker_url.cc): RabbitMQ's URI
// spec, strictly, and no password in any error or redacted form.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "supervisor/queue/amqp.h"

namespace packvisor::queue {
namespace {

TEST(BrokerUrlTest, TheDefaultUrl) {
  auto url = ParseBrokerUrl("amqp://guest:guest@127.0.0.1:5672/%2F");
  ASSERT_TRUE(url.ok()) << url.error().message();
  EXPECT_FALSE(url->tls);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 5672);
  EXPECT_EQ(url->vhost, "/");
  EXPECT_EQ(url->user, "guest");
  EXPECT_EQ(url->password, "guest");
}

TEST(BrokerUrlTest, DefaultsAndDecoding) {
  auto plain = ParseBrokerUrl("amqp://rabbit");
  ASSERT_TRUE(plain.ok()) << plain.error().message();
  EXPECT_EQ(plain->host, "rabbit");
  EXPECT_EQ(plain->port, 5672);
  EXPECT_EQ(plain->vhost, "/");
  EXPECT_EQ(plain->user, "guest");
  EXPECT_EQ(plain->password, "guest");

  auto tls = ParseBrokerUrl("amqps://al%40ice:p%3Ass%2Fw@rabbit.example/prod%2Feu");
  ASSERT_TRUE(tls.ok()) << tls.error().message();
  EXPECT_TRUE(tls->tls);
  EXPECT_EQ(tls->port, 5671);
  EXPECT_EQ(tls->user, "al@ice");
  EXPECT_EQ(tls->password, "p:ss/w");
  EXPECT_EQ(tls->vhost, "prod/eu");

  auto no_password = ParseBrokerUrl("amqp://alice@rabbit:15672/v");
  ASSERT_TRUE(no_password.ok());
  EXPECT_EQ(no_password->user, "alice");
  EXPECT_EQ(no_password->password, "guest");
  EXPECT_EQ(no_password->port, 15672);

  auto empty_password = ParseBrokerUrl("amqp://alice:@rabbit/v");
  ASSERT_TRUE(empty_password.ok());
  EXPECT_EQ(empty_password->password, "");

  auto ipv6 = ParseBrokerUrl("amqp://u:p@[::1]:5673/%2F");
  ASSERT_TRUE(ipv6.ok()) << ipv6.error().message();
  EXPECT_EQ(ipv6->host, "::1");
  EXPECT_EQ(ipv6->port, 5673);

  auto ipv6_default_port = ParseBrokerUrl("amqps://[fe80::2]");
  ASSERT_TRUE(ipv6_default_port.ok());
  EXPECT_EQ(ipv6_default_port->host, "fe80::2");
  EXPECT_EQ(ipv6_default_port->port, 5671);
}

TEST(BrokerUrlTest, RefusalsAreOneLineAndNeverHoldThePassword) {
  struct Case {
    std::string url;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"http://s3cretpw@rabbit/", "expected a URL starting with amqp:// or amqps://"},
      {"AMQP://rabbit", "expected a URL starting with amqp:// or amqps://"},
      {"", "expected a URL starting with amqp:// or amqps://"},
      {"amqp://u:s3cretpw@rabbit /",
       "contains a space, a control character or a non-ASCII byte (percent-encode it)"},
      {"amqp://u:s3cretpw\n@rabbit/",
       "contains a space, a control character or a non-ASCII byte (percent-encode it)"},
      {"amqp://u:s3cretpw@rabbit/?heartbeat=10",
       "query parameters and fragments are not supported (the worker.* keys set heartbeat, TLS "
       "and timeouts)"},
      {"amqp://u:s3cretpw@rabbit/#x",
       "query parameters and fragments are not supported (the worker.* keys set heartbeat, TLS "
       "and timeouts)"},
      {"amqp://u:s3cretpw@rabbit/",
       "the vhost after the '/' is empty (write %2F for the default vhost \"/\")"},
      {"amqp://u:s3cretpw@rabbit/a/b", "the vhost contains '/': write it as %2F"},
      {"amqp://u:s3cretpw@rabbit/%2", "the vhost has a malformed %-escape"},
      {"amqp://u:s3cretpw@rabbit/%00", "the vhost has a malformed %-escape"},
      {"amqp://:s3cretpw@rabbit/v", "the user name before the '@' is empty"},
      {"amqp://u%g1:s3cretpw@rabbit/v", "the user name has a malformed %-escape"},
      {"amqp://u:s3cretpw%zz@rabbit/v", "the password has a malformed %-escape"},
      {"amqp://u:s3cretpw@/v", "the host is empty"},
      {"amqp://u:s3cretpw@:5672/v", "the host is empty"},
      {"amqp://u:s3cretpw@rabbit:/v", "the port after ':' is empty"},
      {"amqp://u:s3cretpw@rabbit:0/v", "the port must be a number from 1 to 65535"},
      {"amqp://u:s3cretpw@rabbit:65536/v", "the port must be a number from 1 to 65535"},
      {"amqp://u:s3cretpw@rabbit:+5/v", "the port must be a number from 1 to 65535"},
      // "@host" forgotten: the password is where the port would be, and is not quoted.
      {"amqp://u:s3cretpw", "the port must be a number from 1 to 65535"},
      {"amqp://u:s3cretpw@[::1/v", "an IPv6 host lacks its closing ']'"},
      {"amqp://u:s3cretpw@[::1]x/v", "unexpected text after the IPv6 host"},
      {"amqp://u:s3cretpw@[]/v", "the IPv6 host is empty"},
      {"amqp://u:s3cretpw@[::1]:/v", "the port after ':' is empty"},
  };
  for (const Case& c : cases) {
    auto url = ParseBrokerUrl(c.url);
    ASSERT_FALSE(url.ok()) << c.url;
    EXPECT_EQ(url.error().message(), "invalid broker URL: " + c.message) << c.url;
    EXPECT_EQ(url.error().message().find("s3cret"), std::string::npos);
  }
}

TEST(BrokerUrlTest, RedactedHidesThePasswordAndRoundTrips) {
  auto url = ParseBrokerUrl("amqps://al%40ice:s3cret@rabbit.example:5999/prod%2Feu");
  ASSERT_TRUE(url.ok());
  std::string redacted = RedactedBrokerUrl(*url);
  EXPECT_EQ(redacted, "amqps://al%40ice:***@rabbit.example:5999/prod%2Feu");
  EXPECT_EQ(redacted.find("s3cret"), std::string::npos);

  auto back = ParseBrokerUrl(redacted);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->user, "al@ice");
  EXPECT_EQ(back->vhost, "prod/eu");
  EXPECT_EQ(back->password, "***");

  auto local = ParseBrokerUrl("amqp://[::1]");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(RedactedBrokerUrl(*local), "amqp://guest:***@[::1]:5672/%2F");
}

// Found by fuzz_broker_url: "amqps://)orker3acrm%40qp" was accepted with the host ")orker3acrm@qp",
// and its redacted form "amqps://guest:***@)orker3acrm@qp:5671/%2F" named the host "qp".
TEST(BrokerUrlTest, FuzzRedactedUrlNamesAnotherBrokerAHostOutsideDnsCharactersIsRefused) {
  for (const char* url : {"amqps://)orker3acrm%40qp", "amqp://rab%2Fbit", "amqp://a:b@x%3Ay:1/v",
                          "amqp://[::1%25eth0]", "amqp://[::g]"}) {
    auto parsed = ParseBrokerUrl(url);
    ASSERT_FALSE(parsed.ok()) << url;
    EXPECT_NE(parsed.error().message().find("host"), std::string::npos) << url;
  }
  for (const char* url : {"amqp://rabbit-1.example_internal", "amqp://10.0.0.7", "amqp://[::1]"}) {
    auto parsed = ParseBrokerUrl(url);
    ASSERT_TRUE(parsed.ok()) << url;
    auto back = ParseBrokerUrl(RedactedBrokerUrl(*parsed));
    ASSERT_TRUE(back.ok()) << url;
    EXPECT_EQ(back->host, parsed->host) << url;
  }
}

}  // namespace
}  // namespace packvisor::queue
