// The daemon's lifecycle against a real `packvisor serve` (issue 12, "Done when"): cancel kills
// the sandbox's whole tree and leaves no process or cgroup; SIGTERM drains; SIGHUP with a bad
// configuration keeps the old one; SIGKILL with executions running, then a restart, reports them
// `abandoned` and leaves nothing on the host; secrets appear in no log, state file, GET body or
// the daemon's environ. The daemon removes the socket it made when it exits, and no other (one
// systemd passed it, one that replaced its own).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "tests/support/cgroup_fixtures.h"
#include "tests/support/daemon_fixture.h"
#include "tests/support/tree_action.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class DaemonLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.WriteSimpleAction("life", "tree", "shell", "tree.sh", kTreeScript, kTreeParameters);
    world_.WriteSimpleAction("life", "hello", "shell", "hello.sh", "echo hello\n");
  }
  // No warm pool here: its prepared sandboxes hold cgroups under the test's parent, which the
  // "no cgroup left" checks would count (the pool's own lifecycle: warm_pool_test.cc).
  std::string Toml(const std::string& server = "") const {
    return "[execution]\nkill_grace_seconds = 1\n[sandbox]\ncgroup_parent = \"" + cgroup_.name() +
           "\"\n[server]\nwarm_sandboxes = 0\n" + server;
  }
  void OpenGate(const std::string& gate) const { world_.WriteFile("packs/life/gate-" + gate, ""); }
  // Submits life.tree and waits until its background child runs; returns the execution id.
  std::string StartTree(const DaemonUnderTest& daemon, const std::string& gate,
                        const std::string& marker) {
    HttpResponse r =
        SubmitAction(daemon.socket(), "life.tree", {{"gate", gate}, {"marker", marker}});
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202) return "";
    EXPECT_TRUE(WaitUntil([&] { return !ProcessesWithMarker(marker).empty(); }, 30000))
        << "the action's tree never started; daemon log:\n"
        << daemon.Log();
    return r.Json()["execution_id"];
  }
  // The final result, read from the end of the execution's output stream (it ends with it).
  nlohmann::json Result(const DaemonUnderTest& daemon, const std::string& id) {
    HttpResponse r = HttpGet(daemon.socket(), "/v1/executions/" + id + "/output");
    std::vector<std::string> lines = Lines(r.body);
    if (r.status != 200 || lines.empty()) return {{"status", "HTTP " + std::to_string(r.status)}};
    return nlohmann::json::parse(lines.back())["result"];
  }
  std::string Status(const DaemonUnderTest& daemon, const std::string& id) {
    HttpResponse r = HttpGet(daemon.socket(), "/v1/executions/" + id);
    return r.status == 200 ? r.Json().value("status", "") : "HTTP " + std::to_string(r.status);
  }
  RunWorld world_;
  ScopedCgroupParent cgroup_;
};

TEST_F(DaemonLifecycleTest, CancelKillsTheTreeAndLeavesNoProcessOrCgroup) {
  DaemonUnderTest daemon(world_, Toml());
  std::string marker = UniqueMarker("cancel");
  std::string id = StartTree(daemon, "never", marker);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Status(daemon, id), "running");
  HttpResponse cancelled = HttpDelete(daemon.socket(), "/v1/executions/" + id);
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(cancelled.Json()["status"], "cancelled") << cancelled.body;
  EXPECT_EQ(cancelled.Json()["stdout"], "started\n");
  ExpectNoProcessOrCgroupLeft(marker, cgroup_);
  EXPECT_EQ(Status(daemon, id), "cancelled");
  HttpResponse again = HttpDelete(daemon.socket(), "/v1/executions/" + id);
  EXPECT_EQ(again.status, 409);
  EXPECT_THAT(again.Json()["error"].get<std::string>(), HasSubstr("cancelled"));
}

