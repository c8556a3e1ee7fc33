// What the action can see and change: /pack, /env, /tmp, the rest of the file system, /dev,
// /proc, the network, the host name and its limits. Every test launches the real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr uid_t kSandboxHostId = 100000;  // default sandbox.uid_range start

std::vector<std::string> ShellCommand(const std::string& script) {
  return {"/bin/sh", "-c", script};
}

size_t CountOccurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++count;
  }
  return count;
}

// ---- /pack ----

TEST(ExecPack, PackIsReadOnlyEvenWhereHostPermissionsWouldAllowWriting) {
  TempDir pack;
  pack.Write("pack.yaml", "ref: demo\n", 0666);
  pack.Write("actions/run.sh", "#!/bin/sh\necho run\n", 0777);
  chmod(pack.path().c_str(), 0777);
  chmod(pack.Path("actions").c_str(), 0777);
  std::string before = TreeFingerprint(pack.path());

  // Seven write attempts, each of which the host permissions alone would allow.
  CommandResult r =
      RunExec({"--pack-dir", pack.path()},
              ShellCommand("touch /pack/new; echo x > /pack/pack.yaml; rm /pack/pack.yaml; "
                           "mkdir /pack/dir; mv /pack/actions/run.sh /pack/moved; "
                           "chmod 700 /pack/pack.yaml; ln -s /etc /pack/link; "
                           "cat /pack/pack.yaml"));
  EXPECT_EQ(r.stdout_text, "ref: demo\n");
  EXPECT_EQ(CountOccurrences(r.stderr_text, "Read-only file system"), 7u) << r.stderr_text;
  EXPECT_EQ(TreeFingerprint(pack.path()), before);
}

