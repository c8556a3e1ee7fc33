// envs/lock.h (one builder at a time, across processes) and the parts of envs/environment.h that
// need no sandbox: name checks, states, digest, Inspect/List/Remove/CleanUpStale on trees made
// by hand.
#include "envs/environment.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "envs/lock.h"
#include "envs/runtime.h"
#include "tests/support/scratch_dir.h"

namespace packvisor::envs {
namespace {

namespace fs = std::filesystem;

using TempTree = testing::ScratchDir;

// ---- FileLock ----

TEST(FileLock, SecondExclusiveTryAcquireFailsWhileHeld) {
  TempTree tree;
  std::string path = tree.Path("env.build");
  {
    auto first = FileLock::TryAcquire(path);
    ASSERT_TRUE(first.ok()) << first.error().message();
    auto second = FileLock::TryAcquire(path);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().err, EWOULDBLOCK);
    auto timed = FileLock::Acquire(path, std::chrono::milliseconds(100));
    EXPECT_FALSE(timed.ok()) << "Acquire must time out while the lock is held";
  }
  // Released on destruction.
  auto again = FileLock::TryAcquire(path);
  EXPECT_TRUE(again.ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FileLock, MovedLockStaysHeld) {
  TempTree tree;
  std::string path = tree.Path("moved");
  auto first = FileLock::TryAcquire(path);
  ASSERT_TRUE(first.ok());
  FileLock moved = std::move(*first);
  EXPECT_FALSE(FileLock::TryAcquire(path).ok());
}

TEST(FileLock, SharedHoldersExcludeAnExclusiveOne) {
  TempTree tree;
  std::string path = tree.Path("env.inuse");
  {
    auto a = FileLock::AcquireShared(path);
    auto b = FileLock::AcquireShared(path);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok()) << "two executions share an environment";
    EXPECT_FALSE(FileLock::TryAcquire(path).ok());
  }
  EXPECT_TRUE(FileLock::TryAcquire(path).ok());
}

TEST(FileLock, RefusesASymlinkedLockFile) {
  TempTree tree;
  tree.Write("elsewhere", "");
  fs::create_symlink(tree.Path("elsewhere"), tree.Path("link.build"));
  EXPECT_FALSE(FileLock::TryAcquire(tree.Path("link.build")).ok());
}

// A child process holds the lock until told to release it (or is killed).
TEST(FileLock, WorksAcrossProcessesAndDiesWithItsHolder) {
  TempTree tree;
  std::string path = tree.Path("cross.build");
  for (bool kill_holder : {false, true}) {
    int ready[2], release[2];
    ASSERT_EQ(pipe(ready), 0);
    ASSERT_EQ(pipe(release), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(ready[0]);
      close(release[1]);
      auto lock = FileLock::TryAcquire(path);
      char byte = lock.ok() ? 'y' : 'n';
      if (write(ready[1], &byte, 1) != 1) _exit(2);
      if (read(release[0], &byte, 1) < 0) _exit(3);
      _exit(lock.ok() ? 0 : 1);
    }
    close(ready[1]);
    close(release[0]);
    char byte = 0;
    ASSERT_EQ(read(ready[0], &byte, 1), 1);
    ASSERT_EQ(byte, 'y');
    EXPECT_FALSE(FileLock::TryAcquire(path).ok()) << "held by another process";
    auto waited = FileLock::Acquire(path, std::chrono::milliseconds(50));
    EXPECT_FALSE(waited.ok());
    if (kill_holder) {
      kill(pid, SIGKILL);
    } else {
      ASSERT_EQ(write(release[1], "x", 1), 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(ready[0]);
    close(release[1]);
    auto after = FileLock::Acquire(path, std::chrono::milliseconds(2000));
    EXPECT_TRUE(after.ok()) << (kill_holder ? "killed" : "exited") << " holder left it locked";
  }
}

TEST(FileLock, AcquireWaitsForTheHolder) {
  TempTree tree;
  std::string path = tree.Path("wait.build");
  int ready[2];
  int release[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(release, O_CLOEXEC), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto lock = FileLock::TryAcquire(path);
    char held = lock.ok() ? 1 : 0;
    (void)!write(ready[1], &held, 1);
    char go = 0;
    (void)!read(release[0], &go, 1);
    _exit(lock.ok() ? 0 : 1);
  }
  close(ready[1]);
  close(release[0]);
  char held = 0;
  ASSERT_EQ(read(ready[0], &held, 1), 1);
  ASSERT_EQ(held, 1) << "the holder did not get the lock";
  EXPECT_FALSE(FileLock::TryAcquire(path).ok()) << "the lock is held by the child";
  std::atomic<bool> acquired{false};
  std::thread waiter([&] {
    auto lock = FileLock::Acquire(path, std::chrono::seconds(30));
    acquired = lock.ok();
  });
  // While the holder lives, the waiter cannot have the lock, however fast or slow this host is.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(acquired.load()) << "Acquire returned while another process held the lock";
  ASSERT_EQ(write(release[1], "x", 1), 1);
  waiter.join();
  int status = 0;
  waitpid(pid, &status, 0);
  close(ready[0]);
  close(release[1]);
  EXPECT_TRUE(acquired.load()) << "Acquire did not get the lock once the holder was gone";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// ---- names ----

TEST(EnvironmentNames, AcceptsPathSafeNames) {
  for (const std::string& name :
       std::vector<std::string>{"a", "hello", "core", "my-pack_2", "0pack", std::string(64, 'x')}) {
    EXPECT_TRUE(CheckEnvironmentNames(name, "python").ok()) << name;
    EXPECT_TRUE(CheckEnvironmentNames("pack", name).ok()) << name;
  }
}

TEST(EnvironmentNames, RefusesEverythingElse) {
  for (const std::string& name :
       {std::string(), std::string("."), std::string(".."), std::string("../x"), std::string("a/b"),
        std::string("Hello"), std::string("-pack"), std::string("_pack"),
        std::string(".staging-python-1"), std::string("a.b"), std::string("a b"),
        std::string(65, 'x'), std::string("p\nq"), std::string("p\0q", 3)}) {
    auto as_pack = CheckEnvironmentNames(name, "python");
    EXPECT_FALSE(as_pack.ok()) << "pack ref '" << name << "'";
    if (!as_pack.ok()) {
      EXPECT_NE(as_pack.error().message().find("pack ref"), std::string::npos);
    }
    auto as_runtime = CheckEnvironmentNames("pack", name);
    EXPECT_FALSE(as_runtime.ok()) << "runtime '" << name << "'";
    if (!as_runtime.ok()) {
      EXPECT_NE(as_runtime.error().message().find("runtime"), std::string::npos);
    }
  }
}

TEST(EnvironmentNames, StateNames) {
  EXPECT_STREQ(EnvironmentStateName(EnvironmentState::kMissing), "missing");
  EXPECT_STREQ(EnvironmentStateName(EnvironmentState::kReady), "ready");
  EXPECT_STREQ(EnvironmentStateName(EnvironmentState::kStale), "stale");
  EXPECT_STREQ(EnvironmentStateName(EnvironmentState::kBroken), "broken");
}

// ---- EnvironmentManager without a sandbox ----

constexpr char kRuntime[] = R"(name = "python"
[interpreter]
binary = "/usr/bin/python3"
file_extension = ".py"
[environment]
create_command = ["{interpreter}", "-m", "venv", "--without-pip", "{env_dir}"]
interpreter_path = "{env_dir}/bin/python3"
[dependencies]
manifest_file = "requirements.txt"
install_command = ["{interpreter}", "-m", "pip", "install", "-r", "{manifest_path}"]
)";

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto runtime = ParseRuntimeDefinition(kRuntime, "test.toml");
    ASSERT_TRUE(runtime.ok()) << runtime.error().message();
    runtime_ = *runtime;
    tree_.Write("packs/hello/pack.yaml", "ref: hello\n");
    settings_.runtime_envs_dir = tree_.Path("envs");
    settings_.state_dir = tree_.Path("state");
  }
  std::string PackDir() const { return tree_.Path("packs/hello"); }
  EnvironmentManager Manager() const { return EnvironmentManager(settings_); }
  // A published-looking environment: the dir and a marker naming it with `digest`.
  void FakePublished(const std::string& digest, bool matching_inode = true) const {
    fs::create_directories(tree_.Path("envs/hello/python/bin"));
    struct stat st {};
    stat(tree_.Path("envs/hello/python").c_str(), &st);
    tree_.Write("envs/hello/.python.ready",
                "{\"digest\": \"" + digest + "\", \"ino\": " +
                    std::to_string(matching_inode ? st.st_ino : st.st_ino + 1) + "}\n");
  }

  TempTree tree_;
  EnvironmentSettings settings_;
  RuntimeDefinition runtime_;
};

TEST_F(ManagerTest, InterpreterIsTheSystemsForCreateAndTheEnvironmentsForExecute) {
  auto create = InterpreterFor(runtime_, CommandPhase::kCreate);
  auto execute = InterpreterFor(runtime_, CommandPhase::kExecute);
  ASSERT_TRUE(create.ok());
  ASSERT_TRUE(execute.ok());
  EXPECT_EQ(*create, "/usr/bin/python3");
  EXPECT_EQ(*execute, "/env/bin/python3");
}

TEST_F(ManagerTest, DigestFollowsManifestInstallEnvAndDefinition) {
  EnvironmentManager manager = Manager();
  auto none = manager.Digest(PackDir(), runtime_);
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_EQ(*manager.Digest(PackDir(), runtime_), *none) << "stable";

  tree_.Write("packs/hello/requirements.txt", "demo-pkg==1.0\n");
  auto with_manifest = manager.Digest(PackDir(), runtime_);
  ASSERT_TRUE(with_manifest.ok());
  EXPECT_NE(*with_manifest, *none);
  tree_.Write("packs/hello/requirements.txt", "");
  auto empty_manifest = manager.Digest(PackDir(), runtime_);
  ASSERT_TRUE(empty_manifest.ok());
  EXPECT_NE(*empty_manifest, *none) << "an empty manifest is not a missing one";
  tree_.Write("packs/hello/requirements.txt", "demo-pkg==1.0\n");
  EXPECT_EQ(*manager.Digest(PackDir(), runtime_), *with_manifest);

  EnvironmentSettings mirrored = settings_;
  mirrored.install_env["PIP_INDEX_URL"] = "http://mirror.invalid/simple";
  EXPECT_NE(*EnvironmentManager(mirrored).Digest(PackDir(), runtime_), *with_manifest);

  RuntimeDefinition changed = runtime_;
  changed.dependencies->install_command.push_back("--no-deps");
  EXPECT_NE(*manager.Digest(PackDir(), changed), *with_manifest);
}

TEST_F(ManagerTest, DigestRefusesASymlinkedManifest) {
  tree_.Write("outside.txt", "demo-pkg==1.0\n");
  fs::create_symlink(tree_.Path("outside.txt"), tree_.Path("packs/hello/requirements.txt"));
  EXPECT_FALSE(Manager().Digest(PackDir(), runtime_).ok());
}

TEST_F(ManagerTest, InspectReportsMissingReadyStaleAndBroken) {
  EnvironmentManager manager = Manager();
  auto missing = manager.Inspect("hello", PackDir(), runtime_);
  ASSERT_TRUE(missing.ok()) << missing.error().message();
  EXPECT_EQ(missing->state, EnvironmentState::kMissing);
  EXPECT_EQ(missing->path, tree_.Path("envs/hello/python"));
  EXPECT_FALSE(fs::exists(tree_.Path("envs"))) << "Inspect creates nothing";

  auto digest = manager.Digest(PackDir(), runtime_);
  ASSERT_TRUE(digest.ok());
  FakePublished(*digest);
  auto ready = manager.Inspect("hello", PackDir(), runtime_);
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->state, EnvironmentState::kReady);
  EXPECT_EQ(ready->digest, *digest);

