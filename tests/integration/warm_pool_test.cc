// The warm pool (sandbox/warm_pool.h), in process: a sandbox claimed from the pool runs its action
// with the same mounts, ids, capabilities, seccomp, cgroup and limits, environment and /proc view
// as a fresh launch of the same spec; a prepared sandbox is used once; destroying the pool, or
// SIGKILLing the process that owns it, leaves no prepared sandbox, zygote or cgroup behind; a
// prepare step that fails leaves nothing ready and a claim falls back to a fresh launch, which
// fails the same way.
#include "sandbox/warm_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sandbox/cgroup.h"
#include "sandbox/launcher.h"
#include "sandbox/os/unique_fd.h"
#include "tests/support/cgroup_fixtures.h"
#include "tests/support/harness.h"

namespace packvisor::testing {
namespace {

using sandbox::RunSandbox;
using sandbox::SandboxSpec;
using sandbox::WarmPool;

// Everything the action can see of its confinement, one fact per line, with what legitimately
// differs between two sandboxes (mount ids, the cgroup's random name) normalized away.
constexpr char kProbe[] = R"PROBE(
id
grep -E '^(Cap|NoNewPrivs|Seccomp|Uid|Gid|Groups|Speculation)' /proc/self/status
awk '{for (i = 7; i <= NF; i++) if ($i == "-") print $5, $6, $(i+1), $(i+3)}' /proc/self/mountinfo | sort
sed -E 's/[0-9]+-[0-9a-f]{12}$/NAME/' /proc/self/cgroup
env | sort
grep -E '^Max (core|open|processes|file size)' /proc/self/limits
echo "nice $(cut -d' ' -f19 /proc/self/stat)"
echo "cwd $(pwd) host $(hostname)"
ls -la / /tmp /dev /pack /env | sed -E 's/ [A-Z][a-z]{2} +[0-9]+ +[0-9:]+ / DATE /; s/^([-a-z]{10}) +[0-9]+ /\1 /'
ls /proc | grep -v '^[0-9]' | sort | tr '\n' ' '
echo
cat /tmp/param.json
ps -eo pid,ppid,comm 2>/dev/null || ls /proc | grep -c '^[0-9]'
echo "stdin $(cat)"
)PROBE";

class WarmPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(cgroups_.usable());
    pack_.Write("hello.txt", "hi\n");
    env_.Chown(100000, 100000);
  }

  SandboxSpec Spec(const std::string& script) const {
    SandboxSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "PROBE=1"};
    spec.pack_dir = pack_.path();
    spec.env_dir = env_.path();
    spec.files = {{"/tmp/param.json", "{\"x\": 1}", 0400}};
    spec.cgroup = sandbox::CgroupLimits{};
    spec.cgroup->memory_max_bytes = 96ull << 20;
    spec.cgroup->pids_max = 33;
    spec.cgroup_parent = cgroups_.name();
    return spec;
  }

  struct Run {
    sandbox::SandboxResult result;
    std::string out, err;
  };

  Run Launch(const SandboxSpec& spec, WarmPool* pool, const std::string& stdin_data = "in") {
    sandbox::StringSink out, err;
    sandbox::LaunchIo io;
    io.stdin_data = stdin_data;
    io.stdout_sink = &out;
    io.stderr_sink = &err;
    auto launched = RunSandbox(spec, io, pool);
    EXPECT_TRUE(launched.ok()) << (launched.ok() ? "" : launched.error().message());
    Run run;
    if (launched.ok()) run.result = *launched;
    run.out = out.data;
    run.err = err.data;
    return run;
  }

  static std::unique_ptr<WarmPool> MakePool(const SandboxSpec& spec, int count) {
    auto pool = WarmPool::Create({{spec}, count});
    EXPECT_TRUE(pool.ok()) << (pool.ok() ? "" : pool.error().message());
    if (!pool.ok()) return nullptr;
    auto full = (*pool)->WaitUntilFull();
    EXPECT_TRUE(full.ok()) << (full.ok() ? "" : full.error().message());
    return std::move(*pool);
  }

  ScopedCgroupParent cgroups_;
  TempDir pack_;
  TempDir env_;
};

