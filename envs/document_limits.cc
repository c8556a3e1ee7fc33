#include "envs/document_limits.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace packvisor {

bool JsonNestsDeeperThan(std::string_view body, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace packvisor

namespace packvisor {
namespace {

// Skips the string starting at body[i] (a quote), returning the index just past it. Single-line
// strings end at a newline too (toml++ stops there with an error). Multi-line strings may end
// with up to two extra quotes ("""a"""" is `a"`), which belong to the string.
size_t SkipTomlString(std::string_view body, size_t i) {
  const char quote = body[i];
  const bool escapes = quote == '"';
  if (body.compare(i, 3, std::string(3, quote)) == 0) {
    for (size_t j = i + 3; j < body.size(); ++j) {
      if (escapes && body[j] == '\\') {
        ++j;
      } else if (body.compare(j, 3, std::string(3, quote)) == 0) {
        j += 3;
        for (int extra = 0; extra < 2 && j < body.size() && body[j] == quote; ++extra) ++j;
        return j;
      }
    }
    return body.size();
  }
  for (size_t j = i + 1; j < body.size(); ++j) {
    if (escapes && body[j] == '\\') {
      if (j + 1 < body.size() && body[j + 1] == '\n') return j + 1;
      ++j;
    } else if (body[j] == quote || body[j] == '\n') {
      return body[j] == quote ? j + 1 : j;
    }
  }
  return body.size();
}

}  // namespace

bool TomlNestsDeeperThan(std::string_view body, int limit) {
  // The containers open at this point: '[' (array) or '{' (inline table), with the depth of
  // the values directly inside them.
  struct Open {
    char kind;
    int depth;
  };
  std::vector<Open> open;
  int header_depth = 0;  // of the tables the last [header] or [[header]] opened
  bool in_key = true;    // reading a key (before '='), not a value
  int key_parts = 1;     // components of the key read so far
  int value_depth = 0;   // the depth of the value after '='
  bool line_start = true;
  auto base = [&] { return open.empty() ? header_depth : open.back().depth; };
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '"' || c == '\'') {
      i = SkipTomlString(body, i) - 1;
      line_start = false;
      continue;
    }
    if (c == '#') {
      while (i + 1 < body.size() && body[i + 1] != '\n') ++i;
      continue;
    }
    if (c == '\n') {
      if (open.empty()) {
        in_key = true;
        key_parts = 1;
        line_start = true;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') continue;
    if (c == '[' && open.empty() && line_start) {
      // A [table] or [[array of tables]] header: its components, until the closing ']'.
      int parts = 1;
      size_t j = i + 1;
      for (; j < body.size() && body[j] != ']' && body[j] != '\n'; ++j) {
        if (body[j] == '"' || body[j] == '\'') {
          j = SkipTomlString(body, j) - 1;
        } else if (body[j] == '.') {
          ++parts;
        }
      }
      if (parts > limit / 2) return true;
      header_depth = 2 * parts;
      while (j < body.size() && body[j] == ']') ++j;
      i = j - 1;
      line_start = false;
      continue;
    }
    line_start = false;
    if (in_key) {
      if (c == '.') {
        if (++key_parts > limit) return true;
      } else if (c == '=') {
        in_key = false;
        value_depth = base() + key_parts;
        if (value_depth > limit) return true;
      }
      continue;
    }
    if (c == '[' || c == '{') {
      // Directly after '=' the container is the key's value; inside an array, an element.
      int depth = !open.empty() && open.back().kind == '[' ? open.back().depth + 1 : value_depth;
      if (depth > limit) return true;
      open.push_back(Open{c, depth});
      if (c == '{') {
        in_key = true;
        key_parts = 1;
      } else {
        value_depth = depth;
      }
    } else if (c == ']' || c == '}') {
      if (!open.empty()) open.pop_back();
      in_key = false;
      value_depth = base();
    } else if (c == ',' && !open.empty() && open.back().kind == '{') {
      in_key = true;
      key_parts = 1;
    }
  }
  return false;
}

}  // namespace packvisor

namespace packvisor {

int TomlUnsafeCharacterLine(std::string_view body) {
  int line = 1;
  size_t i = body.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // a byte order mark
  for (; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '#') {  // a comment, to the end of the line: anything goes
      while (i + 1 < body.size() && body[i + 1] != '\n') ++i;
      continue;
    }
    // Strings are scanned (a '#' in one is no comment), and hold no non-ASCII byte either.
    size_t end = c == '"' || c == '\'' ? SkipTomlString(body, i) : i + 1;
    for (size_t j = i; j < end; ++j) {
      auto byte = static_cast<unsigned char>(body[j]);
      // TOML allows no control character but tab (and CR before LF) anywhere; toml++ asserts
      // on some (an escape character in a [table] header).
      bool control = (byte < 0x20 && byte != '\t' && byte != '\n' && byte != '\r') || byte == 0x7f;
      if (byte >= 0x80 || control) return line;
      line += body[j] == '\n';
    }
    i = end - 1;
  }
  return 0;
}

}  // namespace packvisor
