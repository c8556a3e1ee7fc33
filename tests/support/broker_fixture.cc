#include "tests/support/broker_fixture.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "sandbox/os/unique_fd.h"

namespace packvisor::testing {
namespace {

constexpr int kVhosts = 64;  // t1..t64, created by rabbitmq-broker.sh
constexpr char kRabbitmqctl[] = "/usr/lib/rabbitmq/bin/rabbitmqctl";

std::string Quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Runs `/bin/sh -c command` with stderr joined to stdout.
ToolResult RunCaptured(const std::string& command) {
  ToolResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "re");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + std::string(strerror(errno)));
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

void RunBrokerScript(const std::string& action, const std::string& dir,
                     const std::string& option = "") {
  ToolResult result = RunCaptured(Quote(BrokerScript()) + " " + action + " " + Quote(dir) +
                                  (option.empty() ? "" : " " + option));
  if (result.exit_code != 0) {
    throw std::runtime_error("rabbitmq-broker.sh " + action + " " + dir + " failed (" +
                             std::to_string(result.exit_code) + "):\n" + result.output);
  }
}

std::string MakeBrokerDir() {
  std::string pattern = "/tmp/packvisor-test-broker-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp: " + std::string(strerror(errno)));
  }
  return pattern;
}

std::string BytesToString(amqp_bytes_t bytes) {
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
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

// A closed connection on destruction.
struct RawConnection {
  amqp_connection_state_t state = amqp_new_connection();
  bool channel_open = false;
  ~RawConnection() {
    if (channel_open) amqp_channel_close(state, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(state, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(state);
  }
};

void CheckReply(amqp_rpc_reply_t reply, const std::string& step) {
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return;
  std::string detail;
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    detail = amqp_error_string2(reply.library_error);
  } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    detail = BytesToString(static_cast<amqp_channel_close_t*>(reply.reply.decoded)->reply_text);
  } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    detail = BytesToString(static_cast<amqp_connection_close_t*>(reply.reply.decoded)->reply_text);
  } else {
    detail = "reply type " + std::to_string(reply.reply_type);
  }
  throw std::runtime_error("GetMessage: " + step + ": " + detail);
}

// The private broker of a process run without ctest's fixture (like the fixture's, with TLS);
// stopped at exit.
struct ProcessBroker {
  PrivateBroker broker{PrivateBroker::Options{.tls = true}};
};

}  // namespace

std::string BrokerScript() {
  return std::string(PACKVISOR_SOURCE_DIR) + "/tests/support/rabbitmq-broker.sh";
}

const std::string& SharedBrokerDir() {
  static const std::string dir = []() -> std::string {
    const char* from_ctest = ::getenv("PACKVISOR_TEST_BROKER_DIR");
    if (from_ctest != nullptr && *from_ctest != '\0') return from_ctest;
    static ProcessBroker process_broker;
    return process_broker.broker.dir();
  }();
  return dir;
}

std::string SharedBroker() { return ReadTrimmed(SharedBrokerDir() + "/url"); }

std::string SharedTlsBroker() { return ReadTrimmed(SharedBrokerDir() + "/tls_url"); }

std::string SharedBrokerTlsFile(const std::string& name) {
  return SharedBrokerDir() + "/tls/" + name;
}

