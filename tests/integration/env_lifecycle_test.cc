// Environment lifecycle through the real binary (SPEC §5), offline: the intent of the original
// platform's dependency_isolation_test.rs (venv outside the pack, idempotent setup, dependency
// install from a local wheel, a missing dependency failing setup, shell without environment,
// detection, isolation between packs, the action running with the environment's interpreter in
// /pack), plus rebuild on a changed manifest.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/support/env_fixtures.h"

namespace packvisor::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A pack `pack` with a python action `usepkg` (the probe) and, when `requirement` is not empty,
// requirements.txt = requirement plus the demo wheel.
void WritePythonPack(EnvWorld& world, const std::string& pack, const std::string& requirement) {
  world.WriteAction(pack, "usepkg", "python", "usepkg.py", kPythonProbe, "output_format: json\n");
  if (!requirement.empty()) {
    world.WritePackFile(pack, "requirements.txt", requirement + "\n");
    world.WriteDemoWheel(pack);
  }
}

TEST(EnvLifecycle, SetupBuildsVenvOutsideThePackAndInstallsDependencies) {
  EnvWorld world;
  WritePythonPack(world, "hello", "demo-pkg==1.0");
  world.WriteConfig();
  std::string pack_before = world.PacksFingerprint();

  CommandResult setup = world.Cli({"env", "setup", "hello"});
  ASSERT_EQ(setup.exit_code, 0) << Describe(setup);
  std::string env = world.EnvDir("hello", "python");
  EXPECT_NE(setup.stdout_text.find("hello/python: built (" + env + ")"), std::string::npos)
      << setup.stdout_text;
  EXPECT_EQ(CountLinesContaining(setup.stderr_text, "environment hello/python: create"), 1);
  EXPECT_EQ(CountLinesContaining(setup.stderr_text, "environment hello/python: install"), 1);

  // A real venv at the external path, with the wheel installed into it.
  EXPECT_TRUE(Exists(env + "/bin/python3"));
  EXPECT_NE(ReadFileOrEmpty(env + "/pyvenv.cfg").find("home = /usr/bin"), std::string::npos);
  EXPECT_FALSE(EntriesContaining(env + "/lib", "python3").empty());
  bool installed = false;
  for (const std::string& lib : EntriesContaining(env + "/lib", "python3")) {
    installed = installed || Exists(env + "/lib/" + lib + "/site-packages/demo_pkg/__init__.py");
  }
  EXPECT_TRUE(installed) << "demo_pkg is not in the venv's site-packages";

  // Built by the sandbox's unprivileged ids, published with a marker naming the directory.
  auto id = Identity(env);
  ASSERT_TRUE(id);
  EXPECT_NE(id->uid, 0u);
  nlohmann::json marker = world.Marker("hello", "python");
  EXPECT_EQ(marker["ino"].get<uint64_t>(), static_cast<uint64_t>(id->ino));
  EXPECT_TRUE(world.PackEnvEntries("hello", ".staging-").empty());

  // The pack is untouched: no .venv, no node_modules, same tree.
  EXPECT_FALSE(Exists(world.PackDir("hello") + "/.venv"));
  EXPECT_FALSE(Exists(world.PackDir("hello") + "/node_modules"));
  EXPECT_EQ(world.PacksFingerprint(), pack_before);
}

TEST(EnvLifecycle, SecondSetupDoesNotRebuild) {
  EnvWorld world;
  WritePythonPack(world, "hello", "demo-pkg==1.0");
  world.WriteConfig();
  CommandResult first = world.Cli({"env", "setup", "hello"});
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  std::string env = world.EnvDir("hello", "python");
  auto id_before = Identity(env);
  std::string marker_before = world.MarkerText("hello", "python");
  ASSERT_TRUE(id_before);
  ASSERT_FALSE(marker_before.empty());

  CommandResult second = world.Cli({"env", "setup", "hello"});
  ASSERT_EQ(second.exit_code, 0) << Describe(second);
  EXPECT_NE(second.stdout_text.find("hello/python: ready"), std::string::npos)
      << second.stdout_text;
  EXPECT_EQ(CountLinesContaining(second.stderr_text, "environment hello/python:"), 0)
      << second.stderr_text;
  EXPECT_EQ(Identity(env), id_before);
  EXPECT_EQ(world.MarkerText("hello", "python"), marker_before);

  // A run does not rebuild it either.
  CommandResult raw;
  nlohmann::json result = world.RunJson("hello.usepkg", &raw);
  EXPECT_EQ(result["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/python:"), 0);
  EXPECT_EQ(Identity(env), id_before);
  EXPECT_EQ(world.MarkerText("hello", "python"), marker_before);
}

