// Internals of pack loading (supervisor/packs/packs.cc, supervisor/packs/parameters.cc): problem
// collection, the hardened YAML reader, and typed readers of YAML values. Not an API: everything is
// in packvisor::detail. Nothing here throws except where yaml-cpp does (the callers in packs.cc
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
#include "supervisor/packs/packs.h"

namespace packvisor::detail {

// ---------------------------------------------------------------------------------------------
// Problems: notes, warnings and errors, one line each ("file:line: key: detail").

class Problems {
 public:
  // The key and the detail are put on one line (a quoted YAML key, or a library's message, may
  // hold any character): control characters become '?'. A key is cut after kMaxKeyChars.
  void Add(Severity severity, const std::string& file, int line, const std::string& key,
           const std::string& detail) {
    if (severity == Severity::kError) ++errors_;
    diagnostics_.push_back(Diagnostic{severity, file, line, Cut(OneLine(key)), OneLine(detail)});
  }
  // An error.
  void Add(const std::string& file, int line, const std::string& key, const std::string& detail) {
    Add(Severity::kError, file, line, key, detail);
  }
  void AddFile(const std::string& file, const std::string& detail) { Add(file, 0, "", detail); }
  // The number of errors (notes and warnings are not counted).
  size_t errors() const { return errors_; }
  std::vector<Diagnostic>& diagnostics() { return diagnostics_; }

 private:
  static constexpr size_t kMaxKeyChars = 200;
  static std::string Cut(std::string key) {
    if (key.size() > kMaxKeyChars) key = key.substr(0, kMaxKeyChars) + "...";
    return key;
  }
  static std::string OneLine(std::string text) {
    for (char& c : text) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return text;
  }

  std::vector<Diagnostic> diagnostics_;
  size_t errors_ = 0;
};

// Where problems of one YAML file go.
struct FileContext {
  std::string path;
  Problems* problems;

  void Add(int line, const std::string& key, const std::string& detail) const {
    problems->Add(path, line, key, detail);
  }
  void Add(Severity severity, int line, const std::string& key, const std::string& detail) const {
    problems->Add(severity, path, line, key, detail);
  }
};

// The 1-based line of `node`; 0 when it is absent or has no position.
int LineOf(const YAML::Node& node);

// `text` in double quotes for a message: '"' and '\' escaped, control characters (DEL too) as '?',
// cut after 200 characters.
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

// The optimal-string-alignment distance of `a` and `b` (insertions, deletions, substitutions
// and transpositions of neighbours each cost 1), compared case-insensitively; stops counting at
// `limit + 1`.
size_t EditDistance(std::string_view a, std::string_view b, size_t limit);

// The key of `known` that `key` is probably a typo of (edit distance at most 2, and at most 1
// for known keys of 4 characters or fewer), or "" when none is.
std::string_view DidYouMean(std::string_view key, const std::vector<std::string_view>& known);

// What to do with a key a level does not read.
enum class UnknownKeys {
  kIgnore,  // a note "ignored", or a warning with "did you mean" (levels the original reads)
  kError,   // an error listing the known keys (packvisor's own maps, such as limits:)
};

// Records the key `full` (its last part `key`) that a level reading `known` does not read.
void ReportUnknownKey(const FileContext& ctx, int line, const std::string& full,
                      const std::string& key, const std::vector<std::string_view>& known,
                      UnknownKeys policy);

// Iterates the keys of a mapping, reporting non-string and duplicate keys. `visit(key, value)`
// returns false for a key it does not read, which is then reported by ReportUnknownKey.
template <typename Visit>
void ForEachKeyWith(UnknownKeys policy, const FileContext& ctx, const YAML::Node& map,
                    const std::string& prefix, const std::vector<std::string_view>& known,
                    Visit visit) {
  std::set<std::string> seen;
  // Once per line: `{,,,}` has as many empty keys as commas, and one line says it.
  std::set<int> lines_with_non_string_keys;
  for (const auto& entry : map) {
    // Copies: yaml-cpp's iterator->first refers into a temporary (a dangling reference otherwise).
    YAML::Node key_node = entry.first;
    YAML::Node value = entry.second;
    if (!key_node.IsScalar()) {
      if (lines_with_non_string_keys.insert(LineOf(key_node)).second) {
        ctx.Add(LineOf(key_node), prefix, "mapping keys must be strings");
      }
      continue;
    }
    const std::string& key = key_node.Scalar();
    std::string full = prefix.empty() ? key : prefix + "." + key;
    if (!seen.insert(key).second) {
      ctx.Add(LineOf(key_node), full, "duplicate key");
      continue;
    }
    if (!visit(key, value)) ReportUnknownKey(ctx, LineOf(key_node), full, key, known, policy);
  }
}

// ForEachKeyWith(UnknownKeys::kIgnore, ...): for the levels the original platform reads.
template <typename Visit>
void ForEachKey(const FileContext& ctx, const YAML::Node& map, const std::string& prefix,
                const std::vector<std::string_view>& known, Visit visit) {
  ForEachKeyWith(UnknownKeys::kIgnore, ctx, map, prefix, known, visit);
}

// InspectPack (packs.h) on text already in memory, for tests and the pack_yaml fuzz target:
// `pack_yaml` as `pack_dir`/pack.yaml and each (stem, text) of `actions` as
// `pack_dir`/actions/<stem>.yaml, in that order. Nothing is read from disk and entry points are
// not resolved; everything else is checked as InspectPack does.
PackInspection InspectPackText(const std::string& pack_dir, const std::string& pack_yaml,
                               const std::vector<std::pair<std::string, std::string>>& actions,
                               const envs::RuntimeRegistry* runtimes = nullptr);

}  // namespace packvisor::detail