  tree_.Write("packs/hello/requirements.txt", "demo-pkg==1.0\n");
  EXPECT_EQ(manager.Inspect("hello", PackDir(), runtime_)->state, EnvironmentState::kStale);
  fs::remove(tree_.Path("packs/hello/requirements.txt"));
  EXPECT_EQ(manager.Inspect("hello", PackDir(), runtime_)->state, EnvironmentState::kReady);

  // The marker names another directory (e.g. the env was replaced by hand): broken.
  FakePublished(*digest, false);
  EXPECT_EQ(manager.Inspect("hello", PackDir(), runtime_)->state, EnvironmentState::kBroken);
  // A directory without a marker (a build that never finished publishing): broken.
  fs::remove(tree_.Path("envs/hello/.python.ready"));
  EXPECT_EQ(manager.Inspect("hello", PackDir(), runtime_)->state, EnvironmentState::kBroken);
  // A marker that is a symlink to a good-looking file is not read.
  FakePublished(*digest);
  fs::rename(tree_.Path("envs/hello/.python.ready"), tree_.Path("good-marker"));
  fs::create_symlink(tree_.Path("good-marker"), tree_.Path("envs/hello/.python.ready"));
  EXPECT_NE(manager.Inspect("hello", PackDir(), runtime_)->state, EnvironmentState::kReady);
  // The environment itself replaced by a symlink to a directory: never ready.
  fs::remove(tree_.Path("envs/hello/.python.ready"));
  fs::rename(tree_.Path("envs/hello/python"), tree_.Path("real-env"));
  fs::create_directory_symlink(tree_.Path("real-env"), tree_.Path("envs/hello/python"));
  FakePublished(*digest);
  EXPECT_NE(manager.Inspect("hello", PackDir(), runtime_)->state, EnvironmentState::kReady);
}

