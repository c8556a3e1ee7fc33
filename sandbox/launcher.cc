#include "sandbox/launcher.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "sandbox/caps.h"
#include "sandbox/cgroup.h"
#include "sandbox/child.h"
#include "sandbox/claim.h"
#include "sandbox/fault_injection.h"
#include "sandbox/mounts.h"
#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"
#include "sandbox/rlimits.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/userns.h"
#include "sandbox/verify.h"
#include "sandbox/warm_pool.h"

namespace packvisor::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

struct Pipe {
  unique_fd read;
  unique_fd write;
};

Result<Pipe> MakePipe(const char* what) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2", what);
  return Pipe{unique_fd(fds[0]), unique_fd(fds[1])};
}

std::vector<std::string> ExecCandidates(const std::string& command, const std::string& path) {
  if (command.find('/') != std::string::npos) return {command};
  std::vector<std::string> candidates;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (!dir.empty() && dir[0] == '/') candidates.push_back(dir + "/" + command);
    start = end + 1;
  }
  return candidates;
}

std::vector<const char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<const char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const std::string& s : strings) pointers.push_back(s.c_str());
  pointers.push_back(nullptr);
  return pointers;
}

// The plan's copies of SandboxFile contents may hold secrets: wiped however the launch ends.
struct WipeFileContents {
  MountPlan& plan;
  ~WipeFileContents() {
    for (MountOp& op : plan.ops) {
      if (op.kind == MountOpKind::kWriteFile) explicit_bzero(op.source.data(), op.source.size());
    }
  }
};

std::string RandomName() {
  unsigned char bytes[6] = {};
  (void)!getrandom(bytes, sizeof(bytes), 0);
  char text[13];
  for (int i = 0; i < 6; ++i) std::snprintf(text + 2 * i, 3, "%02x", bytes[i]);
  return text;
}

void IgnoreSigpipeOnce() {
  static std::once_flag once;
  std::call_once(once, [] { signal(SIGPIPE, SIG_IGN); });
}

// Reaps the init behind `pidfd`, collecting the resource usage of the whole tree it reaped.
Result<int> ReapInit(int pidfd, struct rusage* usage) {
  siginfo_t info{};
  for (;;) {
    if (syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED, usage) == 0) break;
    if (errno != EINTR) return ErrnoError("waitid", "sandbox init");
  }
  return info.si_code == CLD_EXITED ? (info.si_status << 8) : info.si_status;
}

class Monitor {
 public:
  Monitor(const SandboxSpec& spec, const MountPlan& mounts, const ExecutionCgroup* cgroup,
          LaunchIo& io, int pidfd, pid_t init_pid, Pipe& stdin_pipe, Pipe& stdout_pipe,
          Pipe& stderr_pipe, Pipe& report_pipe, Pipe& release_pipe)
      : spec_(spec),
        mounts_(mounts),
        cgroup_(cgroup),
        io_(io),
        pidfd_(pidfd),
        init_pid_(init_pid),
        stdin_(std::move(stdin_pipe.write)),
        stdout_(std::move(stdout_pipe.read)),
        stderr_(std::move(stderr_pipe.read)),
        report_(std::move(report_pipe.read)),
        release_(std::move(release_pipe.write)) {
    // Pipe ends share their inode: what the action's 0, 1 and 2 must be (verification).
    int ends[3] = {stdin_.get(), stdout_.get(), stderr_.get()};
    for (int i = 0; i < 3; ++i) {
      struct stat st {};
      if (fstat(ends[i], &st) == 0) {
        stdio_.dev[i] = st.st_dev;
        stdio_.ino[i] = st.st_ino;
      }
    }
  }

  Result<SandboxResult> Run(Clock::time_point start);

 private:
  void FeedStdin();
  bool Drain(unique_fd& fd, OutputSink* sink);
  void ReadReports();
  void HandleMessage(const ChildMessage& message);
  void Kill(int signal);
  bool CancelArrived();
  std::string DescribeDetail(const ChildMessage& message) const;

