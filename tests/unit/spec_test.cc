#include "sandbox/spec.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace packvisor::sandbox {
namespace {

// A scratch directory holding a real pack dir, env dir, a regular file and a symlink to a dir.
class ScratchTree {
 public:
  ScratchTree() {
    char pattern[] = "/tmp/packvisor-spec-test-XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    std::filesystem::create_directory(pack());
    std::filesystem::create_directory(env());
    std::ofstream(file()) << "not a directory";
    std::filesystem::create_directory_symlink(pack(), link());
  }
  ~ScratchTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  std::string pack() const { return root_ + "/pack"; }
  std::string env() const { return root_ + "/env"; }
  std::string file() const { return root_ + "/file"; }
  std::string link() const { return root_ + "/link-to-pack"; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

class SandboxSpecValidate : public ::testing::Test {
 protected:
  SandboxSpec ValidSpec() const {
    SandboxSpec spec;
    spec.argv = {"/bin/true", "arg"};
    spec.env = {"PATH=/usr/bin:/bin", "HOME=/tmp", "EMPTY="};
    spec.pack_dir = tree_.pack();
    spec.env_dir = tree_.env();
    return spec;
  }

  // Validate() must fail, and its message must mention `needle`.
  void ExpectInvalid(const SandboxSpec& spec, const std::string& needle) {
    auto result = spec.Validate();
    ASSERT_FALSE(result.ok()) << "expected a failure mentioning '" << needle << "'";
    EXPECT_NE(result.error().message().find(needle), std::string::npos)
        << "message: " << result.error().message();
  }

  ScratchTree tree_;
};

TEST_F(SandboxSpecValidate, AcceptsAWellFormedSpec) {
  auto result = ValidSpec().Validate();
  EXPECT_TRUE(result.ok()) << result.error().message();
}

TEST_F(SandboxSpecValidate, AcceptsASpecWithoutPackAndEnv) {
  SandboxSpec spec = ValidSpec();
  spec.pack_dir.clear();
  spec.env_dir.clear();
  auto result = spec.Validate();
  EXPECT_TRUE(result.ok()) << result.error().message();
}

TEST_F(SandboxSpecValidate, RejectsEmptyArgv) {
  SandboxSpec spec = ValidSpec();
  spec.argv.clear();
  ExpectInvalid(spec, "argv is empty");
}

TEST_F(SandboxSpecValidate, RejectsEmptyCommandName) {
  SandboxSpec spec = ValidSpec();
  spec.argv = {""};
  ExpectInvalid(spec, "invalid command");
}

TEST_F(SandboxSpecValidate, RejectsNulInsideAnArgument) {
  SandboxSpec spec = ValidSpec();
  spec.argv.push_back(std::string("a\0b", 3));
  ExpectInvalid(spec, "NUL");
}

TEST_F(SandboxSpecValidate, RejectsRelativePackDir) {
  SandboxSpec spec = ValidSpec();
  spec.pack_dir = "tmp/pack";
  ExpectInvalid(spec, "tmp/pack");
}

TEST_F(SandboxSpecValidate, RejectsPackDirWithDotDot) {
  SandboxSpec spec = ValidSpec();
  // The path resolves to an existing directory, but it is not normalized.
  spec.pack_dir = tree_.root() + "/env/../pack";
  ExpectInvalid(spec, "invalid pack dir");
}

TEST_F(SandboxSpecValidate, RejectsPackDirEscapingWithDotDot) {
  SandboxSpec spec = ValidSpec();
  spec.pack_dir = tree_.pack() + "/../../etc";
  ExpectInvalid(spec, "invalid pack dir");
}

TEST_F(SandboxSpecValidate, RejectsPackDirWithDotComponent) {
  SandboxSpec spec = ValidSpec();
  spec.pack_dir = tree_.root() + "/./pack";
  ExpectInvalid(spec, "invalid pack dir");
}

TEST_F(SandboxSpecValidate, RejectsPackDirWithTrailingSlash) {
  SandboxSpec spec = ValidSpec();
  spec.pack_dir = tree_.pack() + "/";
  ExpectInvalid(spec, "invalid pack dir");
}

TEST_F(SandboxSpecValidate, RejectsPackDirWithDoubleSlash) {
  SandboxSpec spec = ValidSpec();
  spec.pack_dir = tree_.root() + "//pack";
  ExpectInvalid(spec, "invalid pack dir");
}

TEST_F(SandboxSpecValidate, RejectsMissingPackDir) {
  SandboxSpec spec = ValidSpec();
  spec.pack_dir = tree_.root() + "/does-not-exist";
  auto result = spec.Validate();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().err, ENOENT);
  EXPECT_NE(result.error().message().find("does-not-exist"), std::string::npos);
}

TEST_F(SandboxSpecValidate, RejectsPackDirThatIsARegularFile) {
  SandboxSpec spec = ValidSpec();
  spec.pack_dir = tree_.file();
  ExpectInvalid(spec, "not a directory");
}

TEST_F(SandboxSpecValidate, RejectsPackDirThatIsASymlinkToADirectory) {
  SandboxSpec spec = ValidSpec();
  spec.pack_dir = tree_.link();
  ExpectInvalid(spec, "symbolic link");
}

TEST_F(SandboxSpecValidate, RejectsEnvDirThatIsASymlinkOrFileOrRelative) {
  SandboxSpec spec = ValidSpec();
  spec.env_dir = tree_.link();
  ExpectInvalid(spec, "invalid env dir");
  spec.env_dir = tree_.file();
  ExpectInvalid(spec, "not a directory");
  spec.env_dir = "env";
  ExpectInvalid(spec, "invalid env dir");
  spec.env_dir = tree_.env() + "/";
  ExpectInvalid(spec, "invalid env dir");
}

TEST_F(SandboxSpecValidate, RejectsHostUidZero) {
  SandboxSpec spec = ValidSpec();
  spec.ids.host_uid = 0;
  ExpectInvalid(spec, "host uid/gid 0");
}

TEST_F(SandboxSpecValidate, RejectsHostGidZero) {
  SandboxSpec spec = ValidSpec();
  spec.ids.host_gid = 0;
  ExpectInvalid(spec, "host uid/gid 0");
}

TEST_F(SandboxSpecValidate, RejectsInsideUidOrGidZero) {
  SandboxSpec spec = ValidSpec();
  spec.ids.inside_uid = 0;
  ExpectInvalid(spec, "invalid id mapping");
  spec = ValidSpec();
  spec.ids.inside_gid = 0;
  ExpectInvalid(spec, "invalid id mapping");
}

TEST_F(SandboxSpecValidate, RejectsEnvEntryWithoutEquals) {
  SandboxSpec spec = ValidSpec();
  spec.env.push_back("NOVALUE");
  ExpectInvalid(spec, "NOVALUE");
}

TEST_F(SandboxSpecValidate, RejectsEnvEntryWithEmptyName) {
  SandboxSpec spec = ValidSpec();
  spec.env.push_back("=value");
  ExpectInvalid(spec, "invalid environment entry");
}

TEST_F(SandboxSpecValidate, RejectsEnvEntryWithNul) {
  SandboxSpec spec = ValidSpec();
  spec.env.push_back(std::string("NAME=a\0b", 8));
  ExpectInvalid(spec, "invalid environment entry");
}

TEST_F(SandboxSpecValidate, AcceptsExtraReadOnlyBindOfAHostDirectory) {
  SandboxSpec spec = ValidSpec();
  spec.extra_ro_binds = {"/usr/share"};
  auto result = spec.Validate();
  EXPECT_TRUE(result.ok()) << result.error().message();
}

TEST_F(SandboxSpecValidate, RejectsExtraBindsOverlappingSandboxMountPoints) {
  for (const char* bind :
       {"/", "/pack", "/env", "/tmp", "/proc", "/dev", "/proc/sys", "/dev/shm"}) {
    SandboxSpec spec = ValidSpec();
    spec.extra_ro_binds = {bind};
    auto result = spec.Validate();
    ASSERT_FALSE(result.ok()) << bind << " was accepted";
    EXPECT_NE(result.error().message().find("invalid extra read-only bind"), std::string::npos)
        << bind << ": " << result.error().message();
  }
}

TEST_F(SandboxSpecValidate, RejectsExtraBindUnderTmpEvenWhenItExists) {
  SandboxSpec spec = ValidSpec();
  spec.extra_ro_binds = {tree_.pack()};  // exists, but lies under /tmp
  ExpectInvalid(spec, "overlaps a sandbox mount point");
}

TEST_F(SandboxSpecValidate, RejectsRelativeMissingOrSymlinkExtraBinds) {
  SandboxSpec spec = ValidSpec();
  spec.extra_ro_binds = {"usr/share"};
  ExpectInvalid(spec, "usr/share");
  spec.extra_ro_binds = {"/usr/../etc"};
  ExpectInvalid(spec, "invalid extra read-only bind");
  spec.extra_ro_binds = {"/no-such-directory-for-packvisor-tests"};
  ExpectInvalid(spec, "no-such-directory-for-packvisor-tests");
}

TEST_F(SandboxSpecValidate, RejectsNonPositiveTimeoutAndNegativeGrace) {
  SandboxSpec spec = ValidSpec();
  spec.timeout = std::chrono::milliseconds(0);
  ExpectInvalid(spec, "invalid timeout");
  spec = ValidSpec();
  spec.kill_grace = std::chrono::milliseconds(-1);
  ExpectInvalid(spec, "invalid kill grace");
}

TEST_F(SandboxSpecValidate, RejectsImpossibleResourceLimits) {
  SandboxSpec spec = ValidSpec();
  spec.limits.nofile = 2;
  ExpectInvalid(spec, "invalid resource limits");
  spec = ValidSpec();
  spec.limits.nproc = 0;
  ExpectInvalid(spec, "invalid resource limits");
  spec = ValidSpec();
  spec.limits.tmp_size_bytes = 100;
  ExpectInvalid(spec, "invalid resource limits");
}

TEST_F(SandboxSpecValidate, RejectsEmptyOrOverlongHostname) {
  SandboxSpec spec = ValidSpec();
  spec.hostname = "";
  ExpectInvalid(spec, "invalid hostname");
  spec.hostname = std::string(65, 'h');
  ExpectInvalid(spec, "invalid hostname");
  spec.hostname = std::string(64, 'h');
  EXPECT_TRUE(spec.Validate().ok());
}

TEST_F(SandboxSpecValidate, RejectsUnnormalizedWorkingDir) {
  SandboxSpec spec = ValidSpec();
  spec.working_dir = "pack";
  ExpectInvalid(spec, "invalid working directory");
  spec.working_dir = "/pack/../etc";
  ExpectInvalid(spec, "invalid working directory");
}

TEST(SandboxPath, UsesThePathEntryOfTheEnvironment) {
  EXPECT_EQ(SandboxPath({"HOME=/tmp", "PATH=/env/bin:/usr/bin", "LANG=C"}), "/env/bin:/usr/bin");
}

TEST(SandboxPath, IgnoresVariablesThatOnlyStartWithPath) {
  EXPECT_EQ(SandboxPath({"PATHX=/nope", "MYPATH=/nope"}), "/usr/local/bin:/usr/bin:/bin");
}

TEST(SandboxPath, DefaultsWhenTheEnvironmentHasNoPath) {
  EXPECT_EQ(SandboxPath({}), "/usr/local/bin:/usr/bin:/bin");
}

}  // namespace
}  // namespace packvisor::sandbox