// True once the process behind `pidfd` has exited (pidfd readable), waiting at most `ms`.
bool Exited(int pidfd, int ms) {
  struct pollfd fd = {pidfd, POLLIN, 0};
  return poll(&fd, 1, ms) == 1;
}

unique_fd PidfdOf(pid_t pid) {
  return unique_fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
}

TEST_F(WarmPoolTest, ClaimedSandboxShowsTheActionWhatAFreshOneShows) {
  SandboxSpec spec = Spec(kProbe);
  auto pool = MakePool(spec, 1);
  ASSERT_NE(pool, nullptr);
  std::vector<pid_t> ready = pool->ReadyPids();
  ASSERT_EQ(ready.size(), 1u);

  Run fresh = Launch(spec, nullptr);
  Run claimed = Launch(spec, pool.get());
  // It really was the prepared one: it is gone from the pool, and its init was reaped.
  std::vector<pid_t> ready_after = pool->ReadyPids();
  EXPECT_EQ(std::count(ready_after.begin(), ready_after.end(), ready[0]), 0);
  EXPECT_EQ(kill(ready[0], 0), -1);

  ASSERT_EQ(fresh.result.outcome, sandbox::Outcome::kExited) << fresh.err << fresh.out;
  ASSERT_EQ(claimed.result.outcome, sandbox::Outcome::kExited) << claimed.err << claimed.out;
  EXPECT_EQ(fresh.result.exit_code, claimed.result.exit_code);
  EXPECT_EQ(fresh.err, claimed.err);
  EXPECT_EQ(fresh.out, claimed.out);
  // The probe saw what it should (so that equal outputs are not two equal failures).
  EXPECT_NE(claimed.out.find("uid=1000"), std::string::npos) << claimed.out;
  EXPECT_NE(claimed.out.find("CapEff:\t0000000000000000"), std::string::npos) << claimed.out;
  EXPECT_NE(claimed.out.find("Seccomp:\t2"), std::string::npos) << claimed.out;
  EXPECT_NE(claimed.out.find("/pack ro,nosuid,nodev"), std::string::npos) << claimed.out;
  EXPECT_NE(claimed.out.find("{\"x\": 1}"), std::string::npos) << claimed.out;
  EXPECT_NE(claimed.out.find("stdin in"), std::string::npos) << claimed.out;
  EXPECT_NE(claimed.out.find("PROBE=1"), std::string::npos) << claimed.out;
}

