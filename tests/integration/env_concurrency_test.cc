// Environments under concurrency and failure (SPEC §5): one build for many simultaneous first
// executions, a builder killed midway, executions holding an environment while it is replaced.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/env_fixtures.h"

namespace packvisor::testing {
namespace {

// A runtime "slowrt" run by /bin/sh whose environment is a directory with a copy of the pack's
// deps.txt. The install sleeps 30 s when deps.txt contains "slow" (after touching
// /env/install-started), so a test can kill the builder in the middle. `marker` is in the
// install shell's argv[0], to find its processes.
std::string SlowRuntime(const std::string& marker) {
  return "name = \"slowrt\"\n"
         "[interpreter]\nbinary = \"/bin/sh\"\nfile_extension = \".slow\"\n"
         "[inline]\nstrategy = \"temp_file\"\nextension = \".slow\"\n"
         "[environment]\ncreate_command = [\"/bin/mkdir\", \"-p\", \"{env_dir}/bin\"]\n"
         "[dependencies]\nmanifest_file = \"deps.txt\"\n"
         "install_command = [\"/bin/sh\", \"-c\", 'touch /env/install-started; "
         "if grep -q slow \"$1\"; then sleep 30; fi; cp \"$1\" /env/installed', \"" +
         marker + "\", \"{manifest_path}\"]\n";
}

void WriteSlowPack(EnvWorld& world, const std::string& marker, const std::string& deps) {
  world.WriteRuntime("slowrt", SlowRuntime(marker));
  world.WriteAction("hello", "show", "slowrt", "show.slow", "cat /env/installed\n");
  // Holds the environment until the test creates `release` in it.
  world.WriteAction("hello", "hold", "slowrt", "hold.slow",
                    "touch /env/running\ni=0\nwhile [ ! -e /env/release ] && [ $i -lt 400 ]; do "
                    "sleep 0.05; i=$((i+1)); done\ncat /env/installed\n");
  world.WritePackFile("hello", "deps.txt", deps);
  world.WriteConfig();
}

TEST(EnvConcurrency, EightConcurrentFirstRunsBuildOnce) {
  EnvWorld world;
  world.WriteAction("hello", "usepkg", "python", "usepkg.py", kPythonProbe,
                    "output_format: json\n");
  world.WritePackFile("hello", "requirements.txt", "demo-pkg==1.0\n");
  world.WriteDemoWheel("hello");
  world.WriteConfig();
  std::string pack_before = world.PacksFingerprint();

  constexpr int kRuns = 8;
  std::vector<CommandResult> results =
      RunConcurrently(world.Args({"run", "hello.usepkg", "--json"}), kRuns);

  int creates = 0, installs = 0, publishes = 0;
  std::set<uint64_t> inodes;
  for (const CommandResult& result : results) {
    creates += CountLinesContaining(result.stderr_text, "environment hello/python: create");
    installs += CountLinesContaining(result.stderr_text, "environment hello/python: install");
    publishes += CountLinesContaining(result.stderr_text, "environment hello/python: published");
    ASSERT_EQ(result.exit_code, 0) << Describe(result);
    nlohmann::json json = result.Json();
    EXPECT_EQ(json["status"], "succeeded") << Describe(result);
    EXPECT_EQ(json["result"]["value"], 42) << Describe(result);
    EXPECT_EQ(json["result"]["executable"], "/env/bin/python3");
    inodes.insert(json["result"]["env_ino"].get<uint64_t>());
  }
  EXPECT_EQ(creates, 1);
  EXPECT_EQ(installs, 1);
  EXPECT_EQ(publishes, 1);
  auto id = Identity(world.EnvDir("hello", "python"));
  ASSERT_TRUE(id);
  EXPECT_EQ(inodes, std::set<uint64_t>{static_cast<uint64_t>(id->ino)});
  EXPECT_EQ(world.Marker("hello", "python")["ino"].get<uint64_t>(), static_cast<uint64_t>(id->ino));
  EXPECT_TRUE(world.PackEnvEntries("hello", ".staging-").empty());
  EXPECT_TRUE(world.PackEnvEntries("hello", ".old-").empty());
  EXPECT_EQ(world.PacksFingerprint(), pack_before);
}

TEST(EnvConcurrency, KilledBuildLeavesPreviousEnvironmentAndNextRunRecovers) {
  EnvWorld world;
  std::string marker = UniqueMarker("pv-env-slow-install");
  WriteSlowPack(world, marker, "a\n");
  CommandResult first = world.Cli({"run", "hello.show"});
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  ASSERT_EQ(first.stdout_text, "a\n");
  std::string env = world.EnvDir("hello", "slowrt");
  auto id_before = Identity(env);
  std::string marker_before = world.MarkerText("hello", "slowrt");
  ASSERT_TRUE(id_before);

  // A rebuild that hangs in its install step; kill the supervisor in the middle of it.
  world.WritePackFile("hello", "deps.txt", "slow\n");
  std::string pack_before = world.PacksFingerprint();
  pid_t pid = SpawnPackvisor(world.Args({"run", "hello.show"}));
  bool started = false;
  for (int i = 0; i < 500 && !started; ++i) {
    for (const std::string& staging : world.PackEnvEntries("hello", ".staging-slowrt-")) {
      started = started || Exists(world.EnvsDir() + "/hello/" + staging + "/install-started");
    }
    if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(started) << "the slow install never started";
  ASSERT_FALSE(ProcessesWithMarker(marker).empty());
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  // The build's sandbox dies with its supervisor.
  EXPECT_TRUE(WaitForNoProcessesWithMarker(marker, 5000).empty());
  EXPECT_EQ(world.PacksFingerprint(), pack_before);

  // The previous environment is intact and still published.
  EXPECT_EQ(Identity(env), id_before);
  EXPECT_EQ(world.MarkerText("hello", "slowrt"), marker_before);
  EXPECT_EQ(ReadFileOrEmpty(env + "/installed"), "a\n");
  EXPECT_FALSE(Exists(env + "/release"));
  EXPECT_EQ(world.PackEnvEntries("hello", ".staging-").size(), 1u) << "the dead build's leftover";

  // With the old manifest back, the previous environment is used as it is.
  world.WritePackFile("hello", "deps.txt", "a\n");
  CommandResult reuse = world.Cli({"run", "hello.show"});
  EXPECT_EQ(reuse.exit_code, 0) << Describe(reuse);
  EXPECT_EQ(reuse.stdout_text, "a\n");
  EXPECT_EQ(CountLinesContaining(reuse.stderr_text, "environment hello/slowrt:"), 0);
  EXPECT_EQ(Identity(env), id_before);

  // The next build recovers: new environment published, the dead build's staging removed.
  world.WritePackFile("hello", "deps.txt", "b\n");
  CommandResult next = world.Cli({"run", "hello.show"});
  EXPECT_EQ(next.exit_code, 0) << Describe(next);
  EXPECT_EQ(next.stdout_text, "b\n");
  EXPECT_EQ(CountLinesContaining(next.stderr_text, "environment hello/slowrt: install"), 1);
  EXPECT_TRUE(world.PackEnvEntries("hello", ".staging-").empty());
  auto id_after = Identity(env);
  ASSERT_TRUE(id_after);
  EXPECT_NE(id_after->ino, id_before->ino);
}

TEST(EnvConcurrency, RemoveIsRefusedWhileAnExecutionUsesTheEnvironment) {
  EnvWorld world;
  WriteSlowPack(world, UniqueMarker("pv-env-rm"), "a\n");
  std::string env = world.EnvDir("hello", "slowrt");
  CommandResult holder;
  std::thread thread([&] { holder = RunPackvisor(world.Args({"run", "hello.hold"})); });
  bool running = WaitForPath(env + "/running", 20000);
  EXPECT_TRUE(running) << "the holding action never started";

  CommandResult refused = world.Cli({"env", "rm", "hello/slowrt"});
  EXPECT_NE(refused.exit_code, 0) << Describe(refused);
  EXPECT_NE(refused.stderr_text.find("in use"), std::string::npos) << refused.stderr_text;
  CommandResult refused_pack = world.Cli({"env", "rm", "hello"});
  EXPECT_NE(refused_pack.exit_code, 0) << Describe(refused_pack);
  EXPECT_TRUE(Exists(env + "/installed"));
  EXPECT_TRUE(Exists(world.MarkerPath("hello", "slowrt")));

  Touch(env + "/release");
  thread.join();
  EXPECT_EQ(holder.exit_code, 0) << Describe(holder);
  EXPECT_EQ(holder.stdout_text, "a\n");

  CommandResult removed = world.Cli({"env", "rm", "hello/slowrt"});
  EXPECT_EQ(removed.exit_code, 0) << Describe(removed);
  EXPECT_FALSE(Exists(env));
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "slowrt")));
  EXPECT_FALSE(Exists(world.EnvsDir() + "/hello/.slowrt.used"));
}

