// Internals of pack loading (supervisor/packs.cc, supervisor/parameters.cc): problem collection,
// the hardened YAML reader, and typed readers of YAML values. Not an API: everything is in
// packvisor::detail. Nothing here throws except where yaml-cpp does (the callers in packs.cc
// catch that).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/os/error.h"
#include "supervisor/packs.h"

namespace packvisor::detail {

// ---------------------------------------------------------------------------------------------
// Problems: one line each, "file:line: key: detail" (or "file: detail" for a whole file).

class Problems {
 public:
  void Add(const std::string& file, int line, const std::string& key, const std::string& detail) {
    std::string text = file;
    if (line > 0) text += ":" + std::to_string(line);
    text += ": ";
    if (!key.empty()) text += key + ": ";
    lines_.push_back(text + detail);
  }
  void AddFile(const std::string& file, const std::string& detail) { Add(file, 0, "", detail); }
  size_t size() const { return lines_.size(); }
  std::vector<std::string>& lines() { return lines_; }

 private:
  std::vector<std::string> lines_;
};

// Where problems of one YAML file go.
struct FileContext {
  std::string path;
  Problems* problems;

  void Add(int line, const std::string& key, const std::string& detail) const {
    problems->Add(path, line, key, detail);
  }
};

// The 1-based line of `node`; 0 when it is absent or has no position.
int LineOf(const YAML::Node& node);

// `text` in double quotes for a message: '"' and '\' escaped, control characters as '?', cut
// after 200 characters.
std::string Quote(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Reading YAML safely: size cap, no symlink, one document, depth and expanded-size caps.

// Reads `path` (not following a symlink in its last component), at most kMaxYamlBytes.
std::optional<std::string> ReadYamlFile(const std::string& path, Problems* problems);

// Parses `text` (read from `path`) as exactly one YAML document with a mapping at the top level,
// refusing it before conversion when it passes kMaxYamlDepth or kMaxYamlNodes.
std::optional<YAML::Node> ParseYaml(const std::string& path, const std::string& text,
                                    Problems* problems);

// ---------------------------------------------------------------------------------------------
// Scalars and YAML -> JSON.

bool IsNullScalar(const std::string& s);
std::optional<bool> ParseCoreBool(const std::string& s);

// YAML 1.1 spellings too, for fields that can only be booleans (required: yes).
std::optional<bool> ParseLenientBool(const std::string& s);

// YAML 1.2 core integers: [-+]?[0-9]+, 0x[0-9a-fA-F]+, 0o[0-7]+ (within int64).
std::optional<int64_t> ParseInt(const std::string& s);

// YAML 1.2 core floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, finite only.
std::optional<double> ParseFloat(const std::string& s);

// True for a quoted scalar or one tagged !!str: always a string, never a number or a bool.
bool IsQuotedOrStr(const YAML::Node& node);

struct Budget {
  uint64_t left = kMaxYamlNodes;
};

// Converts a YAML node to JSON. A scalar is read according to `hint` when given (a plain 8080
// for a string parameter is "8080"), else by the YAML 1.2 core schema (null, true/false,
// integers, floats, strings). Quoted scalars are always strings.
Result<nlohmann::json> ToJson(const YAML::Node& node, std::optional<ParamType> hint, int depth,
                              Budget* budget);

// Typed field readers: a problem is recorded and nullopt returned on a wrong type; a null or
// absent value is nullopt without a problem.
std::optional<std::string> GetString(const FileContext& ctx, const YAML::Node& value,
                                     const std::string& key);
std::optional<bool> GetBool(const FileContext& ctx, const YAML::Node& value,
                            const std::string& key);
std::optional<double> GetNumber(const FileContext& ctx, const YAML::Node& value,
                                const std::string& key);

// One of `names` (exact spelling); records a problem listing them otherwise.
template <typename Enum>
std::optional<Enum> GetEnum(const FileContext& ctx, const YAML::Node& value, const std::string& key,
                            const std::vector<std::pair<std::string_view, Enum>>& names) {
  std::optional<std::string> text = GetString(ctx, value, key);
  if (!text) return std::nullopt;
  std::string known;
  for (const auto& [name, e] : names) {
    if (name == *text) return e;
    known += (known.empty() ? "" : ", ") + std::string(name);
  }
  ctx.Add(LineOf(value), key, Quote(*text) + " is not one of: " + known);
  return std::nullopt;
}

// The name of `e` in `names`; "?" when it is not listed.
template <typename Enum>
std::string_view NameOf(const std::vector<std::pair<std::string_view, Enum>>& names, Enum e) {
  for (const auto& [name, value] : names) {
    if (value == e) return name;
  }
  return "?";
}

// Iterates the keys of a mapping, reporting non-string and duplicate keys. `visit(key, value)`
// returns false for a key it does not know, which is then reported with the list of known keys.
template <typename Visit>
void ForEachKey(const FileContext& ctx, const YAML::Node& map, const std::string& prefix,
                const std::string& known, Visit visit) {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    // Copies: yaml-cpp's iterator->first refers into a temporary (a dangling reference otherwise).
    YAML::Node key_node = entry.first;
    YAML::Node value = entry.second;
    if (!key_node.IsScalar()) {
      ctx.Add(LineOf(key_node), prefix, "mapping keys must be strings");
      continue;
    }
    const std::string& key = key_node.Scalar();
    std::string full = prefix.empty() ? key : prefix + "." + key;
    if (!seen.insert(key).second) {
      ctx.Add(LineOf(key_node), full, "duplicate key");
      continue;
    }
    if (!visit(key, value)) {
      ctx.Add(LineOf(key_node), full, "unknown key (known: " + known + ")");
    }
  }
}

}  // namespace packvisor::detail
