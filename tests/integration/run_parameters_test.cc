// Parameter delivery of `packvisor run` (SPEC §4, §7, §8): the json, dotenv and yaml documents on
// stdin, `parameter_delivery: file`, defaults, a name given as both a parameter and a secret, and
// the CLI's --param / --params-json / --secrets-file / --secrets-stdin. Real binary, real sandbox.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A python action that reports its whole stdin and the PACKVISOR_* variables as JSON.
constexpr char kEchoStdin[] =
    "import json, os, sys\n"
    "data = sys.stdin.read()\n"
    "env = {k: v for k, v in os.environ.items() if k.startswith('PACKVISOR_PARAMETER')}\n"
    "print(json.dumps({'stdin': data, 'env': env}))\n";

class RunParametersTest : public ::testing::Test {
 protected:
  // Runs `run ACTION --json ARGS...` and returns the parsed result object (checks exit 0).
  nlohmann::json RunOk(const std::string& action, const std::vector<std::string>& args,
                       const std::string& stdin_data = {}) {
    std::vector<std::string> full = {"run", action, "--json"};
    full.insert(full.end(), args.begin(), args.end());
    CommandResult r = world_.Cli(full, stdin_data);
    EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
    nlohmann::json j = r.Json();
    EXPECT_EQ(j["status"], "succeeded") << r.stdout_text;
    return j["result"];
  }

  RunWorld world_;
};

TEST_F(RunParametersTest, JsonIsOneCompactLineThenEof) {
  world_.WriteSimpleAction("par", "js", "python", "js.py", kEchoStdin,
                           "output_format: json\nparameters:\n"
                           "  name: {type: string, required: true}\n"
                           "  count: {type: integer, default: 7}\n"
                           "  token: {type: string, secret: true}\n");
  world_.WriteFile("s.json", R"({"token": "tk-1"})", 0600);
  nlohmann::json result =
      RunOk("par.js", {"--param", "name=Ann", "--secrets-file", world_.Path("s.json")});
  std::string stdin_text = result["stdin"];
  ASSERT_FALSE(stdin_text.empty());
  EXPECT_EQ(stdin_text.back(), '\n');
  EXPECT_EQ(stdin_text.find('\n'), stdin_text.size() - 1) << "exactly one line";
  EXPECT_EQ(nlohmann::json::parse(stdin_text),
            nlohmann::json({{"name", "Ann"}, {"count", 7}, {"token", "tk-1"}}));
  EXPECT_EQ(result["env"]["PACKVISOR_PARAMETER_DELIVERY"], "stdin");
  EXPECT_EQ(result["env"]["PACKVISOR_PARAMETER_FORMAT"], "json");
  EXPECT_FALSE(result["env"].contains("PACKVISOR_PARAMETER_FILE"));
}

TEST_F(RunParametersTest, DotenvIsSortedQuotedFlattenedLines) {
  world_.WriteSimpleAction("par", "dotenv", "python", "dotenv.py", kEchoStdin,
                           "output_format: json\nparameter_format: dotenv\nparameters:\n"
                           "  zeta: {type: string}\n  alpha: {type: integer}\n"
                           "  headers: {type: object}\n  list: {type: array}\n"
                           "  flag: {type: boolean}\n");
  nlohmann::json result =
      RunOk("par.dotenv", {"--params-json",
                           R"({"zeta": "it's", "alpha": 3, "headers": {"Content-Type": "text/plain",
                         "x": {"y": "z"}}, "list": [1, "a"], "flag": true})"});
  std::string text = result["stdin"];
  // Trailing newline optional; everything else exact.
  if (!text.empty() && text.back() == '\n') text.pop_back();
  EXPECT_EQ(text,
            "alpha='3'\n"
            "flag='true'\n"
            "headers.Content-Type='text/plain'\n"
            "headers.x.y='z'\n"
            "list='[1,\"a\"]'\n"
            "zeta='it'\\''s'");
  EXPECT_EQ(result["env"]["PACKVISOR_PARAMETER_FORMAT"], "dotenv");
}

TEST_F(RunParametersTest, YamlIsADocumentOfTheInputs) {
  // The system python (PyYAML; the pack's virtualenv has no packages) parses the document.
  world_.WriteSimpleAction("par", "yaml", "shell", "yaml_in.sh",
                           "exec /usr/bin/python3 -c 'import json, sys, yaml\n"
                           "print(json.dumps({\"parsed\": yaml.safe_load(sys.stdin.read())}))'\n",
                           "output_format: json\nparameter_format: yaml\nparameters:\n"
                           "  s: {type: string}\n  n: {type: number}\n  o: {type: object}\n"
                           "  yes_string: {type: string}\n"
                           "  secret: {type: string, secret: true}\n");
  nlohmann::json inputs = {{"s", "a: b # not a comment"},
                           {"n", 2.5},
                           {"o", {{"k", {1, 2}}, {"nil", nullptr}}},
                           {"yes_string", "yes"}};
  nlohmann::json result = RunOk("par.yaml", {"--params-json", inputs.dump(), "--secrets-stdin"},
                                R"({"secret": "multi\nline 'q' \"dq\""})");
  nlohmann::json expected = inputs;
  expected["secret"] = "multi\nline 'q' \"dq\"";
  EXPECT_EQ(result["parsed"], expected);
}

