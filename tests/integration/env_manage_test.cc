// `packvisor pack register DIR` (validate, then set up every runtime's environment, reporting
// each) and `packvisor env rm PACK[/RUNTIME]`, offline, through the real binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/env_fixtures.h"

namespace packvisor::testing {
namespace {

constexpr const char* kNodeProbe =
    "const m = require('demo-node');\n"
    "console.log(JSON.stringify({value: m.value, cwd: process.cwd(),\n"
    "  resolved: require.resolve('demo-node')}));\n";

// A pack with a python action (requirements.txt + wheel when `python_deps`), a node action
// (package.json depending on `node_dependency`, when not empty) and a shell action.
void WriteMixedPack(EnvWorld& world, bool python_deps, const std::string& node_dependency) {
  world.WriteAction("hello", "usepkg", "python", "usepkg.py", kPythonProbe,
                    "output_format: json\n");
  world.WriteAction("hello", "nodeuse", "nodejs", "nodeuse.js", kNodeProbe,
                    "output_format: json\n");
  world.WriteAction("hello", "greet", "bash", "greet.sh", "echo hi\n");
  if (python_deps) {
    world.WritePackFile("hello", "requirements.txt", "demo-pkg==1.0\n");
    world.WriteDemoWheel("hello");
  }
  if (!node_dependency.empty()) {
    world.WritePackFile("hello", "package.json",
                        "{\"name\": \"hello\", \"version\": \"1.0.0\", \"dependencies\": "
                        "{\"demo-node\": \"file:" +
                            node_dependency + "\"}}\n");
  }
}

TEST(EnvManage, RegisterSetsUpEveryRuntimeAndReportsEach) {
  EnvWorld world;
  std::string tarball = world.WriteNodeTarball("hello", "demo-node", "7");
  WriteMixedPack(world, true, tarball);
  world.WriteConfig();

  CommandResult reg = world.Cli({"pack", "register", world.PackDir("hello")});
  ASSERT_EQ(reg.exit_code, 0) << Describe(reg);
  EXPECT_NE(reg.stdout_text.find("hello: valid (3 actions)"), std::string::npos) << reg.stdout_text;
  EXPECT_NE(reg.stdout_text.find("hello/python: built (" + world.EnvDir("hello", "python") + ")"),
            std::string::npos)
      << reg.stdout_text;
  EXPECT_NE(reg.stdout_text.find("hello/node: built (" + world.EnvDir("hello", "node") + ")"),
            std::string::npos)
      << reg.stdout_text;
  EXPECT_EQ(reg.stdout_text.find("hello/shell"), std::string::npos) << reg.stdout_text;
  EXPECT_FALSE(Exists(world.EnvDir("hello", "shell")));
  EXPECT_TRUE(Exists(world.MarkerPath("hello", "python")));
  EXPECT_TRUE(Exists(world.MarkerPath("hello", "node")));
  EXPECT_TRUE(Exists(world.EnvDir("hello", "node") + "/node_modules/demo-node/index.js"));
  EXPECT_FALSE(Exists(world.PackDir("hello") + "/node_modules"));

  // The actions use what register built, without building again.
  CommandResult raw;
  nlohmann::json node = world.RunJson("hello.nodeuse", &raw);
  ASSERT_EQ(node["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(node["result"]["value"], 7);
  EXPECT_EQ(node["result"]["cwd"], "/pack");
  EXPECT_EQ(node["result"]["resolved"], "/env/node_modules/demo-node/index.js");
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/"), 0) << raw.stderr_text;
  nlohmann::json python = world.RunJson("hello.usepkg", &raw);
  ASSERT_EQ(python["status"], "succeeded") << Describe(raw);
  EXPECT_EQ(python["result"]["value"], 42);
  EXPECT_EQ(CountLinesContaining(raw.stderr_text, "environment hello/"), 0) << raw.stderr_text;

  // Registering again reports both as ready.
  CommandResult again = world.Cli({"pack", "register", world.PackDir("hello")});
  EXPECT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_NE(again.stdout_text.find("hello/python: ready"), std::string::npos) << again.stdout_text;
  EXPECT_NE(again.stdout_text.find("hello/node: ready"), std::string::npos) << again.stdout_text;
}

TEST(EnvManage, RegisterReportsAFailingRuntimeAndSetsUpTheOthers) {
  EnvWorld world;
  // The node dependency does not exist, and npm is offline.
  WriteMixedPack(world, false, "/pack/vendor/missing-1.0.0.tgz");
  world.WriteConfig();

  CommandResult reg = world.Cli({"pack", "register", world.PackDir("hello")});
  EXPECT_EQ(reg.exit_code, 1) << Describe(reg);
  EXPECT_NE(reg.stdout_text.find("hello/python: built"), std::string::npos) << reg.stdout_text;
  EXPECT_NE(reg.stderr_text.find("hello/node:"), std::string::npos) << reg.stderr_text;
  EXPECT_NE(reg.stderr_text.find("install failed"), std::string::npos) << reg.stderr_text;
  EXPECT_TRUE(Exists(world.EnvDir("hello", "python") + "/bin/python3"));
  EXPECT_FALSE(Exists(world.EnvDir("hello", "node")));
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "node")));
  EXPECT_TRUE(world.PackEnvEntries("hello", ".staging-").empty());

