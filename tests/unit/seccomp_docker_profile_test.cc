// The seccomp policy against Docker's default profile: every syscall that Docker blocks on x86_64
// (security-tests/data/docker-default-blocked.txt, derived from moby's default.json by
// scripts/docker-seccomp-blocked.py) must be denied by the real compiled policy, whatever its
// arguments where Docker blocks it whatever its arguments, and for every argument Docker
// refuses where Docker's block depends on them. The program is evaluated by a classic-BPF
// interpreter (tests/support/seccomp_bpf.h), cross-checked here against the kernel itself.
//
// The same data renders docs/threat-model.md's table "Against Docker's default profile"; a test
// holds the document and the policy together (the table cannot drift).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sandbox/seccomp_policy.h"
#include "tests/support/seccomp_bpf.h"

namespace packvisor::sandbox {
namespace {

using testing::BpfVerdict;
using testing::RunSeccompBpf;

const char kDataFile[] = PACKVISOR_SOURCE_DIR "/security-tests/data/docker-default-blocked.txt";
const char kThreatModel[] = PACKVISOR_SOURCE_DIR "/docs/threat-model.md";
const char kTableBegin[] = "<!-- seccomp-docker-table: begin (generated) -->";
const char kTableEnd[] = "<!-- seccomp-docker-table: end -->";

// Syscalls Docker blocks that packvisor lets through, each with the reason. Empty: the deny
// list covers Docker's whole blocked set. An entry here must name a call the policy really
// allows (the test fails on a stale one) and is listed in the document's third table.
const std::map<std::string, std::string> kAllowedDespiteDocker = {};

// One line of the data file.
struct DockerBlock {
  std::string name;
  uint32_t nr = 0;
  std::string err;        // what Docker answers: EPERM, or ENOSYS for clone3
  std::string condition;  // "-", "unless-arg0-in:V,..." or "unless-arg0-masked-zero:M"
};

std::vector<DockerBlock> LoadDockerBlocks(std::string* source = nullptr) {
  std::ifstream in(kDataFile);
  std::vector<DockerBlock> blocks;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# source: ", 0) == 0 && source != nullptr) *source = line.substr(10);
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    DockerBlock block;
    if (!(fields >> block.name >> block.nr >> block.err >> block.condition)) {
      ADD_FAILURE() << kDataFile << ": malformed line '" << line << "'";
      continue;
    }
    blocks.push_back(block);
  }
  return blocks;
}

std::vector<uint64_t> ParseValues(const std::string& list) {
  std::vector<uint64_t> values;
  std::istringstream in(list);
  std::string value;
  while (std::getline(in, value, ',')) values.push_back(std::stoull(value, nullptr, 0));
  return values;
}

// Arguments for which Docker blocks the call: all zeros for an unconditional block (the verdict
// then has to be reached without reading the arguments), else a sample of first arguments that
// Docker refuses: every single bit, bits mixed with harmless flags and high garbage, the
// neighbours of each allowed value, and pseudo-random values.
std::vector<uint64_t> DockerBlockedArg0Samples(const DockerBlock& block) {
  if (block.condition == "-") return {0};
  std::vector<uint64_t> candidates;
  for (int bit = 0; bit < 64; ++bit) {
    candidates.push_back(uint64_t{1} << bit);
    candidates.push_back((uint64_t{1} << bit) | 0x11);  // SIGCHLD, as fork passes it
    candidates.push_back((uint64_t{1} << bit) | 0xdead000000000000);
  }
  uint64_t state = 0x9e3779b97f4a7c15;
  for (int i = 0; i < 256; ++i) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    candidates.push_back(state);
    candidates.push_back(state & 0xffffffff);
  }
  std::vector<uint64_t> blocked;
  const std::string in_prefix = "unless-arg0-in:";
  const std::string mask_prefix = "unless-arg0-masked-zero:";
  if (block.condition.rfind(in_prefix, 0) == 0) {
    std::vector<uint64_t> allowed = ParseValues(block.condition.substr(in_prefix.size()));
    for (uint64_t v : allowed) {
      candidates.push_back(v + 1), candidates.push_back(v - 1);
      candidates.push_back(v | (uint64_t{1} << 32));
    }
    candidates.push_back(0x0400000);  // READ_IMPLIES_EXEC
    candidates.push_back(0x0040000);  // ADDR_NO_RANDOMIZE
    for (uint64_t c : candidates) {
      bool is_allowed = false;
      for (uint64_t v : allowed) is_allowed = is_allowed || c == v;
      if (!is_allowed) blocked.push_back(c);
    }
  } else if (block.condition.rfind(mask_prefix, 0) == 0) {
    uint64_t mask = std::stoull(block.condition.substr(mask_prefix.size()), nullptr, 0);
    for (uint64_t c : candidates) {
      if ((c & mask) != 0) blocked.push_back(c);
    }
  } else {
    ADD_FAILURE() << block.name << ": unknown condition " << block.condition;
  }
  return blocked;
}