TEST_F(ManagerTest, InspectRefusesBadNames) {
  RuntimeDefinition bad = runtime_;
  bad.name = "../python";
  EXPECT_FALSE(Manager().Inspect("hello", PackDir(), bad).ok());
  EXPECT_FALSE(Manager().Inspect("../hello", PackDir(), runtime_).ok());
}

TEST_F(ManagerTest, ListShowsPublishedEnvironmentsOnly) {
  EnvironmentManager manager = Manager();
  auto empty = manager.List();
  ASSERT_TRUE(empty.ok()) << "a missing runtime_envs_dir is an empty list";
  EXPECT_TRUE(empty->empty());

  FakePublished("abc");
  fs::create_directories(tree_.Path("envs/hello/.staging-python-0123456789abcdef"));
  fs::create_directories(tree_.Path("envs/Bad-Name/python"));
  fs::create_directories(tree_.Path("envs/other/node"));  // no marker
  auto infos = manager.List();
  ASSERT_TRUE(infos.ok()) << infos.error().message();
  ASSERT_EQ(infos->size(), 2u);
  for (const EnvironmentInfo& info : *infos) {
    if (info.pack_ref == "hello") {
      EXPECT_EQ(info.runtime, "python");
      EXPECT_EQ(info.state, EnvironmentState::kReady);
      EXPECT_EQ(info.digest, "abc");
    } else {
      EXPECT_EQ(info.pack_ref, "other");
      EXPECT_EQ(info.runtime, "node");
      EXPECT_EQ(info.state, EnvironmentState::kBroken);
    }
  }
}