  const SandboxSpec& spec_;
  const MountPlan& mounts_;
  const ExecutionCgroup* cgroup_;
  LaunchIo& io_;
  int pidfd_;
  pid_t init_pid_;
  unique_fd stdin_, stdout_, stderr_, report_, release_;
  unique_fd dev_null_;         // opened when a sink first fills up
  bool splice_usable_ = true;  // false once /dev/null or splice was refused
  size_t stdin_offset_ = 0;
  std::string report_buffer_;
  SandboxResult result_;
  bool setup_failed_ = false;
  bool exec_failed_ = false;
  bool have_action_status_ = false;
  int action_status_ = 0;
  bool stop_requested_ = false;
  // A set-up failure seen after the stop was requested: the stop caused it (the forwarded
  // SIGTERM ends the waiting action), so the execution ends with the stop's outcome.
  bool failed_after_stop_ = false;
  bool skip_verification_ = FaultInjectionForLaunch().skip_verification;
  Outcome stop_outcome_ = Outcome::kTimedOut;
  StdioIdentity stdio_;
};

void Monitor::FeedStdin() {
  while (stdin_ && stdin_offset_ < io_.stdin_data.size()) {
    size_t chunk = std::min<size_t>(io_.stdin_data.size() - stdin_offset_, 65536);
    ssize_t n = write(stdin_.get(), io_.stdin_data.data() + stdin_offset_, chunk);
    if (n > 0) {
      stdin_offset_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    stdin_.reset();  // EPIPE: the action closed stdin early; it simply gets no more
    return;
  }
  stdin_.reset();  // everything written: EOF
}

// Past a sink's cap the bytes are only counted: splicing the pipe's pages into /dev/null frees
// them without a copy, so the writer waits less on the pipe lock (the 1 GiB output benchmark).
// Where splice is refused the bytes are read and given to the sink, which counts them.
bool Monitor::Drain(unique_fd& fd, OutputSink* sink) {
  if (sink != nullptr && sink->Full() && splice_usable_ && !dev_null_) {
    dev_null_.reset(open("/dev/null", O_WRONLY | O_CLOEXEC));
    splice_usable_ = static_cast<bool>(dev_null_);
  }
  ssize_t n;
  if (sink != nullptr && sink->Full() && splice_usable_) {
    n = splice(fd.get(), nullptr, dev_null_.get(), nullptr, size_t{1} << 20, SPLICE_F_NONBLOCK);
    if (n > 0) sink->Skipped(static_cast<uint64_t>(n));
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
      splice_usable_ = false;  // the data is still there: the next poll reads it
      return true;
    }
  } else {
    char buffer[65536];
    n = read(fd.get(), buffer, sizeof(buffer));
    if (n > 0 && sink != nullptr) sink->Consume(std::string_view(buffer, static_cast<size_t>(n)));
  }
  if (n > 0 || (n < 0 && (errno == EINTR || errno == EAGAIN))) return true;
  fd.reset();
  return false;
}

void Monitor::HandleMessage(const ChildMessage& message) {
  switch (message.kind) {
    case MessageKind::kSetupFailed:
      if (message.step == SetupStep::kExec) {
        exec_failed_ = true;
      } else {
        setup_failed_ = true;
        failed_after_stop_ = stop_requested_;
      }
      if (result_.failed_step == SetupStep::kNone) {
        result_.failed_step = message.step;
        result_.failed_errno = message.err;
        result_.failure_detail = DescribeDetail(message);
      }
      break;
    case MessageKind::kActionReady: {
      // A stopped execution is never released: its action may already be dying of the forwarded
      // SIGTERM, which is the stop's doing, not a failed verification.
      if (stop_requested_ || CancelArrived()) {
        Kill(SIGKILL);
        break;
      }
      // The action is fully confined and waits; check it from outside before letting it exec.
      Result<void> verified = Ok{};
      if (!skip_verification_) {
        verified = message.detail == kLockedSecurebits
                       ? VerifyConfinedAction(init_pid_, spec_,
                                              cgroup_ ? cgroup_->MembershipSuffix() : "", &stdio_)
                       : Failure("sandbox verification", "securebits",
                                 "found " + std::to_string(message.detail) + ", want " +
                                     std::to_string(kLockedSecurebits));
      }
      if (!verified) {
        setup_failed_ = true;
        result_.failed_step = SetupStep::kWaitForRelease;
        result_.failed_errno = verified.error().err;
        result_.failure_detail = "verification: " + verified.error().message();
        Kill(SIGKILL);
        break;
      }
      char go = 1;
      if (write(release_.get(), &go, 1) != 1) {
        Kill(SIGKILL);
      } else {
        result_.released_at = std::chrono::steady_clock::now();
      }
      release_.reset();
      break;
    }
    case MessageKind::kActionExited:
      have_action_status_ = true;
      action_status_ = message.detail;
      break;
    case MessageKind::kPrepared:  // only on a prepared sandbox's control socket
      break;
  }
}

