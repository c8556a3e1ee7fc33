// Sealed secrets with libsodium (crypto_box_seal) and the key files `packvisor keygen` writes.
// Buffers that hold a private key or plaintext are wiped (sodium_memzero) before they are freed;
// no error text ever holds either.
#include "supervisor/queue/sealed_secrets.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "envs/document_limits.h"
#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/queue/protocol.h"

namespace packvisor::queue {
namespace {

constexpr size_t kKeyBytes = 32;
static_assert(crypto_box_PUBLICKEYBYTES == kKeyBytes && crypto_box_SECRETKEYBYTES == kKeyBytes);
// base64 of 32 bytes is 44 characters; a key file is that and a newline.
constexpr size_t kMaxKeyFileBytes = 128;
constexpr int kBase64 = sodium_base64_VARIANT_ORIGINAL;

Result<void> InitSodium() {
  static int status = [] { return sodium_init(); }();  // 0, or 1 when already initialised
  if (status < 0) return Failure("", "", "initialise libsodium: sodium_init failed");
  return Ok{};
}

// A byte buffer wiped when it goes away.
class WipedBuffer {
 public:
  explicit WipedBuffer(size_t size) : bytes_(size) {}
  // sodium_memzero and sodium_base642bin take nonnull pointers: an empty vector's data() may be
  // null (fuzz_sealed_secrets, crash-empty-sealed-text).
  ~WipedBuffer() {
    if (!bytes_.empty()) sodium_memzero(bytes_.data(), bytes_.size());
  }
  WipedBuffer(const WipedBuffer&) = delete;
  WipedBuffer& operator=(const WipedBuffer&) = delete;
  unsigned char* data() { return bytes_.data(); }
  char* chars() { return reinterpret_cast<char*>(bytes_.data()); }
  size_t size() const { return bytes_.size(); }

