#include "sandbox/warm_pool.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sandbox/caps.h"
#include "sandbox/child.h"
#include "sandbox/fault_injection.h"
#include "sandbox/mounts.h"
#include "sandbox/os/syscalls.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/userns.h"

namespace packvisor::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

// How long a prepare may take before the refill thread gives up on it (kills it). Far above the
// few milliseconds it takes; only a wedged host reaches it.
constexpr std::chrono::seconds kPrepareTimeout{30};
// The zygote and the sandboxes it prepares run at this nice value until claimed (a claim resets
// the sandbox to the claiming thread's): refills yield the CPU to launches.
constexpr int kRefillNice = 10;
constexpr size_t kMaxCommand = 64 << 10;

// ---- The zygote's wire format: one SOCK_SEQPACKET message each way per prepare. ----

// Daemon -> zygote: the template's generic fields, then SCM_RIGHTS with the cgroup's
// descriptors (v2: the directory for CLONE_INTO_CGROUP; v1: the `tasks` files to join).
struct PrepareCommand {
  uint32_t inside_uid, inside_gid, host_uid, host_gid;
  uint32_t network;        // NetworkMode
  uint32_t cgroup_v2_fd;   // 1: the single descriptor is a v2 directory
  uint32_t seccomp_allow;  // 1: SeccompMode::kAllow
  uint32_t padding;
  uint64_t tmp_size_bytes;
  uint32_t hostname_size;
  uint32_t bind_count;  // then `bind_count` times: uint32 size, bytes
};

// Zygote -> daemon: the outcome, with SCM_RIGHTS {pidfd, control} once a clone happened (even
// when a later step failed: the daemon is the parent and must reap it).
struct PrepareReply {
  int32_t err;  // 0: cloned and released
  int32_t pid;
  char message[240];
};

void AppendBytes(std::string& out, const void* data, size_t size) {
  out.append(static_cast<const char*>(data), size);
}

void AppendString(std::string& out, const std::string& text) {
  auto size = static_cast<uint32_t>(text.size());
  AppendBytes(out, &size, sizeof(size));
  out += text;
}

