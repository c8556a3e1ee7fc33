// Sealed secrets (supervisor/queue/sealed_secrets.h) with a fixed key pair made here (libsodium),
// so that sealed seeds in the corpus open. The first byte picks the mode; the rest is the input:
//   '0' (and anything but '1' and '2'): a sealed_secrets text as it comes off the broker, opened
//   with
//     OpenSealedSecrets: a refusal is one clean line; an opened value is a JSON object.
//   '1': a JSON text; when it is an object, SealSecrets then OpenSealedSecrets gives it back equal,
//     and the sealed blob with one byte flipped (where the input says) is refused cleanly.
//   '2': any plaintext bytes, sealed with crypto_box_seal directly: OpenSealedSecrets gives back a
//     JSON object that equals what nlohmann reads from them, or refuses without quoting them.
// Nothing throws; no refusal ever contains the plaintext or a secret value.
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "envs/document_limits.h"
#include "fuzz/fuzz_support.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/queue/sealed_secrets.h"

namespace {

using nlohmann::json;
using packvisor::fuzz::CheckOneLineMessage;
using packvisor::fuzz::CheckSecretAbsent;
using packvisor::queue::PrivateKey;

constexpr int kBase64 = sodium_base64_VARIANT_ORIGINAL;

std::string Base64(const unsigned char* bytes, size_t size) {
  std::string out(sodium_base64_encoded_len(size, kBase64), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes, size, kBase64);
  out.resize(out.size() - 1);
  return out;
}

// The fixed private key (bytes 1..32), loaded the way a worker loads its key file: written 0400
// to a scratch directory, read by LoadPrivateKey, then removed.
const PrivateKey& Key() {
  static PrivateKey key = [] {
    if (sodium_init() < 0) packvisor::fuzz::Fail("sodium_init", "failed");
    unsigned char bytes[32];
    for (int i = 0; i < 32; ++i) bytes[i] = static_cast<unsigned char>(i + 1);
    char dir[] = "/tmp/packvisor-fuzz-key.XXXXXX";
    if (mkdtemp(dir) == nullptr) packvisor::fuzz::Fail("mkdtemp", std::strerror(errno));
    std::string path = std::string(dir) + "/worker.key";
    std::string line = Base64(bytes, sizeof(bytes)) + "\n";
    packvisor::unique_fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400));
    if (!fd || write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      packvisor::fuzz::Fail("write the key file", std::strerror(errno));
    }
    fd.reset();
    auto loaded = packvisor::queue::LoadPrivateKey(path);
    unlink(path.c_str());
    rmdir(dir);
    if (!loaded) packvisor::fuzz::Fail("LoadPrivateKey", loaded.error().message());
    return std::move(*loaded);
  }();
  return key;
}

// Every string (keys included) of `value` that could be secret, for CheckSecretAbsent.
void Strings(const json& value, std::vector<std::string>* out) {
  if (value.is_string()) {
    out->push_back(value.get<std::string>());
  } else if (value.is_object()) {
    for (const auto& [k, v] : value.items()) {
      out->push_back(k);
      Strings(v, out);
    }
  } else if (value.is_array()) {
    for (const auto& v : value) Strings(v, out);
  }
}

// A refusal of OpenSealedSecrets: one line, none of `secrets` in it.
void CheckRefusal(const packvisor::Error& error, const std::vector<std::string>& secrets) {
  std::string message = error.message();
  CheckOneLineMessage(message);
  PV_FUZZ_CHECK(message.rfind("sealed_secrets: ", 0) == 0, message);
  // OpenSealedSecrets' refusals are fixed texts, which hold no plaintext whatever it was (a short
  // plaintext may occur in one by chance: "ts: no"); any other refusal must not hold a secret.
  static const std::set<std::string> kFixed = {
      "sealed_secrets: not base64", "sealed_secrets: cannot be opened with this worker's key",
      "sealed_secrets: not a JSON object",
      "sealed_secrets: not a JSON object (nested deeper than 64 levels)",
      "sealed_secrets: no private key loaded"};
  if (kFixed.count(message) != 0) return;
  for (const std::string& secret : secrets) CheckSecretAbsent(message, secret);
}

