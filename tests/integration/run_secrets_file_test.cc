// The rules of `--secrets-file` and `--secrets-stdin` (issue 11, item 12): a secrets file group or
// others may access is refused (checked on the opened descriptor), and secrets the action does
// not declare are ignored (not delivered) with their names, never their values, logged at info.
// Real binary, real sandbox.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class RunSecretsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Prints its stdin document (the inputs it was given).
    world_.WriteSimpleAction("vault", "show", "shell", "show.sh", "cat\n",
                             "parameters:\n  user: {type: string}\n"
                             "  token: {type: string, secret: true}\n");
    world_.WriteConfig();
  }

  std::string Token() const { return UniqueMarker("tk"); }

  RunWorld world_;
};

TEST_F(RunSecretsFileTest, FileAccessibleToGroupOrOthersIsRefusedNamingItsMode) {
  std::string token = Token();
  struct Case {
    int mode;
    std::string text;
  };
  for (const Case& c : std::vector<Case>{{0644,
                                          "has mode 0644: it must not be readable by group "
                                          "or others (chmod 600)"},
                                         {0640, "has mode 0640: it must not be readable"},
                                         {0604, "has mode 0604: it must not be readable"},
                                         {0620, "has mode 0620: it must not be accessible"}}) {
    world_.WriteFile("s.json", nlohmann::json({{"token", token}}).dump(), c.mode);
    chmod(world_.Path("s.json").c_str(), static_cast<mode_t>(c.mode));  // whatever the umask
    CommandResult r = world_.Cli({"run", "vault.show", "--secrets-file", world_.Path("s.json")});
    EXPECT_EQ(r.exit_code, 125) << r.stdout_text << r.stderr_text;
    EXPECT_EQ(r.stdout_text, "");
    std::vector<std::string> lines = Lines(r.stderr_text);
    ASSERT_EQ(lines.size(), 1u) << r.stderr_text;
    EXPECT_THAT(lines[0], HasSubstr("secrets file " + world_.Path("s.json") + " " + c.text));
    EXPECT_THAT(r.stderr_text, Not(HasSubstr(token)));
  }
  for (int mode : {0600, 0400}) {
    world_.WriteFile("s.json", nlohmann::json({{"token", token}}).dump(), mode);
    chmod(world_.Path("s.json").c_str(), static_cast<mode_t>(mode));
    CommandResult r =
        world_.Cli({"run", "vault.show", "--json", "--secrets-file", world_.Path("s.json")});
    ASSERT_EQ(r.exit_code, 0) << std::oct << mode << ": " << r.stderr_text;
    EXPECT_EQ(nlohmann::json::parse(r.Json()["stdout"].get<std::string>()),
              nlohmann::json({{"token", token}}));
  }
}

TEST_F(RunSecretsFileTest, UndeclaredSecretsAreIgnoredAndOnlyTheirNamesLogged) {
  std::string token = Token();
  std::string other = Token();
  std::string third = Token();
  nlohmann::json secrets = {{"token", token}, {"other_api_key", other}, {"db_password", third}};
  world_.WriteFile("pack-secrets.json", secrets.dump(), 0600);
  CommandResult from_file =
      world_.Cli({"--log-level", "info", "run", "vault.show", "--json", "--param", "user=ann",
                  "--secrets-file", world_.Path("pack-secrets.json")});
  CommandResult from_stdin = world_.Cli({"--log-level", "info", "run", "vault.show", "--json",
                                         "--param", "user=ann", "--secrets-stdin"},
                                        secrets.dump());
  for (const CommandResult* r : {&from_file, &from_stdin}) {
    ASSERT_EQ(r->exit_code, 0) << r->stdout_text << r->stderr_text;
    nlohmann::json j = r->Json();
    EXPECT_EQ(j["status"], "succeeded");
    // Only the declared secret reached the action.
    EXPECT_EQ(nlohmann::json::parse(j["stdout"].get<std::string>()),
              nlohmann::json({{"user", "ann"}, {"token", token}}));
    // Each ignored name is listed at info level; no value appears anywhere.
    EXPECT_THAT(r->stderr_text, HasSubstr("\"other_api_key\" ignored"));
    EXPECT_THAT(r->stderr_text, HasSubstr("\"db_password\" ignored"));
    for (const std::string& value : {token, other, third}) {
      EXPECT_THAT(r->stderr_text, Not(HasSubstr(value)));
    }
    EXPECT_THAT(r->stdout_text, Not(HasSubstr(other)));
    EXPECT_THAT(r->stdout_text, Not(HasSubstr(third)));
  }
  // At the default level (warn) nothing is said about them.
  CommandResult quiet = world_.Cli(
      {"run", "vault.show", "--json", "--secrets-file", world_.Path("pack-secrets.json")});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.stderr_text;
  EXPECT_EQ(quiet.stderr_text, "");
}

TEST_F(RunSecretsFileTest, DeclaredNameGivenAsParameterAndSecretIsStillRefused) {
  std::string token = Token();
  world_.WriteFile("s.json", nlohmann::json({{"user", token}}).dump(), 0600);
  CommandResult r = world_.Cli(
      {"run", "vault.show", "--param", "user=ann", "--secrets-file", world_.Path("s.json")});
  EXPECT_EQ(r.exit_code, 125) << r.stdout_text << r.stderr_text;
  EXPECT_THAT(r.stderr_text, HasSubstr("\"user\" is given both as a parameter and as a secret"));
  EXPECT_THAT(r.stderr_text, Not(HasSubstr(token)));
}

}  // namespace
}  // namespace packvisor::testing