std::string Monitor::DescribeDetail(const ChildMessage& message) const {
  if (message.step == SetupStep::kMountPlan && message.detail >= 0 &&
      static_cast<size_t>(message.detail) < mounts_.ops.size()) {
    return mounts_.ops[static_cast<size_t>(message.detail)].Describe();
  }
  if (message.step == SetupStep::kRlimits) return "resource " + std::to_string(message.detail);
  return {};
}

void Monitor::ReadReports() {
  char buffer[sizeof(ChildMessage) * 8];
  ssize_t n = read(report_.get(), buffer, sizeof(buffer));
  if (n <= 0) {
    if (n == 0 || (errno != EINTR && errno != EAGAIN)) report_.reset();
    return;
  }
  report_buffer_.append(buffer, static_cast<size_t>(n));
  while (report_buffer_.size() >= sizeof(ChildMessage)) {
    ChildMessage message;
    std::memcpy(&message, report_buffer_.data(), sizeof(message));
    report_buffer_.erase(0, sizeof(message));
    HandleMessage(message);
  }
}

void Monitor::Kill(int signal) { os::PidfdSendSignal(pidfd_, signal); }

// A cancel signalled since the last poll (the eventfd is only polled, never read): the execution
// becomes a cancelled one.
bool Monitor::CancelArrived() {
  if (io_.cancel_fd < 0) return false;
  struct pollfd cancel = {io_.cancel_fd, POLLIN, 0};
  if (poll(&cancel, 1, 0) != 1 || (cancel.revents & POLLIN) == 0) return false;
  stop_requested_ = true;
  stop_outcome_ = Outcome::kCancelled;
  return true;
}

