// The daemon API's request bodies (supervisor/executions/request_body.h), the functions the
// handlers of server/http_api.cc call: depth before parsing, one-line refusals that never quote a
// secret, and the client's serialisers reading back to the same request.
#include "supervisor/executions/request_body.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace packvisor {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ErrorOf(const Result<RunRequest>& r) { return r ? "" : r.error().message(); }

TEST(RequestBody, AHundredThousandDeepBodyIsRefusedBeforeParsing) {
  const std::string kDeep = "request body: JSON nested deeper than 64 levels";
  std::string arrays = std::string(100'000, '[') + std::string(100'000, ']');
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(100'000, '}');
  std::string in_parameters = R"({"action_ref": "a.b", "parameters": {"p": )" + arrays + "}}";
  for (const std::string* body : {&arrays, &objects, &in_parameters}) {
    auto run = ParseRunRequestBody(*body);
    ASSERT_FALSE(run.ok());
    EXPECT_EQ(run.error().message(), kDeep);
    auto exec = ParseExecRequestBody(*body);
    ASSERT_FALSE(exec.ok());
    EXPECT_EQ(exec.error().message(), kDeep);
    auto env = ParseEnvBuildBody(*body);
    ASSERT_FALSE(env.ok());
    EXPECT_EQ(env.error().message(), kDeep);
  }
  // The crash this limit fixed: 500,000 levels in 1 MB (under the default max_body_bytes)
  // overflowed the daemon's stack in WipeJson once nlohmann had parsed them.
  std::string megabyte_argv =
      R"({"argv": )" + std::string(500'000, '[') + std::string(500'000, ']') + "}";
  auto exec = ParseExecRequestBody(megabyte_argv);
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.error().message(), kDeep);
  // At the limit it is read.
  std::string at_limit = R"({"action_ref": "a.b", "parameters": {"p": )" + std::string(62, '[') +
                         std::string(62, ']') + "}}";
  EXPECT_TRUE(ParseRunRequestBody(at_limit).ok()) << ErrorOf(ParseRunRequestBody(at_limit));
}

TEST(RequestBody, RefusalsAreOneLineNamingTheField) {
  EXPECT_EQ(ErrorOf(ParseRunRequestBody("{not json")), "request body: not valid JSON");
  EXPECT_EQ(ErrorOf(ParseRunRequestBody("[1]")), "request body: expected a JSON object");
  EXPECT_EQ(ErrorOf(ParseRunRequestBody("")), "request body: not valid JSON");
  EXPECT_EQ(ErrorOf(ParseRunRequestBody(R"({"action_ref": 3})")),
            "request body: \"action_ref\" must be a string");
  EXPECT_EQ(ErrorOf(ParseRunRequestBody(R"({"parameters": {}})")),
            "request body: \"action_ref\" is required");
  EXPECT_EQ(ErrorOf(ParseRunRequestBody(R"({"action_ref": "a.b", "timeout_seconds": 0})")),
            "request body: \"timeout_seconds\" must be a number greater than 0");
  EXPECT_EQ(ErrorOf(ParseRunRequestBody(R"({"action_ref": "a.b", "parameter_texts": [["x"]]})")),
            "request body: \"parameter_texts\" must hold [name, text] pairs of strings");
  auto exec = ParseExecRequestBody(R"({"argv": ["true"], "memory_mb": -5})");
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.error().message(),
            "request body: \"memory_mb\" must be an integer greater than 0");
  exec = ParseExecRequestBody(R"({"argv": ["true"], "network": "bridge"})");
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.error().message(), "request body: \"network\" must be \"none\" or \"host\"");
  auto env = ParseEnvBuildBody(R"({"force": "yes"})");
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.error().message(), "request body: \"force\" must be true or false");
  ASSERT_TRUE(ParseEnvBuildBody("").ok());
  EXPECT_FALSE(ParseEnvBuildBody("").value().force);
}

