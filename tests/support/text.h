// Text builders for tests of limits (deep and large documents).
#pragma once

#include <string>
#include <string_view>

namespace packvisor::testing {

// `piece` `times` times over.
inline std::string Repeat(std::string_view piece, int times) {
  std::string text;
  text.reserve(piece.size() * static_cast<size_t>(times));
  for (int i = 0; i < times; ++i) text += piece;
  return text;
}

}  // namespace packvisor::testing