Result<SandboxResult> Monitor::Run(Clock::time_point start) {
  if (stdin_) fcntl(stdin_.get(), F_SETFL, O_NONBLOCK);
  if (io_.stdin_data.empty()) stdin_.reset();
  Clock::time_point deadline = start + spec_.timeout;
  Clock::time_point kill_deadline{};
  bool term_sent = false;
  bool init_exited = false;
  int init_status = 0;
  struct rusage usage {};

  while (!init_exited || stdout_ || stderr_ || report_) {
    struct pollfd fds[6];
    int count = 0;
    auto add = [&](int fd, short events) {
      fds[count] = {fd, events, 0};
      return count++;
    };
    int stdin_index = stdin_ ? add(stdin_.get(), POLLOUT) : -1;
    int stdout_index = stdout_ ? add(stdout_.get(), POLLIN) : -1;
    int stderr_index = stderr_ ? add(stderr_.get(), POLLIN) : -1;
    int report_index = report_ ? add(report_.get(), POLLIN) : -1;
    int pidfd_index = !init_exited ? add(pidfd_, POLLIN) : -1;
    int cancel_index = (!stop_requested_ && io_.cancel_fd >= 0) ? add(io_.cancel_fd, POLLIN) : -1;

    int wait_ms = -1;
    if (!init_exited) {
      auto now = Clock::now();
      auto until = term_sent ? kill_deadline : deadline;
      wait_ms =
          until <= now
              ? 0
              : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(until - now).count());
    }
    int ready = poll(fds, static_cast<nfds_t>(count), wait_ms);
    if (ready < 0 && errno != EINTR) return ErrnoError("poll", "sandbox pipes");

    if (stdin_index >= 0 && fds[stdin_index].revents != 0) FeedStdin();
    if (stdout_index >= 0 && fds[stdout_index].revents != 0) Drain(stdout_, io_.stdout_sink);
    if (stderr_index >= 0 && fds[stderr_index].revents != 0) Drain(stderr_, io_.stderr_sink);
    // The cancel before the reports: an action that reports ready in the same wake-up as a
    // cancel is not released.
    if (cancel_index >= 0 && fds[cancel_index].revents != 0) {
      stop_requested_ = true;
      stop_outcome_ = Outcome::kCancelled;
      deadline = Clock::now();
    }
    if (report_index >= 0 && fds[report_index].revents != 0) ReadReports();
    if (pidfd_index >= 0 && fds[pidfd_index].revents != 0) {
      auto status = ReapInit(pidfd_, &usage);
      if (!status) return status.error();
      init_status = *status;
      init_exited = true;
      stdin_.reset();
      release_.reset();
      continue;
    }
    if (!init_exited && Clock::now() >= (term_sent ? kill_deadline : deadline)) {
      if (!term_sent) {
        if (!stop_requested_) {
          stop_requested_ = true;
          stop_outcome_ = Outcome::kTimedOut;
        }
        Kill(SIGTERM);  // init forwards it to every process of the sandbox
        term_sent = true;
        kill_deadline = Clock::now() + spec_.kill_grace;
      } else {
        Kill(SIGKILL);  // PID 1 dies, and the kernel kills the whole namespace with it
        if (cgroup_ != nullptr) cgroup_->KillAll();
        kill_deadline = Clock::now() + std::chrono::hours(1);
      }
    }
  }

  result_.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  result_.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                   (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000;
  result_.max_rss_kb = usage.ru_maxrss;
  if (cgroup_ != nullptr) {
    CgroupUsage group = cgroup_->ReadUsage();
    if (group.cpu_ms > 0) result_.cpu_ms = group.cpu_ms;
    if (group.memory_peak_kb > 0) result_.max_rss_kb = group.memory_peak_kb;
    result_.oom_killed = group.oom_kills > 0;
    result_.memory_limit_bytes = spec_.cgroup ? spec_.cgroup->memory_max_bytes : 0;
  }

  if (setup_failed_ && !failed_after_stop_) {
    result_.outcome = Outcome::kSetupFailed;
  } else if (stop_requested_ && !have_action_status_) {
    result_.outcome = stop_outcome_;
  } else if (exec_failed_) {
    result_.outcome = Outcome::kExecFailed;
    result_.exit_code = result_.failed_errno == ENOENT ? kExitNotFound : kExitCannotExecute;
  } else if (have_action_status_) {
    if (stop_requested_) {
      result_.outcome = stop_outcome_;
    } else if (WIFSIGNALED(action_status_)) {
      result_.outcome = Outcome::kSignaled;
      result_.signal = WTERMSIG(action_status_);
    } else {
      result_.outcome = Outcome::kExited;
      result_.exit_code = WEXITSTATUS(action_status_);
    }
  } else {
    // Init died without a report: treat as a setup failure with init's own status.
    result_.outcome = Outcome::kSetupFailed;
    result_.failure_detail =
        "sandbox init ended unexpectedly (status " + std::to_string(init_status) + ")";
  }
  return result_;
}

}  // namespace

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kExited:
      return "exited";
    case Outcome::kSignaled:
      return "signaled";
    case Outcome::kTimedOut:
      return "timed_out";
    case Outcome::kCancelled:
      return "cancelled";
    case Outcome::kSetupFailed:
      return "setup_failed";
    case Outcome::kExecFailed:
      return "exec_failed";
  }
  return "unknown";
}