seccomp_data NativeCall(uint32_t nr, uint64_t arg0 = 0) {
  seccomp_data data{};
  data.nr = static_cast<int>(nr);
  data.arch = AUDIT_ARCH_X86_64;
  data.args[0] = arg0;
  return data;
}

bool Denies(uint32_t ret) { return (ret & SECCOMP_RET_ACTION_FULL) != SECCOMP_RET_ALLOW; }

std::string Action(uint32_t ret) {
  switch (ret & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_ALLOW:
      return "allowed";
    case SECCOMP_RET_ERRNO: {
      const char* name = strerrorname_np(static_cast<int>(ret & SECCOMP_RET_DATA));
      return name != nullptr ? name : "errno " + std::to_string(ret & SECCOMP_RET_DATA);
    }
    case SECCOMP_RET_KILL_PROCESS:
    case SECCOMP_RET_KILL_THREAD:
      return "killed";
    default:
      return "action " + std::to_string(ret);
  }
}

const std::vector<sock_filter>& PolicyProgram() {
  return BuiltinSeccompProgram(SeccompOptions{}).instructions;
}

// What the policy does with a call Docker blocks: denied for every Docker-blocked argument, the
// answer, and whether it depends on the arguments.
struct Comparison {
  bool denied_wherever_docker_denies = true;
  std::string answer;
  bool by_arguments = false;
  std::string first_allowed;  // a Docker-blocked first argument the policy lets through
};

Comparison Compare(const DockerBlock& block) {
  Comparison comparison;
  for (uint64_t arg0 : DockerBlockedArg0Samples(block)) {
    BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), NativeCall(block.nr, arg0));
    EXPECT_TRUE(verdict.valid) << block.name << ": " << verdict.error;
    if (comparison.answer.empty()) comparison.answer = Action(verdict.ret);
    comparison.by_arguments = comparison.by_arguments || verdict.read_args;
    if (!Denies(verdict.ret) && comparison.denied_wherever_docker_denies) {
      comparison.denied_wherever_docker_denies = false;
      std::ostringstream arg;
      arg << "0x" << std::hex << arg0;
      comparison.first_allowed = arg.str();
    }
  }
  return comparison;
}

TEST(DockerDefaultProfile, DataFileNamesItsMobyCommitAndMatchesLibseccompsTable) {
  std::string source;
  std::vector<DockerBlock> blocks = LoadDockerBlocks(&source);
  EXPECT_NE(source.find("moby/moby profiles/seccomp/default.json @ "), std::string::npos) << source;
  EXPECT_GT(blocks.size(), 60u);
  for (const DockerBlock& block : blocks) {
    EXPECT_EQ(seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, block.name.c_str()),
              static_cast<int>(block.nr))
        << block.name;
  }
  // The calls the issue names, as Docker's data says (modify_ldt is allowed on amd64 by this
  // profile; the policy denies it anyway).
  std::set<std::string> names;
  for (const DockerBlock& block : blocks) names.insert(block.name);
  for (const char* name : {"mbind", "set_mempolicy", "get_mempolicy", "migrate_pages", "move_pages",
                           "sysfs", "uselib", "ustat", "kcmp", "pidfd_getfd"}) {
    EXPECT_TRUE(names.count(name)) << name;
  }
}

