#include "sandbox/mounts.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <optional>

#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor::sandbox {
namespace {

constexpr uint64_t kReadOnlyAttrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

// /etc entries the sandbox sees from the host, where present. Small ones are copied into the root
// tmpfs (a write is far cheaper than a bind mount); the two large trees are bound read-only.
struct EtcEntry {
  const char* name;
  bool bind;
};
constexpr EtcEntry kEtcEntries[] = {
    {"ld.so.cache", false}, {"ld.so.conf", false}, {"ld.so.conf.d", false},
    {"alternatives", true}, {"ssl", true},         {"ca-certificates", false},
    {"localtime", false},   {"timezone", false},   {"nsswitch.conf", false},
    {"hosts", false},       {"host.conf", false},  {"gai.conf", false},
    {"protocols", false},   {"services", false},   {"python3", false},
    {"python3.11", false},  {"npmrc", false},
};
constexpr const char* kRootEntries[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                        "/lib32", "/lib64", "/libx32"};
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom"};
// Parts of a fresh proc that reach host-wide kernel state; covered read-only (as bubblewrap does).
constexpr const char* kProcReadOnly[] = {"sys", "sysrq-trigger", "irq", "bus", "fs"};

Result<HostLayout::Entry> ProbeEntry(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return ErrnoError("stat", path);
  HostLayout::Entry entry(path, HostLayout::Entry::kFile);
  if (S_ISDIR(st.st_mode)) {
    entry.type = HostLayout::Entry::kDir;
  } else if (S_ISLNK(st.st_mode)) {
    entry.type = HostLayout::Entry::kSymlink;
    char target[PATH_MAX];
    ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    if (n < 0) return ErrnoError("readlink", path);
    entry.symlink_target.assign(target, static_cast<size_t>(n));
  }
  return entry;
}

constexpr size_t kMaxCopiedFile = 256 << 10;
constexpr size_t kMaxCopiedDirEntries = 64;

// Reads a small regular file for copying; nullopt when it is too large or unreadable.
std::optional<std::string> SmallFileContent(const std::string& path) {
  auto content = os::ReadFile(path);
  if (!content || content->size() > kMaxCopiedFile) return std::nullopt;
  return std::move(*content);
}

// Appends `dir` and its whole tree as copied entries when it is small (few entries, regular files
// and symlinks only, small files); returns false (appending nothing) otherwise.
bool AppendCopiedDir(const std::string& dir, std::vector<HostLayout::Entry>& out) {
  std::vector<HostLayout::Entry> tree;
  std::vector<std::string> pending = {dir};
  while (!pending.empty()) {
    std::string current = pending.front();
    pending.erase(pending.begin());
    auto entry = ProbeEntry(current);
    if (!entry) return false;
    entry->copied = true;
    if (entry->type == HostLayout::Entry::kFile) {
      auto content = SmallFileContent(current);
      if (!content) return false;
      entry->content = std::move(*content);
    }
    tree.push_back(std::move(*entry));
    if (tree.back().type != HostLayout::Entry::kDir) continue;
    DIR* handle = opendir(current.c_str());
    if (handle == nullptr) return false;
    std::vector<std::string> names;
    while (struct dirent* d = readdir(handle)) {
      std::string name = d->d_name;
      if (name != "." && name != "..") names.push_back(name);
      if (names.size() > kMaxCopiedDirEntries) break;
    }
    closedir(handle);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) pending.push_back(current + "/" + name);
    if (tree.size() + pending.size() > kMaxCopiedDirEntries) return false;
  }
  for (const auto& e : tree) {
    struct stat st {};
    if (lstat(e.path.c_str(), &st) != 0) return false;
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) return false;
  }
  out.insert(out.end(), tree.begin(), tree.end());
  return true;
}

std::string Old(const std::string& host_path) { return std::string(kOldRoot) + host_path; }

void AddEntry(std::vector<MountOp>& ops, const HostLayout::Entry& entry) {
  if (entry.copied && entry.type == HostLayout::Entry::kDir) {
    ops.push_back({MountOpKind::kMakeDir, {}, entry.path});
    return;
  }
  if (entry.copied && entry.type == HostLayout::Entry::kFile) {
    ops.push_back({MountOpKind::kWriteFile, entry.content, entry.path, 0, 0, {}, 0644});
    return;
  }
  switch (entry.type) {
    case HostLayout::Entry::kSymlink:
      ops.push_back({MountOpKind::kSymlink, entry.symlink_target, entry.path});
      break;
    case HostLayout::Entry::kDir:
      ops.push_back({MountOpKind::kBindDir, Old(entry.path), entry.path, kReadOnlyAttrs});
      break;
    case HostLayout::Entry::kFile:
      ops.push_back({MountOpKind::kBindFile, Old(entry.path), entry.path, kReadOnlyAttrs});
      break;
  }
}

