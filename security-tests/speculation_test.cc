// Catalog B22 (speculative-execution side channels against a concurrent action): the sandbox
// child force-disables speculative store bypass and indirect branch speculation
// (PR_SET_SPECULATION_CTRL, PR_SPEC_FORCE_DISABLE) before the action runs, and the supervisor's
// check from outside refuses an action whose /proc/<pid>/status shows a per-task state that is
// not forced. The action here (the static probe) first tries to turn speculation back on, then
// prints its own Speculation lines.
//
// The kernel offers per-task control only where the CPU is affected and the mitigation mode is
// "prctl" or "seccomp" (PR_GET_SPECULATION_CTRL has PR_SPEC_PRCTL). Elsewhere the state is the
// same for every task (not affected, mitigated for all, or off for all) and nothing a sandbox does
// can change it; the tests then check that the action sees exactly the host's global state and
// skip the parts that need per-task control, saying why.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sandbox/verify.h"
#include "security-tests/probe_suite.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using probe_suite::HasLine;
using probe_suite::Outcome;
using probe_suite::PerTaskSpeculationControl;
using probe_suite::ReadFile;
using probe_suite::RequireRoot;
using probe_suite::RunBinary;
using testing::TempDir;

constexpr char kSsb[] = "Speculation_Store_Bypass";
constexpr char kIb[] = "SpeculationIndirectBranch";

// --- the pure check of the verification (sandbox/verify.cc), on sample /proc text --------------

std::string Status(const std::string& ssb, const std::string& ib) {
  std::string text = "Name:\tprobe\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";
  if (!ssb.empty()) text += std::string(kSsb) + ":\t" + ssb + "\n";
  if (!ib.empty()) text += std::string(kIb) + ":\t" + ib + "\n";
  return text + "Cpus_allowed:\t3\n";
}

bool Accepted(const std::string& ssb, const std::string& ib, bool ssb_control, bool ib_control) {
  return sandbox::CheckSpeculationText(Status(ssb, ib), {ssb_control, ib_control}).ok();
}

TEST(B22_speculation_check, WithPerTaskControlOnlyTheForcedStatesPass) {
  EXPECT_TRUE(Accepted("thread force mitigated", "conditional force disabled", true, true));
  // A skipped or non-forced step: the action could still be, or become, vulnerable.
  for (const char* ssb : {"thread vulnerable", "thread mitigated", "vulnerable", ""}) {
    EXPECT_FALSE(Accepted(ssb, "conditional force disabled", true, true)) << ssb;
  }
  for (const char* ib : {"conditional enabled", "conditional disabled", "always enabled", ""}) {
    EXPECT_FALSE(Accepted("thread force mitigated", ib, true, true)) << ib;
  }
  auto result = sandbox::CheckSpeculationText(
      Status("thread vulnerable", "conditional force disabled"), {true, true});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message().find(kSsb), std::string::npos) << result.error().message();
}

TEST(B22_speculation_check, WithoutPerTaskControlTheGlobalStatePassesButNoPerTaskOne) {
  for (const char* ssb : {"not vulnerable", "globally mitigated", "vulnerable", ""}) {
    for (const char* ib : {"not affected", "always disabled", "always enabled", ""}) {
      EXPECT_TRUE(Accepted(ssb, ib, false, false)) << ssb << " / " << ib;
    }
  }
  EXPECT_FALSE(Accepted("thread vulnerable", "not affected", false, false));
  EXPECT_FALSE(Accepted("thread mitigated", "not affected", false, false));
  EXPECT_FALSE(Accepted("not vulnerable", "conditional enabled", false, false));
  EXPECT_FALSE(Accepted("not vulnerable", "conditional disabled", false, false));
  // Control over one misfeature only: each is judged by its own mode.
  EXPECT_TRUE(Accepted("thread force mitigated", "always enabled", true, false));
  EXPECT_FALSE(Accepted("vulnerable", "conditional force disabled", true, true));
}

// --- the real sandbox ----------------------------------------------------------------------------

