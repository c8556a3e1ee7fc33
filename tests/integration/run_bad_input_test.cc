// Bad input to `packvisor run` (SPEC §4, §10): each gets a one-line error on stderr that says what
// and where, a non-zero exit (125, or 127 for an unknown action), and leaves nothing behind: no
// new entries in /tmp, nothing in state_dir or runtime_envs_dir, no process left running, and an
// unchanged pack tree (checked by RunWorld::Cli). Real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kOkScript[] = "print('should never run')\n";

class RunBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.WriteSimpleAction("bad", "typed", "python", "typed.py", kOkScript,
                             "parameters:\n  n: {type: integer}\n"
                             "  color: {type: string, enum: [red, blue]}\n"
                             "  pct: {type: number, minimum: 0, maximum: 100}\n"
                             "  blob: {type: string}\n  name: {type: string, required: true}\n");
  }

  // Runs `run ARGS...` in human mode; checks the exit status, that stderr is exactly one line
  // containing every `needles` entry, and that nothing was left behind. Then the same run with
  // --json must report `rejected` with the same error, unless the failure precedes the execution.
  void ExpectRefused(const std::vector<std::string>& run_args, int exit_status,
                     const std::vector<std::string>& needles, bool has_result = true,
                     const std::string& config = "") {
    std::set<std::string> tmp_before = DirectoryEntries("/tmp");
    std::vector<std::string> args;
    if (!config.empty()) args = {"--config", config};
    args.push_back("run");
    args.insert(args.end(), run_args.begin(), run_args.end());
    CommandResult r = config.empty() ? world_.Cli(args) : RunPackvisor(args);
    EXPECT_EQ(r.exit_code, exit_status) << r.stdout_text << r.stderr_text;
    std::vector<std::string> lines = Lines(r.stderr_text);
    EXPECT_EQ(lines.size(), 1u) << "stderr:\n" << r.stderr_text;
    EXPECT_EQ(r.stdout_text, "");
    for (const std::string& needle : needles) {
      EXPECT_THAT(r.stderr_text, HasSubstr(needle)) << "stderr should name " << needle;
    }
    ExpectNothingLeftBehind(tmp_before);
    if (!has_result) return;
    args.push_back("--json");
    CommandResult json = config.empty() ? world_.Cli(args) : RunPackvisor(args);
    EXPECT_EQ(json.exit_code, exit_status);
    nlohmann::json j = json.Json();
    EXPECT_EQ(j["status"], "rejected");
    ASSERT_TRUE(j["error"].is_string());
    for (const std::string& needle : needles) {
      if (needle == run_args[0]) {
        // The result names the action in action_ref; its error text does not repeat it.
        EXPECT_EQ(j["action_ref"], needle);
        EXPECT_THAT(j["error"].get<std::string>(), Not(HasSubstr(needle)));
        continue;
      }
      EXPECT_THAT(j["error"].get<std::string>(), HasSubstr(needle));
    }
    EXPECT_EQ(json.stderr_text, "");
  }

  void ExpectNothingLeftBehind(const std::set<std::string>& tmp_before) {
    EXPECT_THAT(NewTmpEntries(tmp_before), IsEmpty()) << "new entries in /tmp";
    EXPECT_THAT(DirectoryEntries(world_.EnvsDir()), IsEmpty()) << "runtime_envs_dir";
    EXPECT_THAT(ProcessesWithMarker(world_.root()), IsEmpty()) << "processes left running";
  }

  std::string ActionYaml(const std::string& name) const {
    return world_.PackDir("bad") + "/actions/" + name + ".yaml";
  }

  RunWorld world_;
};

TEST_F(RunBadInputTest, MalformedPackYaml) {
  world_.WritePack("broken", "ref: broken\nversion: [1.0\ndescription: x\n");
  world_.WriteSimpleAction("broken", "a", "python", "a.py", kOkScript);
  ExpectRefused({"broken.a"}, 125, {world_.PackDir("broken") + "/pack.yaml"});
}

