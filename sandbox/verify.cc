#include "sandbox/verify.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <sstream>
#include <string_view>
#include <vector>

#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"
#include "sandbox/userns.h"

namespace packvisor::sandbox {
namespace {

std::string StatusField(const std::string& status, const std::string& name) {
  std::string key = "\n" + name + ":";
  size_t pos = status.find(key);
  if (pos == std::string::npos) {
    if (status.rfind(name + ":", 0) != 0) return {};
    pos = 0;
  } else {
    pos += 1;
  }
  size_t begin = pos + name.size() + 1;
  size_t end = status.find('\n', begin);
  std::string value = status.substr(begin, end == std::string::npos ? end : end - begin);
  size_t first = value.find_first_not_of(" \t");
  return first == std::string::npos ? std::string() : value.substr(first);
}

Result<void> Expect(bool condition, const std::string& what, const std::string& seen) {
  if (!condition) return Failure("sandbox verification", what, "found '" + seen + "'");
  return Ok{};
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, sep)) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

constexpr const char* kNamespaceKinds[] = {"user", "mnt", "pid", "ipc", "uts", "cgroup", "net"};
constexpr int kNamespaceKindCount = 7;

// The supervisor's own namespaces, one inode per kind of kNamespaceKinds (0: unreadable). Asked
// once per process: a supervisor never changes its namespaces.
const ino_t* OwnNamespaceInodes() {
  static const struct Inodes {
    ino_t inode[kNamespaceKindCount] = {};
    Inodes() {
      for (int i = 0; i < kNamespaceKindCount; ++i) {
        struct stat st {};
        std::string path = std::string("/proc/self/ns/") + kNamespaceKinds[i];
        if (stat(path.c_str(), &st) == 0) inode[i] = st.st_ino;
      }
    }
  } own;
  return own.inode;
}

}  // namespace

Result<void> CheckStatusText(const std::string& status, const IdMapping& ids) {
  std::string nnp = StatusField(status, "NoNewPrivs");
  PV_TRY(Expect(nnp == "1", "NoNewPrivs", nnp));
  std::string seccomp = StatusField(status, "Seccomp");
  PV_TRY(Expect(seccomp == "2", "Seccomp", seccomp));
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    std::string value = StatusField(status, cap);
    PV_TRY(Expect(value == "0000000000000000", cap, value));
  }
  std::string uid = std::to_string(ids.host_uid);
  std::string gid = std::to_string(ids.host_gid);
  std::string uids = StatusField(status, "Uid");
  for (const std::string& part : Split(uids, '\t')) PV_TRY(Expect(part == uid, "Uid", uids));
  std::string gids = StatusField(status, "Gid");
  for (const std::string& part : Split(gids, '\t')) PV_TRY(Expect(part == gid, "Gid", gids));
  std::string groups = StatusField(status, "Groups");
  PV_TRY(Expect(groups.empty(), "Groups", groups));
  return Ok{};
}

SpeculationControl HostSpeculationControl() {
  // System-wide and fixed at boot: asked once per process, not on every launch.
  static const SpeculationControl control = [] {
    auto controllable = [](unsigned long which) {
      int state = prctl(PR_GET_SPECULATION_CTRL, which, 0, 0, 0);
      return state >= 0 && (state & PR_SPEC_PRCTL) != 0;
    };
    return SpeculationControl{controllable(PR_SPEC_STORE_BYPASS),
                              controllable(PR_SPEC_INDIRECT_BRANCH)};
  }();
  return control;
}

Result<void> CheckSpeculationText(const std::string& status, SpeculationControl control) {
  // The strings are those of fs/proc/array.c (task_seccomp).
  std::string ssb = StatusField(status, "Speculation_Store_Bypass");
  if (control.store_bypass) {
    PV_TRY(Expect(ssb == "thread force mitigated", "Speculation_Store_Bypass forced",
                  ssb.empty() ? "no such line" : ssb));
  } else {
    PV_TRY(Expect(ssb != "thread vulnerable" && ssb != "thread mitigated",
                  "Speculation_Store_Bypass forced", ssb));
  }
  std::string ib = StatusField(status, "SpeculationIndirectBranch");
  if (control.indirect_branch) {
    PV_TRY(Expect(ib == "conditional force disabled", "SpeculationIndirectBranch forced",
                  ib.empty() ? "no such line" : ib));
  } else {
    PV_TRY(Expect(ib != "conditional enabled" && ib != "conditional disabled",
                  "SpeculationIndirectBranch forced", ib));
  }
  return Ok{};
}

