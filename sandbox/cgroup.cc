#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <sstream>
#include <thread>

#include "sandbox/os/syscalls.h"

namespace packvisor::sandbox {
namespace {

constexpr uint64_t kCpuPeriodUs = 100000;

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

Result<void> Write(const std::string& path, const std::string& value) {
  return os::WriteFile(path, value);
}

Result<void> MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError("mkdir", path);
  return Ok{};
}

std::string ReadOr(const std::string& path, const std::string& fallback = {}) {
  auto text = os::ReadFile(path);
  return text ? *text : fallback;
}

// The value of "key N" in a flat keyed file (cpu.stat, memory.events, memory.oom_control).
uint64_t KeyedValue(const std::string& text, const std::string& key) {
  for (const std::string& line : Split(text, '\n')) {
    if (line.rfind(key + " ", 0) == 0)
      return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return 0;
}

uint64_t NumberIn(const std::string& path) {
  return std::strtoull(ReadOr(path, "0").c_str(), nullptr, 10);
}

std::vector<pid_t> Members(const std::string& dir) {
  std::vector<pid_t> pids;
  for (const std::string& line : Split(ReadOr(dir + "/cgroup.procs"), '\n')) {
    if (!line.empty()) pids.push_back(static_cast<pid_t>(std::strtol(line.c_str(), nullptr, 10)));
  }
  return pids;
}

// SIGKILL to a member of `dir`, through a pidfd: the pid is re-checked as a member after the
// pidfd pins it, so a pid reused by an unrelated process is never signalled.
void KillMember(const std::string& dir, pid_t pid) {
  unique_fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return;
  for (pid_t member : Members(dir)) {
    if (member == pid) {
      os::PidfdSendSignal(pidfd.get(), SIGKILL);
      return;
    }
  }
}

// rmdir, retrying while the kernel finishes tearing the last processes down.
void RemoveDir(const std::string& dir) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY) return;
    for (pid_t pid : Members(dir)) KillMember(dir, pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void KillV1(const std::string& freezer_dir, const std::vector<std::string>& dirs) {
  // Groups already empty (the sandbox died meanwhile): nothing to freeze.
  bool empty = true;
  for (const std::string& dir : dirs) empty = empty && Members(dir).empty();
  if (empty) return;
  bool frozen = false;
  if (!freezer_dir.empty() && Write(freezer_dir + "/freezer.state", "FROZEN").ok()) {
    // Frozen processes cannot fork away from the kill.
    for (int i = 0; i < 100; ++i) {
      if (ReadOr(freezer_dir + "/freezer.state").rfind("FROZEN", 0) == 0) {
        frozen = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  for (int round = 0; round < (frozen ? 1 : 20); ++round) {
    bool any = false;
    for (const std::string& dir : dirs) {
      for (pid_t pid : Members(dir)) {
        KillMember(dir, pid);
        any = true;
      }
    }
    if (!any) break;
  }
  if (!freezer_dir.empty()) (void)Write(freezer_dir + "/freezer.state", "THAWED");
}

// Removes one execution cgroup's directories in reverse creation order, so that the first
// hierarchy's directory, the one the stale scan lists, goes last. The common case: the sandbox is
// gone and every group is empty, so rmdir alone succeeds and nothing is read. From the first busy
// group on, `kill_members` kills what is left and the rest is removed with retries.
void RemoveGroupDirs(const std::vector<std::string>& dirs,
                     const std::function<void()>& kill_members) {
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    if (rmdir(it->c_str()) == 0 || errno == ENOENT) continue;
    kill_members();
    for (; it != dirs.rend(); ++it) RemoveDir(*it);
    return;
  }
}

}  // namespace

const char* CgroupBackendName(CgroupBackend backend) {
  switch (backend) {
    case CgroupBackend::kNone:
      return "none";
    case CgroupBackend::kV2:
      return "v2";
    case CgroupBackend::kV1:
      return "v1";
  }
  return "none";
}

namespace {

// A cgroup hierarchy's mount: where it is mounted, and which directory of the hierarchy is its
// root (mountinfo's 4th field). A container runtime mounts the container's own group as the
// root ("/libpod_parent/libpod-<id>"), while /proc/self/cgroup names the group from the
// hierarchy's real root (without a cgroup namespace) or from the namespace's root (with one).
struct CgroupMount {
  std::string mount_point;
  std::string root = "/";
};

// The directory of the hierarchy group `group` ("/a/b", or "" for the root) under `mount`: the
// part of the group below the mount's root. A group outside the mount's root cannot be reached
// through this mount: "" (as for a missing hierarchy).
std::string DirOfGroup(const CgroupMount& mount, const std::string& group) {
  if (mount.mount_point.empty()) return {};
  if (mount.root == "/") return mount.mount_point + group;
  if (group == mount.root) return mount.mount_point;
  if (group.size() > mount.root.size() && group.compare(0, mount.root.size(), mount.root) == 0 &&
      group[mount.root.size()] == '/') {
    return mount.mount_point + group.substr(mount.root.size());
  }
  // A cgroup namespace rooted at the container's group shows the group as "/" or below it while
  // the mount root is the namespace's root too ("/"): handled above. Anything else: the
  // supervisor's group is not visible through this mount.
  return {};
}

}  // namespace

CgroupLayout CgroupLayout::Parse(const std::string& mountinfo, const std::string& self_cgroup,
                                 const std::string& v2_controllers) {
  CgroupLayout layout;
  CgroupMount v2_mount, memory_mount, pids_mount, cpu_mount, cpuacct_mount, freezer_mount;
  for (const std::string& line : Split(mountinfo, '\n')) {
    std::vector<std::string> fields = Split(line, ' ');
    size_t dash = 0;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (fields.size() < 5 || dash + 3 > fields.size()) continue;
    CgroupMount mount{fields[4], fields[3]};
    const std::string& fstype = fields[dash + 1];
    if (fstype == "cgroup2" && v2_mount.mount_point.empty()) v2_mount = mount;
    if (fstype != "cgroup") continue;
    for (const std::string& option : Split(fields[dash + 3], ',')) {
      if (option == "memory") memory_mount = mount;
      if (option == "pids") pids_mount = mount;
      if (option == "cpu") cpu_mount = mount;
      if (option == "cpuacct") cpuacct_mount = mount;
      if (option == "freezer") freezer_mount = mount;
    }
  }
  std::string v2_path, memory_path, pids_path, cpu_path, cpuacct_path, freezer_path;
  for (const std::string& line : Split(self_cgroup, '\n')) {
    std::vector<std::string> fields = Split(line, ':');
    if (fields.size() < 3) continue;
    std::string path = fields[2] == "/" ? std::string() : fields[2];
    if (fields[0] == "0" && fields[1].empty()) v2_path = path;
    for (const std::string& controller : Split(fields[1], ',')) {
      if (controller == "memory") memory_path = path;
      if (controller == "pids") pids_path = path;
      if (controller == "cpu") cpu_path = path;
      if (controller == "cpuacct") cpuacct_path = path;
      if (controller == "freezer") freezer_path = path;
    }
  }
  std::vector<std::string> controllers = Split(v2_controllers, ' ');
  auto has = [&](const char* name) {
    for (std::string c : controllers) {
      while (!c.empty() && (c.back() == '\n')) c.pop_back();
      if (c == name) return true;
    }
    return false;
  };
  std::string v2_dir = DirOfGroup(v2_mount, v2_path);
  if (!v2_dir.empty() && has("memory") && has("pids") && has("cpu")) {
    layout.backend = CgroupBackend::kV2;
    layout.v2_dir = v2_dir;
    return layout;
  }
  layout.v1_memory = DirOfGroup(memory_mount, memory_path);
  layout.v1_pids = DirOfGroup(pids_mount, pids_path);
  layout.v1_cpu = DirOfGroup(cpu_mount, cpu_path);
  layout.v1_cpuacct = DirOfGroup(cpuacct_mount, cpuacct_path);
  layout.v1_freezer = DirOfGroup(freezer_mount, freezer_path);
  if (!layout.v1_memory.empty() && !layout.v1_pids.empty() && !layout.v1_cpu.empty()) {
    layout.backend = CgroupBackend::kV1;
    return layout;
  }
  layout.why_none = v2_dir.empty() ? "no cgroup2 mount with memory, pids and cpu"
                                   : "cgroup2 at " + v2_dir + " lacks memory/pids/cpu";
  layout.why_none += ", and no cgroup v1 memory, pids and cpu hierarchies";
  return layout;
}

const CgroupLayout& CgroupLayout::Probe() {
  static const CgroupLayout layout = [] {
    std::string mountinfo = ReadOr("/proc/self/mountinfo");
    std::string self = ReadOr("/proc/self/cgroup");
    // The controllers the supervisor's own v2 cgroup offers its children.
    CgroupMount v2_mount;
    for (const std::string& line : Split(mountinfo, '\n')) {
      if (line.find(" - cgroup2 ") != std::string::npos) {
        std::vector<std::string> fields = Split(line, ' ');
        v2_mount = {fields[4], fields[3]};
        break;
      }
    }
    std::string v2_own;
    for (const std::string& line : Split(self, '\n')) {
      if (line.rfind("0::", 0) == 0) v2_own = line.substr(3) == "/" ? "" : line.substr(3);
    }
    std::string v2_dir = DirOfGroup(v2_mount, v2_own);
    std::string controllers =
        v2_dir.empty() ? std::string() : ReadOr(v2_dir + "/cgroup.controllers");
    return Parse(mountinfo, self, controllers);
  }();
  return layout;
}

std::vector<CgroupFileWrite> V2LimitWrites(const CgroupLimits& limits) {
  std::string quota = std::to_string(limits.cpu_max_percent * kCpuPeriodUs / 100);
  return {{"memory.max", std::to_string(limits.memory_max_bytes), false},
          {"memory.swap.max", "0", true},
          {"pids.max", std::to_string(limits.pids_max), false},
          {"cpu.max", quota + " " + std::to_string(kCpuPeriodUs), false}};
}

CgroupUsage ParseV2Usage(const std::string& cpu_stat, const std::string& memory_peak,
                         const std::string& memory_events) {
  CgroupUsage usage;
  usage.cpu_ms = static_cast<int64_t>(KeyedValue(cpu_stat, "usage_usec") / 1000);
  usage.memory_peak_kb =
      static_cast<int64_t>(std::strtoull(memory_peak.c_str(), nullptr, 10) / 1024);
  usage.oom_kills = KeyedValue(memory_events, "oom_kill");
  return usage;
}

Result<ExecutionCgroup> ExecutionCgroup::Create(const CgroupLayout& layout,
                                                const std::string& parent, const std::string& name,
                                                const CgroupLimits& limits) {
  if (layout.backend == CgroupBackend::kNone) {
    return Failure("cgroup", "", "no usable cgroup back end: " + layout.why_none);
  }
  if (parent.empty() || parent.find('/') != std::string::npos || name.empty() ||
      name.find('/') != std::string::npos) {
    return Failure("cgroup", parent + "/" + name, "names must be single path components");
  }
  ExecutionCgroup group;
  group.backend_ = layout.backend;
  group.suffix_ = "/" + parent + "/" + name;
  if (layout.backend == CgroupBackend::kV2) {
    std::string own = layout.v2_dir;
    std::string base = own + "/" + parent;
    PV_TRY(MakeDir(base));
    // Controllers must be enabled on the way down (the v2 "no internal processes" rule applies
    // to the supervisor's own cgroup: it fails with EBUSY where the supervisor's cgroup has
    // other members and is not the root; delegate a cgroup to packvisor then).
    PV_TRY(Write(own + "/cgroup.subtree_control", "+memory +pids +cpu"));
    PV_TRY(Write(base + "/cgroup.subtree_control", "+memory +pids +cpu"));
    std::string dir = base + "/" + name;
    if (mkdir(dir.c_str(), 0755) != 0) return ErrnoError("mkdir", dir);
    group.dirs_.push_back(dir);
    group.v2_dir_ = dir;
    PV_TRY(group.ApplyLimits(limits));
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", dir);
    group.v2_fd_.reset(fd);
    return group;
  }
  auto create = [&](const std::string& own) -> Result<std::string> {
    if (own.empty()) return std::string();
    std::string dir = own + "/" + parent + "/" + name;
    // The parent directory exists after the first execution: try the leaf first.
    int made = mkdir(dir.c_str(), 0755);
    if (made != 0 && errno == ENOENT) {
      PV_TRY(MakeDir(own + "/" + parent));
      made = mkdir(dir.c_str(), 0755);
    }
    if (made != 0) return ErrnoError("mkdir", dir);
    group.dirs_.push_back(dir);
    return dir;
  };
  for (auto [own, target] :
       {std::pair{&layout.v1_memory, &group.memory_dir_},
        std::pair{&layout.v1_pids, &group.pids_dir_}, std::pair{&layout.v1_cpu, &group.cpu_dir_},
        std::pair{&layout.v1_cpuacct, &group.cpuacct_dir_},
        std::pair{&layout.v1_freezer, &group.freezer_dir_}}) {
    // cpu and cpuacct are often one hierarchy: create once.
    if (!own->empty() && own == &layout.v1_cpuacct && layout.v1_cpuacct == layout.v1_cpu) {
      *target = group.cpu_dir_;
      continue;
    }
    auto dir = create(*own);
    if (!dir) return dir.error();
    *target = *dir;
  }
  PV_TRY(group.ApplyLimits(limits));
  return group;
}

Result<void> ExecutionCgroup::ApplyLimits(const CgroupLimits& limits) const {
  if (backend_ == CgroupBackend::kV2) {
    for (const CgroupFileWrite& write : V2LimitWrites(limits)) {
      if (write.optional && !Exists(v2_dir_ + "/" + write.file)) continue;
      PV_TRY(Write(v2_dir_ + "/" + write.file, write.value));
    }
    return Ok{};
  }
  std::string memory_bytes = std::to_string(limits.memory_max_bytes);
  std::string quota = std::to_string(limits.cpu_max_percent * kCpuPeriodUs / 100);
  // Swap 0: memory+swap limited to the same amount (where swap accounting exists). The kernel
  // keeps memory <= memory+swap at every write: raising needs memsw first, lowering memory first.
  std::string memsw = memory_dir_ + "/memory.memsw.limit_in_bytes";
  bool has_memsw = Exists(memsw);
  if (has_memsw && NumberIn(memsw) < limits.memory_max_bytes) PV_TRY(Write(memsw, memory_bytes));
  PV_TRY(Write(memory_dir_ + "/memory.limit_in_bytes", memory_bytes));
  if (has_memsw) PV_TRY(Write(memsw, memory_bytes));
  PV_TRY(Write(pids_dir_ + "/pids.max", std::to_string(limits.pids_max)));
  PV_TRY(Write(cpu_dir_ + "/cpu.cfs_period_us", std::to_string(kCpuPeriodUs)));
  PV_TRY(Write(cpu_dir_ + "/cpu.cfs_quota_us", quota));
  return Ok{};
}

ExecutionCgroup::~ExecutionCgroup() { Remove(); }

void ExecutionCgroup::Remove() {
  if (removed_ || dirs_.empty()) return;
  removed_ = true;
  RemoveGroupDirs(dirs_, [this] { KillAll(); });
}

Result<std::vector<unique_fd>> ExecutionCgroup::OpenJoinFds() const {
  std::vector<unique_fd> fds;
  if (backend_ != CgroupBackend::kV1) return fds;
  if (dirs_.size() > static_cast<size_t>(kMaxCgroupJoinFds)) {
    return Failure("cgroup", suffix_, "more hierarchies than a sandbox can join");
  }
  for (const std::string& dir : dirs_) {
    std::string tasks = dir + "/tasks";
    unique_fd fd(open(tasks.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return ErrnoError("open", tasks);
    fds.push_back(std::move(fd));
  }
  return fds;
}

void ExecutionCgroup::KillAll() const {
  if (backend_ == CgroupBackend::kV2) {
    if (!Write(v2_dir_ + "/cgroup.kill", "1").ok()) {
      for (pid_t pid : Members(v2_dir_)) KillMember(v2_dir_, pid);
    }
    return;
  }
  KillV1(freezer_dir_, dirs_);
}

CgroupUsage ExecutionCgroup::ReadUsage() const {
  CgroupUsage usage;
  if (backend_ == CgroupBackend::kV2) {
    return ParseV2Usage(ReadOr(v2_dir_ + "/cpu.stat"), ReadOr(v2_dir_ + "/memory.peak", "0"),
                        ReadOr(v2_dir_ + "/memory.events"));
  }
  if (!cpuacct_dir_.empty()) {
    usage.cpu_ms = static_cast<int64_t>(NumberIn(cpuacct_dir_ + "/cpuacct.usage") / 1000000);
  }
  usage.memory_peak_kb =
      static_cast<int64_t>(NumberIn(memory_dir_ + "/memory.max_usage_in_bytes") / 1024);
  usage.oom_kills = KeyedValue(ReadOr(memory_dir_ + "/memory.oom_control"), "oom_kill");
  return usage;
}

Result<void> MoveSelfToLeafCgroup(const CgroupLayout& layout, const std::string& leaf) {
  if (layout.backend != CgroupBackend::kV2) return Ok{};
  if (leaf.empty() || leaf == "." || leaf == ".." || leaf.find('/') != std::string::npos) {
    return Failure("cgroup", leaf, "a leaf is one path component");
  }
  std::string dir = layout.v2_dir + "/" + leaf;
  PV_TRY(MakeDir(dir));
  // Writing to cgroup.procs moves every thread of the process.
  return Write(dir + "/cgroup.procs", std::to_string(getpid()));
}

int RemoveStaleCgroups(const CgroupLayout& layout, const std::string& parent,
                       std::vector<StaleCgroup>* report) {
  // Every execution cgroup is made in the hierarchies in this order and removed in the reverse
  // one (RemoveGroupDirs), so its directory in the first hierarchy exists whenever any of its
  // directories does: listing that one hierarchy finds every leftover.
  std::vector<std::string> roots;
  if (layout.backend == CgroupBackend::kV2) {
    roots.push_back(layout.v2_dir + "/" + parent);
  } else if (layout.backend == CgroupBackend::kV1) {
    for (const std::string* own : {&layout.v1_memory, &layout.v1_pids, &layout.v1_cpu,
                                   &layout.v1_cpuacct, &layout.v1_freezer}) {
      if (own->empty() || (own == &layout.v1_cpuacct && *own == layout.v1_cpu)) continue;
      roots.push_back(*own + "/" + parent);
    }
  }
  if (roots.empty()) return 0;
  DIR* dir = opendir(roots.front().c_str());
  if (dir == nullptr) return 0;
  std::vector<std::string> names;
  while (struct dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (entry->d_type == DT_DIR && name != "." && name != "..") names.push_back(name);
  }
  closedir(dir);
  int removed = 0;
  std::string freezer = layout.v1_freezer.empty() ? "" : layout.v1_freezer + "/" + parent;
  for (const std::string& name : names) {
    pid_t owner = static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10));
    if (owner <= 0 || name.find('-') == std::string::npos) continue;
    if (kill(owner, 0) == 0 || errno != ESRCH) continue;  // its supervisor still runs
    std::vector<std::string> paths;
    for (const std::string& root : roots) paths.push_back(root + "/" + name);
    StaleCgroup stale;
    stale.path = paths.front();
    std::vector<pid_t> members;
    for (const std::string& path : paths) {
      for (pid_t pid : Members(path)) {
        if (std::find(members.begin(), members.end(), pid) == members.end()) members.push_back(pid);
      }
    }
    stale.processes_killed = members.size();
    RemoveGroupDirs(paths, [&] {
      if (layout.backend == CgroupBackend::kV2) {
        (void)Write(paths.front() + "/cgroup.kill", "1");
      } else {
        KillV1(freezer.empty() ? std::string() : freezer + "/" + name, paths);
      }
    });
    struct stat st {};
    stale.removed = std::none_of(paths.begin(), paths.end(), [&](const std::string& path) {
      return lstat(path.c_str(), &st) == 0;
    });
    if (report) report->push_back(std::move(stale));
    ++removed;
  }
  return removed;
}

}  // namespace packvisor::sandbox
