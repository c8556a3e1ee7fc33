// Environment builds are visible and honest (issue 11), through the real binary, offline: the
// build's time is part of an execution's duration and shown apart (env_build_ms); a failed build
// reports its real duration and the installer's decisive line first, is recorded and not retried
// for the same digest (until the manifest changes or `env setup --force`); a node dependency on a
// directory of the pack given by a relative `file:` path works; a build that leaves a dangling
// symlink is refused; `env list --json`; a missing pack exits 127.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/support/env_fixtures.h"

namespace packvisor::testing {
namespace {

// A runtime "sleepy" run by /bin/sh whose create step sleeps `seconds` and makes /env/bin; its
// actions print what they are given.
std::string SleepyRuntime(const std::string& seconds) {
  return "name = \"sleepy\"\n"
         "[interpreter]\nbinary = \"/bin/sh\"\nfile_extension = \".sleepy\"\n"
         "[environment]\ncreate_command = [\"/bin/sh\", \"-c\", \"sleep " +
         seconds + "; mkdir -p {env_dir}/bin\"]\n";
}

// A python pack `pack` whose requirements.txt names `requirement` (PIP_NO_INDEX is set by the
// world's config, so a name that is not in /pack/wheels fails fast, without a network).
void WriteFailingPythonPack(EnvWorld& world, const std::string& pack,
                            const std::string& requirement) {
  world.WriteAction(pack, "usepkg", "python", "usepkg.py", kPythonProbe, "output_format: json\n");
  world.WritePackFile(pack, "requirements.txt", requirement + "\n");
  world.WriteDemoWheel(pack);
}

std::string ErrorOf(const nlohmann::json& result) {
  return result.contains("error") && result["error"].is_string()
             ? result["error"].get<std::string>()
             : "";
}

int64_t Millis(const nlohmann::json& result, const char* key) {
  return result.contains(key) && result[key].is_number_integer() ? result[key].get<int64_t>() : -1;
}

TEST(EnvBuild, BuildTimeIsInTheDurationAndShownApart) {
  EnvWorld world;
  world.WriteRuntime("sleepy", SleepyRuntime("0.6"));
  world.WriteAction("hello", "say", "sleepy", "say.sleepy", "echo said\n");
  world.WriteConfig();

  // First run: the build (>= 600 ms of sleep) is in duration_ms and in env_build_ms.
  CommandResult raw;
  nlohmann::json first = world.RunJson("hello.say", &raw);
  ASSERT_EQ(first["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/sleepy: create"), 1);
  EXPECT_GE(Millis(first, "env_build_ms"), 600) << first.dump();
  EXPECT_GE(Millis(first, "duration_ms"), Millis(first, "env_build_ms")) << first.dump();
  EXPECT_LT(Millis(first, "env_build_ms"), 10000) << first.dump();

  // Second run: no build, env_build_ms 0, and the duration is the action's alone.
  nlohmann::json second = world.RunJson("hello.say", &raw);
  ASSERT_EQ(second["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/sleepy:"), 0);
  EXPECT_EQ(Millis(second, "env_build_ms"), 0) << second.dump();
  EXPECT_LT(Millis(second, "duration_ms"), 600) << second.dump();

  // The human summary line shows the build apart, and only when there was one.
  CommandResult human_ready = world.Cli({"run", "hello.say"});
  ASSERT_EQ(human_ready.exit_code, 0) << Describe(human_ready);
  EXPECT_EQ(human_ready.stderr_text.find("environment build"), std::string::npos)
      << human_ready.stderr_text;
  ASSERT_EQ(world.Cli({"env", "rm", "hello/sleepy"}).exit_code, 0);
  CommandResult human = world.Cli({"run", "hello.say"});
  ASSERT_EQ(human.exit_code, 0) << Describe(human);
  EXPECT_EQ(human.stdout_text, "said\n");
  std::string summary;
  for (const std::string& line : Lines(human.stderr_text)) {
    if (line.rfind("packvisor: hello.say: succeeded", 0) == 0) summary = line;
  }
  ASSERT_FALSE(summary.empty()) << human.stderr_text;
  EXPECT_NE(summary.find(" ms (environment build "), std::string::npos) << summary;
}

TEST(EnvBuild, FailedBuildReportsItsDurationAndTheDecisiveLineFirst) {
  EnvWorld world;
  WriteFailingPythonPack(world, "hello", "nope-pkg-zz==1.0");
  world.WriteConfig();

  CommandResult raw;
  nlohmann::json result = world.RunJson("hello.usepkg", &raw);
  EXPECT_EQ(raw.exit_code, 125) << Describe(raw);
  EXPECT_EQ(result["status"], "setup_failed") << Describe(raw);
  // The build ran (venv, then pip): a real duration, all of it the build's.
  EXPECT_GE(Millis(result, "env_build_ms"), 50) << result.dump();
  EXPECT_GE(Millis(result, "duration_ms"), Millis(result, "env_build_ms")) << result.dump();
  // One line: the step, its exit, pip's decisive line, then the tail of the output.
  std::string error = ErrorOf(result);
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_EQ(error.rfind("environment build hello/python: install failed (exit 1): ERROR: No "
                        "matching distribution found for nope-pkg-zz==1.0; output: ",
                        0),
            0u)
      << error;
  EXPECT_NE(error.find("Could not find a version that satisfies the requirement"),
            std::string::npos)
      << error;
  EXPECT_FALSE(Exists(world.EnvDir("hello", "python")));
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "python")));
}