// The execution's cgroup limits are written at claim (the prepared sandbox was made with the
// template's): read from the host while the action runs, then the run is cancelled.
TEST_F(WarmPoolTest, ClaimedSandboxRunsUnderTheExecutionsCgroupLimits) {
  SandboxSpec template_spec = Spec("true");
  template_spec.cgroup->memory_max_bytes = 200ull << 20;
  template_spec.cgroup->pids_max = 100;
  auto pool = MakePool(template_spec, 1);
  ASSERT_NE(pool, nullptr);

  SandboxSpec spec = Spec("cat /proc/self/cgroup; exec sleep 600");
  unique_fd cancel(eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(cancel);
  const sandbox::CgroupLayout& layout = sandbox::CgroupLayout::Probe();
  struct LimitsSink : sandbox::OutputSink {
    void Consume(std::string_view chunk) override {
      data.append(chunk);
      std::smatch match;
      std::regex line(cgroup_parent + "/[0-9]+-[0-9a-f]+");
      if (!done && std::regex_search(data, match, line)) {
        done = true;
        bool v2 = layout->backend == sandbox::CgroupBackend::kV2;
        std::string base = (v2 ? layout->v2_dir : layout->v1_memory) + "/" + match.str();
        memory = ReadFileOrEmpty(base + (v2 ? "/memory.max" : "/memory.limit_in_bytes"));
        std::string pids_base = (v2 ? layout->v2_dir : layout->v1_pids) + "/" + match.str();
        pids = ReadFileOrEmpty(pids_base + "/pids.max");
        uint64_t one = 1;
        (void)!write(cancel_fd, &one, sizeof(one));
      }
    }
    std::string data, memory, pids, cgroup_parent;
    const sandbox::CgroupLayout* layout = nullptr;
    int cancel_fd = -1;
    bool done = false;
  } out;
  out.cgroup_parent = cgroups_.name();
  out.layout = &layout;
  out.cancel_fd = cancel.get();
  sandbox::StringSink err;
  sandbox::LaunchIo io;
  io.stdout_sink = &out;
  io.stderr_sink = &err;
  io.cancel_fd = cancel.get();
  auto launched = RunSandbox(spec, io, pool.get());
  ASSERT_TRUE(launched.ok()) << launched.error().message();
  EXPECT_EQ(launched->outcome, sandbox::Outcome::kCancelled) << err.data;
  ASSERT_TRUE(out.done) << out.data << err.data;
  EXPECT_EQ(out.memory, std::to_string(96ull << 20) + "\n");
  EXPECT_EQ(out.pids, "33\n");
}

// A cancel that arrives before the action is released (here: already pending at the launch) ends
// the execution `cancelled`: the waiting action is never released, and its death from the stop is
// not reported as a failed verification. Fresh and claimed sandboxes alike.
TEST_F(WarmPoolTest, ACancelBeforeTheActionStartsNeverReleasesIt) {
  SandboxSpec spec = Spec("echo released");
  spec.kill_grace = std::chrono::milliseconds(200);
  auto pool = MakePool(spec, 1);
  ASSERT_NE(pool, nullptr);
  for (WarmPool* through : {static_cast<WarmPool*>(nullptr), pool.get()}) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      unique_fd cancel(eventfd(1, EFD_CLOEXEC));
      ASSERT_TRUE(cancel);
      sandbox::StringSink out, err;
      sandbox::LaunchIo io;
      io.stdout_sink = &out;
      io.stderr_sink = &err;
      io.cancel_fd = cancel.get();
      auto launched = RunSandbox(spec, io, through);
      ASSERT_TRUE(launched.ok()) << launched.error().message();
      EXPECT_EQ(launched->outcome, sandbox::Outcome::kCancelled)
          << (through ? "claimed" : "fresh") << ": " << launched->failure_detail << err.data;
      EXPECT_EQ(out.data, "") << (through ? "claimed" : "fresh");
      if (through) {
        ASSERT_TRUE(pool->WaitUntilFull().ok());
      }
    }
  }
}

TEST_F(WarmPoolTest, APreparedSandboxIsUsedOnceAndReplaced) {
  SandboxSpec spec = Spec("echo ok");
  auto pool = MakePool(spec, 1);
  ASSERT_NE(pool, nullptr);
  pid_t first = pool->ReadyPids().at(0);
  Run run = Launch(spec, pool.get());
  EXPECT_EQ(run.out, "ok\n");
  ASSERT_TRUE(pool->WaitUntilFull().ok());
  std::vector<pid_t> now = pool->ReadyPids();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now[0], first);
  EXPECT_EQ(pool->prepared_count(), 2u);
  // A spec with another key (here: host network) does not match: it launches fresh.
  SandboxSpec other = spec;
  other.network = sandbox::NetworkMode::kHost;
  EXPECT_EQ(pool->Claim(other), nullptr);
  Run fresh = Launch(other, pool.get());
  EXPECT_EQ(fresh.out, "ok\n");
  EXPECT_EQ(pool->ReadyPids(), now);
  // Counted by RunSandbox (a bare Claim is not a launch): one hit, one miss.
  EXPECT_EQ(pool->claim_counts().hits, 1u);
  EXPECT_EQ(pool->claim_counts().misses, 1u);
  // Both actions were released to exec, after the launch began.
  ASSERT_TRUE(run.result.released_at.has_value());
  ASSERT_TRUE(fresh.result.released_at.has_value());
  EXPECT_LT(*run.result.released_at, *fresh.result.released_at);
}