TEST(EnvLifecycle, MissingOfflineDependencyFailsSetupCleanly) {
  EnvWorld world;
  WritePythonPack(world, "hello", "demo-pkg==9.9");  // only 1.0 is in wheels/
  world.WriteConfig();

  CommandResult setup = world.Cli({"env", "setup", "hello"});
  EXPECT_NE(setup.exit_code, 0);
  EXPECT_NE(setup.stderr_text.find("install failed (exit 1)"), std::string::npos)
      << setup.stderr_text;
  EXPECT_NE(setup.stderr_text.find("demo-pkg==9.9"), std::string::npos) << setup.stderr_text;
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "python")));
  EXPECT_FALSE(Exists(world.EnvDir("hello", "python")));
  EXPECT_TRUE(world.PackEnvEntries("hello", ".staging-").empty());

  CommandResult raw;
  nlohmann::json result = world.RunJson("hello.usepkg", &raw);
  EXPECT_EQ(raw.exit_code, 125);
  EXPECT_EQ(result["status"], "setup_failed") << Describe(raw);
  std::string error = result["error"].is_string() ? result["error"].get<std::string>() : "";
  EXPECT_NE(error.find("install"), std::string::npos) << error;
  EXPECT_NE(error.find("failed (exit 1)"), std::string::npos) << error;
  EXPECT_NE(error.find("No matching distribution"), std::string::npos) << error;
  // No silent fallback to the system interpreter: the action never ran.
  EXPECT_EQ(result["exit_code"], nullptr);
  EXPECT_EQ(result["stdout"], "");
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "python")));
  EXPECT_FALSE(Exists(world.EnvDir("hello", "python")));
  EXPECT_TRUE(world.PackEnvEntries("hello", ".staging-").empty());
}

TEST(EnvLifecycle, ShellRuntimeMakesNoEnvironment) {
  EnvWorld world;
  world.WriteAction("hello", "greet", "shell", "greet.sh", "echo \"hello from $PWD\"\n");
  world.WriteConfig();

  CommandResult setup = world.Cli({"env", "setup", "hello"});
  EXPECT_EQ(setup.exit_code, 0) << Describe(setup);
  CommandResult explicit_shell = world.Cli({"env", "setup", "hello", "--runtime", "shell"});
  EXPECT_EQ(explicit_shell.exit_code, 0) << Describe(explicit_shell);
  EXPECT_NE(explicit_shell.stdout_text.find("no environment"), std::string::npos)
      << explicit_shell.stdout_text;
  CommandResult run = world.Cli({"run", "hello.greet"});
  EXPECT_EQ(run.exit_code, 0) << Describe(run);
  EXPECT_NE(run.stdout_text.find("hello from /pack"), std::string::npos) << run.stdout_text;

  EXPECT_FALSE(Exists(world.EnvsDir() + "/hello"));
  EXPECT_FALSE(Exists(world.PackDir("hello") + "/.venv"));
  EXPECT_FALSE(Exists(world.PackDir("hello") + "/node_modules"));
  CommandResult list = world.Cli({"env", "list"});
  EXPECT_EQ(list.exit_code, 0) << Describe(list);
  EXPECT_EQ(list.stdout_text.find("hello"), std::string::npos) << list.stdout_text;
}

// The rows of `env list` for `pack`, split on whitespace.
std::vector<std::vector<std::string>> ListRows(const std::string& stdout_text,
                                               const std::string& pack) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : Lines(stdout_text)) {
    std::vector<std::string> words;
    std::string word;
    for (char c : line + " ") {
      if (c == ' ') {
        if (!word.empty()) words.push_back(word);
        word.clear();
      } else {
        word += c;
      }
    }
    if (!words.empty() && words[0] == pack) rows.push_back(words);
  }
  return rows;
}