// "Key:\tvalue" of `key` in /proc status text ("" when absent).
std::string StatusValue(const std::string& text, const std::string& key) {
  for (const std::string& line : testing::Lines(text)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    size_t start = line.find_first_not_of(" \t", key.size() + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "";
}

// What the probe's "speculation" case said: its status lines and its re-enable attempts.
struct SpeculationReport {
  bool reached = false;
  std::string ssb, ib;                // the Speculation lines of its /proc/self/status
  std::string enable_ssb, enable_ib;  // "ok 0" or "errno=N"
};

SpeculationReport ParseReport(const std::string& out) {
  SpeculationReport report;
  std::string status;
  for (const std::string& line : testing::Lines(out)) {
    if (line == "speculation reached") report.reached = true;
    if (line.rfind("speculation Speculation", 0) == 0) status += line.substr(12) + "\n";
    if (line.rfind("speculation enable_ssb ", 0) == 0) report.enable_ssb = line.substr(23);
    if (line.rfind("speculation enable_ib ", 0) == 0) report.enable_ib = line.substr(22);
  }
  report.ssb = StatusValue(status, kSsb);
  report.ib = StatusValue(status, kIb);
  return report;
}

// `binary exec --pack-dir <probe pack> --json -- /pack/probe speculation`.
nlohmann::json RunSpeculationProbe(const std::string& binary,
                                   const std::vector<std::string>& extra_env = {}) {
  TempDir pack;
  pack.Write("probe", ReadFile(PACKVISOR_PROBE_BINARY), 0755);
  Outcome run = RunBinary(binary,
                          {"exec", "--pack-dir", pack.path(), "--timeout", "5", "--json", "--",
                           "/pack/probe", "speculation"},
                          extra_env);
  EXPECT_FALSE(run.timed_out) << run.err;
  nlohmann::json result = run.Json();
  EXPECT_TRUE(result.contains("status")) << run.out << run.err;
  return result;
}

std::string HostStatus() { return ReadFile("/proc/self/status"); }

TEST(SpeculationTest, B22_speculation_mitigations_forced) {
  RequireRoot();
  const bool ssb_control = PerTaskSpeculationControl(PR_SPEC_STORE_BYPASS);
  const bool ib_control = PerTaskSpeculationControl(PR_SPEC_INDIRECT_BRANCH);
  const std::string host = HostStatus();
  const std::string host_ssb = StatusValue(host, kSsb);
  const std::string host_ib = StatusValue(host, kIb);
  ASSERT_FALSE(host_ssb.empty()) << "this kernel does not report " << kSsb << ":\n" << host;

  nlohmann::json result = RunSpeculationProbe(testing::PackvisorBinary());
  ASSERT_EQ(result.value("status", ""), "succeeded") << result.dump();
  SpeculationReport inside = ParseReport(result.value("stdout", ""));
  ASSERT_TRUE(inside.reached) << "the action never ran: " << result.dump();
  ASSERT_FALSE(inside.ssb.empty()) << result.dump();
  ASSERT_FALSE(inside.enable_ssb.empty()) << "the re-enable attack was not tried";
  ASSERT_FALSE(inside.enable_ib.empty()) << "the re-enable attack was not tried";

  // Store bypass: forced per task where the kernel allows it; else the host's global state.
  if (ssb_control) {
    EXPECT_EQ(inside.ssb, "thread force mitigated") << result.dump();
    EXPECT_EQ(inside.enable_ssb, "errno=" + std::to_string(EPERM))
        << "the action turned store-bypass speculation back on";
  } else {
    EXPECT_EQ(inside.ssb, host_ssb) << "without per-task control the action must see the host's "
                                       "global state";
    EXPECT_TRUE(inside.ssb == "not vulnerable" || inside.ssb == "globally mitigated" ||
                inside.ssb == "vulnerable")
        << inside.ssb;
  }
  if (ib_control) {
    EXPECT_EQ(inside.ib, "conditional force disabled") << result.dump();
    EXPECT_EQ(inside.enable_ib, "errno=" + std::to_string(EPERM))
        << "the action turned indirect branch speculation back on";
  } else {
    EXPECT_EQ(inside.ib, host_ib);
    EXPECT_TRUE(inside.ib == "not affected" || inside.ib == "always disabled" ||
                inside.ib == "always enabled" || inside.ib.empty())
        << inside.ib;
  }

  const bool ssb_safe = inside.ssb == "thread force mitigated" ||
                        inside.ssb == "globally mitigated" || inside.ssb == "not vulnerable";
  const bool ib_safe = inside.ib == "conditional force disabled" ||
                       inside.ib == "always disabled" || inside.ib == "not affected" ||
                       inside.ib.empty();
  if (inside.ssb == "not vulnerable" && (inside.ib == "not affected" || inside.ib.empty())) {
    GTEST_SKIP() << "the CPU reports not vulnerable to either misfeature: nothing to force";
  }
  if (!(ssb_safe && ib_safe) && !ssb_control && !ib_control) {
    GTEST_SKIP() << "the host leaves speculation on for every task and offers no per-task "
                    "control (host "
                 << kSsb << ": '" << host_ssb << "', " << kIb << ": '" << host_ib
                 << "'; PR_GET_SPECULATION_CTRL without PR_SPEC_PRCTL, so "
                    "PR_SET_SPECULATION_CTRL answers ENXIO/EPERM): no sandbox can force it here. "
                    "The action was checked to see exactly the host's state.";
  }
  EXPECT_TRUE(ssb_safe) << kSsb << ": " << inside.ssb;
  EXPECT_TRUE(ib_safe) << kIb << ": " << inside.ib;
}

// Positive control: the test-hooks binary skips the step and the check from outside (and the
// seccomp load, which force-disables both by itself in the kernel's "seccomp" mode); the same
// action then shows the per-task "vulnerable" states and can turn speculation back on, so the
// test above can fail. Needs per-task control (else there is nothing the step changes).
TEST(SpeculationTest, B22_positive_control_without_the_step_the_action_is_not_forced) {
  RequireRoot();
  const bool ssb_control = PerTaskSpeculationControl(PR_SPEC_STORE_BYPASS);
  const bool ib_control = PerTaskSpeculationControl(PR_SPEC_INDIRECT_BRANCH);
  if (!ssb_control && !ib_control) {
    GTEST_SKIP() << "no per-task speculation control on this host (PR_GET_SPECULATION_CTRL "
                    "without PR_SPEC_PRCTL): with or without the step the action sees the same "
                    "global state";
  }
  nlohmann::json result = RunSpeculationProbe(
      PACKVISOR_TEST_HOOKS_BINARY,
      {"PACKVISOR_TEST_SKIP_STEP=speculation,seccomp", "PACKVISOR_TEST_SKIP_VERIFY=1"});
  ASSERT_EQ(result.value("status", ""), "succeeded") << result.dump();
  SpeculationReport inside = ParseReport(result.value("stdout", ""));
  ASSERT_TRUE(inside.reached) << result.dump();
  if (ssb_control) {
    EXPECT_NE(inside.ssb, "thread force mitigated") << result.dump();
    EXPECT_EQ(inside.enable_ssb, "ok 0") << "re-enabling should work without the forced state";
  }
  if (ib_control) {
    EXPECT_NE(inside.ib, "conditional force disabled") << result.dump();
    EXPECT_EQ(inside.enable_ib, "ok 0");
  }
}

}  // namespace
}  // namespace packvisor