Result<void> CheckLimitsText(const std::string& limits, const ResourceLimits& expected) {
  auto check = [&](const std::string& name, uint64_t value) -> Result<void> {
    size_t pos = limits.find("\n" + name);
    if (pos == std::string::npos)
      return Failure("sandbox verification", "limit " + name, "missing");
    std::vector<std::string> fields = Split(
        limits.substr(pos + 1 + name.size(), limits.find('\n', pos + 1) - pos - 1 - name.size()),
        ' ');
    std::string want = std::to_string(value);
    if (fields.size() < 2 || fields[0] != want || fields[1] != want) {
      std::string seen = fields.size() < 2 ? std::string("?") : fields[0] + " " + fields[1];
      return Failure("sandbox verification", "limit " + name,
                     "found '" + seen + "' (soft hard), want " + want + " " + want);
    }
    return Ok{};
  };
  PV_TRY(check("Max core file size", 0));
  PV_TRY(check("Max open files", expected.nofile));
  PV_TRY(check("Max processes", expected.nproc));
  PV_TRY(check("Max file size", expected.fsize_bytes));
  return Ok{};
}

Result<void> CheckMountinfoText(const std::string& mountinfo, bool has_pack, bool has_env) {
  bool saw_pack = false, saw_env = false, saw_root = false;
  for (const std::string& line : Split(mountinfo, '\n')) {
    // id parent major:minor root mount_point options [optional...] - fstype source super_options
    std::vector<std::string> fields = Split(line, ' ');
    if (fields.size() < 6) return Failure("sandbox verification", "mountinfo", "malformed line");
    const std::string& mount_point = fields[4];
    std::vector<std::string> options = Split(fields[5], ',');
    auto has = [&](const char* option) {
      for (const std::string& o : options) {
        if (o == option) return true;
      }
      return false;
    };
    PV_TRY(Expect(has("nosuid"), "nosuid on " + mount_point, fields[5]));
    if (mount_point.rfind("/oldroot", 0) == 0) {
      return Failure("sandbox verification", "mountinfo", "old root still mounted");
    }
    if (mount_point == "/") {
      saw_root = true;
      PV_TRY(Expect(has("ro"), "read-only /", fields[5]));
    } else if (mount_point == kPackMountPoint) {
      saw_pack = true;
      PV_TRY(Expect(has("ro") && has("nodev"), "ro,nodev on /pack", fields[5]));
    } else if (mount_point == kEnvMountPoint) {
      saw_env = true;
      PV_TRY(Expect(has("rw") && has("nodev"), "rw,nodev on /env", fields[5]));
    } else if (mount_point == "/usr" || mount_point == "/tmp" || mount_point == "/dev/shm") {
      PV_TRY(Expect(has("nodev"), "nodev on " + mount_point, fields[5]));
    }
  }
  PV_TRY(Expect(saw_root, "mount of /", "none"));
  PV_TRY(Expect(saw_pack == has_pack, "mount of /pack", saw_pack ? "present" : "absent"));
  PV_TRY(Expect(saw_env == has_env, "mount of /env", saw_env ? "present" : "absent"));
  return Ok{};
}

