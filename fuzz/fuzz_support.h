// Invariants the fuzz targets assert on what a parser returns, beyond "no crash": an error is one
// clean line, nothing throws past the API, a secret given in the input never comes back in an
// error text. A broken invariant prints what and aborts, which libFuzzer reports as a crash with
// the input saved.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace packvisor::fuzz {

// Errors longer than this are not "one line" in any useful sense (Quote() cuts values at 200).
inline constexpr size_t kMaxMessageBytes = 2048;

[[noreturn]] inline void Fail(std::string_view invariant, std::string_view detail) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n  detail: %.*s\n",
               static_cast<int>(invariant.size()), invariant.data(),
               static_cast<int>(detail.size() > 4000 ? 4000 : detail.size()), detail.data());
  std::abort();
}

#define PV_FUZZ_CHECK(condition, detail)                             \
  do {                                                               \
    if (!(condition)) ::packvisor::fuzz::Fail(#condition, (detail)); \
  } while (0)

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A user-facing error: non-empty, one line, no control characters, bounded.
inline void CheckOneLineMessage(std::string_view message) {
  PV_FUZZ_CHECK(!message.empty(), "empty error message");
  PV_FUZZ_CHECK(message.size() <= kMaxMessageBytes, message.substr(0, 300));
  for (char c : message) {
    auto byte = static_cast<unsigned char>(c);
    PV_FUZZ_CHECK(byte >= 0x20 && byte != 0x7f,
                  std::string("control character in: ") + std::string(message.substr(0, 300)));
  }
}

// `secret` (a value the input marked secret) does not occur in `text`. Secrets shorter than 4
// bytes are skipped: they occur in any text by chance ("a", "ok").
inline void CheckSecretAbsent(std::string_view text, std::string_view secret) {
  if (secret.size() < 4) return;
  PV_FUZZ_CHECK(text.find(secret) == std::string_view::npos,
                "secret " + std::string(secret.substr(0, 40)) +
                    " appears in: " + std::string(text.substr(0, 300)));
}

// Runs `body`; an exception escaping the API under test is an invariant failure, not a crash
// libFuzzer would attribute to std::terminate.
template <typename Body>
void NoThrow(std::string_view api, Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    Fail(std::string(api) + " threw", e.what());
  } catch (...) {
    Fail(std::string(api) + " threw", "a non-std exception");
  }
}

// Compact JSON text; bytes that are not UTF-8 replaced instead of throwing.
inline std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Every string under `value` with each byte changed (same length, still UTF-8): a text that is
// the same before and after cannot hold any of those strings.
inline void ChangeStrings(nlohmann::json& value) {
  if (value.is_string()) {
    for (char& c : value.get_ref<std::string&>()) c = c == 'x' ? 'y' : 'x';
  } else if (value.is_structured()) {
    for (auto& child : value) ChangeStrings(child);
  }
}

// `text` with every copy of `secret` replaced by as many letters it does not hold, except the
// copies that start at one of `keep` (none: every copy). Telling a leak from chance: letters still
// said when every copy is replaced are the messages' own words; when every copy but the secret's
// own is replaced (the others are public text: a type, a name, which an error may quote), they can
// only come from the secret.
inline std::string ReplaceCopies(std::string_view text, std::string_view secret,
                                 const std::vector<size_t>& keep = {}) {
  char other = '_';
  for (char c : {'Z', 'Q', 'X', 'J'}) {
    if (secret.find(c) == std::string_view::npos) {
      other = c;
      break;
    }
  }
  std::string out(text);
  if (secret.empty()) return out;
  for (size_t at = out.find(secret); at != std::string::npos;
       at = out.find(secret, at + secret.size())) {
    if (std::find(keep.begin(), keep.end(), at) == keep.end()) {
      out.replace(at, secret.size(), std::string(secret.size(), other));
    }
  }
  return out;
}

}  // namespace packvisor::fuzz
