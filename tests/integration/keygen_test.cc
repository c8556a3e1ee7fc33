// `packvisor keygen` through the real binary: the two files, their modes and their one-line
// format, the defaults from worker.key_file / worker.public_key_file, and the refusal to
// overwrite.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "supervisor/queue/sealed_secrets.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using testing::CommandResult;
using testing::RunPackvisor;
using testing::TempDir;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string Content(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(KeygenTest, WritesThePairAndPrintsThePublicPath) {
  TempDir dir;
  std::string private_path = dir.Path("worker.key");
  std::string public_path = dir.Path("worker.pub");
  CommandResult result =
      RunPackvisor({"keygen", "--private", private_path, "--public", public_path});
  ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
  EXPECT_EQ(result.stdout_text, public_path + "\n");
  EXPECT_EQ(result.stderr_text, "");
  EXPECT_EQ(ModeOf(private_path), 0400u);
  EXPECT_EQ(ModeOf(public_path), 0444u);
  std::string private_text = Content(private_path);
  EXPECT_EQ(private_text.size(), 45u);  // 44 base64 characters and a newline
  EXPECT_EQ(private_text.back(), '\n');
  // The private key never reaches the output.
  EXPECT_EQ(result.stdout_text.find(private_text.substr(0, 44)), std::string::npos);

  auto key = queue::LoadPrivateKey(private_path);
  ASSERT_TRUE(key.ok()) << key.error().message();
  auto public_key = queue::LoadPublicKey(public_path);
  ASSERT_TRUE(public_key.ok()) << public_key.error().message();
  EXPECT_EQ(key->public_key(), *public_key);
  auto sealed = queue::SealSecrets({{"a", "b"}}, *public_key);
  ASSERT_TRUE(sealed.ok());
  auto opened = queue::OpenSealedSecrets(*sealed, *key);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  EXPECT_EQ((*opened)["a"], "b");
}

TEST(KeygenTest, DefaultsToTheConfiguredFiles) {
  TempDir dir;
  dir.Write("packvisor.toml",
            "[worker]\nkey_file = \"keys/w.key\"\npublic_key_file = \"keys/w.pub\"\n");
  std::filesystem::create_directories(dir.Path("keys"));
  CommandResult result = RunPackvisor({"--config", dir.Path("packvisor.toml"), "keygen"});
  ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
  EXPECT_EQ(result.stdout_text, dir.Path("keys/w.pub") + "\n");
  EXPECT_EQ(ModeOf(dir.Path("keys/w.key")), 0400u);
  EXPECT_EQ(ModeOf(dir.Path("keys/w.pub")), 0444u);
}

TEST(KeygenTest, NeverOverwrites) {
  TempDir dir;
  std::string private_path = dir.Path("worker.key");
  std::string public_path = dir.Path("worker.pub");
  ASSERT_EQ(RunPackvisor({"keygen", "--private", private_path, "--public", public_path}).exit_code,
            0);
  std::string before = Content(private_path);

  CommandResult again =
      RunPackvisor({"keygen", "--private", private_path, "--public", dir.Path("other.pub")});
  EXPECT_EQ(again.exit_code, 125);
  EXPECT_EQ(again.stdout_text, "");
  EXPECT_EQ(again.stderr_text, "packvisor: error: write key file " + private_path +
                                   ": exists already; not overwriting it\n");
  EXPECT_FALSE(std::filesystem::exists(dir.Path("other.pub")));
  EXPECT_EQ(Content(private_path), before);

  CommandResult public_taken =
      RunPackvisor({"keygen", "--private", dir.Path("other.key"), "--public", public_path});
  EXPECT_EQ(public_taken.exit_code, 125);
  EXPECT_EQ(public_taken.stderr_text, "packvisor: error: write key file " + public_path +
                                          ": exists already; not overwriting it\n");
  EXPECT_FALSE(std::filesystem::exists(dir.Path("other.key")));

  // A directory that does not exist: an error naming the file, nothing written.
  CommandResult missing_dir = RunPackvisor(
      {"keygen", "--private", dir.Path("no/such.key"), "--public", dir.Path("such.pub")});
  EXPECT_EQ(missing_dir.exit_code, 125);
  EXPECT_EQ(missing_dir.stderr_text, "packvisor: error: write key file " + dir.Path("no/such.key") +
                                         ": No such file or directory\n");
  EXPECT_FALSE(std::filesystem::exists(dir.Path("such.pub")));
}

}  // namespace
}  // namespace packvisor