TEST_F(ManagerTest, RemoveDeletesEnvironmentMarkerAndLeftovers) {
  FakePublished("abc");
  tree_.Write("envs/hello/python/bin/python3", "x");
  fs::create_directories(tree_.Path("envs/hello/.old-python-0123456789abcdef/bin"));
  tree_.Write("envs/hello/.python.used", "");
  EnvironmentManager manager = Manager();
  auto removed = manager.Remove("hello", "python");
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_FALSE(fs::exists(tree_.Path("envs/hello/python")));
  EXPECT_FALSE(fs::exists(tree_.Path("envs/hello/.python.ready")));
  EXPECT_FALSE(fs::exists(tree_.Path("envs/hello/.python.used")));
  EXPECT_FALSE(fs::exists(tree_.Path("envs/hello/.old-python-0123456789abcdef")));
  EXPECT_FALSE(manager.Remove("../etc", "").ok());
  EXPECT_FALSE(manager.Remove("hello", "../x").ok());
}

TEST_F(ManagerTest, RemoveRefusesWhileInUse) {
  FakePublished("abc");
  EnvironmentManager manager = Manager();
  fs::create_directories(tree_.Path("state/locks"));
  {
    auto in_use = FileLock::AcquireShared(tree_.Path("state/locks/hello.python.inuse"));
    ASSERT_TRUE(in_use.ok());
    auto refused = manager.Remove("hello", "python");
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message().find("in use"), std::string::npos);
    EXPECT_TRUE(fs::exists(tree_.Path("envs/hello/python")));
    EXPECT_TRUE(fs::exists(tree_.Path("envs/hello/.python.ready")));
  }
  EXPECT_TRUE(manager.Remove("hello", "python").ok());
  EXPECT_FALSE(fs::exists(tree_.Path("envs/hello/python")));
}

TEST_F(ManagerTest, CleanUpStaleRemovesOnlyUnheldLeftoversWithoutFollowingLinks) {
  FakePublished("abc");
  tree_.Write("target/keep.txt", "keep");
  tree_.Write("envs/hello/.staging-python-00000000000000aa/f", "x");
  tree_.Write("envs/hello/.old-python-00000000000000bb/f", "x");
  fs::create_directory_symlink(tree_.Path("target"),
                               tree_.Path("envs/hello/.staging-python-00000000000000cc"));
  tree_.Write("envs/hello/.staging-node-00000000000000dd/f", "x");
  fs::create_directories(tree_.Path("state/locks"));
  EnvironmentManager manager = Manager();
  {
    // A live builder of hello/node: its staging stays.
    auto building = FileLock::TryAcquire(tree_.Path("state/locks/hello.node.build"));
    ASSERT_TRUE(building.ok());
    ASSERT_TRUE(manager.CleanUpStale().ok());
  }
  EXPECT_FALSE(fs::exists(tree_.Path("envs/hello/.staging-python-00000000000000aa")));
  EXPECT_FALSE(fs::exists(tree_.Path("envs/hello/.old-python-00000000000000bb")));
  EXPECT_FALSE(
      fs::exists(fs::symlink_status(tree_.Path("envs/hello/.staging-python-00000000000000cc"))));
  EXPECT_TRUE(fs::exists(tree_.Path("envs/hello/.staging-node-00000000000000dd/f")));
  EXPECT_TRUE(fs::exists(tree_.Path("target/keep.txt")));
  EXPECT_TRUE(fs::exists(tree_.Path("envs/hello/python")));
  EXPECT_TRUE(fs::exists(tree_.Path("envs/hello/.python.ready")));
}

}  // namespace
}  // namespace packvisor::envs