std::string SandboxResult::FailureMessage() const {
  if (outcome != Outcome::kSetupFailed && outcome != Outcome::kExecFailed) return {};
  std::string text = std::string("setup step '") + SetupStepName(failed_step) + "' failed";
  if (!failure_detail.empty()) text += " (" + failure_detail + ")";
  if (failed_errno != 0) text += std::string(": ") + std::strerror(failed_errno);
  return text;
}

namespace {

Result<SandboxResult> RunFresh(const SandboxSpec& spec, LaunchIo& io) {
  // Everything the child needs is computed here, before clone.
  auto host = ProbeHostLayout(spec);
  if (!host) return host.error();
  auto trees = DetachedTreeSet::Open(spec);
  if (!trees) return trees.error();
  MountPlan mounts = BuildMountPlan(spec, *host, trees->fds());
  WipeFileContents wipe{mounts};
  auto caps = CapabilityPlan::Create();
  if (!caps) return caps.error();
  RlimitPlan rlimits = BuildRlimitPlan(spec.limits);
  const SeccompProgram& seccomp = BuiltinSeccompProgram(SeccompOptions{.mode = spec.seccomp_mode});
  std::vector<std::string> candidates = ExecCandidates(spec.argv[0], SandboxPath(spec.env));
  std::vector<const char*> argv = CStrings(spec.argv);
  std::vector<const char*> envp = CStrings(spec.env);
  std::vector<const char*> candidate_ptrs = CStrings(candidates);
  std::string working_dir = spec.pack_dir.empty() && spec.working_dir == kPackMountPoint
                                ? std::string("/")
                                : spec.working_dir;

  auto stdin_pipe = MakePipe("stdin");
  auto stdout_pipe = MakePipe("stdout");
  auto stderr_pipe = MakePipe("stderr");
  auto report_pipe = MakePipe("report");
  auto id_maps_pipe = MakePipe("id maps");
  auto release_pipe = MakePipe("release");
  for (auto* p :
       {&stdin_pipe, &stdout_pipe, &stderr_pipe, &report_pipe, &id_maps_pipe, &release_pipe}) {
    if (!*p) return p->error();
  }

  ChildPlan plan;
  plan.stdin_fd = stdin_pipe->read.get();
  plan.stdout_fd = stdout_pipe->write.get();
  plan.stderr_fd = stderr_pipe->write.get();
  plan.report_fd = report_pipe->write.get();
  plan.id_maps_fd = id_maps_pipe->read.get();
  plan.release_fd = release_pipe->read.get();
  int parent_fds[6] = {stdin_pipe->write.get(),   stdout_pipe->read.get(),
                       stderr_pipe->read.get(),   report_pipe->read.get(),
                       id_maps_pipe->write.get(), release_pipe->write.get()};
  std::memcpy(plan.parent_fds, parent_fds, sizeof(parent_fds));
  plan.uid = spec.ids.inside_uid;
  plan.gid = spec.ids.inside_gid;
  plan.staging_tmpfs_options = "mode=0755,size=4m,nr_inodes=4096";
  plan.mounts = &mounts;
  plan.working_dir = working_dir.c_str();
  plan.hostname = spec.hostname.c_str();
  plan.new_network = spec.network == NetworkMode::kNone;
  plan.caps = &*caps;
  plan.rlimits = &rlimits;
  plan.seccomp = seccomp.AsFprog();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.exec_candidates = candidate_ptrs.data();
  auto [argument_area, argument_area_size] = os::OwnArgumentArea();
  plan.argument_area = argument_area;
  plan.argument_area_size = argument_area_size;
  plan.faults = FaultInjectionForLaunch();

  // The cgroup exists, with its limits, before the child runs its first instruction: on v2 the
  // child is cloned into it; on v1 the child moves itself in as its first step after the id-maps
  // byte (through `tasks` fds opened here), before it does anything else.
  std::optional<ExecutionCgroup> cgroup;
  if (spec.cgroup && !plan.faults.no_cgroup) {  // no_cgroup: test-hooks builds only (benchmark)
    auto created =
        ExecutionCgroup::Create(CgroupLayout::Probe(), spec.cgroup_parent,
                                std::to_string(getpid()) + "-" + RandomName(), *spec.cgroup);
    if (!created) return created.error();
    cgroup.emplace(std::move(*created));
  }
  std::vector<unique_fd> cgroup_join_fds;
  if (cgroup) {
    auto opened = cgroup->OpenJoinFds();
    if (!opened) return opened.error();
    cgroup_join_fds = std::move(*opened);
    for (size_t i = 0; i < cgroup_join_fds.size(); ++i) {
      plan.cgroup_join_fds[i] = cgroup_join_fds[i].get();
    }
  }

  uint64_t flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                   CLONE_NEWCGROUP | CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
  if (spec.network == NetworkMode::kNone) flags |= CLONE_NEWNET;
  int cgroup_fd = cgroup ? cgroup->clone_fd() : -1;
  if (cgroup_fd >= 0) flags |= CLONE_INTO_CGROUP;
  int pidfd_raw = -1;
  auto start = Clock::now();
  pid_t pid = -1;
  {
    auto owner = ScopedNamespaceOwner::Become(spec.ids);
    if (!owner) return owner.error();
    pid = os::Clone3(
        {.flags = flags, .pidfd = &pidfd_raw, .exit_signal = SIGCHLD, .cgroup_fd = cgroup_fd});
    if (pid < 0) return ErrnoError("clone3", "sandbox");
    if (pid == 0) RunChild(plan);
  }
  unique_fd pidfd(pidfd_raw);

  // Close our copies of the child's ends, so that EOF on them means the sandbox is done.
  stdin_pipe->read.reset();
  stdout_pipe->write.reset();
  stderr_pipe->write.reset();
  report_pipe->write.reset();
  id_maps_pipe->read.reset();
  release_pipe->read.reset();
  cgroup_join_fds.clear();  // the child has its own copies

  auto maps = WriteIdMapsAndResetPolicy(pid, spec.ids);
  if (!maps) {
    os::PidfdSendSignal(pidfd.get(), SIGKILL);
    struct rusage ignored {};
    (void)ReapInit(pidfd.get(), &ignored);
    return maps.error();
  }
  char go = 1;
  // A failed write means the child is already gone; the monitor collects its report.
  (void)!write(id_maps_pipe->write.get(), &go, 1);
  id_maps_pipe->write.reset();

  Monitor monitor(spec, mounts, cgroup ? &*cgroup : nullptr, io, pidfd.get(), pid, *stdin_pipe,
                  *stdout_pipe, *stderr_pipe, *report_pipe, *release_pipe);
  return monitor.Run(start);
}

// The claim's payload (sandbox/claim.h), built in one buffer and handed over in a memfd.
class PayloadBuilder {
 public:
  PayloadBuilder() : buffer_(sizeof(ClaimPayload), '\0') {}
  ~PayloadBuilder() { explicit_bzero(buffer_.data(), buffer_.size()); }

