// Resource limits and tenancy over the lifetime of executions and environment builds (issue 6),
// through the real packvisor binary on this host's real cgroups:
// - a timed-out execution whose processes spread by double fork leaves no process and no cgroup
//   directory in any hierarchy;
// - two packs' environments belong to different host ids with mode 0700, so that a probe whose
//   mount namespace is effectively disabled (the test-only packvisor-test-hooks binary skips the
//   mount steps) sees the host filesystem and still cannot read the other pack's environment;
// - a supervisor killed with SIGKILL during an execution or an environment build takes the
//   sandbox with it, and the next start removes the stale cgroups (and staging directories).
// Each test runs with a cgroup parent of its own (tests/support/cgroup_fixtures.h), so that it
// sees exactly the directories its own runs create.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cgroup_fixtures.h"
#include "tests/support/harness.h"

namespace packvisor::testing {
namespace {

// A TOML basic string holding `text`.
std::string TomlString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The session id of `pid` (field 6 of /proc/<pid>/stat), or -1 once it is gone.
long SessionOf(pid_t pid) {
  std::string stat = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string state;
  long ppid = 0, pgrp = 0, session = -1;
  fields >> state >> ppid >> pgrp >> session;
  return session;
}

// Processes whose command line holds `marker`, other than packvisor itself (its argv holds the
// marker too).
std::vector<pid_t> SandboxProcesses(const std::string& marker) {
  std::vector<pid_t> found;
  std::error_code ec;
  const auto packvisor = std::filesystem::weakly_canonical(PackvisorBinary(), ec);
  for (pid_t pid : ProcessesWithMarker(marker)) {
    auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    if (!ec && exe == packvisor) continue;
    found.push_back(pid);
  }
  return found;
}

std::vector<pid_t> WaitForNoSandboxProcesses(const std::string& marker, int timeout_ms) {
  return WaitForNone([&] { return SandboxProcesses(marker); }, timeout_ms);
}

// A main process that ignores SIGTERM, a plain background child, and a double-forked grandchild
// in a session of its own that ignores TERM, HUP and INT. Every shell's command line holds
// `marker`.
std::string SpreadingScript(const std::string& marker) {
  return "( setsid sh -c 'trap \"\" TERM HUP INT; while :; do sleep 0.05; done' detached-" +
         marker + " & ); sh -c 'trap \"\" TERM; while :; do sleep 0.05; done' child-" + marker +
         " & echo started; trap '' TERM; while :; do sleep 0.05; done";
}

class LimitsLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (packvisor sets up namespaces and cgroups)";
    if (TestConfigFromEnvironment()) GTEST_SKIP() << "build-tree suite (writes its own config)";
    ASSERT_TRUE(cgroups_.usable())
        << "no cgroup back end: " << sandbox::CgroupLayout::Probe().why_none;
    world_.Write("packvisor.toml",
                 "packs_base_dir = " + TomlString(world_.Path("packs")) +
                     "\nruntime_envs_dir = " + TomlString(world_.Path("envs")) +
                     "\nstate_dir = " + TomlString(world_.Path("state")) +
                     "\nruntimes_dir = " + TomlString(world_.Path("runtimes")) +
                     "\n[execution]\nkill_grace_seconds = 1\n[envs]\nbuild_timeout_seconds = 60\n"
                     "[sandbox]\ncgroup_parent = " +
                     TomlString(cgroups_.name()) + "\n");
    world_.Write("runtimes/.keep", "");
  }

  std::vector<std::string> WithConfig(const std::vector<std::string>& args) const {
    std::vector<std::string> full = {"--config", world_.Path("packvisor.toml")};
    full.insert(full.end(), args.begin(), args.end());
    return full;
  }

  // The next start of packvisor: any run, here an ad-hoc /bin/true.
  void StartAgain() {
    CommandResult next = RunPackvisor(WithConfig({"exec", "--json", "--", "/bin/true"}));
    EXPECT_EQ(next.exit_code, 0) << next.stderr_text;
  }

  ScopedCgroupParent cgroups_;
  TempDir world_;
};

// --- a timeout with children spread by double fork ----------------------------------------------

