#include "supervisor/server/daemon.h"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "sandbox/cgroup.h"
#include "sandbox/os/syscalls.h"
#include "supervisor/config/builtin_runtimes.h"
#include "supervisor/executions/crash_cleanup.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/executions/logging.h"
#include "supervisor/executions/notify.h"
#include "supervisor/executions/warm_pools.h"
#include "supervisor/server/http_api.h"

namespace packvisor {
namespace {

SchedulerLimits LimitsFrom(const Config& config) {
  SchedulerLimits limits;
  limits.max_concurrent = std::max<size_t>(1, config.server.max_concurrent);
  limits.max_queued = config.server.max_queued;
  return limits;
}

// The event loop's state: what the signal and timer callbacks work on.
struct Daemon {
  ServeOptions options;
  std::unique_ptr<sandbox::WarmPool> warm_pool;  // outlives every context and execution
  event_base* base = nullptr;
  std::shared_ptr<const ServingContext> context;
  std::unique_ptr<ExecutionStore> store;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<HttpApi> api;
  unique_fd signal_fd;
  bool draining = false;
  bool idle = false;
  int flush_checks_left = 0;
  event* drain_timer = nullptr;
  event* flush_timer = nullptr;
  event* expire_timer = nullptr;

  void Reload() {
    (void)NotifySystemd("RELOADING=1");
    struct Ready {
      ~Ready() { (void)NotifySystemd("READY=1"); }
    } ready;
    auto loaded = LoadServingContext(options.config_path, options.socket);
    if (!loaded) {
      spdlog::error("SIGHUP: the new configuration is refused, the old one stays in use: {}",
                    loaded.error().message());
      return;
    }
    if ((*loaded)->config.server.socket != context->config.server.socket) {
      spdlog::warn(
          "SIGHUP: server.socket changed to {}; the daemon keeps serving on {} until it "
          "restarts",
          (*loaded)->config.server.socket, context->config.server.socket);
    }
    if (warm_pool) {
      const ServerConfig& server = (*loaded)->config.server;
      auto reconfigured =
          ReconfigureWarmPools(*warm_pool, (*loaded)->config,
                               static_cast<int>(server.warm_sandboxes), server.warm_packs);
      if (!reconfigured) {
        spdlog::error("SIGHUP: the new configuration is refused, the old one stays in use: {}",
                      reconfigured.error().message());
        return;
      }
      (*loaded)->warm_pool = warm_pool.get();
    }
    context = std::move(*loaded);
    scheduler->SetLimits(LimitsFrom(context->config));
    api->Configure(context->config.server);
    spdlog::info("SIGHUP: configuration reloaded from {}", context->config.source);
  }

  void StartDrain() {
    if (draining) return;
    draining = true;
    int64_t seconds = context->config.server.drain_seconds;
    SchedulerStats stats = scheduler->Stats();
    spdlog::info(
        "draining: refusing new work; {} running, {} queued (cancelled); waiting up to "
        "{} s",
        stats.running, stats.queued, seconds);
    api->SetDraining();
    (void)NotifySystemd("STOPPING=1");
    scheduler->StartDraining();
    struct timeval deadline {
      static_cast<time_t>(seconds), 0
    };
    drain_timer = event_new(
        base, -1, 0,
        [](evutil_socket_t, short, void* self) {
          auto* daemon = static_cast<Daemon*>(self);
          spdlog::warn("drain: server.drain_seconds passed; cancelling what still runs");
          daemon->scheduler->CancelRunning();
        },
        this);
    event_add(drain_timer, &deadline);
    scheduler->OnIdle([this] { api->Post([this] { Idle(); }); });
  }

  // Nothing runs any more: stop listening, let the answers already queued be written (up to the
  // write deadline), then leave the loop.
  void Idle() {
    if (idle) return;
    idle = true;
    api->StopListening();
    flush_checks_left =
        static_cast<int>(std::max<int64_t>(1, context->config.server.write_timeout_seconds) * 20);
    flush_timer = event_new(
        base, -1, 0,
        [](evutil_socket_t, short, void* self) {
          auto* daemon = static_cast<Daemon*>(self);
          if (!daemon->api->Busy() || --daemon->flush_checks_left <= 0) {
            event_base_loopexit(daemon->base, nullptr);
            return;
          }
          struct timeval again {
            0, 50000
          };
          event_add(daemon->flush_timer, &again);
        },
        this);
    struct timeval now {
      0, 0
    };
    event_add(flush_timer, &now);
  }

