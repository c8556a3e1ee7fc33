// The runtime definitions read from disk (supervisor/config/builtin_runtimes.h): the installed
// directory found from the binary's own path, and the ownership rules every directory of
// definitions must meet before root reads it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "supervisor/config/builtin_runtimes.h"
#include "tests/support/scratch_dir.h"

namespace packvisor {
namespace {

constexpr char kRuby[] = R"(name = "ruby"
[interpreter]
binary = "/usr/bin/ruby"
file_extension = ".rb"
)";

TEST(InstalledRuntimes, DirectoryIsBesideTheBinarysPrefix) {
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string prefix = std::filesystem::path(exe).parent_path().parent_path().string();
  EXPECT_EQ(InstalledRuntimesDir(), prefix + "/share/packvisor/runtimes");
}

TEST(InstalledRuntimes, TrustedDirectoryLoadsInNameOrder) {
  testing::ScratchDir dir;
  chmod(dir.path().c_str(), 0755);
  dir.Write("b-ruby.toml", kRuby);
  dir.Write(
      "a-lua.toml",
      "name = \"lua\"\n[interpreter]\nbinary = \"/usr/bin/lua\"\nfile_extension = \".lua\"\n");
  dir.Write("README", "not a definition");
  auto loaded = LoadTrustedRuntimeDirectory(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].name, "lua");
  EXPECT_EQ((*loaded)[1].name, "ruby");
}

TEST(InstalledRuntimes, WritableByOthersIsRefused) {
  testing::ScratchDir dir;
  std::string file = dir.Write("ruby.toml", kRuby);
  chmod(dir.path().c_str(), 0775);
  auto loaded = LoadTrustedRuntimeDirectory(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message().rfind(
                "load runtime definitions " + dir.path() + ": writable by group or others", 0),
            0u)
      << loaded.error().message();

  chmod(dir.path().c_str(), 0755);
  chmod(file.c_str(), 0646);
  loaded = LoadTrustedRuntimeDirectory(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message().find(file + ": writable by group or others"),
            std::string::npos)
      << loaded.error().message();
}

TEST(InstalledRuntimes, OwnedBySomeoneElseIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another uid";
  testing::ScratchDir dir;
  chmod(dir.path().c_str(), 0755);
  std::string file = dir.Write("ruby.toml", kRuby);
  ASSERT_EQ(chown(file.c_str(), 4242, 4242), 0);
  auto loaded = LoadTrustedRuntimeDirectory(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message().find(file + ": owned by uid 4242, not by root"),
            std::string::npos)
      << loaded.error().message();

  ASSERT_EQ(chown(file.c_str(), 0, 0), 0);
  ASSERT_EQ(chown(dir.path().c_str(), 4242, 4242), 0);
  loaded = LoadTrustedRuntimeDirectory(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message().find(dir.path() + ": owned by uid 4242"), std::string::npos)
      << loaded.error().message();
}

TEST(InstalledRuntimes, SymlinksAreRefused) {
  testing::ScratchDir dir;
  chmod(dir.path().c_str(), 0755);
  std::string real = dir.Write("real/ruby.toml", kRuby);
  std::filesystem::create_directory(dir.Path("defs"));
  std::filesystem::create_symlink(real, dir.Path("defs/ruby.toml"));
  auto loaded = LoadTrustedRuntimeDirectory(dir.Path("defs"));
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message().rfind("open " + dir.Path("defs/ruby.toml"), 0), 0u)
      << loaded.error().message();

  std::filesystem::create_directory_symlink(dir.Path("real"), dir.Path("link"));
  EXPECT_FALSE(LoadTrustedRuntimeDirectory(dir.Path("link")).ok());
}

}  // namespace
}  // namespace packvisor