TEST_F(RunBadInputTest, PackYamlRefMismatch) {
  world_.WritePack("mismatch", "ref: other\nversion: 1.0.0\n");
  world_.WriteSimpleAction("mismatch", "a", "python", "a.py", kOkScript);
  ExpectRefused({"mismatch.a"}, 125, {world_.PackDir("mismatch") + "/pack.yaml", "ref"});
}

TEST_F(RunBadInputTest, MalformedActionYaml) {
  world_.WriteAction("bad", "garbled", "name: garbled\nrunner_type: [python\nentry_point: x.py\n");
  ExpectRefused({"bad.garbled"}, 125, {ActionYaml("garbled")});
}

TEST_F(RunBadInputTest, UnknownRuntime) {
  world_.WriteSimpleAction("bad", "cobol", "cobol", "prog.cbl", "DISPLAY 'HI'.\n");
  ExpectRefused({"bad.cobol"}, 125, {ActionYaml("cobol"), "runner_type", "cobol"});
}

TEST_F(RunBadInputTest, MissingEntryPoint) {
  world_.WriteAction("bad", "missing",
                     "name: missing\nrunner_type: python\n"
                     "entry_point: missing.py\n");
  ExpectRefused({"bad.missing"}, 125, {ActionYaml("missing"), "entry_point", "missing.py"});
}

TEST_F(RunBadInputTest, EntryPointEscapingWithDotDot) {
  world_.WriteFile("packs/bad/outside.py", kOkScript);
  world_.WriteAction("bad", "dotdot",
                     "name: dotdot\nrunner_type: python\n"
                     "entry_point: ../outside.py\n");
  ExpectRefused({"bad.dotdot"}, 125, {ActionYaml("dotdot"), "entry_point"});
}

TEST_F(RunBadInputTest, EntryPointEscapingWithDeepDotDot) {
  world_.WriteAction("bad", "deep",
                     "name: deep\nrunner_type: shell\n"
                     "entry_point: ../../../../../../etc/passwd\n");
  ExpectRefused({"bad.deep"}, 125, {ActionYaml("deep"), "entry_point"});
}

TEST_F(RunBadInputTest, EntryPointAbsolutePath) {
  world_.WriteAction("bad", "abs", "name: abs\nrunner_type: shell\nentry_point: /etc/passwd\n");
  ExpectRefused({"bad.abs"}, 125, {ActionYaml("abs"), "entry_point"});
}

TEST_F(RunBadInputTest, EntryPointSymlinkToEtcPasswd) {
  world_.WriteAction("bad", "link", "name: link\nrunner_type: shell\nentry_point: link.sh\n");
  ASSERT_EQ(symlink("/etc/passwd", (world_.PackDir("bad") + "/actions/link.sh").c_str()), 0);
  ExpectRefused({"bad.link"}, 125, {ActionYaml("link"), "entry_point"});
}

TEST_F(RunBadInputTest, EntryPointSymlinkedDirectoryEscaping) {
  world_.WriteAction("bad", "dirlink",
                     "name: dirlink\nrunner_type: shell\n"
                     "entry_point: etc/passwd\n");
  ASSERT_EQ(symlink("/etc", (world_.PackDir("bad") + "/actions/etc").c_str()), 0);
  ExpectRefused({"bad.dirlink"}, 125, {ActionYaml("dirlink"), "entry_point"});
}

TEST_F(RunBadInputTest, BadParameterType) {
  ExpectRefused({"bad.typed", "--param", "name=x", "--param", "n=abc"}, 125,
                {"bad.typed", "\"n\"", "integer"});
}

TEST_F(RunBadInputTest, EnumViolation) {
  ExpectRefused({"bad.typed", "--param", "name=x", "--param", "color=green"}, 125,
                {"bad.typed", "color"});
}

TEST_F(RunBadInputTest, MaximumViolation) {
  ExpectRefused({"bad.typed", "--param", "name=x", "--param", "pct=100.5"}, 125,
                {"bad.typed", "pct"});
}

TEST_F(RunBadInputTest, MissingRequiredParameter) {
  ExpectRefused({"bad.typed"}, 125, {"bad.typed", "name"});
}

TEST_F(RunBadInputTest, UnknownParameter) {
  ExpectRefused({"bad.typed", "--param", "name=x", "--param", "nosuch=1"}, 125,
                {"bad.typed", "nosuch"});
}

