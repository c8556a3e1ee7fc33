// `packvisor exec` end to end: exit codes, output, the result object, the action's environment,
// ids and privileges, descriptors, and bad input. Every test launches the real binary.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> ShellCommand(const std::string& script) {
  return {"/bin/sh", "-c", script};
}

// Collapses runs of whitespace to single spaces and trims.
std::string Squeeze(const std::string& text) {
  std::istringstream in(text);
  std::string word, out;
  while (in >> word) out += (out.empty() ? "" : " ") + word;
  return out;
}

// ---- Exit codes. ----

TEST(ExecExitCode, ActionExitCodeIsPassedThrough) {
  CommandResult r = RunExec({"--json"}, ShellCommand("exit 3"));
  EXPECT_EQ(r.exit_code, 3) << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["exit_code"], 3);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_TRUE(j["signal"].is_null());
}

TEST(ExecExitCode, ZeroExitIsSucceeded) {
  CommandResult r = RunExec({"--json"}, ShellCommand("exit 0"));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "succeeded");
  EXPECT_EQ(r.Json()["exit_code"], 0);
}

TEST(ExecExitCode, HumanModeAlsoPassesTheExitCodeThrough) {
  CommandResult r = RunExec({}, ShellCommand("exit 42"));
  EXPECT_EQ(r.exit_code, 42) << r.stderr_text;
}

TEST(ExecExitCode, KillNineGives137AndSignal9) {
  CommandResult r = RunExec({"--json"}, ShellCommand("kill -9 $$"));
  EXPECT_EQ(r.exit_code, 137) << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["signal"], 9);
  EXPECT_TRUE(j["exit_code"].is_null());
  EXPECT_EQ(j["status"], "failed");
}

TEST(ExecExitCode, SigtermToItselfGives143) {
  CommandResult r = RunExec({"--json"}, ShellCommand("kill -TERM $$"));
  EXPECT_EQ(r.exit_code, 143) << r.stderr_text;
  EXPECT_EQ(r.Json()["signal"], 15);
}

TEST(ExecExitCode, MissingCommandGives127) {
  std::string marker = UniqueMarker("missing-cmd");
  CommandResult r = RunExec({"--json"}, {"/usr/bin/" + marker});
  EXPECT_EQ(r.exit_code, 127) << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["exit_code"], 127);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_TRUE(j["error"].is_string());
}

TEST(ExecExitCode, CommandNotOnPathGives127) {
  CommandResult r = RunExec({}, {UniqueMarker("nocmd")});
  EXPECT_EQ(r.exit_code, 127) << r.stderr_text;
}

TEST(ExecExitCode, NonExecutableFileGives126) {
  TempDir pack;
  pack.Write("script.sh", "#!/bin/sh\necho should not run\n", 0644);
  CommandResult r = RunExec({"--pack-dir", pack.path()}, {"/pack/script.sh"});
  EXPECT_EQ(r.exit_code, 126) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "");
}

TEST(ExecExitCode, TimeoutGives124AndTimedOutStatus) {
  CommandResult r = RunExec({"--timeout", "1", "--json"}, {"/bin/sleep", "30"});
  EXPECT_EQ(r.exit_code, 124) << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "timed_out");
  EXPECT_EQ(j["timed_out"], true);
  EXPECT_TRUE(j["exit_code"].is_null());
  EXPECT_GE(j["duration_ms"].get<int64_t>(), 900);
  // sleep dies of the SIGTERM: no need for the kill grace.
  EXPECT_LT(j["duration_ms"].get<int64_t>(), 4000);
}

TEST(ExecExitCode, FractionalTimeoutIsHonoured) {
  CommandResult r = RunExec({"--timeout", "0.3", "--json"}, {"/bin/sleep", "30"});
  EXPECT_EQ(r.exit_code, 124) << r.stderr_text;
  EXPECT_GE(r.Json()["duration_ms"].get<int64_t>(), 250);
  EXPECT_LT(r.Json()["duration_ms"].get<int64_t>(), 3000);
}

// ---- Output. ----

