#include "supervisor/packs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "envs/names.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using envs::Chars;
using envs::kDigits;
using envs::kLowerAlpha;
using envs::kUpperAlpha;
using envs::MatchesName;

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

int LineOf(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;  // Mark() throws on an invalid (absent) node
  YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 200)) {
    if (c == '"' || c == '\\') out += '\\';
    out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  }
  return out + (text.size() > 200 ? "...\"" : "\"");
}

// ---------------------------------------------------------------------------------------------
// Reading YAML safely: size cap, no symlink, one document, depth and expanded-size caps.

// Reads `path` (not following a symlink in its last component), at most kMaxYamlBytes.
std::optional<std::string> ReadYamlFile(const std::string& path, Problems* problems) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) {
    if (errno == ELOOP) {
      problems->AddFile(path, "is a symbolic link (pack YAML files must be regular files)");
    } else if (errno == ENOENT) {
      problems->AddFile(path, "missing");
    } else {
      problems->AddFile(path, ErrnoError("open").message());
    }
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    problems->AddFile(path, ErrnoError("stat").message());
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    problems->AddFile(path, "not a regular file");
    return std::nullopt;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxYamlBytes) {
    problems->AddFile(path, "larger than " + std::to_string(kMaxYamlBytes) + " bytes (refused)");
    return std::nullopt;
  }
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      problems->AddFile(path, ErrnoError("read").message());
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxYamlBytes) {
      problems->AddFile(path, "larger than " + std::to_string(kMaxYamlBytes) + " bytes (refused)");
      return std::nullopt;
    }
  }
  return text;
}

struct YamlLimitExceeded {
  int line;
  std::string detail;
};

// Counts the nodes a document would have once every alias is expanded, without expanding
// anything: each anchor remembers the expanded size of its subtree, and an alias adds it.
// Stops (by throwing YamlLimitExceeded, caught in ParseYaml) as soon as a limit is passed.
class BudgetHandler : public YAML::EventHandler {
 public:
  int documents() const { return documents_; }

