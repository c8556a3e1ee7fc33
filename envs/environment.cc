#include "envs/environment.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "envs/digest.h"
#include "envs/pack_disk.h"
#include "envs/safe_fs.h"
#include "sandbox/launcher.h"
#include "sandbox/os/syscalls.h"

namespace packvisor::envs {
namespace {

constexpr size_t kMarkerMaxBytes = 4096;
constexpr size_t kOutputTailBytes = 16 << 10;
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

// Keeps the last bytes of a build step's output (stdout and stderr interleaved).
class OutputTail : public sandbox::OutputSink {
 public:
  void Consume(std::string_view chunk) override {
    tail_.append(chunk);
    if (tail_.size() > 2 * kOutputTailBytes) tail_.erase(0, tail_.size() - kOutputTailBytes);
  }
  // The last `count` non-empty lines, each cut to 200 characters, joined with " | ".
  std::string LastLines(size_t count) const {
    std::vector<std::string> lines;
    size_t end = tail_.size();
    while (end > 0 && lines.size() < count) {
      size_t start = tail_.rfind('\n', end - 1);
      size_t from = start == std::string::npos ? 0 : start + 1;
      std::string line = tail_.substr(from, end - from);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) lines.insert(lines.begin(), line.substr(0, 200));
      if (start == std::string::npos) break;
      end = start;
    }
    std::string joined;
    for (const std::string& line : lines) joined += (joined.empty() ? "" : " | ") + line;
    return joined;
  }
  const std::string& text() const { return tail_; }

