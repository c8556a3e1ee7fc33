// Catalog groups A and B, state side: what an action can see and keep inside the sandbox
// (capabilities, setuid binaries, nested user namespaces, the root, fds, /proc/PID/exe), checked
// through the real `packvisor exec`.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "security-tests/probe_suite.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using testing::CommandResult;
using testing::RunPackvisor;
using testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  std::string field;
  while (in >> field) fields.push_back(field);
  return fields;
}

// "Key:\tvalue" lines of /proc/PID/status.
std::map<std::string, std::string> ParseStatus(const std::string& text) {
  std::map<std::string, std::string> status;
  for (const std::string& line : Lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t start = line.find_first_not_of(" \t", colon + 1);
    status[line.substr(0, colon)] = start == std::string::npos ? "" : line.substr(start);
  }
  return status;
}

std::string RandomToken() {
  std::random_device rd;
  std::ostringstream out;
  out << std::hex << rd() << rd();
  return out.str();
}

class SandboxEscapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "security tests need root (packvisor sets up namespaces)";
    pack_.Write("probe", ReadFile(PACKVISOR_PROBE_BINARY), 0755);
    ASSERT_EQ(ReadFile(pack_.path() + "/probe"), ReadFile(PACKVISOR_PROBE_BINARY));
  }

  // Runs argv in the sandbox (pack and env bound) and returns the result object.
  nlohmann::json Exec(const std::vector<std::string>& argv) {
    std::vector<std::string> args = {"exec",      "--pack-dir", pack_.path(), "--env-dir",
                                     env_.path(), "--json",     "--"};
    args.insert(args.end(), argv.begin(), argv.end());
    CommandResult run = RunPackvisor(args);
    nlohmann::json result;
    try {
      result = run.Json();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "no JSON result: " << e.what() << "\nstdout: " << run.stdout_text
                    << "\nstderr: " << run.stderr_text;
      return nlohmann::json::object();
    }
    return result;
  }

  std::string Stdout(const nlohmann::json& result) { return result.value("stdout", ""); }

  TempDir pack_;
  TempDir env_;
};

// --- A01: keep or regain capabilities ----------------------------------------------------------

