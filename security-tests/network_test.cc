// Catalog group G (network), through the real `packvisor exec` / `packvisor run`: host loopback
// and host addresses, the host's abstract unix sockets, sockets reachable through bound
// directories, and who may have the host network at all. The positive controls run the same
// probes with `--network host` and show they then reach the host, so the checks can fail.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "security-tests/suite_support.h"
#include "supervisor/config/config.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using testing::CommandResult;
using testing::RunPackvisor;
using testing::TempDir;

// Helpers shared with the other suites of groups E-H: security-tests/suite_support.h.
using namespace security_suite;

// A non-blocking listening socket on the host; counts the connections it was offered.
class Listener {
 public:
  // family AF_INET or AF_INET6 (address = a literal), or AF_UNIX (address = an abstract name).
  Listener(int family, const std::string& address) {
    fd_ = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = -1;
    if (family == AF_INET) {
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
      rc = bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
      socklen_t len = sizeof(sa);
      if (rc == 0) getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
      port_ = ntohs(sa.sin_port);
    } else if (family == AF_INET6) {
      sockaddr_in6 sa{};
      sa.sin6_family = AF_INET6;
      inet_pton(AF_INET6, address.c_str(), &sa.sin6_addr);
      rc = bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
      socklen_t len = sizeof(sa);
      if (rc == 0) getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
      port_ = ntohs(sa.sin6_port);
    } else {
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      std::memcpy(sa.sun_path + 1, address.data(), address.size());
      rc = bind(fd_, reinterpret_cast<sockaddr*>(&sa),
                static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + address.size()));
    }
    if (rc != 0 || listen(fd_, 16) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~Listener() {
    if (fd_ >= 0) close(fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  bool ok() const { return fd_ >= 0; }
  int port() const { return port_; }
  // Accepts (and closes) everything queued; returns how many connections there were.
  int Accepted() {
    for (;;) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) break;
      close(c);
      ++accepted_;
    }
    return accepted_;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  int accepted_ = 0;
};

// The first non-loopback IPv4 address of the host, if any.
std::optional<std::string> HostIpv4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    auto* sa = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    inet_ntop(AF_INET, &sa->sin_addr, text, sizeof(text));
    if (std::string(text).rfind("127.", 0) != 0) found = text;
  }
  freeifaddrs(list);
  return found;
}

class NetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "security tests need root (packvisor sets up namespaces)";
    pack_.Write("g_connect.py", Script("g_connect.py"));
  }

  nlohmann::json Connect(const std::string& network, const std::vector<std::string>& targets,
                         CommandResult* raw) {
    std::vector<std::string> args = {
        "exec",   "--pack-dir", pack_.path(),       "--network",         network, "--timeout", "30",
        "--json", "--",         "/usr/bin/python3", "/pack/g_connect.py"};
    args.insert(args.end(), targets.begin(), targets.end());
    *raw = RunPackvisor(args);
    return ParseResult(*raw);
  }

  TempDir pack_;
};

// --- G59: host loopback and host addresses ------------------------------------------------------

