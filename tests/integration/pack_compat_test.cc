// Packs of the original platform run unchanged (SPEC §4, issue 11), through the real binary: the
// fixture tests/fixtures/packs/original_core (copied into a temporary packs_base_dir) is
// validated, listed, registered and run; one bad action (the native runner) never hides or
// blocks the rest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPack[] = "original_core";

// The index of the first line of `lines` containing `needle`; -1 when none does.
int LineIndex(const std::vector<std::string>& lines, const std::string& needle) {
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(needle) != std::string::npos) return static_cast<int>(i);
  }
  return -1;
}

std::string Describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.stdout_text + "\nstderr:\n" +
         r.stderr_text;
}

class PackCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Files 0644 and directories 0755, whatever the checkout's modes.
    std::string source = SourceDir() + "/tests/fixtures/packs/" + kPack;
    for (const auto& entry : fs::recursive_directory_iterator(source)) {
      if (!entry.is_regular_file()) continue;
      std::string relative = fs::relative(entry.path(), source).string();
      world_.WriteFile("packs/" + std::string(kPack) + "/" + relative,
                       ReadFileOrEmpty(entry.path().string()));
    }
  }

  std::string PackDir() const { return world_.PackDir(kPack); }
  std::string ActionFile(const std::string& name) const { return PackDir() + "/actions/" + name; }

  RunWorld world_;
};

