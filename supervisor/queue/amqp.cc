// AmqpConnection over rabbitmq-c 0.11 (Debian's librabbitmq, linked statically with OpenSSL).
//
// Frames that arrive while we wait for something else (a basic.deliver during a publish's
// confirm, a basic.ack during NextDelivery) all go through HandleAsyncFrame, so that none is lost
// whatever the caller was doing: deliveries are kept for the next NextDelivery, confirms and
// returns are accounted to the publish that waits for them, and a channel.close or
// connection.close from the broker is answered and becomes the Error of the current call.
#include "supervisor/queue/amqp.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <utility>
#include <vector>

namespace packvisor::queue {
namespace {

// rabbitmq-c's defaults: no channel limit asked, 128 KiB frames.
constexpr int kChannelMax = 0;
constexpr int kFrameMax = 131072;
constexpr amqp_channel_t kChannel = 1;
// How long a synchronous method (declare, bind, qos, consume, confirm.select) may take. A quorum
// queue declare waits for its Raft group to start; on a loaded host that is seconds.
constexpr std::chrono::seconds kMinRpcTimeout{30};
// How long the destructor waits for connection.close-ok.
constexpr std::chrono::milliseconds kCloseTimeout{5000};
// How long Publish waits for the confirm. A dead broker is noticed sooner by the heartbeat; this
// bounds a live one that does not confirm (a resource alarm blocks publishers): the caller gets an
// Error and reconnects rather than hanging, and the request it answers is still unacked.
constexpr std::chrono::seconds kConfirmTimeout{60};

struct timeval ToTimeval(std::chrono::milliseconds duration) {
  if (duration.count() < 0) duration = std::chrono::milliseconds(0);
  struct timeval tv;
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return tv;
}

std::string ToString(amqp_bytes_t bytes) {
  if (bytes.len == 0) return {};
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

amqp_bytes_t ToBytes(const std::string& text) {
  amqp_bytes_t bytes;
  bytes.len = text.size();
  bytes.bytes = const_cast<char*>(text.data());
  return bytes;
}

std::optional<int64_t> IntegerValue(const amqp_field_value_t& value) {
  switch (value.kind) {
    case AMQP_FIELD_KIND_I8:
      return value.value.i8;
    case AMQP_FIELD_KIND_U8:
      return value.value.u8;
    case AMQP_FIELD_KIND_I16:
      return value.value.i16;
    case AMQP_FIELD_KIND_U16:
      return value.value.u16;
    case AMQP_FIELD_KIND_I32:
      return value.value.i32;
    case AMQP_FIELD_KIND_U32:
      return value.value.u32;
    case AMQP_FIELD_KIND_I64:
      return value.value.i64;
    case AMQP_FIELD_KIND_U64:
      return static_cast<int64_t>(value.value.u64);
    default:
      return std::nullopt;
  }
}

// The Message of rabbitmq-c's properties and body. Headers: strings as they are; of the others
// only x-delivery-count is kept (in `delivery_count`); arrays (x-death) and tables are dropped.
Message ToMessage(const amqp_message_t& message, std::optional<int64_t>* delivery_count) {
  Message out;
  const amqp_basic_properties_t& properties = message.properties;
  out.body = ToString(message.body);
  out.content_type =
      properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG ? ToString(properties.content_type) : "";
  if (properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
    out.correlation_id = ToString(properties.correlation_id);
  }
  if (properties._flags & AMQP_BASIC_REPLY_TO_FLAG) out.reply_to = ToString(properties.reply_to);
  if (properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
    out.message_id = ToString(properties.message_id);
  }
  out.persistent =
      (properties._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && properties.delivery_mode == 2;
  if (properties._flags & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < properties.headers.num_entries; ++i) {
      const amqp_table_entry_t& entry = properties.headers.entries[i];
      std::string key = ToString(entry.key);
      if (entry.value.kind == AMQP_FIELD_KIND_UTF8 || entry.value.kind == AMQP_FIELD_KIND_BYTES) {
        out.headers[key] = ToString(entry.value.value.bytes);
      } else if (std::optional<int64_t> number = IntegerValue(entry.value)) {
        out.headers[key] = std::to_string(*number);
        if (key == "x-delivery-count" && delivery_count != nullptr) *delivery_count = *number;
      }
    }
  }
  return out;
}

// Owns what amqp_read_message allocated.
struct MessageGuard {
  amqp_message_t* message;
  ~MessageGuard() { amqp_destroy_message(message); }
};

// A table of owned entries (rabbitmq-c's tables point into memory the caller keeps alive).
class Table {
 public:
  void AddString(const std::string& key, const std::string& value) {
    keys_.push_back(key);
    values_.push_back(value);
    amqp_table_entry_t entry;
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entries_.push_back(entry);
  }
  void AddInteger(const std::string& key, int64_t value) {
    keys_.push_back(key);
    values_.emplace_back();
    amqp_table_entry_t entry;
    entry.value.kind = AMQP_FIELD_KIND_I64;
    entry.value.value.i64 = value;
    entries_.push_back(entry);
  }
  // Valid until the next Add.
  amqp_table_t Get() {
    for (size_t i = 0; i < entries_.size(); ++i) {
      entries_[i].key = ToBytes(keys_[i]);
      if (entries_[i].value.kind == AMQP_FIELD_KIND_UTF8) {
        entries_[i].value.value.bytes = ToBytes(values_[i]);
      }
    }
    amqp_table_t table;
    table.num_entries = static_cast<int>(entries_.size());
    table.entries = entries_.empty() ? nullptr : entries_.data();
    return table;
  }

 private:
  std::deque<std::string> keys_;
  std::deque<std::string> values_;
  std::vector<amqp_table_entry_t> entries_;
};

std::string CloseReason(uint16_t code, amqp_bytes_t text) {
  std::string reason = ToString(text);
  if (reason.empty()) reason = "reply code " + std::to_string(code);
  return reason;
}

// The errno closest to an AMQP reply code, so that callers can tell a refusal from a failure.
int ErrnoOfReplyCode(uint16_t code) {
  switch (code) {
    case AMQP_ACCESS_REFUSED:
      return EACCES;
    case AMQP_NOT_FOUND:
      return ENOENT;
    case AMQP_RESOURCE_LOCKED:
      return EBUSY;
    default:
      return 0;
  }
}

}  // namespace

struct AmqpConnection::State {
  BrokerUrl url;
  std::string broker;  // RedactedBrokerUrl(url): errors name the broker, never the password
  amqp_connection_state_t connection = nullptr;
  bool logged_in = false;       // connection.close is owed at destruction
  bool broken = false;          // an Error happened: no more traffic, only the socket's close
  bool closed_channel = false;  // the broker closed the channel; the connection is fine
  bool confirms = false;
  uint64_t next_publish_tag = 1;        // the delivery tag of the next publish under confirms
  uint64_t acked_up_to = 0;             // every tag <= this is confirmed (acked or nacked)
  std::vector<uint64_t> nacked;         // tags the broker nacked (pruned as publishes settle)
  std::optional<std::string> returned;  // basic.return of the publish being waited for
  std::deque<Delivery> pending;         // deliveries read while waiting for something else