Result<void> SendWithFds(int socket, const void* data, size_t size, const int* fds, int count,
                         const char* what) {
  struct iovec iov = {const_cast<void*>(data), size};
  struct msghdr header {};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  if (count > 0) {
    header.msg_control = control;
    header.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<size_t>(count));
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&header);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<size_t>(count));
    std::memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * static_cast<size_t>(count));
  }
  ssize_t n;
  do {
    n = sendmsg(socket, &header, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("sendmsg", what);
  if (static_cast<size_t>(n) != size) return Failure("sendmsg", what, "short write");
  return Ok{};
}

// Receives one message (up to `size` bytes) and its descriptors (O_CLOEXEC). Returns the length;
// 0 on EOF.
Result<size_t> ReceiveWithFds(int socket, void* data, size_t size, std::vector<unique_fd>* fds,
                              const char* what) {
  struct iovec iov = {data, size};
  struct msghdr header {};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  header.msg_control = control;
  header.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(socket, &header, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("recvmsg", what);
  for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&header); cmsg != nullptr;
       cmsg = CMSG_NXTHDR(&header, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      fds->emplace_back(fd);
    }
  }
  if ((header.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    return Failure("recvmsg", what, "message truncated");
  }
  return static_cast<size_t>(n);
}

// ---- The zygote. Single-threaded; only system calls and its own computations. ----

struct ZygoteRequest {
  SandboxSpec spec;
  bool cgroup_v2 = false;
  std::vector<unique_fd> cgroup_fds;
};

Result<ZygoteRequest> ParseCommand(const std::string& message, std::vector<unique_fd> fds) {
  PrepareCommand command{};
  if (message.size() < sizeof(command)) return Failure("zygote", "command", "too short");
  std::memcpy(&command, message.data(), sizeof(command));
  size_t at = sizeof(command);
  auto take = [&](size_t size, std::string* out) {
    if (message.size() - at < size) return false;
    out->assign(message, at, size);
    at += size;
    return true;
  };
  ZygoteRequest request;
  request.spec.ids = {command.inside_uid, command.inside_gid, command.host_uid, command.host_gid};
  request.spec.network = command.network == 1 ? NetworkMode::kHost : NetworkMode::kNone;
  request.spec.seccomp_mode = command.seccomp_allow == 1 ? SeccompMode::kAllow : SeccompMode::kDeny;
  request.spec.limits.tmp_size_bytes = command.tmp_size_bytes;
  if (!take(command.hostname_size, &request.spec.hostname)) {
    return Failure("zygote", "command", "truncated hostname");
  }
  for (uint32_t i = 0; i < command.bind_count; ++i) {
    uint32_t size = 0;
    std::string raw;
    if (!take(sizeof(size), &raw)) return Failure("zygote", "command", "truncated bind");
    std::memcpy(&size, raw.data(), sizeof(size));
    std::string path;
    if (!take(size, &path)) return Failure("zygote", "command", "truncated bind");
    request.spec.extra_ro_binds.push_back(std::move(path));
  }
  if (fds.size() > static_cast<size_t>(kMaxCgroupJoinFds) ||
      (command.cgroup_v2_fd == 1 && fds.size() != 1)) {
    return Failure("zygote", "command", "unexpected descriptors");
  }
  request.cgroup_v2 = command.cgroup_v2_fd == 1;
  request.cgroup_fds = std::move(fds);
  return request;
}

// Clones one prepared sandbox for `request`. On success *pidfd and *control are the daemon's.
Result<pid_t> ZygotePrepare(const ZygoteRequest& request, int lifeline, unique_fd* pidfd_out,
                            unique_fd* control_out) {
  const SandboxSpec& spec = request.spec;
  // The host is probed for every sandbox (as a fresh launch does), so a prepared root is never
  // older than its prepare.
  auto host = ProbeHostLayout(spec);
  if (!host) return host.error();
  MountPlan mounts = BuildMountPlan(spec, *host);
  auto caps = CapabilityPlan::Create();
  if (!caps) return caps.error();
  const SeccompProgram& seccomp = BuiltinSeccompProgram(SeccompOptions{.mode = spec.seccomp_mode});

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoError("socketpair", "prepared sandbox control");
  }
  unique_fd control(pair[0]), child_control(pair[1]);
  int maps[2];
  if (pipe2(maps, O_CLOEXEC) != 0) return ErrnoError("pipe2", "id maps");
  unique_fd maps_read(maps[0]), maps_write(maps[1]);

  PreparedChildPlan plan;
  ChildPlan& base = plan.base;
  base.report_fd = child_control.get();
  base.id_maps_fd = maps_read.get();
  base.uid = spec.ids.inside_uid;
  base.gid = spec.ids.inside_gid;
  base.staging_tmpfs_options = "mode=0755,size=4m,nr_inodes=4096";
  base.mounts = &mounts;
  base.hostname = spec.hostname.c_str();
  base.new_network = spec.network == NetworkMode::kNone;
  base.caps = &*caps;
  base.seccomp = seccomp.AsFprog();
  auto [argument_area, argument_area_size] = os::OwnArgumentArea();
  base.argument_area = argument_area;
  base.argument_area_size = argument_area_size;
  base.faults = FaultInjectionForLaunch();
  plan.lifeline_fd = lifeline;
  int keep = 0;
  plan.keep_fds[keep++] = lifeline;
  plan.keep_fds[keep++] = child_control.get();
  plan.keep_fds[keep++] = maps_read.get();
  int cgroup_fd = -1;
  if (request.cgroup_v2) {
    cgroup_fd = request.cgroup_fds[0].get();
  } else {
    for (size_t i = 0; i < request.cgroup_fds.size(); ++i) {
      base.cgroup_join_fds[i] = request.cgroup_fds[i].get();
      plan.keep_fds[keep++] = request.cgroup_fds[i].get();
    }
  }

  // CLONE_PARENT: the sandbox is the daemon's child (it reaps and monitors it). clone3 refuses an
  // exit signal with CLONE_PARENT; the kernel gives the child the zygote's own (SIGCHLD).
  uint64_t flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                   CLONE_NEWCGROUP | CLONE_PIDFD | CLONE_CLEAR_SIGHAND | CLONE_PARENT;
  if (spec.network == NetworkMode::kNone) flags |= CLONE_NEWNET;
  if (cgroup_fd >= 0) flags |= CLONE_INTO_CGROUP;
  int pidfd_raw = -1;
  pid_t pid = -1;
  {
    auto owner = ScopedNamespaceOwner::Become(spec.ids);
    if (!owner) return owner.error();
    pid =
        os::Clone3({.flags = flags, .pidfd = &pidfd_raw, .exit_signal = 0, .cgroup_fd = cgroup_fd});
    if (pid < 0) return ErrnoError("clone3", "prepared sandbox");
    if (pid == 0) RunPreparedChild(plan);
  }
  unique_fd pidfd(pidfd_raw);
  child_control.reset();
  maps_read.reset();

  auto written = WriteIdMapsAndResetPolicy(pid, spec.ids);
  *pidfd_out = std::move(pidfd);
  *control_out = std::move(control);
  if (!written) {
    os::PidfdSendSignal(pidfd_out->get(), SIGKILL);
    return written.error();
  }
  char go = 1;
  (void)!write(maps_write.get(), &go, 1);  // a dead child reports on its control socket
  return pid;
}