TEST_F(RunBadInputTest, OversizedParametersFile) {
  world_.WriteFile("big.json",
                   nlohmann::json({{"name", "x"}, {"blob", std::string(9u << 20, 'a')}}).dump());
  ExpectRefused({"bad.typed", "--params-json", "@" + world_.Path("big.json")}, 125,
                {world_.Path("big.json"), "8 MiB"}, /*has_result=*/false);
}

TEST_F(RunBadInputTest, OversizedParameterDocument) {
  // Each source is under 8 MiB, the document (parameters ∪ secrets) is over it.
  world_.WriteAction("bad", "two",
                     "name: two\nrunner_type: python\nentry_point: typed.py\n"
                     "parameters:\n  a: {type: string}\n"
                     "  b: {type: string, secret: true}\n");
  world_.WriteFile("a.json", nlohmann::json({{"a", std::string(5u << 20, 'a')}}).dump());
  world_.WriteFile("b.json", nlohmann::json({{"b", std::string(5u << 20, 'b')}}).dump(), 0600);
  ExpectRefused({"bad.two", "--params-json", "@" + world_.Path("a.json"), "--secrets-file",
                 world_.Path("b.json")},
                125, {"bad.two", "8 MiB"});
}

TEST_F(RunBadInputTest, UnknownAction) {
  ExpectRefused({"bad.nosuch"}, 127, {"bad.nosuch", "no such action", "nosuch.yaml"});
}

TEST_F(RunBadInputTest, UnknownPack) { ExpectRefused({"nosuchpack.typed"}, 127, {"nosuchpack"}); }

TEST_F(RunBadInputTest, MalformedActionRef) {
  ExpectRefused({"no-dot-here"}, 125, {"no-dot-here", "not of the form pack.action"});
}

TEST_F(RunBadInputTest, DisabledAction) {
  world_.WriteSimpleAction("bad", "off", "python", "off.py", kOkScript, "enabled: false\n");
  ExpectRefused({"bad.off"}, 125, {"bad.off", "enabled: false", ActionYaml("off")});
}

TEST_F(RunBadInputTest, HostNetworkInUnlistedPack) {
  world_.WriteSimpleAction("bad", "net", "python", "net.py", kOkScript, "network: host\n");
  world_.WriteConfig("[sandbox]\nhost_network_packs = [\"otherpack\"]\n");
  ExpectRefused({"bad.net"}, 125, {"bad.net", "sandbox.host_network_packs"});
}

TEST_F(RunBadInputTest, MalformedConfigToml) {
  world_.WriteFile("broken.toml", "packs_base_dir = \"packs\"\n[execution\ntimeout = 3\n");
  ExpectRefused({"bad.typed", "--param", "name=x"}, 125, {world_.Path("broken.toml") + ":2"},
                /*has_result=*/false, world_.Path("broken.toml"));
}

TEST_F(RunBadInputTest, UnknownConfigKey) {
  world_.WriteFile("unknown.toml", "packs_base_dir = \"packs\"\n\n[execution]\nbogus = 1\n");
  ExpectRefused({"bad.typed", "--param", "name=x"}, 125,
                {world_.Path("unknown.toml") + ":4", "execution.bogus"}, /*has_result=*/false,
                world_.Path("unknown.toml"));
}

TEST_F(RunBadInputTest, ConfigCaptureCapBelowMinimum) {
  world_.WriteFile("small.toml", "[execution]\nmax_stdout_bytes = 300\n");
  ExpectRefused({"bad.typed", "--param", "name=x"}, 125,
                {world_.Path("small.toml") + ":2", "execution.max_stdout_bytes"},
                /*has_result=*/false, world_.Path("small.toml"));
}

TEST_F(RunBadInputTest, ValidRunStillWorksInTheSameWorld) {
  // The control: the fixture itself is runnable, so the refusals above are about their input.
  world_.WriteSimpleAction("bad", "good", "python", "good.py", "print('fine')\n");
  CommandResult r = world_.Cli({"run", "bad.good", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.Json()["stdout"], "fine\n");
}

}  // namespace
}  // namespace packvisor::testing