TEST(EnvLifecycle, ListDetectsEnvironmentsAndManifestChanges) {
  EnvWorld world;
  WritePythonPack(world, "hello", "");
  world.WriteConfig();

  CommandResult before = world.Cli({"env", "list"});
  ASSERT_EQ(before.exit_code, 0) << Describe(before);
  EXPECT_TRUE(ListRows(before.stdout_text, "hello").empty()) << before.stdout_text;

  ASSERT_EQ(world.Cli({"env", "setup", "hello"}).exit_code, 0);
  CommandResult ready = world.Cli({"env", "list"});
  auto rows = ListRows(ready.stdout_text, "hello");
  ASSERT_EQ(rows.size(), 1u) << ready.stdout_text;
  ASSERT_GE(rows[0].size(), 4u);
  EXPECT_EQ(rows[0][1], "python");
  EXPECT_EQ(rows[0][2], "ready");
  EXPECT_EQ(rows[0][3], world.Marker("hello", "python")["digest"].get<std::string>().substr(0, 12));

  // A manifest appears: the environment no longer matches the pack.
  world.WritePackFile("hello", "requirements.txt", "demo-pkg==1.0\n");
  CommandResult stale = world.Cli({"env", "list"});
  rows = ListRows(stale.stdout_text, "hello");
  ASSERT_EQ(rows.size(), 1u) << stale.stdout_text;
  EXPECT_EQ(rows[0][2], "stale") << stale.stdout_text;

  // And back: the same manifest state as at build time is ready again.
  std::filesystem::remove(world.PackDir("hello") + "/requirements.txt");
  CommandResult again = world.Cli({"env", "list"});
  rows = ListRows(again.stdout_text, "hello");
  ASSERT_EQ(rows.size(), 1u) << again.stdout_text;
  EXPECT_EQ(rows[0][2], "ready") << again.stdout_text;
}

TEST(EnvLifecycle, TwoPacksGetSeparateEnvironments) {
  EnvWorld world;
  for (const char* pack : {"alpha", "beta"}) {
    world.WriteAction(pack, "probe", "python", "probe.py", kPythonProbe, "output_format: json\n");
    world.WriteAction(pack, "mark", "python", "mark.py",
                      "import os\nopen('/env/written-by-' + os.environ['PACKVISOR_PACK_REF'], "
                      "'w').write('x')\nprint(sorted(n for n in os.listdir('/env') "
                      "if n.startswith('written-by-')))\n");
  }
  world.WriteConfig();

  nlohmann::json alpha = world.RunJson("alpha.probe");
  nlohmann::json beta = world.RunJson("beta.probe");
  ASSERT_EQ(alpha["status"], "succeeded") << alpha.dump();
  ASSERT_EQ(beta["status"], "succeeded") << beta.dump();
  auto alpha_id = Identity(world.EnvDir("alpha", "python"));
  auto beta_id = Identity(world.EnvDir("beta", "python"));
  ASSERT_TRUE(alpha_id && beta_id);
  EXPECT_NE(std::make_pair(alpha_id->dev, alpha_id->ino),
            std::make_pair(beta_id->dev, beta_id->ino));
  EXPECT_EQ(alpha["result"]["env_ino"].get<uint64_t>(), static_cast<uint64_t>(alpha_id->ino));
  EXPECT_EQ(beta["result"]["env_ino"].get<uint64_t>(), static_cast<uint64_t>(beta_id->ino));

  CommandResult mark_alpha = world.Cli({"run", "alpha.mark"});
  CommandResult mark_beta = world.Cli({"run", "beta.mark"});
  EXPECT_NE(mark_alpha.stdout_text.find("['written-by-alpha']"), std::string::npos)
      << Describe(mark_alpha);
  EXPECT_NE(mark_beta.stdout_text.find("['written-by-beta']"), std::string::npos)
      << Describe(mark_beta);
  EXPECT_FALSE(Exists(world.PackDir("alpha") + "/.venv"));
  EXPECT_FALSE(Exists(world.PackDir("beta") + "/.venv"));
}