TEST(EnvBuild, FailedBuildIsNotRetriedUntilTheManifestChangesOrForce) {
  EnvWorld world;
  WriteFailingPythonPack(world, "hello", "nope-pkg-zz==1.0");
  world.WriteConfig();
  const std::string install_line = "environment hello/python: install";

  CommandResult raw;
  nlohmann::json first = world.RunJson("hello.usepkg", &raw);
  ASSERT_EQ(first["status"], "setup_failed") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, install_line), 1) << raw.stderr_text;
  std::string first_error = ErrorOf(first);
  std::string decisive =
      "install failed (exit 1): ERROR: No matching distribution found for "
      "nope-pkg-zz==1.0";
  ASSERT_NE(first_error.find(decisive), std::string::npos) << first_error;
  // The record is root's, beside the environment (the sandbox never has it mounted).
  std::string record = world.EnvsDir() + "/hello/.python.failed";
  auto record_id = Identity(record);
  ASSERT_TRUE(record_id) << "no failure record";
  EXPECT_EQ(record_id->uid, 0u);
  EXPECT_TRUE(S_ISREG(record_id->mode));

  // Second run: fails at once with the recorded error; nothing is built.
  nlohmann::json second = world.RunJson("hello.usepkg", &raw);
  EXPECT_EQ(raw.exit_code, 125) << Describe(raw);
  EXPECT_EQ(second["status"], "setup_failed") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/python:"), 0)
      << raw.stderr_text;
  std::string second_error = ErrorOf(second);
  EXPECT_EQ(second_error.rfind("environment build hello/python: " + decisive, 0), 0u)
      << second_error;
  EXPECT_NE(second_error.find("env setup --force hello"), std::string::npos) << second_error;
  EXPECT_EQ(Millis(second, "env_build_ms"), 0) << second.dump();
  EXPECT_LT(Millis(second, "duration_ms"), 500) << second.dump();
  EXPECT_TRUE(world.PackEnvEntries("hello", ".staging-").empty());

  // `env setup` without --force reports the recorded failure too, without building.
  CommandResult setup = world.Cli({"env", "setup", "hello"});
  EXPECT_EQ(setup.exit_code, 1) << Describe(setup);
  EXPECT_NE(setup.stderr_text.find(decisive), std::string::npos) << setup.stderr_text;
  EXPECT_EQ(CountLinesContaining(setup.stderr_text, install_line), 0) << setup.stderr_text;

  // --force builds again (and fails again, as the manifest is the same).
  CommandResult forced = world.Cli({"env", "setup", "hello", "--force"});
  EXPECT_EQ(forced.exit_code, 1) << Describe(forced);
  EXPECT_EQ(CountLinesContaining(forced.stderr_text, install_line), 1) << forced.stderr_text;

  // A changed manifest is a new digest: the next run builds, succeeds and ends the record.
  world.WritePackFile("hello", "requirements.txt", "demo-pkg==1.0\n");
  nlohmann::json fixed = world.RunJson("hello.usepkg", &raw);
  EXPECT_EQ(fixed["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, install_line), 1) << raw.stderr_text;
  EXPECT_EQ(fixed["result"]["value"], 42) << fixed.dump();
  EXPECT_FALSE(Exists(record));
}

TEST(EnvBuild, ConcurrentRunsOfAFailingBuildBuildItOnce) {
  EnvWorld world;
  WriteFailingPythonPack(world, "hello", "nope-pkg-zz==1.0");
  world.WriteConfig();
  constexpr int kRuns = 4;
  std::vector<CommandResult> results =
      RunConcurrently(world.Args({"run", "hello.usepkg", "--json"}), kRuns);
  int installs = 0;
  for (const CommandResult& result : results) {
    installs += CountLinesContaining(result.stderr_text, "environment hello/python: install");
    EXPECT_EQ(result.exit_code, 125) << Describe(result);
    nlohmann::json json = result.Json();
    EXPECT_EQ(json["status"], "setup_failed") << Describe(result);
    EXPECT_NE(ErrorOf(json).find("install failed (exit 1): ERROR: No matching distribution"),
              std::string::npos)
        << Describe(result);
  }
  // The waiters report the one build's recorded failure instead of building again.
  EXPECT_EQ(installs, 1);
}

TEST(EnvBuild, ForceRebuildsAReadyEnvironment) {
  EnvWorld world;
  world.WriteRuntime("sleepy", SleepyRuntime("0"));
  world.WriteAction("hello", "say", "sleepy", "say.sleepy", "echo said\n");
  world.WriteConfig();
  CommandResult setup = world.Cli({"env", "setup", "hello"});
  ASSERT_EQ(setup.exit_code, 0) << Describe(setup);
  auto before = Identity(world.EnvDir("hello", "sleepy"));
  ASSERT_TRUE(before);

  CommandResult again = world.Cli({"env", "setup", "hello"});
  EXPECT_NE(again.stdout_text.find("hello/sleepy: ready"), std::string::npos) << Describe(again);
  CommandResult forced = world.Cli({"env", "setup", "--force", "hello"});
  ASSERT_EQ(forced.exit_code, 0) << Describe(forced);
  EXPECT_NE(forced.stdout_text.find("hello/sleepy: built"), std::string::npos) << Describe(forced);
  EXPECT_EQ(CountLinesContaining(forced.stderr_text, "environment hello/sleepy: create"), 1);
  auto after = Identity(world.EnvDir("hello", "sleepy"));
  ASSERT_TRUE(after);
  EXPECT_NE(after->ino, before->ino);
  EXPECT_EQ(world.Marker("hello", "sleepy")["ino"].get<uint64_t>(),
            static_cast<uint64_t>(after->ino));
}

constexpr const char* kVendoredNodeProbe =
    "const m = require('vendored');\n"
    "console.log(JSON.stringify({value: m.value, resolved: require.resolve('vendored')}));\n";

// A directory vendor/vendored in the pack (package.json, index.js exporting {value: 11}).
void WriteVendoredModule(EnvWorld& world, const std::string& pack) {
  world.WritePackFile(pack, "vendor/vendored/package.json",
                      "{\"name\": \"vendored\", \"version\": \"1.0.0\", \"main\": \"index.js\"}\n");
  world.WritePackFile(pack, "vendor/vendored/index.js", "module.exports = {value: 11};\n");
}

TEST(EnvBuild, NodeDependencyOnARelativeFilePathInThePackWorks) {
  EnvWorld world;
  world.WriteAction("hello", "usevendored", "node", "usevendored.js", kVendoredNodeProbe,
                    "output_format: json\n");
  WriteVendoredModule(world, "hello");
  world.WritePackFile("hello", "package.json",
                      "{\"name\": \"hello\", \"version\": \"1.0.0\", \"dependencies\": "
                      "{\"vendored\": \"file:vendor/vendored\"}}\n");
  world.WriteConfig();

  CommandResult raw;
  nlohmann::json result = world.RunJson("hello.usevendored", &raw);
  ASSERT_EQ(result["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(result["result"]["value"], 11) << result.dump();
  // The vendored code is the pack's own (linked, not copied).
  EXPECT_EQ(result["result"]["resolved"], "/pack/vendor/vendored/index.js") << result.dump();
  EXPECT_FALSE(Exists(world.PackDir("hello") + "/node_modules"));
}

TEST(EnvBuild, NodeDependencyThatLeavesADanglingLinkIsRefused) {
  EnvWorld world;
  world.WriteAction("hello", "usevendored", "node", "usevendored.js", kVendoredNodeProbe,
                    "output_format: json\n");
  // npm links a missing directory without complaint: the link points nowhere.
  world.WritePackFile("hello", "package.json",
                      "{\"name\": \"hello\", \"version\": \"1.0.0\", \"dependencies\": "
                      "{\"vendored\": \"file:vendor/missing\"}}\n");
  world.WriteConfig();

  CommandResult raw;
  nlohmann::json result = world.RunJson("hello.usevendored", &raw);
  EXPECT_EQ(result["status"], "setup_failed") << Describe(raw);
  std::string error = ErrorOf(result);
  EXPECT_NE(error.find("dangling symbolic link /env/node_modules/vendored -> "), std::string::npos)
      << error;
  EXPECT_NE(error.find("pack/vendor/missing"), std::string::npos) << error;
  EXPECT_FALSE(Exists(world.EnvDir("hello", "node")));
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "node")));
  EXPECT_TRUE(world.PackEnvEntries("hello", ".staging-").empty());
}