// Finds host pids whose argv[0] is `argv0` and whose command line contains `marker`.
std::vector<pid_t> FindHostProcesses(const std::string& argv0, const std::string& marker) {
  std::vector<pid_t> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadFile(entry.path() / "cmdline");
    if (cmdline.rfind(argv0 + '\0', 0) == 0 && cmdline.find(marker) != std::string::npos) {
      pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

TEST_F(SandboxEscapeTest, A01_caps_zero_nnp_seccomp_inside_and_unprivileged_uid_outside) {
  const std::string marker = "pv-a01-" + RandomToken();
  // The action prints its status, then waits (at most ~4 s) for the host to look at it.
  const std::string script =
      "cat /proc/self/status; echo ready; i=0; "
      "while [ ! -e /env/stop ] && [ $i -lt 80 ]; do sleep 0.05; i=$((i+1)); done";
  nlohmann::json result;
  std::thread runner([&] { result = Exec({"/bin/sh", "-c", script, marker}); });

  std::vector<pid_t> pids;
  for (int i = 0; i < 100 && pids.empty(); ++i) {
    pids = FindHostProcesses("/bin/sh", marker);
    if (pids.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string host_status;
  std::string host_uid_map;
  if (!pids.empty()) {
    host_status = ReadFile("/proc/" + std::to_string(pids[0]) + "/status");
    host_uid_map = ReadFile("/proc/" + std::to_string(pids[0]) + "/uid_map");
  }
  std::ofstream(env_.path() + "/stop") << "stop\n";
  runner.join();

  ASSERT_FALSE(pids.empty()) << "never saw the action on the host";
  auto inside = ParseStatus(Stdout(result));
  ASSERT_TRUE(inside.count("CapEff")) << result.dump();
  for (const char* key : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(inside[key], "0000000000000000") << key;
  }
  EXPECT_EQ(inside["NoNewPrivs"], "1");
  EXPECT_EQ(inside["Seccomp"], "2");
  EXPECT_EQ(Fields(inside["Uid"]), (std::vector<std::string>{"1000", "1000", "1000", "1000"}));
  EXPECT_EQ(Fields(inside["Gid"]), (std::vector<std::string>{"1000", "1000", "1000", "1000"}));

  // From the host, the action's real, effective, saved and fs uids are the mapped, non-root id.
  auto outside = ParseStatus(host_status);
  std::vector<std::string> uids = Fields(outside["Uid"]);
  ASSERT_EQ(uids.size(), 4u) << host_status;
  for (const std::string& uid : uids) EXPECT_NE(uid, "0") << "the action is root on the host";
  std::vector<std::string> map = Fields(host_uid_map);
  ASSERT_EQ(map.size(), 3u) << "expected a single uid_map line: " << host_uid_map;
  EXPECT_EQ(map[0], "1000");
  EXPECT_EQ(map[1], uids[0]);
  EXPECT_EQ(map[2], "1") << "more than one id mapped into the sandbox";
  EXPECT_EQ(Fields(outside["CapEff"]), std::vector<std::string>{"0000000000000000"});
}

// --- A02: setuid binaries inside the sandbox ---------------------------------------------------

// Runs `path -u` as uid/gid 65534 on the host (no sandbox) and returns what it printed.
std::string RunAsNobody(const std::string& path) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return "pipe2 failed";
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      _exit(120);
    }
    execl(path.c_str(), path.c_str(), "-u", static_cast<char*>(nullptr));
    _exit(121);
  }
  close(out[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return text;
}

TEST_F(SandboxEscapeTest, A02_planted_setuid_root_binary_runs_as_sandbox_uid) {
  pack_.Write("id", ReadFile("/usr/bin/id"), 04755);
  struct stat st {};
  ASSERT_EQ(stat((pack_.path() + "/id").c_str(), &st), 0);
  ASSERT_EQ(st.st_uid, 0u);
  ASSERT_TRUE(st.st_mode & S_ISUID) << "could not plant a setuid file";
  // Control: on the host the planted copy really elevates an unprivileged caller to euid 0.
  ASSERT_EQ(RunAsNobody(pack_.path() + "/id"), "0\n")
      << "the planted setuid copy does not work on the host, so the check below proves nothing";

  nlohmann::json result = Exec({"/pack/id", "-u"});
  EXPECT_EQ(Stdout(result), "1000\n") << result.dump();
  EXPECT_EQ(result["exit_code"], 0) << result.dump();
}

TEST_F(SandboxEscapeTest, A02_pack_env_tmp_shm_mounts_are_nosuid) {
  nlohmann::json result = Exec({"/bin/cat", "/proc/self/mountinfo"});
  std::map<std::string, int> seen;
  for (const std::string& line : Lines(Stdout(result))) {
    std::vector<std::string> f = Fields(line);
    if (f.size() < 6) continue;
    const std::string& mount_point = f[4];
    if (mount_point != "/pack" && mount_point != "/env" && mount_point != "/tmp" &&
        mount_point != "/dev/shm") {
      continue;
    }
    ++seen[mount_point];
    std::string options = "," + f[5] + ",";
    EXPECT_NE(options.find(",nosuid,"), std::string::npos) << "not nosuid: " << line;
    EXPECT_NE(options.find(",nodev,"), std::string::npos) << "not nodev: " << line;
  }
  for (const char* mount_point : {"/pack", "/env", "/tmp", "/dev/shm"}) {
    EXPECT_GE(seen[mount_point], 1) << mount_point << " missing from mountinfo:\n"
                                    << Stdout(result);
  }
}

// --- A04: nested user namespace from an interpreter --------------------------------------------

TEST_F(SandboxEscapeTest, A04_nested_userns_python_unshare_raises_permission_error) {
  pack_.Write("nested_userns.py",
              ReadFile(std::string(PACKVISOR_SECURITY_SCRIPTS_DIR) + "/nested_userns.py"), 0644);
  nlohmann::json result = Exec({"/usr/bin/python3", "/pack/nested_userns.py"});
  std::map<std::string, std::string> said;
  for (const std::string& line : Lines(Stdout(result))) {
    std::vector<std::string> f = Fields(line);
    if (!f.empty()) said[f[0]] = f.size() > 1 ? f[1] : "";
  }
  ASSERT_TRUE(said.count("reached")) << "the attack never ran: " << result.dump();
  EXPECT_FALSE(said.count("unshared")) << "a nested user namespace was created";
  ASSERT_TRUE(said.count("PermissionError")) << result.dump();
  EXPECT_EQ(said["PermissionError"], std::to_string(EPERM));
  ASSERT_TRUE(said.count("ns-before") && said.count("ns-after")) << result.dump();
  EXPECT_FALSE(said["ns-before"].empty());
  EXPECT_EQ(said["ns-before"], said["ns-after"]) << "the user namespace changed";
}

// Positive control for the test above: the same script outside any sandbox creates the nested
// namespace (only for its own process), so the sandboxed check can fail.
TEST(A00_positive_control_unsandboxed, PythonUnshareNewuserWorksOnTheHost) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (unprivileged user namespaces may be off)";
  const std::string script = std::string(PACKVISOR_SECURITY_SCRIPTS_DIR) + "/nested_userns.py";
  FILE* pipe = popen(("/usr/bin/python3 " + script + " </dev/null").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) out += buf;
  ASSERT_EQ(pclose(pipe), 0) << out;
  EXPECT_NE(out.find("reached\n"), std::string::npos) << out;
  EXPECT_NE(out.find("unshared\n"), std::string::npos) << out;
}

// --- A07: chroot escape --------------------------------------------------------------------------

TEST_F(SandboxEscapeTest, A07_root_is_its_own_parent_and_old_root_is_gone) {
  nlohmann::json result = Exec({"/bin/sh", "-c",
                                "/pack/probe chroot root_inodes; echo MOUNTINFO; "
                                "cat /proc/self/mountinfo"});
  std::string out = Stdout(result);
  EXPECT_NE(out.find("chroot reached\n"), std::string::npos) << out;
  EXPECT_NE(out.find("chroot errno=" + std::to_string(EPERM) + "\n"), std::string::npos) << out;

  std::vector<std::string> inodes;
  bool in_mountinfo = false;
  std::vector<std::string> mount_points;
  for (const std::string& line : Lines(out)) {
    if (line == "MOUNTINFO") {
      in_mountinfo = true;
      continue;
    }
    std::vector<std::string> f = Fields(line);
    if (in_mountinfo && f.size() >= 5) mount_points.push_back(f[4]);
    if (!in_mountinfo && f.size() == 7 && f[0] == "root_inodes") inodes = {f[2], f[4], f[6]};
  }
  ASSERT_EQ(inodes.size(), 3u) << out;
  EXPECT_EQ(inodes[1], inodes[0]) << "stat(\"/..\") differs from stat(\"/\")";
  EXPECT_EQ(inodes[2], inodes[0]) << "stat(\"/../../..\") differs from stat(\"/\")";

  ASSERT_FALSE(mount_points.empty()) << out;
  EXPECT_EQ(out.find("oldroot"), std::string::npos) << out;
  EXPECT_EQ(out.find("old_root"), std::string::npos) << out;
  for (const std::string& mount_point : mount_points) {
    // A host path as a mount point would mean the old root (or part of it) is still attached.
    EXPECT_NE(mount_point, pack_.path());
    EXPECT_NE(mount_point, env_.path());
    EXPECT_NE(mount_point.rfind("/work", 0), 0u) << mount_point;
    EXPECT_NE(mount_point.rfind("/root", 0), 0u) << mount_point;
    EXPECT_NE(mount_point.rfind("/home", 0), 0u) << mount_point;
    EXPECT_NE(mount_point.rfind("/var", 0), 0u) << mount_point;
    EXPECT_NE(mount_point.rfind("/sys", 0), 0u) << mount_point;
  }
}

// --- B11: inherited fds and cwd ------------------------------------------------------------------

TEST_F(SandboxEscapeTest, B11_only_stdio_fds_reach_the_action_and_cwd_is_pack) {
  // Leak two descriptors into packvisor on purpose (no O_CLOEXEC): a directory outside the
  // sandbox and an O_PATH handle on the host root. Neither may reach the action.
  int leaked_dir = open(pack_.path().c_str(), O_RDONLY | O_DIRECTORY);
  int leaked_root = open("/", O_PATH);
  ASSERT_GE(leaked_dir, 0);
  ASSERT_GE(leaked_root, 0);
  nlohmann::json result = Exec({"/pack/probe", "fds", "cwd"});
  close(leaked_dir);
  close(leaked_root);

  std::string out = Stdout(result);
  ASSERT_NE(out.find("fds ok\n"), std::string::npos) << result.dump();
  std::set<int> fds;
  for (const std::string& line : Lines(out)) {
    std::vector<std::string> f = Fields(line);
    if (f.size() == 4 && f[0] == "fds" && f[2] == "->") {
      fds.insert(std::stoi(f[1]));
      EXPECT_EQ(f[3].rfind("pipe:[", 0), 0u) << "stdio is not a pipe: " << line;
    }
  }
  EXPECT_EQ(fds, (std::set<int>{0, 1, 2})) << out;
  EXPECT_NE(out.find("cwd /pack\n"), std::string::npos) << out;
}

// --- A08: another action's processes: ptrace, process_vm_readv, /proc/PID/mem, pidfds, kill -----

// Field 22 of /proc/PID/stat (start time in clock ticks): tells a process from a reused pid.
std::string StartTime(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return "";
  std::vector<std::string> f = Fields(stat.substr(paren + 1));  // f[0] is field 3 (state)
  return f.size() > 19 ? f[19] : "";
}

// The pid of `pid` in its own (innermost) pid namespace, from NSpid.
std::string InnerPid(pid_t pid) {
  std::vector<std::string> nspid =
      Fields(ParseStatus(ReadFile("/proc/" + std::to_string(pid) + "/status"))["NSpid"]);
  return nspid.empty() ? "" : nspid.back();
}

// The errno each attempt of the probe's xattack must end with when the target is a process
// outside the attacker's sandbox: the policy's EPERM for the calls seccomp denies whatever the
// pid, ESRCH/ENOENT where the pid namespace hides the target.
const std::map<std::string, int> kCrossAttackErrno = {
    {"ptrace_attach", EPERM}, {"ptrace_seize", EPERM}, {"process_vm_readv", EPERM},
    {"proc_mem", ENOENT},     {"pidfd_open", ESRCH},   {"pidfd_getfd", EPERM},
    {"kill", ESRCH},
};

// Two actions at once, both of `packvisor exec` (so the same host uid: only the pid namespace and
// the filter stand between them). The victim runs `sleep` under a shell and must finish with its
// exact output; the attacker is given the victim's host pids (its init, shell and sleep, found
// from the host) and, separately, the sleep's pid inside the victim's namespace, and runs every
// cross-process attack against each.
TEST_F(SandboxEscapeTest, A08_concurrent_action_cannot_trace_read_or_kill_another_sandbox) {
  const std::string marker = "pv-a08-" + RandomToken();
  CommandResult victim_run;
  std::thread victim([&] {
    victim_run = RunPackvisor({"exec", "--timeout", "20", "--json", "--", "/bin/sh", "-c",
                               "sleep 6 && echo " + marker + "-done"});
  });

  pid_t shell = 0, sleeper = 0, init = 0;
  for (int i = 0; i < 250 && sleeper == 0; ++i) {
    std::vector<pid_t> shells = FindHostProcesses("/bin/sh", marker);
    if (shells.size() == 1) {
      shell = shells[0];
      std::vector<std::string> children = Fields(ReadFile(
          "/proc/" + std::to_string(shell) + "/task/" + std::to_string(shell) + "/children"));
      if (children.size() == 1 &&
          ReadFile("/proc/" + children[0] + "/cmdline").rfind("sleep", 0) == 0) {
        sleeper = std::stoi(children[0]);
      }
      std::vector<std::string> ppid =
          Fields(ParseStatus(ReadFile("/proc/" + std::to_string(shell) + "/status"))["PPid"]);
      if (!ppid.empty()) init = std::stoi(ppid[0]);
    }
    if (sleeper == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (sleeper == 0) {
    victim.join();
    FAIL() << "never saw the victim's sleep on the host; victim: " << victim_run.stdout_text
           << victim_run.stderr_text;
  }
  const std::string sleeper_start = StartTime(sleeper);
  const std::string guess = InnerPid(sleeper);
  EXPECT_EQ(InnerPid(shell), "2");
  EXPECT_EQ(InnerPid(init), "1");
  EXPECT_EQ(guess, "3") << "the victim's sleep should be pid 3 of its namespace";

  nlohmann::json attack =
      Exec({"/pack/probe", "xattack:host_init:" + std::to_string(init),
            "xattack:host_shell:" + std::to_string(shell),
            "xattack:host_sleep:" + std::to_string(sleeper), "xattack:ns_guess:" + guess});
  // The victim was alive through the whole attack (same process, not a reused pid).
  const bool alive_after = StartTime(sleeper) == sleeper_start;
  victim.join();

  std::string out = Stdout(attack);
  EXPECT_EQ(attack.value("status", ""), "succeeded") << attack.dump();
  for (const char* label : {"host_init", "host_shell", "host_sleep", "ns_guess"}) {
    EXPECT_EQ(out.find(std::string(label) + " self"), std::string::npos)
        << label << " named the attacker itself";
    for (const auto& [attempt, err] : kCrossAttackErrno) {
      const std::string name = std::string(label) + "." + attempt;
      EXPECT_NE(out.find(name + " reached\n"), std::string::npos)
          << name << " never ran: " << attack.dump();
      EXPECT_EQ(out.find(name + " ok\n"), std::string::npos) << name << " succeeded";
      EXPECT_NE(out.find(name + " errno=" + std::to_string(err) + "\n"), std::string::npos)
          << name << " did not fail with " << strerror(err) << ":\n"
          << out;
    }
  }

  ASSERT_TRUE(alive_after) << "the victim's sleep ended during the attack";
  nlohmann::json victim_result;
  ASSERT_NO_THROW(victim_result = victim_run.Json())
      << victim_run.stdout_text << victim_run.stderr_text;
  EXPECT_EQ(victim_result.value("status", ""), "succeeded") << victim_result.dump();
  EXPECT_EQ(victim_result["exit_code"], 0) << victim_result.dump();
  EXPECT_TRUE(victim_result["signal"].is_null()) << victim_result.dump();
  EXPECT_EQ(victim_result.value("stdout", ""), marker + "-done\n") << victim_result.dump();
}

// Positive control: the same probe, unsandboxed as root, against a process of the test's own:
// every attempt succeeds (the kill last), so the test above can fail.
TEST_F(SandboxEscapeTest, A08_positive_control_the_same_attacks_work_on_the_host) {
  pid_t target = fork();
  if (target == 0) {
    execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(target, 0);
  for (int i = 0;
       i < 100 && ReadFile("/proc/" + std::to_string(target) + "/cmdline").rfind("sleep", 0) != 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  probe_suite::Outcome run =
      probe_suite::RunBinary(PACKVISOR_PROBE_BINARY, {"xattack:host:" + std::to_string(target)});
  int status = 0;
  // The kill is the probe's last attempt; give the target a moment to become a zombie.
  pid_t reaped = 0;
  for (int i = 0; i < 200 && reaped != target; ++i) {
    reaped = waitpid(target, &status, WNOHANG);
    if (reaped != target) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (reaped != target) {
    kill(target, SIGKILL);
    waitpid(target, &status, 0);
    ADD_FAILURE() << "the probe's kill did not end the target";
  }
  for (const auto& [attempt, err] : kCrossAttackErrno) {
    const std::string name = "host." + attempt;
    EXPECT_NE(run.out.find(name + " reached\n"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find(name + " ok\n"), std::string::npos) << run.out;
  }
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

// --- A09: overwrite the supervisor binary through /proc/PID/exe ----------------------------------

TEST_F(SandboxEscapeTest, A09_proc_exe_cannot_be_opened_for_writing) {
  const std::string binary = testing::PackvisorBinary();
  std::string before = ReadFile(binary);
  struct stat st_before {};
  ASSERT_EQ(stat(binary.c_str(), &st_before), 0);
  ASSERT_FALSE(before.empty());

  nlohmann::json result = Exec({"/pack/probe", "proc_exe_write"});
  std::string out = Stdout(result);
  EXPECT_NE(out.find("proc_exe_write reached\n"), std::string::npos) << result.dump();
  EXPECT_NE(out.find("proc_exe_write /proc/1/exe direct "), std::string::npos)
      << "pid 1 was not attacked: " << out;
  EXPECT_NE(out.find("proc_exe_write opened=0\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("OPENED"), std::string::npos) << out;

  struct stat st_after {};
  ASSERT_EQ(stat(binary.c_str(), &st_after), 0);
  EXPECT_TRUE(ReadFile(binary) == before) << "the packvisor binary changed";
  EXPECT_EQ(st_after.st_mtim.tv_sec, st_before.st_mtim.tv_sec);
  EXPECT_EQ(st_after.st_mtim.tv_nsec, st_before.st_mtim.tv_nsec);
  EXPECT_EQ(st_after.st_uid, 0u);
  EXPECT_EQ(st_after.st_mode & 022, 0u) << "the packvisor binary is group/world writable";
}

}  // namespace
}  // namespace packvisor