  uint64_t String(const char* data, size_t size) {
    uint64_t offset = buffer_.size();
    buffer_.append(data, size);
    buffer_.push_back('\0');
    return offset;
  }
  uint64_t String(const std::string& text) { return String(text.data(), text.size()); }
  uint64_t Strings(const std::vector<std::string>& strings) {
    std::vector<uint64_t> offsets;
    for (const std::string& text : strings) offsets.push_back(String(text));
    offsets.push_back(0);
    return Raw(offsets.data(), offsets.size() * sizeof(uint64_t));
  }
  uint64_t Raw(const void* data, size_t size) {
    buffer_.resize((buffer_.size() + 7) / 8 * 8, '\0');
    uint64_t offset = buffer_.size();
    buffer_.append(static_cast<const char*>(data), size);
    return offset;
  }
  // Writes the header and copies everything into a new memfd.
  Result<unique_fd> Finish(ClaimPayload header) {
    buffer_.push_back('\0');
    header.size = buffer_.size();
    std::memcpy(buffer_.data(), &header, sizeof(header));
    unique_fd fd(memfd_create("packvisor-claim", MFD_CLOEXEC));
    if (!fd) return ErrnoError("memfd_create", "claim");
    PV_TRY(os::WriteAll(fd.get(), buffer_.data(), buffer_.size(), "claim"));
    return fd;
  }