[[noreturn]] void RunZygote(int socket, int lifeline, pid_t daemon) {
  // The daemon's creating thread is our parent: when it goes, so do we.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != daemon) _exit(1);
  // Nothing of the daemon's but the command socket, the lifeline's read end and stdio: not its
  // listening socket, not a client connection, not a log file.
  unsigned lo = static_cast<unsigned>(std::min(socket, lifeline));
  unsigned hi = static_cast<unsigned>(std::max(socket, lifeline));
  if (lo > 3) os::CloseRange(3, lo - 1, 0);
  if (hi > lo + 1) os::CloseRange(lo + 1, hi - 1, 0);
  os::CloseRange(hi + 1, ~0U, 0);
  setpriority(PRIO_PROCESS, 0, kRefillNice);
  std::string message(kMaxCommand, '\0');
  for (;;) {
    std::vector<unique_fd> fds;
    auto received = ReceiveWithFds(socket, message.data(), message.size(), &fds, "zygote command");
    if (!received || *received == 0) _exit(0);
    PrepareReply reply{};
    unique_fd pidfd, control;
    auto request = ParseCommand(message.substr(0, *received), std::move(fds));
    Result<pid_t> pid = request ? ZygotePrepare(*request, lifeline, &pidfd, &control)
                                : Result<pid_t>(request.error());
    if (pid) {
      reply.pid = *pid;
    } else {
      reply.err = pid.error().err != 0 ? pid.error().err : EINVAL;
      std::snprintf(reply.message, sizeof(reply.message), "%s", pid.error().message().c_str());
    }
    int out[2] = {pidfd.get(), control.get()};
    int count = pidfd ? 2 : 0;
    if (!SendWithFds(socket, &reply, sizeof(reply), out, count, "zygote reply")) _exit(1);
  }
}

std::string RandomName() {
  unsigned char bytes[6] = {};
  (void)!getrandom(bytes, sizeof(bytes), 0);
  char text[13];
  for (int i = 0; i < 6; ++i) std::snprintf(text + 2 * i, 3, "%02x", bytes[i]);
  return text;
}

void KillAndReap(int pidfd) {
  os::PidfdSendSignal(pidfd, SIGKILL);
  siginfo_t info{};
  while (syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED, nullptr) != 0 && errno == EINTR) {
  }
}

}  // namespace

PreparedSandbox::~PreparedSandbox() {
  control.reset();
  if (pidfd && !reaped) KillAndReap(pidfd.get());
  // cgroup: its destructor kills anything left and removes it.
}