TEST(EnvLifecycle, PythonActionRunsWithEnvironmentInterpreterAndPackage) {
  EnvWorld world;
  WritePythonPack(world, "hello", "demo-pkg==1.0");
  world.WriteConfig();

  CommandResult raw;
  nlohmann::json result = world.RunJson("hello.usepkg", &raw);
  ASSERT_EQ(result["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/python: install"), 1);
  const nlohmann::json& probe = result["result"];
  EXPECT_EQ(probe["executable"], "/env/bin/python3");
  EXPECT_EQ(probe["prefix"], "/env");
  EXPECT_EQ(probe["base_prefix"], "/usr");
  EXPECT_EQ(probe["value"], 42);
  ASSERT_TRUE(probe["module"].is_string()) << probe.dump();
  EXPECT_EQ(probe["module"].get<std::string>().rfind("/env/lib/", 0), 0u) << probe.dump();
  EXPECT_EQ(probe["cwd"], "/pack");
  auto id = Identity(world.EnvDir("hello", "python"));
  ASSERT_TRUE(id);
  EXPECT_EQ(probe["env_ino"].get<uint64_t>(), static_cast<uint64_t>(id->ino));
}

TEST(EnvLifecycle, WorkingDirectoryIsThePack) {
  EnvWorld world;
  world.WriteAction("hello", "pwd", "bash", "pwd.sh", "pwd; ls\n");
  world.WriteAction("hello", "pypwd", "python3", "pypwd.py", "import os\nprint(os.getcwd())\n");
  world.WriteConfig();
  CommandResult shell = world.Cli({"run", "hello.pwd"});
  ASSERT_EQ(shell.exit_code, 0) << Describe(shell);
  std::vector<std::string> lines = Lines(shell.stdout_text);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "/pack");
  EXPECT_NE(shell.stdout_text.find("pack.yaml"), std::string::npos) << shell.stdout_text;
  CommandResult python = world.Cli({"run", "hello.pypwd"});
  ASSERT_EQ(python.exit_code, 0) << Describe(python);
  EXPECT_EQ(Lines(python.stdout_text), std::vector<std::string>{"/pack"});
}

TEST(EnvLifecycle, InterpreterIsTheEnvironmentsBeforeAndAfterExplicitSetup) {
  EnvWorld world;
  WritePythonPack(world, "hello", "");
  world.WriteConfig();

  // Before any setup: the first run builds the environment and uses its interpreter (never the
  // system one).
  EXPECT_FALSE(Exists(world.EnvDir("hello", "python")));
  CommandResult raw;
  nlohmann::json first = world.RunJson("hello.usepkg", &raw);
  ASSERT_EQ(first["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/python: create"), 1);
  EXPECT_EQ(first["result"]["executable"], "/env/bin/python3");
  EXPECT_EQ(first["result"]["prefix"], "/env");

  // After removing it and setting it up explicitly: the same.
  CommandResult removed = world.Cli({"env", "rm", "hello/python"});
  ASSERT_EQ(removed.exit_code, 0) << Describe(removed);
  EXPECT_FALSE(Exists(world.EnvDir("hello", "python")));
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "python")));
  CommandResult setup = world.Cli({"env", "setup", "hello", "--runtime", "python3"});
  ASSERT_EQ(setup.exit_code, 0) << Describe(setup);
  EXPECT_NE(setup.stdout_text.find("hello/python: built"), std::string::npos) << setup.stdout_text;
  nlohmann::json second = world.RunJson("hello.usepkg", &raw);
  ASSERT_EQ(second["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/python:"), 0);
  EXPECT_EQ(second["result"]["executable"], "/env/bin/python3");
  auto id = Identity(world.EnvDir("hello", "python"));
  ASSERT_TRUE(id);
  EXPECT_EQ(second["result"]["env_ino"].get<uint64_t>(), static_cast<uint64_t>(id->ino));
}

TEST(EnvLifecycle, SetupWithoutManifestStillMakesTheVenv) {
  EnvWorld world;
  WritePythonPack(world, "hello", "");
  world.WriteConfig();
  CommandResult setup = world.Cli({"env", "setup", "hello"});
  ASSERT_EQ(setup.exit_code, 0) << Describe(setup);
  EXPECT_EQ(CountLinesContaining(setup.stderr_text, "environment hello/python: create"), 1);
  EXPECT_EQ(CountLinesContaining(setup.stderr_text, "environment hello/python: install"), 0);
  std::string env = world.EnvDir("hello", "python");
  EXPECT_TRUE(Exists(env + "/bin/python3"));
  EXPECT_TRUE(Exists(env + "/pyvenv.cfg"));
  EXPECT_FALSE(Exists(env + "/bin/pip"));  // --without-pip
  EXPECT_FALSE(world.MarkerText("hello", "python").empty());
}