// mkdir -p for every ancestor of `path` that the plan has not made yet.
void AddParents(std::vector<MountOp>& ops, std::vector<std::string>& made,
                const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    bool exists = false;
    for (const std::string& m : made) exists = exists || m == dir;
    if (!exists) {
      ops.push_back({MountOpKind::kMakeDir, {}, dir});
      made.push_back(dir);
    }
  }
}

}  // namespace

std::string MountOp::Describe() const {
  switch (kind) {
    case MountOpKind::kMakeDir:
      return "mkdir " + target;
    case MountOpKind::kBindDir:
    case MountOpKind::kBindFile: {
      std::string host =
          source.rfind(kOldRoot, 0) == 0 ? source.substr(std::string(kOldRoot).size()) : source;
      return "bind " + host + " at " + target;
    }
    case MountOpKind::kTmpfs:
      return "tmpfs at " + target;
    case MountOpKind::kProc:
      return "proc at " + target;
    case MountOpKind::kSymlink:
      return "symlink " + target + " -> " + source;
    case MountOpKind::kWriteFile:
      return "write " + target;
    case MountOpKind::kSetAttr:
      return "set mount attributes of " + target;
  }
  return target;
}

Result<HostLayout> ProbeHostLayout(const SandboxSpec& spec) {
  HostLayout host;
  for (const char* path : kRootEntries) {
    if (access(path, F_OK) != 0) continue;
    auto entry = ProbeEntry(path);
    if (!entry) return entry.error();
    host.root_entries.push_back(*entry);
  }
  for (const EtcEntry& etc : kEtcEntries) {
    std::string path = std::string("/etc/") + etc.name;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) continue;
    auto entry = ProbeEntry(path);
    if (!entry) return entry.error();
    if (!etc.bind && entry->type == HostLayout::Entry::kDir &&
        AppendCopiedDir(path, host.etc_entries)) {
      continue;
    }
    if (!etc.bind && entry->type == HostLayout::Entry::kFile) {
      if (auto content = SmallFileContent(path)) {
        entry->copied = true;
        entry->content = std::move(*content);
      }
    }
    host.etc_entries.push_back(std::move(*entry));
  }
  if (spec.network == NetworkMode::kHost && access("/etc/resolv.conf", F_OK) == 0) {
    // Bind the resolved file: /etc/resolv.conf is often a symlink into /run.
    char resolved[PATH_MAX];
    if (realpath("/etc/resolv.conf", resolved) != nullptr) {
      host.etc_entries.emplace_back("/etc/resolv.conf", HostLayout::Entry::kFile);
      host.etc_entries.back().symlink_target = resolved;  // the bind source
    }
  }
  for (const char* name : kDevices) {
    std::string path = std::string("/dev/") + name;
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode)) host.devices.push_back(name);
  }
  for (const char* name : kProcReadOnly) {
    if (access((std::string("/proc/") + name).c_str(), F_OK) == 0) {
      host.proc_read_only.push_back(name);
    }
  }
  for (const std::string& path : spec.extra_ro_binds) {
    auto entry = ProbeEntry(path);
    if (!entry) return entry.error();
    if (entry->type == HostLayout::Entry::kSymlink) {
      return Failure("invalid extra read-only bind", path, "is a symbolic link");
    }
    host.extra_binds.push_back(*entry);
  }
  return host;
}

std::string SyntheticPasswd(const IdMapping& ids) {
  return "root:x:0:0:root:/root:/usr/sbin/nologin\n"
         "action:x:" +
         std::to_string(ids.inside_uid) + ":" + std::to_string(ids.inside_gid) +
         ":action:/tmp:/bin/sh\n"
         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
}

std::string SyntheticGroup(const IdMapping& ids) {
  return "root:x:0:\naction:x:" + std::to_string(ids.inside_gid) + ":\nnogroup:x:65534:\n";
}

namespace {

Result<unique_fd> CloneTree(const std::string& path) {
  auto dir = os::OpenNoSymlinks(AT_FDCWD, path, O_PATH | O_DIRECTORY);
  if (!dir) return dir.error();
  int fd =
      static_cast<int>(syscall(SYS_open_tree, dir->get(), "",
                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE));
  if (fd < 0) return ErrnoError("open_tree", path);
  return unique_fd(fd);
}

}  // namespace