 private:
  std::vector<unsigned char> bytes_;
};

std::string Base64(const unsigned char* bytes, size_t size) {
  std::string out(sodium_base64_encoded_len(size, kBase64), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes, size, kBase64);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// Decodes exactly `text` (standard, padded base64, nothing else) into `out`; the decoded length,
// or -1.
ssize_t DecodeBase64(std::string_view text, unsigned char* out, size_t capacity) {
  if (text.empty()) return 0;  // `out` may be null then, which sodium_base642bin must not get
  size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out, capacity, text.data(), text.size(), nullptr, &length, &end, kBase64) !=
          0 ||
      end != text.data() + text.size()) {
    return -1;
  }
  return static_cast<ssize_t>(length);
}

// Reads a key file (at most kMaxKeyFileBytes) from an open fd into `out`.
Result<void> ReadKeyFile(int fd, const std::string& operation, const std::string& path,
                         WipedBuffer& out, size_t& size) {
  size = 0;
  while (size < out.size()) {
    ssize_t n = read(fd, out.data() + size, out.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(operation, path);
    if (n == 0) return Ok{};
    size += static_cast<size_t>(n);
  }
  return Failure(operation, path, "larger than a key file (one line of base64)");
}

// The 32 key bytes of a key file's content: exactly one line, the base64 of 32 bytes, with or
// without its newline. The detail of the error never quotes the content.
Result<void> DecodeKeyLine(const std::string& operation, const std::string& path,
                           WipedBuffer& content, size_t size, unsigned char* key) {
  std::string_view text(content.chars(), size);
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.empty()) return Failure(operation, path, "the file is empty");
  if (text.find('\n') != std::string_view::npos) {
    return Failure(operation, path, "expected exactly one line (the base64 of a 32-byte key)");
  }
  WipedBuffer decoded(kMaxKeyFileBytes);
  ssize_t length = DecodeBase64(text, decoded.data(), decoded.size());
  if (length < 0) return Failure(operation, path, "not base64 (standard alphabet, padded)");
  if (static_cast<size_t>(length) != kKeyBytes) {
    return Failure(operation, path,
                   "holds " + std::to_string(length) + " bytes, expected a 32-byte key");
  }
  std::copy(decoded.data(), decoded.data() + kKeyBytes, key);
  return Ok{};
}

std::string ModeText(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Creates `path` (never an existing file, never through a symlink), writes `line` and fsyncs it
// and its directory.
Result<void> CreateKeyFile(const std::string& path, std::string_view line, mode_t mode) {
  constexpr char kOperation[] = "write key file";
  unique_fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) {
    if (errno == EEXIST) return Failure(kOperation, path, "exists already; not overwriting it");
    return ErrnoError(kOperation, path);
  }
  // The umask may have taken bits away; never added any, but the mode is the contract.
  if (fchmod(fd.get(), mode) != 0) return ErrnoError(kOperation, path);
  PV_TRY(os::WriteAll(fd.get(), line.data(), line.size(), path));
  if (fsync(fd.get()) != 0) return ErrnoError(kOperation, path);
  unique_fd dir(open(DirectoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir && fsync(dir.get()) != 0) return ErrnoError(kOperation, DirectoryOf(path));
  return Ok{};
}

}  // namespace

PrivateKey::PrivateKey() = default;

PrivateKey::~PrivateKey() {
  if (bytes_) sodium_free(bytes_);  // wipes before freeing
}

PrivateKey::PrivateKey(PrivateKey&& other) noexcept
    : bytes_(std::exchange(other.bytes_, nullptr)), public_key_(other.public_key_) {}

PrivateKey& PrivateKey::operator=(PrivateKey&& other) noexcept {
  if (this != &other) {
    if (bytes_) sodium_free(bytes_);
    bytes_ = std::exchange(other.bytes_, nullptr);
    public_key_ = other.public_key_;
  }
  return *this;
}

Result<void> WriteKeyPair(const std::string& private_path, const std::string& public_path) {
  constexpr char kOperation[] = "write key file";
  PV_TRY(InitSodium());
  if (private_path == public_path) {
    return Failure(kOperation, private_path, "the private and the public key file are the same");
  }
  // Neither file may exist: checked for both before either is written, so that a refusal leaves
  // nothing behind. O_EXCL below closes the race.
  for (const std::string* path : {&private_path, &public_path}) {
    struct stat st {};
    if (lstat(path->c_str(), &st) == 0) {
      return Failure(kOperation, *path, "exists already; not overwriting it");
    }
    if (errno != ENOENT) return ErrnoError(kOperation, *path);
  }
  PrivateKey key;
  key.bytes_ = static_cast<uint8_t*>(sodium_malloc(kKeyBytes));
  if (!key.bytes_) return Failure(kOperation, private_path, "sodium_malloc failed");
  crypto_box_keypair(key.public_key_.data(), key.bytes_);

  std::string private_line = Base64(key.bytes_, kKeyBytes) + "\n";
  Result<void> written = CreateKeyFile(private_path, private_line, 0400);
  sodium_memzero(private_line.data(), private_line.size());
  PV_TRY(written);
  Result<void> public_written =
      CreateKeyFile(public_path, Base64(key.public_key_.data(), kKeyBytes) + "\n", 0444);
  if (!public_written) {
    unlink(private_path.c_str());  // created above by this call (O_EXCL): a pair or nothing
    return public_written.error();
  }
  return Ok{};
}

Result<PrivateKey> LoadPrivateKey(const std::string& path) {
  constexpr char kOperation[] = "load private key";
  PV_TRY(InitSodium());
  // O_NONBLOCK: a FIFO planted at the path must not hang the worker (refused below).
  unique_fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    if (errno == ELOOP) return Failure(kOperation, path, "is a symlink; refusing to follow it");
    return ErrnoError(kOperation, path);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoError(kOperation, path);
  if (!S_ISREG(st.st_mode)) return Failure(kOperation, path, "not a regular file");
  if (st.st_uid != geteuid()) {
    return Failure(kOperation, path,
                   "owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
                       std::to_string(geteuid()) + " that runs packvisor");
  }
  mode_t mode = st.st_mode & 07777;
  if (mode != 0400 && mode != 0600) {
    return Failure(kOperation, path,
                   "mode " + ModeText(mode) + ": must be 0400 or 0600 (chmod 0400 " + path + ")");
  }
  WipedBuffer content(kMaxKeyFileBytes);
  size_t size = 0;
  PV_TRY(ReadKeyFile(fd.get(), kOperation, path, content, size));
  PrivateKey key;
  key.bytes_ = static_cast<uint8_t*>(sodium_malloc(kKeyBytes));
  if (!key.bytes_) return Failure(kOperation, path, "sodium_malloc failed");
  PV_TRY(DecodeKeyLine(kOperation, path, content, size, key.bytes_));
  crypto_scalarmult_base(key.public_key_.data(), key.bytes_);
  return key;
}

Result<PublicKey> LoadPublicKey(const std::string& path) {
  constexpr char kOperation[] = "load public key";
  PV_TRY(InitSodium());
  // The public key is no secret: a symlink to it is fine (it is read, never written).
  unique_fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) return ErrnoError(kOperation, path);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoError(kOperation, path);
  if (!S_ISREG(st.st_mode)) return Failure(kOperation, path, "not a regular file");
  WipedBuffer content(kMaxKeyFileBytes);
  size_t size = 0;
  PV_TRY(ReadKeyFile(fd.get(), kOperation, path, content, size));
  PublicKey key{};
  PV_TRY(DecodeKeyLine(kOperation, path, content, size, key.data()));
  return key;
}