TEST_F(WarmPoolTest, DestroyingThePoolLeavesNoProcessOrCgroup) {
  SandboxSpec spec = Spec("true");
  auto pool = MakePool(spec, 2);
  ASSERT_NE(pool, nullptr);
  std::vector<unique_fd> pidfds;
  for (pid_t pid : pool->ReadyPids()) pidfds.push_back(PidfdOf(pid));
  pidfds.push_back(PidfdOf(pool->zygote_pid()));
  ASSERT_EQ(pidfds.size(), 3u);
  for (const unique_fd& fd : pidfds) ASSERT_TRUE(fd);
  EXPECT_FALSE(cgroups_.Children().empty());
  EXPECT_EQ(cgroups_.Members().size(), 2u);
  pool.reset();
  for (const unique_fd& fd : pidfds) {
    EXPECT_TRUE(Exited(fd.get(), 0));
    // Reaped too: the pool's owner is their parent (CLONE_PARENT), and nothing is left to wait.
    siginfo_t info{};
    EXPECT_NE(syscall(SYS_waitid, P_PIDFD, fd.get(), &info, WEXITED | WNOHANG, nullptr), 0);
  }
  EXPECT_EQ(cgroups_.Children(), std::vector<std::string>{});
}

// The daemon dies by SIGKILL: PDEATHSIG takes the zygote and every prepared sandbox with it.
TEST_F(WarmPoolTest, SigkilledOwnerLeavesNoPreparedSandboxAlive) {
  SandboxSpec spec = Spec("true");
  int pids_pipe[2];
  ASSERT_EQ(pipe2(pids_pipe, O_CLOEXEC), 0);
  unique_fd pids_read(pids_pipe[0]), pids_write(pids_pipe[1]);
  pid_t owner = fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    pids_read.reset();
    auto pool = WarmPool::Create({{spec}, 2});
    if (!pool.ok() || !(*pool)->WaitUntilFull().ok()) _exit(1);
    std::vector<pid_t> pids = (*pool)->ReadyPids();
    pids.push_back((*pool)->zygote_pid());
    (void)!write(pids_write.get(), pids.data(), pids.size() * sizeof(pid_t));
    pids_write.reset();
    for (;;) pause();
  }
  pids_write.reset();
  pid_t pids[3] = {};
  ASSERT_EQ(read(pids_read.get(), pids, sizeof(pids)), static_cast<ssize_t>(sizeof(pids)));
  std::vector<unique_fd> pidfds;
  for (pid_t pid : pids) pidfds.push_back(PidfdOf(pid));
  for (const unique_fd& fd : pidfds) ASSERT_TRUE(fd);
  kill(owner, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(owner, &status, 0), owner);
  for (const unique_fd& fd : pidfds) EXPECT_TRUE(Exited(fd.get(), 30000));
  // The crash leaves the cgroups (named after the dead owner): the daemon's start-up scan
  // removes them, as it does for a crashed one-shot launch.
  EXPECT_GE(sandbox::RemoveStaleCgroups(sandbox::CgroupLayout::Probe(), cgroups_.name()), 2);
  EXPECT_EQ(cgroups_.Children(), std::vector<std::string>{});
}

// A prepare step that fails (sethostname refuses a name over 64 bytes; RunSandbox's validation
// would refuse such a spec, the pool's templates are not validated) leaves nothing ready and
// nothing behind: a claim finds nothing, so the launch is fresh. (The security suite's pooled run
// injects a failure at every step: PACKVISOR_TEST_WARM_POOL, docs/threat-model.md.)
TEST_F(WarmPoolTest, AFailedPrepareFailsClosed) {
  SandboxSpec spec = Spec("echo ran");
  spec.hostname = std::string(100, 'h');
  auto pool = WarmPool::Create({{spec}, 1});
  ASSERT_TRUE(pool.ok()) << pool.error().message();
  EXPECT_FALSE((*pool)->WaitUntilFull().ok());
  std::optional<sandbox::PrepareFailure> failure = (*pool)->LastFailure();
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->step, sandbox::SetupStep::kSetHostname);
  EXPECT_EQ(failure->err, EINVAL);
  EXPECT_TRUE((*pool)->ReadyPids().empty());
  EXPECT_EQ((*pool)->Claim(spec), nullptr);
  pid_t zygote = (*pool)->zygote_pid();
  unique_fd zygote_fd = PidfdOf(zygote);
  pool->reset();
  EXPECT_TRUE(Exited(zygote_fd.get(), 0));
  EXPECT_EQ(cgroups_.Children(), std::vector<std::string>{});
}

}  // namespace
}  // namespace packvisor::testing
