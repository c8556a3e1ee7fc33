// sd_notify and socket activation without libsystemd, against a real datagram socket and a real
// inherited fd in a child process.
#include "supervisor/executions/notify.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "tests/support/scratch_dir.h"

namespace packvisor {
namespace {

// A datagram socket bound to `name` (a path, or "@abstract").
unique_fd BoundDatagramSocket(const std::string& name) {
  unique_fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  struct sockaddr_un address {};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, name.data(), name.size());
  socklen_t length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + name.size());
  if (name[0] == '@') {
    address.sun_path[0] = '\0';
  } else {
    length += 1;
  }
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<struct sockaddr*>(&address), length), 0)
      << std::strerror(errno);
  return fd;
}

std::string Receive(int fd) {
  char buffer[4096];
  ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
  return n < 0 ? std::string("<nothing: ") + std::strerror(errno) + ">"
               : std::string(buffer, static_cast<size_t>(n));
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = getenv(name);
    if (old) old_ = old;
    had_ = old != nullptr;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(NotifyTest, SendsOneDatagramToAPathSocket) {
  testing::ScratchDir dir;
  std::string path = dir.Path("notify.sock");
  unique_fd receiver = BoundDatagramSocket(path);
  ScopedEnv env("NOTIFY_SOCKET", path);
  ASSERT_TRUE(NotifySystemd("READY=1\nSTATUS=serving").ok());
  EXPECT_EQ(Receive(receiver.get()), "READY=1\nSTATUS=serving");
  ASSERT_TRUE(NotifySystemd("STOPPING=1").ok());
  EXPECT_EQ(Receive(receiver.get()), "STOPPING=1");
  EXPECT_STREQ(getenv("NOTIFY_SOCKET"), path.c_str());  // kept for the next one
}

TEST(NotifyTest, SendsToAnAbstractSocket) {
  std::string name = "@packvisor-notify-test-" + std::to_string(getpid());
  unique_fd receiver = BoundDatagramSocket(name);
  ScopedEnv env("NOTIFY_SOCKET", name);
  ASSERT_TRUE(NotifySystemd("RELOADING=1").ok());
  EXPECT_EQ(Receive(receiver.get()), "RELOADING=1");
}

TEST(NotifyTest, NoSocketIsNoOpAndABadOneAnError) {
  {
    ScopedEnv env("NOTIFY_SOCKET", "");
    EXPECT_TRUE(NotifySystemd("READY=1").ok());
  }
  {
    ScopedEnv env("NOTIFY_SOCKET", "relative/path");
    auto sent = NotifySystemd("READY=1");
    ASSERT_FALSE(sent.ok());
    EXPECT_NE(sent.error().message().find("NOTIFY_SOCKET=relative/path"), std::string::npos);
  }
  {
    testing::ScratchDir dir;
    ScopedEnv env("NOTIFY_SOCKET", dir.Path("nobody-listens.sock"));
    EXPECT_FALSE(NotifySystemd("READY=1").ok());
  }
}

// In a child, as systemd starts a socket-activated service: a listening socket at fd 3 (without
// close-on-exec), LISTEN_PID = the child's pid, LISTEN_FDS = 1. Exit codes say what failed.
int ActivatedChild(bool own_pid) {
  int listener = socket(AF_UNIX, SOCK_STREAM, 0);  // inherited fds come without CLOEXEC
  if (listener < 0 || dup2(listener, kListenFdsStart) != kListenFdsStart) return 10;
  if (listener != kListenFdsStart) close(listener);
  setenv("LISTEN_PID", std::to_string(own_pid ? getpid() : getpid() + 1).c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  setenv("LISTEN_FDNAMES", "packvisor.socket", 1);
  std::vector<unique_fd> fds = ListenFdsFromSystemd();
  if (getenv("LISTEN_PID") || getenv("LISTEN_FDS") || getenv("LISTEN_FDNAMES")) return 11;
  if (!own_pid) return fds.empty() ? 0 : 12;
  if (fds.size() != 1 || fds[0].get() != kListenFdsStart) return 13;
  int flags = fcntl(fds[0].get(), F_GETFD);
  if (flags < 0 || (flags & FD_CLOEXEC) == 0) return 14;
  int type = 0;
  socklen_t length = sizeof(type);
  if (getsockopt(fds[0].get(), SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM) {
    return 15;
  }
  return 0;
}

int RunInChild(bool own_pid) {
  pid_t child = fork();
  if (child == 0) _exit(ActivatedChild(own_pid));
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST(ListenFdsTest, TakesTheInheritedSocketMakesItCloseOnExecAndClearsTheVariables) {
  EXPECT_EQ(RunInChild(true), 0);
}

TEST(ListenFdsTest, VariablesMeantForAnotherProcessGiveNothing) { EXPECT_EQ(RunInChild(false), 0); }

TEST(ListenFdsTest, NotActivatedGivesNothing) {
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  EXPECT_TRUE(ListenFdsFromSystemd().empty());
}

}  // namespace
}  // namespace packvisor