  void OnDocumentStart(const YAML::Mark&) override { ++documents_; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { Leaf(mark, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    Leaf(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    uint64_t size = anchor < anchor_sizes_.size() ? anchor_sizes_[anchor] : 1;
    Add(mark, size == 0 ? 1 : size);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    YAML::anchor_t anchor;
    uint64_t size;
    YAML::Mark mark;
  };

  void Leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    Record(anchor, 1);
    Add(mark, 1);
  }
  void Open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (static_cast<int>(stack_.size()) >= kMaxYamlDepth) {
      throw YamlLimitExceeded{mark.line + 1,
                              "nested deeper than " + std::to_string(kMaxYamlDepth) + " levels"};
    }
    stack_.push_back(Frame{anchor, 1, mark});
  }
  void Close() {
    if (stack_.empty()) return;
    Frame frame = stack_.back();
    stack_.pop_back();
    Record(frame.anchor, frame.size);
    Add(frame.mark, frame.size);
  }
  void Record(YAML::anchor_t anchor, uint64_t size) {
    if (anchor == YAML::NullAnchor) return;
    if (anchor >= anchor_sizes_.size()) anchor_sizes_.resize(anchor + 1, 0);
    anchor_sizes_[anchor] = size;
  }
  // Adds `size` expanded nodes to the innermost open collection (or the document).
  void Add(const YAML::Mark& mark, uint64_t size) {
    uint64_t& target = stack_.empty() ? total_ : stack_.back().size;
    target = std::min<uint64_t>(target + size, kMaxYamlNodes + 1);
    if (target > kMaxYamlNodes) {
      throw YamlLimitExceeded{mark.line + 1, "more than " + std::to_string(kMaxYamlNodes) +
                                                 " nodes once aliases are expanded (refused)"};
    }
  }

  std::vector<Frame> stack_;
  std::vector<uint64_t> anchor_sizes_;
  uint64_t total_ = 0;
  int documents_ = 0;
};

// Parses one YAML document after checking its shape with BudgetHandler.
std::optional<YAML::Node> ParseYaml(const std::string& path, const std::string& text,
                                    Problems* problems) {
  try {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    BudgetHandler budget;
    if (!parser.HandleNextDocument(budget)) {
      problems->AddFile(path, "empty (expected a YAML mapping)");
      return std::nullopt;
    }
    if (parser.HandleNextDocument(budget)) {
      problems->AddFile(path, "more than one YAML document");
      return std::nullopt;
    }
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) {
      problems->Add(path, LineOf(root), "", "expected a YAML mapping at the top level");
      return std::nullopt;
    }
    return root;
  } catch (const YamlLimitExceeded& e) {
    problems->Add(path, e.line, "", e.detail);
  } catch (const YAML::Exception& e) {
    problems->Add(path, e.mark.is_null() ? 0 : e.mark.line + 1, "", "YAML: " + e.msg);
  } catch (const std::exception& e) {
    problems->Add(path, 0, "", std::string("YAML: ") + e.what());
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Scalars and YAML -> JSON.

bool IsNullScalar(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> ParseCoreBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

// YAML 1.1 spellings too, for fields that can only be booleans (required: yes).
std::optional<bool> ParseLenientBool(const std::string& s) {
  if (std::optional<bool> b = ParseCoreBool(s)) return b;
  static const std::set<std::string> kTrue = {"yes", "Yes", "YES", "on", "On", "ON", "y", "Y"};
  static const std::set<std::string> kFalse = {"no", "No", "NO", "off", "Off", "OFF", "n", "N"};
  if (kTrue.count(s)) return true;
  if (kFalse.count(s)) return false;
  return std::nullopt;
}

bool AllOf(std::string_view s, std::string_view allowed) {
  return !s.empty() && s.find_first_not_of(allowed) == std::string_view::npos;
}

// YAML 1.2 core integers: [-+]?[0-9]+, 0x[0-9a-fA-F]+, 0o[0-7]+ (within int64).
std::optional<int64_t> ParseInt(const std::string& s) {
  std::string_view digits = s;
  int base = 10;
  bool negative = false;
  if (digits.rfind("0x", 0) == 0) {
    digits.remove_prefix(2);
    base = 16;
    if (!AllOf(digits, "0123456789abcdefABCDEF")) return std::nullopt;
  } else if (digits.rfind("0o", 0) == 0) {
    digits.remove_prefix(2);
    base = 8;
    if (!AllOf(digits, "01234567")) return std::nullopt;
  } else {
    if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) {
      negative = digits.front() == '-';
      digits.remove_prefix(1);
    }
    if (!AllOf(digits, kDigits)) return std::nullopt;
  }
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
  if (magnitude > (negative ? kMax + 1 : kMax)) return std::nullopt;
  if (negative) return magnitude == kMax + 1 ? INT64_MIN : -static_cast<int64_t>(magnitude);
  return static_cast<int64_t>(magnitude);
}

// YAML 1.2 core floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, finite only.
std::optional<double> ParseFloat(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  auto digits = [&] {
    size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  size_t int_digits = digits();
  size_t frac_digits = 0;
  if (i < n && s[i] == '.') {
    ++i;
    frac_digits = digits();
  }
  if (int_digits == 0 && frac_digits == 0) return std::nullopt;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return std::nullopt;
  }
  if (i != n) return std::nullopt;
  std::string_view text = s;
  if (text.front() == '+') text.remove_prefix(1);
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

bool IsQuotedOrStr(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  return tag == "!" || tag == "tag:yaml.org,2002:str" || tag == "!!str";
}

struct Budget {
  uint64_t left = kMaxYamlNodes;
};

// Converts a YAML node to JSON. A scalar is read according to `hint` when given (a plain 8080
// for a string parameter is "8080"), else by the YAML 1.2 core schema (null, true/false,
// integers, floats, strings). Quoted scalars are always strings.
Result<json> ToJson(const YAML::Node& node, std::optional<ParamType> hint, int depth,
                    Budget* budget) {
  if (budget->left == 0) return Failure("", "", "too many nodes");
  --budget->left;
  if (depth > kMaxYamlDepth) return Failure("", "", "nested too deeply");
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Sequence: {
      json array = json::array();
      for (const YAML::Node& element : node) {
        Result<json> value = ToJson(element, std::nullopt, depth + 1, budget);
        if (!value.ok()) return value.error();
        array.push_back(std::move(*value));
      }
      return array;
    }
    case YAML::NodeType::Map: {
      json object = json::object();
      // yaml-cpp's iterator->first is a member of a temporary: copy the pair (cheap handles).
      for (const auto& entry : node) {
        YAML::Node key = entry.first;
        YAML::Node child = entry.second;
        if (!key.IsScalar()) return Failure("", "", "mapping keys must be strings");
        Result<json> value = ToJson(child, std::nullopt, depth + 1, budget);
        if (!value.ok()) return value.error();
        object[key.Scalar()] = std::move(*value);
      }
      return object;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& s = node.Scalar();
  if (IsQuotedOrStr(node) || hint == ParamType::kString) return json(s);
  if (IsNullScalar(s)) return json(nullptr);
  if (hint == ParamType::kBoolean) {
    if (std::optional<bool> b = ParseLenientBool(s)) return json(*b);
  }
  if (std::optional<bool> b = ParseCoreBool(s)) return json(*b);
  if (std::optional<int64_t> i = ParseInt(s)) return json(*i);
  if (std::optional<double> d = ParseFloat(s)) return json(*d);
  return json(s);
}

// Typed field readers: a problem is recorded and nullopt returned on a wrong type; a null or
// absent value is nullopt without a problem.
std::optional<std::string> GetString(const FileContext& ctx, const YAML::Node& value,
                                     const std::string& key) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (!value.IsScalar()) {
    ctx.Add(LineOf(value), key, "expected a string");
    return std::nullopt;
  }
  if (value.Scalar().find('\0') != std::string::npos) {
    ctx.Add(LineOf(value), key, "contains a NUL byte");
    return std::nullopt;
  }
  return value.Scalar();
}

std::optional<bool> GetBool(const FileContext& ctx, const YAML::Node& value,
                            const std::string& key) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  std::optional<bool> b = value.IsScalar() ? ParseLenientBool(value.Scalar()) : std::nullopt;
  if (!b) ctx.Add(LineOf(value), key, "expected true or false");
  return b;
}

std::optional<double> GetNumber(const FileContext& ctx, const YAML::Node& value,
                                const std::string& key) {
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  if (value.IsScalar() && !IsQuotedOrStr(value)) {
    if (std::optional<int64_t> i = ParseInt(value.Scalar())) return static_cast<double>(*i);
    if (std::optional<double> d = ParseFloat(value.Scalar())) return d;
  }
  ctx.Add(LineOf(value), key, "expected a number");
  return std::nullopt;
}

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

const std::vector<std::pair<std::string_view, ParamType>> kParamTypes = {
    {"string", ParamType::kString}, {"integer", ParamType::kInteger},
    {"number", ParamType::kNumber}, {"boolean", ParamType::kBoolean},
    {"object", ParamType::kObject}, {"array", ParamType::kArray}};
const std::vector<std::pair<std::string_view, ParameterDelivery>> kDeliveries = {
    {"stdin", ParameterDelivery::kStdin}, {"file", ParameterDelivery::kFile}};
const std::vector<std::pair<std::string_view, ParameterFormat>> kParamFormats = {
    {"json", ParameterFormat::kJson},
    {"dotenv", ParameterFormat::kDotenv},
    {"yaml", ParameterFormat::kYaml}};
const std::vector<std::pair<std::string_view, OutputFormat>> kOutputFormats = {
    {"text", OutputFormat::kText},
    {"json", OutputFormat::kJson},
    {"yaml", OutputFormat::kYaml},
    {"jsonl", OutputFormat::kJsonl}};
const std::vector<std::pair<std::string_view, NetworkMode>> kNetworkModes = {
    {"none", NetworkMode::kNone}, {"host", NetworkMode::kHost}};

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

// ---------------------------------------------------------------------------------------------
// Parameter values.

std::string_view JsonTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "binary";
  }
}

