// Limits checked on untrusted documents before a parser library sees them. nlohmann-json,
// yaml-cpp and toml++ recurse once per nesting level (and free nested values recursively), so a
// deep enough document overflows the stack: its depth is measured here first, without parsing.
// In envs/ because it is the lowest layer that parses documents others wrote (runtime
// definitions); everything above uses it.
#pragma once

#include <string_view>

namespace packvisor {

// Whether arrays and objects in the JSON text `body` nest deeper than `limit`, counted without
// parsing (strings skipped, with their escapes), stopping as soon as the limit is passed.
bool JsonNestsDeeperThan(std::string_view body, int limit);

}  // namespace packvisor