std::string WarmPool::KeyOf(const SandboxSpec& spec) {
  std::string key = std::to_string(spec.ids.inside_uid) + ":" +
                    std::to_string(spec.ids.inside_gid) + ":" + std::to_string(spec.ids.host_uid) +
                    ":" + std::to_string(spec.ids.host_gid);
  key += spec.network == NetworkMode::kHost ? "|host" : "|none";
  key += "|" + spec.hostname + "|" + std::to_string(spec.limits.tmp_size_bytes);
  key += spec.cgroup ? "|cgroup:" + spec.cgroup_parent : "|no-cgroup";
  key += spec.seccomp_mode == SeccompMode::kAllow ? "|seccomp:allow" : "|seccomp:deny";
  for (const std::string& bind : spec.extra_ro_binds) key += "|" + bind;
  return key;
}

Result<std::unique_ptr<WarmPool>> WarmPool::Create(Options options) {
  std::unique_ptr<WarmPool> pool(new WarmPool());
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoError("socketpair", "warm pool zygote");
  }
  unique_fd ours(pair[0]), theirs(pair[1]);
  unique_fd stop(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) return ErrnoError("eventfd", "warm pool");
  int lifeline[2];
  if (pipe2(lifeline, O_CLOEXEC) != 0) return ErrnoError("pipe2", "warm pool lifeline");
  unique_fd lifeline_read(lifeline[0]), lifeline_write(lifeline[1]);
  pid_t daemon = getpid();
  // fork(), not a raw clone: glibc resets its allocator locks in the child, which allocates.
  pid_t pid = fork();
  if (pid < 0) return ErrnoError("fork", "warm pool zygote");
  if (pid == 0) RunZygote(theirs.get(), lifeline_read.get(), daemon);
  theirs.reset();
  lifeline_read.reset();
  unique_fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    Error error = ErrnoError("pidfd_open", "warm pool zygote");
    ours.reset();  // EOF on its command socket: the zygote exits (our unreaped child meanwhile)
    waitpid(pid, nullptr, 0);
    return error;
  }
  pool->zygote_pid_ = pid;
  pool->zygote_pidfd_ = std::move(pidfd);
  pool->zygote_socket_ = std::move(ours);
  pool->stop_event_ = std::move(stop);
  pool->lifeline_ = std::move(lifeline_write);
  pool->Reconfigure(std::move(options));
  pool->refill_ = std::thread([p = pool.get()] { p->RefillLoop(); });
  return pool;
}

WarmPool::~WarmPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!write(stop_event_.get(), &one, sizeof(one));
  changed_.notify_all();
  if (refill_.joinable()) refill_.join();
  std::list<Template> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    old.swap(templates_);
  }
  old.clear();  // kills and reaps every unclaimed sandbox, removes its cgroup
  zygote_socket_.reset();
  if (zygote_pidfd_) KillAndReap(zygote_pidfd_.get());
}

void WarmPool::Reconfigure(Options options) {
  std::list<Template> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    old.swap(templates_);
    for (SandboxSpec& spec : options.templates) {
      std::string key = KeyOf(spec);
      bool duplicate = false;
      for (const Template& t : templates_) duplicate = duplicate || t.key == key;
      if (duplicate) continue;
      Template t;
      t.spec = std::move(spec);
      t.key = std::move(key);
      templates_.push_back(std::move(t));
    }
    per_template_ = options.per_template > 0 ? options.per_template : 0;
    quiet_ = options.quiet;
    ++generation_;
  }
  changed_.notify_all();
  old.clear();  // outside the lock: kills and reaps
}

std::unique_ptr<PreparedSandbox> WarmPool::Claim(const SandboxSpec& spec) {
  std::string key = KeyOf(spec);
  std::unique_ptr<PreparedSandbox> claimed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Template& t : templates_) {
      if (t.key != key || t.ready.empty()) continue;
      claimed = std::move(t.ready.front());
      t.ready.pop_front();
      break;
    }
  }
  if (claimed) changed_.notify_all();
  return claimed;
}

void WarmPool::CountClaim(bool hit) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++(hit ? claims_.hits : claims_.misses);
}

