// Environment builds and the root supervisor against hostile packages and actions (SPEC §5, §6):
// build steps are confined like actions (pack read-only, private /tmp, no host files, no network
// when install_network is off, unprivileged ids), and the supervisor never follows a symlink
// planted in an environment when it rebuilds, lists, sizes or removes it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "tests/support/env_fixtures.h"

namespace packvisor::testing {
namespace {

// Owner, mode and content of a host file, to compare before and after.
std::string HostFileState(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return "missing";
  return "uid=" + std::to_string(st.st_uid) + " gid=" + std::to_string(st.st_gid) +
         " mode=" + std::to_string(st.st_mode) + " size=" + std::to_string(st.st_size) +
         " ino=" + std::to_string(st.st_ino) + " content=" + ReadFileOrEmpty(path);
}

// The hostile install step: tries to write into the pack, /usr and /tmp, to read /etc/shadow
// and a root-only host file, and records what it could do in /env/report; with "strict" in the
// manifest it ends by failing on /etc/shadow.
std::string HostileRuntime(const std::string& tmp_canary, const std::string& usr_canary,
                           const std::string& host_secret) {
  std::string script =
      "r=/env/report; "
      "if (echo x > /pack/evil) 2>/dev/null; then echo pack_write=ok; else echo pack_write=denied; "
      "fi >> $r; "
      "if (echo x > " +
      usr_canary +
      ") 2>/dev/null; then echo usr_write=ok; "
      "else echo usr_write=denied; fi >> $r; "
      "if (echo y > " +
      tmp_canary +
      ") 2>/dev/null; then echo tmp_write=ok; "
      "else echo tmp_write=denied; fi >> $r; "
      "if cat /etc/shadow > /env/shadow-copy 2>/dev/null; then echo shadow=read; "
      "else echo shadow=denied; fi >> $r; "
      "if cat " +
      host_secret +
      " > /env/secret-copy 2>/dev/null; then echo secret=read; "
      "else echo secret=denied; fi >> $r; "
      "echo uid=$(id -u) >> $r; "
      "echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,) "
      ">> $r; "
      "if grep -q strict \"$1\"; then exec cat /etc/shadow; fi";
  return "name = \"hostile\"\n"
         "[interpreter]\nbinary = \"/bin/sh\"\nfile_extension = \".hostile\"\n"
         "[inline]\nstrategy = \"temp_file\"\nextension = \".hostile\"\n"
         "[environment]\ncreate_command = [\"/bin/mkdir\", \"-p\", \"{env_dir}/bin\"]\n"
         "[dependencies]\nmanifest_file = \"deps.txt\"\n"
         "install_command = [\"/bin/sh\", \"-c\", '''" +
         script + "''', \"hostile-install\", \"{manifest_path}\"]\n";
}

TEST(EnvSecurity, InstallStepCannotReachTheHost) {
  EnvWorld world;
  std::string tag = UniqueMarker("pv-env-canary");
  std::string tmp_canary = "/tmp/" + tag;
  std::string usr_canary = "/usr/" + tag;
  std::string host_secret = world.Path("host-secret");
  world.WriteFile("host-secret", "TOPSECRET-" + tag + "\n", 0600);
  world.WriteRuntime("hostile", HostileRuntime(tmp_canary, usr_canary, host_secret));
  world.WriteAction("hello", "show", "hostile", "show.hostile", "cat /env/report\n");
  world.WritePackFile("hello", "deps.txt", "strict\n");
  world.WriteConfig();
  std::string shadow_before = HostFileState("/etc/shadow");
  std::string secret_before = HostFileState(host_secret);

  // The failing variant: setup_failed, naming the step and the installer's complaint.
  CommandResult raw;
  nlohmann::json failed = world.RunJson("hello.show", &raw);
  EXPECT_EQ(raw.exit_code, 125) << Describe(raw);
  EXPECT_EQ(failed["status"], "setup_failed");
  std::string error = failed["error"].is_string() ? failed["error"].get<std::string>() : "";
  EXPECT_NE(error.find("install failed (exit 1)"), std::string::npos) << error;
  EXPECT_NE(error.find("/etc/shadow"), std::string::npos) << error;
  EXPECT_FALSE(Exists(world.EnvDir("hello", "hostile")));
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "hostile")));

  // The tolerant variant publishes, and its report says what the step could do.
  world.WritePackFile("hello", "deps.txt", "lenient\n");
  CommandResult show = world.Cli({"run", "hello.show"});
  ASSERT_EQ(show.exit_code, 0) << Describe(show);
  std::string report = show.stdout_text;
  EXPECT_NE(report.find("pack_write=denied"), std::string::npos) << report;
  EXPECT_NE(report.find("usr_write=denied"), std::string::npos) << report;
  EXPECT_NE(report.find("shadow=denied"), std::string::npos) << report;
  EXPECT_NE(report.find("secret=denied"), std::string::npos) << report;
  EXPECT_NE(report.find("uid=1000\n"), std::string::npos) << report;
  EXPECT_NE(report.find("ifaces=lo,\n"), std::string::npos) << "install_network = false\n"
                                                            << report;
  EXPECT_EQ(report.find("TOPSECRET"), std::string::npos);

  // And the host is unchanged.
  EXPECT_FALSE(Exists(tmp_canary)) << "the build wrote into the host's /tmp";
  EXPECT_FALSE(Exists(usr_canary));
  EXPECT_FALSE(Exists(world.PackDir("hello") + "/evil"));
  EXPECT_EQ(HostFileState("/etc/shadow"), shadow_before);
  EXPECT_EQ(HostFileState(host_secret), secret_before);
  std::string env = world.EnvDir("hello", "hostile");
  EXPECT_EQ(ReadFileOrEmpty(env + "/secret-copy"), "");
  EXPECT_EQ(ReadFileOrEmpty(env + "/shadow-copy"), "");
  // What the step wrote belongs to the sandbox's host ids, never root.
  auto report_id = Identity(env + "/report");
  ASSERT_TRUE(report_id);
  EXPECT_NE(report_id->uid, 0u);
  EXPECT_NE(report_id->gid, 0u);
  std::filesystem::remove(tmp_canary);
  std::filesystem::remove(usr_canary);
}