// A field name is the sender's text: quoted, escaped, without control characters, cut.
TEST(RequestBody, AnUnknownFieldIsQuotedWithoutControlCharacters) {
  std::string message =
      ErrorOf(ParseRunRequestBody(R"({"action_ref": "a.b", "evil\n\u001b[31m\"x": 1})"));
  EXPECT_EQ(message, "request body: unknown field \"evil??[31m\\\"x\"");
  std::string long_name(500, 'n');
  message = ErrorOf(ParseRunRequestBody("{\"" + long_name + "\": 1}"));
  EXPECT_EQ(message, "request body: unknown field \"" + std::string(64, 'n') + "...\"");
}

TEST(RequestBody, ARefusalNeverQuotesASecret) {
  const std::string kSecret = "hunter2-the-secret";
  for (const std::string& body : {
           R"({"secrets": {"k": ")" + kSecret + R"("}, "action_ref": 7})",
           R"({"secrets": {"k": ")" + kSecret + R"("}, "action_ref": "a.b", "colour": 1})",
           R"({"secrets": ")" + kSecret + R"(", "action_ref": "a.b"})",
           R"({"secrets": {"k": ")" + kSecret +
               R"("}, "action_ref": "a.b", "timeout_seconds": -1})",
       }) {
    auto run = ParseRunRequestBody(body);
    ASSERT_FALSE(run.ok()) << body;
    EXPECT_THAT(run.error().message(), Not(HasSubstr(kSecret)));
    EXPECT_THAT(run.error().message(), HasSubstr("request body: "));
  }
}

TEST(RequestBody, TheClientsBodiesReadBackToTheSameRequest) {
  RunRequest run;
  run.action_ref = "demo.hello";
  run.parameters = {{"n", 3}, {"deep", {{"a", {1, 2.5, "x"}}}}};
  run.secrets = {{"token", "s3cr3t"}};
  run.timeout_seconds = 1.5;
  run.parameter_texts = {{"n", "3"}, {"name", "a b"}};
  run.parameters_from_argv = {"n", "name"};
  RunRequest copy = run;
  auto back = ParseRunRequestBody(RunRequestBody(std::move(copy)).dump());
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->action_ref, run.action_ref);
  EXPECT_EQ(back->parameters, run.parameters);
  EXPECT_EQ(back->secrets, run.secrets);
  EXPECT_EQ(back->timeout_seconds, run.timeout_seconds);
  EXPECT_EQ(back->parameter_texts, run.parameter_texts);
  EXPECT_EQ(back->parameters_from_argv, run.parameters_from_argv);

  RawExecRequest exec;
  exec.command = {"sh", "-c", "echo hi"};
  exec.pack_dir = "/srv/pack";
  exec.network = "host";
  exec.memory_mb = 64;
  exec.pids = 18446744073709551615u;  // any integer > 0; the configured limit refuses it later
  auto exec_back = ParseExecRequestBody(ExecRequestBody(exec).dump());
  ASSERT_TRUE(exec_back.ok()) << exec_back.error().message();
  EXPECT_EQ(exec_back->command, exec.command);
  EXPECT_EQ(exec_back->pack_dir, exec.pack_dir);
  EXPECT_EQ(exec_back->env_dir, "");
  EXPECT_EQ(exec_back->network, "host");
  EXPECT_EQ(exec_back->memory_mb, exec.memory_mb);
  EXPECT_EQ(exec_back->pids, exec.pids);
  EXPECT_FALSE(exec_back->cpu_percent);
}

TEST(RequestBody, ListLimitIsAnIntegerFromOneToAThousand) {
  EXPECT_EQ(ParseListLimit(std::nullopt).value(), 100u);
  EXPECT_EQ(ParseListLimit("1000").value(), 1000u);
  const std::vector<std::string> bad_values = {
      "", "0", "1001", "5x", "-3", "99999999999999999999999", std::string("5\0x", 3)};
  for (const std::string& bad : bad_values) {
    auto limit = ParseListLimit(bad);
    ASSERT_FALSE(limit.ok()) << bad;
    EXPECT_EQ(limit.error().message(), "query: \"limit\" must be an integer from 1 to 1000");
  }
}

}  // namespace
}  // namespace packvisor