std::string FormatNumber(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
  return json(d).dump();
}

// Checks `value` against `spec`; an integer-valued float becomes an integer for an integer
// parameter. Returns the problem (without the value, which may be a secret) or nullopt.
std::optional<std::string> CheckValue(const ParameterSpec& spec, json* value) {
  if (spec.type) {
    bool ok = false;
    switch (*spec.type) {
      case ParamType::kString:
        ok = value->is_string();
        break;
      case ParamType::kInteger:
        if (value->is_number_integer()) {
          ok = true;
        } else if (value->is_number_float()) {
          double d = value->get<double>();
          if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18) {
            *value = static_cast<int64_t>(d);
            ok = true;
          }
        }
        break;
      case ParamType::kNumber:
        ok = value->is_number();
        break;
      case ParamType::kBoolean:
        ok = value->is_boolean();
        break;
      case ParamType::kObject:
        ok = value->is_object();
        break;
      case ParamType::kArray:
        ok = value->is_array();
        break;
    }
    if (!ok) {
      return "expected " + std::string(ParamTypeName(*spec.type)) + ", got " +
             std::string(JsonTypeName(*value));
    }
  }
  if (!spec.enum_values.empty() && std::find(spec.enum_values.begin(), spec.enum_values.end(),
                                             *value) == spec.enum_values.end()) {
    std::string allowed;
    for (const json& e : spec.enum_values) {
      allowed += (allowed.empty() ? "" : ", ") + e.dump();
      if (allowed.size() > 300) {
        allowed += ", ...";
        break;
      }
    }
    return "not one of the allowed values (" + allowed + ")";
  }
  if (value->is_number()) {
    double d = value->get<double>();
    if (spec.minimum && d < *spec.minimum) return "must be >= " + FormatNumber(*spec.minimum);
    if (spec.maximum && d > *spec.maximum) return "must be <= " + FormatNumber(*spec.maximum);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Parameter specs.

const char kParamKnown[] =
    "type, required, default, enum, secret, minimum, maximum, description (ignored: title, "
    "label, format, items, properties, position, immutable, minLength, maxLength, pattern, ...)";

bool IsIgnoredParamKey(const std::string& key) {
  static const std::set<std::string> kIgnored = {
      "title",    "label",     "format",    "items",       "properties", "additionalProperties",
      "position", "immutable", "minLength", "maxLength",   "minItems",   "maxItems",
      "pattern",  "examples",  "hidden",    "placeholder", "uniqueItems"};
  return kIgnored.count(key) > 0;
}

std::optional<ParameterSpec> ParseParameter(const FileContext& ctx, const std::string& name,
                                            const YAML::Node& node, Budget* budget) {
  std::string prefix = "parameters." + name;
  if (!node.IsMap()) {
    ctx.Add(LineOf(node), prefix, "expected a mapping {type, required, default, ...}");
    return std::nullopt;
  }
  size_t before = ctx.problems->size();
  ParameterSpec spec;
  // The type first: it guides how default and enum scalars are read.
  if (node["type"]) spec.type = GetEnum(ctx, node["type"], prefix + ".type", kParamTypes);
  YAML::Node default_node;
  YAML::Node enum_node;
  ForEachKey(ctx, node, prefix, kParamKnown, [&](const std::string& key, const YAML::Node& v) {
    std::string full = prefix + "." + key;
    if (key == "type") {
      // read above
    } else if (key == "required") {
      spec.required = GetBool(ctx, v, full).value_or(false);
    } else if (key == "secret") {
      spec.secret = GetBool(ctx, v, full).value_or(false);
    } else if (key == "description") {
      spec.description = GetString(ctx, v, full).value_or("");
    } else if (key == "minimum") {
      spec.minimum = GetNumber(ctx, v, full);
    } else if (key == "maximum") {
      spec.maximum = GetNumber(ctx, v, full);
    } else if (key == "default") {
      default_node = v;
    } else if (key == "enum") {
      enum_node = v;
    } else {
      return IsIgnoredParamKey(key);
    }
    return true;
  });
  if ((spec.minimum || spec.maximum) && spec.type && *spec.type != ParamType::kInteger &&
      *spec.type != ParamType::kNumber) {
    ctx.Add(LineOf(node), prefix, "minimum/maximum apply only to integer and number parameters");
  }
  if (spec.minimum && spec.maximum && *spec.minimum > *spec.maximum) {
    ctx.Add(LineOf(node["minimum"]), prefix + ".minimum", "greater than maximum");
  }
  if (enum_node && !enum_node.IsNull()) {
    if (!enum_node.IsSequence() || enum_node.size() == 0) {
      ctx.Add(LineOf(enum_node), prefix + ".enum", "expected a non-empty list");
    } else {
      for (const YAML::Node& element : enum_node) {
        Result<json> value = ToJson(element, spec.type, 0, budget);
        if (!value.ok()) {
          ctx.Add(LineOf(element), prefix + ".enum", value.error().message());
          continue;
        }
        ParameterSpec type_only;
        type_only.type = spec.type;
        if (std::optional<std::string> bad = CheckValue(type_only, &*value)) {
          ctx.Add(LineOf(element), prefix + ".enum", *bad);
          continue;
        }
        spec.enum_values.push_back(std::move(*value));
      }
    }
  }
  if (default_node && !default_node.IsNull()) {
    Result<json> value = ToJson(default_node, spec.type, 0, budget);
    if (!value.ok()) {
      ctx.Add(LineOf(default_node), prefix + ".default", value.error().message());
    } else if (std::optional<std::string> bad = CheckValue(spec, &*value)) {
      ctx.Add(LineOf(default_node), prefix + ".default", *bad);
    } else {
      spec.default_value = std::move(*value);
    }
  }
  if (ctx.problems->size() != before) return std::nullopt;
  return spec;
}

// ---------------------------------------------------------------------------------------------
// Entry points.

bool IsBeneath(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

std::optional<std::string> RealPath(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) return std::nullopt;
  std::string out(real);
  std::free(real);
  return out;
}

// Resolves `entry` (relative to actions/) to (host real path, sandbox path), or a problem.
Result<std::pair<std::string, std::string>> ResolveEntryPoint(const std::string& pack_real,
                                                              const std::string& actions_real,
                                                              const std::string& entry) {
  if (entry.empty()) return Failure("", "", "empty");
  if (entry.front() == '/') {
    return Failure("", "", Quote(entry) + " is absolute; it must be relative to actions/");
  }
  for (const auto& part : fs::path(entry)) {
    if (part == "..") {
      return Failure("", "", Quote(entry) + " contains '..'; it must stay beneath actions/");
    }
  }
  std::string joined = actions_real + "/" + entry;
  std::optional<std::string> real = RealPath(joined);
  if (!real) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return Failure("", "", Quote(entry) + " does not exist in " + actions_real);
    }
    return Failure("", "", Quote(entry) + ": " + ErrnoError("resolve").message());
  }
  if (!IsBeneath(*real, actions_real)) {
    return Failure(
        "", "", Quote(entry) + " resolves to " + *real + ", outside the pack's actions/ directory");
  }
  struct stat st {};
  if (::stat(real->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Failure("", "", Quote(entry) + " is not a regular file");
  }
  std::string sandbox = std::string(envs::kSandboxPackDir) + real->substr(pack_real.size());
  return std::make_pair(*real, sandbox);
}

