// Sealed secrets and their key files (supervisor/queue/sealed_secrets.cc): round trips, refusals
// of bad key files, and errors that never hold plaintext.
#include "supervisor/queue/sealed_secrets.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace packvisor::queue {
namespace {

using nlohmann::json;

constexpr char kSecret[] = "correct-horse-battery-staple";

class SealedSecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/packvisor-sealed-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // A fresh pair in dir_/NAME.key and NAME.pub.
  void MakePair(const std::string& name) {
    auto written = WriteKeyPair(Path(name + ".key"), Path(name + ".pub"));
    ASSERT_TRUE(written.ok()) << written.error().message();
  }

  std::string WriteFile(const std::string& name, const std::string& content, mode_t mode) {
    std::string path = Path(name);
    std::ofstream(path) << content;
    chmod(path.c_str(), mode);
    return path;
  }

  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  std::string dir_;
};

json Secrets() { return {{"password", kSecret}, {"token", "tok-987654321"}}; }

TEST_F(SealedSecretsTest, KeygenWritesOneLineFilesWithTheirModes) {
  MakePair("worker");
  EXPECT_EQ(ModeOf(Path("worker.key")), 0400u);
  EXPECT_EQ(ModeOf(Path("worker.pub")), 0444u);
  for (const char* name : {"worker.key", "worker.pub"}) {
    std::ifstream in(Path(name));
    std::string line, rest;
    ASSERT_TRUE(std::getline(in, line));
    EXPECT_EQ(line.size(), 44u) << name;  // base64 of 32 bytes
    EXPECT_FALSE(std::getline(in, rest)) << name;
  }
  auto key = LoadPrivateKey(Path("worker.key"));
  ASSERT_TRUE(key.ok()) << key.error().message();
  auto public_key = LoadPublicKey(Path("worker.pub"));
  ASSERT_TRUE(public_key.ok()) << public_key.error().message();
  EXPECT_EQ(key->public_key(), *public_key);  // derived from the private key
}

TEST_F(SealedSecretsTest, RoundTrip) {
  MakePair("worker");
  auto public_key = LoadPublicKey(Path("worker.pub"));
  ASSERT_TRUE(public_key.ok());
  auto sealed = SealSecrets(Secrets(), *public_key);
  ASSERT_TRUE(sealed.ok()) << sealed.error().message();
  EXPECT_EQ(sealed->find(kSecret), std::string::npos);
  auto key = LoadPrivateKey(Path("worker.key"));
  ASSERT_TRUE(key.ok());
  auto opened = OpenSealedSecrets(*sealed, *key);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  EXPECT_EQ(*opened, Secrets());
  // A moved key still opens; the moved-from one holds nothing.
  PrivateKey moved = std::move(*key);
  EXPECT_TRUE(OpenSealedSecrets(*sealed, moved).ok());
  EXPECT_EQ(key->data(), nullptr);
  EXPECT_FALSE(OpenSealedSecrets(*sealed, *key).ok());
  // Sealing is randomised (an ephemeral key per message).
  auto again = SealSecrets(Secrets(), *public_key);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *sealed);
}

TEST_F(SealedSecretsTest, OnlyObjectsAreSealed) {
  MakePair("worker");
  auto public_key = LoadPublicKey(Path("worker.pub"));
  ASSERT_TRUE(public_key.ok());
  auto sealed = SealSecrets(json::array({kSecret}), *public_key);
  ASSERT_FALSE(sealed.ok());
  EXPECT_EQ(sealed.error().message(), "seal secrets: the secrets are not a JSON object");
  auto not_utf8 = SealSecrets(json{{"password", "caf\xe9"}}, *public_key);
  ASSERT_FALSE(not_utf8.ok());
  EXPECT_EQ(not_utf8.error().message(), "seal secrets: a secret is not valid UTF-8");
}