  void RemoveExpired() {
    auto removed =
        store->RemoveExpired(std::chrono::seconds(context->config.server.result_ttl_seconds));
    if (!removed) {
      spdlog::warn("removing expired results: {}", removed.error().message());
    } else if (*removed > 0) {
      spdlog::info("removed {} result(s) older than server.result_ttl_seconds", *removed);
    }
  }
};

void OnSignal(evutil_socket_t fd, short, void* self) {
  auto* daemon = static_cast<Daemon*>(self);
  struct signalfd_siginfo info {};
  while (read(fd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
    if (info.ssi_signo == SIGHUP) {
      daemon->Reload();
    } else {
      spdlog::info("received {}", info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
      daemon->StartDrain();
    }
  }
}

}  // namespace

Result<std::shared_ptr<ServingContext>> LoadServingContext(
    const std::optional<std::string>& config_path,
    const std::optional<std::string>& socket_override) {
  auto config = LoadConfig(config_path);
  if (!config) return config.error();
  if (socket_override) config->server.socket = *socket_override;
  auto runtimes = LoadRuntimeRegistry(*config);
  if (!runtimes) return runtimes.error();
  auto context = std::make_shared<ServingContext>();
  context->config = std::move(*config);
  context->runtimes = std::move(*runtimes);
  // The warm pool is the process's, not the context's: its zygote must be forked before any
  // thread starts, so RunServe makes it once and sets each context's `warm_pool` to it.
  return context;
}

Result<BoundSocket> BindUnixSocket(const std::string& path, gid_t group) {
  if (path.empty() || path[0] != '/' || path.back() == '/') {
    return Failure("server.socket", path, "must be an absolute path to a file");
  }
  size_t slash = path.rfind('/');
  std::string name = path.substr(slash + 1);
  std::string dir = path.substr(0, slash);
  // Walk from / one component at a time, never following a symlink, creating what is missing.
  unique_fd at(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!at) return ErrnoError("open", "/");
  std::stringstream components(dir);
  std::string component;
  std::string walked;
  while (std::getline(components, component, '/')) {
    if (component.empty() || component == ".") continue;
    if (component == "..") return Failure("server.socket", path, "must not contain ..");
    walked += "/" + component;
    unique_fd next(
        openat(at.get(), component.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next && errno == ENOENT) {
      if (mkdirat(at.get(), component.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError("create the socket directory", walked);
      }
      next.reset(
          openat(at.get(), component.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (next) fchmod(next.get(), 0755);  // whatever the umask
    }
    if (!next) {
      return errno == ELOOP || errno == ENOTDIR
                 ? Failure("server.socket", walked, "is a symlink or not a directory")
                 : ErrnoError("open the socket directory", walked);
    }
    at = std::move(next);
  }
  struct stat dir_st {};
  if (fstat(at.get(), &dir_st) != 0) return ErrnoError("stat", dir);
  if (dir_st.st_uid != 0 || (dir_st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Failure("server.socket", dir,
                   "the socket's directory must be owned by root and writable by root only");
  }
  struct stat old {};
  if (fstatat(at.get(), name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISSOCK(old.st_mode)) {
      return Failure("server.socket", path, "exists and is not a socket; not replacing it");
    }
    if (unlinkat(at.get(), name.c_str(), 0) != 0) return ErrnoError("remove stale socket", path);
  }
  unique_fd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock) return ErrnoError("socket", path);
  // Bound through the directory we hold (its /proc/self/fd link), not by walking the path again.
  struct sockaddr_un address {};
  address.sun_family = AF_UNIX;
  std::string via = "/proc/self/fd/" + std::to_string(at.get()) + "/" + name;
  if (via.size() >= sizeof(address.sun_path)) {
    return Failure("server.socket", path, "the socket's name is too long");
  }
  std::memcpy(address.sun_path, via.c_str(), via.size() + 1);
  mode_t old_umask = umask(0177);  // created 0600, opened to the group below once it is root's
  int bound = bind(sock.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  umask(old_umask);
  if (bound != 0) return ErrnoError("bind", path);
  if (fchownat(at.get(), name.c_str(), 0, group, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError("chown the socket", path);
  }
  if (fchmodat(at.get(), name.c_str(), 0660, 0) != 0) return ErrnoError("chmod the socket", path);
  struct stat made {};
  if (fstatat(at.get(), name.c_str(), &made, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError("stat the socket", path);
  }
  if (listen(sock.get(), 128) != 0) return ErrnoError("listen", path);
  BoundSocket result;
  result.listening = std::move(sock);
  result.directory = std::move(at);
  result.name = name;
  result.device = made.st_dev;
  result.inode = made.st_ino;
  return result;
}

void RemoveBoundSocket(const BoundSocket& bound, const std::string& path) {
  if (!bound.directory) return;
  struct stat now {};
  if (fstatat(bound.directory.get(), bound.name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (!S_ISSOCK(now.st_mode) || now.st_dev != bound.device || now.st_ino != bound.inode) {
    spdlog::info("not removing {}: it is no longer the socket this daemon made", path);
    return;
  }
  if (unlinkat(bound.directory.get(), bound.name.c_str(), 0) != 0) {
    spdlog::warn("removing the socket {}: {}", path, std::strerror(errno));
  }
}

int RunServe(const ServeOptions& options) {
  // Signals are read from a signalfd in the loop (sandbox children reset the mask before exec).
  sigset_t signals;
  StartLongLivedProcess(options.log_level, {SIGTERM, SIGINT, SIGHUP}, &signals);

  Daemon daemon;
  daemon.options = options;
  auto context = LoadServingContext(options.config_path, options.socket);
  if (!context) {
    spdlog::critical("{}", context.error().message());
    return kExitOwnError;
  }
  std::shared_ptr<ServingContext> initial = std::move(*context);
  daemon.context = initial;
  const Config& config = initial->config;
  spdlog::info("configuration: {}", config.source);

  // What a supervisor that died (SIGKILL, OOM, power loss) left: cgroups (members killed),
  // staging and replaced environment trees, temporary files.
  // cgroup v2's "no internal processes" rule: the daemon (and the zygote it forks) leave the
  // cgroup that execution cgroups are created under. A no-op on v1.
  if (auto moved = sandbox::MoveSelfToLeafCgroup(sandbox::CgroupLayout::Probe(), "supervisor");
      !moved) {
    spdlog::critical("{}", moved.error().message());
    return kExitOwnError;
  }
  auto cleaned = CleanUpAfterCrash(config);
  if (!cleaned) {
    spdlog::critical("cleaning up after a previous supervisor: {}", cleaned.error().message());
    return kExitOwnError;
  }
  for (const std::string& line : cleaned->removed) spdlog::info("removed {}", line);
  for (const std::string& line : cleaned->kept) spdlog::warn("could not remove {}", line);
  auto store = ExecutionStore::Open(config.state_dir);
  if (!store) {
    spdlog::critical("{}", store.error().message());
    return kExitOwnError;
  }
  daemon.store = std::move(*store);

  // The prepared sandboxes: forked now, before any thread of ours exists (sandbox/warm_pool.h).
  auto pool = CreateWarmPools(config, static_cast<int>(config.server.warm_sandboxes),
                              config.server.warm_packs);
  if (!pool) {
    spdlog::critical("warm sandboxes: {}", pool.error().message());
    return kExitOwnError;
  }
  daemon.warm_pool = std::move(*pool);
  // Set before the context is shared with anything: it is immutable from here on.
  initial->warm_pool = daemon.warm_pool.get();
  auto abandoned = daemon.store->MarkUnfinishedAbandoned();
  if (!abandoned) {
    spdlog::critical("marking unfinished executions abandoned: {}", abandoned.error().message());
    return kExitOwnError;
  }
  for (const std::string& id : *abandoned) {
    spdlog::warn("execution {} had not finished when the supervisor stopped: abandoned", id);
  }

  // Socket activation (packvisor.socket): systemd made the socket, with its own mode and group,
  // and owns its file. A socket we bind ourselves is removed when we exit (`own_socket`).
  unique_fd listening;
  BoundSocket own_socket;
  std::vector<unique_fd> inherited = ListenFdsFromSystemd();
  if (!inherited.empty()) {
    listening = std::move(inherited.front());
    spdlog::info("serving on the socket systemd passed (LISTEN_FDS)");
  } else {
    auto bound = BindUnixSocket(config.server.socket, config.server.socket_group);
    if (!bound) {
      spdlog::critical("{}", bound.error().message());
      return kExitOwnError;
    }
    own_socket = std::move(*bound);
    listening = std::move(own_socket.listening);
  }

  daemon.base = event_base_new();
  if (daemon.base == nullptr) {
    spdlog::critical("libevent: event_base_new failed");
    return kExitOwnError;
  }
  daemon.scheduler = std::make_unique<Scheduler>(*daemon.store, LimitsFrom(config));
  daemon.api = std::make_unique<HttpApi>(daemon.base, *daemon.scheduler, *daemon.store,
                                         [&daemon] { return daemon.context; });
  int code = 0;
  if (auto started = daemon.api->Start(std::move(listening), config.server); !started) {
    spdlog::critical("{}", started.error().message());
    code = kExitOwnError;
  } else {
    daemon.signal_fd.reset(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
    event* signal_event =
        event_new(daemon.base, daemon.signal_fd.get(), EV_READ | EV_PERSIST, &OnSignal, &daemon);
    event_add(signal_event, nullptr);
    daemon.expire_timer = event_new(
        daemon.base, -1, EV_PERSIST,
        [](evutil_socket_t, short, void* self) { static_cast<Daemon*>(self)->RemoveExpired(); },
        &daemon);
    struct timeval minute {
      60, 0
    };
    event_add(daemon.expire_timer, &minute);
    daemon.RemoveExpired();
    spdlog::info("serving on {} (max_concurrent {}, max_queued {})", config.server.socket,
                 config.server.max_concurrent, config.server.max_queued);
    if (auto notified = NotifySystemd("READY=1"); !notified) {
      spdlog::warn("telling systemd we are ready: {}", notified.error().message());
    }
    event_base_dispatch(daemon.base);
    event_free(signal_event);
    spdlog::info("drained; exiting");
  }
  // The API first (it unsubscribes from the scheduler), then the scheduler (it cancels and joins
  // whatever still runs), then the loop.
  daemon.api.reset();  // closes the listening socket
  RemoveBoundSocket(own_socket, config.server.socket);
  daemon.scheduler.reset();
  if (daemon.drain_timer != nullptr) event_free(daemon.drain_timer);
  if (daemon.flush_timer != nullptr) event_free(daemon.flush_timer);
  if (daemon.expire_timer != nullptr) event_free(daemon.expire_timer);
  event_base_free(daemon.base);
  spdlog::default_logger()->flush();
  return code;
}

}  // namespace packvisor