// ---------------------------------------------------------------------------------------------
// pack.yaml and actions/*.yaml.

const char kPackKnown[] =
    "ref, version, description, runtime_deps (ignored: label, author, email, tags, conf_schema, "
    "config, meta, enabled, testing, ...)";

bool IsIgnoredPackKey(const std::string& key) {
  static const std::set<std::string> kIgnored = {"label",
                                                 "name",
                                                 "author",
                                                 "email",
                                                 "system",
                                                 "conf_schema",
                                                 "config",
                                                 "meta",
                                                 "tags",
                                                 "enabled",
                                                 "testing",
                                                 "keywords",
                                                 "contributors",
                                                 "python_versions",
                                                 "stackstorm_version",
                                                 "dependencies",
                                                 "license",
                                                 "homepage",
                                                 "repository",
                                                 "url"};
  return kIgnored.count(key) > 0;
}

// `limits:` of an action: whole numbers in the ranges of envs::LimitRequest.
void ParseLimitRequest(const FileContext& ctx, const YAML::Node& node, const std::string& key,
                       envs::LimitRequest* limits) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    ctx.Add(LineOf(node), key, "expected a mapping with memory_mb, pids and/or cpu_percent");
    return;
  }
  ForEachKey(ctx, node, key, "memory_mb, pids, cpu_percent",
             [&](const std::string& field, const YAML::Node& value) {
               std::optional<uint64_t>* out = nullptr;
               uint64_t min = 1;
               uint64_t max = 0;
               if (field == "memory_mb") {
                 out = &limits->memory_mb;
                 max = envs::kMaxLimitMemoryMb;
               } else if (field == "pids") {
                 out = &limits->pids;
                 min = 2;
                 max = envs::kMaxLimitPids;
               } else if (field == "cpu_percent") {
                 out = &limits->cpu_percent;
                 max = envs::kMaxLimitCpuPercent;
               } else {
                 return false;
               }
               std::optional<int64_t> n = value.IsScalar() && !IsQuotedOrStr(value)
                                              ? ParseInt(value.Scalar())
                                              : std::nullopt;
               if (!n || *n < static_cast<int64_t>(min) || *n > static_cast<int64_t>(max)) {
                 ctx.Add(LineOf(value), key + "." + field,
                         "expected a whole number from " + std::to_string(min) + " to " +
                             std::to_string(max));
               } else {
                 *out = static_cast<uint64_t>(*n);
               }
               return true;
             });
}