 private:
  std::string tail_;
};

struct Marker {
  std::string digest;
  uint64_t ino = 0;
};

std::optional<Marker> ReadMarker(int pack_fd, const std::string& runtime) {
  auto text = ReadSmallFileAt(pack_fd, MarkerName(runtime), kMarkerMaxBytes);
  if (!text) return std::nullopt;
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object() || !json.contains("digest") || !json["digest"].is_string()) {
    return std::nullopt;
  }
  Marker marker;
  marker.digest = json["digest"].get<std::string>();
  marker.ino = json.value("ino", uint64_t{0});
  return marker;
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

std::string ExitDescription(const sandbox::SandboxResult& result) {
  switch (result.outcome) {
    case sandbox::Outcome::kExited:
      return "exited with code " + std::to_string(result.exit_code);
    case sandbox::Outcome::kSignaled:
      return "was killed by signal " + std::to_string(result.signal);
    case sandbox::Outcome::kTimedOut:
      return "timed out";
    case sandbox::Outcome::kCancelled:
      return "was cancelled";
    case sandbox::Outcome::kSetupFailed:
    case sandbox::Outcome::kExecFailed:
      return "could not start: " + result.FailureMessage();
  }
  return "failed";
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
  if (!marker) {
    info.state = st ? EnvironmentState::kBroken : EnvironmentState::kMissing;
    return info;
  }
  info.digest = marker->digest;
  if (!st || !MarkerMatches(*marker, *st, pack_fd->get())) {
    info.state = EnvironmentState::kBroken;
    return info;
  }
  auto digest = Digest(pack_dir, runtime);
  if (!digest) return digest.error();
  info.state = *digest == marker->digest ? EnvironmentState::kReady : EnvironmentState::kStale;
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
                                                    const RuntimeDefinition& runtime) {
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

  // Fast path: a stat and a small read.
  auto info = Inspect(pack_ref, pack_dir, runtime);
  if (!info) return info.error();
  if (info->state == EnvironmentState::kReady) {
    auto lease = take_lease(false);
    if (lease) {
      if (auto root = OpenDirPath(settings_.runtime_envs_dir, false)) {
        if (auto pack_fd = OpenDirBeneath(root->get(), pack_ref)) touch_used(pack_fd->get());
      }
    }
    return lease;
  }

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

  // One builder at a time; the others wait here and then find it ready.
  auto build_lock = FileLock::Acquire(LockPath(pack_ref, runtime.name, "build"),
                                      settings_.build_timeout + std::chrono::seconds(60));
  if (!build_lock) return build_lock.error();
  info = Inspect(pack_ref, pack_dir, runtime);
  if (!info) return info.error();
  bool built_now = false;
  if (info->state != EnvironmentState::kReady) {
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

  auto run_step = [&](const char* step, const std::vector<std::string>& command) -> Result<void> {
    auto argv = SubstituteArgv(command, values);
    if (!argv) return argv.error();
    sandbox::SandboxSpec spec = settings_.base_spec;
    spec.argv = *argv;
    spec.pack_dir = pack_dir;
    spec.env_dir = staging_path;
    spec.network =
        settings_.install_network ? sandbox::NetworkMode::kHost : sandbox::NetworkMode::kNone;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) {
      return Failure("environment build", label, std::string("step '") + step + "' timed out");
    }
    spec.timeout = left;
    spec.env.clear();
    spec.env.push_back("PATH=/env/bin:/usr/local/bin:/usr/bin:/bin");
    for (const auto& [name, value] : settings_.base_env) spec.env.push_back(name + "=" + value);
    for (const auto& [name, value] : settings_.install_env) spec.env.push_back(name + "=" + value);
    OutputTail output;
    sandbox::LaunchIo io;
    io.stdout_sink = &output;
    io.stderr_sink = &output;
    spdlog::info("environment {}: {} ({})", label, step, spec.argv[0]);
    ProgressLine progress(settings_.show_progress, "building environment " + label + ": " + step);
    auto result = sandbox::RunSandbox(spec, io);
    if (!result) return result.error();
    if (!output.text().empty()) {
      spdlog::debug("environment {}: {} output (last {} bytes):\n{}", label, step,
                    output.text().size(), output.text());
    }
    // An OOM kill fails the step even when a wrapper exited 0 after its child was killed: what
    // the killed process was writing is missing from the environment.
    if (result->oom_killed || result->outcome != sandbox::Outcome::kExited ||
        result->exit_code != 0) {
      std::string detail = std::string("step '") + step + "' " +
                           (result->oom_killed && spec.cgroup
                                ? "ran out of memory (limit " +
                                      std::to_string(spec.cgroup->memory_max_bytes >> 20) + " MiB)"
                                : ExitDescription(*result));
      std::string lines = output.LastLines(kFailureLines);
      if (!lines.empty()) detail += ": " + lines;
      return Failure("environment build", label, detail);
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

  auto size = TreeSizeAt(pack_fd, staging, settings_.max_size_bytes);
  if (!size) return size.error();
  if (*size > settings_.max_size_bytes) {
    return Failure("environment build", label,
                   "size exceeds envs.max_size_mb (" +
                       std::to_string(settings_.max_size_bytes >> 20) + " MiB)");
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
  nlohmann::json marker = {{"digest", digest},
                           {"ino", static_cast<uint64_t>(st->st_ino)},
                           {"runtime", runtime.name},
                           {"built_at", static_cast<int64_t>(time(nullptr))}};
  PV_TRY(WriteFileAtomicAt(pack_fd, MarkerName(runtime.name), marker.dump() + "\n"));
  cleanup.armed = false;
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
    for (const std::string& runtime : EntriesWithPrefix(pack_fd->get(), "")) {
      if (!IsValidName(runtime) || !EnvStat(pack_fd->get(), runtime)) continue;
      EnvironmentInfo info;
      info.pack_ref = pack_ref;
      info.runtime = runtime;
      info.path = settings_.runtime_envs_dir + "/" + pack_ref + "/" + runtime;
      auto marker = ReadMarker(pack_fd->get(), runtime);
      auto st = EnvStat(pack_fd->get(), runtime);
      info.state = marker && st && MarkerMatches(*marker, *st, pack_fd->get())
                       ? EnvironmentState::kReady
                       : EnvironmentState::kBroken;
      if (marker) info.digest = marker->digest;
      if (auto size = TreeSizeAt(pack_fd->get(), runtime)) info.size_bytes = *size;
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
  auto root = OpenDirPath(settings_.runtime_envs_dir, false);
  if (!root) return root.error();
  auto pack_fd = OpenDirBeneath(root->get(), pack_ref);
  if (!pack_fd) return pack_fd.error();
  std::vector<std::string> runtimes;
  if (!runtime.empty()) {
    PV_TRY(CheckEnvironmentNames(pack_ref, runtime));
    runtimes.push_back(runtime);
  } else {
    for (const std::string& name : EntriesWithPrefix(pack_fd->get(), "")) {
      if (IsValidName(name)) runtimes.push_back(name);
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