TEST_F(NetworkTest, G59_host_loopback_and_host_address_unreachable_with_network_none) {
  HostGuard guard;
  Listener v4(AF_INET, "0.0.0.0");  // host loopback and every host address
  ASSERT_TRUE(v4.ok());
  Listener v6(AF_INET6, "::1");
  std::vector<std::string> targets = {"tcp4:127.0.0.1:" + std::to_string(v4.port()),
                                      "tcp4:169.254.169.254:80"};
  std::optional<std::string> host_ip = HostIpv4();
  if (host_ip) targets.push_back("tcp4:" + *host_ip + ":" + std::to_string(v4.port()));
  if (v6.ok()) targets.push_back("tcp6:::1:" + std::to_string(v6.port()));

  CommandResult raw;
  nlohmann::json result = Connect("none", targets, &raw);
  std::string out = Field(result, "stdout");
  ASSERT_NE(out.find("reached\n"), std::string::npos) << result.dump();
  for (const std::string& target : targets) {
    EXPECT_NE(out.find(target + " errno "), std::string::npos)
        << target << " was not refused: " << out;
    EXPECT_EQ(out.find(target + " connected"), std::string::npos) << target << " connected";
  }
  EXPECT_EQ(v4.Accepted(), 0) << "the host listener got a connection from the sandbox";
  if (v6.ok()) {
    EXPECT_EQ(v6.Accepted(), 0);
  }
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

TEST_F(NetworkTest, G59_positive_control_network_host_reaches_host_loopback) {
  Listener v4(AF_INET, "127.0.0.1");
  ASSERT_TRUE(v4.ok());
  const std::string target = "tcp4:127.0.0.1:" + std::to_string(v4.port());
  CommandResult raw;
  nlohmann::json result = Connect("host", {target}, &raw);
  EXPECT_NE(Field(result, "stdout").find(target + " connected"), std::string::npos)
      << result.dump();
  EXPECT_EQ(v4.Accepted(), 1);
}

// --- G60: abstract unix sockets of the host ------------------------------------------------------

// True when the host network namespace's unix socket table lists the abstract `name`.
bool HostListsAbstract(const std::string& name) {
  std::string table = testing::ReadFileOrEmpty("/proc/self/net/unix");
  return table.find(" @" + name + "\n") != std::string::npos;
}

TEST_F(NetworkTest, G60_host_abstract_socket_unreachable_and_sandbox_ones_invisible) {
  HostGuard guard;
  const std::string host_name = testing::UniqueMarker("packvisor-test");
  const std::string own_name = testing::UniqueMarker("packvisor-mine");
  Listener host(AF_UNIX, host_name);
  ASSERT_TRUE(host.ok());
  ASSERT_TRUE(HostListsAbstract(host_name)) << "cannot see our own abstract socket";
  CommandResult raw;
  std::atomic<bool> done{false};
  bool own_seen_on_host = false;
  std::thread watcher([&] {
    while (!done) {
      if (HostListsAbstract(own_name)) own_seen_on_host = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  nlohmann::json result =
      Connect("none", {"abstract:" + host_name, "bind-abstract:" + own_name}, &raw);
  done = true;
  watcher.join();
  std::string out = Field(result, "stdout");
  EXPECT_NE(out.find("abstract:" + host_name + " errno " + std::to_string(ECONNREFUSED)),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("bind-abstract:" + own_name + " bound"), std::string::npos)
      << "the sandbox could not bind its own abstract socket: " << out;
  EXPECT_FALSE(own_seen_on_host) << "the sandbox's abstract socket appeared on the host";
  EXPECT_EQ(host.Accepted(), 0) << "the host's abstract socket got a connection";
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

TEST_F(NetworkTest, G60_positive_control_network_host_reaches_host_abstract_socket) {
  const std::string host_name = testing::UniqueMarker("packvisor-test");
  const std::string own_name = testing::UniqueMarker("packvisor-mine");
  Listener host(AF_UNIX, host_name);
  ASSERT_TRUE(host.ok());
  std::atomic<bool> done{false};
  bool own_seen_on_host = false;
  std::thread watcher([&] {
    while (!done) {
      if (HostListsAbstract(own_name)) own_seen_on_host = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  CommandResult raw;
  nlohmann::json result =
      Connect("host", {"abstract:" + host_name, "bind-abstract:" + own_name}, &raw);
  done = true;
  watcher.join();
  EXPECT_NE(Field(result, "stdout").find("abstract:" + host_name + " connected"), std::string::npos)
      << result.dump();
  EXPECT_EQ(host.Accepted(), 1);
  EXPECT_TRUE(own_seen_on_host) << "the watcher would not have seen a leaked abstract socket";
}

// --- G61: pathname sockets through bound directories
// ----------------------------------------------

// packvisor binds only the pack (ro), the env, the runtime trees and fresh tmpfs/proc/dev; it
// places no socket or FIFO of its own in the sandbox. (A socket file an operator leaves in a pack
// or an extra_ro_binds tree would be connectable: see docs/threat-model.md.)
TEST_F(NetworkTest, G61_no_sockets_or_fifos_visible_in_the_sandbox) {
  HostGuard guard;
  TempDir env;
  pack_.Write("g61_socket_walk.py", Script("g61_socket_walk.py"));
  CommandResult raw =
      RunPackvisor({"exec", "--pack-dir", pack_.path(), "--env-dir", env.path(), "--timeout", "60",
                    "--json", "--", "/usr/bin/python3", "/pack/g61_socket_walk.py"});
  nlohmann::json result = ParseResult(raw);
  std::string out = Field(result, "stdout");
  size_t walked = 0;
  for (const std::string& line : testing::Lines(out)) {
    if (line.rfind("walked ", 0) == 0) walked = std::stoul(line.substr(7));
  }
  EXPECT_GT(walked, 1000u) << "the walk did not cover the sandbox: " << out.substr(0, 2000);
  EXPECT_EQ(out.find("special "), std::string::npos) << out.substr(0, 4000);
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- G62: who gets the host network
// ---------------------------------------------------------------

class HostNetworkGrantTest : public NetworkTest {
 protected:
  void SetUp() override {
    NetworkTest::SetUp();
    world_.Write("packs/netpack/pack.yaml", "ref: netpack\nversion: 1.0.0\ndescription: g62\n");
    // Prints its network interfaces (the first column of /proc/net/dev) and leaves a marker.
    const std::string script =
        "echo ran; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sed 's/^/iface /'\n";
    world_.Write("packs/netpack/actions/host.yaml",
                 "name: host\nrunner_type: shell\nentry_point: net.sh\nnetwork: host\n");
    world_.Write("packs/netpack/actions/plain.yaml",
                 "name: plain\nrunner_type: shell\nentry_point: net.sh\n");
    world_.Write("packs/netpack/actions/none.yaml",
                 "name: none\nrunner_type: shell\nentry_point: net.sh\nnetwork: none\n");
    world_.Write("packs/netpack/actions/net.sh", script);
  }

  std::string WriteConfig(const std::string& sandbox_toml) {
    world_.Write("packvisor.toml", "packs_base_dir = \"" + world_.Path("packs") +
                                       "\"\nruntime_envs_dir = \"" + world_.Path("envs") +
                                       "\"\nstate_dir = \"" + world_.Path("state") + "\"\n" +
                                       sandbox_toml);
    return world_.Path("packvisor.toml");
  }

  nlohmann::json Run(const std::string& config, const std::string& action, CommandResult* raw) {
    *raw = RunPackvisor({"--config", config, "run", action, "--json"});
    return ParseResult(*raw);
  }

  static std::vector<std::string> Interfaces(const nlohmann::json& result) {
    std::vector<std::string> names;
    for (const std::string& line : testing::Lines(Field(result, "stdout"))) {
      if (line.rfind("iface ", 0) == 0) names.push_back(line.substr(6));
    }
    return names;
  }

  TempDir world_;
};

TEST_F(HostNetworkGrantTest, G62_network_host_refused_for_a_pack_not_granted_it) {
  HostGuard guard;
  std::string config = WriteConfig("");
  CommandResult raw;
  nlohmann::json result = Run(config, "netpack.host", &raw);
  EXPECT_EQ(result.value("status", ""), "rejected") << result.dump();
  EXPECT_NE(Field(result, "error").find("sandbox.host_network_packs"), std::string::npos)
      << "the refusal does not name the config key: " << result.dump();
  EXPECT_EQ(Field(result, "stdout").find("ran"), std::string::npos) << "the action ran";
  EXPECT_NE(raw.exit_code, 0);
  // The same pack's actions without the request run, with loopback only.
  nlohmann::json plain = Run(config, "netpack.plain", &raw);
  EXPECT_EQ(plain.value("status", ""), "succeeded") << plain.dump();
  EXPECT_EQ(Interfaces(plain), std::vector<std::string>{"lo"}) << plain.dump();
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

TEST_F(HostNetworkGrantTest, G62_positive_control_granted_pack_gets_the_host_network) {
  std::string config = WriteConfig("[sandbox]\nhost_network_packs = [\"netpack\"]\n");
  CommandResult raw;
  nlohmann::json host = Run(config, "netpack.host", &raw);
  EXPECT_EQ(host.value("status", ""), "succeeded") << host.dump();
  std::vector<std::string> host_ifaces = Interfaces(host);
  std::vector<std::string> ours;
  for (const std::string& line : testing::Lines(testing::ReadFileOrEmpty("/proc/self/net/dev"))) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    ours.push_back(name);
  }
  std::sort(host_ifaces.begin(), host_ifaces.end());
  std::sort(ours.begin(), ours.end());
  EXPECT_EQ(host_ifaces, ours) << "a granted pack does not share the host's network namespace";
  // A granted pack's action that says network: none still gets a private namespace.
  nlohmann::json none = Run(config, "netpack.none", &raw);
  EXPECT_EQ(Interfaces(none), std::vector<std::string>{"lo"}) << none.dump();
}

}  // namespace
}  // namespace packvisor