const char kActionKnown[] =
    "name, ref, description, runner_type, entry_point, parameters, parameter_delivery, "
    "parameter_format, output_format, timeout_seconds, network, limits, enabled (ignored: label, "
    "tags, "
    "output, output_schema, runtime_version, worker_*, ...)";

bool IsIgnoredActionKey(const std::string& key) {
  static const std::set<std::string> kIgnored = {"label",
                                                 "tags",
                                                 "output",
                                                 "output_schema",
                                                 "out_schema",
                                                 "runtime_version",
                                                 "required_worker_runtimes",
                                                 "workflow_file",
                                                 "meta",
                                                 "pack",
                                                 "notify",
                                                 "param_schema"};
  return kIgnored.count(key) > 0 || key.rfind("worker_", 0) == 0;
}

bool IsValidActionName(const std::string& name) {
  // ^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$
  return MatchesName(name, Chars({kLowerAlpha, kUpperAlpha, kDigits, "_"}),
                     Chars({kLowerAlpha, kUpperAlpha, kDigits, "_-"}), 127);
}

bool IsValidParameterName(const std::string& name) {
  // Shell helpers turn parameter names into shell variables (SPEC §7): identifiers only.
  // ^[A-Za-z_][A-Za-z0-9_]{0,127}$
  return MatchesName(name, Chars({kLowerAlpha, kUpperAlpha, "_"}),
                     Chars({kLowerAlpha, kUpperAlpha, kDigits, "_"}), 127);
}

// The pack directory as loaded: real path and the name the ref must equal.
struct PackDir {
  std::string real;
  std::string name;
  std::string actions_real;  // empty when actions/ is missing or escapes the pack
};