// Snapshot of everything a followed symlink could damage.
struct HostTargets {
  std::string canary;
  std::string shadow;
  std::string root_dir;
  bool operator==(const HostTargets& other) const {
    return canary == other.canary && shadow == other.shadow && root_dir == other.root_dir;
  }
};

HostTargets Snapshot(const EnvWorld& world) {
  HostTargets targets;
  targets.canary = TreeFingerprint(world.Path("canary"));
  targets.shadow = HostFileState("/etc/shadow");
  struct stat st {};
  lstat("/root", &st);
  targets.root_dir = std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) + ":" +
                     std::to_string(st.st_mode) + ":" + std::to_string(st.st_ino);
  return targets;
}

TEST(EnvSecurity, PlantedSymlinksAreNeverFollowed) {
  EnvWorld world;
  // A root-only host directory with files: what a followed link would delete, chown or count.
  world.WriteFile("canary/a", "A", 0600);
  world.WriteFile("canary/sub/b", std::string(8 << 20, 'b'), 0600);
  chmod(world.Path("canary").c_str(), 0700);
  std::string canary = world.Path("canary");
  world.WriteAction("hello", "plant", "python", "plant.py",
                    "import os\n"
                    "os.symlink('/etc/shadow', '/env/evil')\n"
                    "os.symlink('/root', '/env/bin2')\n"
                    "os.symlink('" +
                        canary +
                        "', '/env/canary-dir')\n"
                        "os.symlink('" +
                        canary +
                        "/a', '/env/canary-file')\n"
                        "os.makedirs('/env/deep/er', exist_ok=True)\n"
                        "os.symlink('" +
                        canary +
                        "', '/env/deep/er/link')\n"
                        "os.symlink('" +
                        canary +
                        "', '/env/.staging-python-0000000000000000')\n"
                        "print('planted')\n");
  world.WriteConfig();
  HostTargets before = Snapshot(world);

  CommandResult plant = world.Cli({"run", "hello.plant"});
  ASSERT_EQ(plant.exit_code, 0) << Describe(plant);
  ASSERT_EQ(plant.stdout_text, "planted\n");
  std::string env = world.EnvDir("hello", "python");
  ASSERT_TRUE(std::filesystem::is_symlink(env + "/canary-dir"));
  // Leftover-looking entries beside the environment that point at the host.
  std::string pack_envs = world.EnvsDir() + "/hello";
  std::filesystem::create_directory_symlink(canary,
                                            pack_envs + "/.staging-python-00000000deadbeef");
  std::filesystem::create_directory_symlink(canary, pack_envs + "/.old-python-00000000deadbeef");

  // list (walks and sizes the tree): the size is the environment's, not the 8 MiB canary's.
  CommandResult list = world.Cli({"env", "list"});
  EXPECT_EQ(list.exit_code, 0) << Describe(list);
  bool listed = false;
  for (const std::string& line : Lines(list.stdout_text)) {
    if (line.rfind("hello ", 0) != 0) continue;
    listed = true;
    size_t m = line.find("M ");
    ASSERT_NE(m, std::string::npos) << line;
    size_t start = line.rfind(' ', m);
    EXPECT_LT(std::stod(line.substr(start + 1, m - start - 1)), 4.0) << line;
  }
  EXPECT_TRUE(listed) << list.stdout_text;
  EXPECT_TRUE(Snapshot(world) == before) << "env list followed a planted symlink";

  // Rebuild (the install environment changed): the old tree and the stale staging entry go.
  world.WriteConfig({{"ENV_TEST_REBUILD", "1"}});
  CommandResult rebuild = world.Cli({"env", "setup", "hello"});
  EXPECT_EQ(rebuild.exit_code, 0) << Describe(rebuild);
  EXPECT_NE(rebuild.stdout_text.find("hello/python: built"), std::string::npos)
      << rebuild.stdout_text;
  EXPECT_TRUE(Snapshot(world) == before) << "the rebuild followed a planted symlink";
  EXPECT_FALSE(Exists(pack_envs + "/.staging-python-00000000deadbeef"));
  EXPECT_FALSE(Exists(env + "/canary-dir"));  // a fresh tree

  // Plant again in the new tree, then remove the whole pack's environments.
  CommandResult again = world.Cli({"run", "hello.plant"});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  CommandResult removed = world.Cli({"env", "rm", "hello"});
  EXPECT_EQ(removed.exit_code, 0) << Describe(removed);
  EXPECT_FALSE(Exists(env));
  EXPECT_FALSE(Exists(pack_envs + "/.old-python-00000000deadbeef"));
  EXPECT_TRUE(Snapshot(world) == before) << "env rm followed a planted symlink";
  EXPECT_EQ(ReadFileOrEmpty(canary + "/a"), "A");
}

// An action can make its environment arbitrarily deep; the supervisor must still be able to
// remove it (otherwise one action makes its environment impossible to remove or replace).
TEST(EnvSecurity, DeepTreeMadeByAnActionCanStillBeRemoved) {
  EnvWorld world;
  world.WriteAction("hello", "deep", "python", "deep.py",
                    "import os\nos.makedirs('/env/d' + '/d' * 299)\nprint('deep')\n");
  world.WriteConfig();
  CommandResult deep = world.Cli({"run", "hello.deep"});
  ASSERT_EQ(deep.exit_code, 0) << Describe(deep);
  CommandResult removed = world.Cli({"env", "rm", "hello/python"});
  EXPECT_EQ(removed.exit_code, 0) << Describe(removed);
  EXPECT_FALSE(Exists(world.EnvDir("hello", "python")));
}

}  // namespace
}  // namespace packvisor::testing