TEST_F(LimitsLifecycleTest, TimeoutWithDoubleForkedChildrenLeavesNoProcessAndNoCgroup) {
  const std::string marker = UniqueMarker("pv-limits-timeout");
  CommandResult run;
  std::atomic<bool> done{false};
  std::thread runner([&] {
    run = RunPackvisor(WithConfig({"exec", "--timeout", "1", "--json", "--", "/bin/sh", "-c",
                                   SpreadingScript(marker), marker}));
    done = true;
  });
  std::set<std::string> dirs_seen;
  size_t most_members = 0;
  std::set<long> sessions;
  while (!done) {
    for (const std::string& dir : cgroups_.Children()) dirs_seen.insert(dir);
    std::vector<pid_t> members = cgroups_.Members();
    most_members = std::max(most_members, members.size());
    for (pid_t pid : members) {
      long session = SessionOf(pid);
      if (session > 0) sessions.insert(session);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  runner.join();
  std::vector<pid_t> left = SandboxProcesses(marker);
  nlohmann::json result = run.Json();

  // The execution ran in one cgroup per hierarchy, with its processes spread over two sessions
  // (init, the main process, a child, and the detached grandchild).
  EXPECT_EQ(Lines(result.value("stdout", "")), std::vector<std::string>{"started"})
      << result.dump();
  EXPECT_EQ(dirs_seen.size(), cgroups_.Dirs().size())
      << "expected one execution cgroup in each of:\n"
      << JoinLines(cgroups_.Dirs()) << "saw:\n"
      << JoinLines({dirs_seen.begin(), dirs_seen.end()});
  EXPECT_GE(most_members, 4u) << "the sandbox's processes were never all in its cgroup";
  EXPECT_GE(sessions.size(), 2u) << "the grandchild never got a session of its own";
  // Timed out, and nothing of it survives: no process, no cgroup directory in any hierarchy, no
  // other directory under the parent.
  EXPECT_EQ(result.value("status", ""), "timed_out") << result.dump();
  EXPECT_EQ(run.exit_code, 124);
  EXPECT_TRUE(left.empty()) << left.size() << " processes of the execution survived it";
  for (const std::string& dir : dirs_seen) {
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir << " was not removed";
  }
  EXPECT_TRUE(cgroups_.Children().empty()) << "left under the cgroup parent:\n"
                                           << JoinLines(cgroups_.Children());
}

// --- two packs, separated by host ids -----------------------------------------------------------

// The test-only binary (same CLI, fault injection compiled in), next to packvisor in the build.
std::string TestHooksBinary() {
  return std::filesystem::path(PACKVISOR_BINARY).parent_path() / "packvisor-test-hooks";
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;
};

std::optional<Owner> OwnerOf(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return std::nullopt;
  return Owner{st.st_uid, st.st_gid, st.st_mode};
}

TEST_F(LimitsLifecycleTest, PacksEnvsAreOwnedByDifferentIdsAndUnreadableAcrossPacksOnTheHostFs) {
  if (std::getenv("PACKVISOR_UNDER_TEST") != nullptr) GTEST_SKIP() << "installed run";
  const std::string hooks = TestHooksBinary();
  ASSERT_EQ(access(hooks.c_str(), X_OK), 0) << "no " << hooks << " (build packvisor-test-hooks)";

  // A host file anyone may read (the probe reading it proves it looks at the host filesystem), and
  // a directory anyone may write (the probe leaves a file there, so its host owner shows).
  TempDir host;
  const std::string host_token = UniqueMarker("host-token");
  host.Write("readable", host_token + "\n", 0644);
  TempDir out;
  ASSERT_EQ(chmod(out.path().c_str(), 0777), 0);

  const std::string env_a = world_.Path("envs/packa/probe");
  const std::string env_b = world_.Path("envs/packb/probe");
  // The probe: python, inline (-c), so that it needs nothing from /pack or /env to start; the
  // paths it tries come after the code (sys.argv[1:]).
  const std::string probe =
      "import os, sys\n"
      "other_env, own_env, host_file, mark = sys.argv[1:5]\n"
      "def attempt(label, op):\n"
      "    try:\n"
      "        print(label, 'ok', op(), flush=True)\n"
      "    except OSError as e:\n"
      "        print(label, 'errno', e.errno, flush=True)\n"
      "attempt('other_env_secret', lambda: open(other_env + '/secret').read().strip())\n"
      "attempt('other_env_list', lambda: len(os.listdir(other_env)))\n"
      "attempt('own_env_secret', lambda: open(own_env + '/secret').read().strip())\n"
      "attempt('host_file', lambda: open(host_file).read().strip())\n"
      "attempt('write_mark', lambda: open(mark, 'w').write('x'))\n";
  std::string args = "[\"-c\", " + TomlString(probe);
  for (const std::string& arg : {env_b, env_a, host.Path("readable"), out.Path("mark")}) {
    args += ", " + TomlString(arg);
  }
  args += "]";
  world_.Write("runtimes/probe.toml",
               "name = \"probe\"\n[interpreter]\nbinary = \"/usr/bin/python3\"\nargs = " + args +
                   "\nfile_extension = \".py\"\n[environment]\ncreate_command = [\"/bin/sh\", "
                   "\"-c\", \"head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\\\n' > "
                   "{env_dir}/secret\"]\n");
  for (const char* ref : {"packa", "packb"}) {
    world_.Write(std::string("packs/") + ref + "/pack.yaml",
                 std::string("ref: ") + ref + "\nversion: 1.0.0\ndescription: tenancy\n");
    world_.Write(std::string("packs/") + ref + "/actions/a.yaml",
                 "name: a\nrunner_type: probe\nentry_point: a.py\n");
    world_.Write(std::string("packs/") + ref + "/actions/a.py", "print('unused')\n");
    CommandResult setup = RunPackvisor(WithConfig({"env", "setup", ref}));
    ASSERT_EQ(setup.exit_code, 0) << ref << ": " << setup.stdout_text << setup.stderr_text;
  }

  // Different host ids, each environment owned by its pack's id, mode 0700.
  auto a = OwnerOf(env_a);
  auto b = OwnerOf(env_b);
  ASSERT_TRUE(a && b) << "environments missing";
  EXPECT_NE(a->uid, b->uid) << "two packs share a host uid";
  EXPECT_NE(a->gid, b->gid) << "two packs share a host gid";
  EXPECT_NE(a->uid, 0u);
  EXPECT_NE(b->uid, 0u);
  EXPECT_EQ(a->mode & 07777, 0700u);
  EXPECT_EQ(b->mode & 07777, 0700u);
  EXPECT_TRUE(S_ISDIR(a->mode) && S_ISDIR(b->mode));
  const std::string secret_a = ReadFileOrEmpty(env_a + "/secret");
  const std::string secret_b = ReadFileOrEmpty(env_b + "/secret");
  ASSERT_EQ(secret_b.size(), 32u) << "pack B's environment has no secret";
  ASSERT_EQ(secret_a.size(), 32u) << "pack A's environment has no secret";

  // Pack A's action, without its mount namespace's new root: the host filesystem as pack A's id.
  CommandResult run;
  {
    ScopedEnv binary("PACKVISOR_UNDER_TEST", hooks);
    run = RunPackvisor(
        WithConfig({"run", "packa.a", "--json"}), "",
        {"PACKVISOR_TEST_SKIP_STEP=mount_staging_root,pivot_root,mount_plan,detach_old_root,"
         "root_read_only,chdir",
         "PACKVISOR_TEST_SKIP_VERIFY=1"});
  }
  nlohmann::json result = run.Json();
  std::string said = result.value("stdout", "");

  // The probe ran on the host filesystem as pack A's id: it read the host file and its own
  // environment, and the file it wrote belongs to pack A's id.
  EXPECT_EQ(result.value("status", ""), "succeeded") << result.dump();
  EXPECT_NE(said.find("host_file ok " + host_token + "\n"), std::string::npos) << said;
  EXPECT_NE(said.find("own_env_secret ok " + secret_a + "\n"), std::string::npos) << said;
  EXPECT_NE(said.find("write_mark ok 1\n"), std::string::npos) << said;
  auto mark = OwnerOf(out.Path("mark"));
  ASSERT_TRUE(mark) << "the probe's file is missing: " << said;
  EXPECT_EQ(mark->uid, a->uid) << "the probe did not run as pack A's host uid";
  // And still cannot read pack B's environment.
  EXPECT_NE(said.find("other_env_secret errno 13\n"), std::string::npos) << said;
  EXPECT_NE(said.find("other_env_list errno 13\n"), std::string::npos) << said;
  EXPECT_EQ(said.find(secret_b), std::string::npos) << "pack B's secret leaked";
  EXPECT_EQ(run.stderr_text.find(secret_b), std::string::npos);
}

// --- the supervisor killed with SIGKILL ---------------------------------------------------------

TEST_F(LimitsLifecycleTest, SupervisorKilledMidExecutionTakesTheSandboxAndNextStartRemovesCgroups) {
  const std::string marker = UniqueMarker("pv-limits-killed");
  pid_t supervisor = SpawnPackvisor(WithConfig(
      {"exec", "--timeout", "60", "--", "/bin/sh", "-c", SpreadingScript(marker), marker}));
  // init, main, child and the detached grandchild, all in the execution's cgroup, and the three
  // marked shells started (a forked shell that has not exec'd yet is a member without the mark).
  size_t sandbox_processes = 0;
  bool running = WaitUntil(
      [&] {
        sandbox_processes = SandboxProcesses(marker).size();
        return cgroups_.Members().size() >= 4 && sandbox_processes >= 3;
      },
      10000);
  std::vector<std::string> dirs = cgroups_.Children();
  ASSERT_EQ(kill(supervisor, SIGKILL), 0);
  int status = 0;
  waitpid(supervisor, &status, 0);
  ASSERT_TRUE(running) << "the sandbox never started its processes";
  EXPECT_GE(sandbox_processes, 3u);

  // Every process of the sandbox (the marked shells, and the sleeps they run, which only the
  // cgroup lists) is gone within 3 s.
  std::vector<pid_t> left = WaitForNoSandboxProcesses(marker, 3000);
  EXPECT_TRUE(left.empty()) << left.size() << " sandbox processes outlived the supervisor by 3 s";
  EXPECT_TRUE(WaitUntil([&] { return cgroups_.Members().empty(); }, 3000))
      << cgroups_.Members().size() << " members of the execution cgroup outlived the supervisor";
  // What the dead supervisor left: its execution cgroup, one directory per hierarchy.
  EXPECT_EQ(dirs.size(), cgroups_.Dirs().size());
  EXPECT_EQ(cgroups_.Children(), dirs) << "the stale cgroup directories are already gone";

  StartAgain();
  EXPECT_TRUE(cgroups_.Children().empty()) << "the next start left stale cgroups:\n"
                                           << JoinLines(cgroups_.Children());
}

// A runtime whose environment build writes a file, then loops (with a TERM-ignoring child) until
// it is killed; the supervisor is SIGKILLed while it runs.
class KilledBuildTest : public LimitsLifecycleTest {
 protected:
  void KillSupervisorDuringBuild() {
    marker_ = UniqueMarker("pv-limits-build");
    world_.Write("runtimes/endless.toml",
                 "name = \"endless\"\n[interpreter]\nbinary = \"/bin/sh\"\nfile_extension = "
                 "\".sh\"\n[environment]\ncreate_command = [\"/bin/sh\", \"-c\", \"echo partial > "
                 "{env_dir}/partial; (trap '' TERM; while :; do sleep 0.05; done) & trap '' TERM; "
                 "while :; do sleep 0.05; done\", \"" +
                     marker_ + "\"]\n");
    world_.Write("packs/slowpack/pack.yaml", "ref: slowpack\nversion: 1.0.0\ndescription: x\n");
    world_.Write("packs/slowpack/actions/a.yaml",
                 "name: a\nrunner_type: endless\nentry_point: a.sh\n");
    world_.Write("packs/slowpack/actions/a.sh", "echo the action ran\n");
    pid_t supervisor = SpawnPackvisor(WithConfig({"run", "slowpack.a", "--json"}));
    const std::string pack_envs = world_.Path("envs/slowpack");
    bool building = WaitUntil(
        [&] {
          auto staging = EntriesContaining(pack_envs, ".staging-endless-");
          return SandboxProcesses(marker_).size() >= 2 && staging.size() == 1 &&
                 std::filesystem::exists(pack_envs + "/" + staging[0] + "/partial");
        },
        10000);
    build_cgroups_ = cgroups_.Children();
    kill(supervisor, SIGKILL);
    int status = 0;
    waitpid(supervisor, &status, 0);
    ASSERT_TRUE(building) << "the build never ran";
    left_ = WaitForNoSandboxProcesses(marker_, 3000);
    members_gone_ = WaitUntil([&] { return cgroups_.Members().empty(); }, 3000);
    staging_ = EntriesContaining(pack_envs, ".staging-");
  }

  std::string marker_;
  std::vector<std::string> build_cgroups_;
  std::vector<pid_t> left_;
  bool members_gone_ = false;
  std::vector<std::string> staging_;
};

TEST_F(KilledBuildTest, SupervisorKilledDuringEnvBuildTakesTheBuildAndNextStartRemovesCgroups) {
  ASSERT_NO_FATAL_FAILURE(KillSupervisorDuringBuild());
  EXPECT_TRUE(left_.empty()) << left_.size() << " build processes outlived the supervisor by 3 s";
  EXPECT_TRUE(members_gone_) << "members of the build's cgroup outlived the supervisor by 3 s";
  EXPECT_EQ(build_cgroups_.size(), cgroups_.Dirs().size()) << "the build ran in no cgroup";
  EXPECT_EQ(cgroups_.Children(), build_cgroups_) << "the stale build cgroups are already gone";
  EXPECT_EQ(staging_.size(), 1u) << "the killed build left no staging directory";
  EXPECT_FALSE(std::filesystem::exists(world_.Path("envs/slowpack/endless"))) << "published";

  StartAgain();
  EXPECT_TRUE(cgroups_.Children().empty()) << "the next start left stale cgroups:\n"
                                           << JoinLines(cgroups_.Children());
}

TEST_F(KilledBuildTest, NextStartRemovesTheStagingDirectoryOfAKilledBuild) {
  // Every `run`/`exec` start removes staging and replaced trees nobody holds (CleanUpStale).
  ASSERT_NO_FATAL_FAILURE(KillSupervisorDuringBuild());
  ASSERT_EQ(staging_.size(), 1u) << "the killed build left no staging directory";
  StartAgain();
  EXPECT_TRUE(EntriesContaining(world_.Path("envs/slowpack"), ".staging-").empty())
      << "the next start left the killed build's staging directory";
}

}  // namespace
}  // namespace packvisor::testing
