#include "envs/environment.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <thread>

#include "envs/build_output.h"
#include "envs/digest.h"
#include "envs/environment_records.h"
#include "envs/pack_disk.h"
#include "envs/safe_fs.h"
#include "sandbox/launcher.h"
#include "sandbox/os/syscalls.h"

namespace packvisor::envs {
namespace {

constexpr size_t kMarkerMaxBytes = 4096;
constexpr size_t kFailureRecordMaxBytes = 64 << 10;
constexpr size_t kFailureLines = 8;

bool IsValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

std::string MarkerName(const std::string& runtime) { return "." + runtime + ".ready"; }
std::string UsedName(const std::string& runtime) { return "." + runtime + ".used"; }
std::string FailedName(const std::string& runtime) { return "." + runtime + ".failed"; }

// The runtime of a failure record's name (".python.failed"), "" for any other name.
std::string RuntimeOfFailedName(const std::string& name) {
  constexpr std::string_view kSuffix = ".failed";
  if (name.size() <= 1 + kSuffix.size() || name[0] != '.' ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return "";
  }
  std::string runtime = name.substr(1, name.size() - 1 - kSuffix.size());
  return IsValidName(runtime) ? runtime : "";
}

// The failed build recorded beside the environment, in the root-owned pack directory (the
// sandbox never has it mounted), read without following a symlink.
std::optional<FailureRecord> ReadFailureRecord(int pack_fd, const std::string& runtime) {
  auto text = ReadSmallFileAt(pack_fd, FailedName(runtime), kFailureRecordMaxBytes);
  if (!text) return std::nullopt;
  return ParseFailureRecord(*text);
}

std::string UtcTime(int64_t unix_time) {
  time_t t = static_cast<time_t>(unix_time);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

using Marker = ReadyMarker;

std::optional<Marker> ReadMarker(int pack_fd, const std::string& runtime) {
  auto text = ReadSmallFileAt(pack_fd, MarkerName(runtime), kMarkerMaxBytes);
  if (!text) return std::nullopt;
  return ParseReadyMarker(*text);
}

// The environment directory's identity, without following a symlink.
std::optional<struct stat> EnvStat(int pack_fd, const std::string& runtime) {
  struct stat st {};
  if (fstatat(pack_fd, runtime.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
  if (!S_ISDIR(st.st_mode)) return std::nullopt;
  return st;
}

// The published directory is still the one the marker was written for: its inode, on the same
// filesystem as the pack directory that holds the marker (something mounted over it would be on
// another). The device number itself is not compared: a pack disk mounted again after a reboot
// may come back on another loop device, and its environments are still the ones built.
bool MarkerMatches(const Marker& marker, const struct stat& st, int pack_fd) {
  struct stat pack {};
  if (fstat(pack_fd, &pack) != 0) return false;
  return st.st_dev == pack.st_dev && marker.ino == static_cast<uint64_t>(st.st_ino);
}

// Entries of the pack's env directory whose name starts with `prefix` (none when unreadable).
std::vector<std::string> EntriesWithPrefix(int dir_fd, const std::string& prefix) {
  std::vector<std::string> names;
  auto entries = DirectoryEntriesAt(dir_fd);
  if (!entries) return names;
  for (std::string& name : *entries) {
    if (name.rfind(prefix, 0) == 0) names.push_back(std::move(name));
  }
  return names;
}

// Prints "building ... N s" on a terminal every second while a step runs.
class ProgressLine {
 public:
  ProgressLine(bool enabled, std::string what) : what_(std::move(what)) {
    if (!enabled) return;
    thread_ = std::thread([this] {
      auto start = std::chrono::steady_clock::now();
      while (!done_.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
        if (seconds >= 1)
          std::fprintf(stderr, "\rpackvisor: %s ... %lld s", what_.c_str(),
                       static_cast<long long>(seconds));
      }
    });
  }
  ~ProgressLine() {
    if (!thread_.joinable()) return;
    done_ = true;
    thread_.join();
    std::fprintf(stderr, "\r\033[K");
  }

 private:
  std::string what_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

const char* EnvironmentStateName(EnvironmentState state) {
  switch (state) {
    case EnvironmentState::kMissing:
      return "missing";
    case EnvironmentState::kReady:
      return "ready";
    case EnvironmentState::kStale:
      return "stale";
    case EnvironmentState::kBroken:
      return "broken";
    case EnvironmentState::kFailed:
      return "failed";
  }
  return "unknown";
}

Result<void> CheckEnvironmentNames(const std::string& pack_ref, const std::string& runtime) {
  if (!IsValidName(pack_ref)) {
    return Failure("invalid pack ref", pack_ref, "expected ^[a-z0-9][a-z0-9_-]{0,63}$");
  }
  if (!IsValidName(runtime)) {
    return Failure("invalid runtime name", runtime, "expected ^[a-z0-9][a-z0-9_-]{0,63}$");
  }
  return Ok{};
}

EnvironmentManager::EnvironmentManager(EnvironmentSettings settings)
    : settings_(std::move(settings)) {}

std::string EnvironmentManager::LockPath(const std::string& pack_ref, const std::string& runtime,
                                         const char* kind) const {
  return settings_.state_dir + "/locks/" + pack_ref + "." + runtime + "." + kind;
}

Result<std::string> EnvironmentManager::Digest(const std::string& pack_dir,
                                               const RuntimeDefinition& runtime) const {
  Sha256 hash;
  hash.UpdateField("packvisor-env-v1");
  // The owner: a tree built for other host ids would be unreadable (0700) to this pack's sandbox.
  hash.UpdateField(std::to_string(settings_.base_spec.ids.host_uid) + ":" +
                   std::to_string(settings_.base_spec.ids.host_gid));
  hash.UpdateField(runtime.name);
  hash.UpdateField(runtime.interpreter.binary);
  if (runtime.environment) {
    for (const auto& arg : runtime.environment->create_command) hash.UpdateField(arg);
    hash.UpdateField(runtime.environment->interpreter_path.value_or(""));
  }
  if (runtime.dependencies) {
    hash.UpdateField(runtime.dependencies->manifest_file);
    for (const auto& arg : runtime.dependencies->install_command) hash.UpdateField(arg);
    auto pack = os::OpenNoSymlinks(AT_FDCWD, pack_dir, O_RDONLY | O_DIRECTORY);
    if (!pack) return pack.error();
    auto manifest = ReadSmallFileAt(pack->get(), runtime.dependencies->manifest_file, 16 << 20);
    if (manifest) {
      hash.UpdateField(*manifest);
    } else if (manifest.error().err == ENOENT) {
      hash.UpdateField("<no manifest>");
    } else {
      return manifest.error();
    }
  }
  for (const auto& [key, value] : settings_.install_env) {
    hash.UpdateField(key);
    hash.UpdateField(value);
  }
  // The interpreter's identity: the file it resolves to, its size and modification time (an
  // upgrade of the interpreter package changes them). Cheaper than running it for its version.
  char resolved[PATH_MAX];
  struct stat st {};
  if (realpath(runtime.interpreter.binary.c_str(), resolved) == nullptr ||
      stat(resolved, &st) != 0) {
    return ErrnoError("interpreter", runtime.interpreter.binary);
  }
  hash.UpdateField(resolved);
  hash.UpdateField(std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                   std::to_string(st.st_mtim.tv_nsec));
  return hash.HexDigest();
}

Result<EnvironmentInfo> EnvironmentManager::Inspect(const std::string& pack_ref,
                                                    const std::string& pack_dir,
                                                    const RuntimeDefinition& runtime) const {
  PV_TRY(CheckEnvironmentNames(pack_ref, runtime.name));
  EnvironmentInfo info;
  info.pack_ref = pack_ref;
  info.runtime = runtime.name;
  info.path = settings_.runtime_envs_dir + "/" + pack_ref + "/" + runtime.name;
  auto root = OpenDirPath(settings_.runtime_envs_dir, false);
  if (!root) {
    if (root.error().err == ENOENT) return info;
    return root.error();
  }
  auto pack_fd = OpenDirBeneath(root->get(), pack_ref);
  if (!pack_fd) {
    if (pack_fd.error().err == ENOENT) return info;
    return pack_fd.error();
  }
  auto marker = ReadMarker(pack_fd->get(), runtime.name);
  auto st = EnvStat(pack_fd->get(), runtime.name);
  auto failure = ReadFailureRecord(pack_fd->get(), runtime.name);
  if (failure) {
    info.failure = failure->error;
    info.failure_digest = failure->digest;
    info.failed_at = failure->failed_at;
  }
  std::optional<std::string> digest;
  if (marker || failure) {
    auto current = Digest(pack_dir, runtime);
    if (!current) return current.error();
    digest = *current;
  }
  if (!marker) {
    info.state = st ? EnvironmentState::kBroken : EnvironmentState::kMissing;
  } else {
    info.digest = marker->digest;
    if (!st || !MarkerMatches(*marker, *st, pack_fd->get())) {
      info.state = EnvironmentState::kBroken;
    } else {
      info.state = *digest == marker->digest ? EnvironmentState::kReady : EnvironmentState::kStale;
    }
  }
  // A failed build for the current digest: not retried (a ready environment still serves).
  if (failure && failure->digest == *digest && info.state != EnvironmentState::kReady) {
    info.state = EnvironmentState::kFailed;
  }
  struct stat used {};
  if (fstatat(pack_fd->get(), UsedName(runtime.name).c_str(), &used, AT_SYMLINK_NOFOLLOW) == 0) {
    info.last_used = used.st_mtim.tv_sec;
  }
  return info;
}

void EnvironmentManager::RemoveReplacedTrees(const std::string& pack_ref,
                                             const std::string& runtime) const {
  auto root = OpenDirPath(settings_.runtime_envs_dir, false);
  if (!root) return;
  auto pack_fd = OpenDirBeneath(root->get(), pack_ref);
  if (!pack_fd) return;
  std::vector<std::string> old = EntriesWithPrefix(pack_fd->get(), ".old-" + runtime + "-");
  std::vector<std::string> deep = EntriesWithPrefix(pack_fd->get(), ".packvisor-remove-");
  if (old.empty() && deep.empty()) return;
  // Only while no execution holds the environment (a replaced tree may still be mounted).
  auto unused = FileLock::TryAcquire(LockPath(pack_ref, runtime, "inuse"));
  if (!unused) return;
  for (const std::string& name : old) (void)RemoveTreeAt(pack_fd->get(), name);
  for (const std::string& name : deep) (void)RemoveTreeAt(pack_fd->get(), name);
}

Result<EnvironmentLease> EnvironmentManager::Ensure(const std::string& pack_ref,
                                                    const std::string& pack_dir,
                                                    const RuntimeDefinition& runtime,
                                                    Rebuild rebuild,
                                                    std::chrono::milliseconds* build_time) {
  // Counts from here once a build (ours or another process's that we wait for) is under way.
  struct BuildClock {
    std::chrono::milliseconds* out;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    bool counting = false;
    ~BuildClock() {
      if (out == nullptr) return;
      *out = counting ? std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - start)
                      : std::chrono::milliseconds::zero();
    }
  } clock{build_time};
  PV_TRY(CheckEnvironmentNames(pack_ref, runtime.name));
  PV_TRY(EnsurePackDisk(DiskSettings(), pack_ref));
  std::string host_dir = settings_.runtime_envs_dir + "/" + pack_ref + "/" + runtime.name;
  auto take_lease = [&](bool built_now) -> Result<EnvironmentLease> {
    RemoveReplacedTrees(pack_ref, runtime.name);
    auto in_use = FileLock::AcquireShared(LockPath(pack_ref, runtime.name, "inuse"));
    if (!in_use) return in_use.error();
    return EnvironmentLease{host_dir, built_now, std::move(*in_use)};
  };
  auto touch_used = [&](int pack_fd) {
    unique_fd used(openat(pack_fd, UsedName(runtime.name).c_str(),
                          O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (used) futimens(used.get(), nullptr);
  };
  // The failure recorded for the current digest, as the error of this call.
  auto recorded_failure = [&](const EnvironmentInfo& failed) {
    return Failure("environment build", pack_ref + "/" + runtime.name,
                   failed.failure + " [build failed at " + UtcTime(failed.failed_at.value_or(0)) +
                       "; not retried until the manifest or the runtime changes, or `packvisor "
                       "env setup --force " +
                       pack_ref + "`]");
  };

  // Fast path: a stat and a small read.
  auto info = Inspect(pack_ref, pack_dir, runtime);
  if (!info) return info.error();
  if (rebuild == Rebuild::kWhenNeeded) {
    if (info->state == EnvironmentState::kReady) {
      auto lease = take_lease(false);
      if (lease) {
        if (auto root = OpenDirPath(settings_.runtime_envs_dir, false)) {
          if (auto pack_fd = OpenDirBeneath(root->get(), pack_ref)) touch_used(pack_fd->get());
        }
      }
      return lease;
    }
    if (info->state == EnvironmentState::kFailed) return recorded_failure(*info);
  }
  clock.counting = true;

  auto root = OpenDirPath(settings_.runtime_envs_dir, true, 0755);
  if (!root) return root.error();
  if (mkdirat(root->get(), pack_ref.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoError("mkdir", settings_.runtime_envs_dir + "/" + pack_ref);
  }
  auto pack_fd = OpenDirBeneath(root->get(), pack_ref);
  if (!pack_fd) return pack_fd.error();
  PV_TRY(CheckOnPackDisk(DiskSettings(), pack_fd->get(), pack_ref));
  auto locks = OpenDirPath(settings_.state_dir + "/locks", true, 0700);
  if (!locks) return locks.error();

  // One builder at a time; the others wait here and then find it ready (or its failure
  // recorded, which they report without building again).
  auto build_lock = FileLock::Acquire(LockPath(pack_ref, runtime.name, "build"),
                                      settings_.build_timeout + std::chrono::seconds(60));
  if (!build_lock) return build_lock.error();
  info = Inspect(pack_ref, pack_dir, runtime);
  if (!info) return info.error();
  bool built_now = false;
  if (rebuild == Rebuild::kAlways || info->state != EnvironmentState::kReady) {
    if (rebuild == Rebuild::kWhenNeeded && info->state == EnvironmentState::kFailed) {
      return recorded_failure(*info);
    }
    auto digest = Digest(pack_dir, runtime);
    if (!digest) return digest.error();
    PV_TRY(Build(pack_fd->get(), pack_ref, pack_dir, runtime, *digest));
    built_now = true;
  }
  touch_used(pack_fd->get());
  return take_lease(built_now);
}

Result<void> EnvironmentManager::Build(int pack_fd, const std::string& pack_ref,
                                       const std::string& pack_dir,
                                       const RuntimeDefinition& runtime,
                                       const std::string& digest) {
  const std::string label = pack_ref + "/" + runtime.name;
  // Leftovers of builders that died: we hold the build lock, so nobody else is using them.
  for (const std::string& stale : EntriesWithPrefix(pack_fd, ".staging-" + runtime.name + "-")) {
    PV_TRY(RemoveTreeAt(pack_fd, stale));
  }
  std::string staging = ".staging-" + runtime.name + "-" + RandomSuffix();
  if (mkdirat(pack_fd, staging.c_str(), 0700) != 0) return ErrnoError("mkdir", staging);
  const sandbox::IdMapping& ids = settings_.base_spec.ids;
  if (fchownat(pack_fd, staging.c_str(), ids.host_uid, ids.host_gid, AT_SYMLINK_NOFOLLOW) != 0) {
    auto error = ErrnoError("chown", staging);
    (void)RemoveTreeAt(pack_fd, staging);
    return error;
  }
  struct RemoveStagingOnFailure {
    int fd;
    const std::string& name;
    bool armed = true;
    ~RemoveStagingOnFailure() {
      if (armed) (void)RemoveTreeAt(fd, name);
    }
  } cleanup{pack_fd, staging};

  std::string staging_path = settings_.runtime_envs_dir + "/" + pack_ref + "/" + staging;
  auto deadline = std::chrono::steady_clock::now() + settings_.build_timeout;
  TemplateValues values;
  values.pack_dir = std::string(kSandboxPackDir);
  values.env_dir = std::string(kSandboxEnvDir);
  const std::string timeout_text =
      "timed out: envs.build_timeout_seconds = " + std::to_string(settings_.build_timeout.count());

  // A failure of what the build made (not of the host): recorded beside the environment so that
  // the same digest is not built again on every run. The record is best effort (a full pack disk
  // may refuse it); the build fails either way.
  auto fail = [&](const std::string& detail) -> Error {
    std::string record =
        FailureRecordText({digest, detail, static_cast<int64_t>(time(nullptr))}, runtime.name);
    (void)WriteFileAtomicAt(pack_fd, FailedName(runtime.name), record);
    return Failure("environment build", label, detail);
  };

  // Runs `argv` in a build sandbox: the pack read-only at /pack, the staging tree at /env.
  auto launch = [&](const std::string& step, std::vector<std::string> argv,
                    sandbox::NetworkMode network, sandbox::OutputSink* out,
                    sandbox::OutputSink* err) -> Result<sandbox::SandboxResult> {
    sandbox::SandboxSpec spec = settings_.base_spec;
    spec.argv = std::move(argv);
    spec.pack_dir = pack_dir;
    spec.env_dir = staging_path;
    spec.network = network;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) {
      return fail(step + " failed (" + timeout_text + ")");
    }
    spec.timeout = left;
    spec.env.clear();
    spec.env.push_back("PATH=/env/bin:/usr/local/bin:/usr/bin:/bin");
    for (const auto& [name, value] : settings_.base_env) spec.env.push_back(name + "=" + value);
    for (const auto& [name, value] : settings_.install_env) spec.env.push_back(name + "=" + value);
    sandbox::LaunchIo io;
    io.stdout_sink = out;
    io.stderr_sink = err;
    spdlog::info("environment {}: {} ({})", label, step, spec.argv[0]);
    ProgressLine progress(settings_.show_progress, "building environment " + label + ": " + step);
    return sandbox::RunSandbox(spec, io);
  };

  // How a step that did not succeed ended, and whether that is the build's own failure (recorded)
  // or the host's (a sandbox that could not start, a cancellation: not recorded).
  auto step_outcome = [&](const sandbox::SandboxResult& result) -> std::pair<std::string, bool> {
    // An OOM kill fails the step even when a wrapper exited 0 after its child was killed: what
    // the killed process was writing is missing from the environment.
    if (result.oom_killed && settings_.base_spec.cgroup) {
      return {"out of memory, limit " +
                  std::to_string(settings_.base_spec.cgroup->memory_max_bytes >> 20) + " MiB",
              true};
    }
    switch (result.outcome) {
      case sandbox::Outcome::kExited:
        return {"exit " + std::to_string(result.exit_code), true};
      case sandbox::Outcome::kSignaled:
        return {"killed by signal " + std::to_string(result.signal), true};
      case sandbox::Outcome::kTimedOut:
        return {timeout_text, true};
      case sandbox::Outcome::kCancelled:
        return {"cancelled", false};
      case sandbox::Outcome::kSetupFailed:
      case sandbox::Outcome::kExecFailed:
        break;
    }
    return {"could not start: " + result.FailureMessage(), false};
  };

  auto run_step = [&](const char* step, const std::vector<std::string>& command) -> Result<void> {
    auto argv = SubstituteArgv(command, values);
    if (!argv) return argv.error();
    BuildOutputTail output;
    auto result = launch(
        step, *argv,
        settings_.install_network ? sandbox::NetworkMode::kHost : sandbox::NetworkMode::kNone,
        &output, &output);
    if (!result) return result.error();
    if (!output.text().empty()) {
      spdlog::debug("environment {}: {} output (last {} bytes):\n{}", label, step,
                    output.text().size(), output.text());
    }
    if (result->oom_killed || result->outcome != sandbox::Outcome::kExited ||
        result->exit_code != 0) {
      auto [how, recorded] = step_outcome(*result);
      std::string detail = StepFailureDetail(step, how, output.text(), kFailureLines);
      return recorded ? fail(detail) : Failure("environment build", label, detail);
    }
    return Ok{};
  };

  if (runtime.environment && !runtime.environment->create_command.empty()) {
    values.interpreter = runtime.interpreter.binary;  // the system interpreter creates it
    PV_TRY(run_step("create", runtime.environment->create_command));
  }
  if (runtime.dependencies) {
    struct stat manifest {};
    auto pack = os::OpenNoSymlinks(AT_FDCWD, pack_dir, O_RDONLY | O_DIRECTORY);
    if (!pack) return pack.error();
    if (fstatat(pack->get(), runtime.dependencies->manifest_file.c_str(), &manifest,
                AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(manifest.st_mode)) {
      auto interpreter = InterpreterFor(runtime, CommandPhase::kInstall);
      if (!interpreter) return interpreter.error();
      values.interpreter = *interpreter;
      values.manifest_path =
          std::string(kSandboxPackDir) + "/" + runtime.dependencies->manifest_file;
      PV_TRY(run_step("install", runtime.dependencies->install_command));
    }
  }

  // No dangling symlink: checked inside a build sandbox (without network),
  // so a target resolves exactly as it will for the actions (/pack, /env, /usr, ...). find's
  // -xtype l is true for a link whose target does not resolve (missing, a loop, unreachable).
  {
    BuildOutputTail links;
    BuildOutputTail errors;
    auto result =
        launch("verify", {"/usr/bin/find", "/env", "-xtype", "l", "-printf", "%p -> %l\n", "-quit"},
               sandbox::NetworkMode::kNone, &links, &errors);
    if (!result) return result.error();
    std::vector<std::string> found = OutputLines(links.text());
    if (!found.empty()) {
      return fail("dangling symbolic link " + found.front() +
                  " (its target does not exist in the sandbox); not published");
    }
    if (result->oom_killed || result->outcome != sandbox::Outcome::kExited ||
        result->exit_code != 0) {
      auto [how, recorded] = step_outcome(*result);
      std::string detail = StepFailureDetail("verify", how, errors.text(), kFailureLines);
      return recorded ? fail(detail) : Failure("environment build", label, detail);
    }
  }

  auto size = TreeSizeAt(pack_fd, staging, settings_.max_size_bytes);
  if (!size) return size.error();
  if (*size > settings_.max_size_bytes) {
    return fail("size exceeds envs.max_size_mb (" + std::to_string(settings_.max_size_bytes >> 20) +
                " MiB)");
  }

  // Publish: swap the new tree in atomically; the old one (if any) leaves under a new name.
  bool replaced = false;
  if (renameat2(pack_fd, staging.c_str(), pack_fd, runtime.name.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno != EEXIST) return ErrnoError("publish", label);
    if (renameat2(pack_fd, staging.c_str(), pack_fd, runtime.name.c_str(), RENAME_EXCHANGE) != 0) {
      return ErrnoError("publish", label);
    }
    replaced = true;
  }
  auto st = EnvStat(pack_fd, runtime.name);
  if (!st) return Failure("publish", label, "the published environment vanished");
  std::string marker = ReadyMarkerText({digest, static_cast<uint64_t>(st->st_ino)}, runtime.name,
                                       static_cast<int64_t>(time(nullptr)));
  PV_TRY(WriteFileAtomicAt(pack_fd, MarkerName(runtime.name), marker));
  cleanup.armed = false;
  (void)unlinkat(pack_fd, FailedName(runtime.name).c_str(), 0);  // a success ends a failure
  if (replaced) {
    // `staging` now names the previous environment: out of the way, then removed unless an
    // execution still uses it (CleanUpStale removes it later).
    std::string old = ".old-" + runtime.name + "-" + RandomSuffix();
    if (renameat(pack_fd, staging.c_str(), pack_fd, old.c_str()) == 0) {
      if (auto free = FileLock::TryAcquire(LockPath(pack_ref, runtime.name, "inuse"))) {
        (void)RemoveTreeAt(pack_fd, old);
      }
    }
  }
  spdlog::info("environment {}: published ({} bytes)", label, *size);
  return Ok{};
}

Result<std::vector<EnvironmentInfo>> EnvironmentManager::List() const {
  std::vector<EnvironmentInfo> infos;
  auto root = OpenDirPath(settings_.runtime_envs_dir, false);
  if (!root) {
    if (root.error().err == ENOENT) return infos;
    return root.error();
  }
  for (const std::string& pack_ref : EntriesWithPrefix(root->get(), "")) {
    if (!IsValidName(pack_ref)) continue;
    auto pack_fd = OpenDirBeneath(root->get(), pack_ref);
    if (!pack_fd) continue;
    std::vector<std::string> entries = EntriesWithPrefix(pack_fd->get(), "");
    std::vector<std::string> runtimes;
    for (const std::string& entry : entries) {
      if (IsValidName(entry) && EnvStat(pack_fd->get(), entry)) runtimes.push_back(entry);
    }
    // A runtime whose builds failed before any was published shows as failed.
    for (const std::string& entry : entries) {
      std::string runtime = RuntimeOfFailedName(entry);
      if (!runtime.empty() && !EnvStat(pack_fd->get(), runtime)) runtimes.push_back(runtime);
    }
    for (const std::string& runtime : runtimes) {
      EnvironmentInfo info;
      info.pack_ref = pack_ref;
      info.runtime = runtime;
      info.path = settings_.runtime_envs_dir + "/" + pack_ref + "/" + runtime;
      auto marker = ReadMarker(pack_fd->get(), runtime);
      auto st = EnvStat(pack_fd->get(), runtime);
      if (!st) {
        info.state = EnvironmentState::kFailed;
      } else {
        info.state = marker && MarkerMatches(*marker, *st, pack_fd->get())
                         ? EnvironmentState::kReady
                         : EnvironmentState::kBroken;
        if (auto size = TreeSizeAt(pack_fd->get(), runtime)) info.size_bytes = *size;
      }
      if (marker) info.digest = marker->digest;
      if (auto failure = ReadFailureRecord(pack_fd->get(), runtime)) {
        info.failure = failure->error;
        info.failure_digest = failure->digest;
        info.failed_at = failure->failed_at;
      }
      struct stat used {};
      if (fstatat(pack_fd->get(), UsedName(runtime).c_str(), &used, AT_SYMLINK_NOFOLLOW) == 0) {
        info.last_used = used.st_mtim.tv_sec;
      }
      infos.push_back(std::move(info));
    }
  }
  return infos;
}

Result<void> EnvironmentManager::Remove(const std::string& pack_ref, const std::string& runtime) {
  if (!IsValidName(pack_ref)) return CheckEnvironmentNames(pack_ref, "x");
  if (!runtime.empty()) PV_TRY(CheckEnvironmentNames(pack_ref, runtime));
  auto root = OpenDirPath(settings_.runtime_envs_dir, false);
  if (!root && root.error().err != ENOENT) return root.error();
  auto pack_fd = root ? OpenDirBeneath(root->get(), pack_ref) : Result<unique_fd>(root.error());
  if (!pack_fd) {
    if (pack_fd.error().err != ENOENT) return pack_fd.error();
    return Error{ENOENT, "no environment", runtime.empty() ? pack_ref : pack_ref + "/" + runtime};
  }
  std::vector<std::string> runtimes;
  if (!runtime.empty()) {
    // Something to remove: the environment, its marker, a recorded failure or a replaced tree.
    struct stat st {};
    bool found = !EntriesWithPrefix(pack_fd->get(), ".old-" + runtime + "-").empty();
    for (const std::string& name : {runtime, MarkerName(runtime), FailedName(runtime)}) {
      found = found || fstatat(pack_fd->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    }
    if (!found) return Error{ENOENT, "no environment", pack_ref + "/" + runtime};
    runtimes.push_back(runtime);
  } else {
    for (const std::string& name : EntriesWithPrefix(pack_fd->get(), "")) {
      if (IsValidName(name)) runtimes.push_back(name);
      std::string failed = RuntimeOfFailedName(name);
      if (!failed.empty() &&
          std::find(runtimes.begin(), runtimes.end(), failed) == runtimes.end()) {
        runtimes.push_back(failed);
      }
    }
  }
  auto locks = OpenDirPath(settings_.state_dir + "/locks", true, 0700);
  if (!locks) return locks.error();
  for (const std::string& name : runtimes) {
    auto build = FileLock::Acquire(LockPath(pack_ref, name, "build"), std::chrono::seconds(5));
    if (!build) return build.error();
    auto in_use = FileLock::TryAcquire(LockPath(pack_ref, name, "inuse"));
    if (!in_use) {
      return Failure("remove environment", pack_ref + "/" + name, "in use by an execution");
    }
    if (unlinkat(pack_fd->get(), MarkerName(name).c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoError("remove", MarkerName(name));
    }
    PV_TRY(RemoveTreeAt(pack_fd->get(), name));
    unlinkat(pack_fd->get(), UsedName(name).c_str(), 0);
    if (unlinkat(pack_fd->get(), FailedName(name).c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoError("remove", FailedName(name));
    }
    for (const std::string& old : EntriesWithPrefix(pack_fd->get(), ".old-" + name + "-")) {
      PV_TRY(RemoveTreeAt(pack_fd->get(), old));
    }
  }
  if (runtime.empty() && EntriesWithPrefix(pack_fd->get(), "").empty()) {
    pack_fd->reset();
    return ReleasePackDisk(DiskSettings(), pack_ref);
  }
  return Ok{};
}

Result<void> EnvironmentManager::CleanUpStale() {
  auto root = OpenDirPath(settings_.runtime_envs_dir, false);
  if (!root) return root.error().err == ENOENT ? Result<void>(Ok{}) : Result<void>(root.error());
  auto locks = OpenDirPath(settings_.state_dir + "/locks", true, 0700);
  if (!locks) return locks.error();
  for (const std::string& pack_ref : EntriesWithPrefix(root->get(), "")) {
    if (!IsValidName(pack_ref)) continue;
    auto pack_fd = OpenDirBeneath(root->get(), pack_ref);
    if (!pack_fd) continue;
    for (const std::string& entry : EntriesWithPrefix(pack_fd->get(), ".")) {
      bool staging = entry.rfind(".staging-", 0) == 0;
      bool old = entry.rfind(".old-", 0) == 0;
      if (!staging && !old) continue;
      std::string rest = entry.substr(staging ? 9 : 5);
      std::string runtime = rest.substr(0, rest.rfind('-'));
      if (!IsValidName(runtime)) continue;
      auto lock = FileLock::TryAcquire(LockPath(pack_ref, runtime, staging ? "build" : "inuse"));
      if (lock) PV_TRY(RemoveTreeAt(pack_fd->get(), entry));
    }
  }
  return Ok{};
}

}  // namespace packvisor::envs