// The core claim: deny list ⊇ Docker's blocked set.
TEST(DockerDefaultProfile, EveryCallDockerBlocksIsDeniedByThePolicyOrAnExplainedException) {
  std::vector<DockerBlock> blocks = LoadDockerBlocks();
  ASSERT_FALSE(blocks.empty());
  std::set<std::string> exceptions_used;
  for (const DockerBlock& block : blocks) {
    Comparison comparison = Compare(block);
    if (kAllowedDespiteDocker.count(block.name)) {
      EXPECT_FALSE(comparison.denied_wherever_docker_denies)
          << block.name << " is denied now: remove it from kAllowedDespiteDocker";
      exceptions_used.insert(block.name);
      continue;
    }
    EXPECT_TRUE(comparison.denied_wherever_docker_denies)
        << block.name << " (" << block.nr << ") is blocked by Docker (" << block.condition
        << ") but the policy allows it with arg0 = " << comparison.first_allowed;
    if (block.condition == "-") {
      EXPECT_FALSE(comparison.by_arguments)
          << block.name << " is blocked by Docker whatever its arguments, but the policy's "
          << "verdict reads them, so some arguments may get through";
    }
  }
  for (const auto& [name, reason] : kAllowedDespiteDocker) {
    EXPECT_TRUE(exceptions_used.count(name)) << name << " is not blocked by Docker: " << reason;
  }
}

TEST(DockerDefaultProfile, CallsTheIssueNamesAreDeniedWithEperm) {
  for (const char* name :
       {"modify_ldt", "mbind", "set_mempolicy", "get_mempolicy", "migrate_pages", "move_pages",
        "sysfs", "uselib", "ustat", "kcmp", "pidfd_getfd", "process_madvise", "pkey_alloc"}) {
    int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
    ASSERT_GE(nr, 0) << name;
    BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), NativeCall(static_cast<uint32_t>(nr)));
    ASSERT_TRUE(verdict.valid) << verdict.error;
    EXPECT_EQ(verdict.ret, SECCOMP_RET_ERRNO | EPERM) << name << ": " << Action(verdict.ret);
    EXPECT_FALSE(verdict.read_args) << name;
  }
}

// vm86 and vm86old exist on i386 only: on x86_64 they are reachable through int 0x80 alone,
// which the filter kills as a foreign architecture.
TEST(DockerDefaultProfile, Vm86IsAnI386CallKilledAsAForeignArchitecture) {
  EXPECT_LT(seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, "vm86"), 0);
  EXPECT_LT(seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, "vm86old"), 0);
  int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86, "vm86");
  ASSERT_GT(nr, 0);
  seccomp_data data = NativeCall(static_cast<uint32_t>(nr));
  data.arch = AUDIT_ARCH_I386;
  BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), data);
  ASSERT_TRUE(verdict.valid) << verdict.error;
  EXPECT_EQ(verdict.ret, SECCOMP_RET_KILL_PROCESS);
}

// Calls newer than the review (a future kernel's) fail with ENOSYS; reviewed numbers do not.
TEST(UnreviewedSyscalls, NumbersAboveTheHighestReviewedOneFailWithEnosys) {
  for (uint32_t nr = kHighestReviewedSyscall + 1; nr < 2048; ++nr) {
    BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), NativeCall(nr));
    ASSERT_TRUE(verdict.valid) << verdict.error;
    EXPECT_EQ(verdict.ret, SECCOMP_RET_ERRNO | ENOSYS) << nr << ": " << Action(verdict.ret);
  }
  for (uint32_t nr : {0u, 39u /* getpid */, 449u /* futex_waitv */}) {
    BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), NativeCall(nr));
    EXPECT_EQ(verdict.ret, SECCOMP_RET_ALLOW) << nr << ": " << Action(verdict.ret);
  }
  // The x32 range still dies as a foreign ABI, whatever the number. (Number -1 is libseccomp's
  // to decide: it lets it through, and the kernel answers ENOSYS itself.)
  for (uint32_t nr : {0x40000000u | 39u, 0x40000000u | 500u}) {
    BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), NativeCall(nr));
    EXPECT_EQ(verdict.ret, SECCOMP_RET_KILL_PROCESS)
        << std::hex << nr << ": " << Action(verdict.ret);
  }
}

TEST(UnreviewedSyscalls, EveryReviewedNumberLibseccompKnowsIsBelowTheLimit) {
  // A reviewed call above the limit would be refused with ENOSYS instead of its policy errno.
  for (const DeniedSyscall& denied : DeniedSyscalls(SeccompOptions{})) {
    int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, denied.name.c_str());
    if (nr >= 0) {
      EXPECT_LE(static_cast<uint32_t>(nr), kHighestReviewedSyscall) << denied.name;
    }
  }
}

// ---- SeccompMode::kAllow: the allow list in front of the deny list. ----