  // The node action then fails as setup_failed; the python one runs.
  CommandResult raw;
  nlohmann::json node = world.RunJson("hello.nodeuse", &raw);
  EXPECT_EQ(node["status"], "setup_failed") << Describe(raw);
  EXPECT_EQ(raw.exit_code, 125);
  nlohmann::json python = world.RunJson("hello.usepkg", &raw);
  EXPECT_EQ(python["status"], "succeeded") << Describe(raw);
}

TEST(EnvManage, RegisterRejectsAnInvalidPackWithoutBuilding) {
  EnvWorld world;
  // Its only action is bad (a bad action beside good ones: tests/integration/pack_compat_test.cc).
  world.WriteAction("hello", "broken", "ruby", "broken.rb", "puts 1\n");
  world.WriteConfig();
  CommandResult reg = world.Cli({"pack", "register", world.PackDir("hello")});
  EXPECT_NE(reg.exit_code, 0) << Describe(reg);
  EXPECT_NE((reg.stdout_text + reg.stderr_text).find("ruby"), std::string::npos) << Describe(reg);
  EXPECT_FALSE(Exists(world.EnvsDir() + "/hello"));

  // A valid pack outside packs_base_dir is not registered either (no execution would use it).
  EnvWorld elsewhere;
  elsewhere.WriteAction("other", "usepkg", "python", "usepkg.py", kPythonProbe);
  CommandResult outside = world.Cli({"pack", "register", elsewhere.PackDir("other")});
  EXPECT_NE(outside.exit_code, 0) << Describe(outside);
  EXPECT_NE(outside.stderr_text.find("packs_base_dir"), std::string::npos) << Describe(outside);
  EXPECT_FALSE(Exists(world.EnvsDir() + "/other"));
}

TEST(EnvManage, RemoveOneRuntimeOrTheWholePack) {
  EnvWorld world;
  WriteMixedPack(world, false, "");  // python and node environments without dependencies
  world.WriteConfig();
  CommandResult setup = world.Cli({"env", "setup", "hello"});
  ASSERT_EQ(setup.exit_code, 0) << Describe(setup);
  ASSERT_TRUE(Exists(world.EnvDir("hello", "python")));
  ASSERT_TRUE(Exists(world.EnvDir("hello", "node")));

  CommandResult one = world.Cli({"env", "rm", "hello/node"});
  EXPECT_EQ(one.exit_code, 0) << Describe(one);
  EXPECT_FALSE(Exists(world.EnvDir("hello", "node")));
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "node")));
  EXPECT_TRUE(Exists(world.EnvDir("hello", "python") + "/bin/python3"));
  EXPECT_TRUE(Exists(world.MarkerPath("hello", "python")));

  CommandResult all = world.Cli({"env", "rm", "hello"});
  EXPECT_EQ(all.exit_code, 0) << Describe(all);
  EXPECT_FALSE(Exists(world.EnvDir("hello", "python")));
  EXPECT_FALSE(Exists(world.MarkerPath("hello", "python")));
  EXPECT_FALSE(Exists(world.EnvsDir() + "/hello")) << "env rm PACK leaves the pack's directory";
  CommandResult list = world.Cli({"env", "list"});
  EXPECT_EQ(list.stdout_text.find("hello"), std::string::npos) << list.stdout_text;

  // Names that are not names are refused, and nothing outside runtime_envs_dir is touched.
  for (const char* bad : {"../hello", "hello/../x", "Hello", "hello/py thon"}) {
    CommandResult refused = world.Cli({"env", "rm", bad});
    EXPECT_EQ(refused.exit_code, 125) << bad << ": " << Describe(refused);
  }
  EXPECT_TRUE(Exists(world.PackDir("hello") + "/pack.yaml"));
}

}  // namespace
}  // namespace packvisor::testing