TEST(ExecPack, TouchInPackReportsReadOnlyFileSystem) {
  TempDir pack;
  chmod(pack.path().c_str(), 0777);
  CommandResult r = RunExec({"--pack-dir", pack.path()}, {"/usr/bin/touch", "/pack/x"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("Read-only file system"));
  EXPECT_FALSE(std::filesystem::exists(pack.Path("x")));
}

TEST(ExecPack, WorkingDirectoryIsPackOrRootWithoutAPack) {
  TempDir pack;
  pack.Write("marker-file", "m");
  CommandResult with = RunExec({"--pack-dir", pack.path()}, ShellCommand("pwd; ls"));
  EXPECT_EQ(with.stdout_text, "/pack\nmarker-file\n") << with.stderr_text;
  CommandResult without = RunExec({}, ShellCommand("pwd; test -e /pack && echo has-pack; true"));
  EXPECT_EQ(without.stdout_text, "/\n") << without.stderr_text;
}

// ---- /env ----

TEST(ExecEnv, EnvIsWritableAndWritesShowOnTheHostAsTheSandboxId) {
  TempDir env;
  env.Chown(kSandboxHostId, kSandboxHostId);
  std::string marker = UniqueMarker("env");
  CommandResult r = RunExec({"--env-dir", env.path()},
                            ShellCommand("echo " + marker +
                                         " > /env/out.txt && mkdir /env/sub && "
                                         "echo nested > /env/sub/f && ls -n /env/out.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(ReadFileOrEmpty(env.Path("out.txt")), marker + "\n");
  EXPECT_EQ(ReadFileOrEmpty(env.Path("sub/f")), "nested\n");
  struct stat st {};
  ASSERT_EQ(stat(env.Path("out.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kSandboxHostId);
  EXPECT_EQ(st.st_gid, kSandboxHostId);
  // Inside, the same file belongs to the action user.
  EXPECT_THAT(r.stdout_text, HasSubstr(" 1000 1000 "));
}

TEST(ExecEnv, EnvIsMountedNosuidAndNodev) {
  TempDir env;
  env.Chown(kSandboxHostId, kSandboxHostId);
  CommandResult r =
      RunExec({"--env-dir", env.path()}, ShellCommand("grep ' /env ' /proc/self/mountinfo"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::string options = r.stdout_text.substr(0, r.stdout_text.find(" - "));
  EXPECT_THAT(options, HasSubstr(" rw,"));
  EXPECT_THAT(options, HasSubstr("nosuid"));
  EXPECT_THAT(options, HasSubstr("nodev"));
}

TEST(ExecEnv, HostFilesOutsideEnvAreNotWritable) {
  TempDir env;
  env.Chown(kSandboxHostId, kSandboxHostId);
  CommandResult r = RunExec(
      {"--env-dir", env.path()},
      ShellCommand("for p in /usr/x /etc/x /x /dev/x; do touch $p 2>/dev/null && echo wrote:$p; "
                   "done; echo end"));
  EXPECT_EQ(r.stdout_text, "end\n") << r.stderr_text;
}

// ---- /tmp and the rest of the host ----

TEST(ExecTmp, TmpIsPrivateEmptyAndDiscarded) {
  std::string marker = UniqueMarker("hosttmp");
  std::string host_file = "/tmp/" + marker + "-host";
  { std::ofstream(host_file) << "host"; }
  CommandResult r = RunExec(
      {}, ShellCommand("ls -A /tmp; test -e " + host_file + " && echo visible; echo " + marker +
                       " > /tmp/" + marker + "-inside && cat /tmp/" + marker + "-inside"));
  std::remove(host_file.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, marker + "\n");
  EXPECT_FALSE(std::filesystem::exists("/tmp/" + marker + "-inside"));
}

TEST(ExecTmp, TmpIsATmpfsWithTheConfiguredSize) {
  CommandResult r = RunExec({}, ShellCommand("grep ' /tmp ' /proc/self/mountinfo"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr(" - tmpfs "));
  EXPECT_THAT(r.stdout_text, HasSubstr("size=65536k"));  // sandbox.tmp_size_mb = 64
}

TEST(ExecFilesystem, HostHomeRootAndSecretsAreAbsent) {
  CommandResult r = RunExec(
      {}, ShellCommand("for p in /root /home /oldroot /etc/shadow /etc/sudoers /var /run /srv "
                       "/boot /mnt; do [ -e $p ] && echo present:$p; done; echo end"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "end\n");
}

TEST(ExecFilesystem, RootIsReadOnly) {
  CommandResult r = RunExec({}, ShellCommand("mkdir /newdir"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("Read-only file system"));
}

TEST(ExecFilesystem, PasswdIsSynthesizedNotTheHosts) {
  CommandResult r = RunExec({}, {"/bin/cat", "/etc/passwd", "/etc/group"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("action:x:1000:1000:"));
  // No account of the host other than root and nobody shows up inside.
  for (const std::string& line : Lines(ReadFileOrEmpty("/etc/passwd"))) {
    std::string name = line.substr(0, line.find(':'));
    if (name.empty() || name == "root" || name == "nobody") continue;
    EXPECT_THAT(r.stdout_text, Not(HasSubstr("\n" + name + ":"))) << name;
    EXPECT_NE(r.stdout_text.rfind(name + ":", 0), 0u) << name;
  }
}

// ---- /dev ----

TEST(ExecDev, DevHoldsOnlyTheMinimalDevices) {
  CommandResult r = RunExec({}, {"/bin/ls", "-A", "/dev"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::set<std::string> allowed = {"null", "zero",  "full",   "random", "urandom",
                                   "fd",   "stdin", "stdout", "stderr", "shm"};
  std::vector<std::string> entries = Lines(r.stdout_text);
  for (const std::string& entry : entries) EXPECT_TRUE(allowed.count(entry)) << entry;
  for (const char* needed : {"null", "zero", "urandom", "shm"}) {
    EXPECT_NE(std::find(entries.begin(), entries.end(), needed), entries.end()) << needed;
  }
}

TEST(ExecDev, DevicesWork) {
  CommandResult r = RunExec(
      {}, ShellCommand("echo discard > /dev/null && head -c 16 /dev/urandom | wc -c && "
                       "head -c 3 /dev/zero | wc -c && echo shm > /dev/shm/f && cat /dev/shm/f"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "16\n3\nshm\n");
}

// ---- /proc ----

TEST(ExecProc, ProcShowsOnlyTheSandboxesOwnProcesses) {
  CommandResult r =
      RunExec({}, ShellCommand("for d in /proc/[0-9]*; do echo \"${d#/proc/}\"; done"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::vector<std::string> pids = Lines(r.stdout_text);
  EXPECT_NE(std::find(pids.begin(), pids.end(), "1"), pids.end()) << r.stdout_text;
  EXPECT_LE(pids.size(), 3u) << r.stdout_text;  // init, the shell, at most a transient one
  for (const std::string& pid : pids) EXPECT_LT(std::stoi(pid), 10) << r.stdout_text;
}

TEST(ExecProc, ShellIsNotPidOneButSeesItsParentInit) {
  CommandResult r = RunExec({}, ShellCommand("echo $$ $PPID"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "2 1\n");
}

// PID 1 is a copy of the supervisor: without the scrub its /proc/1/cmdline is the supervisor's
// command line (the binary's host path, the config file, the run's arguments). The shell prints
// init's command line with NULs as '|', then its own (which does carry the marker), so the test
// also shows that the read works and what an unscrubbed command line looks like.
TEST(ExecProc, InitsCommandLineIsItsTitleNotTheSupervisors) {
  const std::string marker = UniqueMarker("pvtitle");
  CommandResult r = RunExec({}, ShellCommand("tr '\\0' '|' < /proc/1/cmdline; echo; "
                                             "tr '\\0' '|' < /proc/self/cmdline; echo; : " +
                                             marker));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::vector<std::string> lines = Lines(r.stdout_text);
  ASSERT_EQ(lines.size(), 2u) << r.stdout_text;
  EXPECT_THAT(lines[1], HasSubstr(marker)) << "the reader did not see a command line";
  std::string init = lines[0];
  init.erase(init.find_last_not_of('|') + 1);
  EXPECT_EQ(init, "packvisor-init") << lines[0];
  EXPECT_THAT(lines[0], Not(HasSubstr(marker)));
  EXPECT_THAT(lines[0], Not(HasSubstr("exec")));
}

TEST(ExecProc, KernelTunablesAreReadOnly) {
  CommandResult r =
      RunExec({}, ShellCommand("grep -E ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, ::testing::StartsWith("ro,"));
}

// ---- Network ----

std::set<std::string> Interfaces(const std::string& net_dev) {
  std::set<std::string> names;
  for (const std::string& line : Lines(net_dev)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name.find('|') == std::string::npos) names.insert(name);
  }
  return names;
}

TEST(ExecNetwork, NoneHasOnlyLoopback) {
  CommandResult r = RunExec({}, {"/bin/cat", "/proc/net/dev"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(Interfaces(r.stdout_text), (std::set<std::string>{"lo"})) << r.stdout_text;
}

TEST(ExecNetwork, LoopbackIsUpInTheFreshNamespace) {
  CommandResult r = RunExec({"--network", "none", "--timeout", "5"},
                            {"/usr/bin/python3", "-c",
                             "import socket\n"
                             "server = socket.socket()\n"
                             "server.bind(('127.0.0.1', 0))\n"
                             "server.listen(1)\n"
                             "client = socket.create_connection(server.getsockname(), timeout=2)\n"
                             "conn, _ = server.accept()\n"
                             "client.sendall(b'ping')\n"
                             "print(conn.recv(4).decode())\n"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "ping\n");
}

TEST(ExecNetwork, HostSeesTheHostsInterfaces) {
  std::set<std::string> host = Interfaces(ReadFileOrEmpty("/proc/net/dev"));
  if (host.size() < 2) GTEST_SKIP() << "the host has only loopback";
  CommandResult r = RunExec({"--network", "host"}, {"/bin/cat", "/proc/net/dev"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(Interfaces(r.stdout_text), host);
  EXPECT_GT(Interfaces(r.stdout_text).size(), 1u);
}

TEST(ExecNetwork, NoneCannotReachAnOutsideAddress) {
  CommandResult r =
      RunExec({"--timeout", "5"}, {"/usr/bin/python3", "-c",
                                   "import socket\n"
                                   "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
                                   "s.settimeout(2)\n"
                                   "try:\n"
                                   "    s.connect(('10.255.255.1', 80))\n"
                                   "    print('connected')\n"
                                   "except OSError as e:\n"
                                   "    print('errno', e.errno)\n"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "errno 101\n");  // ENETUNREACH: no route at all
}

// ---- Host name and limits ----

TEST(ExecUts, HostnameIsTheSandboxesNotTheHosts) {
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  CommandResult r = RunExec({}, {"/bin/uname", "-n"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_NE(r.stdout_text, std::string(host) + "\n");
  EXPECT_FALSE(r.stdout_text.empty());
}

TEST(ExecLimits, CoreDumpsAreOffAndDescriptorsAreLimited) {
  CommandResult r = RunExec({}, ShellCommand("ulimit -c; ulimit -n"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "0\n1024\n");  // sandbox.nofile = 1024
}

}  // namespace
}  // namespace packvisor::testing
