// envs/safe_fs: the root supervisor's operations inside trees sandboxed code could have written.
// None may follow a symlink or leave the filesystem it started on.
#include "envs/safe_fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

namespace packvisor::envs {
namespace {

namespace fs = std::filesystem;

class SafeFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/packvisor-safefs-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    // A sibling directory the symlinks point at: it must survive everything.
    target_ = root_ + "/target";
    Write(target_ + "/keep.txt", "keep");
    Write(target_ + "/sub/deeper.txt", "deeper");
    chmod((target_ + "/keep.txt").c_str(), 0640);
    work_ = root_ + "/work";
    fs::create_directories(work_);
    fd_ = open(work_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static void Write(const std::string& path, const std::string& content) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Paths, types, modes, owners and contents under target_.
  std::string TargetState() const {
    std::string state;
    for (const auto& entry : fs::recursive_directory_iterator(target_)) {
      struct stat st {};
      lstat(entry.path().c_str(), &st);
      state += entry.path().string() + " " + std::to_string(st.st_mode) + " " +
               std::to_string(st.st_uid) + " " + std::to_string(st.st_gid) + " " +
               (entry.is_regular_file() ? Read(entry.path()) : "") + "\n";
    }
    return state;
  }

  std::string root_, target_, work_;
  int fd_ = -1;
};

TEST_F(SafeFsTest, RemoveTreeAtRemovesANestedTree) {
  Write(work_ + "/tree/a/b/c.txt", "c");
  Write(work_ + "/tree/d.txt", "d");
  chmod((work_ + "/tree/a/b").c_str(), 0);  // root removes it anyway
  ASSERT_TRUE(RemoveTreeAt(fd_, "tree").ok());
  EXPECT_FALSE(fs::exists(work_ + "/tree"));
}

TEST_F(SafeFsTest, RemoveTreeAtNeverFollowsSymlinks) {
  std::string before = TargetState();
  Write(work_ + "/tree/file.txt", "x");
  fs::create_directory_symlink(target_, work_ + "/tree/dir-link");
  fs::create_symlink(target_ + "/keep.txt", work_ + "/tree/file-link");
  fs::create_directories(work_ + "/tree/nested");
  fs::create_directory_symlink(target_ + "/sub", work_ + "/tree/nested/sub-link");
  fs::create_symlink("/etc/shadow", work_ + "/tree/shadow-link");
  fs::create_symlink("../../target", work_ + "/tree/relative-link");

  auto removed = RemoveTreeAt(fd_, "tree");
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_FALSE(fs::exists(fs::symlink_status(work_ + "/tree")));
  EXPECT_EQ(TargetState(), before);
  EXPECT_EQ(Read(target_ + "/sub/deeper.txt"), "deeper");
  EXPECT_TRUE(fs::exists("/etc/shadow"));
}

TEST_F(SafeFsTest, RemoveTreeAtOnASymlinkRemovesOnlyTheLink) {
  std::string before = TargetState();
  fs::create_directory_symlink(target_, work_ + "/link");
  ASSERT_TRUE(RemoveTreeAt(fd_, "link").ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(work_ + "/link")));
  EXPECT_EQ(TargetState(), before);
}

TEST_F(SafeFsTest, RemoveTreeAtAcceptsMissingAndRefusesPaths) {
  EXPECT_TRUE(RemoveTreeAt(fd_, "missing").ok());
  fs::create_directories(work_ + "/a/b");
  for (const char* name : {"", ".", "..", "a/b", "../target", "/tmp"}) {
    EXPECT_FALSE(RemoveTreeAt(fd_, name).ok()) << name;
  }
  EXPECT_TRUE(fs::exists(work_ + "/a/b"));
  EXPECT_TRUE(fs::exists(target_ + "/keep.txt"));
}

TEST_F(SafeFsTest, RemoveTreeAtDoesNotCrossOntoAnotherFilesystem) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  Write(work_ + "/tree/own.txt", "own");
  fs::create_directories(work_ + "/tree/mnt");
  // In a child with a private mount namespace, so no mount outlives the test.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0) _exit(10);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(11);
    std::string mnt = work_ + "/tree/mnt";
    if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) _exit(12);
    Write(mnt + "/other-fs.txt", "other");
    // An fd opened in this namespace (one opened before unshare does not see the mount).
    int work = open(work_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (work < 0) _exit(13);
    auto removed = RemoveTreeAt(work, "tree");
    if (removed.ok()) _exit(1);                            // crossed, or ignored it
    if (Read(mnt + "/other-fs.txt") != "other") _exit(2);  // removed the mount's files
    std::ofstream(root_ + "/child-error") << removed.error().message();
    if (removed.error().message().find("filesystem") == std::string::npos) _exit(3);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) >= 10) GTEST_SKIP() << "cannot mount here: " << WEXITSTATUS(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "error: " << Read(root_ + "/child-error");
}