TEST_F(RunParametersTest, FileDeliveryIsA0400FileInTheSandboxTmpAndStdinIsEmpty) {
  world_.WriteSimpleAction(
      "par", "file", "python", "file.py",
      "import json, os, sys\n"
      "path = os.environ.get('PACKVISOR_PARAMETER_FILE', '')\n"
      "st = os.stat(path)\n"
      "print(json.dumps({'path': path, 'mode': oct(st.st_mode & 0o7777),\n"
      "                  'uid': st.st_uid, 'me': os.getuid(),\n"
      "                  'content': open(path).read(), 'stdin': sys.stdin.read(),\n"
      "                  'delivery': os.environ.get('PACKVISOR_PARAMETER_DELIVERY')}))\n",
      "output_format: json\nparameter_delivery: file\nparameters:\n"
      "  city: {type: string}\n  key: {type: string, secret: true}\n");
  std::set<std::string> tmp_before = DirectoryEntries("/tmp");
  nlohmann::json result =
      RunOk("par.file", {"--param", "city=Paris", "--secrets-stdin"}, R"({"key": "k-123"})");
  std::string path = result["path"];
  EXPECT_EQ(path.rfind("/tmp/", 0), 0u) << path;
  EXPECT_EQ(result["mode"], "0o400");
  EXPECT_EQ(result["uid"], result["me"]) << "readable by the action user";
  EXPECT_EQ(result["stdin"], "");
  EXPECT_EQ(result["delivery"], "file");
  EXPECT_EQ(nlohmann::json::parse(result["content"].get<std::string>()),
            nlohmann::json({{"city", "Paris"}, {"key", "k-123"}}));
  // The file lived in the sandbox's private tmpfs, not on the host.
  EXPECT_FALSE(std::filesystem::exists(path)) << path << " exists on the host";
  EXPECT_THAT(NewTmpEntries(tmp_before), ::testing::IsEmpty());
}

TEST_F(RunParametersTest, FileDeliveryWithDotenvFormat) {
  world_.WriteSimpleAction("par", "filedot", "shell", "filedot.sh",
                           "cat \"$PACKVISOR_PARAMETER_FILE\"\necho \"stdin=[$(cat)]\"\n",
                           "parameter_delivery: file\nparameter_format: dotenv\nparameters:\n"
                           "  b: {type: string}\n  a: {type: integer}\n");
  CommandResult r =
      world_.Cli({"run", "par.filedot", "--param", "b=x y", "--param", "a=1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  std::string out = r.Json()["stdout"];
  EXPECT_THAT(out, HasSubstr("a='1'\nb='x y'"));
  EXPECT_THAT(out, HasSubstr("stdin=[]"));
}

TEST_F(RunParametersTest, ParameterAndSecretWithTheSameNameAreRejected) {
  world_.WriteSimpleAction("par", "js", "python", "js.py", kEchoStdin,
                           "parameters:\n  api_key: {type: string}\n");
  CommandResult r =
      world_.Cli({"run", "par.js", "--param", "api_key=public-value", "--secrets-stdin", "--json"},
                 R"({"api_key": "hidden-value-42"})");
  EXPECT_EQ(r.exit_code, 125) << r.stdout_text << r.stderr_text;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "rejected");
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("api_key"));
  EXPECT_THAT(r.stdout_text + r.stderr_text, Not(HasSubstr("hidden-value-42")));
}

TEST_F(RunParametersTest, ParamValuesParseAsJsonElseString) {
  world_.WriteSimpleAction("par", "any", "python", "any.py", kEchoStdin,
                           "output_format: json\nparameters:\n  n: {}\n  s: {}\n  f: {}\n"
                           "  b: {}\n  q: {}\n  o: {}\n  e: {}\n  z: {}\n");
  nlohmann::json result =
      RunOk("par.any", {"--param", "n=3", "--param", "s=abc", "--param", "f=2.5", "--param",
                        "b=true", "--param", "q=\"3\"", "--param", "o={\"k\":[1]}", "--param",
                        "e=", "--param", "z=a=b"});
  nlohmann::json got = nlohmann::json::parse(result["stdin"].get<std::string>());
  EXPECT_TRUE(got["n"].is_number_integer()) << got.dump();
  EXPECT_EQ(got["n"], 3);
  EXPECT_TRUE(got["s"].is_string());
  EXPECT_EQ(got["s"], "abc");
  EXPECT_EQ(got["f"], 2.5);
  EXPECT_EQ(got["b"], true);
  EXPECT_EQ(got["q"], "3");
  EXPECT_EQ(got["o"], nlohmann::json({{"k", {1}}}));
  EXPECT_EQ(got["e"], "");
  EXPECT_EQ(got["z"], "a=b");
}