TEST_F(DaemonLifecycleTest, CancelOfAQueuedExecutionRemovesItFromTheQueue) {
  DaemonUnderTest daemon(world_, Toml("max_concurrent = 1\n"));
  std::string marker = UniqueMarker("queued");
  std::string running = StartTree(daemon, "q", marker);
  HttpResponse queued = SubmitAction(daemon.socket(), "life.hello");
  ASSERT_EQ(queued.status, 202);
  std::string id = queued.Json()["execution_id"];
  EXPECT_EQ(Status(daemon, id), "queued");
  HttpResponse cancelled = HttpDelete(daemon.socket(), "/v1/executions/" + id);
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(cancelled.Json()["status"], "cancelled");
  EXPECT_EQ(HttpGet(daemon.socket(), "/v1/health").Json()["queued"], 0);
  OpenGate("q");
  EXPECT_EQ(Result(daemon, running)["status"], "succeeded");
  ExpectNoProcessOrCgroupLeft(marker, cgroup_);
  EXPECT_EQ(Status(daemon, id), "cancelled");
}

TEST_F(DaemonLifecycleTest, SigtermRefusesNewWorkWaitsForRunningAndExitsZero) {
  DaemonUnderTest daemon(world_, Toml("drain_seconds = 300\n"));
  std::string marker = UniqueMarker("drain");
  std::string id = StartTree(daemon, "drain", marker);
  ASSERT_FALSE(id.empty());
  daemon.Signal(SIGTERM);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return HttpGet(daemon.socket(), "/v1/health").body.find("draining") != std::string::npos;
      },
      30000));
  HttpResponse refused = SubmitAction(daemon.socket(), "life.hello");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(Status(daemon, id), "running") << "draining waits for running executions";
  OpenGate("drain");
  EXPECT_EQ(daemon.Wait(), 0) << daemon.Log();
  ExpectNoProcessOrCgroupLeft(marker, cgroup_);
  // The result was kept: a new daemon answers for it.
  ASSERT_TRUE(daemon.Start());
  EXPECT_EQ(Status(daemon, id), "succeeded");
}

TEST_F(DaemonLifecycleTest, SigtermCancelsWhatOutlivesDrainSeconds) {
  DaemonUnderTest daemon(world_, Toml("drain_seconds = 1\n"));
  std::string marker = UniqueMarker("drain-deadline");
  std::string id = StartTree(daemon, "never", marker);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.Log();
  ExpectNoProcessOrCgroupLeft(marker, cgroup_);
  ASSERT_TRUE(daemon.Start());
  EXPECT_EQ(Status(daemon, id), "cancelled");
}

TEST_F(DaemonLifecycleTest, SighupWithABadConfigKeepsTheOldOne) {
  DaemonUnderTest daemon(world_, Toml());
  std::string good = ReadFileOrEmpty(world_.ConfigPath());
  world_.WriteFile("packvisor.toml", good + "\nthis is not toml = = =\n");
  daemon.Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return daemon.Log().find("refused") != std::string::npos; }, 30000))
      << daemon.Log();
  HttpResponse r = SubmitAction(daemon.socket(), "life.hello", nlohmann::json::object(), true);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["stdout"], "hello\n");

  // A good one is taken: packs_base_dir moves to a tree where life.hello says something else.
  world_.WriteFile("other/life/pack.yaml", "ref: life\nversion: 1.0.0\ndescription: other\n");
  world_.WriteFile("other/life/actions/hello.yaml",
                   "name: hello\nrunner_type: shell\nentry_point: hello.sh\n");
  world_.WriteFile("other/life/actions/hello.sh", "echo reloaded\n");
  std::string moved = good;
  moved.replace(moved.find(world_.PacksDir()), world_.PacksDir().size(), world_.Path("other"));
  world_.WriteFile("packvisor.toml", moved);
  daemon.Signal(SIGHUP);
  ASSERT_TRUE(
      WaitUntil([&] { return daemon.Log().find("reloaded from") != std::string::npos; }, 30000))
      << daemon.Log();
  r = SubmitAction(daemon.socket(), "life.hello", nlohmann::json::object(), true);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["stdout"], "reloaded\n");
}

