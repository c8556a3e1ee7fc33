#include "envs/pack_disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envs/lock.h"
#include "envs/safe_fs.h"
#include "sandbox/fault_injection.h"
#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor::envs {
namespace {

constexpr auto kDiskLockTimeout = std::chrono::seconds(120);
constexpr int kLoopAttachAttempts = 8;

// mkfs.ext4 of `image_fd`, handed to mkfs as its fd 3 and named /proc/self/fd/3, so that mkfs
// never resolves a path a sandbox could have written (nor needs CAP_SYS_PTRACE, as it would to
// reach the non-dumpable supervisor's /proc/<pid>/fd): no reserved blocks, root-owned root
// directory, a journal scaled to the disk (4..64 MiB) and lazy initialization (the image stays
// sparse).
Result<void> MakeFilesystem(int image_fd, uint64_t size_bytes) {
  const char* mkfs = FindMkfsExt4();
  if (mkfs == nullptr) {
    return Failure("create pack disk", "mkfs.ext4",
                   "not found in /usr/sbin or /sbin (install e2fsprogs, or set "
                   "envs.pack_disk_mb = 0)");
  }
  constexpr int kImageFdInMkfs = 3;
  std::string device = "/proc/self/fd/" + std::to_string(kImageFdInMkfs);
  std::string journal = "size=" + std::to_string(std::clamp<uint64_t>(size_bytes >> 28, 4, 64));
  std::vector<std::string> args = {
      mkfs,    "-q", "-F",
      "-m",    "0",  "-J",
      journal, "-E", "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1",
      device};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  // dup2 clears close-on-exec on the copy (also when image_fd is already 3: POSIX 2017, glibc).
  posix_spawn_file_actions_adddup2(&actions, image_fd, kImageFdInMkfs);
  pid_t pid = -1;
  char* empty_env[] = {nullptr};
  int err = posix_spawn(&pid, mkfs, &actions, nullptr, argv.data(), empty_env);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    errno = err;
    return ErrnoError("spawn", mkfs);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("wait for", mkfs);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Failure("create pack disk", mkfs,
                   "failed (" + std::string(WIFEXITED(status) ? "exit status " : "signal ") +
                       std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)) +
                       ")");
  }
  return Ok{};
}