const std::vector<sock_filter>& AllowModeProgram() {
  return BuiltinSeccompProgram(SeccompOptions{.mode = SeccompMode::kAllow}).instructions;
}

uint32_t Nr(const char* name) {
  int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
  EXPECT_GE(nr, 0) << name;
  return static_cast<uint32_t>(nr);
}

uint32_t AllowMode(const char* name, uint64_t arg0 = 0, uint64_t arg1 = 0) {
  seccomp_data data = NativeCall(Nr(name), arg0);
  data.args[1] = arg1;
  BpfVerdict verdict = RunSeccompBpf(AllowModeProgram(), data);
  EXPECT_TRUE(verdict.valid) << name << ": " << verdict.error;
  return verdict.ret;
}

TEST(AllowMode, ListedCallsPassUnlessTheDenyListRefusesThem) {
  for (const std::string& name : AllowListSyscalls()) {
    uint32_t nr = Nr(name.c_str());
    BpfVerdict deny = RunSeccompBpf(PolicyProgram(), NativeCall(nr));
    BpfVerdict allow = RunSeccompBpf(AllowModeProgram(), NativeCall(nr));
    ASSERT_TRUE(deny.valid && allow.valid) << name;
    EXPECT_EQ(allow.ret, deny.ret)
        << name << ": allow mode " << Action(allow.ret) << ", deny mode " << Action(deny.ret);
  }
  EXPECT_EQ(AllowMode("getpid"), SECCOMP_RET_ALLOW);
  EXPECT_EQ(AllowMode("pkey_alloc"), SECCOMP_RET_ERRNO | EPERM);  // listed, but denied
  EXPECT_EQ(AllowMode("clone3"), SECCOMP_RET_ERRNO | ENOSYS);     // listed, libc falls back
}

TEST(AllowMode, EveryOtherCallFailsWithEperm) {
  std::set<std::string> listed;
  for (const std::string& name : AllowListSyscalls()) listed.insert(name);
  int refused = 0;
  for (uint32_t nr = 0; nr <= kHighestReviewedSyscall; ++nr) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, static_cast<int>(nr));
    if (name == nullptr) continue;
    std::string call = name;
    std::free(name);
    if (listed.count(call)) continue;
    BpfVerdict verdict = RunSeccompBpf(AllowModeProgram(), NativeCall(nr, 0x11));
    ASSERT_TRUE(verdict.valid) << call;
    // The deny list's own answer where it has one (ENOSYS for clone3, EAFNOSUPPORT...) never
    // reaches an unlisted call: the allow list answers first.
    EXPECT_EQ(verdict.ret, SECCOMP_RET_ERRNO | EPERM) << call << ": " << Action(verdict.ret);
    EXPECT_FALSE(verdict.read_args) << call;
    ++refused;
  }
  EXPECT_GT(refused, 250);
}

TEST(AllowMode, TheDenyListStillAppliesToListedCalls) {
  EXPECT_EQ(AllowMode("ioctl", 0, TIOCSTI), SECCOMP_RET_ERRNO | EPERM);
  EXPECT_EQ(AllowMode("ioctl", 0, FIONREAD), SECCOMP_RET_ALLOW);
  EXPECT_EQ(AllowMode("socket", AF_PACKET), SECCOMP_RET_ERRNO | EAFNOSUPPORT);
  EXPECT_EQ(AllowMode("socket", AF_INET), SECCOMP_RET_ALLOW);
  EXPECT_EQ(AllowMode("clone", CLONE_NEWUSER | SIGCHLD), SECCOMP_RET_ERRNO | EPERM);
  EXPECT_EQ(AllowMode("clone", SIGCHLD), SECCOMP_RET_ALLOW);
  EXPECT_EQ(AllowMode("unshare", CLONE_FILES), SECCOMP_RET_ERRNO | EPERM);
  EXPECT_EQ(AllowMode("ptrace"), SECCOMP_RET_ERRNO | EPERM);
}