TEST_F(DaemonLifecycleTest, SigkillThenRestartReportsAbandonedAndLeavesNothing) {
  std::vector<std::string> mounts_before = HostMountsOutsideTestScratch();
  DaemonUnderTest daemon(world_, Toml("max_concurrent = 1\n"));
  std::string marker = UniqueMarker("killed");
  std::string running = StartTree(daemon, "never", marker);
  ASSERT_FALSE(running.empty());
  HttpResponse queued = SubmitAction(daemon.socket(), "life.hello");
  ASSERT_EQ(queued.status, 202);
  std::string queued_id = queued.Json()["execution_id"];
  EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);

  ASSERT_TRUE(daemon.Start());
  for (const std::string& id : {running, queued_id}) {
    HttpResponse r = HttpGet(daemon.socket(), "/v1/executions/" + id);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Json()["status"], "abandoned") << r.body;
    EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("restarted")) << r.body;
  }
  ExpectNoProcessOrCgroupLeft(marker, cgroup_);
  EXPECT_EQ(HostMountsOutsideTestScratch(), mounts_before);
  EXPECT_THAT(EntriesContaining(world_.EnvsDir(), ".staging"), IsEmpty());
  EXPECT_THAT(daemon.Log(), HasSubstr(running));
  // And it serves new work.
  HttpResponse r = SubmitAction(daemon.socket(), "life.hello", nlohmann::json::object(), true);
  EXPECT_EQ(r.Json()["status"], "succeeded") << r.body;
}

TEST_F(DaemonLifecycleTest, SecretsAppearInNoLogStateFileGetBodyOrEnviron) {
  world_.WriteSimpleAction("life", "secret", "shell", "secret.sh",
                           "doc=$(cat); case \"$doc\" in *\"$(printf '%s' \"$doc\" | sed -n "
                           "'s/.*\"token\": *\"\\([^\"]*\\)\".*/\\1/p')\"*) echo got-it;; esac\n",
                           "parameters:\n  token: {type: string, secret: true, required: true}\n");
  auto since = std::chrono::system_clock::now() - std::chrono::seconds(2);
  DaemonUnderTest daemon(world_, Toml("max_concurrent = 1\n"));
  std::string secret = UniqueMarker("S3CRET");
  HttpResponse done = SubmitAction(daemon.socket(), "life.secret", nlohmann::json::object(), true,
                                   {{"token", secret}});
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(done.Json()["stdout"], "got-it\n") << "the action received its secret";
  std::string id = done.Json()["execution_id"];
  // A queued one that is cancelled before it starts, with the secret in its request.
  std::string marker = UniqueMarker("secret-tree");
  std::string blocker = StartTree(daemon, "secret", marker);
  HttpResponse queued = SubmitAction(daemon.socket(), "life.secret", nlohmann::json::object(),
                                     false, {{"token", secret}});
  ASSERT_EQ(queued.status, 202);
  std::string queued_id = queued.Json()["execution_id"];

  std::vector<std::string> bodies = {
      done.body,
      queued.body,
      HttpGet(daemon.socket(), "/v1/executions/" + id).body,
      HttpGet(daemon.socket(), "/v1/executions/" + id + "/output").body,
      HttpGet(daemon.socket(), "/v1/executions/" + queued_id).body,
      HttpGet(daemon.socket(), "/v1/executions").body,
      HttpDelete(daemon.socket(), "/v1/executions/" + queued_id).body,
      HttpGet(daemon.socket(), "/metrics").body,
  };
  for (const std::string& body : bodies) EXPECT_THAT(body, Not(HasSubstr(secret)));
  std::string environ = ReadFileOrEmpty("/proc/" + std::to_string(daemon.pid()) + "/environ");
  EXPECT_FALSE(environ.empty());
  EXPECT_THAT(environ, Not(HasSubstr(secret)));
  OpenGate("secret");
  ExpectNoProcessOrCgroupLeft(marker, cgroup_);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  EXPECT_THAT(daemon.Log(), Not(HasSubstr(secret)));
  EXPECT_THAT(RecentFilesContaining(world_.StateDir(), secret, since), IsEmpty());
  EXPECT_THAT(RecentFilesContaining(world_.root(), secret, since), IsEmpty());
}