WarmPool::ClaimCounts WarmPool::claim_counts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return claims_;
}

Result<void> WarmPool::WaitUntilFull() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    bool full = true;
    for (const Template& t : templates_) {
      if (t.last_failure) return Failure("warm pool", t.key, t.last_failure->message);
      full = full && static_cast<int>(t.ready.size()) >= per_template_;
    }
    if (full) return Ok{};
    changed_.wait(lock);
  }
}

std::optional<PrepareFailure> WarmPool::LastFailure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Template& t : templates_) {
    if (t.last_failure) return t.last_failure;
  }
  return std::nullopt;
}

std::vector<pid_t> WarmPool::ReadyPids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<pid_t> pids;
  for (const Template& t : templates_) {
    for (const auto& sandbox : t.ready) pids.push_back(sandbox->pid);
  }
  return pids;
}

uint64_t WarmPool::prepared_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return prepared_;
}

void WarmPool::RefillLoop() {
  // Below the launches: only this thread (Linux nice values are per thread).
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kRefillNice);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    // The template most in need whose retry time has come; failures back off exponentially.
    Template* chosen = nullptr;
    Clock::time_point now = Clock::now();
    Clock::time_point next_retry = Clock::time_point::max();
    for (Template& t : templates_) {
      if (static_cast<int>(t.ready.size()) >= per_template_) continue;
      if (t.retry_at > now) {
        next_retry = std::min(next_retry, t.retry_at);
        continue;
      }
      if (chosen == nullptr || t.ready.size() < chosen->ready.size()) chosen = &t;
    }
    if (chosen == nullptr) {
      if (next_retry == Clock::time_point::max()) {
        changed_.wait(lock);
      } else {
        changed_.wait_until(lock, next_retry);
      }
      continue;
    }
    SandboxSpec spec = chosen->spec;
    std::string key = chosen->key;
    uint64_t generation = generation_;
    lock.unlock();
    PrepareFailure failure;
    auto prepared = Prepare(spec, &failure);
    std::unique_ptr<PreparedSandbox> sandbox;
    if (prepared) sandbox = std::move(*prepared);
    lock.lock();
    Template* target = nullptr;
    for (Template& t : templates_) {
      if (t.key == key && generation == generation_) target = &t;
    }
    if (target == nullptr || stopping_) {  // reconfigured or stopping meanwhile: discard it
      lock.unlock();
      sandbox.reset();
      lock.lock();
      continue;
    }
    if (sandbox) {
      target->ready.push_back(std::move(sandbox));
      target->last_failure.reset();
      target->consecutive_failures = 0;
      ++prepared_;
    } else {
      if (failure.message.empty()) failure.message = prepared.error().message();
      // Once per streak of failures: a template that keeps failing is retried with back-off.
      if (!quiet_ && target->consecutive_failures == 0) {
        std::fprintf(stderr, "packvisor: warm pool: prepare failed: %s\n", failure.message.c_str());
      }
      target->last_failure = failure;
      int shift = std::min(target->consecutive_failures++, 6);
      target->retry_at = Clock::now() + std::chrono::seconds(1) * (1 << shift);
    }
    changed_.notify_all();
  }
}