TEST(ExecOutput, StdoutAndStderrAreSeparate) {
  CommandResult r = RunExec({}, ShellCommand("echo to-out; echo to-err >&2; echo more-out"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "to-out\nmore-out\n");
  EXPECT_EQ(r.stderr_text, "to-err\n");
}

TEST(ExecOutput, JsonCarriesStdoutAndStderrSeparately) {
  CommandResult r = RunExec({"--json"}, ShellCommand("printf out; printf err >&2"));
  EXPECT_EQ(r.exit_code, 0);
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["stdout"], "out");
  EXPECT_EQ(j["stderr"], "err");
  EXPECT_EQ(r.stderr_text, "");  // nothing else on packvisor's own stderr
}

TEST(ExecOutput, LargeOutputOnBothStreamsIsDrainedConcurrently) {
  // 1 MiB to stderr before anything to stdout: a supervisor reading the streams one after the
  // other would deadlock on the full stderr pipe.
  CommandResult r = RunExec({"--timeout", "20"},
                            {"/usr/bin/python3", "-c",
                             "import sys; sys.stderr.write('e' * (1 << 20)); sys.stderr.flush(); "
                             "sys.stdout.write('o' * (1 << 20)); sys.stdout.flush()"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text.substr(0, 200);
  EXPECT_EQ(r.stdout_text, std::string(1 << 20, 'o'));
  EXPECT_EQ(r.stderr_text, std::string(1 << 20, 'e'));
}

TEST(ExecOutput, ActionStdinIsAnEmptyPipe) {
  CommandResult r =
      RunExec({}, ShellCommand("cat; echo \"[$?]\"; readlink /proc/self/fd/0 /proc/self/fd/1"));
  EXPECT_EQ(r.exit_code, 0);
  std::vector<std::string> lines = Lines(r.stdout_text);
  ASSERT_EQ(lines.size(), 3u) << r.stdout_text;
  EXPECT_EQ(lines[0], "[0]");
  EXPECT_THAT(lines[1], StartsWith("pipe:["));
  EXPECT_THAT(lines[2], StartsWith("pipe:["));
}

// ---- The result object. ----

TEST(ExecJson, HasExactlyTheKeysOfTheResultObject) {
  CommandResult r = RunExec({"--json"}, ShellCommand("echo hi"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  nlohmann::json j = r.Json();  // throws (fails the test) unless stdout is exactly one object
  ASSERT_TRUE(j.is_object());
  std::set<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
  std::set<std::string> expected = {"execution_id",
                                    "action_ref",
                                    "status",
                                    "exit_code",
                                    "signal",
                                    "result",
                                    "stdout",
                                    "stderr",
                                    "stdout_truncated",
                                    "stderr_truncated",
                                    "stdout_bytes_truncated",
                                    "stderr_bytes_truncated",
                                    "timed_out",
                                    "duration_ms",
                                    "env_build_ms",
                                    "error",
                                    "usage"};
  EXPECT_EQ(keys, expected);
  ASSERT_TRUE(j["usage"].is_object());
  std::set<std::string> usage_keys;
  for (auto it = j["usage"].begin(); it != j["usage"].end(); ++it) usage_keys.insert(it.key());
  EXPECT_EQ(usage_keys, (std::set<std::string>{"cpu_ms", "max_rss_kb"}));

  EXPECT_TRUE(j["execution_id"].is_string());
  EXPECT_FALSE(j["execution_id"].get<std::string>().empty());
  EXPECT_TRUE(j["action_ref"].is_string());
  EXPECT_EQ(j["stdout"], "hi\n");
  EXPECT_EQ(j["stdout_truncated"], false);
  EXPECT_EQ(j["stderr_truncated"], false);
  EXPECT_EQ(j["stdout_bytes_truncated"], 0);
  EXPECT_EQ(j["stderr_bytes_truncated"], 0);
  EXPECT_EQ(j["timed_out"], false);
  EXPECT_TRUE(j["duration_ms"].is_number_integer());
  EXPECT_GE(j["duration_ms"].get<int64_t>(), 0);
  EXPECT_EQ(j["env_build_ms"], 0);  // exec builds no environment
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_TRUE(j["result"].is_null());
  EXPECT_TRUE(j["usage"]["cpu_ms"].is_number_integer());
  EXPECT_GT(j["usage"]["max_rss_kb"].get<int64_t>(), 0);
}

TEST(ExecJson, ExecutionIdsDiffer) {
  CommandResult a = RunExec({"--json"}, {"/bin/true"});
  CommandResult b = RunExec({"--json"}, {"/bin/true"});
  EXPECT_NE(a.Json()["execution_id"], b.Json()["execution_id"]);
}

// ---- The action's environment. ----

std::map<std::string, std::string> ParseEnv(const std::string& text) {
  std::map<std::string, std::string> env;
  for (const std::string& line : Lines(text)) {
    size_t eq = line.find('=');
    env[line.substr(0, eq)] = eq == std::string::npos ? "" : line.substr(eq + 1);
  }
  return env;
}

TEST(ExecEnvironment, ContainsExactlyTheSandboxVariables) {
  std::string marker = UniqueMarker("leak");
  CommandResult r = RunPackvisor({"exec", "--json", "--", "/usr/bin/env"}, {},
                                 {"PACKVISOR_TEST_SECRET=" + marker, "AWS_SECRET_ACCESS_KEY=x"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  nlohmann::json j = r.Json();
  std::string text = j["stdout"];
  std::map<std::string, std::string> env = ParseEnv(text);
  std::set<std::string> names;
  for (const auto& [name, value] : env) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{"PATH", "HOME", "LANG", "TMPDIR", "PACKVISOR_EXEC_ID",
                                          "ATTUNE_EXEC_ID"}))
      << text;
  EXPECT_EQ(env["PATH"], "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(env["HOME"], "/tmp");
  EXPECT_EQ(env["LANG"], "C.UTF-8");
  EXPECT_EQ(env["TMPDIR"], "/tmp");
  EXPECT_EQ(env["PACKVISOR_EXEC_ID"], j["execution_id"].get<std::string>());
  EXPECT_EQ(env["ATTUNE_EXEC_ID"], env["PACKVISOR_EXEC_ID"]);  // for the original's packs
  EXPECT_THAT(text, ::testing::Not(HasSubstr(marker)));
}

TEST(ExecEnvironment, PathStartsWithEnvBinWhenTheEnvHasABinDirectory) {
  TempDir env_dir;
  env_dir.Write("bin/hello-tool", "#!/bin/sh\necho hello from env\n", 0755);
  env_dir.Chown(100000, 100000);
  CommandResult r =
      RunExec({"--env-dir", env_dir.path()}, ShellCommand("echo \"$PATH\"; hello-tool"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::vector<std::string> lines = Lines(r.stdout_text);
  ASSERT_EQ(lines.size(), 2u) << r.stdout_text;
  EXPECT_EQ(lines[0], "/env/bin:/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(lines[1], "hello from env");
}

// ---- Ids and privileges. ----

TEST(ExecIdentity, ActionRunsAsUidAndGid1000WithoutOtherGroups) {
  CommandResult r = RunExec({}, ShellCommand("id -u; id -g; id -G; id -un"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "1000\n1000\n1000\naction\n");
}

TEST(ExecIdentity, IdMapsPointAtTheUnprivilegedHostId) {
  CommandResult r =
      RunExec({}, ShellCommand("cat /proc/self/uid_map; echo --; cat /proc/self/gid_map"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  size_t sep = r.stdout_text.find("--\n");
  ASSERT_NE(sep, std::string::npos) << r.stdout_text;
  EXPECT_EQ(Squeeze(r.stdout_text.substr(0, sep)), "1000 100000 1");
  EXPECT_EQ(Squeeze(r.stdout_text.substr(sep + 3)), "1000 100000 1");
}

std::map<std::string, std::string> StatusFields(const std::string& status) {
  std::map<std::string, std::string> fields;
  for (const std::string& line : Lines(status)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    fields[line.substr(0, colon)] = Squeeze(line.substr(colon + 1));
  }
  return fields;
}

TEST(ExecPrivileges, StatusShowsNoCapabilitiesNoNewPrivsAndSeccompFilter) {
  CommandResult r = RunExec({}, {"/bin/cat", "/proc/self/status"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::map<std::string, std::string> status = StatusFields(r.stdout_text);
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    ASSERT_TRUE(status.count(cap)) << cap << " missing from\n" << r.stdout_text;
    EXPECT_EQ(status[cap], "0000000000000000") << cap;
  }
  EXPECT_EQ(status["NoNewPrivs"], "1");
  EXPECT_EQ(status["Seccomp"], "2");
  EXPECT_EQ(status["Uid"], "1000 1000 1000 1000");
  EXPECT_EQ(status["Gid"], "1000 1000 1000 1000");
}

TEST(ExecPrivileges, DeniedSyscallsFailInsideTheSandbox) {
  // unshare(1) uses unshare(CLONE_NEWUSER): seccomp says EPERM even where userns is allowed.
  CommandResult r = RunExec({}, ShellCommand("unshare -U true; echo \"rc=$?\""));
  EXPECT_THAT(r.stdout_text, HasSubstr("rc=1")) << r.stderr_text;
  EXPECT_THAT(r.stderr_text, HasSubstr("Operation not permitted"));
}

TEST(ExecDescriptors, OnlyStandardDescriptorsReachTheAction) {
  // A descriptor without close-on-exec in the caller is inherited by packvisor: the sandbox must
  // not pass it on.
  int leak = open("/dev/null", O_RDONLY);
  ASSERT_GE(leak, 0);
  ASSERT_GE(dup2(leak, 9), 0);
  CommandResult r = RunExec(
      {}, {"/usr/bin/python3", "-c",
           "import os\n"
           "names = os.listdir('/proc/self/fd')\n"
           "# the descriptor listdir used is closed again by now\n"
           "live = sorted((int(n) for n in names if os.path.lexists('/proc/self/fd/' + n)))\n"
           "print(' '.join(str(fd) for fd in live))\n"
           "print(len(names))\n"});
  close(9);
  close(leak);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::vector<std::string> lines = Lines(r.stdout_text);
  ASSERT_EQ(lines.size(), 2u) << r.stdout_text;
  EXPECT_EQ(lines[0], "0 1 2");
  EXPECT_EQ(lines[1], "4") << "0, 1, 2 and the listing's own directory descriptor";
}

TEST(ExecDescriptors, ShellSeesOnlyStandardDescriptors) {
  // No process is spawned: the glob's own directory descriptor is the only extra one, and it is
  // gone when the loop body runs.
  CommandResult r = RunExec(
      {}, ShellCommand("for f in /proc/self/fd/*; do [ -e \"$f\" ] && echo \"${f##*/}\"; done; "
                       "true"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "0\n1\n2\n");
}

// ---- Bad input: one line, the documented code, nothing left behind. ----

class ExecBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    marker_ = UniqueMarker("pvbad");
    mounts_before_ = HostMountsOutsideTestScratch();
  }

  // The command that would run if packvisor wrongly launched anything: visible by its marker.
  std::vector<std::string> MarkedCommand() const {
    return {"/bin/sh", "-c", "sleep 3; : " + marker_};
  }

  void ExpectCleanFailure(const CommandResult& r, int expected_exit, const std::string& needle) {
    EXPECT_EQ(r.exit_code, expected_exit) << r.stderr_text;
    EXPECT_EQ(r.stdout_text, "");
    std::vector<std::string> lines = Lines(r.stderr_text);
    EXPECT_EQ(lines.size(), 1u) << "stderr:\n" << r.stderr_text;
    EXPECT_FALSE(r.stderr_text.empty());
    EXPECT_EQ(r.stderr_text.back(), '\n');
    EXPECT_THAT(r.stderr_text, HasSubstr(needle));
    EXPECT_THAT(WaitForNoProcessesWithMarker(marker_, 200), ::testing::IsEmpty());
    EXPECT_THAT(EntriesContaining("/tmp", marker_), ::testing::IsEmpty());
    EXPECT_EQ(HostMountsOutsideTestScratch(), mounts_before_);
  }

  std::string marker_;
  std::vector<std::string> mounts_before_;
};

TEST_F(ExecBadInput, MissingPackDirIsRejected) {
  std::string missing = "/tmp/" + marker_ + "-pack";
  std::vector<std::string> args = {"exec", "--pack-dir", missing, "--"};
  for (const auto& a : MarkedCommand()) args.push_back(a);
  CommandResult r = RunPackvisor(args);
  ExpectCleanFailure(r, 125, missing);
}

TEST_F(ExecBadInput, PackDirThatIsAFileIsRejected) {
  TempDir dir;
  dir.Write(marker_ + "-file", "not a pack");
  std::vector<std::string> args = {"exec", "--pack-dir", dir.Path(marker_ + "-file"), "--"};
  for (const auto& a : MarkedCommand()) args.push_back(a);
  CommandResult r = RunPackvisor(args);
  ExpectCleanFailure(r, 125, "not a directory");
}

TEST_F(ExecBadInput, PackDirThatIsASymlinkIsRejected) {
  TempDir dir;
  std::filesystem::create_directory(dir.Path("real"));
  std::filesystem::create_directory_symlink(dir.Path("real"), dir.Path("link"));
  std::vector<std::string> args = {"exec", "--pack-dir", dir.Path("link"), "--"};
  for (const auto& a : MarkedCommand()) args.push_back(a);
  CommandResult r = RunPackvisor(args);
  ExpectCleanFailure(r, 125, "symbolic link");
}

TEST_F(ExecBadInput, RelativePackDirIsRejected) {
  std::string relative = marker_ + "/pack";
  std::vector<std::string> args = {"exec", "--pack-dir", relative, "--"};
  for (const auto& a : MarkedCommand()) args.push_back(a);
  CommandResult r = RunPackvisor(args);
  ExpectCleanFailure(r, 125, relative);
}

TEST_F(ExecBadInput, PackDirWithDotDotIsRejected) {
  TempDir dir;
  std::filesystem::create_directory(dir.Path("a"));
  std::vector<std::string> args = {"exec", "--pack-dir", dir.path() + "/a/../a", "--"};
  for (const auto& a : MarkedCommand()) args.push_back(a);
  CommandResult r = RunPackvisor(args);
  ExpectCleanFailure(r, 125, "/a/../a");
}

TEST_F(ExecBadInput, MissingEnvDirIsRejected) {
  std::string missing = "/tmp/" + marker_ + "-env";
  std::vector<std::string> args = {"exec", "--env-dir", missing, "--"};
  for (const auto& a : MarkedCommand()) args.push_back(a);
  CommandResult r = RunPackvisor(args);
  ExpectCleanFailure(r, 125, missing);
}

TEST_F(ExecBadInput, UnknownFlagIsRejected) {
  std::vector<std::string> args = {"exec", "--no-such-flag", "--"};
  for (const auto& a : MarkedCommand()) args.push_back(a);
  CommandResult r = RunPackvisor(args);
  ExpectCleanFailure(r, 125, "--no-such-flag");
}

TEST_F(ExecBadInput, UnknownNetworkModeIsRejected) {
  std::vector<std::string> args = {"exec", "--network", "bridge", "--"};
  for (const auto& a : MarkedCommand()) args.push_back(a);
  CommandResult r = RunPackvisor(args);
  ExpectCleanFailure(r, 125, "bridge");
}

TEST_F(ExecBadInput, NonPositiveTimeoutIsRejected) {
  for (const char* timeout : {"0", "-1", "nan"}) {
    std::vector<std::string> args = {"exec", "--timeout", timeout, "--"};
    for (const auto& a : MarkedCommand()) args.push_back(a);
    CommandResult r = RunPackvisor(args);
    SCOPED_TRACE(timeout);
    ExpectCleanFailure(r, 125, "timeout");
  }
}

TEST_F(ExecBadInput, MissingCommandIsRejected) {
  CommandResult r = RunPackvisor({"exec", "--pack-dir", "/tmp/" + marker_});
  ExpectCleanFailure(r, 125, "error");
}

TEST_F(ExecBadInput, NonexistentCommandGives127AndOneLine) {
  std::string command = "/usr/bin/" + marker_;
  CommandResult r = RunPackvisor({"exec", "--", command, marker_});
  ExpectCleanFailure(r, 127, "not found");
}

TEST_F(ExecBadInput, NonexistentCommandErrorNamesTheCommand) {
  // SPEC §10: the one-line error says what and where.
  std::string command = "no-such-tool-" + marker_;
  CommandResult r = RunPackvisor({"exec", "--", command});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_THAT(r.stderr_text, HasSubstr(command));
}

}  // namespace
}  // namespace packvisor::testing
