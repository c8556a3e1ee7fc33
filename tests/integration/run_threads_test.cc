// RunExecution called from a multithreaded process (as the daemon of SPEC §9 will be, with a
// bounded pool of concurrent executions): the sandbox child is made with a raw clone3, so it
// must not call libc functions that synchronise with the parent's other threads (glibc's
// setresuid/setresgid broadcast to every thread of the parent through __nptl_setxid and wait for
// them; in the child those threads do not exist).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

TEST(RunThreadsTest, ExecutionsSucceedWhileOtherThreadsStartAndStop) {
  RunWorld world;
  world.WriteSimpleAction("thr", "echo", "shell", "echo.sh", "echo ran\n");
  world.WriteConfig("[execution]\nkill_grace_seconds = 1\n");
  Config config = world.LoadedConfig();
  std::atomic<bool> stop{false};
  // Keeps threads starting and ending in the background, as a busy server would.
  std::thread churn([&stop] {
    while (!stop) {
      std::thread([] {}).join();
    }
  });
  int succeeded = 0;
  std::string failures;
  for (int i = 0; i < 6; ++i) {
    RunRequest request = Request("thr.echo");
    request.timeout_seconds = 5;
    ExecutionResult r = world.Run(config, std::move(request));
    if (r.status == ExecutionStatus::kSucceeded && r.stdout_text == "ran\n") {
      ++succeeded;
    } else {
      failures += Describe(r) + "\n";
    }
  }
  stop = true;
  churn.join();
  EXPECT_EQ(succeeded, 6) << failures;
}

TEST(RunThreadsTest, ExecutionsSucceedWithAnIdleThreadAlive) {
  RunWorld world;
  world.WriteSimpleAction("thr", "echo", "shell", "echo.sh", "echo ran\n");
  Config config = world.LoadedConfig();
  std::atomic<bool> stop{false};
  std::thread idle([&stop] {
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  int succeeded = 0;
  std::string failures;
  for (int i = 0; i < 4; ++i) {
    RunRequest request = Request("thr.echo");
    request.timeout_seconds = 10;
    ExecutionResult r = world.Run(config, std::move(request));
    if (r.status == ExecutionStatus::kSucceeded) {
      ++succeeded;
    } else {
      failures += Describe(r) + "\n";
    }
  }
  stop = true;
  idle.join();
  EXPECT_EQ(succeeded, 4) << failures;
}

}  // namespace
}  // namespace packvisor::testing
