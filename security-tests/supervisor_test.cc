// Catalog group H (the supervisor interface and the environment lifecycle), through the real
// `packvisor exec` / `packvisor run` / `packvisor check`: signalling the supervisor, the clock,
// forged logs and results, poisoned environments, install steps, concurrent load, the sandbox
// writing its own policy, and host settings that weaken everything.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
#include <regex>
#include <set>
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

// A temporary packs/envs/state world with its own config file, for `packvisor run`.
class World {
 public:
  std::string Path(const std::string& relative) const { return dir_.Path(relative); }
  void Write(const std::string& relative, const std::string& content, int mode = 0644) const {
    dir_.Write(relative, content, mode);
  }
  void WritePack(const std::string& pack) const {
    Write("packs/" + pack + "/pack.yaml", "ref: " + pack + "\nversion: 1.0.0\ndescription: t\n");
  }
  std::string WriteConfig(const std::string& extra = "") const {
    Write("packvisor.toml", "packs_base_dir = \"" + Path("packs") + "\"\nruntime_envs_dir = \"" +
                                Path("envs") + "\"\nstate_dir = \"" + Path("state") + "\"\n" +
                                extra);
    return Path("packvisor.toml");
  }
  nlohmann::json Run(const std::vector<std::string>& args, CommandResult* raw = nullptr) const {
    std::vector<std::string> full = {"--config", Path("packvisor.toml"), "run"};
    full.insert(full.end(), args.begin(), args.end());
    full.push_back("--json");
    CommandResult run = RunPackvisor(full);
    if (raw != nullptr) *raw = run;
    return ParseResult(run);
  }
  CommandResult Command(const std::vector<std::string>& args) const {
    std::vector<std::string> full = {"--config", Path("packvisor.toml")};
    full.insert(full.end(), args.begin(), args.end());
    return RunPackvisor(full);
  }

 private:
  TempDir dir_;
};

// lstat-level identity and content of one host file ("missing" when absent).
std::string DescribeFile(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return "missing";
  std::ostringstream out;
  out << st.st_ino << " " << st.st_uid << ":" << st.st_gid << " " << std::oct << st.st_mode
      << std::dec << " " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << " "
      << testing::ReadFileOrEmpty(path);
  return out.str();
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "security tests need root (packvisor sets up namespaces)";
  }
  nlohmann::json Exec(const std::vector<std::string>& argv, CommandResult* raw = nullptr,
                      const std::vector<std::string>& options = {}) {
    std::vector<std::string> args = {"exec", "--pack-dir", pack_.path(), "--timeout", "60"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--json");
    args.push_back("--");
    args.insert(args.end(), argv.begin(), argv.end());
    CommandResult run = RunPackvisor(args);
    if (raw != nullptr) *raw = run;
    return ParseResult(run);
  }
  TempDir pack_;
};

// --- H63: signalling the supervisor
// ---------------------------------------------------------------