// The socket file at `path`: its inode, 0 when there is no socket there.
ino_t SocketInode(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
  return st.st_ino;
}

// A listening Unix socket bound at `path` by the test (as systemd or another daemon would).
unique_fd ListenAt(const std::string& path) {
  unique_fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_un address {};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0)
      << path << ": " << std::strerror(errno);
  EXPECT_EQ(listen(fd.get(), 16), 0);
  return fd;
}

TEST_F(DaemonLifecycleTest, SigtermAndSigintRemoveTheSocketItMade) {
  DaemonUnderTest daemon(world_, Toml());
  for (int signal : {SIGTERM, SIGINT}) {
    ASSERT_NE(SocketInode(daemon.socket()), 0u) << "the daemon made its socket";
    EXPECT_EQ(HttpGet(daemon.socket(), "/v1/health").status, 200);
    EXPECT_EQ(daemon.Stop(signal), 0) << daemon.Log();
    EXPECT_EQ(SocketInode(daemon.socket()), 0u) << "signal " << signal << " left the socket";
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(daemon.socket())));
    if (signal == SIGTERM) {
      ASSERT_TRUE(daemon.Start());
    }
  }
}

// Another socket now at the path (a second daemon started meanwhile): not the one this daemon
// made, so it stays when this one exits.
TEST_F(DaemonLifecycleTest, ASocketThatReplacedItsOwnIsLeftAlone) {
  DaemonUnderTest daemon(world_, Toml());
  ASSERT_NE(SocketInode(daemon.socket()), 0u);
  ASSERT_EQ(unlink(daemon.socket().c_str()), 0);
  unique_fd other = ListenAt(daemon.socket());
  ino_t other_inode = SocketInode(daemon.socket());
  ASSERT_NE(other_inode, 0u);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.Log();
  EXPECT_EQ(SocketInode(daemon.socket()), other_inode) << daemon.Log();
}

// Socket activation: systemd made the socket (LISTEN_FDS) and owns its file.
TEST_F(DaemonLifecycleTest, ASocketSystemdPassedIsNotRemoved) {
  world_.WriteConfig(Toml());
  std::string path = world_.Path("activated.sock");
  unique_fd listening = ListenAt(path);
  ino_t inode = SocketInode(path);
  ASSERT_NE(inode, 0u);
  std::string log_path = world_.Path("activated.log");
  std::vector<std::string> args = {PackvisorBinary(), "--config", world_.ConfigPath(), "serve"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // LISTEN_PID must be the daemon's own pid: known only here, written without allocating.
    char listen_pid[64];
    std::snprintf(listen_pid, sizeof(listen_pid), "LISTEN_PID=%d", getpid());
    char* envp[] = {listen_pid, const_cast<char*>("LISTEN_FDS=1"),
                    const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    // SD_LISTEN_FDS_START, without O_CLOEXEC (dup2 onto itself would keep the flag).
    if (listening.get() == 3) {
      fcntl(3, F_SETFD, 0);
    } else {
      dup2(listening.get(), 3);
    }
    execve(argv[0], argv.data(), envp);
    _exit(127);
  }
  listening.reset();
  // Served once the daemon runs (the connection waits in the socket's backlog until then).
  HttpResponse health = HttpRequest(path, "GET", "/v1/health", "", 30000);
  EXPECT_EQ(health.status, 200) << ReadFileOrEmpty(log_path);
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFileOrEmpty(log_path);
  EXPECT_EQ(SocketInode(path), inode) << ReadFileOrEmpty(log_path);
}

}  // namespace
}  // namespace packvisor::testing