Result<std::string> SealSecrets(const nlohmann::json& secrets, const PublicKey& key) {
  PV_TRY(InitSodium());
  if (!secrets.is_object())
    return Failure("", "", "seal secrets: the secrets are not a JSON object");
  std::string plaintext;
  try {
    // Strict: a secret that is not UTF-8 is refused rather than silently altered.
    plaintext = secrets.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    return Failure("", "", "seal secrets: a secret is not valid UTF-8");
  }
  WipedBuffer sealed(crypto_box_SEALBYTES + plaintext.size());
  int status =
      crypto_box_seal(sealed.data(), reinterpret_cast<const unsigned char*>(plaintext.data()),
                      plaintext.size(), key.data());
  sodium_memzero(plaintext.data(), plaintext.size());
  if (status != 0) return Failure("", "", "seal secrets: crypto_box_seal failed");
  return Base64(sealed.data(), sealed.size());
}

Result<nlohmann::json> OpenSealedSecrets(std::string_view sealed_base64, const PrivateKey& key) {
  PV_TRY(InitSodium());
  if (!key.data()) return Failure("", "", "sealed_secrets: no private key loaded");
  WipedBuffer sealed(sealed_base64.size());  // base64 decodes to fewer bytes
  ssize_t length = DecodeBase64(sealed_base64, sealed.data(), sealed.size());
  if (length < 0) return Failure("", "", "sealed_secrets: not base64");
  if (static_cast<size_t>(length) < crypto_box_SEALBYTES) {
    return Failure("", "", "sealed_secrets: cannot be opened with this worker's key");
  }
  WipedBuffer plaintext(static_cast<size_t>(length) - crypto_box_SEALBYTES);
  if (crypto_box_seal_open(plaintext.data(), sealed.data(), static_cast<size_t>(length),
                           key.public_key().data(), key.data()) != 0) {
    return Failure("", "", "sealed_secrets: cannot be opened with this worker's key");
  }
  if (JsonNestsDeeperThan(std::string_view(plaintext.chars(), plaintext.size()), 64)) {
    return Failure("", "", "sealed_secrets: not a JSON object (nested deeper than 64 levels)");
  }
  // nlohmann copies the strings it parses; `plaintext` itself is wiped when it goes.
  nlohmann::json secrets = nlohmann::json::parse(
      plaintext.chars(), plaintext.chars() + plaintext.size(), nullptr, /*allow_exceptions=*/false);
  if (secrets.is_discarded() || !secrets.is_object()) {
    return Failure("", "", "sealed_secrets: not a JSON object");
  }
  return secrets;
}

}  // namespace packvisor::queue
