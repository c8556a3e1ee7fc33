#include "supervisor/executions/execution_result.h"

#include <gtest/gtest.h>

namespace packvisor {
namespace {

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