Result<DetachedTreeSet> DetachedTreeSet::Open(const SandboxSpec& spec) {
  DetachedTreeSet set;
  if (!spec.pack_dir.empty()) {
    auto pack = CloneTree(spec.pack_dir);
    if (!pack) return pack.error();
    set.pack_ = std::move(*pack);
  }
  if (!spec.env_dir.empty()) {
    auto env = CloneTree(spec.env_dir);
    if (!env) return env.error();
    set.env_ = std::move(*env);
  }
  return set;
}

namespace {

// /pack (read-only) and /env (read-write), both nosuid and nodev.
void AddPackAndEnv(std::vector<MountOp>& ops, const SandboxSpec& spec, const DetachedTrees& trees) {
  if (!spec.pack_dir.empty()) {
    ops.push_back({MountOpKind::kBindDir,
                   Old(spec.pack_dir),
                   kPackMountPoint,
                   kReadOnlyAttrs,
                   0,
                   {},
                   0755,
                   trees.pack});
  }
  if (!spec.env_dir.empty()) {
    ops.push_back({MountOpKind::kBindDir,
                   Old(spec.env_dir),
                   kEnvMountPoint,
                   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                   MOUNT_ATTR_RDONLY,
                   {},
                   0755,
                   trees.env});
  }
}

void AddFiles(std::vector<MountOp>& ops, const SandboxSpec& spec) {
  for (const SandboxFile& file : spec.files) {
    ops.push_back({MountOpKind::kWriteFile,
                   file.content,
                   file.path,
                   0,
                   0,
                   {},
                   static_cast<mode_t>(file.mode)});
  }
}

}  // namespace

MountPlan BuildClaimMountPlan(const SandboxSpec& spec, const DetachedTrees& trees) {
  std::vector<MountOp> ops;
  AddPackAndEnv(ops, spec, trees);
  AddFiles(ops, spec);
  return MountPlan{std::move(ops)};
}

MountPlan BuildMountPlan(const SandboxSpec& spec, const HostLayout& host,
                         const DetachedTrees& trees) {
  std::vector<MountOp> ops;
  std::vector<std::string> made;
  for (const auto& entry : host.root_entries) AddEntry(ops, entry);

  ops.push_back({MountOpKind::kMakeDir, {}, "/etc"});
  made.push_back("/etc");
  for (const auto& entry : host.etc_entries) {
    if (entry.path == "/etc/resolv.conf") {
      ops.push_back(
          {MountOpKind::kBindFile, Old(entry.symlink_target), entry.path, kReadOnlyAttrs});
    } else {
      AddEntry(ops, entry);
    }
  }
  ops.push_back(
      {MountOpKind::kWriteFile, SyntheticPasswd(spec.ids), "/etc/passwd", 0, 0, {}, 0644});
  ops.push_back({MountOpKind::kWriteFile, SyntheticGroup(spec.ids), "/etc/group", 0, 0, {}, 0644});

  for (const auto& entry : host.extra_binds) {
    AddParents(ops, made, entry.path);
    AddEntry(ops, entry);
  }
  AddPackAndEnv(ops, spec, trees);
  std::string tmp_options = "mode=1777,size=" + std::to_string(spec.limits.tmp_size_bytes);
  ops.push_back(
      {MountOpKind::kTmpfs, {}, "/tmp", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, tmp_options});
  AddFiles(ops, spec);

  ops.push_back({MountOpKind::kProc, {}, "/proc"});
  for (const std::string& name : host.proc_read_only) {
    std::string path = "/proc/" + name;
    MountOpKind kind = name == "sysrq-trigger" ? MountOpKind::kBindFile : MountOpKind::kBindDir;
    ops.push_back({kind, path, path, kReadOnlyAttrs});
  }

  ops.push_back({MountOpKind::kTmpfs,
                 {},
                 "/dev",
                 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                 0,
                 "mode=0755,size=64k,nr_inodes=64"});
  for (const std::string& name : host.devices) {
    ops.push_back({MountOpKind::kBindFile, Old("/dev/" + name), "/dev/" + name,
                   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC});
  }
  ops.push_back({MountOpKind::kSymlink, "/proc/self/fd", "/dev/fd"});
  ops.push_back({MountOpKind::kSymlink, "/proc/self/fd/0", "/dev/stdin"});
  ops.push_back({MountOpKind::kSymlink, "/proc/self/fd/1", "/dev/stdout"});
  ops.push_back({MountOpKind::kSymlink, "/proc/self/fd/2", "/dev/stderr"});
  ops.push_back(
      {MountOpKind::kTmpfs, {}, "/dev/shm", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, tmp_options});
  ops.push_back({MountOpKind::kSetAttr, {}, "/dev", MOUNT_ATTR_RDONLY});
  return MountPlan{std::move(ops)};
}

