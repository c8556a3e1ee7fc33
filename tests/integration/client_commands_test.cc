// `packvisor ps`, `logs`, `cancel` and `result` against a real daemon (tests/support/
// daemon_fixture.h): what they print, and their exit statuses for finished, running, cancelled
// and unknown executions.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/daemon_fixture.h"
#include "tests/support/harness.h"
#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

constexpr char kUnknownId[] = "0b7e1c2a-1111-4222-8333-444455556666";

class ClientCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.WriteSimpleAction("t", "fail", "shell", "fail.sh",
                             "echo to-stdout\necho to-stderr >&2\nexit 3\n");
    world_.WriteSimpleAction("t", "ok", "shell", "ok.sh", "echo fine\n");
    world_.WriteSimpleAction("t", "long", "shell", "long.sh", "echo started\nsleep 600\n");
    daemon_ = std::make_unique<DaemonUnderTest>(world_, "[execution]\nkill_grace_seconds = 1\n");
    server_ = "--server=" + daemon_->socket();
  }

  // Runs `action` on the daemon through `run --server --json`; its result object.
  nlohmann::json RunRemote(const std::string& action) {
    CommandResult r = world_.Cli({"run", server_, action, "--json"});
    EXPECT_NO_THROW(r.Json()) << r.stdout_text << r.stderr_text;
    return r.Json();
  }

  RunWorld world_;
  std::unique_ptr<DaemonUnderTest> daemon_;
  std::string server_;
};

TEST_F(ClientCommands, PsListsNewestFirstAndFilters) {
  std::string failed = RunRemote("t.fail")["execution_id"];
  std::string ok = RunRemote("t.ok")["execution_id"];

  CommandResult json = world_.Cli({"ps", server_, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  nlohmann::json executions = json.Json()["executions"];
  ASSERT_EQ(executions.size(), 2u) << json.stdout_text;
  EXPECT_EQ(executions[0]["execution_id"], ok);
  EXPECT_EQ(executions[1]["execution_id"], failed);
  EXPECT_EQ(executions[1]["status"], "failed");

  CommandResult table = world_.Cli({"ps", server_});
  ASSERT_EQ(table.exit_code, 0) << table.stderr_text;
  std::vector<std::string> lines = Lines(table.stdout_text);
  ASSERT_EQ(lines.size(), 3u) << table.stdout_text;
  EXPECT_EQ(lines[0].rfind("ID", 0), 0u) << lines[0];
  for (const char* column : {"ACTION", "STATUS", "SUBMITTED", "DURATION"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << lines[0];
  }
  EXPECT_EQ(lines[1].rfind(ok, 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find("t.ok"), std::string::npos);
  EXPECT_NE(lines[1].find("succeeded"), std::string::npos);
  EXPECT_NE(lines[2].find("failed"), std::string::npos);

  CommandResult by_status = world_.Cli({"ps", server_, "--status", "failed", "--json"});
  ASSERT_EQ(by_status.exit_code, 0) << by_status.stderr_text;
  ASSERT_EQ(by_status.Json()["executions"].size(), 1u);
  EXPECT_EQ(by_status.Json()["executions"][0]["execution_id"], failed);

  CommandResult by_action = world_.Cli({"ps", server_, "--action", "t.ok", "--json"});
  ASSERT_EQ(by_action.Json()["executions"].size(), 1u);
  EXPECT_EQ(by_action.Json()["executions"][0]["execution_id"], ok);

  CommandResult limited = world_.Cli({"ps", server_, "--limit", "1", "--json"});
  ASSERT_EQ(limited.Json()["executions"].size(), 1u);
  EXPECT_EQ(limited.Json()["executions"][0]["execution_id"], ok);
}

TEST_F(ClientCommands, LogsAndResultOfAFinishedExecution) {
  nlohmann::json ran = RunRemote("t.fail");
  std::string id = ran["execution_id"];

  for (bool follow : {false, true}) {
    std::vector<std::string> args = {"logs", id, server_};
    if (follow) args.push_back("--follow");
    CommandResult logs = world_.Cli(args);
    EXPECT_EQ(logs.exit_code, 0) << logs.stderr_text;
    EXPECT_EQ(logs.stdout_text, "to-stdout\n");
    EXPECT_EQ(logs.stderr_text, "to-stderr\n");
  }

  CommandResult json = world_.Cli({"result", id, server_, "--json"});
  EXPECT_EQ(json.exit_code, 3) << json.stderr_text;
  EXPECT_EQ(json.Json(), ran);

  CommandResult human = world_.Cli({"result", id, server_});
  EXPECT_EQ(human.exit_code, 3);
  EXPECT_EQ(human.stdout_text, "to-stdout\n");
  EXPECT_EQ(human.stderr_text.rfind("to-stderr\npackvisor: t.fail: failed (exit 3) in ", 0), 0u)
      << human.stderr_text;
}

TEST_F(ClientCommands, CancelEndsARunningExecutionAndResultReportsIt) {
  HttpResponse submitted = SubmitAction(daemon_->socket(), "t.long");
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  std::string id = nlohmann::json::parse(submitted.body)["execution_id"];

  CommandResult cancel = world_.Cli({"cancel", id, server_, "--json"});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.stderr_text;
  EXPECT_EQ(cancel.Json()["status"], "cancelled");
  EXPECT_EQ(cancel.Json()["execution_id"], id);

  CommandResult result = world_.Cli({"result", id, server_});
  EXPECT_EQ(result.exit_code, 143) << result.stderr_text;
  EXPECT_NE(result.stderr_text.find("packvisor: t.long: cancelled"), std::string::npos)
      << result.stderr_text;

  // Already ended: the error names its status.
  CommandResult again = world_.Cli({"cancel", id, server_});
  EXPECT_EQ(again.exit_code, 125);
  EXPECT_NE(again.stderr_text.find("409"), std::string::npos) << again.stderr_text;
  EXPECT_NE(again.stderr_text.find("cancelled"), std::string::npos) << again.stderr_text;
}

TEST_F(ClientCommands, AnUnknownIdIs127) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"logs", kUnknownId, server_},
        {"logs", "--follow", kUnknownId, server_},
        {"result", kUnknownId, server_},
        {"cancel", kUnknownId, server_}}) {
    CommandResult r = world_.Cli(args);
    EXPECT_EQ(r.exit_code, 127) << args[0] << ": " << r.stderr_text;
    EXPECT_NE(r.stderr_text.find(kUnknownId), std::string::npos) << r.stderr_text;
    EXPECT_EQ(Lines(r.stderr_text).size(), 1u) << r.stderr_text;
  }
}

}  // namespace
}  // namespace packvisor::testing