// A runtime "linker" whose create step makes /env/bin/sh -> /bin/sh and /env/link -> the target
// named in the pack's link-target file.
constexpr const char* kLinkerRuntime =
    "name = \"linker\"\n"
    "[interpreter]\nbinary = \"/bin/sh\"\nfile_extension = \".link\"\n"
    "[environment]\ncreate_command = [\"/bin/sh\", \"-c\", \"mkdir -p {env_dir}/bin; "
    "ln -s /bin/sh {env_dir}/bin/sh; ln -s $(cat {pack_dir}/link-target) {env_dir}/link\"]\n";

TEST(EnvBuild, LinkThatDoesNotResolveInTheSandboxIsNotPublished) {
  EnvWorld world;
  world.WriteRuntime("linker", kLinkerRuntime);
  // Resolves in the sandbox (/usr is bound): published.
  world.WriteAction("good", "a", "linker", "a.link", "readlink /env/link\n");
  world.WritePackFile("good", "link-target", "/usr/bin/env\n");
  // Exists on the host, not in the sandbox: an action could never use it.
  world.WriteAction("hostonly", "a", "linker", "a.link", "readlink /env/link\n");
  world.WritePackFile("hostonly", "link-target", "/etc/shadow\n");
  // Nowhere at all.
  world.WriteAction("nowhere", "a", "linker", "a.link", "readlink /env/link\n");
  world.WritePackFile("nowhere", "link-target", "../missing/thing\n");
  world.WriteConfig();
  ASSERT_TRUE(Exists("/etc/shadow"));

  CommandResult good = world.Cli({"run", "good.a"});
  EXPECT_EQ(good.exit_code, 0) << Describe(good);
  EXPECT_EQ(good.stdout_text, "/usr/bin/env\n");
  EXPECT_TRUE(Exists(world.MarkerPath("good", "linker")));

  for (const auto& [pack, target] : {std::pair<std::string, std::string>{"hostonly", "/etc/shadow"},
                                     {"nowhere", "../missing/thing"}}) {
    CommandResult raw;
    nlohmann::json result = world.RunJson(pack + ".a", &raw);
    EXPECT_EQ(result["status"], "setup_failed") << pack << ": " << Describe(raw);
    EXPECT_NE(ErrorOf(result).find("dangling symbolic link /env/link -> " + target),
              std::string::npos)
        << pack << ": " << ErrorOf(result);
    EXPECT_FALSE(Exists(world.EnvDir(pack, "linker"))) << pack;
    EXPECT_FALSE(Exists(world.MarkerPath(pack, "linker"))) << pack;
    EXPECT_TRUE(world.PackEnvEntries(pack, ".staging-").empty()) << pack;
  }
}