// ---- Child side: allocation-free. ----

int MakeMountsPrivate() {
  // No mount event of the sandbox may propagate back to the host (and none from the host in).
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
  return 0;
}

int MountStagingRoot(const char* tmpfs_options) {
  if (mount("tmpfs", kStagingRoot, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_options) != 0) {
    return errno;
  }
  return 0;
}

int PivotToStagingRoot() {
  if (chdir(kStagingRoot) != 0) return errno;
  if (mkdir("oldroot", 0700) != 0) return errno;
  // pivot_root, not chroot: the old root becomes unreachable once detached (catalog entry 7).
  if (os::PivotRoot(".", "oldroot") != 0) return errno;
  if (chdir("/") != 0) return errno;
  return 0;
}

namespace {

int CreateFile(const char* path, mode_t mode) {
  unique_fd fd(open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  return fd ? 0 : errno;
}

int MkdirIfMissing(const char* path, mode_t mode) {
  if (mkdir(path, mode) == 0 || errno == EEXIST) return 0;
  return errno;
}

int SetAttrs(const RawMountOp& op, bool recursive) {
  if (op.attr_set == 0 && op.attr_clr == 0) return 0;
  return os::MountSetattr(op.target, recursive, op.attr_set, op.attr_clr) == 0 ? 0 : errno;
}

int ApplyOne(const MountOp& op) {
  return ApplyRawMountOp({op.kind, op.source.data(), op.source.size(), op.target.c_str(),
                          op.attr_set, op.attr_clr, op.data.c_str(), op.mode, op.source_fd});
}

}  // namespace

int ApplyRawMountOp(const RawMountOp& op) {
  const char* target = op.target;
  int err = 0;
  switch (op.kind) {
    case MountOpKind::kMakeDir:
      return MkdirIfMissing(target, op.mode);
    case MountOpKind::kBindDir:
      if ((err = MkdirIfMissing(target, 0755)) != 0) return err;
      if (op.source_fd >= 0) {
        if (syscall(SYS_move_mount, op.source_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) !=
            0) {
          return errno;
        }
      } else if (mount(op.source, target, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        return errno;
      }
      return SetAttrs(op, true);
    case MountOpKind::kBindFile:
      if ((err = CreateFile(target, 0644)) != 0 && err != EEXIST) return err;
      if (mount(op.source, target, nullptr, MS_BIND, nullptr) != 0) return errno;
      return SetAttrs(op, false);
    case MountOpKind::kTmpfs:
      if ((err = MkdirIfMissing(target, 0755)) != 0) return err;
      if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, op.data) != 0) {
        return errno;
      }
      return SetAttrs(op, false);
    case MountOpKind::kProc:
      if ((err = MkdirIfMissing(target, 0555)) != 0) return err;
      if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        return errno;
      }
      return 0;
    case MountOpKind::kSymlink:
      return symlink(op.source, target) == 0 ? 0 : errno;
    case MountOpKind::kWriteFile: {
      unique_fd fd(open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, op.mode));
      if (!fd) return errno;
      const char* p = op.source;
      size_t left = op.source_size;
      while (left > 0) {
        ssize_t n = write(fd.get(), p, left);
        if (n < 0) return errno;
        p += n;
        left -= static_cast<size_t>(n);
      }
      return 0;
    }
    case MountOpKind::kSetAttr:
      return SetAttrs(op, false);
  }
  return EINVAL;
}

int ApplyMountPlan(const MountPlan& plan, int* failed_op) {
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    int err = ApplyOne(plan.ops[i]);
    if (err != 0) {
      *failed_op = static_cast<int>(i);
      return err;
    }
  }
  return 0;
}

int DetachOldRoot() {
  if (umount2(kOldRoot, MNT_DETACH) != 0) return errno;
  if (rmdir(kOldRoot) != 0) return errno;
  return 0;
}

int MakeRootReadOnly() { return os::MountSetattr("/", false, kReadOnlyAttrs, 0) == 0 ? 0 : errno; }

}  // namespace packvisor::sandbox
