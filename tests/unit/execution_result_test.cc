// ExecutionResultFromJson, the inverse of ExecutionResult::ToJson() that the daemon's client reads
// result objects with: a round trip keeps every field and the exit status.
#include "supervisor/executions/execution_result.h"

#include <gtest/gtest.h>

#include <vector>

namespace packvisor {
namespace {

ExecutionResult Full() {
  ExecutionResult r;
  r.execution_id = "0b7e1c2a-1111-4222-8333-444455556666";
  r.action_ref = "demo.hello";
  r.status = ExecutionStatus::kFailed;
  r.exit_code = 3;
  r.result = nlohmann::json{{"greeting", "hi"}, {"n", {1, 2, 3}}};
  r.stdout_text = "out\n\xc3\xa9";
  r.stderr_text = "err\n";
  r.stdout_truncated = true;
  r.stdout_bytes_truncated = 12345678901ULL;
  r.stderr_bytes_truncated = 7;
  r.duration_ms = 42;
  r.env_build_ms = 17;
  r.error = "exit 3: disk is full";
  r.cpu_ms = 5;
  r.max_rss_kb = 2048;
  return r;
}

TEST(ExecutionResultFromJson, RoundTripKeepsEveryField) {
  ExecutionResult original = Full();
  auto back = ExecutionResultFromJson(original.ToJson());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->ToJson(), original.ToJson());
  EXPECT_EQ(back->ExitStatus(), 3);
}

TEST(ExecutionResultFromJson, RoundTripOfEveryStatusKeepsTheExitStatus) {
  std::vector<ExecutionResult> results;
  ExecutionResult succeeded = Full();
  succeeded.status = ExecutionStatus::kSucceeded;
  succeeded.exit_code = 0;
  succeeded.error.reset();
  results.push_back(succeeded);
  ExecutionResult signaled = Full();
  signaled.exit_code.reset();
  signaled.signal = 9;
  results.push_back(signaled);
  ExecutionResult timed_out = Full();
  timed_out.status = ExecutionStatus::kTimedOut;
  timed_out.exit_code.reset();
  timed_out.timed_out = true;
  results.push_back(timed_out);
  ExecutionResult cancelled = Full();
  cancelled.status = ExecutionStatus::kCancelled;
  cancelled.exit_code.reset();
  results.push_back(cancelled);
  ExecutionResult setup_failed = Full();
  setup_failed.status = ExecutionStatus::kSetupFailed;
  results.push_back(setup_failed);
  ExecutionResult rejected = Full();
  rejected.status = ExecutionStatus::kRejected;
  rejected.exit_code.reset();
  results.push_back(rejected);
  // A command that could not be started carries its 126/127 in exit_code too.
  ExecutionResult abandoned = Full();
  abandoned.status = ExecutionStatus::kAbandoned;
  abandoned.exit_code.reset();
  results.push_back(abandoned);
  ExecutionResult not_found = Full();
  not_found.exit_code = 127;
  not_found.start_failure_exit = 127;
  results.push_back(not_found);
  for (const ExecutionResult& original : results) {
    auto back = ExecutionResultFromJson(original.ToJson());
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->ToJson(), original.ToJson());
    EXPECT_EQ(back->ExitStatus(), original.ExitStatus()) << ExecutionStatusName(original.status);
  }
}

TEST(ExecutionResultFromJson, OptionalFieldsMayBeAbsent) {
  auto back = ExecutionResultFromJson(
      {{"execution_id", "x"}, {"action_ref", "p.a"}, {"status", "succeeded"}, {"exit_code", 0}});
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(back->ExitStatus(), 0);
  EXPECT_TRUE(back->result.is_null());
}

TEST(ExecutionResultFromJson, NamesAMissingOrMistypedField) {
  nlohmann::json object = Full().ToJson();
  object.erase("status");
  auto missing = ExecutionResultFromJson(object);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "result object status: missing");

  object = Full().ToJson();
  object["exit_code"] = "3";
  auto mistyped = ExecutionResultFromJson(object);
  ASSERT_FALSE(mistyped);
  EXPECT_EQ(mistyped.error().message(), "result object exit_code: expected an integer or null");

  object = Full().ToJson();
  object["status"] = "exploded";
  auto unknown = ExecutionResultFromJson(object);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message(), "result object status: unknown status \"exploded\"");

  object = Full().ToJson();
  object["stdout_bytes_truncated"] = -1;
  EXPECT_FALSE(ExecutionResultFromJson(object));
  EXPECT_FALSE(ExecutionResultFromJson(nlohmann::json::array()));
}

TEST(ExecutionStatusFromName, InvertsExecutionStatusName) {
  for (ExecutionStatus status :
       {ExecutionStatus::kSucceeded, ExecutionStatus::kFailed, ExecutionStatus::kTimedOut,
        ExecutionStatus::kCancelled, ExecutionStatus::kSetupFailed, ExecutionStatus::kRejected,
        ExecutionStatus::kAbandoned}) {
    EXPECT_EQ(ExecutionStatusFromName(ExecutionStatusName(status)), status);
  }
  EXPECT_EQ(ExecutionStatusFromName("queued"), std::nullopt);
}

// A daemon's record of an execution a restart found unfinished (ExecutionStore).
TEST(ExecutionResultTest, AbandonedIsItsOwnStatusWithExitStatus125) {
  ExecutionResult result;
  result.execution_id = "id";
  result.action_ref = "pack.action";
  result.status = ExecutionStatus::kAbandoned;
  result.error = "the supervisor restarted before this execution finished; it was running";
  EXPECT_STREQ(ExecutionStatusName(ExecutionStatus::kAbandoned), "abandoned");
  EXPECT_EQ(result.ToJson()["status"], "abandoned");
  EXPECT_EQ(result.ExitStatus(), 125);
  EXPECT_TRUE(result.ToJson()["exit_code"].is_null());
}

TEST(ExecutionResultTest, EveryStatusHasItsOwnName) {
  const ExecutionStatus all[] = {ExecutionStatus::kSucceeded,   ExecutionStatus::kFailed,
                                 ExecutionStatus::kTimedOut,    ExecutionStatus::kCancelled,
                                 ExecutionStatus::kSetupFailed, ExecutionStatus::kRejected,
                                 ExecutionStatus::kAbandoned};
  const char* names[] = {"succeeded",    "failed",   "timed_out", "cancelled",
                         "setup_failed", "rejected", "abandoned"};
  for (size_t i = 0; i < std::size(all); ++i) {
    EXPECT_STREQ(ExecutionStatusName(all[i]), names[i]);
  }
}

}  // namespace
}  // namespace packvisor
