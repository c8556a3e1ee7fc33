// Name checks shared by runtime definitions and pack metadata: character classes matched by hand
// (std::regex is slow, and GCC 12 warns inside it under the sanitizer build).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace packvisor::envs {

inline constexpr std::string_view kLowerAlpha = "abcdefghijklmnopqrstuvwxyz";
inline constexpr std::string_view kUpperAlpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
inline constexpr std::string_view kDigits = "0123456789";

// True when `s` is one character of `first` followed by at most `max_rest` characters of `rest`.
inline bool MatchesName(std::string_view s, const std::string& first, const std::string& rest,
                        size_t max_rest) {
  if (s.empty() || s.size() > max_rest + 1) return false;
  if (first.find(s.front()) == std::string::npos) return false;
  for (char c : s.substr(1)) {
    if (rest.find(c) == std::string::npos) return false;
  }
  return true;
}

// The concatenation of character classes, e.g. Chars({kLowerAlpha, kDigits, "_-"}).
inline std::string Chars(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) out += part;
  return out;
}

}  // namespace packvisor::envs