TEST(EnvLifecycle, RuntimeIsChosenByNameThenByExtension) {
  EnvWorld world;
  // runner_type is authoritative: a .py entry point run by bash gets no environment.
  world.WriteAction("named", "run", "shell", "script.py", "echo \"bash ${BASH_VERSION%%.*}\"\n");
  // No runner_type: the extension decides (.py: python with its environment; .sh: shell).
  world.WriteAction("byext", "py", "", "probe.py", kPythonProbe, "output_format: json\n");
  world.WriteAction("byext", "sh", "", "probe.sh", "echo \"bash ${BASH_VERSION%%.*}\"\n");
  world.WriteConfig();

  CommandResult named = world.Cli({"run", "named.run"});
  ASSERT_EQ(named.exit_code, 0) << Describe(named);
  EXPECT_EQ(named.stdout_text.rfind("bash ", 0), 0u) << named.stdout_text;
  EXPECT_FALSE(Exists(world.EnvsDir() + "/named"));
  CommandResult setup_named = world.Cli({"env", "setup", "named"});
  EXPECT_EQ(setup_named.exit_code, 0) << Describe(setup_named);
  EXPECT_FALSE(Exists(world.EnvsDir() + "/named"));

  CommandResult sh = world.Cli({"run", "byext.sh"});
  ASSERT_EQ(sh.exit_code, 0) << Describe(sh);
  EXPECT_EQ(sh.stdout_text.rfind("bash ", 0), 0u) << sh.stdout_text;
  EXPECT_FALSE(Exists(world.EnvsDir() + "/byext")) << "a shell action made an environment";
  nlohmann::json py = world.RunJson("byext.py");
  ASSERT_EQ(py["status"], "succeeded") << py.dump();
  EXPECT_EQ(py["result"]["executable"], "/env/bin/python3");
  EXPECT_TRUE(Exists(world.EnvDir("byext", "python") + "/bin/python3"));
}

TEST(EnvLifecycle, ChangedRequirementsRebuildOnNextRunUnchangedDoNot) {
  EnvWorld world;
  WritePythonPack(world, "hello", "demo-pkg==1.0");
  world.WriteDemoWheel("hello", "1.1", "43");
  world.WriteConfig();

  CommandResult raw;
  nlohmann::json first = world.RunJson("hello.usepkg", &raw);
  ASSERT_EQ(first["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(first["result"]["value"], 42);
  std::string env = world.EnvDir("hello", "python");
  auto id_first = Identity(env);
  std::string marker_first = world.MarkerText("hello", "python");
  ASSERT_TRUE(id_first);

  // Unchanged: no build, same directory, same marker.
  nlohmann::json same = world.RunJson("hello.usepkg", &raw);
  ASSERT_EQ(same["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/python:"), 0);
  EXPECT_EQ(Identity(env), id_first);
  EXPECT_EQ(world.MarkerText("hello", "python"), marker_first);

  // Changed: the next run rebuilds and sees the new version.
  world.WritePackFile("hello", "requirements.txt", "demo-pkg==1.1\n");
  nlohmann::json changed = world.RunJson("hello.usepkg", &raw);
  ASSERT_EQ(changed["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/python: install"), 1);
  EXPECT_EQ(changed["result"]["value"], 43);
  auto id_changed = Identity(env);
  ASSERT_TRUE(id_changed);
  EXPECT_NE(id_changed->ino, id_first->ino);
  EXPECT_NE(world.Marker("hello", "python")["digest"],
            nlohmann::json::parse(marker_first)["digest"]);
  EXPECT_EQ(world.Marker("hello", "python")["ino"].get<uint64_t>(),
            static_cast<uint64_t>(id_changed->ino));
  EXPECT_EQ(changed["result"]["env_ino"].get<uint64_t>(), static_cast<uint64_t>(id_changed->ino));
  // The replaced tree is gone (nothing used it), no staging is left.
  EXPECT_TRUE(world.PackEnvEntries("hello", ".old-").empty());
  EXPECT_TRUE(world.PackEnvEntries("hello", ".staging-").empty());
}

}  // namespace
}  // namespace packvisor::testing