TEST(AllowMode, UnreviewedNumbersAndForeignAbisAreHandledAsInDenyMode) {
  for (uint32_t nr : {kHighestReviewedSyscall + 1, 452u, 1000u}) {
    EXPECT_EQ(RunSeccompBpf(AllowModeProgram(), NativeCall(nr)).ret, SECCOMP_RET_ERRNO | ENOSYS)
        << nr;
  }
  EXPECT_EQ(RunSeccompBpf(AllowModeProgram(), NativeCall(0x40000000u | 39u)).ret,
            SECCOMP_RET_KILL_PROCESS);
  seccomp_data i386 = NativeCall(20);
  i386.arch = AUDIT_ARCH_I386;
  EXPECT_EQ(RunSeccompBpf(AllowModeProgram(), i386).ret, SECCOMP_RET_KILL_PROCESS);
}

// ---- The interpreter against the kernel: the same program, loaded for real. ----

// The kernel's answer to `nr(arg0)` under the policy, read through a guard filter installed
// first (it fails `nr` with kAllowed; a later filter's ERRNO wins over an earlier one, so the
// policy's own errno shows through and the call itself never runs). -1 if the child died.
constexpr int kAllowed = 4000;

int KernelAnswer(uint32_t nr, uint64_t arg0) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -2;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int answer = -3;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) {
      sock_filter guard[] = {
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | kAllowed),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      };
      sock_fprog guard_program{4, guard};
      if (LoadSeccompProgram(guard_program) == 0 &&
          LoadSeccompProgram(BuiltinSeccompProgram(SeccompOptions{}).AsFprog()) == 0) {
        long ret = syscall(nr, arg0, 1, 1, 1, 1, 1);
        answer = ret < 0 ? errno : 0;
      }
    }
    (void)!write(fds[1], &answer, sizeof(answer));
    _exit(0);
  }
  close(fds[1]);
  int answer = -1;
  if (read(fds[0], &answer, sizeof(answer)) != sizeof(answer)) answer = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return answer;
}

TEST(DockerDefaultProfile, InterpreterAgreesWithTheKernelOnEveryDockerBlockedCall) {
  for (const DockerBlock& block : LoadDockerBlocks()) {
    std::vector<uint64_t> samples = DockerBlockedArg0Samples(block);
    ASSERT_FALSE(samples.empty()) << block.name;
    for (uint64_t arg0 : {samples.front(), samples.back()}) {
      BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), NativeCall(block.nr, arg0));
      ASSERT_TRUE(verdict.valid) << verdict.error;
      int expected =
          Denies(verdict.ret) ? static_cast<int>(verdict.ret & SECCOMP_RET_DATA) : kAllowed;
      EXPECT_EQ(KernelAnswer(block.nr, arg0), expected)
          << block.name << " arg0 0x" << std::hex << arg0;
    }
  }
}

// ---- docs/threat-model.md's table, rendered from the data and the policy. ----

std::string DockerColumn(const DockerBlock& block) {
  const std::string in_prefix = "unless-arg0-in:";
  const std::string mask_prefix = "unless-arg0-masked-zero:";
  if (block.condition == "-") return block.err;
  if (block.condition.rfind(in_prefix, 0) == 0) {
    return block.err + " unless arg0 is one of " + block.condition.substr(in_prefix.size());
  }
  return block.err + " if arg0 & " + block.condition.substr(mask_prefix.size()) + " is not 0";
}