Result<void> VerifyConfinedAction(pid_t init_pid, const SandboxSpec& spec,
                                  const std::string& cgroup_suffix, const StdioIdentity* stdio) {
  // As the owner of the sandbox's user namespace, this thread may read the action's entries that
  // need ptrace access (ns/, fdinfo/, cwd) without CAP_SYS_PTRACE; the action made itself dumpable
  // for this (RunAction in child.cc).
  auto owner = ScopedNamespaceOwner::Become(spec.ids);
  if (!owner) return owner.error();
  std::string init_proc = "/proc/" + std::to_string(init_pid);
  auto children = os::ReadFile(init_proc + "/task/" + std::to_string(init_pid) + "/children");
  if (!children) return children.error();
  std::vector<std::string> pids = Split(*children, ' ');
  if (pids.size() != 1 || pids[0] == "\n") {
    return Failure("sandbox verification", "action process", "expected one child of init");
  }
  // Every later read goes through this pinned directory: if the action died and its pid were
  // reused, the reads fail (ESRCH) instead of describing another process.
  std::string proc = "/proc/" + pids[0];
  unique_fd proc_dir(open(proc.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!proc_dir) return ErrnoError("open", proc);
  int at = proc_dir.get();
  auto status = os::ReadFileAt(at, "status", proc);
  if (!status) return status.error();
  PV_TRY(CheckStatusText(*status, spec.ids));
  PV_TRY(CheckSpeculationText(*status, HostSpeculationControl()));

  // setsid() took effect: the action is in init's session (init is the leader) and has no
  // controlling terminal. Fields after the ")" of the command name: state ppid pgrp session tty_nr.
  auto stat = os::ReadFileAt(at, "stat", proc);
  if (!stat) return stat.error();
  size_t close_paren = stat->rfind(')');
  std::vector<std::string> stat_fields =
      Split(close_paren == std::string::npos ? std::string() : stat->substr(close_paren + 2), ' ');
  if (stat_fields.size() < 5) return Failure("sandbox verification", proc + "/stat", "malformed");
  PV_TRY(Expect(stat_fields[3] == std::to_string(init_pid), "session leader", stat_fields[3]));
  PV_TRY(Expect(stat_fields[4] == "0", "no controlling terminal", stat_fields[4]));

  if (!cgroup_suffix.empty()) {
    auto cgroups = os::ReadFileAt(at, "cgroup", proc);
    if (!cgroups) return cgroups.error();
    int matched = 0;
    for (const std::string& line : Split(*cgroups, '\n')) {
      size_t colon = line.find(':');
      size_t second = line.find(':', colon + 1);
      if (colon == std::string::npos || second == std::string::npos) continue;
      std::string controllers = "," + line.substr(colon + 1, second - colon - 1) + ",";
      bool relevant = line.rfind("0::", 0) == 0 ||
                      controllers.find(",memory,") != std::string::npos ||
                      controllers.find(",pids,") != std::string::npos ||
                      controllers.find(",cpu,") != std::string::npos;
      if (!relevant) continue;
      std::string path = line.substr(second + 1);
      bool inside = path.size() >= cgroup_suffix.size() &&
                    path.compare(path.size() - cgroup_suffix.size(), cgroup_suffix.size(),
                                 cgroup_suffix) == 0;
      if (line.rfind("0::", 0) == 0 && !inside) continue;  // v1 host: the unified line is unused
      PV_TRY(Expect(inside, "cgroup membership", line));
      ++matched;
    }
    PV_TRY(Expect(matched >= 1, "cgroup membership", "no memory/pids/cpu cgroup"));
  }

  auto limits = os::ReadFileAt(at, "limits", proc);
  if (!limits) return limits.error();
  PV_TRY(CheckLimitsText(*limits, spec.limits));

  auto mountinfo = os::ReadFileAt(at, "mountinfo", proc);
  if (!mountinfo) return mountinfo.error();
  PV_TRY(CheckMountinfoText(*mountinfo, !spec.pack_dir.empty(), !spec.env_dir.empty()));

  const ino_t* own = OwnNamespaceInodes();
  for (int i = 0; i < kNamespaceKindCount; ++i) {
    const char* kind = kNamespaceKinds[i];
    bool is_net = std::string_view(kind) == "net";
    if (is_net && spec.network != NetworkMode::kNone) continue;
    std::string name = std::string("ns/") + kind;
    struct stat inside {};
    if (fstatat(at, name.c_str(), &inside, 0) != 0) return ErrnoError("stat", proc + "/" + name);
    if (own[i] == 0) {
      return Failure("sandbox verification", std::string("namespace ") + kind,
                     "the supervisor's own is unreadable");
    }
    if (inside.st_ino == own[i]) {
      return Failure("sandbox verification", std::string("namespace ") + kind, "shared with host");
    }
  }
  if (stdio != nullptr) {
    for (int fd = 0; fd < 3; ++fd) {
      struct stat st {};
      std::string name = "fd/" + std::to_string(fd);
      if (fstatat(at, name.c_str(), &st, 0) != 0) return ErrnoError("stat", proc + "/" + name);
      if (st.st_dev != stdio->dev[fd] || st.st_ino != stdio->ino[fd]) {
        return Failure("sandbox verification", "fd " + std::to_string(fd),
                       "is not the launcher's pipe");
      }
    }
  }
  // Only 0, 1 and 2 may survive exec: every other descriptor must be close-on-exec.
  std::string fd_dir = proc + "/fdinfo";
  unique_fd fdinfo(openat(at, "fdinfo", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fdinfo) return ErrnoError("open", fd_dir);
  DIR* dir = fdopendir(fdinfo.get());
  if (dir == nullptr) return ErrnoError("opendir", fd_dir);
  int fdinfo_fd = fdinfo.release();  // owned by dir from here on
  Result<void> fds_ok = Ok{};
  while (struct dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == ".." || name == "0" || name == "1" || name == "2") continue;
    auto info = os::ReadFileAt(fdinfo_fd, name.c_str(), fd_dir);
    if (!info) continue;  // closed meanwhile
    std::string flags = StatusField(*info, "flags");
    unsigned long value = std::strtoul(flags.c_str(), nullptr, 8);
    if ((value & O_CLOEXEC) == 0) {
      fds_ok = Failure("sandbox verification", "fd " + name, "would survive exec");
      break;
    }
  }
  closedir(dir);
  PV_TRY(fds_ok);
  char cwd[PATH_MAX];
  ssize_t n = readlinkat(at, "cwd", cwd, sizeof(cwd) - 1);
  if (n < 0) return ErrnoError("readlink", proc + "/cwd");
  std::string expected = spec.pack_dir.empty() && spec.working_dir == kPackMountPoint
                             ? std::string("/")
                             : spec.working_dir;
  PV_TRY(Expect(std::string(cwd, static_cast<size_t>(n)) == expected, "cwd",
                std::string(cwd, static_cast<size_t>(n))));
  return Ok{};
}

}  // namespace packvisor::sandbox
