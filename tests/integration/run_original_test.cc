// Packs of the original platform run unchanged (issue 11): the fixture pack
// tests/fixtures/packs/original_outputs, copied into a temporary packs_base_dir, run through the
// real binary in real sandboxes. Output parsing follows the original (SPEC §7), a null parameter
// is `name=''` in dotenv, `--param` reads its value by the declared type (SPEC §8), the sandbox
// sets the ATTUNE_* twins of the PACKVISOR_* variables and the operator's sandbox.set_env.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class RunOriginalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(world_.PacksDir());
    std::filesystem::copy(SourceDir() + "/tests/fixtures/packs/original_outputs",
                          world_.PackDir("original_outputs"),
                          std::filesystem::copy_options::recursive);
  }

  // `run original_outputs.ACTION --json ARGS...`.
  CommandResult RunJson(const std::string& action, const std::vector<std::string>& args = {}) {
    std::vector<std::string> full = {"run", "original_outputs." + action, "--json"};
    full.insert(full.end(), args.begin(), args.end());
    return world_.Cli(full);
  }

  RunWorld world_;
};

// ---- Output parsing (item 4). ----

TEST_F(RunOriginalTest, JsonAfterALogLineIsTheResult) {
  CommandResult r = RunJson("log_then_json");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["result"], nlohmann::json({{"greeting", "hello"}, {"count", 2}}));
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_EQ(j["stdout"], "") << "as the original: the result replaces stdout";
}

TEST_F(RunOriginalTest, UnparsableJsonStillSucceedsWithTheActionsExitCode) {
  CommandResult r = RunJson("unparsable_json");
  EXPECT_EQ(r.exit_code, 0) << "the action's own exit code, not a made-up 1\n" << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["exit_code"], 0);
  EXPECT_TRUE(j["result"].is_null());
  ASSERT_TRUE(j["error"].is_string()) << j.dump();
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("output_format json"));
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("not valid JSON"));
  EXPECT_EQ(j["stdout"], "all done\nnothing to report {\n") << "no result: stdout is kept";

  CommandResult human = world_.Cli({"run", "original_outputs.unparsable_json"});
  EXPECT_EQ(human.exit_code, 0) << human.stderr_text;
  EXPECT_THAT(human.stderr_text, HasSubstr("succeeded (exit 0)"));
  EXPECT_THAT(human.stderr_text, HasSubstr("not valid JSON"));
}

TEST_F(RunOriginalTest, JsonlSkipsBadLinesAndSaysHowManyAndWhere) {
  CommandResult r = RunJson("jsonl_bad_line");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "succeeded");
  EXPECT_EQ(j["result"], nlohmann::json::parse(R"([{"id": 1, "name": "alpha"},
      {"id": 3, "name": "gamma"}, ["not", "an", "object"]])"));
  ASSERT_TRUE(j["error"].is_string()) << j.dump();
  std::string error = j["error"];
  EXPECT_THAT(error, HasSubstr("skipped 1 line")) << error;
  EXPECT_THAT(error, HasSubstr("line 3")) << error;  // stdout's third line (the second is blank)
}

TEST_F(RunOriginalTest, JsonlPrintsOneLinePerItemInHumanMode) {
  CommandResult r = world_.Cli({"run", "original_outputs.jsonl_bad_line"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::vector<std::string> lines = Lines(r.stdout_text);
  // The raw stdout was streamed live; the parsed items follow it, one compact line each.
  ASSERT_GE(lines.size(), 3u) << r.stdout_text;
  std::vector<std::string> tail(lines.end() - 3, lines.end());
  EXPECT_EQ(tail,
            (std::vector<std::string>{R"({"id":1,"name":"alpha"})", R"({"id":3,"name":"gamma"})",
                                      R"(["not","an","object"])"}))
      << r.stdout_text;
}

// ---- Parameters (items 5b, 5c). ----

TEST_F(RunOriginalTest, NullParameterIsAnEmptyDotenvValue) {
  CommandResult r = world_.Cli({"run", "original_outputs.dotenv_null", "--json", "--params-json",
                                R"({"name": "ann", "nickname": null})"});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["stdout"], "name='ann'\nnickname=''\n");
}

TEST_F(RunOriginalTest, ParamTextIsReadByTheDeclaredType) {
  CommandResult r = RunJson("typed_params", {"--param", "text=2", "--param", "count=2", "--param",
                                             "flag=true", "--param", "anything=2"});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json got = nlohmann::json::parse(r.Json()["stdout"].get<std::string>());
  EXPECT_EQ(got, nlohmann::json::parse(R"({"text": "2", "count": 2, "flag": true,
      "anything": 2})"));
  EXPECT_TRUE(got["text"].is_string());

  // A string takes the raw text, JSON-looking or not; other types still parse it.
  r = RunJson("typed_params", {"--param", "text=true", "--param", "anything={\"k\": [1]}"});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  got = nlohmann::json::parse(r.Json()["stdout"].get<std::string>());
  EXPECT_EQ(got["text"], "true");
  EXPECT_EQ(got["anything"], nlohmann::json({{"k", {1}}}));
  r = RunJson("typed_params", {"--param", "text=\"quoted\""});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  got = nlohmann::json::parse(r.Json()["stdout"].get<std::string>());
  EXPECT_EQ(got["text"], "\"quoted\"");
}

TEST_F(RunOriginalTest, ParamOfAWrongTypeIsStillRefused) {
  CommandResult r = RunJson("typed_params", {"--param", "count=many"});
  EXPECT_EQ(r.exit_code, 125) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "rejected");
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("\"count\": expected integer"));
}