 private:
  std::string buffer_;
};

// What a claim did: ran (result or error), or could not hand the sandbox its execution
// (`fallback`: the caller launches fresh; nothing of the execution reached the sandbox's action).
struct ClaimOutcome {
  std::optional<Result<SandboxResult>> ran;
  std::string fallback;
};

ClaimOutcome RunClaimed(const SandboxSpec& spec, LaunchIo& io, PreparedSandbox& sandbox) {
  auto fallback = [](std::string why) { return ClaimOutcome{std::nullopt, std::move(why)}; };
  auto trees = DetachedTreeSet::Open(spec);
  if (!trees) return {Result<SandboxResult>(trees.error()), {}};
  MountPlan claim_plan = BuildClaimMountPlan(spec, trees->fds());
  WipeFileContents wipe{claim_plan};
  RlimitPlan rlimits = BuildRlimitPlan(spec.limits);
  std::vector<std::string> candidates = ExecCandidates(spec.argv[0], SandboxPath(spec.env));
  std::string working_dir = spec.pack_dir.empty() && spec.working_dir == kPackMountPoint
                                ? std::string("/")
                                : spec.working_dir;

  std::vector<int> fds(kClaimFixedFds, -1);
  PayloadBuilder builder;
  std::vector<ClaimOp> ops;
  for (const MountOp& op : claim_plan.ops) {
    ClaimOp raw{};
    raw.kind = static_cast<uint32_t>(op.kind);
    raw.fd_index = -1;
    if (op.source_fd >= 0) {
      raw.fd_index = static_cast<int32_t>(fds.size());
      fds.push_back(op.source_fd);
    } else {
      raw.source = builder.String(op.source);
      raw.source_size = op.source.size();
    }
    raw.target = builder.String(op.target);
    raw.attr_set = op.attr_set;
    raw.attr_clr = op.attr_clr;
    raw.mode = static_cast<uint32_t>(op.mode);
    ops.push_back(raw);
  }
  ClaimPayload header{};
  header.argv = builder.Strings(spec.argv);
  header.envp = builder.Strings(spec.env);
  header.exec_candidates = builder.Strings(candidates);
  header.working_dir = builder.String(working_dir);
  header.op_count = ops.size();
  header.ops =
      ops.empty() ? builder.Raw("", 0) : builder.Raw(ops.data(), ops.size() * sizeof(ClaimOp));
  header.rlimits = rlimits;
  auto payload = builder.Finish(header);
  if (!payload) return {Result<SandboxResult>(payload.error()), {}};

  auto stdin_pipe = MakePipe("stdin");
  auto stdout_pipe = MakePipe("stdout");
  auto stderr_pipe = MakePipe("stderr");
  auto report_pipe = MakePipe("report");
  auto release_pipe = MakePipe("release");
  for (auto* p : {&stdin_pipe, &stdout_pipe, &stderr_pipe, &report_pipe, &release_pipe}) {
    if (!*p) return {Result<SandboxResult>(p->error()), {}};
  }
  fds[kClaimStdin] = stdin_pipe->read.get();
  fds[kClaimStdout] = stdout_pipe->write.get();
  fds[kClaimStderr] = stderr_pipe->write.get();
  fds[kClaimReport] = report_pipe->write.get();
  fds[kClaimRelease] = release_pipe->read.get();
  fds[kClaimPayload] = payload->get();

  // The execution's limits, then the claiming thread's nice value (a fresh sandbox inherits it;
  // a prepared one was made at the refill priority), both before the sandbox may go on.
  if (spec.cgroup && sandbox.cgroup) {
    if (auto applied = sandbox.cgroup->ApplyLimits(*spec.cgroup); !applied) {
      return fallback(applied.error().message());
    }
  }
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, 0);
  if (errno == 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(sandbox.pid), nice) != 0) {
    return fallback(ErrnoError("setpriority", "prepared sandbox").message());
  }
  ClaimMessage message;
  message.fd_count = static_cast<uint32_t>(fds.size());
  struct iovec iov = {&message, sizeof(message)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxClaimFds)] = {};
  struct msghdr header_msg {};
  header_msg.msg_iov = &iov;
  header_msg.msg_iovlen = 1;
  header_msg.msg_control = control;
  header_msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&header_msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  auto start = Clock::now();
  ssize_t sent;
  do {
    sent = sendmsg(sandbox.control.get(), &header_msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(sizeof(message))) {
    return fallback(ErrnoError("sendmsg", "claim").message());
  }
  // Close our copies of the sandbox's ends (EOF must mean "the sandbox is done").
  sandbox.control.reset();
  payload->reset();
  stdin_pipe->read.reset();
  stdout_pipe->write.reset();
  stderr_pipe->write.reset();
  report_pipe->write.reset();
  release_pipe->read.reset();

  Monitor monitor(spec, claim_plan, sandbox.cgroup ? &*sandbox.cgroup : nullptr, io,
                  sandbox.pidfd.get(), sandbox.pid, *stdin_pipe, *stdout_pipe, *stderr_pipe,
                  *report_pipe, *release_pipe);
  Result<SandboxResult> result = monitor.Run(start);
  sandbox.reaped = result.ok();
  return {std::move(result), {}};
}