// An environment replaced while an execution still uses it is kept aside (.old-*) for that
// execution; once nobody uses it, it must not stay on disk forever.
TEST(EnvConcurrency, ReplacedEnvironmentIsFreedOnceUnused) {
  EnvWorld world;
  WriteSlowPack(world, UniqueMarker("pv-env-old"), "a\n");
  CommandResult holder;
  std::thread thread([&] { holder = RunPackvisor(world.Args({"run", "hello.hold"})); });
  bool running = WaitForPath(world.EnvDir("hello", "slowrt") + "/running", 20000);
  EXPECT_TRUE(running) << "the holding action never started";

  world.WritePackFile("hello", "deps.txt", "b\n");
  CommandResult rebuilt = world.Cli({"run", "hello.show"});
  EXPECT_EQ(rebuilt.exit_code, 0) << Describe(rebuilt);
  EXPECT_EQ(rebuilt.stdout_text, "b\n");
  std::vector<std::string> old = world.PackEnvEntries("hello", ".old-slowrt-");
  ASSERT_EQ(old.size(), 1u) << "the replaced environment, still in use, is kept aside";
  Touch(world.EnvsDir() + "/hello/" + old[0] + "/release");
  thread.join();
  EXPECT_EQ(holder.exit_code, 0) << Describe(holder);
  EXPECT_EQ(holder.stdout_text, "a\n") << "the holder kept its own environment";

  // Nobody uses the old tree any more; the next build of this environment (or setup) must not
  // leave it behind.
  world.WritePackFile("hello", "deps.txt", "c\n");
  CommandResult next = world.Cli({"run", "hello.show"});
  EXPECT_EQ(next.stdout_text, "c\n") << Describe(next);
  CommandResult setup = world.Cli({"env", "setup", "hello"});
  EXPECT_EQ(setup.exit_code, 0) << Describe(setup);
  EXPECT_TRUE(world.PackEnvEntries("hello", ".old-").empty())
      << "replaced environments leak: " << world.PackEnvEntries("hello", ".old-").size();
}

}  // namespace
}  // namespace packvisor::testing