// The pack's image, created with its filesystem when missing: written as an unnamed O_TMPFILE and
// linked into place only once complete, so a crash never leaves a half-made image behind.
Result<unique_fd> OpenOrCreateImage(int disks_fd, const std::string& name, uint64_t size_bytes,
                                    const std::string& shown_path) {
  unique_fd image(openat(disks_fd, name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (image) {
    struct stat st {};
    if (fstat(image.get(), &st) != 0) return ErrnoError("stat", shown_path);
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0) {
      return Failure("open pack disk", shown_path, "not a root-owned 0600 regular file");
    }
    return image;
  }
  if (errno != ENOENT) return ErrnoError("open", shown_path);
  unique_fd fresh(openat(disks_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fresh) return ErrnoError("create (O_TMPFILE)", shown_path);
  if (ftruncate(fresh.get(), static_cast<off_t>(size_bytes)) != 0) {
    return ErrnoError("size", shown_path);
  }
  PV_TRY(MakeFilesystem(fresh.get(), size_bytes));
  if (fsync(fresh.get()) != 0) return ErrnoError("fsync", shown_path);
  std::string self = "/proc/self/fd/" + std::to_string(fresh.get());
  if (linkat(AT_FDCWD, self.c_str(), disks_fd, name.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    return ErrnoError("link", shown_path);
  }
  // Opened again by its name, so that the loop device records the image's real path (the
  // O_TMPFILE's own name is "#<inode>", which tools show as deleted).
  unique_fd linked(openat(disks_fd, name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (!linked) return ErrnoError("open", shown_path);
  return linked;
}

// Opens /dev/loop<number>, making the node first where /dev has no udev (a container's tmpfs).
Result<unique_fd> OpenLoopDevice(int number, int flags) {
  std::string path = "/dev/loop" + std::to_string(number);
  unique_fd device(open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW));
  if (!device && errno == ENOENT) {
    auto numbers =
        os::ReadFile("/sys/devices/virtual/block/loop" + std::to_string(number) + "/dev");
    unsigned major_number = 0;
    unsigned minor_number = 0;
    if (!numbers || std::sscanf(numbers->c_str(), "%u:%u", &major_number, &minor_number) != 2) {
      return Failure("find device numbers of", path, "not in /sys/devices/virtual/block");
    }
    if (mknod(path.c_str(), S_IFBLK | 0600, makedev(major_number, minor_number)) != 0 &&
        errno != EEXIST) {
      return ErrnoError("mknod", path);
    }
    device.reset(open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW));
  }
  if (!device) return ErrnoError("open", path);
  return device;
}

// Whether the loop device open as `device_fd` is bound to the file `image` (same device and
// inode as the kernel reports for its backing file).
bool LoopBoundTo(int device_fd, const struct stat& image) {
  struct loop_info64 info {};
  if (ioctl(device_fd, LOOP_GET_STATUS64, &info) != 0) return false;
  return info.lo_inode == image.st_ino && info.lo_device == image.st_dev;
}

struct BoundLoop {
  std::string path;
  unique_fd fd;  // held open: a device with an opener is never cleared, so never re-bound
};

// The loop device already bound to the image `image_fd`, if any, kept open. Its filesystem may
// still be alive although no longer mounted here: a sandbox that was being set up holds a copy
// of the host's mounts until it detaches them, and an operator may have unmounted it. Mounting
// that device again yields the same live superblock; attaching the image to a second loop
// device would give two ext4 instances one image, and they would corrupt it.
std::optional<BoundLoop> FindLoopDeviceOf(int image_fd) {
  struct stat image {};
  if (fstat(image_fd, &image) != 0) return std::nullopt;
  DIR* dir = opendir("/sys/devices/virtual/block");
  if (dir == nullptr) return std::nullopt;
  std::optional<BoundLoop> found;
  while (struct dirent* entry = readdir(dir)) {
    int number = -1;
    if (std::sscanf(entry->d_name, "loop%d", &number) != 1 || number < 0) continue;
    std::string backing =
        "/sys/devices/virtual/block/" + std::string(entry->d_name) + "/loop/backing_file";
    if (access(backing.c_str(), F_OK) != 0) continue;  // not bound
    auto device = OpenLoopDevice(number, O_RDONLY);
    if (!device || !LoopBoundTo(device->get(), image)) continue;
    found = BoundLoop{"/dev/loop" + std::to_string(number), std::move(*device)};
    break;
  }
  closedir(dir);
  return found;
}

// A free loop device attached to `image_fd`, clearing itself when its last user (the mount) goes.
// Another process may take the device between LOOP_CTL_GET_FREE and LOOP_CONFIGURE (EBUSY): then
// the next free one is tried.
Result<std::string> AttachLoopDevice(int image_fd, unique_fd* device_fd) {
  unique_fd control(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control) return ErrnoError("open", "/dev/loop-control");
  for (int attempt = 0; attempt < kLoopAttachAttempts; ++attempt) {
    int number = ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (number < 0) return ErrnoError("LOOP_CTL_GET_FREE", "/dev/loop-control");
    auto opened = OpenLoopDevice(number, O_RDWR);
    if (!opened) return opened.error();
    unique_fd device = std::move(*opened);
    std::string path = "/dev/loop" + std::to_string(number);
    struct loop_config config {};
    config.fd = static_cast<uint32_t>(image_fd);
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (ioctl(device.get(), LOOP_CONFIGURE, &config) == 0) {
      *device_fd = std::move(device);
      return path;
    }
    if (errno != EBUSY) return ErrnoError("LOOP_CONFIGURE", path);
  }
  return Failure("attach pack disk", "/dev/loop-control",
                 "no free loop device after " + std::to_string(kLoopAttachAttempts) + " attempts");
}

// Mounts the ext4 filesystem on `device` (open as `device_fd`, bound to the image `image_fd`)
// onto the directory `target_fd` (nosuid, nodev). The source is given by path, so before the new
// mount is attached it is checked to be on that very device, and the device to be still bound to
// this pack's image: never another pack's disk in this pack's place.
Result<void> MountOnto(const std::string& device, int device_fd, int image_fd, int target_fd,
                       const std::string& shown_path) {
  std::string source = sandbox::PackDiskSourceOverride();  // test builds only
  if (source.empty()) source = device;
  unique_fd fs(fsopen("ext4", FSOPEN_CLOEXEC));
  if (!fs) return ErrnoError("fsopen ext4", shown_path);
  if (fsconfig(fs.get(), FSCONFIG_SET_STRING, "source", source.c_str(), 0) != 0) {
    return ErrnoError("fsconfig source", source);
  }
  if (fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return ErrnoError("mount ext4 from", source);
  }
  unique_fd mount(fsmount(fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (!mount) return ErrnoError("fsmount", source);
  struct stat mounted {};
  struct stat device_st {};
  struct stat image {};
  if (fstat(mount.get(), &mounted) != 0 || fstat(device_fd, &device_st) != 0 ||
      fstat(image_fd, &image) != 0) {
    return ErrnoError("stat", shown_path);
  }
  if (mounted.st_dev != device_st.st_rdev || !LoopBoundTo(device_fd, image)) {
    return Failure("mount pack disk", shown_path,
                   "the filesystem mounted from " + source + " is not on " + device +
                       " bound to this pack's image (re-bound meanwhile?); not attached");
  }
  if (move_mount(mount.get(), "", target_fd, "",
                 MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    return ErrnoError("move_mount", shown_path);
  }
  return Ok{};
}

// The pack's disk lock: one process at a time makes, mounts or releases a pack's disk.
Result<FileLock> LockPackDisk(const PackDiskSettings& settings, const std::string& pack_ref) {
  auto locks = OpenDirPath(settings.state_dir + "/locks", true, 0700);
  if (!locks) return locks.error();
  return FileLock::Acquire(settings.state_dir + "/locks/" + pack_ref + ".disk", kDiskLockTimeout);
}

}  // namespace

Result<void> ProbeFreeLoopDevice() {
  unique_fd control(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control) return ErrnoError("open", "/dev/loop-control");
  int number = ioctl(control.get(), LOOP_CTL_GET_FREE);
  if (number < 0) return ErrnoError("LOOP_CTL_GET_FREE", "/dev/loop-control");
  auto device = OpenLoopDevice(number, O_RDONLY);
  if (!device) return device.error();
  return Ok{};
}

const char* FindMkfsExt4() {
  for (const char* candidate : {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"}) {
    if (access(candidate, X_OK) == 0) return candidate;
  }
  return nullptr;
}

Result<bool> IsMountRoot(int parent_fd, const std::string& name) {
  struct statx stx {};
  int flags = AT_SYMLINK_NOFOLLOW | (name.empty() ? AT_EMPTY_PATH : 0);
  if (statx(parent_fd, name.c_str(), flags, STATX_TYPE, &stx) != 0) {
    return ErrnoError("statx", name);
  }
  if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) == 0) {
    return Failure("statx", name, "the kernel does not report mount roots (STATX_ATTR_MOUNT_ROOT)");
  }
  return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

Result<void> CheckOnPackDisk(const PackDiskSettings& settings, int pack_fd,
                             const std::string& pack_ref) {
  if (settings.size_bytes == 0) return Ok{};
  auto mounted = IsMountRoot(pack_fd, "");
  if (!mounted) return mounted.error();
  if (!*mounted) {
    return Failure("environment", settings.runtime_envs_dir + "/" + pack_ref,
                   "is not the pack's mounted disk (unmounted meanwhile?); refusing to build "
                   "outside it");
  }
  return Ok{};
}

Result<void> EnsurePackDisk(const PackDiskSettings& settings, const std::string& pack_ref) {
  if (settings.size_bytes == 0) return Ok{};
  const std::string mount_point = settings.runtime_envs_dir + "/" + pack_ref;
  auto root = OpenDirPath(settings.runtime_envs_dir, true, 0755);
  if (!root) return root.error();
  auto mounted = IsMountRoot(root->get(), pack_ref);
  if (mounted && *mounted) return Ok{};  // the fast path of every later execution

  auto lock = LockPackDisk(settings, pack_ref);
  if (!lock) return lock.error();
  if (mkdirat(root->get(), pack_ref.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoError("mkdir", mount_point);
  }
  mounted = IsMountRoot(root->get(), pack_ref);
  if (!mounted) return mounted.error();
  if (*mounted) return Ok{};  // another process mounted it while we waited

  auto disks = OpenDirPath(settings.state_dir + "/disks", true, 0700);
  if (!disks) return disks.error();
  const std::string image_name = pack_ref + ".img";
  auto image = OpenOrCreateImage(disks->get(), image_name, settings.size_bytes,
                                 settings.state_dir + "/disks/" + image_name);
  if (!image) return image.error();
  unique_fd device_fd;  // held until the mount holds the device itself
  Result<std::string> device = std::string();
  if (std::optional<BoundLoop> bound = FindLoopDeviceOf(image->get())) {
    device = bound->path;
    device_fd = std::move(bound->fd);
  } else {
    device = AttachLoopDevice(image->get(), &device_fd);
  }
  if (!device) return device.error();
  auto target = OpenDirBeneath(root->get(), pack_ref);
  if (!target) return target.error();
  PV_TRY(MountOnto(*device, device_fd.get(), image->get(), target->get(), mount_point));

  mounted = IsMountRoot(root->get(), pack_ref);
  if (!mounted) return mounted.error();
  if (!*mounted) return Failure("mount pack disk", mount_point, "not a mount root after mounting");
  // mkfs's lost+found would look like an environment to `env list`; e2fsck makes it when needed.
  auto disk_root = OpenDirBeneath(root->get(), pack_ref);
  if (!disk_root) return disk_root.error();
  if (unlinkat(disk_root->get(), "lost+found", AT_REMOVEDIR) != 0 && errno != ENOENT &&
      errno != ENOTEMPTY) {
    return ErrnoError("remove", mount_point + "/lost+found");
  }
  if (fchmod(disk_root->get(), 0755) != 0) return ErrnoError("chmod", mount_point);
  return Ok{};
}

Result<void> ReleasePackDisk(const PackDiskSettings& settings, const std::string& pack_ref) {
  auto root = OpenDirPath(settings.runtime_envs_dir, false);
  if (!root) return root.error();
  auto lock = LockPackDisk(settings, pack_ref);
  if (!lock) return lock.error();
  auto mounted = IsMountRoot(root->get(), pack_ref);
  if (!mounted) return mounted.error().err == ENOENT ? Result<void>(Ok{}) : mounted.error();
  if (*mounted) {
    auto disk_root = OpenDirBeneath(root->get(), pack_ref);
    if (!disk_root) return disk_root.error();
    auto entries = DirectoryEntriesAt(disk_root->get());
    if (!entries || !entries->empty()) return Ok{};
    disk_root->reset();  // an open fd inside would make the unmount EBUSY
    // By path (the components are root's: runtime_envs_dir and the pack's mount point), never
    // following a symlink in the last one.
    std::string mount_point = settings.runtime_envs_dir + "/" + pack_ref;
    if (umount2(mount_point.c_str(), UMOUNT_NOFOLLOW) != 0) {
      if (errno == EBUSY) return Ok{};
      return ErrnoError("unmount pack disk", mount_point);
    }
  }
  if (auto disks = OpenDirPath(settings.state_dir + "/disks", false)) {
    if (unlinkat(disks->get(), (pack_ref + ".img").c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoError("remove", settings.state_dir + "/disks/" + pack_ref + ".img");
    }
  }
  if (unlinkat(root->get(), pack_ref.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT &&
      errno != ENOTEMPTY) {
    return ErrnoError("remove", settings.runtime_envs_dir + "/" + pack_ref);
  }
  return Ok{};
}

}  // namespace packvisor::envs