// Test-hooks pooled mode (TestWarmPoolRequested): a pool of one for this spec, then the claim.
Result<SandboxResult> RunThroughTestPool(const SandboxSpec& spec, LaunchIo& io) {
  SandboxSpec generic = spec;
  auto pool = WarmPool::Create({{generic}, 1, /*quiet=*/true});
  if (!pool) return pool.error();
  if (auto full = (*pool)->WaitUntilFull(); !full) {
    std::optional<PrepareFailure> failure = (*pool)->LastFailure();
    if (!failure || failure->step == SetupStep::kNone) return full.error();
    // A prepare step failed: reported like the same step failing in a fresh launch.
    SandboxResult result;
    result.outcome = Outcome::kSetupFailed;
    result.failed_step = failure->step;
    result.failed_errno = failure->err;
    return result;
  }
  std::unique_ptr<PreparedSandbox> sandbox = (*pool)->Claim(spec);
  if (!sandbox) return Failure("warm pool (test mode)", "claim", "no prepared sandbox matched");
  ClaimOutcome outcome = RunClaimed(spec, io, *sandbox);
  if (!outcome.ran) return Failure("warm pool (test mode)", "claim", outcome.fallback);
  return std::move(*outcome.ran);
}

}  // namespace

Result<SandboxResult> RunSandbox(const SandboxSpec& spec, LaunchIo& io) {
  return RunSandbox(spec, io, nullptr);
}

Result<SandboxResult> RunSandbox(const SandboxSpec& spec, LaunchIo& io, WarmPool* pool) {
  PV_TRY(spec.Validate());
  IgnoreSigpipeOnce();
  if (pool == nullptr && TestWarmPoolRequested()) return RunThroughTestPool(spec, io);
  if (pool != nullptr) {
    if (std::unique_ptr<PreparedSandbox> sandbox = pool->Claim(spec)) {
      ClaimOutcome outcome = RunClaimed(spec, io, *sandbox);
      if (outcome.ran) {
        pool->CountClaim(true);
        return std::move(*outcome.ran);
      }
      // Nothing of this execution ran: the sandbox is killed with `sandbox`, and it runs fresh.
      std::fprintf(stderr, "packvisor: warm pool: claim failed, launching fresh: %s\n",
                   outcome.fallback.c_str());
    }
    pool->CountClaim(false);
  }
  return RunFresh(spec, io);
}

}  // namespace packvisor::sandbox
