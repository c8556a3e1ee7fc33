// Pre-created, single-use sandboxes. A WarmPool keeps, per template, up to `per_template`
// prepared sandboxes: cloned with every namespace, id maps written, cgroup joined, the generic
// root built (tmpfs root, /usr and /lib binds, /etc, /proc, /dev, private /tmp, pivot_root done,
// old root detached), hostname, loopback and session set, then blocked on their control socket.
// RunSandbox(spec, io, pool) claims one whose key matches the spec and sends it only the
// per-execution part (sandbox/claim.h): the pack and env trees, files for /tmp, cgroup limits,
// stdio, rlimits, argv and environment; the sandbox then does the last drop, the launcher
// verifies it from outside exactly as for a fresh launch, and it execs. A claim that finds no
// match launches fresh and never waits for the pool.
//
// Memory hygiene (docs/threat-model.md, "Warm pool"): a clone copies its parent's memory, and a
// prepared sandbox may wait for minutes, so it must not be cloned from a process that has held
// other executions' secrets. Prepared sandboxes are cloned by a zygote: a single-threaded
// process forked by Create() (which must run before any request is read: the daemon calls it at
// start) that only ever receives templates, never a request. It clones with CLONE_PARENT, so the
// sandboxes are the daemon's children: the daemon reaps and monitors them through the pidfd the
// zygote passes back. Reconfigure() (SIGHUP) reuses the same zygote.
//
// Lifetime: PR_SET_PDEATHSIG of the zygote and of every sandbox it clones follows the thread
// that called Create() (CLONE_PARENT makes it their parent too): that thread must outlive the
// pool and every execution claimed from it (the daemon's main thread). When the daemon dies,
// even by SIGKILL, the zygote and every prepared or claimed sandbox die with it. Destroying the
// pool kills every unclaimed sandbox and removes its cgroup; claimed ones belong to their launch.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"
#include "sandbox/report.h"
#include "sandbox/spec.h"

namespace packvisor::sandbox {

// One prepared sandbox, owned by the pool until claimed, then by the launch. Destroying one that
// is still alive kills it (SIGKILL to its init: the kernel kills its whole pid namespace), reaps
// it and removes its cgroup.
struct PreparedSandbox {
  PreparedSandbox() = default;
  PreparedSandbox(const PreparedSandbox&) = delete;
  PreparedSandbox& operator=(const PreparedSandbox&) = delete;
  ~PreparedSandbox();

  pid_t pid = -1;       // host pid of its init
  unique_fd pidfd;      // CLONE_PIDFD
  unique_fd control;    // the launcher's end of the control socket
  bool reaped = false;  // set by the launch once it has reaped init
  std::optional<ExecutionCgroup> cgroup;
};

// Why the last prepare of a template failed.
struct PrepareFailure {
  SetupStep step = SetupStep::kNone;  // kNone: before the sandbox ran (zygote, cgroup, clone)
  int err = 0;
  int detail = 0;       // kMountPlan: index of the failed op of the generic mount plan
  std::string message;  // one line
};

class WarmPool {
 public:
  struct Options {
    // Each template's generic part (KeyOf) is a key; specs with the same key share a queue.
    std::vector<SandboxSpec> templates;
    int per_template = 2;
    // Do not print failed prepares on stderr (the test-hooks pooled mode: a one-shot command's
    // stderr is the command's own). The daemon leaves it false: LastFailure() keeps the last one.
    bool quiet = false;
  };

  // Forks the zygote from the calling thread (see the lifetime note above) and starts the refill
  // thread. per_template <= 0 or no templates: an empty pool (every claim launches fresh).
  static Result<std::unique_ptr<WarmPool>> Create(Options options);
  ~WarmPool();
  WarmPool(const WarmPool&) = delete;
  WarmPool& operator=(const WarmPool&) = delete;

  // New templates (daemon reload): every unclaimed sandbox is killed, the zygote is kept.
  void Reconfigure(Options options);

  // A ready sandbox whose key is KeyOf(spec), or null. Never waits for a prepare.
  std::unique_ptr<PreparedSandbox> Claim(const SandboxSpec& spec);

  // How launches through the pool went (RunSandbox counts each one it makes with a pool): a hit
  // ran in a prepared sandbox; a miss found none ready for its key, or claimed one that could not
  // take the execution, and launched fresh. Monotonic, for /metrics.
  struct ClaimCounts {
    uint64_t hits = 0;
    uint64_t misses = 0;
  };
  void CountClaim(bool hit);
  ClaimCounts claim_counts() const;

  // What a prepared sandbox's generic part depends on: host and inside ids, network mode,
  // hostname, /tmp size, extra read-only binds, cgroup parent and whether there is a cgroup.
  static std::string KeyOf(const SandboxSpec& spec);

  // For tests and the test-hooks pooled mode: blocks until every template has its sandboxes
  // ready, or returns the failure of a template's last prepare.
  Result<void> WaitUntilFull();
  std::optional<PrepareFailure> LastFailure() const;
  std::vector<pid_t> ReadyPids() const;
  pid_t zygote_pid() const { return zygote_pid_; }
  uint64_t prepared_count() const;

 private:
  struct Template {
    SandboxSpec spec;
    std::string key;
    std::deque<std::unique_ptr<PreparedSandbox>> ready;
    std::optional<PrepareFailure> last_failure;
    int consecutive_failures = 0;
    std::chrono::steady_clock::time_point retry_at{};
  };

  WarmPool() = default;
  void RefillLoop();
  // One sandbox for `spec`: zygote command, then the wait for its kPrepared message.
  Result<std::unique_ptr<PreparedSandbox>> Prepare(const SandboxSpec& spec,
                                                   PrepareFailure* failure);

  pid_t zygote_pid_ = -1;
  unique_fd zygote_pidfd_;
  unique_fd zygote_socket_;
  unique_fd stop_event_;  // eventfd: readable once the pool is being destroyed
  // Write end of the lifeline (sandbox/child.h, PreparedChildPlan::lifeline_fd): held by this
  // process only, for as long as the pool lives.
  unique_fd lifeline_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // templates, ready counts, failures, stop
  std::list<Template> templates_;
  int per_template_ = 0;
  bool quiet_ = false;
  uint64_t generation_ = 0;  // bumped by Reconfigure: a prepare of an older one is discarded
  uint64_t prepared_ = 0;
  ClaimCounts claims_;
  bool stopping_ = false;
  std::thread refill_;
};

// Test-hooks builds only: PACKVISOR_TEST_WARM_POOL=1 makes RunSandbox(spec, io) without a pool
// claim its sandbox from a pool of one created for that spec (and fail if it cannot), so that the
// security suite runs every probe through a pre-created sandbox. Other builds: always false.
bool TestWarmPoolRequested();

}  // namespace packvisor::sandbox