void OpenText(std::string_view text) {
  auto opened = packvisor::queue::OpenSealedSecrets(text, Key());
  if (!opened) return CheckRefusal(opened.error(), {});
  PV_FUZZ_CHECK(opened->is_object(), "opened a value that is not an object");
}

void SealAndOpen(std::string_view text, uint32_t flip) {
  if (packvisor::JsonNestsDeeperThan(text, 64)) return;
  json secrets = json::parse(text, nullptr, false);
  if (!secrets.is_object()) return;
  auto sealed = packvisor::queue::SealSecrets(secrets, Key().public_key());
  PV_FUZZ_CHECK(sealed.ok(), "SealSecrets refused an object: " + sealed.error().message());
  auto opened = packvisor::queue::OpenSealedSecrets(*sealed, Key());
  PV_FUZZ_CHECK(opened.ok(), "a sealed object does not open: " + opened.error().message());
  PV_FUZZ_CHECK(*opened == secrets, "opened another object than was sealed");

  // One byte of the sealed blob flipped: the MAC (or the ephemeral key) no longer matches.
  std::vector<unsigned char> blob(sealed->size());
  size_t length = 0;
  PV_FUZZ_CHECK(sodium_base642bin(blob.data(), blob.size(), sealed->data(), sealed->size(), nullptr,
                                  &length, nullptr, kBase64) == 0,
                "SealSecrets wrote something that is not base64");
  blob[flip % length] ^= static_cast<unsigned char>(1u << ((flip >> 16) % 8));
  std::vector<std::string> plaintext;
  Strings(secrets, &plaintext);
  auto tampered = packvisor::queue::OpenSealedSecrets(Base64(blob.data(), length), Key());
  PV_FUZZ_CHECK(!tampered.ok(), "a tampered blob opened");
  CheckRefusal(tampered.error(), plaintext);
}

void SealRaw(std::string_view plaintext) {
  std::vector<unsigned char> sealed(crypto_box_SEALBYTES + plaintext.size());
  crypto_box_seal(sealed.data(), reinterpret_cast<const unsigned char*>(plaintext.data()),
                  plaintext.size(), Key().public_key().data());
  auto opened = packvisor::queue::OpenSealedSecrets(Base64(sealed.data(), sealed.size()), Key());
  json expected = packvisor::JsonNestsDeeperThan(plaintext, 64)
                      ? json(json::value_t::discarded)
                      : json::parse(plaintext, nullptr, false);
  if (opened) {
    PV_FUZZ_CHECK(expected.is_object() && *opened == expected,
                  "opened something else than the plaintext's object");
    return;
  }
  PV_FUZZ_CHECK(!expected.is_object(), "refused a sealed object: " + opened.error().message());
  CheckRefusal(opened.error(), {std::string(plaintext)});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest = packvisor::fuzz::AsText(data + 1, size - 1);
  switch (data[0]) {
    case '1': {
      // The flipped byte's position and bit: from the input's length and bytes, so that a crash
      // reproduces (the seal itself is randomised by its ephemeral key).
      uint32_t flip = static_cast<uint32_t>(size) * 2654435761u;
      for (char c : rest) flip = flip * 31 + static_cast<unsigned char>(c);
      packvisor::fuzz::NoThrow("SealSecrets/OpenSealedSecrets", [&] { SealAndOpen(rest, flip); });
      break;
    }
    case '2':
      packvisor::fuzz::NoThrow("OpenSealedSecrets(raw)", [&] { SealRaw(rest); });
      break;
    default:
      packvisor::fuzz::NoThrow("OpenSealedSecrets", [&] { OpenText(rest); });
      break;
  }
  return 0;
}
