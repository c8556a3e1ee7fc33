// Secrets sealed to the workers' public key (libsodium crypto_box_seal: X25519 + XSalsa20-
// Poly1305, anonymous sender), so that they never cross the broker in plain text. Key files hold
// one line: the base64 (standard, padded) of the 32-byte key. The private key file must be a
// regular file, not a symlink, owned by the process's uid, mode 0400 (or 0600): anything else
// is refused with a one-line error naming the file and what is wrong.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "sandbox/os/error.h"

namespace packvisor::queue {

using PublicKey = std::array<uint8_t, 32>;

// The private key: wiped (sodium_memzero) when destroyed; its bytes live in sodium_malloc'd
// memory (guarded, mlocked where allowed).
class PrivateKey {
 public:
  PrivateKey();
  ~PrivateKey();
  PrivateKey(PrivateKey&& other) noexcept;
  PrivateKey& operator=(PrivateKey&& other) noexcept;
  PrivateKey(const PrivateKey&) = delete;
  PrivateKey& operator=(const PrivateKey&) = delete;
  const uint8_t* data() const { return bytes_; }
  uint8_t* data() { return bytes_; }
  const PublicKey& public_key() const { return public_key_; }  // derived from it

 private:
  friend Result<PrivateKey> LoadPrivateKey(const std::string& path);
  friend Result<void> WriteKeyPair(const std::string& private_path, const std::string& public_path);
  uint8_t* bytes_ = nullptr;  // 32 bytes
  PublicKey public_key_{};
};

// `packvisor keygen`: makes a new pair and writes the private key (mode 0400, O_EXCL, never
// overwriting) and the public key (0444). Refuses to overwrite either file.
Result<void> WriteKeyPair(const std::string& private_path, const std::string& public_path);
Result<PrivateKey> LoadPrivateKey(const std::string& path);
Result<PublicKey> LoadPublicKey(const std::string& path);

// base64 of crypto_box_seal(secrets.dump()). `secrets` must be a JSON object.
Result<std::string> SealSecrets(const nlohmann::json& secrets, const PublicKey& key);
// The secrets object, or an error that never contains plaintext ("sealed_secrets: not base64",
// "sealed_secrets: cannot be opened with this worker's key", "sealed_secrets: not a JSON object").
// The plaintext buffer is wiped before returning.
Result<nlohmann::json> OpenSealedSecrets(std::string_view sealed_base64, const PrivateKey& key);

}  // namespace packvisor::queue