TEST(EnvBuild, ListJsonShowsReadyAndFailedEnvironments) {
  EnvWorld world;
  world.WriteRuntime("sleepy", SleepyRuntime("0"));
  world.WriteAction("okpack", "say", "sleepy", "say.sleepy", "echo said\n");
  WriteFailingPythonPack(world, "badpack", "nope-pkg-zz==1.0");
  world.WriteConfig();
  CommandResult empty = world.Cli({"env", "list", "--json"});
  ASSERT_EQ(empty.exit_code, 0) << Describe(empty);
  EXPECT_EQ(nlohmann::json::parse(empty.stdout_text), nlohmann::json::array());

  ASSERT_EQ(world.Cli({"run", "okpack.say"}).exit_code, 0);
  ASSERT_EQ(world.Cli({"run", "badpack.usepkg"}).exit_code, 125);
  CommandResult list = world.Cli({"env", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << Describe(list);
  ASSERT_EQ(Lines(list.stdout_text).size(), 1u) << list.stdout_text;
  nlohmann::json rows = nlohmann::json::parse(list.stdout_text);
  ASSERT_TRUE(rows.is_array());
  ASSERT_EQ(rows.size(), 2u) << rows.dump();
  nlohmann::json ok, bad;
  for (const nlohmann::json& row : rows) (row["pack"] == "okpack" ? ok : bad) = row;
  EXPECT_EQ(ok["runtime"], "sleepy");
  EXPECT_EQ(ok["state"], "ready");
  EXPECT_EQ(ok["digest"], world.Marker("okpack", "sleepy")["digest"]);
  EXPECT_EQ(ok["path"], world.EnvDir("okpack", "sleepy"));
  EXPECT_TRUE(ok["size_bytes"].is_number_unsigned());
  EXPECT_TRUE(ok["last_used"].is_string()) << ok.dump();
  EXPECT_TRUE(ok["error"].is_null());
  EXPECT_EQ(bad["pack"], "badpack");
  EXPECT_EQ(bad["runtime"], "python");
  EXPECT_EQ(bad["state"], "failed");
  EXPECT_TRUE(bad["digest"].is_null());
  ASSERT_TRUE(bad["error"].is_string()) << bad.dump();
  EXPECT_EQ(bad["error"].get<std::string>().rfind("install failed (exit 1): ERROR: No matching", 0),
            0u)
      << bad.dump();
  EXPECT_TRUE(bad["failed_at"].is_string()) << bad.dump();

  // The failure no longer applies once the manifest changed: no longer "failed".
  world.WritePackFile("badpack", "requirements.txt", "demo-pkg==1.0\n");
  rows = nlohmann::json::parse(world.Cli({"env", "list", "--json"}).stdout_text);
  for (const nlohmann::json& row : rows) {
    if (row["pack"] == "badpack") {
      EXPECT_EQ(row["state"], "missing") << row.dump();
    }
  }
  // env rm removes the record too.
  CommandResult removed = world.Cli({"env", "rm", "badpack"});
  EXPECT_EQ(removed.exit_code, 0) << Describe(removed);
  EXPECT_FALSE(Exists(world.EnvsDir() + "/badpack/.python.failed"));
}

TEST(EnvBuild, MissingPackOrEnvironmentExits127) {
  EnvWorld world;
  world.WriteRuntime("sleepy", SleepyRuntime("0"));
  world.WriteAction("hello", "say", "sleepy", "say.sleepy", "echo said\n");
  world.WriteConfig();

  CommandResult setup = world.Cli({"env", "setup", "nosuchpack"});
  EXPECT_EQ(setup.exit_code, 127) << Describe(setup);
  EXPECT_NE(setup.stderr_text.find("pack 'nosuchpack' not found"), std::string::npos)
      << setup.stderr_text;
  EXPECT_FALSE(Exists(world.EnvsDir() + "/nosuchpack"));

  CommandResult rm_pack = world.Cli({"env", "rm", "nosuchpack"});
  EXPECT_EQ(rm_pack.exit_code, 127) << Describe(rm_pack);
  // The pack exists, this environment does not (yet).
  CommandResult rm_env = world.Cli({"env", "rm", "hello/sleepy"});
  EXPECT_EQ(rm_env.exit_code, 127) << Describe(rm_env);
  EXPECT_NE(rm_env.stderr_text.find("hello/sleepy"), std::string::npos) << rm_env.stderr_text;
  ASSERT_EQ(world.Cli({"env", "setup", "hello"}).exit_code, 0);
  CommandResult rm_other = world.Cli({"env", "rm", "hello/python"});
  EXPECT_EQ(rm_other.exit_code, 127) << Describe(rm_other);
  EXPECT_TRUE(Exists(world.EnvDir("hello", "sleepy")));
  CommandResult rm_ok = world.Cli({"env", "rm", "hello/sleepy"});
  EXPECT_EQ(rm_ok.exit_code, 0) << Describe(rm_ok);
  // The same run of a missing pack, for comparison: 127 too.
  EXPECT_EQ(world.Cli({"run", "nosuchpack.say"}).exit_code, 127);
}

}  // namespace
}  // namespace packvisor::testing
