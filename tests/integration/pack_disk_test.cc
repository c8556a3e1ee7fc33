// Each pack's environments on a filesystem of their own (envs/pack_disk.h): created and mounted on
// first use, reused, mounted again after it went away (a reboot), released by `env rm PACK`.
// Real loop devices, real ext4, real mounts.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "sandbox/os/unique_fd.h"
#include "tests/support/env_fixtures.h"

namespace packvisor::testing {
namespace {

// The mountinfo line of `mount_point` in this process's namespace ("" when not mounted there).
std::string MountInfoLine(const std::string& mount_point) {
  std::istringstream lines(ReadFileOrEmpty("/proc/self/mountinfo"));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string id, parent, numbers, root, point;
    fields >> id >> parent >> numbers >> root >> point;
    if (point == mount_point) return line;
  }
  return "";
}

// Loop devices whose backing file is below `dir` (from sysfs).
int LoopDevicesBackedFrom(const std::string& dir) {
  int count = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/block", ec)) {
    std::string backing = ReadFileOrEmpty(entry.path().string() + "/loop/backing_file");
    if (backing.rfind(dir, 0) == 0) ++count;
  }
  return count;
}

class PackDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (loop devices and mounts)";
    world_.WriteAction("disky", "probe", "python", "probe.py",
                       "import os\n"
                       "first = not os.path.exists('/env/kept')\n"
                       "open('/env/kept', 'a').close()\n"
                       "print('first' if first else 'again')\n");
    world_.WriteConfig({}, "pack_disk_mb = 64\n");
  }
  std::string MountPoint() const { return world_.EnvsDir() + "/disky"; }
  std::string Image() const { return world_.StateDir() + "/disks/disky.img"; }
  EnvWorld world_;
};

TEST_F(PackDiskTest, FirstUseMakesAndMountsThePacksDiskAndLaterRunsReuseIt) {
  CommandResult first = world_.Cli({"run", "disky.probe"});
  ASSERT_EQ(first.exit_code, 0) << first.stdout_text << first.stderr_text;
  EXPECT_NE(first.stdout_text.find("first"), std::string::npos) << first.stdout_text;
  std::string line = MountInfoLine(MountPoint());
  ASSERT_FALSE(line.empty()) << "the pack's environments are not on a disk of their own";
  EXPECT_NE(line.find("nosuid"), std::string::npos) << line;
  EXPECT_NE(line.find("nodev"), std::string::npos) << line;
  EXPECT_NE(line.find(" - ext4 /dev/loop"), std::string::npos) << line;
  struct statfs fs {};
  ASSERT_EQ(statfs(MountPoint().c_str(), &fs), 0);
  EXPECT_EQ(fs.f_type, EXT4_SUPER_MAGIC);
  uint64_t size = static_cast<uint64_t>(fs.f_blocks) * fs.f_bsize;
  EXPECT_LE(size, 64ull << 20);
  EXPECT_GE(size, 48ull << 20);
  EXPECT_FALSE(Exists(MountPoint() + "/lost+found"));
  struct stat image {};
  ASSERT_EQ(lstat(Image().c_str(), &image), 0);
  EXPECT_TRUE(S_ISREG(image.st_mode));
  EXPECT_EQ(image.st_uid, 0u);
  EXPECT_EQ(image.st_mode & 07777, 0600u);
  EXPECT_EQ(LoopDevicesBackedFrom(world_.StateDir()), 1);

  CommandResult second = world_.Cli({"run", "disky.probe"});
  ASSERT_EQ(second.exit_code, 0) << second.stdout_text << second.stderr_text;
  EXPECT_NE(second.stdout_text.find("again"), std::string::npos) << second.stdout_text;
  EXPECT_EQ(LoopDevicesBackedFrom(world_.StateDir()), 1) << "a second disk was attached";
}

TEST_F(PackDiskTest, AfterTheDiskWentAwayTheNextRunMountsItAgainWithItsContent) {
  ASSERT_EQ(world_.Cli({"run", "disky.probe"}).exit_code, 0);
  std::string marker = world_.MarkerText("disky", "python");
  ASSERT_FALSE(marker.empty());
  // What a reboot does: the mount and the loop device are gone, the image stays.
  ASSERT_EQ(umount2(MountPoint().c_str(), 0), 0) << strerror(errno);
  ASSERT_TRUE(MountInfoLine(MountPoint()).empty());
  CommandResult again = world_.Cli({"run", "disky.probe"});
  ASSERT_EQ(again.exit_code, 0) << again.stdout_text << again.stderr_text;
  EXPECT_NE(again.stdout_text.find("again"), std::string::npos)
      << "the environment's content was lost: " << again.stdout_text;
  EXPECT_FALSE(MountInfoLine(MountPoint()).empty());
  EXPECT_EQ(world_.MarkerText("disky", "python"), marker) << "the environment was rebuilt";
}

