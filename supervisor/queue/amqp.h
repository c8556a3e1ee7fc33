// supervisor/queue/: the broker protocol shared by the queue worker (supervisor/worker/) and the
// command line (`submit`, `keygen` in supervisor/cli/): an AMQP 0-9-1 connection over
// rabbitmq-c (amqp.h), the versioned messages and the broker topology (protocol.h, written down
// in docs/queue-protocol.md), and secrets sealed to the workers' key (sealed_secrets.h). It uses
// executions/ and below; it never includes cli/, server/ or worker/.
//
// One AMQP connection with one channel, over rabbitmq-c (librabbitmq, linked statically with
// OpenSSL for amqps). rabbitmq-c is not thread-safe: an AmqpConnection is used by one thread at a
// time. Every broker or socket failure is an Error; after one the connection is unusable and the
// caller opens a new one (the worker reconnects with backoff).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sandbox/os/error.h"
#include "supervisor/config/broker_url.h"

namespace packvisor::queue {

// The broker URL grammar lives below the configuration (config/broker_url.h).
using packvisor::BrokerUrl;
using packvisor::ParseBrokerUrl;
using packvisor::RedactedBrokerUrl;

struct TlsOptions {
  std::string ca_file;    // PEM bundle to verify the broker with; "" = the system's default
  std::string cert_file;  // client certificate (optional)
  std::string key_file;   // its private key; "" = in cert_file (one PEM file with both)
  bool verify_peer = true;
  bool verify_hostname = true;
};

struct ConnectOptions {
  TlsOptions tls;                      // used when the URL is amqps
  std::chrono::seconds heartbeat{30};  // 0 disables
  std::chrono::milliseconds connect_timeout{10000};
  std::string connection_name;  // shown by `rabbitmqctl list_connections client_properties`
};

// AMQP basic properties packvisor uses, plus string headers.
struct Message {
  std::string body;
  std::string content_type = "application/json";
  std::string correlation_id;
  std::string reply_to;
  std::string message_id;
  bool persistent = true;  // delivery_mode 2
  // Written as string headers; read: string and integer headers (integers in decimal).
  std::map<std::string, std::string> headers;
};

struct Delivery {
  uint64_t delivery_tag = 0;
  std::string consumer_tag;
  std::string exchange;
  std::string routing_key;
  bool redelivered = false;
  // The quorum queue's x-delivery-count header (absent on a first delivery).
  std::optional<int64_t> delivery_count;
  // x-first-death-reason / x-first-death-queue etc. are in message.headers; integer headers are
  // there in decimal.
  Message message;
};

struct QueueOptions {
  bool durable = true;
  bool exclusive = false;
  bool auto_delete = false;
  bool quorum = false;                    // x-queue-type: quorum
  std::optional<int64_t> delivery_limit;  // x-delivery-limit (quorum only)
  std::string dead_letter_exchange;       // x-dead-letter-exchange, "" = none
};

class AmqpConnection {
 public:
  // Connects, logs in, opens channel 1. Errors name the broker (RedactedBrokerUrl) and the step.
  static Result<std::unique_ptr<AmqpConnection>> Open(const BrokerUrl& url,
                                                      const ConnectOptions& options);
  ~AmqpConnection();  // closes the channel and the connection (best effort)
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;

  // type: "topic", "fanout", "direct". Durable, not auto-deleted.
  Result<void> DeclareExchange(const std::string& name, const std::string& type);
  // Returns the queue's name (the broker's when `name` is empty).
  Result<std::string> DeclareQueue(const std::string& name, const QueueOptions& options);
  Result<void> BindQueue(const std::string& queue, const std::string& exchange,
                         const std::string& routing_key);
  // basic.qos per consumer (quorum queues have no global prefetch).
  Result<void> SetPrefetch(uint16_t count);
  // Starts a consumer (manual acks); returns its consumer tag.
  Result<std::string> Consume(const std::string& queue);

  // Waits up to `timeout` for the next delivery of any consumer on this connection; nullopt on
  // timeout. Services heartbeats meanwhile. An Error means the connection is gone.
  Result<std::optional<Delivery>> NextDelivery(std::chrono::milliseconds timeout);
  // basic.get of one message from `queue` (nullopt when it is empty), acked when `ack`, else
  // left unacked (requeued when the connection closes). For a connection without consumers
  // (inspection, tests).
  Result<std::optional<Delivery>> Get(const std::string& queue, bool ack);
  Result<void> Ack(uint64_t delivery_tag);
  // basic.reject; requeue=false dead-letters through the queue's x-dead-letter-exchange.
  Result<void> Reject(uint64_t delivery_tag, bool requeue);

  // Puts the channel in confirm mode: from then on Publish returns only once the broker has
  // confirmed the message (basic.ack), and fails on basic.nack.
  Result<void> EnableConfirms();
  // With `mandatory`, a message no queue takes (basic.return) is an Error whose message says
  // "unroutable"; its err is EHOSTUNREACH. Without confirms, a mandatory publish waits for a
  // round trip (a passive exchange.declare) so that the return is known. An unroutable or nacked
  // publish leaves the connection usable; every other Error does not.
  Result<void> Publish(const std::string& exchange, const std::string& routing_key,
                       const Message& message, bool mandatory = false);
  // For a connection that only publishes: services heartbeats and notices a closed connection.
  Result<void> KeepAlive();

 private:
  struct State;
  explicit AmqpConnection(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace packvisor::queue