TEST_F(RunParametersTest, TypedParameterAcceptsParsedInteger) {
  world_.WriteSimpleAction("par", "typed", "python", "typed.py", kEchoStdin,
                           "output_format: json\nparameters:\n  n: {type: integer}\n"
                           "  s: {type: string}\n");
  nlohmann::json result = RunOk("par.typed", {"--param", "n=3", "--param", "s=abc"});
  EXPECT_EQ(nlohmann::json::parse(result["stdin"].get<std::string>()),
            nlohmann::json({{"n", 3}, {"s", "abc"}}));
}

TEST_F(RunParametersTest, ParamsJsonFromFileWithParamOverride) {
  world_.WriteSimpleAction("par", "any", "python", "any.py", kEchoStdin,
                           "output_format: json\nparameters:\n  a: {}\n  b: {}\n  c: {}\n");
  world_.WriteFile("params.json", R"({"a": 1, "b": {"x": "y"}, "c": "from file"})");
  nlohmann::json result =
      RunOk("par.any", {"--params-json", "@" + world_.Path("params.json"), "--param", "c=cli"});
  EXPECT_EQ(nlohmann::json::parse(result["stdin"].get<std::string>()),
            nlohmann::json({{"a", 1}, {"b", {{"x", "y"}}}, {"c", "cli"}}));
}

TEST_F(RunParametersTest, ParamsJsonInline) {
  world_.WriteSimpleAction("par", "any", "python", "any.py", kEchoStdin,
                           "output_format: json\nparameters:\n  a: {}\n  b: {}\n");
  nlohmann::json result = RunOk("par.any", {"--params-json", R"({"a": [1, 2], "b": null})"});
  nlohmann::json got = nlohmann::json::parse(result["stdin"].get<std::string>());
  EXPECT_EQ(got["a"], nlohmann::json({1, 2}));
}

TEST_F(RunParametersTest, ParamsJsonMustBeAnObject) {
  world_.WriteSimpleAction("par", "any", "python", "any.py", kEchoStdin, "parameters:\n  a: {}\n");
  for (const std::string& bad : {std::string("[1]"), std::string("{not json")}) {
    CommandResult r = world_.Cli({"run", "par.any", "--params-json", bad});
    EXPECT_EQ(r.exit_code, 125) << bad;
    EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << r.stderr_text;
    EXPECT_THAT(r.stderr_text, HasSubstr("--params-json"));
  }
}

TEST_F(RunParametersTest, SecretsStdinReachTheAction) {
  world_.WriteSimpleAction("par", "sec", "python", "sec.py", kEchoStdin,
                           "output_format: json\nparameters:\n  user: {type: string}\n"
                           "  password: {type: string, secret: true, required: true}\n");
  nlohmann::json result = RunOk("par.sec", {"--param", "user=bob", "--secrets-stdin"},
                                R"({"password": "pw-from-stdin"})");
  EXPECT_EQ(nlohmann::json::parse(result["stdin"].get<std::string>()),
            nlohmann::json({{"user", "bob"}, {"password", "pw-from-stdin"}}));
}

TEST_F(RunParametersTest, SecretParameterFromArgvIsRefused) {
  // SPEC §8: "secrets never come from argv". A parameter the action declares `secret: true`
  // given with --param or an inline --params-json is visible to every user in ps; it must be
  // refused (naming the parameter), and the action must not run.
  world_.WriteSimpleAction("par", "sec", "shell", "sec.sh", "echo RAN\n",
                           "parameters:\n  password: {type: string, secret: true}\n");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--param", "password=argv-visible-pw"},
        std::vector<std::string>{"--params-json", R"({"password": "argv-visible-pw"})"}}) {
    std::vector<std::string> full = {"run", "par.sec"};
    full.insert(full.end(), args.begin(), args.end());
    CommandResult r = world_.Cli(full);
    EXPECT_EQ(r.exit_code, 125) << args[0] << ": " << r.stdout_text << r.stderr_text;
    EXPECT_THAT(r.stdout_text, Not(HasSubstr("RAN"))) << args[0];
    EXPECT_THAT(r.stderr_text, HasSubstr("password")) << args[0];
    EXPECT_THAT(r.stdout_text + r.stderr_text, Not(HasSubstr("argv-visible-pw")));
  }
}

TEST_F(RunParametersTest, RequiredSecretMissingIsRejected) {
  world_.WriteSimpleAction(
      "par", "sec", "python", "sec.py", kEchoStdin,
      "parameters:\n  password: {type: string, secret: true, required: true}\n");
  CommandResult r = world_.Cli({"run", "par.sec", "--json"});
  EXPECT_EQ(r.exit_code, 125) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["status"], "rejected");
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("password"));
}

TEST_F(RunParametersTest, SecretsFileAndSecretsStdinExcludeEachOther) {
  world_.WriteSimpleAction("par", "sec", "python", "sec.py", kEchoStdin,
                           "parameters:\n  password: {type: string, secret: true}\n");
  world_.WriteFile("s.json", R"({"password": "x"})", 0600);
  CommandResult r =
      world_.Cli({"run", "par.sec", "--secrets-file", world_.Path("s.json"), "--secrets-stdin"},
                 R"({"password": "y"})");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << r.stderr_text;
}

}  // namespace
}  // namespace packvisor::testing