TEST_F(SealedSecretsTest, RefusalsNeverHoldPlaintext) {
  MakePair("worker");
  MakePair("other");
  auto public_key = LoadPublicKey(Path("worker.pub"));
  auto key = LoadPrivateKey(Path("worker.key"));
  auto other_key = LoadPrivateKey(Path("other.key"));
  ASSERT_TRUE(public_key.ok() && key.ok() && other_key.ok());
  auto sealed = SealSecrets(Secrets(), *public_key);
  ASSERT_TRUE(sealed.ok());

  // The wrong key.
  auto wrong = OpenSealedSecrets(*sealed, *other_key);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().message(), "sealed_secrets: cannot be opened with this worker's key");

  // Tampered ciphertext: one bit of the decoded bytes flipped, re-encoded.
  std::string tampered = *sealed;
  tampered[10] = tampered[10] == 'A' ? 'B' : 'A';
  auto flipped = OpenSealedSecrets(tampered, *key);
  ASSERT_FALSE(flipped.ok());
  EXPECT_EQ(flipped.error().message(), "sealed_secrets: cannot be opened with this worker's key");

  // Truncated below the seal's overhead.
  auto short_one = OpenSealedSecrets("AAAA", *key);
  ASSERT_FALSE(short_one.ok());
  EXPECT_EQ(short_one.error().message(), "sealed_secrets: cannot be opened with this worker's key");

  // Not base64 (and base64 with trailing junk, or the URL-safe alphabet).
  for (const std::string& text : {std::string("not base64!"), *sealed + "\n", *sealed + "*",
                                  std::string("a-b_"), std::string(kSecret)}) {
    auto bad = OpenSealedSecrets(text, *key);
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.error().message(), "sealed_secrets: not base64") << text;
  }

  // Sealed plaintext that is not a JSON object, as a client that is not packvisor could seal
  // it (crypto_box_seal over any bytes): the error does not quote it.
  for (const std::string& plaintext :
       {json(kSecret).dump(), json::array({kSecret}).dump(), std::string(kSecret),
        std::string(100, '[') + "\"" + kSecret + "\"" + std::string(100, ']')}) {
    std::vector<unsigned char> box(crypto_box_SEALBYTES + plaintext.size());
    ASSERT_EQ(crypto_box_seal(box.data(), reinterpret_cast<const unsigned char*>(plaintext.data()),
                              plaintext.size(), public_key->data()),
              0);
    std::string text(sodium_base64_encoded_len(box.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(text.data(), text.size(), box.data(), box.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    text.resize(text.size() - 1);
    auto opened = OpenSealedSecrets(text, *key);
    ASSERT_FALSE(opened.ok()) << plaintext;
    EXPECT_EQ(opened.error().message().rfind("sealed_secrets: not a JSON object", 0), 0u);
    EXPECT_EQ(opened.error().message().find(kSecret), std::string::npos);
  }
}

// Found by fuzz_sealed_secrets (crash-empty-sealed-text): an empty sealed_secrets text gave
// sodium_base642bin and sodium_memzero the null data() of an empty buffer (undefined behaviour,
// their pointers are declared nonnull). It is refused like any blob too short to open.
TEST_F(SealedSecretsTest, AnEmptySealedTextIsRefusedNotUndefinedBehaviour) {
  MakePair("worker");
  auto key = LoadPrivateKey(Path("worker.key"));
  ASSERT_TRUE(key.ok()) << key.error().message();
  auto opened = OpenSealedSecrets("", *key);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().message(), "sealed_secrets: cannot be opened with this worker's key");
}

TEST_F(SealedSecretsTest, KeyFileRefusals) {
  MakePair("worker");
  std::string key_line;
  std::getline(std::ifstream(Path("worker.key")), key_line);

  struct Case {
    std::string name;
    std::string content;
    mode_t mode;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {"wide.key", key_line + "\n", 0644, "mode 0644: must be 0400 or 0600 (chmod 0400 "},
      {"group.key", key_line + "\n", 0440, "mode 0440: must be 0400 or 0600 (chmod 0400 "},
      {"empty.key", "", 0400, "the file is empty"},
      {"two.key", key_line + "\n" + key_line + "\n", 0400,
       "expected exactly one line (the base64 of a 32-byte key)"},
      {"junk.key", std::string(kSecret) + "\n", 0400, "not base64 (standard alphabet, padded)"},
      {"short.key", "AAAA\n", 0400, "holds 3 bytes, expected a 32-byte key"},
      {"big.key", std::string(200, 'A'), 0400, "larger than a key file (one line of base64)"},
  };
  for (const Case& c : cases) {
    std::string path = WriteFile(c.name, c.content, c.mode);
    auto key = LoadPrivateKey(path);
    ASSERT_FALSE(key.ok()) << c.name;
    EXPECT_EQ(key.error().message().rfind("load private key " + path + ": " + c.detail, 0), 0u)
        << key.error().message();
    EXPECT_EQ(key.error().message().find(kSecret), std::string::npos);
    EXPECT_EQ(key.error().message().find(key_line), std::string::npos);
  }
  // 0600 is accepted as well as 0400.
  std::string rw = WriteFile("rw.key", key_line + "\n", 0600);
  EXPECT_TRUE(LoadPrivateKey(rw).ok());
  // Without its newline too.
  std::string bare = WriteFile("bare.key", key_line, 0400);
  EXPECT_TRUE(LoadPrivateKey(bare).ok());
}

TEST_F(SealedSecretsTest, SymlinksAndNonFilesAreRefused) {
  MakePair("worker");
  std::string link = Path("link.key");
  ASSERT_EQ(symlink(Path("worker.key").c_str(), link.c_str()), 0);
  auto linked = LoadPrivateKey(link);
  ASSERT_FALSE(linked.ok());
  EXPECT_EQ(linked.error().message(),
            "load private key " + link + ": is a symlink; refusing to follow it");

  std::string fifo = Path("fifo.key");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0400), 0);
  auto from_fifo = LoadPrivateKey(fifo);  // must not block
  ASSERT_FALSE(from_fifo.ok());
  EXPECT_EQ(from_fifo.error().message(), "load private key " + fifo + ": not a regular file");

  auto missing = LoadPrivateKey(Path("missing.key"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(),
            "load private key " + Path("missing.key") + ": No such file or directory");
}