TEST_F(PackCompatTest, ValidateNotesIgnoredKeysWarnsAndFailsOnlyOnTheBadAction) {
  CommandResult r = world_.Cli({"pack", "validate", PackDir()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  std::vector<std::string> lines = Lines(r.stdout_text);
  for (const std::string& expected : {
           PackDir() + "/pack.yaml:10: note: is_standard: ignored",
           PackDir() + "/pack.yaml:14: note: conf_schema: ignored",
           ActionFile("echo.yaml") + ":12: note: default_execution_permission_set_refs: ignored",
           ActionFile("echo.yaml") + ":13: note: accesses_mcp: ignored",
           ActionFile("echo.yaml") + ":14: note: log_retention_days: ignored",
           ActionFile("echo.yaml") + ":15: note: artifact_retention_days: ignored",
           ActionFile("echo.yaml") + ":22: note: parameters.message.position: ignored",
           ActionFile("echo.yaml") + ":27: note: output: ignored",
           ActionFile("add.yaml") + ":15: note: parameters.additionalProperties: ignored",
           ActionFile("lookup.py") +
               ":7: warning: reads parameter \"region\", which lookup.yaml does not declare",
           ActionFile("native_tool.yaml") + ":6: error: runner_type: unknown runtime \"native\"",
       }) {
    EXPECT_GE(LineIndex(lines, expected), 0) << "missing: " << expected << "\n" << Describe(r);
  }
  // The native action's runner is its first problem, before the file it names.
  int runner = LineIndex(lines, "native_tool.yaml:6: error: runner_type");
  int entry = LineIndex(lines, "native_tool.yaml:7: error: entry_point");
  EXPECT_GE(entry, 0) << Describe(r);
  EXPECT_LT(runner, entry) << Describe(r);
  EXPECT_THAT(r.stdout_text, HasSubstr(PackDir() + ": 2 errors (1 warning, "));
  EXPECT_THAT(r.stdout_text, HasSubstr("; 3 good actions, 1 bad)"));
  EXPECT_EQ(r.stderr_text, "");
}

TEST_F(PackCompatTest, TyposAreWarningsWithDidYouMeanAndDoNotFailValidate) {
  world_.WriteSimpleAction("typos", "greet", "shell", "greet.sh", "echo hi\n",
                           "paramters:\n  who: {type: string}\ntimeout_second: 5\n");
  std::string yaml = world_.PackDir("typos") + "/actions/greet.yaml";
  CommandResult r = world_.Cli({"pack", "validate", world_.PackDir("typos")});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.stdout_text,
              HasSubstr(yaml + ":4: warning: paramters: unknown key, ignored; did you mean "
                               "\"parameters\"?"));
  EXPECT_THAT(r.stdout_text,
              HasSubstr(yaml + ":6: warning: timeout_second: unknown key, ignored; did you mean "
                               "\"timeout_seconds\"?"));
  EXPECT_THAT(r.stdout_text, HasSubstr(": ok (2 warnings, 0 notes; 1 good action, 0 bad)"));

  world_.WriteAction("typos", "broken",
                     "name: broken\nrunner_type: shell\nentry_piont: greet.sh\n");
  std::string broken = world_.PackDir("typos") + "/actions/broken.yaml";
  r = world_.Cli({"pack", "validate", world_.PackDir("typos")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.stdout_text, HasSubstr(broken + ":3: warning: entry_piont: unknown key, ignored; "
                                                "did you mean \"entry_point\"?"));
  EXPECT_THAT(r.stdout_text, HasSubstr(broken + ":1: error: entry_point: missing"));
}

TEST_F(PackCompatTest, PackListShowsThePackAndMarksTheBadAction) {
  CommandResult r = world_.Cli({"pack", "list"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);  // something is bad
  std::vector<std::string> lines = Lines(r.stdout_text);
  ASSERT_GE(LineIndex(lines, "original_core 1.2.0  Actions in the original platform's format"), 0)
      << Describe(r);
  for (const char* good : {"original_core.add", "original_core.echo", "original_core.lookup"}) {
    int i = LineIndex(lines, good);
    ASSERT_GE(i, 0) << good << "\n" << Describe(r);
    EXPECT_THAT(lines[i], Not(HasSubstr("BAD")));
  }
  EXPECT_THAT(lines[LineIndex(lines, "original_core.echo")], HasSubstr("shell    echo.sh"));
  EXPECT_THAT(lines[LineIndex(lines, "original_core.add")], HasSubstr("python   add.py"));
  int bad = LineIndex(lines, "original_core.native_tool");
  ASSERT_GE(bad, 0) << Describe(r);
  EXPECT_THAT(lines[bad], HasSubstr("BAD"));
  EXPECT_THAT(lines[bad], HasSubstr(ActionFile("native_tool.yaml") +
                                    ":6: runner_type: unknown runtime \"native\""));
  EXPECT_THAT(lines[bad], HasSubstr("(and 1 more problem)"));
}

TEST_F(PackCompatTest, PackListJson) {
  world_.WriteAction(kPack, "off",
                     "name: off\nrunner_type: shell\nentry_point: echo.sh\nenabled: false\n");
  CommandResult r = world_.Cli({"pack", "list", "--json"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  nlohmann::json doc = r.Json();
  ASSERT_TRUE(doc["packs"].is_array()) << r.stdout_text;
  EXPECT_EQ(doc["broken_packs"], nlohmann::json::array());
  ASSERT_EQ(doc["packs"].size(), 1u) << r.stdout_text;
  const nlohmann::json& pack = doc["packs"][0];
  EXPECT_EQ(pack["ref"], kPack);
  EXPECT_EQ(pack["version"], "1.2.0");
  EXPECT_EQ(pack["dir"], PackDir());
  std::vector<std::string> actions;
  for (const nlohmann::json& action : pack["actions"]) {
    actions.push_back(action["name"].get<std::string>() + " " +
                      action["runtime"].get<std::string>() + " " +
                      action["entry_point"].get<std::string>() + " " +
                      (action["enabled"].get<bool>() ? "enabled" : "disabled"));
  }
  EXPECT_EQ(actions, (std::vector<std::string>{
                         "add python add.py enabled", "echo shell echo.sh enabled",
                         "lookup python lookup.py enabled", "off shell echo.sh disabled"}));
  EXPECT_EQ(pack["actions"][0]["ref"], "original_core.add");
  ASSERT_EQ(pack["bad_actions"].size(), 1u);
  const nlohmann::json& bad = pack["bad_actions"][0];
  EXPECT_EQ(bad["name"], "native_tool");
  EXPECT_EQ(bad["ref"], "original_core.native_tool");
  EXPECT_EQ(bad["source"], ActionFile("native_tool.yaml"));
  EXPECT_THAT(bad["reason"].get<std::string>(),
              HasSubstr("runner_type: unknown runtime \"native\""));
}

TEST_F(PackCompatTest, RegisterSetsUpTheRestAndNamesTheBadOnes) {
  CommandResult r = world_.Cli({"pack", "register", PackDir()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.stdout_text, HasSubstr("original_core: 3 actions registered, 1 bad"));
  EXPECT_THAT(r.stdout_text, HasSubstr("original_core/python: built (" + world_.EnvsDir() +
                                       "/original_core/python)"));
  EXPECT_THAT(r.stderr_text,
              HasSubstr("packvisor: error: original_core.native_tool not registered: " +
                        ActionFile("native_tool.yaml") + ":6: runner_type:"));
  EXPECT_THAT(r.stdout_text, Not(HasSubstr("note:")));  // notes are for validate
  EXPECT_TRUE(fs::exists(world_.EnvsDir() + "/original_core/python/bin/python3"));
  EXPECT_FALSE(fs::exists(world_.EnvsDir() + "/original_core/shell"));

  // The registered environment is the one the good python action runs with.
  CommandResult run = world_.Cli({"run", "original_core.lookup", "--param", "key=beta", "--json"});
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  EXPECT_EQ(run.Json()["result"],
            nlohmann::json::parse(R"({"key": "beta", "value": 2, "region": "default"})"));
  EXPECT_THAT(run.stderr_text, Not(HasSubstr("building")));
}

TEST_F(PackCompatTest, GoodActionsRunAndTheNativeOneFailsNamingItsRunnerFirst) {
  CommandResult echo = world_.Cli(
      {"run", "original_core.echo", "--param", "message=hello there", "--param", "uppercase=true"});
  EXPECT_EQ(echo.exit_code, 0) << Describe(echo);
  EXPECT_EQ(echo.stdout_text, "echo: HELLO THERE\n");

  CommandResult add =
      world_.Cli({"run", "original_core.add", "--param", "a=2", "--param", "b=3", "--json"});
  ASSERT_EQ(add.exit_code, 0) << Describe(add);
  EXPECT_EQ(add.Json()["result"], nlohmann::json::parse(R"({"result": 5})"));
  CommandResult sub = world_.Cli({"run", "original_core.add", "--param", "a=2", "--param", "b=3",
                                  "--param", "op=sub", "--json"});
  ASSERT_EQ(sub.exit_code, 0) << Describe(sub);
  EXPECT_EQ(sub.Json()["result"], nlohmann::json::parse(R"({"result": -1})"));

  CommandResult native = world_.Cli({"run", "original_core.native_tool", "--json"});
  EXPECT_EQ(native.exit_code, 125) << Describe(native);
  nlohmann::json result = native.Json();
  EXPECT_EQ(result["status"], "rejected");
  std::string error = result["error"].get<std::string>();
  EXPECT_EQ(error.rfind(
                ActionFile("native_tool.yaml") + ":6: runner_type: unknown runtime \"native\"", 0),
            0u)
      << error;
}

TEST_F(PackCompatTest, JsonSchemaParametersAreCheckedExactlyLikeTheFlatForm) {
  // The same parameters in the flat form, in another pack.
  world_.WriteSimpleAction("flat", "add", "python", "add.py", ReadFileOrEmpty(ActionFile("add.py")),
                           "output_format: json\nparameters:\n"
                           "  a: {type: integer, required: true}\n"
                           "  b: {type: integer, default: 0}\n"
                           "  op: {type: string, enum: [add, sub], default: add}\n");
  for (const std::vector<std::string>& params : std::vector<std::vector<std::string>>{
           {},                                       // a is required
           {"--param", "a=x"},                       // a is an integer
           {"--param", "a=1", "--param", "op=mul"},  // op is one of add, sub
           {"--param", "a=1", "--param", "c=2"},     // c is not declared
       }) {
    std::vector<std::string> schema_args = {"run", "original_core.add", "--json"};
    std::vector<std::string> flat_args = {"run", "flat.add", "--json"};
    schema_args.insert(schema_args.end(), params.begin(), params.end());
    flat_args.insert(flat_args.end(), params.begin(), params.end());
    CommandResult schema = world_.Cli(schema_args);
    CommandResult flat = world_.Cli(flat_args);
    std::string what = params.empty() ? "(none)" : params.back();
    EXPECT_EQ(schema.exit_code, 125) << what << "\n" << Describe(schema);
    EXPECT_EQ(flat.exit_code, 125) << what << "\n" << Describe(flat);
    std::string schema_error = schema.Json()["error"].get<std::string>();
    std::string flat_error = flat.Json()["error"].get<std::string>();
    // Errors do not repeat the action ref (action_ref carries it): the texts are the same.
    EXPECT_EQ(schema.Json()["action_ref"], "original_core.add");
    EXPECT_FALSE(schema_error.empty()) << what;
    EXPECT_EQ(schema_error, flat_error) << what;
  }
}

TEST_F(PackCompatTest, ValidateCatchesAScriptTheSandboxUserCannotRead) {
  ASSERT_EQ(chmod(ActionFile("echo.sh").c_str(), 0600), 0);
  CommandResult r = world_.Cli({"pack", "validate", PackDir()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(
      r.stdout_text,
      HasSubstr(ActionFile("echo.yaml") + ":7: error: entry_point: the sandbox user cannot read " +
                ActionFile("echo.sh") + ": " + ActionFile("echo.sh") + " (mode 0600"));
  EXPECT_THAT(r.stdout_text, HasSubstr("3 errors"));
  // What validate catches, run refuses: the script cannot be read in the sandbox.
  CommandResult run = world_.Cli({"run", "original_core.echo", "--param", "message=x"});
  EXPECT_NE(run.exit_code, 0) << Describe(run);
  EXPECT_THAT(run.stderr_text, HasSubstr("Permission denied"));
  CommandResult list = world_.Cli({"pack", "list"});
  std::vector<std::string> lines = Lines(list.stdout_text);
  int echo = LineIndex(lines, "original_core.echo");
  ASSERT_GE(echo, 0) << Describe(list);
  EXPECT_THAT(lines[echo], HasSubstr("BAD"));

  // A directory on the way without the search bit for others.
  ASSERT_EQ(chmod(ActionFile("echo.sh").c_str(), 0644), 0);
  ASSERT_EQ(chmod((PackDir() + "/actions").c_str(), 0750), 0);
  r = world_.Cli({"pack", "validate", PackDir()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.stdout_text, HasSubstr(PackDir() + "/actions (mode 0750"));
  EXPECT_THAT(r.stdout_text, HasSubstr("the search bit (x)"));
  ASSERT_EQ(chmod((PackDir() + "/actions").c_str(), 0755), 0);
}

TEST_F(PackCompatTest, ValidateCatchesLimitsAboveTheCeilings) {
  world_.WriteAction(kPack, "greedy",
                     "ref: original_core.greedy\nrunner_type: shell\nentry_point: echo.sh\n"
                     "limits:\n  memory_mb: 100000\n");
  CommandResult r = world_.Cli({"pack", "validate", PackDir()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.stdout_text,
              HasSubstr(ActionFile("greedy.yaml") + ":5: error: limits.memory_mb: 100000 exceeds "
                                                    "sandbox.memory_ceiling_mb 512"));
  CommandResult run = world_.Cli({"run", "original_core.greedy"});
  EXPECT_EQ(run.exit_code, 125) << Describe(run);
  EXPECT_THAT(run.stderr_text,
              HasSubstr("limits.memory_mb: 100000 exceeds sandbox.memory_ceiling_mb"));
  // Within the ceilings (raised by the operator) it is fine.
  world_.WriteConfig("[sandbox]\nmemory_ceiling_mb = 200000\n");
  r = world_.Cli({"pack", "validate", PackDir()});
  EXPECT_THAT(r.stdout_text, Not(HasSubstr("limits.memory_mb"))) << Describe(r);
}

// chdir for one test: each test of this binary runs in its own process (gtest_discover_tests).
class WorkingDirectory {
 public:
  explicit WorkingDirectory(const std::string& dir) : previous_(fs::current_path()) {
    fs::current_path(dir);
  }
  ~WorkingDirectory() { fs::current_path(previous_); }

 private:
  fs::path previous_;
};

TEST_F(PackCompatTest, RelativeDirectoriesAreRelativeToTheCurrentDirectory) {
  world_.WriteSimpleAction("rel", "hi", "shell", "hi.sh", "echo hi\n");
  world_.WriteConfig();
  WorkingDirectory cwd(world_.PacksDir());
  for (std::string dir : {"./rel", "rel", "rel/", "../packs/rel"}) {
    CommandResult validate = world_.Cli({"pack", "validate", dir});
    EXPECT_EQ(validate.exit_code, 0) << dir << "\n" << Describe(validate);
    EXPECT_THAT(validate.stdout_text, HasSubstr(dir + ": ok"));
    CommandResult reg = world_.Cli({"pack", "register", dir});
    EXPECT_EQ(reg.exit_code, 0) << dir << "\n" << Describe(reg);
    EXPECT_THAT(reg.stdout_text, HasSubstr("rel: valid (1 action)"));
  }
  for (std::string dir : {"./nope", "nope", "rel/nope"}) {
    EXPECT_EQ(world_.Cli({"pack", "validate", dir}).exit_code, 127) << dir;
    EXPECT_EQ(world_.Cli({"pack", "register", dir}).exit_code, 127) << dir;
  }
}

TEST_F(PackCompatTest, AMissingPackExits127InEveryCommand) {
  std::string missing = world_.Path("packs/nope");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"pack", "validate", missing},
           {"pack", "register", missing},
           {"run", "nope.action"},
       }) {
    CommandResult r = world_.Cli(args);
    EXPECT_EQ(r.exit_code, 127) << args[1] << "\n" << Describe(r);
    EXPECT_THAT(r.stderr_text, HasSubstr("nope")) << Describe(r);
    EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << Describe(r);
  }
}

}  // namespace
}  // namespace packvisor::testing
