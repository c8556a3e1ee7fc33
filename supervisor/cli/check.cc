#include "supervisor/cli/check.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>

#include "sandbox/launcher.h"
#include "sandbox/os/error.h"
#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"
#include "sandbox/seccomp_policy.h"
#include "supervisor/config/sandbox_defaults.h"

namespace packvisor {

// ---------------------------------------------------------------------------------------------
// Pure parts.

std::string UnescapeMountField(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      std::string_view digits = field.substr(i + 1, 3);
      bool octal = digits.size() == 3 && std::all_of(digits.begin(), digits.end(),
                                                     [](char c) { return c >= '0' && c <= '7'; });
      if (octal) {
        out.push_back(
            static_cast<char>((digits[0] - '0') * 64 + (digits[1] - '0') * 8 + (digits[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

namespace {

std::vector<std::string_view> SplitWords(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\n') ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

std::vector<std::string_view> SplitOn(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

}  // namespace

std::vector<MountInfoEntry> ParseMountInfo(std::string_view text) {
  std::vector<MountInfoEntry> entries;
  for (std::string_view line : SplitOn(text, '\n')) {
    std::vector<std::string_view> fields = SplitWords(line);
    // id parent major:minor root mount_point options [optional...] - fstype source super_options
    auto separator = std::find(fields.begin(), fields.end(), "-");
    if (separator == fields.end()) continue;
    size_t before = static_cast<size_t>(separator - fields.begin());
    size_t after = fields.size() - before - 1;
    if (before < 6 || after < 2) continue;
    MountInfoEntry entry;
    entry.root = UnescapeMountField(fields[3]);
    entry.mount_point = UnescapeMountField(fields[4]);
    entry.mount_options = UnescapeMountField(fields[5]);
    entry.fs_type = UnescapeMountField(separator[1]);
    entry.source = UnescapeMountField(separator[2]);
    if (after >= 3) entry.super_options = UnescapeMountField(separator[3]);
    entries.push_back(std::move(entry));
  }
  return entries;
}

CgroupMounts FindCgroupMounts(const std::vector<MountInfoEntry>& mounts) {
  // Mount options of a cgroup v1 hierarchy that are not controller names.
  static const std::set<std::string_view> kNotControllers = {
      "rw",         "ro",           "noprefix", "clone_children", "xattr", "cpuset_v2_mode",
      "nsdelegate", "favordynmods", "none"};
  CgroupMounts found;
  for (const MountInfoEntry& mount : mounts) {
    if (mount.fs_type == "cgroup2") {
      if (!found.v2_mount_point) found.v2_mount_point = mount.mount_point;
    } else if (mount.fs_type == "cgroup") {
      for (std::string_view option : SplitOn(mount.super_options, ',')) {
        if (option.empty() || kNotControllers.count(option) ||
            option.find('=') != std::string_view::npos) {
          continue;
        }
        found.v1_controllers.emplace(std::string(option), mount.mount_point);
      }
    }
  }
  return found;
}

std::vector<std::string> ProcOvermounts(const std::vector<MountInfoEntry>& mounts) {
  std::vector<std::string> found;
  for (const MountInfoEntry& mount : mounts) {
    if (mount.mount_point.rfind("/proc/", 0) != 0) continue;
    if (mount.mount_point == "/proc/sys/fs/binfmt_misc") continue;
    found.push_back(mount.mount_point);
  }
  return found;
}

std::vector<std::string> ReadOnlyMounts(const std::vector<MountInfoEntry>& mounts,
                                        const std::vector<std::string>& mount_points) {
  std::vector<std::string> found;
  for (const std::string& point : mount_points) {
    for (const MountInfoEntry& mount : mounts) {
      if (mount.mount_point != point) continue;
      // The last mount at a point is the visible one.
      bool read_only = false;
      for (std::string_view option : SplitOn(mount.mount_options, ',')) {
        if (option == "ro") read_only = true;
      }
      if (read_only && std::find(found.begin(), found.end(), point) == found.end()) {
        found.push_back(point);
      } else if (!read_only) {
        found.erase(std::remove(found.begin(), found.end(), point), found.end());
      }
    }
  }
  return found;
}

std::vector<std::string> ParseCgroupControllers(std::string_view text) {
  std::vector<std::string> controllers;
  for (std::string_view word : SplitWords(text)) controllers.emplace_back(word);
  return controllers;
}

bool HasWord(std::string_view text, std::string_view word) {
  std::vector<std::string_view> words = SplitWords(text);
  return std::find(words.begin(), words.end(), word) != words.end();
}

std::optional<long long> ParseSysctlInt(std::string_view text) {
  std::vector<std::string_view> words = SplitWords(text);
  if (words.size() != 1) return std::nullopt;
  std::string value(words[0]);
  errno = 0;
  char* end = nullptr;
  long long parsed = std::strtoll(value.c_str(), &end, 10);
  if (errno != 0 || end == value.c_str() || *end != '\0') return std::nullopt;
  return parsed;
}

const char* CheckStatusName(CheckStatus status) {
  switch (status) {
    case CheckStatus::kOk:
      return "ok";
    case CheckStatus::kMissing:
      return "MISSING";
    case CheckStatus::kWarn:
      return "warn";
    case CheckStatus::kInfo:
      return "info";
  }
  return "?";
}

std::string FormatCheckTable(const std::vector<CheckRow>& rows) {
  const std::string kFeature = "feature";
  const std::string kStatus = "status";
  const std::string kMeaning = "what it means";
  size_t feature_width = kFeature.size();
  size_t status_width = kStatus.size();
  for (const CheckRow& row : rows) {
    feature_width = std::max(feature_width, row.feature.size());
    status_width = std::max(status_width, std::strlen(CheckStatusName(row.status)));
  }
  auto line = [&](const std::string& feature, const std::string& status,
                  const std::string& meaning) {
    std::string out = feature;
    out.append(feature_width - feature.size(), ' ');
    out += " | ";
    out += status;
    out.append(status_width - status.size(), ' ');
    out += " | ";
    out += meaning;
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
    return out;
  };
  std::string table = line(kFeature, kStatus, kMeaning);
  table += std::string(feature_width, '-') + "-|-" + std::string(status_width, '-') + "-|-" +
           std::string(kMeaning.size(), '-') + "\n";
  for (const CheckRow& row : rows) {
    table += line(row.feature, CheckStatusName(row.status), row.meaning);
  }
  return table;
}

int CheckExitCode(const std::vector<CheckRow>& rows) {
  for (const CheckRow& row : rows) {
    if (row.required && row.status != CheckStatus::kOk) return 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Probes.

namespace {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name ? name : "errno " + std::to_string(err)) + " (" + std::strerror(err) +
         ")";
}

std::optional<std::string> ReadOptional(const std::string& path) {
  auto content = os::ReadFile(path);
  if (!content) return std::nullopt;
  return std::move(*content);
}

// The first word of a sysctl file, for display.
std::string TrimmedValue(const std::string& text) {
  std::vector<std::string_view> words = SplitWords(text);
  return words.empty() ? "?" : std::string(words[0]);
}

// True when a sysctl file exists and holds 0 (a namespace count limit that disables the kind).
bool SysctlIsZero(const std::string& path) {
  auto text = ReadOptional(path);
  return text && ParseSysctlInt(*text).value_or(-1) == 0;
}

// Exit code of a probe child that could not tell what went wrong.
constexpr int kProbeUnexpected = 254;

// Runs `body` in a forked child that only makes async-signal-safe calls and _exits with the
// errno of the failed step (0 on success). Returns that code; an Error when fork/wait failed or
// the child died of a signal.
template <typename Body>
Result<int> InChild(Body body) {
  pid_t pid = fork();
  if (pid < 0) return ErrnoError("fork");
  if (pid == 0) _exit(body());
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("waitpid");
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return Failure("probe", "",
                 std::string("child killed by signal ") + std::to_string(WTERMSIG(status)));
}

// The cause of an EPERM from a namespace or mount call: CAP_SYS_ADMIN when packvisor lacks it (a
// container started without it also gets a seccomp profile that refuses these calls with EPERM,
// which is a consequence, not the cause), else `otherwise`.
std::string EpermCause(const CapabilitySets& caps, const std::string& otherwise) {
  std::string missing = MissingCapabilityNames(caps, {CAP_SYS_ADMIN});
  if (missing.empty()) return otherwise;
  return "packvisor lacks " + missing +
         " (without it a container's default seccomp profile also refuses this call)";
}

// Explains why unshare of a namespace failed.
std::string UnshareFailure(int err, const std::string& limit_file, const CapabilitySets& caps) {
  switch (err) {
    case EPERM:
      return "unshare: " + ErrnoName(err) + "; " +
             EpermCause(caps,
                        "denied by a security module, a container's seccomp filter or a "
                        "sysctl");
    case EINVAL:
      return "unshare: " + ErrnoName(err) + "; the kernel was built without this namespace";
    case ENOSPC:
      return "unshare: " + ErrnoName(err) + "; the limit in " + limit_file +
             " is reached (0 disables it)";
    case EUSERS:
      return "unshare: " + ErrnoName(err) + "; user namespaces nested too deeply";
    default:
      return "unshare: " + ErrnoName(err);
  }
}

void ProbeUserNamespaces(const CapabilitySets& caps, std::vector<CheckRow>& rows) {
  std::string notes;
  auto max = ReadOptional("/proc/sys/user/max_user_namespaces");
  bool max_is_zero = SysctlIsZero("/proc/sys/user/max_user_namespaces");
  if (max) notes += "user.max_user_namespaces=" + TrimmedValue(*max);
  auto clone = ReadOptional("/proc/sys/kernel/unprivileged_userns_clone");
  if (clone) {
    std::optional<long long> value = ParseSysctlInt(*clone);
    notes += std::string(notes.empty() ? "" : ", ") +
             "kernel.unprivileged_userns_clone=" + (value ? std::to_string(*value) : "?");
    if (value && *value == 0) notes += " (only root may create them; packvisor runs as root)";
  }
  auto apparmor = ReadOptional("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  if (apparmor) {
    std::optional<long long> value = ParseSysctlInt(*apparmor);
    notes +=
        std::string(notes.empty() ? "" : ", ") +
        "kernel.apparmor_restrict_unprivileged_userns=" + (value ? std::to_string(*value) : "?");
  }
  auto trial = InChild([] { return unshare(CLONE_NEWUSER) == 0 ? 0 : errno; });
  CheckRow row{"user namespaces", CheckStatus::kOk, "", true};
  if (!trial) {
    row.status = CheckStatus::kMissing;
    row.meaning = "trial failed: " + trial.error().message();
  } else if (*trial != 0) {
    row.status = CheckStatus::kMissing;
    row.meaning = "fork+unshare(CLONE_NEWUSER) failed: " +
                  UnshareFailure(*trial, "/proc/sys/user/max_user_namespaces", caps);
  } else {
    row.meaning = "fork+unshare(CLONE_NEWUSER) works; the action's ids map to sandbox.uid_range";
  }
  if (max_is_zero) row.meaning += "; user.max_user_namespaces=0 disables them";
  if (!notes.empty()) row.meaning += " [" + notes + "]";
  rows.push_back(std::move(row));
}

struct NamespaceKind {
  const char* name;  // as in /proc/PID/ns and /proc/sys/user/max_*_namespaces
  int flag;
  const char* purpose;
};

constexpr NamespaceKind kNamespaceKinds[] = {
    {"mnt", CLONE_NEWNS, "private root filesystem (tmpfs, read-only binds, pivot_root)"},
    {"pid", CLONE_NEWPID, "own process tree with packvisor's init as PID 1"},
    {"ipc", CLONE_NEWIPC, "no shared SysV IPC or POSIX message queues with the host"},
    {"uts", CLONE_NEWUTS, "own hostname"},
    {"net", CLONE_NEWNET, "no network but loopback (unless a pack is allowed the host's)"},
    {"cgroup", CLONE_NEWCGROUP, "the host's cgroup paths are hidden"},
};

// Exit code of the pid probe when the grandchild is not PID 1 of the new namespace.
constexpr int kNotPidOne = 253;

void ProbeNamespaceKinds(const CapabilitySets& caps, std::vector<CheckRow>& rows) {
  for (const NamespaceKind& kind : kNamespaceKinds) {
    std::string limit_file = std::string("/proc/sys/user/max_") + kind.name + "_namespaces";
    int flag = kind.flag;
    auto trial = InChild([flag] {
      if (unshare(CLONE_NEWUSER | flag) != 0) return errno;
      if (flag != CLONE_NEWPID) return 0;
      // The namespace applies to children: check the first one really is PID 1.
      pid_t child = fork();
      if (child < 0) return errno;
      if (child == 0) _exit(getpid() == 1 ? 0 : kNotPidOne);
      int status = 0;
      if (waitpid(child, &status, 0) < 0) return errno;
      return WIFEXITED(status) ? WEXITSTATUS(status) : kProbeUnexpected;
    });
    CheckRow row{std::string(kind.name) + " namespace", CheckStatus::kOk, "", true};
    if (!trial) {
      row.status = CheckStatus::kMissing;
      row.meaning = "trial failed: " + trial.error().message();
    } else if (*trial == kNotPidOne) {
      row.status = CheckStatus::kMissing;
      row.meaning = "unshare worked but the first child is not PID 1";
    } else if (*trial == kProbeUnexpected) {
      row.status = CheckStatus::kMissing;
      row.meaning = "the probe's child died unexpectedly";
    } else if (*trial != 0) {
      row.status = CheckStatus::kMissing;
      row.meaning = UnshareFailure(*trial, limit_file, caps);
    } else {
      row.meaning = std::string("works: ") + kind.purpose;
    }
    if (SysctlIsZero(limit_file)) {
      row.meaning += std::string("; user.max_") + kind.name + "_namespaces=0 disables it";
    }
    rows.push_back(std::move(row));
  }
}

void ProbeSeccomp(std::vector<CheckRow>& rows) {
  {
    CheckRow row{"seccomp", CheckStatus::kOk, "", true};
    int mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    if (mode < 0) {
      row.status = CheckStatus::kMissing;
      row.meaning =
          "prctl(PR_GET_SECCOMP): " + ErrnoName(errno) + "; kernel without CONFIG_SECCOMP";
    } else if (mode == 0) {
      row.meaning = "available; packvisor itself is not under a filter";
    } else {
      row.meaning = "available; packvisor itself already runs under seccomp mode " +
                    std::to_string(mode) + " (a container?); the sandbox's filter stacks on it";
    }
    rows.push_back(std::move(row));
  }
  {
    CheckRow row{"seccomp actions", CheckStatus::kOk, "", true};
    auto actions = ReadOptional("/proc/sys/kernel/seccomp/actions_avail");
    if (!actions) {
      row.status = CheckStatus::kMissing;
      row.meaning = "/proc/sys/kernel/seccomp/actions_avail unreadable; no CONFIG_SECCOMP_FILTER";
    } else {
      std::vector<std::string> missing;
      for (const char* action : {"kill_process", "errno"}) {
        if (!HasWord(*actions, action)) missing.emplace_back(action);
      }
      if (missing.empty()) {
        row.meaning =
            "kill_process and errno available: denied calls fail with EPERM, "
            "foreign architectures kill the process";
      } else {
        row.status = CheckStatus::kMissing;
        row.meaning = "missing action(s):";
        for (const std::string& action : missing) row.meaning += " " + action;
      }
    }
    rows.push_back(std::move(row));
  }
  {
    CheckRow row{"seccomp policy", CheckStatus::kOk, "", true};
    auto program = sandbox::CompileSeccompPolicy({});
    if (!program) {
      row.status = CheckStatus::kMissing;
      row.meaning = "libseccomp could not compile the policy: " + program.error().message();
    } else {
      sock_fprog fprog = program->AsFprog();
      auto trial = InChild([&fprog] {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
        return sandbox::LoadSeccompProgram(fprog);
      });
      if (!trial) {
        row.status = CheckStatus::kMissing;
        row.meaning = "trial failed: " + trial.error().message();
      } else if (*trial != 0) {
        row.status = CheckStatus::kMissing;
        row.meaning = "loading the compiled filter failed: " + ErrnoName(*trial);
      } else {
        row.meaning = "the sandbox's filter (" + std::to_string(program->instructions.size()) +
                      " BPF instructions) compiles and loads";
      }
    }
    rows.push_back(std::move(row));
  }
}

// A syscall probed with arguments the kernel rejects: any errno but ENOSYS (and EPERM, which a
// container's seccomp filter returns for calls it does not know) means the call exists.
CheckRow ProbeBadArgsSyscall(const std::string& feature, long result, int err,
                             const std::string& purpose, const CapabilitySets& caps) {
  CheckRow row{feature, CheckStatus::kOk, "", true};
  if (result >= 0 || (err != ENOSYS && err != EPERM)) {
    row.meaning = "present: " + purpose;
  } else if (err == ENOSYS) {
    row.status = CheckStatus::kMissing;
    row.meaning = "ENOSYS: the kernel is too old; needed for " + purpose;
  } else {
    row.status = CheckStatus::kMissing;
    row.meaning = geteuid() == 0
                      ? "EPERM even with invalid arguments: " +
                            EpermCause(caps, "blocked by a seccomp filter on the host")
                      : "EPERM: packvisor is not root (or a seccomp filter blocks the call)";
  }
  return row;
}

void ProbeMountApi(const CapabilitySets& caps, std::vector<CheckRow>& rows) {
  long result = syscall(SYS_mount_setattr, -1, nullptr, 0, nullptr, 0);
  int err = errno;
  rows.push_back(ProbeBadArgsSyscall("mount_setattr", result, err,
                                     "read-only/nosuid/nodev on whole bind trees (Linux 5.12+)",
                                     caps));
  result = syscall(SYS_open_tree, -1, nullptr, ~0U);
  err = errno;
  if (result >= 0) unique_fd(static_cast<int>(result)).reset();
  CheckRow open_tree = ProbeBadArgsSyscall("open_tree", result, err,
                                           "detached bind trees of the pack and env (5.2+)", caps);
  result = syscall(SYS_move_mount, -1, nullptr, -1, nullptr, ~0U);
  err = errno;
  CheckRow move_mount =
      ProbeBadArgsSyscall("move_mount", result, err, "attaching detached trees (5.2+)", caps);
  if (move_mount.status != CheckStatus::kOk) {
    open_tree.status = CheckStatus::kMissing;
    open_tree.meaning = "move_mount: " + move_mount.meaning;
  }
  open_tree.feature = "open_tree/move_mount";
  rows.push_back(std::move(open_tree));
}

void ProbePidfd(std::vector<CheckRow>& rows) {
  CheckRow row{"pidfd", CheckStatus::kOk, "", true};
  long fd = syscall(SYS_pidfd_open, getpid(), 0);
  if (fd < 0) {
    int err = errno;
    row.status = CheckStatus::kMissing;
    row.meaning = "pidfd_open: " + ErrnoName(err) + (err == ENOSYS ? "; needs Linux 5.3+" : "");
  } else {
    unique_fd pidfd(static_cast<int>(fd));
    if (os::PidfdSendSignal(pidfd.get(), 0) != 0) {
      row.status = CheckStatus::kMissing;
      row.meaning = "pidfd_send_signal: " + ErrnoName(errno);
    } else {
      row.meaning = "pidfd_open and pidfd_send_signal work: race-free kill of the sandbox";
    }
  }
  rows.push_back(std::move(row));
}

void ProbeClone3(std::vector<CheckRow>& rows) {
  CheckRow row{"clone3", CheckStatus::kOk, "", true};
  int pidfd_raw = -1;
  pid_t pid = os::Clone3(
      {.flags = CLONE_PIDFD | CLONE_CLEAR_SIGHAND, .pidfd = &pidfd_raw, .exit_signal = SIGCHLD});
  if (pid == 0) _exit(0);
  if (pid < 0) {
    int err = errno;
    row.status = CheckStatus::kMissing;
    row.meaning = "clone3(CLONE_PIDFD|CLONE_CLEAR_SIGHAND): " + ErrnoName(err);
    if (err == ENOSYS) row.meaning += "; needs Linux 5.3+";
    if (err == EINVAL) row.meaning += "; CLONE_CLEAR_SIGHAND needs Linux 5.5+";
    rows.push_back(std::move(row));
    return;
  }
  unique_fd pidfd(pidfd_raw);
  siginfo_t info{};
  long waited;
  do {
    waited = syscall(SYS_waitid, P_PIDFD, pidfd.get(), &info, WEXITED, nullptr);
  } while (waited < 0 && errno == EINTR);
  if (waited < 0) {
    int err = errno;
    waitpid(pid, nullptr, 0);
    row.status = CheckStatus::kMissing;
    row.meaning = "waitid(P_PIDFD): " + ErrnoName(err) + "; needs Linux 5.4+";
  } else if (info.si_code != CLD_EXITED || info.si_status != 0) {
    row.status = CheckStatus::kMissing;
    row.meaning = "the clone3 child did not exit cleanly";
  } else {
    row.meaning = "clone3 with CLONE_PIDFD|CLONE_CLEAR_SIGHAND and waitid(P_PIDFD) work";
  }
  rows.push_back(std::move(row));
}

void ProbeCloseRange(std::vector<CheckRow>& rows) {
  // No capability governs close_range: an EPERM is a seccomp filter that does not know the call.
  const CapabilitySets caps{~0ull, ~0ull};
  // first > last is rejected with EINVAL by a kernel that has the call.
  int result = os::CloseRange(1, 0, 0);
  int err = errno;
  CheckRow row =
      ProbeBadArgsSyscall("close_range", result, err, "only fds 0, 1, 2 reach the action", caps);
  if (row.status == CheckStatus::kOk) {
    // A range beyond every open fd: a no-op when CLOSE_RANGE_CLOEXEC is known (5.11+).
    if (os::CloseRange(~0U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      row.status = CheckStatus::kMissing;
      row.meaning = "CLOSE_RANGE_CLOEXEC: " + ErrnoName(errno) + "; needs Linux 5.11+";
    } else {
      row.meaning += " (CLOSE_RANGE_CLOEXEC supported)";
    }
  }
  rows.push_back(std::move(row));
}

void ProbeOpenat2(std::vector<CheckRow>& rows) {
  CheckRow row{"openat2", CheckStatus::kOk, "", true};
  int fd = os::Openat2(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0,
                       RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (fd < 0) {
    int err = errno;
    row.status = CheckStatus::kMissing;
    row.meaning = "openat2: " + ErrnoName(err) + (err == ENOSYS ? "; needs Linux 5.6+" : "");
  } else {
    unique_fd owned(fd);
    row.meaning = "works: bind sources are opened without following symlinks";
  }
  rows.push_back(std::move(row));
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : " ") + name;
  return out.empty() ? "(none)" : out;
}

constexpr const char* kLimitControllers[] = {"memory", "pids", "cpu"};

void ProbeCgroups(std::vector<CheckRow>& rows) {
  auto mountinfo = os::ReadFile("/proc/self/mountinfo");
  if (!mountinfo) {
    rows.push_back({"cgroups", CheckStatus::kWarn,
                    "cannot read /proc/self/mountinfo: " + mountinfo.error().message(), false});
    return;
  }
  CgroupMounts mounts = FindCgroupMounts(ParseMountInfo(*mountinfo));

  bool v2_complete = false;
  CheckRow v2{"cgroup v2", CheckStatus::kWarn, "", false};
  if (!mounts.v2_mount_point) {
    v2.meaning = "no cgroup2 mount";
  } else {
    std::string path = *mounts.v2_mount_point + "/cgroup.controllers";
    auto text = ReadOptional(path);
    std::vector<std::string> controllers =
        text ? ParseCgroupControllers(*text) : std::vector<std::string>{};
    std::vector<std::string> present;
    std::vector<std::string> absent;
    for (const char* name : kLimitControllers) {
      bool has = std::find(controllers.begin(), controllers.end(), name) != controllers.end();
      (has ? present : absent).emplace_back(name);
    }
    v2_complete = absent.empty();
    v2.meaning = "mounted at " + *mounts.v2_mount_point +
                 "; controllers: " + (text ? JoinNames(controllers) : "(cannot read " + path + ")");
    if (v2_complete) {
      v2.status = CheckStatus::kOk;
      v2.meaning += "; memory, pids and cpu limits will use v2 (preferred)";
    } else {
      v2.meaning +=
          "; lacks " + JoinNames(absent) + (present.empty() ? " (bound to v1: hybrid mode)" : "");
    }
  }
  v2.meaning += " [used later for limits]";
  rows.push_back(std::move(v2));

  CheckRow v1{"cgroup v1", CheckStatus::kInfo, "", false};
  std::vector<std::string> found;
  std::vector<std::string> absent;
  for (const char* name : kLimitControllers) {
    auto it = mounts.v1_controllers.find(name);
    if (it == mounts.v1_controllers.end()) {
      absent.emplace_back(name);
    } else {
      found.push_back(std::string(name) + " at " + it->second);
    }
  }
  if (found.empty()) {
    v1.meaning = "no v1 hierarchy with memory, pids or cpu";
  } else {
    v1.meaning.clear();
    for (const std::string& item : found) v1.meaning += (v1.meaning.empty() ? "" : ", ") + item;
    if (!absent.empty()) v1.meaning += "; no " + JoinNames(absent);
  }
  if (v2_complete) {
    v1.meaning += "; not needed (v2 has everything)";
  } else if (absent.empty()) {
    v1.status = CheckStatus::kOk;
    v1.meaning += "; the v1 fallback has memory, pids and cpu";
  } else {
    v1.status = CheckStatus::kWarn;
    v1.meaning += "; some limits will be unavailable";
  }
  v1.meaning += " [used later for limits]";
  rows.push_back(std::move(v1));
}

// What a container runtime hides or freezes by default and the sandbox needs: the whole of /proc
// (for the sandbox's own proc mount) and write access to the cgroup hierarchies. Each row names
// the paths and the runtime flag that gives them back (docs/containers.md).
void ProbeContainerMounts(const Config& config, std::vector<CheckRow>& rows) {
  auto mountinfo = os::ReadFile("/proc/self/mountinfo");
  if (!mountinfo) return;  // ProbeCgroups already said so
  std::vector<MountInfoEntry> mounts = ParseMountInfo(*mountinfo);

  CheckRow proc{"/proc fully visible", CheckStatus::kOk, "", true};
  std::vector<std::string> covered = ProcOvermounts(mounts);
  if (covered.empty()) {
    proc.meaning = "no mount covers part of /proc: the sandbox may mount a proc of its own";
  } else {
    proc.status = CheckStatus::kMissing;
    proc.meaning = "masked or read-only paths cover /proc (" + JoinNames(covered) +
                   "): the kernel refuses a new proc mount in a user namespace while any is "
                   "there, so no sandbox can start. In a container: podman --security-opt "
                   "unmask=/proc/*, docker --security-opt systempaths=unconfined, Kubernetes "
                   "securityContext.procMount: Unmasked";
  }
  rows.push_back(std::move(proc));

  CgroupMounts cgroups = FindCgroupMounts(mounts);
  std::vector<std::string> points;
  for (const char* name : kLimitControllers) {
    auto it = cgroups.v1_controllers.find(name);
    if (it != cgroups.v1_controllers.end() &&
        std::find(points.begin(), points.end(), it->second) == points.end()) {
      points.push_back(it->second);
    }
  }
  if (cgroups.v2_mount_point) points.push_back(*cgroups.v2_mount_point);
  std::vector<std::string> read_only = ReadOnlyMounts(mounts, points);
  if (!read_only.empty()) {
    rows.push_back(
        {"cgroup write access", CheckStatus::kMissing,
         "mounted read-only: " + JoinNames(read_only) +
             " (a container's default): executions cannot get cgroups of their own" +
             (config.sandbox.allow_rlimits_only
                  ? "; sandbox.allow_rlimits_only = true: they run bounded by rlimits only"
                  : "; in a container: -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns=host "
                    "(or sandbox.allow_rlimits_only = true: no per-execution limits)"),
         !config.sandbox.allow_rlimits_only});
  }
}

struct SysctlProbe {
  const char* name;
  const char* path;
  bool (*weakens)(long long value);  // true when the host setting weakens something
  const char* weak_meaning;
  const char* safe_meaning;
};

constexpr SysctlProbe kSysctls[] = {
    {"kernel.unprivileged_bpf_disabled", "/proc/sys/kernel/unprivileged_bpf_disabled",
     [](long long v) { return v == 0; },
     "unprivileged bpf() allowed on the host (the sandbox's seccomp filter denies bpf)",
     "unprivileged bpf() disabled"},
    {"vm.unprivileged_userfaultfd", "/proc/sys/vm/unprivileged_userfaultfd",
     [](long long v) { return v != 0; },
     "unprivileged userfaultfd allowed (the sandbox denies userfaultfd)",
     "userfaultfd limited to privileged users (the sandbox denies it anyway)"},
    {"kernel.perf_event_paranoid", "/proc/sys/kernel/perf_event_paranoid",
     [](long long v) { return v < 2; },
     "unprivileged users may profile the kernel (the sandbox denies perf_event_open)",
     "perf events restricted for unprivileged users"},
    {"kernel.yama.ptrace_scope", "/proc/sys/kernel/yama/ptrace_scope",
     [](long long v) { return v < 1; },
     "any process may ptrace its peers (the sandbox denies ptrace)",
     "ptrace restricted to descendants or more"},
    {"dev.tty.legacy_tiocsti", "/proc/sys/dev/tty/legacy_tiocsti",
     [](long long v) { return v != 0; },
     "TIOCSTI input injection allowed on the host (the sandbox denies TIOCSTI and gives the "
     "action no terminal)",
     "TIOCSTI terminal input injection disabled"},
    {"kernel.io_uring_disabled", "/proc/sys/kernel/io_uring_disabled",
     [](long long v) { return v == 0; },
     "io_uring enabled for everyone (the sandbox denies io_uring_* unless a runtime opts in)",
     "io_uring restricted or disabled"},
    {"fs.protected_hardlinks", "/proc/sys/fs/protected_hardlinks",
     [](long long v) { return v == 0; },
     "hard links to files one does not own are allowed (env trees could link host files)",
     "hard links restricted to files one owns"},
    {"fs.protected_symlinks", "/proc/sys/fs/protected_symlinks", [](long long v) { return v == 0; },
     "symlinks in sticky world-writable dirs are followed for everyone",
     "symlinks in sticky world-writable dirs protected"},
    {"fs.inotify.max_user_instances", "/proc/sys/fs/inotify/max_user_instances",
     [](long long v) { return v < 128; },
     "fewer than 128 inotify instances per user: all concurrent actions of one pack share this "
     "budget (each sandbox's user namespace is owned by its pack's host id)",
     "per-pack inotify budget (each sandbox's user namespace is owned by its pack's host id)"},
};

void ProbeCorePatternAndSwap(std::vector<CheckRow>& rows) {
  auto pattern = ReadOptional("/proc/sys/kernel/core_pattern");
  CheckRow core{"kernel.core_pattern", CheckStatus::kInfo, "", false};
  if (pattern) {
    std::string value = *pattern;
    while (!value.empty() && value.back() == '\n') value.pop_back();
    bool piped = !value.empty() && value[0] == '|';
    core.status = piped ? CheckStatus::kWarn : CheckStatus::kInfo;
    core.meaning = "= " + value +
                   (piped ? ": core dumps go to a root helper (the sandbox sets "
                            "RLIMIT_CORE 0, so actions produce none)"
                          : ": the sandbox sets RLIMIT_CORE 0 (no core dumps)");
  } else {
    core.meaning = "not readable";
  }
  rows.push_back(std::move(core));
  auto meminfo = ReadOptional("/proc/meminfo");
  CheckRow swap{"swap", CheckStatus::kInfo, "", false};
  size_t at = meminfo ? meminfo->find("SwapTotal:") : std::string::npos;
  long long kb = at == std::string::npos ? 0 : std::atoll(meminfo->c_str() + at + 10);
  swap.meaning =
      kb > 0 ? std::to_string(kb / 1024) + " MiB of swap: memory limits include swap (swap limit 0)"
             : "no swap";
  rows.push_back(std::move(swap));
}

void ProbeSysctls(std::vector<CheckRow>& rows) {
  ProbeCorePatternAndSwap(rows);
  for (const SysctlProbe& probe : kSysctls) {
    CheckRow row{probe.name, CheckStatus::kInfo, "", false};
    auto text = ReadOptional(probe.path);
    std::optional<long long> value = text ? ParseSysctlInt(*text) : std::nullopt;
    if (!text) {
      row.meaning = "not present on this kernel";
    } else if (!value) {
      row.meaning = "unreadable value";
    } else {
      bool weak = probe.weakens(*value);
      row.status = weak ? CheckStatus::kWarn : CheckStatus::kInfo;
      row.meaning =
          "= " + std::to_string(*value) + ": " + (weak ? probe.weak_meaning : probe.safe_meaning);
    }
    rows.push_back(std::move(row));
  }
}

void ProbePrivileges(std::vector<CheckRow>& rows) {
  if (geteuid() == 0) {
    rows.push_back({"running as root", CheckStatus::kOk,
                    "yes: packvisor can write id maps to sandbox.uid_range", false});
  } else {
    rows.push_back({"running as root", CheckStatus::kWarn,
                    "no (euid " + std::to_string(geteuid()) +
                        "): packvisor is a root supervisor; the trial below will likely fail",
                    false});
  }
}

void ProbeSandboxTrial(const Config& config, const CapabilitySets& caps,
                       std::vector<CheckRow>& rows) {
  CheckRow row{"sandbox trial", CheckStatus::kMissing, "", true};
  sandbox::SandboxSpec spec = BaseSandboxSpec(config);
  spec.argv = {"/bin/true"};
  spec.env = SandboxEnvironment(config, "", {});
  spec.timeout = std::min<std::chrono::milliseconds>(spec.timeout, std::chrono::seconds(30));
  if (auto valid = spec.Validate(); !valid) {
    row.meaning = "the default sandbox spec is invalid: " + valid.error().message();
    rows.push_back(std::move(row));
    return;
  }
  sandbox::StringSink out;
  sandbox::StringSink err;
  sandbox::LaunchIo io;
  io.stdout_sink = &out;
  io.stderr_sink = &err;
  auto launched = sandbox::RunSandbox(spec, io);
  if (!launched) {
    row.meaning = "/bin/true could not be launched: " + launched.error().message();
  } else if (launched->outcome == sandbox::Outcome::kExited && launched->exit_code == 0) {
    row.status = CheckStatus::kOk;
    row.meaning = "/bin/true ran in the default sandbox and exited 0 (" +
                  std::to_string(launched->duration.count()) + " ms)";
  } else {
    row.meaning = std::string("/bin/true: ") + sandbox::OutcomeName(launched->outcome);
    if (launched->outcome == sandbox::Outcome::kExited) {
      row.meaning += " with code " + std::to_string(launched->exit_code);
    } else if (launched->outcome == sandbox::Outcome::kSignaled) {
      row.meaning += " by signal " + std::to_string(launched->signal);
    } else {
      std::string failure = launched->FailureMessage();
      if (!failure.empty()) row.meaning += ": " + failure;
    }
    std::string stderr_text = err.data.substr(0, 200);
    while (!stderr_text.empty() && stderr_text.back() == '\n') stderr_text.pop_back();
    for (char& c : stderr_text) {
      if (c == '\n') c = ' ';
    }
    if (!stderr_text.empty()) row.meaning += "; stderr: " + stderr_text;
  }
  if (row.status != CheckStatus::kOk) {
    std::vector<int> needed;
    for (const NeededCapability& cap : NeededCapabilities()) needed.push_back(cap.number);
    std::string missing = MissingCapabilityNames(caps, needed);
    if (!missing.empty()) row.meaning += "; packvisor lacks " + missing;
  }
  rows.push_back(std::move(row));
}

}  // namespace

int RunCheckCommand(const Config& config) {
  std::printf("configuration: %s\n\n", config.source.c_str());
  std::vector<CheckRow> rows;
  ProbePrivileges(rows);
  // Unknown (no /proc/self/status): every probe then speaks of what it saw, not of capabilities.
  CapabilitySets caps{~0ull, ~0ull};
  if (auto own = ReadOwnCapabilities()) {
    caps = *own;
    for (CheckRow& row : JudgeCapabilities(caps)) rows.push_back(std::move(row));
  } else {
    rows.push_back({"capabilities", CheckStatus::kWarn,
                    "cannot read CapEff/CapBnd in /proc/self/status", false});
  }
  for (CheckRow& row : CheckConfiguredDirectories(config)) rows.push_back(std::move(row));
  ProbeUserNamespaces(caps, rows);
  ProbeNamespaceKinds(caps, rows);
  ProbeSeccomp(rows);
  ProbeMountApi(caps, rows);
  ProbePidfd(rows);
  ProbeClone3(rows);
  ProbeCloseRange(rows);
  ProbeOpenat2(rows);
  ProbeCgroups(rows);
  ProbeContainerMounts(config, rows);
  ProbePackDisks(config, caps, rows);
  ProbeSysctls(rows);
  ProbeSandboxTrial(config, caps, rows);

  std::string table = FormatCheckTable(rows);
  std::fwrite(table.data(), 1, table.size(), stdout);
  int code = CheckExitCode(rows);
  if (code == 0) {
    std::puts("\nresult: the default sandbox can run on this host");
  } else {
    std::string missing;
    for (const CheckRow& row : rows) {
      if (row.required && row.status != CheckStatus::kOk) {
        missing += (missing.empty() ? "" : ", ") + row.feature;
      }
    }
    std::printf("\nresult: the default sandbox cannot run on this host (missing: %s)\n",
                missing.c_str());
  }
  std::fflush(stdout);
  return code;
}

}  // namespace packvisor