TEST_F(SupervisorTest, H63_kill_from_inside_reaches_only_sandbox_pids) {
  HostGuard guard;
  // A host process that must survive; its pid and ours are handed to the attacker.
  pid_t sentinel = fork();
  if (sentinel == 0) {
    for (;;) pause();
  }
  pack_.Write("h63_signals.py", Script("h63_signals.py"));
  const std::string victim_marker = testing::UniqueMarker("pv-h63-victim");
  CommandResult victim_raw;
  std::thread victim([&] {
    victim_raw = RunPackvisor({"exec", "--timeout", "60", "--json", "--", "/bin/sh", "-c",
                               "sleep 1.5; echo \"$0\"", victim_marker});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CommandResult raw;
  nlohmann::json result = Exec({"/usr/bin/python3", "/pack/h63_signals.py",
                                std::to_string(sentinel), std::to_string(getpid())},
                               &raw);
  victim.join();
  bool sentinel_alive = waitpid(sentinel, nullptr, WNOHANG) == 0;
  kill(sentinel, SIGKILL);
  waitpid(sentinel, nullptr, 0);

  std::string out = Field(result, "stdout");
  ASSERT_NE(out.find("reached pid "), std::string::npos) << result.dump();
  // kill(-1) reached the sandbox sibling: the attack was real.
  EXPECT_NE(out.find("kill-minus-one sent\n"), std::string::npos) << out;
  EXPECT_NE(out.find("sibling signal 9\n"), std::string::npos) << out;
  // Host pids do not exist in the sandbox's pid namespace.
  EXPECT_NE(
      out.find("kill-host-pid " + std::to_string(sentinel) + " errno " + std::to_string(ESRCH)),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("survived\n"), std::string::npos) << out;
  EXPECT_EQ(result.value("status", ""), "succeeded") << "the supervisor did not report normally";
  EXPECT_TRUE(sentinel_alive) << "a host process was killed from the sandbox";
  nlohmann::json victim_result = ParseResult(victim_raw);
  EXPECT_EQ(victim_result.value("status", ""), "succeeded") << victim_result.dump();
  EXPECT_EQ(Field(victim_result, "stdout"), victim_marker + "\n");
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- H64: the clock
// ---------------------------------------------------------------------------------

// The syscall-level rows are B18_privileged_syscalls/{settimeofday,clock_settime,adjtimex,
// clock_adjtime} in seccomp_probe_test.cc; this is the interpreter-level attack plus a time
// namespace, with the host clock checked.
TEST_F(SupervisorTest, H64_clock_setting_and_time_namespace_are_denied) {
  HostGuard guard;
  pack_.Write("h64_clock.py", Script("h64_clock.py"));
  timespec before{};
  clock_gettime(CLOCK_REALTIME, &before);
  CommandResult raw;
  nlohmann::json result = Exec({"/usr/bin/python3", "/pack/h64_clock.py"}, &raw);
  timespec after{};
  clock_gettime(CLOCK_REALTIME, &after);
  std::string out = Field(result, "stdout");
  ASSERT_NE(out.find("reached\n"), std::string::npos) << result.dump();
  for (const char* call :
       {"clock_settime", "settimeofday", "adjtimex", "clock_adjtime", "unshare_newtime"}) {
    EXPECT_NE(out.find(std::string(call) + " errno " + std::to_string(EPERM) + "\n"),
              std::string::npos)
        << call << " was not denied with EPERM: " << out;
  }
  EXPECT_GE(after.tv_sec, before.tv_sec);
  EXPECT_LE(after.tv_sec - before.tv_sec, 30);
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- H65: log forging and terminal escapes
// -------------------------------------------------------------

TEST_F(SupervisorTest, H65_forged_log_lines_and_escapes_stay_inside_the_output_fields) {
  HostGuard guard;
  pack_.Write("h65_forge_output.py", Script("h65_forge_output.py"));
  CommandResult raw =
      RunPackvisor({"--log-level", "debug", "exec", "--pack-dir", pack_.path(), "--json", "--",
                    "/usr/bin/python3", "/pack/h65_forge_output.py"});
  // --json: exactly one line, the result object, with every control character escaped.
  std::vector<std::string> lines = testing::Lines(raw.stdout_text);
  ASSERT_EQ(lines.size(), 1u) << raw.stdout_text;
  for (char c : raw.stdout_text.substr(0, raw.stdout_text.size() - 1)) {
    EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        << "raw control byte " << static_cast<int>(c) << " in the --json output";
  }
  nlohmann::json result = ParseResult(raw);
  std::string out = Field(result, "stdout");
  std::string err = Field(result, "stderr");
  ASSERT_NE(out.find("reached\n"), std::string::npos) << result.dump();
  // The action's bytes are kept verbatim inside its own fields.
  for (const std::string* field : {&out, &err}) {
    EXPECT_NE(field->find("\x1b[2J"), std::string::npos);
    EXPECT_NE(field->find("packvisor: error: forged by the action\n"), std::string::npos);
    EXPECT_NE(field->find("{}{}{:>999999}%n%s%s\r"), std::string::npos) << "fmt text altered";
    EXPECT_NE(field->find(std::string("\0after-nul", 10)), std::string::npos);
  }
  EXPECT_EQ(result.value("status", ""), "succeeded") << result.dump();
  // The log (stderr of packvisor) has none of it: no ESC, no forged line, no fmt failure.
  EXPECT_EQ(raw.stderr_text.find('\x1b'), std::string::npos) << raw.stderr_text;
  EXPECT_EQ(raw.stderr_text.find("forged"), std::string::npos) << raw.stderr_text;
  EXPECT_EQ(raw.stderr_text.find("action=other.pack"), std::string::npos) << raw.stderr_text;
  EXPECT_EQ(raw.stderr_text.find("format"), std::string::npos) << raw.stderr_text;
  EXPECT_NE(raw.stderr_text.find("debug"), std::string::npos) << "no debug log to check";
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- H66: forging the result
// -------------------------------------------------------------------------

TEST_F(SupervisorTest, H66_fake_success_output_does_not_change_the_real_status) {
  HostGuard guard;
  pack_.Write("h66_forge_result.py", Script("h66_forge_result.py"));
  CommandResult raw;
  nlohmann::json failed = Exec({"/usr/bin/python3", "/pack/h66_forge_result.py", "3"}, &raw);
  EXPECT_NE(Field(failed, "stdout").find("\"status\": \"succeeded\""), std::string::npos)
      << "the forgery was not printed: " << failed.dump();
  EXPECT_EQ(failed.value("status", ""), "failed") << failed.dump();
  EXPECT_EQ(failed.value("exit_code", -1), 3);
  EXPECT_EQ(raw.exit_code, 3);
  CommandResult segv_raw;
  nlohmann::json segv = Exec({"/usr/bin/python3", "/pack/h66_forge_result.py", "segv"}, &segv_raw);
  EXPECT_EQ(segv.value("status", ""), "failed") << segv.dump();
  EXPECT_EQ(segv.value("signal", nlohmann::json()), nlohmann::json(SIGSEGV));
  EXPECT_EQ(segv_raw.exit_code, 128 + SIGSEGV);
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text, segv_raw.stdout_text});
}

TEST_F(SupervisorTest, H66_json_action_result_is_parsed_only_after_a_real_success) {
  HostGuard guard;
  World world;
  world.WritePack("forge");
  world.Write("packs/forge/actions/h66_forge_result.py", Script("h66_forge_result.py"));
  world.Write("packs/forge/actions/fail.yaml",
              "name: fail\nrunner_type: shell\nentry_point: fail.sh\noutput_format: json\n");
  world.Write("packs/forge/actions/fail.sh",
              "exec /usr/bin/python3 /pack/actions/h66_forge_result.py 3\n");
  world.WriteConfig();
  CommandResult raw;
  nlohmann::json result = world.Run({"forge.fail"}, &raw);
  EXPECT_EQ(result.value("status", ""), "failed") << result.dump();
  EXPECT_EQ(result.value("exit_code", -1), 3);
  EXPECT_TRUE(result["result"].is_null()) << "a failed action's forged result was parsed";
  EXPECT_EQ(raw.exit_code, 3);
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// Output is bytes, not text: an action printing invalid UTF-8 must still get a result object,
// not crash the supervisor (which would leave the caller without any status).
TEST_F(SupervisorTest, H66_invalid_utf8_output_still_yields_a_result) {
  HostGuard guard;
  CommandResult raw;
  nlohmann::json result = Exec({"/bin/sh", "-c",
                                "printf 'ok \\377\\376 \\300\\n'; printf '\\355\\240\\200\\n' >&2; "
                                "exit 7"},
                               &raw);
  EXPECT_NE(raw.exit_code, 128 + SIGABRT) << "packvisor aborted: " << raw.stderr_text;
  EXPECT_EQ(result.value("status", ""), "failed") << raw.stderr_text;
  EXPECT_EQ(result.value("exit_code", -1), 7);
  EXPECT_EQ(raw.exit_code, 7);
  EXPECT_NE(Field(result, "stdout").find("ok "), std::string::npos);
  guard.ExpectUnchanged();
}

// --- H67: poisoning the environment
// ----------------------------------------------------------------

TEST_F(SupervisorTest, H67_planted_pth_code_runs_only_inside_sandboxes) {
  HostGuard guard;
  World world;
  const std::string marker = testing::UniqueMarker("pv-h67");
  const std::string pwned = "/var/tmp/pwned-" + marker;
  world.WritePack("poison");
  world.Write("packs/poison/requirements.txt", "# no dependencies\n");
  world.Write("packs/poison/actions/h67_plant.py", Script("h67_plant.py"));
  world.Write("packs/poison/actions/probe.yaml",
              "name: probe\nrunner_type: python\nentry_point: h67_plant.py\nparameters:\n"
              "  mode:\n    type: string\n    required: true\n  marker:\n    type: string\n");
  world.WriteConfig();
  Config config = *LoadConfigFile(world.Path("packvisor.toml"));

  CommandResult raw;
  nlohmann::json planted =
      world.Run({"poison.probe", "--param", "mode=plant", "--param", "marker=" + marker}, &raw);
  ASSERT_NE(Field(planted, "stdout").find("planted "), std::string::npos) << planted.dump();
  // Everything an operator does as root on the host next must not run the planted code.
  std::vector<CommandResult> host_side = {
      world.Command({"env", "list"}), world.Command({"pack", "list"}),
      world.Command({"env", "setup", "poison"}),
      world.Command({"pack", "validate", world.Path("packs/poison")})};
  nlohmann::json used = world.Run({"poison.probe", "--param", "mode=check"}, &raw);
  std::string used_out = Field(used, "stdout");
  EXPECT_NE(used_out.find("planted-pth True"), std::string::npos) << used.dump();
  // A changed manifest rebuilds the environment in the sandbox.
  world.Write("packs/poison/requirements.txt", "# changed " + marker + "\n");
  nlohmann::json rebuilt = world.Run({"poison.probe", "--param", "mode=check"}, &raw);
  std::string rebuilt_out = Field(rebuilt, "stdout");
  EXPECT_EQ(rebuilt.value("status", ""), "succeeded") << rebuilt.dump();
  EXPECT_NE(rebuilt_out.find("planted-pth False"), std::string::npos)
      << "the planted file survived the rebuild: " << rebuilt_out;

  // Every time the planted code ran, it ran as the sandbox user, mapped to one non-root host id
  // from sandbox.uid_range.
  int executions = 0;
  std::set<uid_t> host_uids;
  std::regex expected("^uid=1000 euid=1000 uid_map=\\['1000', '(\\d+)', '1'\\]");
  for (const std::string* text : {&used_out, &rebuilt_out}) {
    for (const std::string& line : testing::Lines(*text)) {
      if (line.rfind("uid=", 0) != 0) continue;
      ++executions;
      std::smatch m;
      if (!std::regex_search(line, m, expected)) {
        ADD_FAILURE() << "planted code ran outside the sandbox user: " << line;
        continue;
      }
      uid_t host_uid = static_cast<uid_t>(std::stoul(m[1].str()));
      EXPECT_GE(host_uid, config.sandbox.uid_range_first) << line;
      EXPECT_LE(host_uid, config.sandbox.uid_range_last) << line;
      host_uids.insert(host_uid);
    }
  }
  EXPECT_GE(executions, 1) << "the planted code never ran (attack not exercised): " << used_out;
  EXPECT_FALSE(std::filesystem::exists(pwned)) << "planted code wrote a host file";
  unlink(pwned.c_str());
  // The rebuilt environment was made by the sandbox user, not by root.
  ASSERT_EQ(host_uids.size(), 1u);
  const uid_t host_uid = *host_uids.begin();
  std::error_code ec;
  std::string env = world.Path("envs/poison/python");
  ASSERT_TRUE(std::filesystem::is_directory(env)) << "no environment at " << env;
  for (auto it = std::filesystem::recursive_directory_iterator(env, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (lstat(it->path().c_str(), &st) != 0) continue;
    EXPECT_EQ(st.st_uid, host_uid) << it->path() << " is not owned by the sandbox user";
    EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u) << it->path();
  }
  for (const CommandResult& c : host_side) {
    EXPECT_EQ(c.stdout_text.find("uid=0"), std::string::npos) << c.stdout_text;
  }
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- H68: races around environment creation ------------------------------------------------------

TEST_F(SupervisorTest, H68_concurrent_first_runs_all_see_one_complete_environment) {
  HostGuard guard;
  World world;
  world.WritePack("race");
  world.Write("packs/race/actions/env.yaml",
              "name: env\nrunner_type: python\nentry_point: env.py\n");
  world.Write("packs/race/actions/env.py",
              "import os, sys\nst = os.stat('/env')\n"
              "print('env', st.st_ino, sys.executable, os.path.exists('/env/pyvenv.cfg'))\n");
  world.WriteConfig();
  std::vector<std::string> outs(6);
  std::vector<std::thread> runs;
  for (size_t i = 0; i < outs.size(); ++i) {
    runs.emplace_back([&, i] { outs[i] = Field(world.Run({"race.env"}), "stdout"); });
  }
  for (auto& t : runs) t.join();
  std::set<std::string> distinct(outs.begin(), outs.end());
  EXPECT_EQ(distinct.size(), 1u) << "runs saw different environments";
  for (const std::string& out : outs) {
    EXPECT_NE(out.find("/env/bin/python3 True\n"), std::string::npos) << out;
  }
  EXPECT_TRUE(testing::EntriesContaining(world.Path("envs/race"), "staging").empty());
  EXPECT_TRUE(testing::EntriesContaining(world.Path("envs/race"), "tmp").empty());
  guard.ExpectUnchanged();
}

// --- H69: supply chain at install time
// -------------------------------------------------------------

// A hostile install step (a runtime whose dependency command stands in for a package's install
// script) runs in the build sandbox: as the sandbox user, unable to touch the host or the pack.
TEST_F(SupervisorTest, H69_install_step_runs_sandboxed_as_the_unprivileged_user) {
  HostGuard guard;
  World world;
  const std::string marker = testing::UniqueMarker("pv-h69");
  const std::string pwned = "/var/tmp/pwned-" + marker;
  world.WritePack("supply");
  world.Write("packs/supply/deps.txt", "evil-package\n");
  world.Write("packs/supply/actions/a.yaml", "name: a\nrunner_type: hostile\nentry_point: a.sh\n");
  world.Write("packs/supply/actions/a.sh", "cat /env/install-report\n");
  world.Write("runtimes/hostile.toml",
              "name = \"hostile\"\n[interpreter]\nbinary = \"/bin/sh\"\nfile_extension = \".sh\"\n"
              "[environment]\ncreate_command = [\"/bin/mkdir\", \"-p\", \"{env_dir}/bin\"]\n"
              "interpreter_path = \"/bin/sh\"\n[dependencies]\nmanifest_file = \"deps.txt\"\n"
              "install_command = [\"/bin/sh\", \"-c\", \"echo install-uid $(id -u) map $(cat "
              "/proc/self/uid_map) > {env_dir}/install-report; touch " +
                  pwned +
                  " && echo host-write >> {env_dir}/install-report; echo x >> "
                  "{manifest_path} && echo pack-write >> {env_dir}/install-report; true\"]\n");
  world.WriteConfig("runtimes_dir = \"" + world.Path("runtimes") + "\"\n");
  Config config = *LoadConfigFile(world.Path("packvisor.toml"));
  std::string pack_before = testing::TreeFingerprint(world.Path("packs"));
  CommandResult raw;
  nlohmann::json result = world.Run({"supply.a"}, &raw);
  std::string out = Field(result, "stdout");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("install-uid 1000 map 1000 (\\d+) 1")))
      << "the install step did not run as the sandbox user: " << result.dump();
  EXPECT_GE(std::stoul(m[1].str()), config.sandbox.uid_range_first);
  EXPECT_LE(std::stoul(m[1].str()), config.sandbox.uid_range_last);
  EXPECT_EQ(out.find("host-write"), std::string::npos) << out;
  EXPECT_EQ(out.find("pack-write"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(pwned));
  unlink(pwned.c_str());
  EXPECT_EQ(testing::TreeFingerprint(world.Path("packs")), pack_before);
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- H70: overloading the supervisor
// --------------------------------------------------------------

TEST_F(SupervisorTest, H70_twenty_concurrent_runs_all_finish_correctly) {
  HostGuard guard;
  constexpr int kRuns = 20;
  std::vector<std::string> markers(kRuns);
  std::vector<CommandResult> runs(kRuns);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRuns; ++i) {
    markers[i] = testing::UniqueMarker("pv-h70-" + std::to_string(i));
    threads.emplace_back([&, i] {
      runs[i] = RunPackvisor({"exec", "--timeout", "60", "--json", "--", "/bin/sh", "-c",
                              "sleep 0.3; head -c 100000 /dev/zero | tr '\\0' x | wc -c; "
                              "echo \"$0\"",
                              markers[i]});
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kRuns; ++i) {
    nlohmann::json result = ParseResult(runs[i]);
    EXPECT_EQ(result.value("status", ""), "succeeded") << i << ": " << runs[i].stderr_text;
    EXPECT_EQ(Field(result, "stdout"), "100000\n" + markers[i] + "\n") << i;
  }
  guard.ExpectUnchanged();
}

// --- H71: the sandbox writes its own policy
// ----------------------------------------------------------

TEST_F(SupervisorTest, H71_sandbox_cannot_write_its_policy_and_forged_markers_are_ignored) {
  HostGuard guard;
  World world;
  world.WritePack("policy");
  world.Write("packs/policy/requirements.txt", "# v1\n");
  world.Write("packs/policy/actions/h71_policy.py", Script("h71_policy.py"));
  world.Write("packs/policy/actions/probe.yaml",
              "name: probe\nrunner_type: python\nentry_point: h71_policy.py\nparameters:\n"
              "  targets:\n    type: array\n  plant:\n    type: boolean\n    default: true\n");
  world.Write("runtimes/other.toml",
              "name = \"other\"\n[interpreter]\nbinary = \"/bin/sh\"\nfile_extension = \".x\"\n");
  world.WriteConfig("runtimes_dir = \"" + world.Path("runtimes") + "\"\n");
  const std::string ready = world.Path("envs/policy/.python.ready");
  nlohmann::json targets = {world.Path("packvisor.toml"),
                            world.Path("runtimes/other.toml"),
                            world.Path("runtimes/python.toml"),
                            ready,
                            "/env/../.python.ready",
                            "/etc/packvisor/packvisor.toml",
                            "/pack/actions/probe.yaml",
                            "/pack/requirements.txt"};
  const std::string params = nlohmann::json{{"targets", targets}}.dump();

  CommandResult raw;
  nlohmann::json first = world.Run({"policy.probe", "--params-json", params}, &raw);
  std::string first_out = Field(first, "stdout");
  ASSERT_NE(first_out.find("reached\n"), std::string::npos) << first.dump();
  ASSERT_TRUE(std::filesystem::exists(ready)) << "no ready marker at " << ready;
  std::map<std::string, std::string> host_files;
  for (const std::string& path :
       {world.Path("packvisor.toml"), world.Path("runtimes/other.toml"), ready}) {
    host_files[path] = DescribeFile(path);
  }
  std::string packs_before = testing::TreeFingerprint(world.Path("packs"));
  nlohmann::json second = world.Run({"policy.probe", "--params-json", params}, &raw);
  std::string second_out = Field(second, "stdout");

  for (const std::string& out : {first_out, second_out}) {
    EXPECT_EQ(out.find("wrote "), std::string::npos) << "a policy file was written: " << out;
  }
  // The forged markers inside /env changed nothing about the next run's confinement.
  auto policy = [](const std::string& out) {
    std::string lines;
    for (const std::string& line : testing::Lines(out)) {
      if (line.rfind("policy ", 0) == 0 || line.rfind("interpreter ", 0) == 0) {
        lines += line + "\n";
      }
    }
    return lines;
  };
  EXPECT_NE(policy(first_out).find("policy Seccomp 2"), std::string::npos) << first_out;
  EXPECT_EQ(policy(second_out), policy(first_out));
  for (const auto& [path, description] : host_files) {
    EXPECT_EQ(DescribeFile(path), description) << path << " changed during a run";
  }
  EXPECT_EQ(testing::TreeFingerprint(world.Path("packs")), packs_before);

  // A changed manifest rebuilds, whatever markers the action planted inside /env.
  std::string marker_before = testing::ReadFileOrEmpty(ready);
  world.Write("packs/policy/requirements.txt", "# v2\n");
  nlohmann::json third =
      world.Run({"policy.probe", "--params-json", R"({"targets": [], "plant": false})"}, &raw);
  EXPECT_EQ(third.value("status", ""), "succeeded") << third.dump();
  EXPECT_NE(testing::ReadFileOrEmpty(ready), marker_before) << "no rebuild for a new manifest";
  EXPECT_FALSE(std::filesystem::exists(world.Path("envs/policy/python/.python.ready")))
      << "the forged marker survived the rebuild";
  guard.ExpectUnchanged({raw.stdout_text, raw.stderr_text});
}

// --- H72: host settings that weaken everything
// ----------------------------------------------------

TEST_F(SupervisorTest, H72_check_names_every_weakening_host_setting) {
  CommandResult check = RunPackvisor({"check"});
  ASSERT_NE(check.stdout_text.find("feature"), std::string::npos) << check.stderr_text;
  // Catalog #72 and the sysctls #13, #15, #16 point at.
  for (const char* setting :
       {"user namespaces", "cgroup v2", "kernel.unprivileged_bpf_disabled",
        "vm.unprivileged_userfaultfd", "kernel.perf_event_paranoid", "dev.tty.legacy_tiocsti",
        "kernel.io_uring_disabled", "fs.protected_hardlinks", "fs.protected_symlinks",
        "kernel.core_pattern", "swap"}) {
    EXPECT_NE(check.stdout_text.find(setting), std::string::npos)
        << "`packvisor check` does not report " << setting;
  }
  // A weakening value is never reported as plain "ok".
  struct Weak {
    const char* name;
    const char* file;
    std::function<bool(long)> weak;
  };
  for (const Weak& w : std::vector<Weak>{
           {"fs.protected_hardlinks", "/proc/sys/fs/protected_hardlinks",
            [](long v) { return v == 0; }},
           {"fs.protected_symlinks", "/proc/sys/fs/protected_symlinks",
            [](long v) { return v == 0; }},
           {"kernel.unprivileged_bpf_disabled", "/proc/sys/kernel/unprivileged_bpf_disabled",
            [](long v) { return v == 0; }},
           {"kernel.io_uring_disabled", "/proc/sys/kernel/io_uring_disabled",
            [](long v) { return v == 0; }}}) {
    std::string text = testing::ReadFileOrEmpty(w.file);
    if (text.empty() || !w.weak(std::atol(text.c_str()))) continue;
    for (const std::string& line : testing::Lines(check.stdout_text)) {
      if (line.rfind(w.name, 0) == 0) {
        EXPECT_EQ(line.find("| ok "), std::string::npos) << "weak setting reported ok: " << line;
      }
    }
  }
}

}  // namespace
}  // namespace packvisor