  ~State() {
    if (connection == nullptr) return;
    if (!broken && logged_in) {
      // Best effort, and short: a healthy broker answers at once, and a silent one must not hold
      // a worker that is shutting down. connection.close closes the channel with it.
      struct timeval close_timeout = ToTimeval(kCloseTimeout);
      amqp_set_rpc_timeout(connection, &close_timeout);
      amqp_connection_close(connection, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(connection);
  }

  // The Error of `step`; marks the connection unusable.
  Error Fail(const std::string& step, const std::string& detail, int err = 0) {
    broken = true;
    Error error = Failure("AMQP " + step, broker, detail);
    error.err = err;
    return error;
  }

  Error FailStatus(const std::string& step, int status) {
    int err = status == AMQP_STATUS_TIMEOUT || status == AMQP_STATUS_HEARTBEAT_TIMEOUT ? ETIMEDOUT
              : status == AMQP_STATUS_CONNECTION_CLOSED || status == AMQP_STATUS_SOCKET_CLOSED
                  ? ECONNRESET
                  : 0;
    return Fail(step, amqp_error_string2(status), err);
  }

  // The Error of an RPC's reply, answering a channel.close or connection.close from the broker.
  Error FailReply(const std::string& step, const amqp_rpc_reply_t& reply) {
    switch (reply.reply_type) {
      case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return FailStatus(step, reply.library_error);
      case AMQP_RESPONSE_SERVER_EXCEPTION:
        return FailServerMethod(step, reply.reply);
      case AMQP_RESPONSE_NONE:
        return Fail(step, "no reply (the broker closed the socket?)", ECONNRESET);
      default:
        return Fail(step, "unexpected reply type " + std::to_string(reply.reply_type));
    }
  }

  Error FailServerMethod(const std::string& step, const amqp_method_t& method) {
    if (method.id == AMQP_CHANNEL_CLOSE_METHOD) {
      auto* close = static_cast<amqp_channel_close_t*>(method.decoded);
      std::string reason =
          "the broker closed the channel: " + CloseReason(close->reply_code, close->reply_text);
      amqp_channel_close_ok_t ok = {};
      amqp_send_method(connection, kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
      // The connection itself is fine (not `broken`): it is closed politely at destruction.
      closed_channel = true;
      Error error = Failure("AMQP " + step, broker, reason);
      error.err = ErrnoOfReplyCode(close->reply_code);
      return error;
    }
    if (method.id == AMQP_CONNECTION_CLOSE_METHOD) {
      auto* close = static_cast<amqp_connection_close_t*>(method.decoded);
      std::string reason =
          "the broker closed the connection: " + CloseReason(close->reply_code, close->reply_text);
      amqp_connection_close_ok_t ok = {};
      amqp_send_method(connection, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      int err = ErrnoOfReplyCode(close->reply_code);
      return Fail(step, reason, err != 0 ? err : ECONNRESET);
    }
    return Fail(step, "unexpected method " + std::string(amqp_method_name(method.id)));
  }

  // Refuses use after an Error (the header's contract: open a new connection).
  Result<void> Usable(const std::string& step) const {
    if (broken || closed_channel) {
      return Failure("AMQP " + step, broker, "the connection failed before; open a new one");
    }
    return {};
  }

  Result<void> CheckRpc(const std::string& step) {
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(connection);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) return {};
    return FailReply(step, reply);
  }

  // One frame that is not the answer being waited for. Method frames only (rabbitmq-c reads the
  // header and body frames of a message with amqp_read_message).
  Result<void> HandleAsyncFrame(const std::string& step, const amqp_frame_t& frame) {
    if (frame.frame_type != AMQP_FRAME_METHOD) {
      return Fail(step, "unexpected frame type " + std::to_string(frame.frame_type));
    }
    const amqp_method_t& method = frame.payload.method;
    switch (method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* ack = static_cast<amqp_basic_ack_t*>(method.decoded);
        Settle(ack->delivery_tag, ack->multiple != 0, /*nack=*/false);
        return {};
      }
      case AMQP_BASIC_NACK_METHOD: {
        auto* nack = static_cast<amqp_basic_nack_t*>(method.decoded);
        Settle(nack->delivery_tag, nack->multiple != 0, /*nack=*/true);
        return {};
      }
      case AMQP_BASIC_RETURN_METHOD: {
        auto* returned_method = static_cast<amqp_basic_return_t*>(method.decoded);
        std::string reason = CloseReason(returned_method->reply_code, returned_method->reply_text) +
                             " (exchange \"" + ToString(returned_method->exchange) +
                             "\", routing key \"" + ToString(returned_method->routing_key) + "\")";
        // The returned message's header and body frames follow.
        amqp_message_t message;
        amqp_rpc_reply_t reply = amqp_read_message(connection, frame.channel, &message, 0);
        if (reply.reply_type != AMQP_RESPONSE_NORMAL) return FailReply(step, reply);
        MessageGuard guard{&message};
        returned = std::move(reason);
        return {};
      }
      case AMQP_BASIC_DELIVER_METHOD: {
        auto* deliver = static_cast<amqp_basic_deliver_t*>(method.decoded);
        Delivery delivery;
        delivery.delivery_tag = deliver->delivery_tag;
        delivery.consumer_tag = ToString(deliver->consumer_tag);
        delivery.exchange = ToString(deliver->exchange);
        delivery.routing_key = ToString(deliver->routing_key);
        delivery.redelivered = deliver->redelivered != 0;
        amqp_message_t message;
        amqp_rpc_reply_t reply = amqp_read_message(connection, frame.channel, &message, 0);
        if (reply.reply_type != AMQP_RESPONSE_NORMAL) return FailReply(step, reply);
        MessageGuard guard{&message};
        delivery.message = ToMessage(message, &delivery.delivery_count);
        pending.push_back(std::move(delivery));
        return {};
      }
      case AMQP_BASIC_CANCEL_METHOD: {
        // consumer_cancel_notify: the queue was deleted (or its leader lost). The consumer is
        // gone; the caller reconnects and declares again.
        auto* cancel = static_cast<amqp_basic_cancel_t*>(method.decoded);
        return Fail(step, "the broker cancelled consumer " + ToString(cancel->consumer_tag) +
                              " (its queue was deleted?)");
      }
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD:
        return FailServerMethod(step, method);
      case AMQP_CONNECTION_BLOCKED_METHOD:
      case AMQP_CONNECTION_UNBLOCKED_METHOD:
        // A resource alarm: publishes wait (their confirms come late); nothing to do here.
        return {};
      default:
        return Fail(step, "unexpected method " + std::string(amqp_method_name(method.id)));
    }
  }

  // One publish is in flight at a time, so a confirm of its tag or a later one (multiple, or out
  // of order) settles it.
  void Settle(uint64_t tag, bool /*multiple*/, bool nack) {
    if (nack) nacked.push_back(tag);
    acked_up_to = std::max(acked_up_to, tag);
  }

  // Waits up to `timeout` for one frame and handles it; false on timeout. rabbitmq-c sends our
  // heartbeats meanwhile and fails when the broker's heartbeats stop.
  Result<bool> WaitOneFrame(const std::string& step, std::chrono::milliseconds timeout) {
    amqp_frame_t frame;
    struct timeval tv = ToTimeval(timeout);
    int status = amqp_simple_wait_frame_noblock(connection, &frame, &tv);
    if (status == AMQP_STATUS_TIMEOUT) return false;
    if (status != AMQP_STATUS_OK) return FailStatus(step, status);
    PV_TRY(HandleAsyncFrame(step, frame));
    return true;
  }
};

AmqpConnection::AmqpConnection(std::unique_ptr<State> state) : state_(std::move(state)) {}
AmqpConnection::~AmqpConnection() = default;

Result<std::unique_ptr<AmqpConnection>> AmqpConnection::Open(const BrokerUrl& url,
                                                             const ConnectOptions& options) {
  auto state = std::make_unique<State>();
  state->url = url;
  state->broker = RedactedBrokerUrl(url);
  state->connection = amqp_new_connection();
  if (state->connection == nullptr) return state->Fail("connect", "out of memory", ENOMEM);

  amqp_socket_t* socket = nullptr;
  if (url.tls) {
    socket = amqp_ssl_socket_new(state->connection);
    if (socket == nullptr) return state->Fail("TLS setup", "amqp_ssl_socket_new failed");
    const TlsOptions& tls = options.tls;
    if (!tls.ca_file.empty()) {
      if (amqp_ssl_socket_set_cacert(socket, tls.ca_file.c_str()) != AMQP_STATUS_OK) {
        return state->Fail("TLS setup", "cannot load the CA bundle " + tls.ca_file);
      }
    } else {
      auto* context = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
      if (SSL_CTX_set_default_verify_paths(context) != 1) {
        return state->Fail("TLS setup", "cannot load the system's CA certificates");
      }
    }
    if (!tls.key_file.empty() && tls.cert_file.empty()) {
      return state->Fail("TLS setup", "key_file " + tls.key_file + " without a cert_file");
    }
    if (!tls.cert_file.empty()) {
      // key_file "" = the key is in cert_file too (one PEM file: worker.cert_file).
      const std::string& key = tls.key_file.empty() ? tls.cert_file : tls.key_file;
      if (amqp_ssl_socket_set_key(socket, tls.cert_file.c_str(), key.c_str()) != AMQP_STATUS_OK) {
        return state->Fail("TLS setup", "cannot load the client certificate " + tls.cert_file +
                                            " with its key " + key);
      }
    }
    amqp_ssl_socket_set_verify_peer(socket, tls.verify_peer ? 1 : 0);
    amqp_ssl_socket_set_verify_hostname(socket, tls.verify_hostname ? 1 : 0);
  } else {
    socket = amqp_tcp_socket_new(state->connection);
    if (socket == nullptr) return state->Fail("connect", "amqp_tcp_socket_new failed");
  }

  struct timeval connect_timeout = ToTimeval(options.connect_timeout);
  int status = amqp_socket_open_noblock(socket, url.host.c_str(), url.port, &connect_timeout);
  if (status != AMQP_STATUS_OK) {
    int err = status == AMQP_STATUS_SOCKET_ERROR ? ECONNREFUSED
              : status == AMQP_STATUS_TIMEOUT    ? ETIMEDOUT
                                                 : 0;
    Error error = state->FailStatus(url.tls ? "connect (TLS)" : "connect", status);
    if (err != 0) error.err = err;
    return error;
  }

  amqp_set_handshake_timeout(state->connection, &connect_timeout);
  struct timeval rpc_timeout = ToTimeval(std::max<std::chrono::milliseconds>(
      options.connect_timeout, std::chrono::milliseconds(kMinRpcTimeout)));
  amqp_set_rpc_timeout(state->connection, &rpc_timeout);

  Table properties;
  properties.AddString("product", "packvisor");
  if (!options.connection_name.empty()) {
    properties.AddString("connection_name", options.connection_name);
  }
  amqp_table_t client_properties = properties.Get();
  amqp_rpc_reply_t login =
      amqp_login_with_properties(state->connection, url.vhost.c_str(), kChannelMax, kFrameMax,
                                 static_cast<int>(options.heartbeat.count()), &client_properties,
                                 AMQP_SASL_METHOD_PLAIN, url.user.c_str(), url.password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    if (login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        login.library_error == AMQP_STATUS_CONNECTION_CLOSED) {
      // A broker without authentication_failure_close drops the socket on a refused login.
      return state->Fail("login", "the broker closed the connection (wrong user or password?)",
                         EACCES);
    }
    return state->FailReply("login", login);
  }
  state->logged_in = true;

  amqp_channel_open(state->connection, kChannel);
  PV_TRY(state->CheckRpc("channel.open"));
  return std::unique_ptr<AmqpConnection>(new AmqpConnection(std::move(state)));
}

Result<void> AmqpConnection::DeclareExchange(const std::string& name, const std::string& type) {
  const std::string step = "exchange.declare " + name;
  PV_TRY(state_->Usable(step));
  amqp_exchange_declare(state_->connection, kChannel, ToBytes(name), ToBytes(type),
                        /*passive=*/0, /*durable=*/1, /*auto_delete=*/0, /*internal=*/0,
                        amqp_empty_table);
  return state_->CheckRpc(step);
}

Result<std::string> AmqpConnection::DeclareQueue(const std::string& name,
                                                 const QueueOptions& options) {
  const std::string step = "queue.declare " + (name.empty() ? "(server-named)" : name);
  PV_TRY(state_->Usable(step));
  Table arguments;
  if (options.quorum) arguments.AddString("x-queue-type", "quorum");
  if (options.delivery_limit) arguments.AddInteger("x-delivery-limit", *options.delivery_limit);
  if (!options.dead_letter_exchange.empty()) {
    arguments.AddString("x-dead-letter-exchange", options.dead_letter_exchange);
  }
  amqp_queue_declare_ok_t* ok = amqp_queue_declare(
      state_->connection, kChannel, ToBytes(name), /*passive=*/0, options.durable ? 1 : 0,
      options.exclusive ? 1 : 0, options.auto_delete ? 1 : 0, arguments.Get());
  if (ok == nullptr) {
    PV_TRY(state_->CheckRpc(step));
    return state_->Fail(step, "no queue.declare-ok");
  }
  return ToString(ok->queue);
}

Result<void> AmqpConnection::BindQueue(const std::string& queue, const std::string& exchange,
                                       const std::string& routing_key) {
  const std::string step = "queue.bind " + queue + " to " + exchange;
  PV_TRY(state_->Usable(step));
  amqp_queue_bind(state_->connection, kChannel, ToBytes(queue), ToBytes(exchange),
                  ToBytes(routing_key), amqp_empty_table);
  return state_->CheckRpc(step);
}

Result<void> AmqpConnection::SetPrefetch(uint16_t count) {
  PV_TRY(state_->Usable("basic.qos"));
  amqp_basic_qos(state_->connection, kChannel, 0, count, /*global=*/0);
  return state_->CheckRpc("basic.qos");
}

Result<std::string> AmqpConnection::Consume(const std::string& queue) {
  const std::string step = "basic.consume " + queue;
  PV_TRY(state_->Usable(step));
  amqp_basic_consume_ok_t* ok =
      amqp_basic_consume(state_->connection, kChannel, ToBytes(queue), amqp_empty_bytes,
                         /*no_local=*/0, /*no_ack=*/0, /*exclusive=*/0, amqp_empty_table);
  if (ok == nullptr) {
    PV_TRY(state_->CheckRpc(step));
    return state_->Fail(step, "no basic.consume-ok");
  }
  return ToString(ok->consumer_tag);
}

Result<std::optional<Delivery>> AmqpConnection::NextDelivery(std::chrono::milliseconds timeout) {
  const std::string step = "wait for a delivery";
  PV_TRY(state_->Usable(step));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (!state_->pending.empty()) {
      Delivery delivery = std::move(state_->pending.front());
      state_->pending.pop_front();
      return std::optional<Delivery>(std::move(delivery));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    amqp_maybe_release_buffers(state_->connection);
    amqp_envelope_t envelope;
    struct timeval tv = ToTimeval(left);
    amqp_rpc_reply_t reply = amqp_consume_message(state_->connection, &envelope, &tv, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      Delivery delivery;
      delivery.delivery_tag = envelope.delivery_tag;
      delivery.consumer_tag = ToString(envelope.consumer_tag);
      delivery.exchange = ToString(envelope.exchange);
      delivery.routing_key = ToString(envelope.routing_key);
      delivery.redelivered = envelope.redelivered != 0;
      delivery.message = ToMessage(envelope.message, &delivery.delivery_count);
      amqp_destroy_envelope(&envelope);
      return std::optional<Delivery>(std::move(delivery));
    }
    if (reply.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION) return state_->FailReply(step, reply);
    if (reply.library_error == AMQP_STATUS_TIMEOUT) return std::optional<Delivery>();
    if (reply.library_error != AMQP_STATUS_UNEXPECTED_STATE) {
      return state_->FailStatus(step, reply.library_error);
    }
    // Not a basic.deliver: it was put back; read and handle it, then wait on.
    amqp_frame_t frame;
    int status = amqp_simple_wait_frame(state_->connection, &frame);
    if (status != AMQP_STATUS_OK) return state_->FailStatus(step, status);
    PV_TRY(state_->HandleAsyncFrame(step, frame));
  }
}

Result<std::optional<Delivery>> AmqpConnection::Get(const std::string& queue, bool ack) {
  PV_TRY(state_->Usable("basic.get"));
  amqp_rpc_reply_t reply =
      amqp_basic_get(state_->connection, 1, amqp_cstring_bytes(queue.c_str()), /*no_ack=*/0);
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) return state_->FailReply("basic.get", reply);
  if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::optional<Delivery>();
  const auto* get_ok = static_cast<const amqp_basic_get_ok_t*>(reply.reply.decoded);
  Delivery delivery;
  delivery.delivery_tag = get_ok->delivery_tag;
  delivery.redelivered = get_ok->redelivered != 0;
  delivery.exchange = ToString(get_ok->exchange);
  delivery.routing_key = ToString(get_ok->routing_key);
  amqp_message_t message;
  amqp_rpc_reply_t read = amqp_read_message(state_->connection, 1, &message, 0);
  if (read.reply_type != AMQP_RESPONSE_NORMAL) return state_->FailReply("read message", read);
  MessageGuard guard{&message};
  delivery.message = ToMessage(message, &delivery.delivery_count);
  if (ack) PV_TRY(Ack(delivery.delivery_tag));
  return std::optional<Delivery>(std::move(delivery));
}

Result<void> AmqpConnection::Ack(uint64_t delivery_tag) {
  PV_TRY(state_->Usable("basic.ack"));
  int status = amqp_basic_ack(state_->connection, kChannel, delivery_tag, /*multiple=*/0);
  if (status != AMQP_STATUS_OK) return state_->FailStatus("basic.ack", status);
  return {};
}

Result<void> AmqpConnection::Reject(uint64_t delivery_tag, bool requeue) {
  PV_TRY(state_->Usable("basic.reject"));
  int status = amqp_basic_reject(state_->connection, kChannel, delivery_tag, requeue ? 1 : 0);
  if (status != AMQP_STATUS_OK) return state_->FailStatus("basic.reject", status);
  return {};
}

Result<void> AmqpConnection::EnableConfirms() {
  PV_TRY(state_->Usable("confirm.select"));
  if (state_->confirms) return {};
  amqp_confirm_select(state_->connection, kChannel);
  PV_TRY(state_->CheckRpc("confirm.select"));
  state_->confirms = true;
  return {};
}

Result<void> AmqpConnection::Publish(const std::string& exchange, const std::string& routing_key,
                                     const Message& message, bool mandatory) {
  const std::string step =
      "publish to \"" + exchange + "\" with routing key \"" + routing_key + "\"";
  PV_TRY(state_->Usable(step));
  // Frees what earlier frames (confirms, returns) took from the connection's pool: everything
  // kept is copied out.
  amqp_maybe_release_buffers(state_->connection);

  amqp_basic_properties_t properties = {};
  properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  properties.delivery_mode = message.persistent ? 2 : 1;
  if (!message.content_type.empty()) {
    properties._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    properties.content_type = ToBytes(message.content_type);
  }
  if (!message.correlation_id.empty()) {
    properties._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
    properties.correlation_id = ToBytes(message.correlation_id);
  }
  if (!message.reply_to.empty()) {
    properties._flags |= AMQP_BASIC_REPLY_TO_FLAG;
    properties.reply_to = ToBytes(message.reply_to);
  }
  if (!message.message_id.empty()) {
    properties._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    properties.message_id = ToBytes(message.message_id);
  }
  Table headers;
  for (const auto& [key, value] : message.headers) headers.AddString(key, value);
  if (!message.headers.empty()) {
    properties._flags |= AMQP_BASIC_HEADERS_FLAG;
    properties.headers = headers.Get();
  }

  state_->returned.reset();
  int status =
      amqp_basic_publish(state_->connection, kChannel, ToBytes(exchange), ToBytes(routing_key),
                         mandatory ? 1 : 0, /*immediate=*/0, &properties, ToBytes(message.body));
  if (status != AMQP_STATUS_OK) return state_->FailStatus(step, status);

  if (state_->confirms) {
    // The broker sends basic.return (when unroutable and mandatory) before the basic.ack.
    const uint64_t tag = state_->next_publish_tag++;
    const auto deadline = std::chrono::steady_clock::now() + kConfirmTimeout;
    while (state_->acked_up_to < tag) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      Result<bool> got = state_->WaitOneFrame(step, std::max(left, std::chrono::milliseconds(0)));
      if (!got.ok()) return got.error();
      if (!*got) {
        return state_->Fail(
            step,
            "no confirm from the broker within " + std::to_string(kConfirmTimeout.count()) + " s",
            ETIMEDOUT);
      }
    }
    // One publish is in flight at a time: a nack of its tag or a later one (multiple) is ours.
    auto& nacked = state_->nacked;
    bool was_nacked =
        std::any_of(nacked.begin(), nacked.end(), [&](uint64_t n) { return n >= tag; });
    nacked.clear();
    if (was_nacked) return Failure("AMQP " + step, state_->broker, "the broker nacked it");
  } else if (mandatory) {
    // Without confirms nothing announces a routed message. A synchronous method after the
    // publish is answered after it was routed: a basic.return comes first if it was not.
    amqp_exchange_declare_t declare = {};
    declare.exchange = amqp_cstring_bytes("amq.direct");
    declare.type = amqp_cstring_bytes("direct");
    declare.passive = 1;
    declare.arguments = amqp_empty_table;
    status = amqp_send_method(state_->connection, kChannel, AMQP_EXCHANGE_DECLARE_METHOD, &declare);
    if (status != AMQP_STATUS_OK) return state_->FailStatus(step, status);
    while (true) {
      amqp_frame_t frame;
      struct timeval tv = ToTimeval(std::chrono::milliseconds(kMinRpcTimeout));
      status = amqp_simple_wait_frame_noblock(state_->connection, &frame, &tv);
      if (status != AMQP_STATUS_OK) return state_->FailStatus(step, status);
      if (frame.frame_type == AMQP_FRAME_METHOD &&
          frame.payload.method.id == AMQP_EXCHANGE_DECLARE_OK_METHOD) {
        break;
      }
      PV_TRY(state_->HandleAsyncFrame(step, frame));
    }
  }
  if (mandatory && state_->returned) {
    std::string reason = std::move(*state_->returned);
    state_->returned.reset();
    Error error = Failure("AMQP " + step, state_->broker, "unroutable: " + reason);
    error.err = EHOSTUNREACH;
    return error;
  }
  return {};
}

Result<void> AmqpConnection::KeepAlive() {
  PV_TRY(state_->Usable("keep-alive"));
  amqp_maybe_release_buffers(state_->connection);
  // Reads whatever arrived (a connection.close, a heartbeat) without waiting; rabbitmq-c sends
  // our heartbeat when one is due while it waits for frames.
  while (true) {
    Result<bool> got = state_->WaitOneFrame("keep-alive", std::chrono::milliseconds(0));
    if (!got.ok()) return got.error();
    if (!*got) return {};
  }
}

}  // namespace packvisor::queue
