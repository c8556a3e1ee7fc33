// CheckRunRequest (the daemon's 404/400 before it accepts): each refusal carries exactly the
// `error` RunExecution's rejected result gives the same request, no secret value, and a request
// it passes really runs. In-process, real packs on disk, a real sandbox for the passing request.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecretValue[] = "s3cr3t-value-never-in-a-message";

class CheckRunRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.WriteSimpleAction("chk", "typed", "shell", "typed.sh", "echo ran\n",
                             "parameters:\n  n: {type: integer}\n"
                             "  color: {type: string, enum: [red, blue]}\n"
                             "  token: {type: string, secret: true}\n"
                             "  name: {type: string, required: true}\n");
    world_.WriteAction("chk", "off",
                       "name: off\nrunner_type: shell\nentry_point: typed.sh\nenabled: false\n");
    world_.WriteAction("chk", "nethost",
                       "name: nethost\nrunner_type: shell\nentry_point: typed.sh\n"
                       "network: host\n");
    config_.emplace(world_.LoadedConfig());
    auto runtimes = LoadRuntimeRegistry(*config_);
    ASSERT_TRUE(runtimes.ok()) << runtimes.error().message();
    runtimes_.emplace(std::move(*runtimes));
  }

  ExecutionContext Context() const { return ExecutionContext{*config_, *runtimes_}; }

  // Checks, then runs the same request: the check's problem and message match the run's result.
  void ExpectRefused(const RunRequest& request, RequestProblem problem, const std::string& needle) {
    RunRequest kept = request;
    RequestCheck check = CheckRunRequest(Context(), request);
    EXPECT_EQ(check.problem, problem) << check.message;
    EXPECT_THAT(check.message, HasSubstr(needle));
    EXPECT_THAT(check.message, Not(HasSubstr(kSecretValue)));
    // The caller's request is unchanged (its secrets are still there to deliver).
    EXPECT_EQ(request.secrets, kept.secrets);
    EXPECT_EQ(request.parameters, kept.parameters);
    ExecutionResult result = world_.Run(*config_, request);
    EXPECT_EQ(result.status, ExecutionStatus::kRejected) << Describe(result);
    ASSERT_TRUE(result.error.has_value());
    EXPECT_EQ(*result.error, check.message);
    EXPECT_EQ(result.ExitStatus(), problem == RequestProblem::kUnknownAction ? 127 : 125);
  }

  RunWorld world_;
  std::optional<Config> config_;
  std::optional<envs::RuntimeRegistry> runtimes_;
};

TEST_F(CheckRunRequestTest, UnknownPackOrActionIsUnknownAction) {
  ExpectRefused(Request("nosuchpack.x", {{"name", "a"}}), RequestProblem::kUnknownAction,
                "nosuchpack");
  ExpectRefused(Request("chk.nosuch", {{"name", "a"}}), RequestProblem::kUnknownAction, "nosuch");
}

TEST_F(CheckRunRequestTest, BadInputsAreInvalidInputWithRunsMessage) {
  ExpectRefused(Request("chk.typed"), RequestProblem::kInvalidInput, "name");
  ExpectRefused(Request("chk.typed", {{"name", "a"}, {"n", "x"}}), RequestProblem::kInvalidInput,
                "n");
  ExpectRefused(Request("chk.typed", {{"name", "a"}, {"color", "green"}}),
                RequestProblem::kInvalidInput, "not one of the allowed values");
  ExpectRefused(Request("chk.typed", {{"name", "a"}, {"token", "t"}}, {{"token", kSecretValue}}),
                RequestProblem::kInvalidInput, "both as a parameter and as a secret");
  ExpectRefused(Request("chk.typed", nlohmann::json::array(), {{"token", kSecretValue}}),
                RequestProblem::kInvalidInput, "must be JSON objects");
  RunRequest timeout = Request("chk.typed", {{"name", "a"}}, {{"token", kSecretValue}});
  timeout.timeout_seconds = -1;
  ExpectRefused(timeout, RequestProblem::kInvalidInput, "timeout must be a positive number");
  ExpectRefused(Request("chk.off", {{"name", "a"}}), RequestProblem::kInvalidInput, "disabled");
  ExpectRefused(Request("chk.nethost"), RequestProblem::kInvalidInput,
                "sandbox.host_network_packs");
}

// A secret value that is itself bad (wrong enum) is refused without being quoted.
TEST_F(CheckRunRequestTest, ASecretsBadValueIsNotQuoted) {
  world_.WriteSimpleAction("chk", "enum_secret", "shell", "e.sh", "true\n",
                           "parameters:\n  key: {type: string, secret: true, enum: [a, b]}\n");
  ExpectRefused(Request("chk.enum_secret", nlohmann::json::object(), {{"key", kSecretValue}}),
                RequestProblem::kInvalidInput, "key");
}

TEST_F(CheckRunRequestTest, AGoodRequestPassesAndRuns) {
  RunRequest request = Request("chk.typed", {{"name", "a"}, {"n", 3}}, {{"token", kSecretValue}});
  RequestCheck check = CheckRunRequest(Context(), request);
  EXPECT_EQ(check.problem, RequestProblem::kNone) << check.message;
  EXPECT_EQ(check.message, "");
  EXPECT_EQ(request.secrets["token"], kSecretValue);  // still there for the run
  ExecutionResult result = world_.Run(*config_, request);
  EXPECT_EQ(result.status, ExecutionStatus::kSucceeded) << Describe(result);
  EXPECT_EQ(result.stdout_text, "ran\n");
}

// Passing the check does not bind RunExecution: the action changed in between is rejected then.
TEST_F(CheckRunRequestTest, RunExecutionChecksAgain) {
  RunRequest request = Request("chk.typed", {{"name", "a"}});
  EXPECT_EQ(CheckRunRequest(Context(), request).problem, RequestProblem::kNone);
  world_.WriteAction("chk", "typed",
                     "name: typed\nrunner_type: shell\nentry_point: typed.sh\nenabled: false\n");
  ExecutionResult result = world_.Run(*config_, request);
  EXPECT_EQ(result.status, ExecutionStatus::kRejected) << Describe(result);
  EXPECT_THAT(result.error.value_or(""), HasSubstr("disabled"));
}

}  // namespace
}  // namespace packvisor::testing
