// worker.broker_url's grammar: RabbitMQ's AMQP URI (amqp://user:password@host:port/vhost or
// amqps://...; the vhost is percent-decoded, "/" is "%2F"; the default port is 5672, 5671 for
// amqps; user and password default to guest). Pure text work, below the configuration, so that
// a bad URL is refused when the file is loaded; supervisor/queue/ connects with it.
#pragma once

#include <string>
#include <string_view>

#include "sandbox/os/error.h"

namespace packvisor {

struct BrokerUrl {
  bool tls = false;
  std::string host;
  int port = 5672;
  std::string vhost = "/";
  std::string user = "guest";
  std::string password = "guest";
};

// One-line error naming what is wrong; never contains the password.
Result<BrokerUrl> ParseBrokerUrl(std::string_view url);

// The URL with the password replaced by "***", for logs and errors.
std::string RedactedBrokerUrl(const BrokerUrl& url);

}  // namespace packvisor