Result<std::unique_ptr<PreparedSandbox>> WarmPool::Prepare(const SandboxSpec& spec,
                                                           PrepareFailure* failure) {
  auto sandbox = std::make_unique<PreparedSandbox>();
  std::vector<unique_fd> join_fds;
  bool v2 = false;
  if (spec.cgroup && !FaultInjectionForLaunch().no_cgroup) {
    auto created =
        ExecutionCgroup::Create(CgroupLayout::Probe(), spec.cgroup_parent,
                                std::to_string(getpid()) + "-" + RandomName(), *spec.cgroup);
    if (!created) return created.error();
    sandbox->cgroup.emplace(std::move(*created));
    v2 = sandbox->cgroup->clone_fd() >= 0;
    if (!v2) {
      auto opened = sandbox->cgroup->OpenJoinFds();
      if (!opened) return opened.error();
      join_fds = std::move(*opened);
    }
  }
  std::string command(sizeof(PrepareCommand), '\0');
  PrepareCommand header{};
  header.inside_uid = spec.ids.inside_uid;
  header.inside_gid = spec.ids.inside_gid;
  header.host_uid = spec.ids.host_uid;
  header.host_gid = spec.ids.host_gid;
  header.network = spec.network == NetworkMode::kHost ? 1 : 0;
  header.cgroup_v2_fd = v2 ? 1 : 0;
  header.seccomp_allow = spec.seccomp_mode == SeccompMode::kAllow ? 1 : 0;
  header.tmp_size_bytes = spec.limits.tmp_size_bytes;
  header.hostname_size = static_cast<uint32_t>(spec.hostname.size());
  header.bind_count = static_cast<uint32_t>(spec.extra_ro_binds.size());
  std::memcpy(command.data(), &header, sizeof(header));
  command += spec.hostname;
  for (const std::string& bind : spec.extra_ro_binds) AppendString(command, bind);
  if (command.size() > kMaxCommand) return Failure("warm pool", "template", "too large");
  std::vector<int> fds;
  if (v2) fds.push_back(sandbox->cgroup->clone_fd());
  for (const unique_fd& fd : join_fds) fds.push_back(fd.get());

  PrepareReply reply{};
  std::vector<unique_fd> received;
  {
    // Only this thread talks to the zygote: one request, one reply.
    PV_TRY(SendWithFds(zygote_socket_.get(), command.data(), command.size(), fds.data(),
                       static_cast<int>(fds.size()), "warm pool zygote"));
    auto n =
        ReceiveWithFds(zygote_socket_.get(), &reply, sizeof(reply), &received, "warm pool zygote");
    if (!n) return n.error();
    if (*n != sizeof(reply)) return Failure("warm pool", "zygote", "exited or sent a short reply");
  }
  join_fds.clear();
  if (received.size() == 2) {
    sandbox->pid = reply.pid;
    sandbox->pidfd = std::move(received[0]);
    sandbox->control = std::move(received[1]);
  }
  if (reply.err != 0) {
    reply.message[sizeof(reply.message) - 1] = '\0';
    failure->err = reply.err;
    return Failure("warm pool", "prepare", reply.message);
  }
  if (!sandbox->pidfd) return Failure("warm pool", "zygote", "reply without the sandbox");

  // Wait for kPrepared (or a failed step, or the sandbox's death, or the pool's destruction).
  Clock::time_point deadline = Clock::now() + kPrepareTimeout;
  for (;;) {
    struct pollfd fds_poll[2] = {{sandbox->control.get(), POLLIN, 0},
                                 {stop_event_.get(), POLLIN, 0}};
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Failure("warm pool", "prepare", "timed out");
    int ready = poll(fds_poll, 2, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) return ErrnoError("poll", "prepared sandbox");
    if (ready <= 0) continue;
    if (fds_poll[1].revents != 0) return Failure("warm pool", "prepare", "pool destroyed");
    ChildMessage message{};
    ssize_t n = read(sandbox->control.get(), &message, sizeof(message));
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof(message))) {
      return Failure("warm pool", "prepare", "the sandbox ended before it was ready");
    }
    if (message.kind == MessageKind::kPrepared) return sandbox;
    if (message.kind == MessageKind::kSetupFailed) {
      failure->step = message.step;
      failure->err = message.err;
      failure->detail = message.detail;
      failure->message = std::string("setup step '") + SetupStepName(message.step) + "' failed";
      if (message.err != 0) failure->message += std::string(": ") + std::strerror(message.err);
      return Failure("warm pool", "prepare", failure->message);
    }
  }
}

#ifdef PACKVISOR_TEST_HOOKS
bool TestWarmPoolRequested() {
  const char* value = std::getenv("PACKVISOR_TEST_WARM_POOL");
  return value != nullptr && std::strcmp(value, "1") == 0;
}
#else
bool TestWarmPoolRequested() { return false; }
#endif

}  // namespace packvisor::sandbox
