// The daemon's client when there is no daemon: every command that talks to it says so in one line
// naming the socket and exits 125, whether the socket is missing or nobody listens on it. The
// real binary, no daemon.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <vector>

#include "sandbox/os/unique_fd.h"
#include "tests/support/harness.h"

namespace packvisor::testing {
namespace {

std::vector<std::vector<std::string>> EveryClientCommand(const std::string& socket) {
  std::string server = "--server=" + socket;
  return {{"run", server, "demo.hello", "--param", "name=x"},
          {"run", server, "demo.hello", "--json"},
          {"exec", server, "--", "/bin/true"},
          {"ps", server},
          {"logs", "0b7e1c2a-1111-4222-8333-444455556666", server},
          {"logs", "--follow", "0b7e1c2a-1111-4222-8333-444455556666", server},
          {"cancel", "0b7e1c2a-1111-4222-8333-444455556666", server},
          {"result", "0b7e1c2a-1111-4222-8333-444455556666", server}};
}

TEST(ClientWithoutDaemon, AMissingSocketIsOneLineNamingItAndExit125) {
  TempDir dir;
  std::string socket = dir.Path("packvisor.sock");
  for (const auto& args : EveryClientCommand(socket)) {
    CommandResult r = RunPackvisor(args);
    EXPECT_EQ(r.exit_code, 125) << args[0] << ": " << r.stderr_text;
    EXPECT_EQ(r.stderr_text, "packvisor: error: connect to the daemon at " + socket +
                                 ": No such file or directory\n")
        << args[0];
    EXPECT_EQ(r.stdout_text, "") << args[0];
  }
}

TEST(ClientWithoutDaemon, ASocketNobodyListensOnIsRefused) {
  TempDir dir;
  std::string socket = dir.Path("packvisor.sock");
  // Bound but never listening: connect() is refused.
  unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket.data(), socket.size());
  ASSERT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  for (const auto& args : EveryClientCommand(socket)) {
    CommandResult r = RunPackvisor(args);
    EXPECT_EQ(r.exit_code, 125) << args[0] << ": " << r.stderr_text;
    EXPECT_EQ(r.stderr_text,
              "packvisor: error: connect to the daemon at " + socket + ": Connection refused\n")
        << args[0];
  }
}

// `--server PACK.ACTION` is "the configured socket, action PACK.ACTION", never a socket named
// PACK.ACTION: the value is taken only after '='.
TEST(ClientWithoutDaemon, ABareServerFlagUsesTheConfiguredSocket) {
  TempDir dir;
  std::string socket = dir.Path("configured.sock");
  dir.Write("packvisor.toml", "[server]\nsocket = \"" + socket + "\"\n");
  CommandResult r =
      RunPackvisor({"--config", dir.Path("packvisor.toml"), "run", "--server", "demo.hello"});
  EXPECT_EQ(r.exit_code, 125) << r.stderr_text;
  EXPECT_EQ(r.stderr_text, "packvisor: error: connect to the daemon at " + socket +
                               ": No such file or directory\n");
}

}  // namespace
}  // namespace packvisor::testing