// After a reboot the disk may come back on another loop device (another pack took the old
// number meanwhile): its environments are the same ones, so nothing is rebuilt. (The marker once
// recorded the device number, and every such remount rebuilt every environment of the pack.)
TEST_F(PackDiskTest, DiskBackOnAnotherLoopDeviceKeepsItsEnvironments) {
  ASSERT_EQ(world_.Cli({"run", "disky.probe"}).exit_code, 0);
  std::string marker = world_.MarkerText("disky", "python");
  struct stat before {};
  ASSERT_EQ(stat(MountPoint().c_str(), &before), 0);
  ASSERT_EQ(umount2(MountPoint().c_str(), 0), 0) << strerror(errno);
  // The old device clears itself once its filesystem is gone everywhere (a sandbox being set up
  // elsewhere may hold a copy of the host's mounts for a moment).
  for (int i = 0; i < 400 && LoopDevicesBackedFrom(world_.StateDir()) != 0; ++i) usleep(5000);
  ASSERT_EQ(LoopDevicesBackedFrom(world_.StateDir()), 0) << "the old loop device stayed bound";
  // Another "pack" takes the old device number.
  std::string decoy_path = world_.StateDir() + "/decoy.img";
  { std::ofstream(decoy_path).put('\0'); }
  ASSERT_EQ(truncate(decoy_path.c_str(), 1 << 20), 0);
  std::string old_device = "/dev/loop" + std::to_string(minor(before.st_dev));
  unique_fd decoy(open(decoy_path.c_str(), O_RDWR | O_CLOEXEC));
  unique_fd loop(open(old_device.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(decoy && loop) << old_device << ": " << strerror(errno);
  struct loop_config config {};
  config.fd = static_cast<uint32_t>(decoy.get());
  config.info.lo_flags = LO_FLAGS_AUTOCLEAR;  // gone when `loop` closes, whatever happens below
  (void)ioctl(loop.get(), LOOP_CONFIGURE, &config);  // EBUSY: another test took it: as good
  CommandResult again = world_.Cli({"run", "disky.probe"});
  ASSERT_EQ(again.exit_code, 0) << again.stdout_text << again.stderr_text;
  struct stat after {};
  ASSERT_EQ(stat(MountPoint().c_str(), &after), 0);
  ASSERT_NE(after.st_dev, before.st_dev) << "the disk came back on the same device: nothing shown";
  EXPECT_NE(again.stdout_text.find("again"), std::string::npos)
      << "the environment was rebuilt: " << again.stdout_text << again.stderr_text;
  EXPECT_EQ(world_.MarkerText("disky", "python"), marker) << "the environment was rebuilt";
}

// The filesystem can outlive its host mount: a sandbox being set up holds a copy of the host's
// mounts until it detaches them. Unmounting on the host then leaves the superblock alive on its
// loop device; the next run must mount that same device again, not attach the image a second
// time (two ext4 instances on one image would corrupt it and lose what the first one cached).
TEST_F(PackDiskTest, DiskStillAliveInAnotherMountNamespaceIsReusedNotAttachedTwice) {
  ASSERT_EQ(world_.Cli({"run", "disky.probe"}).exit_code, 0);
  std::string marker = world_.MarkerText("disky", "python");
  pid_t holder = fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    // A private copy of every mount, the pack's disk included, held until killed.
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)) {
      _exit(1);
    }
    pause();
    _exit(0);
  }
  for (int i = 0; i < 200; ++i) {
    if (std::filesystem::read_symlink("/proc/" + std::to_string(holder) + "/ns/mnt") !=
        std::filesystem::read_symlink("/proc/self/ns/mnt")) {
      break;
    }
    usleep(5000);
  }
  ASSERT_EQ(umount2(MountPoint().c_str(), 0), 0) << strerror(errno);
  EXPECT_EQ(LoopDevicesBackedFrom(world_.StateDir()), 1) << "the filesystem should still be alive";
  CommandResult again = world_.Cli({"run", "disky.probe"});
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  ASSERT_EQ(again.exit_code, 0) << again.stdout_text << again.stderr_text;
  EXPECT_NE(again.stdout_text.find("again"), std::string::npos)
      << "the environment's content was lost: " << again.stdout_text;
  EXPECT_EQ(world_.MarkerText("disky", "python"), marker) << "the environment was rebuilt";
  EXPECT_EQ(LoopDevicesBackedFrom(world_.StateDir()), 1) << "the image was attached twice";
}

TEST_F(PackDiskTest, EnvRmOfThePackReleasesItsDisk) {
  ASSERT_EQ(world_.Cli({"run", "disky.probe"}).exit_code, 0);
  CommandResult removed = world_.Cli({"env", "rm", "disky"});
  EXPECT_EQ(removed.exit_code, 0) << removed.stdout_text << removed.stderr_text;
  EXPECT_TRUE(MountInfoLine(MountPoint()).empty()) << "still mounted";
  EXPECT_FALSE(Exists(MountPoint()));
  EXPECT_FALSE(Exists(Image()));
  EXPECT_EQ(LoopDevicesBackedFrom(world_.StateDir()), 0) << "the loop device stayed attached";
}

}  // namespace
}  // namespace packvisor::testing