std::optional<PackDir> OpenPackDir(const std::string& dir, Problems* problems) {
  std::optional<std::string> real = RealPath(dir);
  struct stat st {};
  if (!real || ::stat(real->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    problems->AddFile(dir, real ? "not a directory" : ErrnoError("resolve").message());
    return std::nullopt;
  }
  PackDir pack;
  pack.real = *real;
  fs::path given = fs::path(dir).lexically_normal();
  if (given.has_filename() == false) given = given.parent_path();  // "hello/" -> "hello"
  std::string name = given.filename().string();
  if (name.empty() || name == "." || name == "..") name = fs::path(*real).filename().string();
  pack.name = name;
  std::string actions = pack.real + "/actions";
  std::optional<std::string> actions_real = RealPath(actions);
  if (!actions_real) {
    problems->AddFile(actions, "missing (a pack keeps its action definitions in actions/)");
  } else if (!IsBeneath(*actions_real, pack.real)) {
    problems->AddFile(actions, "resolves to " + *actions_real + ", outside the pack");
  } else if (::stat(actions_real->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    problems->AddFile(actions, "not a directory");
  } else {
    pack.actions_real = *actions_real;
  }
  return pack;
}

// Parses pack.yaml into `pack` (which keeps its defaults where a field is broken).
void ParseManifestUnguarded(const PackDir& dir, Pack* pack, Problems* problems) {
  pack->dir = dir.real;
  pack->ref = dir.name;
  FileContext ctx{dir.real + "/pack.yaml", problems};
  std::optional<std::string> text = ReadYamlFile(ctx.path, problems);
  if (!text) return;
  std::optional<YAML::Node> root = ParseYaml(ctx.path, *text, problems);
  if (!root) return;
  bool have_ref = false;
  ForEachKey(ctx, *root, "", kPackKnown, [&](const std::string& key, const YAML::Node& v) {
    if (key == "ref") {
      have_ref = true;
      std::optional<std::string> ref = GetString(ctx, v, key);
      if (!ref) {
        if (v.IsNull()) ctx.Add(LineOf(v), key, "empty");
      } else if (!IsValidPackRef(*ref)) {
        ctx.Add(LineOf(v), key, Quote(*ref) + " does not match ^[a-z0-9][a-z0-9_-]{0,63}$");
      } else if (*ref != dir.name) {
        ctx.Add(LineOf(v), key,
                Quote(*ref) + " does not match the directory name " + Quote(dir.name));
      }
    } else if (key == "version") {
      pack->version = GetString(ctx, v, key).value_or("");
    } else if (key == "description") {
      pack->description = GetString(ctx, v, key).value_or("");
    } else if (key == "runtime_deps") {
      if (v.IsNull()) return true;
      if (!v.IsSequence()) {
        ctx.Add(LineOf(v), key, "expected a list of runtime names");
        return true;
      }
      for (const YAML::Node& element : v) {
        if (std::optional<std::string> dep = GetString(ctx, element, key)) {
          pack->runtime_deps.push_back(*dep);
        }
      }
    } else {
      return IsIgnoredPackKey(key);
    }
    return true;
  });
  if (!have_ref) ctx.Add(LineOf(*root), "ref", "missing (required; the pack's name)");
}

// Parses one action file. Returns the action when the file has no problem.
std::optional<Action> ParseActionUnguarded(const Pack& pack, const PackDir& dir,
                                           const std::string& yaml_path, const std::string& stem,
                                           const envs::RuntimeRegistry* runtimes,
                                           Problems* problems) {
  size_t before = problems->size();
  FileContext ctx{yaml_path, problems};
  std::optional<std::string> text = ReadYamlFile(yaml_path, problems);
  if (!text) return std::nullopt;
  std::optional<YAML::Node> root = ParseYaml(yaml_path, *text, problems);
  if (!root) return std::nullopt;
  Action action;
  action.source = yaml_path;
  Budget budget;
  std::optional<std::string> name;
  int name_line = LineOf(*root);
  std::optional<std::string> entry;
  bool name_reported = false;   // a problem about name/ref is already recorded
  bool entry_reported = false;  // same for entry_point
  ForEachKey(ctx, *root, "", kActionKnown, [&](const std::string& key, const YAML::Node& v) {
    if (key == "name") {
      std::optional<std::string> n = GetString(ctx, v, key);
      if (!n && !v.IsNull()) name_reported = true;
      if (n) {
        if (name && *name != *n) {
          ctx.Add(LineOf(v), key, Quote(*n) + " disagrees with ref (" + Quote(*name) + ")");
        }
        name = n;
        name_line = LineOf(v);
      }
    } else if (key == "ref") {
      std::optional<std::string> ref = GetString(ctx, v, key);
      if (!ref && !v.IsNull()) name_reported = true;
      if (!ref) return true;
      size_t dot = ref->find('.');
      if (dot == std::string::npos || ref->substr(0, dot) != pack.ref) {
        ctx.Add(LineOf(v), key, Quote(*ref) + " is not of the form " + pack.ref + ".<name>");
        return true;
      }
      std::string n = ref->substr(dot + 1);
      if (name && *name != n) {
        ctx.Add(LineOf(v), key, Quote(*ref) + " disagrees with name (" + Quote(*name) + ")");
      }
      name = n;
      name_line = LineOf(v);
    } else if (key == "description") {
      action.description = GetString(ctx, v, key).value_or("");
    } else if (key == "runner_type") {
      action.runner_type = GetString(ctx, v, key).value_or("");
      action.runner_type_line = LineOf(v);
    } else if (key == "entry_point") {
      entry = GetString(ctx, v, key);
      if (!entry && !v.IsNull()) entry_reported = true;
      action.entry_point_line = LineOf(v);
    } else if (key == "parameter_delivery") {
      action.parameter_delivery =
          GetEnum(ctx, v, key, kDeliveries).value_or(ParameterDelivery::kStdin);
    } else if (key == "parameter_format") {
      action.parameter_format =
          GetEnum(ctx, v, key, kParamFormats).value_or(ParameterFormat::kJson);
    } else if (key == "output_format") {
      action.output_format = GetEnum(ctx, v, key, kOutputFormats).value_or(OutputFormat::kText);
    } else if (key == "network") {
      action.network = GetEnum(ctx, v, key, kNetworkModes);
      action.network_line = LineOf(v);
    } else if (key == "enabled") {
      action.enabled = GetBool(ctx, v, key).value_or(true);
    } else if (key == "timeout_seconds") {
      if (v.IsNull()) return true;
      std::optional<int64_t> t =
          v.IsScalar() && !IsQuotedOrStr(v) ? ParseInt(v.Scalar()) : std::nullopt;
      if (!t || *t < 1 || *t > 604800) {
        ctx.Add(LineOf(v), key, "expected a whole number of seconds from 1 to 604800");
      } else {
        action.timeout_seconds = *t;
      }
    } else if (key == "limits") {
      action.limits_line = LineOf(v);
      ParseLimitRequest(ctx, v, key, &action.limits);
    } else if (key == "parameters") {
      if (v.IsNull()) return true;
      if (!v.IsMap()) {
        ctx.Add(LineOf(v), key, "expected a mapping of parameter name to specification");
        return true;
      }
      ForEachKey(ctx, v, key, "", [&](const std::string& param, const YAML::Node& spec) {
        if (!IsValidParameterName(param)) {
          ctx.Add(LineOf(spec), key + "." + param,
                  "not a valid parameter name (letters, digits and '_', not starting with a "
                  "digit)");
        } else if (std::optional<ParameterSpec> parsed =
                       ParseParameter(ctx, param, spec, &budget)) {
          action.parameters[param] = std::move(*parsed);
        }
        return true;
      });
    } else {
      return IsIgnoredActionKey(key);
    }
    return true;
  });

  if (!name) {
    if (!name_reported) {
      ctx.Add(LineOf(*root), "name", "missing (required, or ref: " + pack.ref + ".<name>)");
    }
  } else if (!IsValidActionName(*name)) {
    ctx.Add(name_line, "name", Quote(*name) + " must match ^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$");
  } else if (*name != stem) {
    ctx.Add(name_line, "name",
            Quote(*name) + " does not match the file name " +
                Quote(fs::path(yaml_path).filename().string()));
  } else {
    action.name = *name;
    action.action_ref = pack.ref + "." + *name;
  }

  if (!entry) {
    if (!entry_reported) {
      ctx.Add(LineOf(*root), "entry_point", "missing (required; a file under actions/)");
    }
  } else if (!dir.actions_real.empty()) {
    action.entry_point = *entry;
    Result<std::pair<std::string, std::string>> resolved =
        ResolveEntryPoint(dir.real, dir.actions_real, *entry);
    if (!resolved.ok()) {
      ctx.Add(action.entry_point_line, "entry_point", resolved.error().message());
    } else {
      action.entry_path = resolved->first;
      action.sandbox_entry_path = resolved->second;
    }
  }

  if (runtimes != nullptr && problems->size() == before) {
    Result<const envs::RuntimeDefinition*> runtime = ChooseRuntime(action, *runtimes);
    if (!runtime.ok()) {
      problems->lines().push_back(runtime.error().message());
    } else {
      action.runtime = (*runtime)->name;
    }
  }
  if (problems->size() != before) return std::nullopt;
  return action;
}

// The two parsers above with a last line of defence: yaml-cpp reports some misuse by throwing,
// and no exception may leave this file.
void ParseManifest(const PackDir& dir, Pack* pack, Problems* problems) {
  try {
    ParseManifestUnguarded(dir, pack, problems);
  } catch (const std::exception& e) {
    problems->AddFile(dir.real + "/pack.yaml", std::string("cannot load: ") + e.what());
  }
}

std::optional<Action> ParseAction(const Pack& pack, const PackDir& dir,
                                  const std::string& yaml_path, const std::string& stem,
                                  const envs::RuntimeRegistry* runtimes, Problems* problems) {
  try {
    return ParseActionUnguarded(pack, dir, yaml_path, stem, runtimes, problems);
  } catch (const std::exception& e) {
    problems->AddFile(yaml_path, std::string("cannot load: ") + e.what());
    return std::nullopt;
  }
}

// The action files of actions/: *.yaml and *.yml, not hidden, sorted. Returns (stem, path).
std::vector<std::pair<std::string, std::string>> ListActionFiles(const PackDir& dir,
                                                                 Problems* problems) {
  std::vector<std::pair<std::string, std::string>> files;
  if (dir.actions_real.empty()) return files;
  std::error_code ec;
  for (fs::directory_iterator it(dir.actions_real, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& path = it->path();
    std::string filename = path.filename().string();
    std::string ext = path.extension().string();
    if (filename.front() == '.' || (ext != ".yaml" && ext != ".yml")) continue;
    files.emplace_back(path.stem().string(), path.string());
  }
  if (ec) problems->AddFile(dir.actions_real, "cannot list: " + ec.message());
  std::sort(files.begin(), files.end());
  for (size_t i = 1; i < files.size(); ++i) {
    if (files[i].first == files[i - 1].first) {
      problems->AddFile(files[i].second, "defines the same action as " + files[i - 1].second);
    }
  }
  return files;
}

// Loads everything, recording every problem. The pack is complete only when none were found.
Pack LoadPackCollecting(const std::string& pack_dir, const envs::RuntimeRegistry* runtimes,
                        Problems* problems) {
  Pack pack;
  std::optional<PackDir> dir = OpenPackDir(pack_dir, problems);
  if (!dir) return pack;
  ParseManifest(*dir, &pack, problems);
  for (const auto& [stem, path] : ListActionFiles(*dir, problems)) {
    if (std::optional<Action> action = ParseAction(pack, *dir, path, stem, runtimes, problems)) {
      pack.actions.push_back(std::move(*action));
    }
  }
  std::sort(pack.actions.begin(), pack.actions.end(),
            [](const Action& a, const Action& b) { return a.name < b.name; });
  return pack;
}

Error FirstProblem(std::vector<std::string>& problems) {
  std::string text = problems.front();
  if (problems.size() > 1) {
    text += " (and " + std::to_string(problems.size() - 1) + " more problem" +
            (problems.size() > 2 ? "s" : "") + ")";
  }
  return Failure("", "", text);
}

}  // namespace

std::string_view ParamTypeName(ParamType type) { return NameOf(kParamTypes, type); }
std::string_view ParameterDeliveryName(ParameterDelivery value) {
  return NameOf(kDeliveries, value);
}
std::string_view ParameterFormatName(ParameterFormat value) { return NameOf(kParamFormats, value); }
std::string_view OutputFormatName(OutputFormat value) { return NameOf(kOutputFormats, value); }
std::string_view NetworkModeName(NetworkMode value) { return NameOf(kNetworkModes, value); }

const Action* Pack::FindAction(std::string_view name) const {
  for (const Action& action : actions) {
    if (action.name == name) return &action;
  }
  return nullptr;
}

bool IsValidPackRef(std::string_view ref) {
  // ^[a-z0-9][a-z0-9_-]{0,63}$
  return MatchesName(ref, Chars({kLowerAlpha, kDigits}), Chars({kLowerAlpha, kDigits, "_-"}), 63);
}

Result<Pack> LoadPack(const std::string& pack_dir, const envs::RuntimeRegistry* runtimes) {
  Problems problems;
  Pack pack = LoadPackCollecting(pack_dir, runtimes, &problems);
  if (problems.size() > 0) return FirstProblem(problems.lines());
  return pack;
}

std::vector<std::string> ValidatePackDir(const std::string& dir,
                                         const envs::RuntimeRegistry* runtimes) {
  Problems problems;
  (void)LoadPackCollecting(dir, runtimes, &problems);
  return std::move(problems.lines());
}

Result<PackListing> ListPacks(const std::string& packs_base_dir,
                              const envs::RuntimeRegistry* runtimes) {
  std::error_code ec;
  std::vector<std::string> dirs;
  for (fs::directory_iterator it(packs_base_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.front() == '.') continue;
    std::error_code type_ec;
    if (!it->is_directory(type_ec)) continue;
    dirs.push_back(name);
  }
  if (ec) return Failure("list packs", packs_base_dir, ec.message());
  std::sort(dirs.begin(), dirs.end());
  PackListing listing;
  for (const std::string& name : dirs) {
    std::string path = packs_base_dir + "/" + name;
    if (!IsValidPackRef(name)) {
      listing.problems.push_back(path + ": not a valid pack name (^[a-z0-9][a-z0-9_-]{0,63}$)");
      continue;
    }
    Problems problems;
    Pack pack = LoadPackCollecting(path, runtimes, &problems);
    if (problems.size() > 0) {
      for (std::string& line : problems.lines()) listing.problems.push_back(std::move(line));
      continue;
    }
    listing.packs.push_back(std::move(pack));
  }
  return listing;
}

Result<ActionRef> ParseActionRef(std::string_view action_ref) {
  size_t dot = action_ref.find('.');
  if (dot == std::string_view::npos) {
    return Failure("", "", "action ref " + Quote(action_ref) + " is not of the form pack.action");
  }
  ActionRef ref{std::string(action_ref.substr(0, dot)), std::string(action_ref.substr(dot + 1))};
  if (!IsValidPackRef(ref.pack)) {
    return Failure("", "",
                   "action ref " + Quote(action_ref) + ": pack " + Quote(ref.pack) +
                       " does not match ^[a-z0-9][a-z0-9_-]{0,63}$");
  }
  if (!IsValidActionName(ref.action)) {
    return Failure("", "",
                   "action ref " + Quote(action_ref) + ": action " + Quote(ref.action) +
                       " does not match ^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$");
  }
  return ref;
}

Result<ResolvedAction> ResolveAction(const std::string& packs_base_dir, std::string_view action_ref,
                                     const envs::RuntimeRegistry* runtimes) {
  Result<ActionRef> ref = ParseActionRef(action_ref);
  if (!ref.ok()) return ref.error();
  std::string pack_path = packs_base_dir + "/" + ref->pack;
  struct stat st {};
  if (::stat(pack_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error{ENOENT, "", "pack " + Quote(ref->pack) + " not found in " + packs_base_dir};
  }
  Problems problems;
  ResolvedAction resolved;
  std::optional<PackDir> dir = OpenPackDir(pack_path, &problems);
  if (dir) ParseManifest(*dir, &resolved.pack, &problems);
  if (problems.size() > 0) return FirstProblem(problems.lines());
  std::string yaml_path;
  for (const char* ext : {".yaml", ".yml"}) {
    std::string candidate = dir->actions_real + "/" + ref->action + ext;
    struct stat action_st {};
    if (::lstat(candidate.c_str(), &action_st) == 0) {
      if (!yaml_path.empty()) {
        return Failure("", "", candidate + ": defines the same action as " + yaml_path);
      }
      yaml_path = candidate;
    }
  }
  if (yaml_path.empty()) {
    return Error{ENOENT, "",
                 "action " + Quote(action_ref) + " not found (no " + dir->actions_real + "/" +
                     ref->action + ".yaml)"};
  }
  std::optional<Action> action =
      ParseAction(resolved.pack, *dir, yaml_path, ref->action, runtimes, &problems);
  if (!action) return FirstProblem(problems.lines());
  resolved.action = std::move(*action);
  return resolved;
}

Result<const envs::RuntimeDefinition*> ChooseRuntime(const Action& action,
                                                     const envs::RuntimeRegistry& runtimes) {
  if (!action.runner_type.empty()) {
    Result<const envs::RuntimeDefinition*> runtime = runtimes.Find(action.runner_type);
    if (!runtime.ok()) {
      return Failure("", action.source + ":" + std::to_string(action.runner_type_line),
                     "runner_type: " + runtime.error().message());
    }
    return runtime;
  }
  std::string ext = fs::path(action.entry_point).extension().string();
  Result<const envs::RuntimeDefinition*> runtime = runtimes.FindByExtension(ext);
  if (!runtime.ok()) {
    return Failure("", action.source + ":" + std::to_string(action.entry_point_line),
                   "runner_type: absent, and " + runtime.error().message());
  }
  return runtime;
}

Result<NetworkMode> EffectiveNetwork(const Action& action, std::string_view pack_ref,
                                     const std::vector<std::string>& host_network_packs) {
  bool granted = std::find(host_network_packs.begin(), host_network_packs.end(), pack_ref) !=
                 host_network_packs.end();
  if (granted) return action.network.value_or(NetworkMode::kHost);
  if (action.network == NetworkMode::kHost) {
    return Failure("", action.source + ":" + std::to_string(action.network_line),
                   "network: \"host\" is not granted to pack " + Quote(pack_ref) +
                       " (the operator lists such packs in sandbox.host_network_packs)");
  }
  return NetworkMode::kNone;
}

Result<json> ValidateParameters(const Action& action, const json& params) {
  auto fail = [&](const std::string& detail) { return Failure("", action.action_ref, detail); };
  if (!params.is_object()) {
    return fail("parameters must be a JSON object, got " + std::string(JsonTypeName(params)));
  }
  json out = json::object();
  for (const auto& [name, value] : params.items()) {
    auto spec = action.parameters.find(name);
    if (spec == action.parameters.end()) {
      std::string accepted;
      for (const auto& [known, unused] : action.parameters) {
        accepted += (accepted.empty() ? "" : ", ") + known;
      }
      return fail("unknown parameter " + Quote(name) +
                  " (accepted: " + (accepted.empty() ? "none" : accepted) + ")");
    }
    if (value.is_null()) continue;  // counts as absent
    json checked = value;
    if (std::optional<std::string> bad = CheckValue(spec->second, &checked)) {
      return fail("parameter " + Quote(name) + ": " + *bad);
    }
    out[name] = std::move(checked);
  }
  for (const auto& [name, spec] : action.parameters) {
    if (out.contains(name)) continue;
    if (spec.default_value) {
      out[name] = *spec.default_value;
    } else if (spec.required) {
      return fail("missing required parameter " + Quote(name));
    }
  }
  return out;
}

}  // namespace packvisor