TEST_F(SealedSecretsTest, AKeyOwnedBySomeoneElseIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the file away";
  MakePair("worker");
  ASSERT_EQ(chown(Path("worker.key").c_str(), 12345, 12345), 0);
  auto key = LoadPrivateKey(Path("worker.key"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().message(), "load private key " + Path("worker.key") +
                                       ": owned by uid 12345, not by uid 0 that runs packvisor");
}

TEST_F(SealedSecretsTest, KeygenRefusesToOverwrite) {
  MakePair("worker");
  std::string before;
  std::getline(std::ifstream(Path("worker.key")), before);

  auto again = WriteKeyPair(Path("worker.key"), Path("new.pub"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message(),
            "write key file " + Path("worker.key") + ": exists already; not overwriting it");
  EXPECT_FALSE(std::filesystem::exists(Path("new.pub")));  // neither file is written

  auto public_exists = WriteKeyPair(Path("new.key"), Path("worker.pub"));
  ASSERT_FALSE(public_exists.ok());
  EXPECT_EQ(public_exists.error().message(),
            "write key file " + Path("worker.pub") + ": exists already; not overwriting it");
  EXPECT_FALSE(std::filesystem::exists(Path("new.key")));

  // A dangling symlink counts as existing: it is never followed to create a file elsewhere.
  ASSERT_EQ(symlink(Path("elsewhere").c_str(), Path("dangling.key").c_str()), 0);
  auto dangling = WriteKeyPair(Path("dangling.key"), Path("d.pub"));
  ASSERT_FALSE(dangling.ok());
  EXPECT_FALSE(std::filesystem::exists(Path("elsewhere")));

  auto same = WriteKeyPair(Path("same"), Path("same"));
  ASSERT_FALSE(same.ok());

  std::string after;
  std::getline(std::ifstream(Path("worker.key")), after);
  EXPECT_EQ(before, after);
}

}  // namespace
}  // namespace packvisor::queue