std::string RenderTable() {
  std::string source;
  std::vector<DockerBlock> blocks = LoadDockerBlocks(&source);
  std::map<std::string, DeniedSyscall> denied;
  for (const DeniedSyscall& d : DeniedSyscalls(SeccompOptions{})) denied.emplace(d.name, d);
  std::ostringstream both, only_packvisor, only_docker;
  std::set<std::string> docker_names;
  int n_both = 0, n_only_packvisor = 0, n_only_docker = 0;
  for (const DockerBlock& block : blocks) {
    docker_names.insert(block.name);
    Comparison comparison = Compare(block);
    std::string ours = comparison.answer + (comparison.by_arguments ? ", by arguments" : "");
    // Arguments Docker lets through that the policy refuses.
    const std::string in_prefix = "unless-arg0-in:";
    if (block.condition.rfind(in_prefix, 0) == 0) {
      std::string refused;
      std::string answer;
      for (uint64_t v : ParseValues(block.condition.substr(in_prefix.size()))) {
        BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), NativeCall(block.nr, v));
        if (!Denies(verdict.ret)) continue;
        std::ostringstream hex;
        hex << "0x" << std::hex << v;
        refused += (refused.empty() ? "" : ", ") + hex.str();
        answer = Action(verdict.ret);
      }
      if (!refused.empty()) {
        only_packvisor << "| " << block.name << " | " << block.nr << " | " << answer << " for arg0 "
                       << refused << " (Docker allows these) |\n";
        ++n_only_packvisor;
      }
    }
    if (comparison.denied_wherever_docker_denies) {
      both << "| " << block.name << " | " << block.nr << " | " << DockerColumn(block) << " | "
           << ours << " |\n";
      ++n_both;
    } else {
      auto reason = kAllowedDespiteDocker.find(block.name);
      only_docker << "| " << block.name << " | " << block.nr << " | " << DockerColumn(block)
                  << " | "
                  << (reason == kAllowedDespiteDocker.end() ? "no reason given" : reason->second)
                  << " |\n";
      ++n_only_docker;
    }
  }
  // Every other x86_64 call libseccomp knows that the policy denies for some arguments.
  uint32_t highest_known = 0;
  for (uint32_t nr = 0; nr < 1024; ++nr) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, static_cast<int>(nr));
    if (name == nullptr) continue;
    highest_known = nr;
    std::string call = name;
    std::free(name);
    if (docker_names.count(call)) continue;
    BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), NativeCall(nr));
    auto entry = denied.find(call);
    std::string ours;
    if (Denies(verdict.ret) && !verdict.read_args) {
      ours = Action(verdict.ret);
      if (nr > kHighestReviewedSyscall) ours += " (number not reviewed yet)";
    } else if (entry != denied.end()) {
      const char* err = strerrorname_np(entry->second.err);
      ours = std::string(err != nullptr ? err : "?") + ", by arguments";
    } else {
      continue;
    }
    only_packvisor << "| " << call << " | " << nr << " | " << ours << " |\n";
    ++n_only_packvisor;
  }
  {
    BpfVerdict verdict = RunSeccompBpf(PolicyProgram(), NativeCall(highest_known + 1));
    only_packvisor << "| every number above " << highest_known << " (unknown to libseccomp) | "
                   << highest_known + 1 << "+ | " << Action(verdict.ret)
                   << " (number not reviewed yet) |\n";
    ++n_only_packvisor;
  }
  std::ostringstream out;
  out << kTableBegin << "\n";
  out << "Docker's data: `security-tests/data/docker-default-blocked.txt` (" << source
      << "; x86_64, Docker's default capabilities). Verdicts: the policy's compiled program "
         "evaluated for each call (\"by arguments\": the answer depends on them; Docker-blocked "
         "arguments were sampled). Rendered by `SeccompDockerTable.DocumentMatchesThePolicy` "
         "(tests/unit/seccomp_docker_profile_test.cc).\n\n";
  out << "**Blocked by both** (" << n_both << ")\n\n";
  out << "| syscall | nr | Docker | packvisor |\n|---|---|---|---|\n" << both.str() << "\n";
  out << "**Blocked only by packvisor** (" << n_only_packvisor
      << "; Docker allows them, or allows the arguments packvisor refuses)\n\n";
  out << "| syscall | nr | packvisor |\n|---|---|---|\n" << only_packvisor.str() << "\n";
  out << "**Allowed by packvisor but blocked by Docker** (" << n_only_docker << ")\n\n";
  if (n_only_docker == 0) {
    out << "None.\n";
  } else {
    out << "| syscall | nr | Docker | why packvisor allows it |\n|---|---|---|---|\n"
        << only_docker.str();
  }
  out << kTableEnd;
  return out.str();
}

TEST(SeccompDockerTable, DocumentMatchesThePolicy) {
  std::string expected = RenderTable();
  if (const char* out = std::getenv("PACKVISOR_SECCOMP_TABLE_OUT")) {
    std::ofstream(out) << expected << "\n";
  }
  std::ifstream in(kThreatModel);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string doc = buffer.str();
  size_t begin = doc.find(kTableBegin);
  size_t end = doc.find(kTableEnd);
  ASSERT_NE(begin, std::string::npos) << kThreatModel << " has no " << kTableBegin;
  ASSERT_NE(end, std::string::npos) << kThreatModel << " has no " << kTableEnd;
  std::string actual = doc.substr(begin, end + std::strlen(kTableEnd) - begin);
  EXPECT_EQ(actual, expected) << "docs/threat-model.md's table is stale; regenerate it with "
                                 "scripts/update-seccomp-table.sh BUILD_DIR";
}

}  // namespace
}  // namespace packvisor::sandbox
