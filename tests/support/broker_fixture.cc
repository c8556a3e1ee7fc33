#include "tests/support/broker_fixture.h"

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
  auto connection = queue::AmqpConnection::Open(ParseFixtureUrl(url), {});
  if (!connection.ok()) throw std::runtime_error("GetMessage: " + connection.error().message());
  auto got = (*connection)->Get(queue_name, ack);
  if (!got.ok()) throw std::runtime_error("GetMessage: " + got.error().message());
  return std::move(*got);
}

}  // namespace packvisor::testing