std::string TakeVhost() {
  const std::string& dir = SharedBrokerDir();
  unique_fd lock(::open((dir + "/vhost-counter.lock").c_str(),
                        O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock) throw std::runtime_error("open " + dir + "/vhost-counter.lock: " + strerror(errno));
  if (::flock(lock.get(), LOCK_EX) != 0) {
    throw std::runtime_error("flock " + dir + "/vhost-counter.lock: " + strerror(errno));
  }
  // The lock is released when `lock` closes.
  const std::string counter_path = dir + "/vhost-counter";
  int taken = 0;
  {
    std::ifstream in(counter_path);
    if (in) in >> taken;
  }
  if (taken >= kVhosts) {
    throw std::runtime_error("the test broker in " + dir + " has no vhost left: all " +
                             std::to_string(kVhosts) +
                             " are taken (raise VHOSTS in rabbitmq-broker.sh and kVhosts)");
  }
  ++taken;
  {
    std::ofstream out(counter_path, std::ios::trunc);
    out << taken << "\n";
    if (!out.flush()) throw std::runtime_error("cannot write " + counter_path);
  }
  return "t" + std::to_string(taken);
}

std::string TakeVhostUrl() { return SharedBroker() + "/" + TakeVhost(); }

std::string TakeTlsVhostUrl() { return SharedTlsBroker() + "/" + TakeVhost(); }

PrivateBroker::PrivateBroker(Options options) : options_(options), dir_(MakeBrokerDir()) {
  try {
    Start();
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    throw;
  }
}

PrivateBroker::~PrivateBroker() {
  try {
    RunBrokerScript("stop", dir_);
  } catch (const std::exception& e) {
    fprintf(stderr, "PrivateBroker: %s\n", e.what());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void PrivateBroker::Start() {
  if (running_) return;
  try {
    RunBrokerScript("start", dir_, options_.tls ? "--tls" : "");
  } catch (...) {
    // The script stops what it started on failure; stop again in case it was killed half-way.
    try {
      RunBrokerScript("stop", dir_);
    } catch (...) {
    }
    throw;
  }
  running_ = true;
  url_ = ReadTrimmed(dir_ + "/url");
  if (options_.tls) tls_url_ = ReadTrimmed(dir_ + "/tls_url");
}

void PrivateBroker::Stop() {
  if (!running_) return;
  running_ = false;
  RunBrokerScript("stop", dir_);
}

ToolResult Rabbitmqctl(const std::string& broker_dir, const std::vector<std::string>& args) {
  std::string command = "set -a && . " + Quote(broker_dir + "/ctl.env") + " && set +a && exec " +
                        std::string(kRabbitmqctl);
  for (const std::string& arg : args) command += " " + Quote(arg);
  return RunCaptured(command);
}

std::optional<int64_t> QueueMessageCount(const std::string& broker_dir, const std::string& vhost,
                                         const std::string& queue) {
  ToolResult result = Rabbitmqctl(broker_dir, {"list_queues", "-q", "--no-table-headers", "-p",
                                               vhost, "name", "messages_ready"});
  if (result.exit_code != 0) {
    throw std::runtime_error("rabbitmqctl list_queues -p " + vhost + " failed:\n" + result.output);
  }
  std::istringstream lines(result.output);
  std::string line;
  while (std::getline(lines, line)) {
    size_t tab = line.rfind('\t');
    if (tab == std::string::npos) continue;
    if (line.substr(0, tab) == queue) return std::stoll(line.substr(tab + 1));
  }
  return std::nullopt;
}

queue::BrokerUrl ParseFixtureUrl(const std::string& url) {
  Result<queue::BrokerUrl> parsed = queue::ParseBrokerUrl(url);
  if (!parsed.ok()) throw std::runtime_error(parsed.error().message());
  return *parsed;
}

std::optional<queue::Delivery> GetMessage(const std::string& url, const std::string& queue_name,
                                          bool ack) {
  queue::BrokerUrl broker = ParseFixtureUrl(url);
  RawConnection connection;
  amqp_socket_t* socket = amqp_tcp_socket_new(connection.state);
  if (socket == nullptr) throw std::runtime_error("GetMessage: amqp_tcp_socket_new failed");
  int status = amqp_socket_open(socket, broker.host.c_str(), broker.port);
  if (status != AMQP_STATUS_OK) {
    throw std::runtime_error("GetMessage: connect to " + broker.host + ":" +
                             std::to_string(broker.port) + ": " + amqp_error_string2(status));
  }
  CheckReply(amqp_login(connection.state, broker.vhost.c_str(), 0, 131072, 0,
                        AMQP_SASL_METHOD_PLAIN, broker.user.c_str(), broker.password.c_str()),
             "login");
  amqp_channel_open(connection.state, 1);
  CheckReply(amqp_get_rpc_reply(connection.state), "channel.open");
  connection.channel_open = true;

  amqp_rpc_reply_t reply =
      amqp_basic_get(connection.state, 1, amqp_cstring_bytes(queue_name.c_str()), /*no_ack=*/0);
  CheckReply(reply, "basic.get " + queue_name);
  if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::nullopt;
  auto* get_ok = static_cast<amqp_basic_get_ok_t*>(reply.reply.decoded);
  queue::Delivery delivery;
  delivery.delivery_tag = get_ok->delivery_tag;
  delivery.redelivered = get_ok->redelivered != 0;
  delivery.exchange = BytesToString(get_ok->exchange);
  delivery.routing_key = BytesToString(get_ok->routing_key);

  amqp_message_t message;
  CheckReply(amqp_read_message(connection.state, 1, &message, 0), "read message");
  std::unique_ptr<amqp_message_t, void (*)(amqp_message_t*)> message_owner(
      &message, [](amqp_message_t* m) { amqp_destroy_message(m); });
  const amqp_basic_properties_t& properties = message.properties;
  queue::Message& out = delivery.message;
  out.body = BytesToString(message.body);
  out.content_type = properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG
                         ? BytesToString(properties.content_type)
                         : "";
  if (properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
    out.correlation_id = BytesToString(properties.correlation_id);
  }
  if (properties._flags & AMQP_BASIC_REPLY_TO_FLAG)
    out.reply_to = BytesToString(properties.reply_to);
  if (properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
    out.message_id = BytesToString(properties.message_id);
  }
  out.persistent =
      (properties._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && properties.delivery_mode == 2;
  if (properties._flags & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < properties.headers.num_entries; ++i) {
      const amqp_table_entry_t& entry = properties.headers.entries[i];
      std::string key = BytesToString(entry.key);
      if (entry.value.kind == AMQP_FIELD_KIND_UTF8 || entry.value.kind == AMQP_FIELD_KIND_BYTES) {
        out.headers[key] = BytesToString(entry.value.value.bytes);
      } else if (std::optional<int64_t> number = IntegerValue(entry.value)) {
        out.headers[key] = std::to_string(*number);
        if (key == "x-delivery-count") delivery.delivery_count = *number;
      }
    }
  }
  if (ack) {
    int ack_status = amqp_basic_ack(connection.state, 1, delivery.delivery_tag, 0);
    if (ack_status != AMQP_STATUS_OK) {
      throw std::runtime_error(std::string("GetMessage: basic.ack: ") +
                               amqp_error_string2(ack_status));
    }
  }
  return delivery;
}

}  // namespace packvisor::testing