TEST_F(SafeFsTest, TreeSizeAtCountsTheTreeNotLinkTargets) {
  Write(target_ + "/big.bin", std::string(4 << 20, 'b'));
  Write(work_ + "/tree/small.bin", std::string(10000, 's'));
  fs::create_symlink(target_ + "/big.bin", work_ + "/tree/big-link");
  fs::create_directory_symlink(target_, work_ + "/tree/dir-link");
  auto size = TreeSizeAt(fd_, "tree");
  ASSERT_TRUE(size.ok()) << size.error().message();
  EXPECT_GE(*size, 10000u);
  EXPECT_LT(*size, 1u << 20);
  // stop_after: reported as soon as the limit is passed.
  Write(work_ + "/large/a.bin", std::string(2 << 20, 'a'));
  Write(work_ + "/large/b.bin", std::string(2 << 20, 'b'));
  auto limited = TreeSizeAt(fd_, "large", 1 << 20);
  ASSERT_TRUE(limited.ok());
  EXPECT_GT(*limited, 1u << 20);
  auto full = TreeSizeAt(fd_, "large");
  ASSERT_TRUE(full.ok());
  EXPECT_GE(*full, 4u << 20);
}

TEST_F(SafeFsTest, ReadSmallFileAtReadsRegularFilesOnly) {
  Write(work_ + "/plain", "hello");
  auto text = ReadSmallFileAt(fd_, "plain", 100);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "hello");
  EXPECT_FALSE(ReadSmallFileAt(fd_, "plain", 3).ok()) << "larger than max_bytes";
  auto exact = ReadSmallFileAt(fd_, "plain", 5);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, "hello");

  fs::create_symlink(target_ + "/keep.txt", work_ + "/link");
  auto link = ReadSmallFileAt(fd_, "link", 100);
  EXPECT_FALSE(link.ok()) << "read through a symlink: " << *link;
  fs::create_directories(work_ + "/dir");
  EXPECT_FALSE(ReadSmallFileAt(fd_, "dir", 100).ok());
  EXPECT_FALSE(ReadSmallFileAt(fd_, "../target/keep.txt", 100).ok());
  EXPECT_FALSE(ReadSmallFileAt(fd_, "missing", 100).ok());
  fs::create_directory_symlink(target_, work_ + "/dir-link");
  EXPECT_FALSE(ReadSmallFileAt(fd_, "dir-link/keep.txt", 100).ok());
}

TEST_F(SafeFsTest, ReadSmallFileAtRefusesAFifoWithoutBlocking) {
  std::string fifo = work_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  auto reading = std::async(std::launch::async, [&] { return ReadSmallFileAt(fd_, "fifo", 100); });
  if (reading.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
    // Unblock the reader so that the test can end, then fail.
    int writer = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0) close(writer);
    reading.wait();
    FAIL() << "ReadSmallFileAt blocked on a FIFO";
  }
  EXPECT_FALSE(reading.get().ok());
}