// ---- The environment (item 3). ----

// NAME=value lines of `text` as a map.
std::map<std::string, std::string> Variables(const std::string& text) {
  std::map<std::string, std::string> vars;
  for (const std::string& line : Lines(text)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return vars;
}

TEST_F(RunOriginalTest, AttuneContextVariablesMirrorThePackvisorOnes) {
  CommandResult r = RunJson("show_env");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  std::map<std::string, std::string> vars = Variables(j["stdout"]);
  for (const char* name : {"EXEC_ID", "ACTION", "PACK_REF", "PARAMETER_DELIVERY",
                           "PARAMETER_FORMAT", "PARAMETER_FILE"}) {
    std::string attune = std::string("ATTUNE_") + name;
    std::string packvisor = std::string("PACKVISOR_") + name;
    ASSERT_TRUE(vars.count(attune)) << attune << " missing:\n" << j["stdout"];
    ASSERT_TRUE(vars.count(packvisor)) << packvisor;
    EXPECT_EQ(vars[attune], vars[packvisor]) << name;
  }
  EXPECT_EQ(vars["ATTUNE_EXEC_ID"], j["execution_id"]);
  EXPECT_EQ(vars["ATTUNE_ACTION"], "original_outputs.show_env");
  EXPECT_EQ(vars["ATTUNE_PACK_REF"], "original_outputs");
  EXPECT_EQ(vars["ATTUNE_PARAMETER_DELIVERY"], "file");
  EXPECT_EQ(vars["ATTUNE_PARAMETER_FORMAT"], "json");
}

TEST_F(RunOriginalTest, SetEnvReachesEveryAction) {
  world_.WriteConfig(
      "[sandbox.set_env]\nATTUNE_API_URL = \"http://attune-api.test:8080\"\n"
      "REGION = \"eu-west\"\n");
  CommandResult r = RunJson("show_env");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  std::map<std::string, std::string> vars = Variables(r.Json()["stdout"]);
  EXPECT_EQ(vars["ATTUNE_API_URL"], "http://attune-api.test:8080");

  CommandResult exec = world_.Cli({"exec", "--json", "--", "/usr/bin/env"});
  ASSERT_EQ(exec.exit_code, 0) << exec.stderr_text;
  std::map<std::string, std::string> exec_vars = Variables(exec.Json()["stdout"]);
  EXPECT_EQ(exec_vars["REGION"], "eu-west");
  EXPECT_EQ(exec_vars["ATTUNE_API_URL"], "http://attune-api.test:8080");
  EXPECT_EQ(exec_vars["ATTUNE_EXEC_ID"], exec_vars["PACKVISOR_EXEC_ID"]);
  EXPECT_FALSE(exec_vars["ATTUNE_EXEC_ID"].empty());
}

TEST_F(RunOriginalTest, SetEnvRefusesReservedNamesNamingFileLineAndKey) {
  struct Case {
    std::string toml;
    std::string key;
  };
  for (const Case& c : std::vector<Case>{
           {"[sandbox.set_env]\nOK = \"1\"\nPATH = \"/x\"\n", "sandbox.set_env.PATH"},
           {"[sandbox.set_env]\nLD_PRELOAD = \"/x.so\"\n", "sandbox.set_env.LD_PRELOAD"},
           {"[sandbox.set_env]\nATTUNE_EXEC_ID = \"1\"\n", "sandbox.set_env.ATTUNE_EXEC_ID"},
           {"[sandbox.set_env]\nPACKVISOR_ACTION = \"1\"\n", "sandbox.set_env.PACKVISOR_ACTION"},
           {"[sandbox.set_env]\n\"BAD NAME\" = \"1\"\n", "sandbox.set_env"},
           {"[sandbox.set_env]\nNUL = \"a\\u0000b\"\n", "sandbox.set_env.NUL"},
       }) {
    std::string config = world_.WriteConfig(c.toml);
    CommandResult r = world_.Cli({"run", "original_outputs.show_env"});
    EXPECT_EQ(r.exit_code, 125) << c.toml << r.stdout_text;
    EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << r.stderr_text;
    EXPECT_THAT(r.stderr_text, HasSubstr(config + ":")) << r.stderr_text;
    EXPECT_THAT(r.stderr_text, HasSubstr(c.key)) << r.stderr_text;
    EXPECT_THAT(r.stdout_text, Not(HasSubstr("PACKVISOR_")));
  }
}

}  // namespace
}  // namespace packvisor::testing
