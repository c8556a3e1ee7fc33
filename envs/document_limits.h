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

namespace packvisor {

// The deepest nesting any configuration or runtime-definition TOML file may have (tables and
// arrays, counted as TomlNestsDeeperThan counts them): the files packvisor reads nest 3 deep.
inline constexpr int kMaxTomlDepth = 64;

// Whether the tables and arrays the TOML text `body` describes could nest deeper than `limit`,
// counted without parsing (strings and comments skipped) and stopping as soon as the limit is
// passed. toml++ caps inline arrays and tables (256), but not `a.b.c = 1` dotted keys or
// `[a.b.c]` headers, and it frees nested tables recursively. The count is an upper bound of the
// depth toml++ would build: a header's components count twice (each may be an array of tables
// holding a table), and the components of a dotted key and the inline arrays and tables of its
// value add to the header's.
bool TomlNestsDeeperThan(std::string_view body, int limit);

}  // namespace packvisor

namespace packvisor {

// toml++ 3.3 (Debian's) reaches __builtin_unreachable() - undefined behaviour - when it asks
// whether some non-ASCII characters are whitespace (U+00A1..U+0499 among others: Latin-1, Greek,
// Cyrillic), outside strings, and inside strings on several paths, some only on the way to an
// error. Rather than model those paths, packvisor's TOML files hold non-ASCII characters only in
// comments (TOML's \uXXXX escapes write any character in a "basic string"); comments are safe,
// toml++ only checks them for control characters. Returns the 1-based line of the first non-ASCII
// byte or control character (but tab, CR and LF: TOML allows no other) outside a comment (a
// leading byte order mark aside), or 0: the caller refuses the text before toml++ sees it.
int TomlUnsafeCharacterLine(std::string_view body);

}  // namespace packvisor