TEST_F(SafeFsTest, OpenDirPathRefusesSymlinkComponents) {
  fs::create_directories(work_ + "/real/inner");
  auto opened = OpenDirPath(work_ + "/real/inner", false);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  struct stat via_fd {
  }, via_path{};
  fstat(opened->get(), &via_fd);
  stat((work_ + "/real/inner").c_str(), &via_path);
  EXPECT_EQ(via_fd.st_ino, via_path.st_ino);

  fs::create_directory_symlink(work_ + "/real", work_ + "/link");
  EXPECT_FALSE(OpenDirPath(work_ + "/link/inner", false).ok());
  EXPECT_FALSE(OpenDirPath(work_ + "/link", false).ok());
  EXPECT_FALSE(OpenDirPath(work_ + "/link/created", true).ok());
  EXPECT_FALSE(fs::exists(work_ + "/real/created")) << "created through a symlink";
  EXPECT_FALSE(OpenDirPath("relative/path", false).ok());
  EXPECT_FALSE(OpenDirPath(work_ + "/real/../real", false).ok());
  EXPECT_FALSE(OpenDirPath(work_ + "/missing", false).ok());
}

TEST_F(SafeFsTest, OpenDirPathCreatesMissingComponents) {
  std::string path = work_ + "/new/a/b";
  auto opened = OpenDirPath(path, true, 0750);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777 & ~0022u, 0750u & ~0022u);
  EXPECT_TRUE(OpenDirPath(path, true, 0750).ok()) << "existing directories are fine";
}

TEST_F(SafeFsTest, OpenDirBeneathRefusesSymlinksAndPaths) {
  fs::create_directories(work_ + "/dir/inner");
  EXPECT_TRUE(OpenDirBeneath(fd_, "dir").ok());
  fs::create_directory_symlink(work_ + "/dir", work_ + "/link");
  EXPECT_FALSE(OpenDirBeneath(fd_, "link").ok());
  EXPECT_FALSE(OpenDirBeneath(fd_, "dir/inner").ok());
  EXPECT_FALSE(OpenDirBeneath(fd_, "..").ok());
  EXPECT_FALSE(OpenDirBeneath(fd_, "").ok());
}

TEST_F(SafeFsTest, ChownTreeAtDoesNotFollowSymlinks) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  std::string before = TargetState();
  Write(work_ + "/tree/file", "f");
  fs::create_directory_symlink(target_, work_ + "/tree/dir-link");
  fs::create_symlink(target_ + "/keep.txt", work_ + "/tree/file-link");
  ASSERT_TRUE(ChownTreeAt(fd_, "tree", 4242, 4343).ok());
  struct stat st {};
  ASSERT_EQ(lstat((work_ + "/tree/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4242u);
  ASSERT_EQ(lstat((work_ + "/tree/dir-link").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4242u);  // the link itself
  EXPECT_EQ(TargetState(), before);
}

TEST_F(SafeFsTest, WriteFileAtomicAtReplacesAPlantedSymlinkInsteadOfFollowingIt) {
  std::string before = TargetState();
  fs::create_symlink(target_ + "/keep.txt", work_ + "/marker");
  ASSERT_TRUE(WriteFileAtomicAt(fd_, "marker", "new content").ok());
  EXPECT_FALSE(fs::is_symlink(work_ + "/marker"));
  EXPECT_EQ(Read(work_ + "/marker"), "new content");
  EXPECT_EQ(TargetState(), before);
  struct stat st {};
  ASSERT_EQ(stat((work_ + "/marker").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // No temporary file is left beside it.
  int entries = 0;
  for (const auto& entry : fs::directory_iterator(work_)) entries += entry.path() != "";
  EXPECT_EQ(entries, 1);
}

TEST(SafeFsNames, RandomSuffixIsHexAndVaries) {
  std::string a = RandomSuffix();
  std::string b = RandomSuffix();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace packvisor::envs
