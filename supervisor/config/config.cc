// Loading and validating packvisor's TOML configuration (SPEC §3; decisions in docs/config.md).
#include "supervisor/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <exception>
#include <functional>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "envs/document_limits.h"
#include "envs/pack_disk.h"
#include "supervisor/config/broker_url.h"
#include "supervisor/config/config_text.h"

namespace packvisor {
namespace {

constexpr char kInvalid[] = "invalid configuration";
constexpr off_t kMaxConfigFileBytes = 1 << 20;

// Limits on values (see docs/config.md).
constexpr int64_t kMaxSeconds = 365LL * 24 * 3600;
constexpr int64_t kMaxKillGraceSeconds = 3600;
constexpr int64_t kMinCaptureBytes = 1024;
constexpr int64_t kMaxCaptureBytes = 1LL << 30;
constexpr int64_t kMaxMegabytes = 1LL << 30;
constexpr int64_t kMaxPids = 4194304;       // PID_MAX_LIMIT
constexpr int64_t kMaxNofile = 1048576;     // default fs.nr_open
constexpr int64_t kMaxCpuPercent = 100000;  // a thousand cores
constexpr int64_t kMaxConcurrent = 1024;
constexpr int64_t kMinPackUid = 1000;     // below: system accounts
constexpr int64_t kMaxId = 4294967294LL;  // (uid_t)-1 is "no id"
constexpr size_t kMaxSocketPath = 107;    // sizeof(sockaddr_un::sun_path) - 1
constexpr int64_t kMaxQueued = 1000000;
constexpr int64_t kMinBodyBytes = 1024;
constexpr int64_t kMaxBodyBytes = 1LL << 30;
constexpr int64_t kMaxConnections = 65536;
constexpr int64_t kMaxIoTimeoutSeconds = 3600;
constexpr int64_t kMaxDrainSeconds = 86400;
constexpr int64_t kMaxWarmSandboxes = 1024;
constexpr int64_t kMaxDeliveryLimit = 1000;
constexpr int64_t kMaxReconnectSeconds = 3600;
constexpr int64_t kMaxHeartbeatSeconds = 3600;
constexpr size_t kMaxWorkerName = 64;
constexpr char kGroupFile[] = "/etc/group";

using Lines = std::map<std::string, uint32_t>;

// ---- Text helpers -------------------------------------------------------------------------------

// Printable, one line: control characters and quotes escaped.
std::string Escape(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string Quote(std::string_view text) {
  constexpr size_t kMax = 80;
  if (text.size() > kMax) return "\"" + Escape(text.substr(0, kMax)) + "...\"";
  return "\"" + Escape(text) + "\"";
}

bool IsBareKey(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string KeyPart(std::string_view name) {
  // Quote() cuts a long name: a key in a message stays short.
  return IsBareKey(name) && name.size() <= 80 ? std::string(name) : Quote(name);
}

std::string Join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? KeyPart(name) : prefix + "." + KeyPart(name);
}

std::string FormatDouble(double value) {
  if (value != value) return "nan";
  if (value == std::numeric_limits<double>::infinity()) return "inf";
  if (value == -std::numeric_limits<double>::infinity()) return "-inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string text(buffer, ec == std::errc() ? end : buffer);
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

// What a value is, for "expected X, got Y".
std::string Describe(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return Quote(node.as_string()->get());
    case toml::node_type::integer:
      return std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point:
      return FormatDouble(node.as_floating_point()->get());
    case toml::node_type::boolean:
      return node.as_boolean()->get() ? "true" : "false";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Lexical normalization of an absolute path: no "." or ".." components, no repeated or trailing
// slash. ".." above the root stays at the root.
std::string NormalizePath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(std::move(part));
    }
    start = slash + 1;
  }
  if (parts.empty()) return "/";
  std::string out;
  for (const std::string& part : parts) out += "/" + part;
  return out;
}

// True if `path` is `dir` or lies beneath it (both normalized).
bool IsWithin(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

bool IsPackRef(std::string_view ref) {
  if (ref.empty() || ref.size() > 64) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(ref[0])) return false;
  return std::all_of(ref.begin() + 1, ref.end(),
                     [&](char c) { return lower_or_digit(c) || c == '_' || c == '-'; });
}

bool IsEnvName(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Why an environment variable name may not be configured, or empty if it may.
std::string ReservedEnvReason(std::string_view name) {
  if (name.rfind("PACKVISOR_", 0) == 0) {
    return "names starting with PACKVISOR_ are reserved for the sandbox's own variables";
  }
  for (const char* context : kContextVariableNames) {
    if (name == "ATTUNE_" + std::string(context)) {
      return "the sandbox sets it itself (the same value as PACKVISOR_" + std::string(context) +
             ")";
    }
  }
  if (name == "PATH" || name == "HOME" || name == "TMPDIR") {
    return "the sandbox sets " + std::string(name) + " itself (its host value names host paths)";
  }
  return {};
}

// ---- The loader ---------------------------------------------------------------------------------

class Loader;
using Reader = std::function<Result<void>(Loader&, const toml::node&, const std::string& key)>;
struct Field {
  std::string_view name;
  Reader read;
};

// Every key the file may hold, for "did you mean" hints.
const std::vector<std::string>& AllKeys();

class Loader {
 public:
  Loader(std::string file, std::string dir) : file_(std::move(file)), dir_(std::move(dir)) {
    config_.source = file_;
  }

  Result<Config> Load(const toml::table& root);

  Error Bad(uint32_t line, const std::string& key, const std::string& detail) const {
    return Failure(kInvalid, file_ + ":" + std::to_string(line) + ": " + key, detail);
  }
  Error Bad(const toml::node& node, const std::string& key, const std::string& detail) const {
    return Bad(node.source().begin.line, key, detail);
  }
  Error Expected(const toml::node& node, const std::string& key, const std::string& what) const {
    return Bad(node, key, "expected " + what + ", got " + Describe(node));
  }

  Result<void> ReadTable(const toml::table& table, const std::string& prefix,
                         const std::vector<Field>& fields);
  Result<void> ReadSection(const toml::node& node, const std::string& key,
                           const std::vector<Field>& fields) {
    const toml::table* table = node.as_table();
    if (!table) return Expected(node, key, "a table");
    return ReadTable(*table, key, fields);
  }

  Result<int64_t> Int(const toml::node& node, const std::string& key, int64_t min, int64_t max);
  template <typename T>
  Result<void> IntInto(const toml::node& node, const std::string& key, int64_t min, int64_t max,
                       T& out) {
    auto value = Int(node, key, min, max);
    if (!value) return value.error();
    out = static_cast<T>(*value);
    return Ok{};
  }
  Result<std::string> String(const toml::node& node, const std::string& key);
  Result<std::string> Path(const toml::node& node, const std::string& key, bool allow_relative);
  Result<bool> Bool(const toml::node& node, const std::string& key);
  // The elements of an array (which may be empty).
  Result<std::vector<const toml::node*>> Array(const toml::node& node, const std::string& key,
                                               const std::string& what);

  Config& config() { return config_; }

 private:
  Result<void> CheckCrossFields();
  // The line of `key` if the file set it, else 0.
  uint32_t LineOf(const std::string& key) const {
    auto it = lines_.find(key);
    return it == lines_.end() ? 0 : it->second;
  }
  // Reports a conflict between two keys at the line of whichever the file set (`a` first).
  Error Conflict(const std::string& a, const std::string& b, const std::string& detail) const {
    if (uint32_t line = LineOf(a)) return Bad(line, a, detail);
    return Bad(LineOf(b), b, detail);
  }

  std::string file_;
  std::string dir_;
  Config config_;
  Lines lines_;
};

Result<int64_t> Loader::Int(const toml::node& node, const std::string& key, int64_t min,
                            int64_t max) {
  std::string what = min >= 1   ? "a positive integer"
                     : min == 0 ? "a non-negative integer"
                                : "an integer";
  const toml::value<int64_t>* value = node.as_integer();
  if (!value) return Expected(node, key, what);
  int64_t x = value->get();
  if (x < min && (min == 0 || min == 1)) return Expected(node, key, what);
  if (x < min || x > max) {
    return Bad(node, key,
               "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                   ", got " + std::to_string(x));
  }
  return x;
}

Result<std::string> Loader::String(const toml::node& node, const std::string& key) {
  const toml::value<std::string>* value = node.as_string();
  if (!value) return Expected(node, key, "a string");
  if (value->get().find('\0') != std::string::npos) {
    return Bad(node, key, "contains a NUL character");
  }
  return value->get();
}

Result<std::string> Loader::Path(const toml::node& node, const std::string& key,
                                 bool allow_relative) {
  std::string what = allow_relative ? "a path" : "an absolute path";
  if (!node.is_string()) return Expected(node, key, what);
  auto text = String(node, key);
  if (!text) return text.error();
  std::string path = *text;
  if (path.empty()) return Expected(node, key, what);
  if (path[0] == '~') {
    return Bad(node, key,
               "'~' is not expanded; write an absolute path" +
                   std::string(allow_relative ? " or one relative to the file" : ""));
  }
  if (path[0] != '/') {
    if (!allow_relative) return Expected(node, key, what);
    path = dir_ + "/" + path;
  }
  return NormalizePath(path);
}

Result<bool> Loader::Bool(const toml::node& node, const std::string& key) {
  const toml::value<bool>* value = node.as_boolean();
  if (!value) return Expected(node, key, "true or false");
  return value->get();
}

Result<std::vector<const toml::node*>> Loader::Array(const toml::node& node, const std::string& key,
                                                     const std::string& what) {
  const toml::array* array = node.as_array();
  if (!array) return Expected(node, key, what);
  std::vector<const toml::node*> out;
  for (const toml::node& element : *array) out.push_back(&element);
  return out;
}

std::string Suggestion(const std::string& prefix, std::string_view name,
                       const std::vector<Field>& fields) {
  std::string best;
  size_t best_distance = 3;
  for (const Field& field : fields) {
    size_t distance = EditDistance(name, field.name);
    if (distance < best_distance) {
      best_distance = distance;
      best = Join(prefix, field.name);
    }
  }
  if (!best.empty()) return " (did you mean " + best + "?)";
  for (const std::string& key : AllKeys()) {
    size_t dot = key.rfind('.');
    std::string_view last =
        dot == std::string::npos ? std::string_view(key) : std::string_view(key).substr(dot + 1);
    if (last == name) return " (did you mean " + key + "?)";
  }
  return {};
}

Result<void> Loader::ReadTable(const toml::table& table, const std::string& prefix,
                               const std::vector<Field>& fields) {
  // File order, so that the first problem reported is the first one in the file.
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (const auto& [name, node] : table) entries.emplace_back(&name, &node);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.second->source().begin.line < b.second->source().begin.line;
  });
  for (const auto& [name, node] : entries) {
    std::string key = Join(prefix, name->str());
    // Not captured as a structured binding: clang 14 (the fuzz build) refuses that in a lambda.
    const std::string_view name_text = name->str();
    auto field = std::find_if(fields.begin(), fields.end(),
                              [&](const Field& f) { return f.name == name_text; });
    if (field == fields.end()) {
      uint32_t line = name->source().begin.line;
      if (line == 0) line = node->source().begin.line;
      return Bad(line, key, "unknown key" + Suggestion(prefix, name->str(), fields));
    }
    lines_[key] = node->source().begin.line;
    PV_TRY(field->read(*this, *node, key));
  }
  return Ok{};
}

// ---- The schema ---------------------------------------------------------------------------------

Reader PathField(std::string Config::*member) {
  return [member](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
    auto path = l.Path(n, key, true);
    if (!path) return path.error();
    l.config().*member = *path;
    return Ok{};
  };
}

template <typename Section, typename T>
Reader IntField(Section Config::*section, T Section::*member, int64_t min, int64_t max) {
  return [=](Loader& l, const toml::node& n, const std::string& key) {
    return l.IntInto(n, key, min, max, l.config().*section.*member);
  };
}

const std::vector<Field>& ExecutionFields() {
  static const std::vector<Field> fields = {
      {"default_timeout_seconds",
       IntField(&Config::execution, &ExecutionConfig::default_timeout_seconds, 1, kMaxSeconds)},
      {"kill_grace_seconds",
       IntField(&Config::execution, &ExecutionConfig::kill_grace_seconds, 0, kMaxKillGraceSeconds)},
      {"max_stdout_bytes", IntField(&Config::execution, &ExecutionConfig::max_stdout_bytes,
                                    kMinCaptureBytes, kMaxCaptureBytes)},
      {"max_stderr_bytes", IntField(&Config::execution, &ExecutionConfig::max_stderr_bytes,
                                    kMinCaptureBytes, kMaxCaptureBytes)},
  };
  return fields;
}

Result<void> ReadUidRange(Loader& l, const toml::node& n, const std::string& key) {
  constexpr char kWhat[] = "an array [first, last] of host ids";
  const toml::array* array = n.as_array();
  if (!array || array->size() != 2) return l.Expected(n, key, kWhat);
  int64_t ids[2];
  for (size_t i = 0; i < 2; ++i) {
    const toml::node& element = *array->get(i);
    std::string element_key = key + "[" + std::to_string(i) + "]";
    if (!element.is_integer()) return l.Expected(element, element_key, "an integer");
    int64_t id = element.as_integer()->get();
    if (id == 0) {
      return l.Bad(element, element_key, "0 would make sandboxed code root on the host");
    }
    if (id < kMinPackUid || id > kMaxId) {
      return l.Bad(element, element_key,
                   "expected an id from " + std::to_string(kMinPackUid) + " to " +
                       std::to_string(kMaxId) + " (ids below " + std::to_string(kMinPackUid) +
                       " belong to system accounts), got " + std::to_string(id));
    }
    ids[i] = id;
  }
  if (ids[0] > ids[1]) {
    return l.Bad(n, key,
                 "first id " + std::to_string(ids[0]) + " is greater than last id " +
                     std::to_string(ids[1]) + " (the range needs at least one id)");
  }
  for (int64_t overflow : {65534, 65535}) {
    if (ids[0] <= overflow && overflow <= ids[1]) {
      return l.Bad(
          n, key,
          "must not contain " + std::to_string(overflow) + " (nobody / the kernel's overflow id)");
    }
  }
  l.config().sandbox.uid_range_first = static_cast<uid_t>(ids[0]);
  l.config().sandbox.uid_range_last = static_cast<uid_t>(ids[1]);
  return Ok{};
}

// Reads an array of strings, checking each with `check` (empty string = fine, else the reason),
// dropping duplicates.
Result<void> ReadStringList(Loader& l, const toml::node& n, const std::string& key,
                            const std::string& what,
                            const std::function<std::string(const std::string&)>& check,
                            std::vector<std::string>& out) {
  auto elements = l.Array(n, key, "an array of " + what);
  if (!elements) return elements.error();
  out.clear();
  for (size_t i = 0; i < elements->size(); ++i) {
    const toml::node& element = *(*elements)[i];
    std::string element_key = key + "[" + std::to_string(i) + "]";
    if (!element.is_string()) return l.Expected(element, element_key, what);
    auto text = l.String(element, element_key);
    if (!text) return text.error();
    if (std::string reason = check(*text); !reason.empty()) {
      return l.Bad(element, element_key, reason);
    }
    if (std::find(out.begin(), out.end(), *text) == out.end()) out.push_back(*text);
  }
  return Ok{};
}

Result<void> ReadPackRefs(Loader& l, const toml::node& n, const std::string& key,
                          std::vector<std::string>& out) {
  return ReadStringList(
      l, n, key, "pack refs",
      [](const std::string& ref) {
        return IsPackRef(ref)
                   ? std::string()
                   : "expected a pack ref (^[a-z0-9][a-z0-9_-]{0,63}$), got " + Quote(ref);
      },
      out);
}

Result<void> ReadHostNetworkPacks(Loader& l, const toml::node& n, const std::string& key) {
  return ReadPackRefs(l, n, key, l.config().sandbox.host_network_packs);
}

std::string CheckEnvName(const std::string& name) {
  if (!IsEnvName(name)) {
    return "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got " + Quote(name);
  }
  if (std::string reason = ReservedEnvReason(name); !reason.empty()) {
    return Quote(name) + " may not be configured: " + reason;
  }
  return {};
}

Result<void> ReadPassthroughEnv(Loader& l, const toml::node& n, const std::string& key) {
  return ReadStringList(l, n, key, "environment variable names", CheckEnvName,
                        l.config().sandbox.passthrough_env);
}

Result<void> ReadExtraRoBinds(Loader& l, const toml::node& n, const std::string& key) {
  auto elements = l.Array(n, key, "an array of absolute paths");
  if (!elements) return elements.error();
  std::vector<std::string>& out = l.config().sandbox.extra_ro_binds;
  out.clear();
  for (size_t i = 0; i < elements->size(); ++i) {
    const toml::node& element = *(*elements)[i];
    std::string element_key = key + "[" + std::to_string(i) + "]";
    auto path = l.Path(element, element_key, false);
    if (!path) return path.error();
    static constexpr const char* kReserved[] = {"/pack", "/env", "/tmp", "/proc", "/dev"};
    if (*path == "/") return l.Bad(element, element_key, "binding / would undo the sandbox");
    for (const char* reserved : kReserved) {
      if (IsWithin(*path, reserved)) {
        return l.Bad(element, element_key,
                     Quote(*path) + " overlaps the sandbox's own mount point " + reserved);
      }
    }
    if (std::find(out.begin(), out.end(), *path) == out.end()) out.push_back(*path);
  }
  return Ok{};
}

Result<void> ReadSetEnv(Loader& l, const toml::node& n, const std::string& key) {
  const toml::table* table = n.as_table();
  if (!table) return l.Expected(n, key, "a table of NAME = \"value\"");
  std::map<std::string, std::string>& out = l.config().sandbox.set_env;
  out.clear();
  for (const auto& [name, value] : *table) {
    std::string entry_key = Join(key, name.str());
    uint32_t line = name.source().begin.line ? name.source().begin.line : value.source().begin.line;
    std::string reason = CheckEnvName(std::string(name.str()));
    if (reason.empty() && name.str().rfind("LD_", 0) == 0) {
      reason = Quote(name.str()) +
               " may not be configured: LD_* variables would change how every program in the "
               "sandbox is loaded";
    }
    if (!reason.empty()) return l.Bad(line, entry_key, reason);
    auto text = l.String(value, entry_key);  // refuses a NUL
    if (!text) return text.error();
    out[std::string(name.str())] = *text;
  }
  return Ok{};
}

const std::vector<Field>& SandboxFields() {
  static const std::vector<Field> fields = {
      {"uid_range", ReadUidRange},
      {"memory_max_mb",
       IntField(&Config::sandbox, &SandboxConfig::memory_max_mb, 1, kMaxMegabytes)},
      {"pids_max", IntField(&Config::sandbox, &SandboxConfig::pids_max, 2, kMaxPids)},
      {"cpu_max_percent",
       IntField(&Config::sandbox, &SandboxConfig::cpu_max_percent, 1, kMaxCpuPercent)},
      {"memory_ceiling_mb",
       IntField(&Config::sandbox, &SandboxConfig::memory_ceiling_mb, 1, kMaxMegabytes)},
      {"pids_ceiling", IntField(&Config::sandbox, &SandboxConfig::pids_ceiling, 2, kMaxPids)},
      {"cpu_ceiling_percent",
       IntField(&Config::sandbox, &SandboxConfig::cpu_ceiling_percent, 1, kMaxCpuPercent)},
      {"tmp_size_mb", IntField(&Config::sandbox, &SandboxConfig::tmp_size_mb, 1, kMaxMegabytes)},
      {"nofile", IntField(&Config::sandbox, &SandboxConfig::nofile, 3, kMaxNofile)},
      {"fsize_mb", IntField(&Config::sandbox, &SandboxConfig::fsize_mb, 1, kMaxMegabytes)},
      {"host_network_packs", ReadHostNetworkPacks},
      {"install_network",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         auto value = l.Bool(n, key);
         if (!value) return value.error();
         l.config().sandbox.install_network = *value;
         return Ok{};
       }},
      {"extra_ro_binds", ReadExtraRoBinds},
      {"passthrough_env", ReadPassthroughEnv},
      {"set_env", ReadSetEnv},
      {"allow_rlimits_only",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         auto value = l.Bool(n, key);
         if (!value) return value.error();
         l.config().sandbox.allow_rlimits_only = *value;
         return Ok{};
       }},
      {"cgroup_parent",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         auto value = l.String(n, key);
         if (!value) return value.error();
         bool ok = !value->empty() && value->size() <= 64 && *value != "." && *value != "..";
         for (char c : *value) {
           ok = ok &&
                (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
         }
         if (!ok) return l.Bad(n, key, "expected one cgroup directory name ([A-Za-z0-9._-])");
         l.config().sandbox.cgroup_parent = *value;
         return Ok{};
       }},
      {"seccomp_mode",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         auto value = l.String(n, key);
         if (!value) return value.error();
         if (*value == "deny") {
           l.config().sandbox.seccomp_mode = sandbox::SeccompMode::kDeny;
         } else if (*value == "allow") {
           l.config().sandbox.seccomp_mode = sandbox::SeccompMode::kAllow;
         } else {
           return l.Expected(n, key, "\"deny\" or \"allow\"");
         }
         return Ok{};
       }},
  };
  return fields;
}

Result<void> ReadInstallEnv(Loader& l, const toml::node& n, const std::string& key) {
  const toml::table* table = n.as_table();
  if (!table) return l.Expected(n, key, "a table of NAME = \"value\"");
  std::map<std::string, std::string>& out = l.config().envs.install_env;
  out.clear();
  for (const auto& [name, value] : *table) {
    std::string entry_key = Join(key, name.str());
    if (std::string reason = CheckEnvName(std::string(name.str())); !reason.empty()) {
      return l.Bad(name.source().begin.line ? name.source().begin.line : value.source().begin.line,
                   entry_key, reason);
    }
    auto text = l.String(value, entry_key);
    if (!text) return text.error();
    out[std::string(name.str())] = *text;
  }
  return Ok{};
}

const std::vector<Field>& EnvsFields() {
  static const std::vector<Field> fields = {
      {"max_size_mb", IntField(&Config::envs, &EnvsConfig::max_size_mb, 1, kMaxMegabytes)},
      {"pack_disk_mb", IntField(&Config::envs, &EnvsConfig::pack_disk_mb, 0, kMaxMegabytes)},
      {"install_env", ReadInstallEnv},
      {"build_timeout_seconds",
       IntField(&Config::envs, &EnvsConfig::build_timeout_seconds, 1, kMaxSeconds)},
  };
  return fields;
}

template <typename Id>
Result<void> ReadIds(Loader& l, const toml::node& n, const std::string& key, std::vector<Id>& out) {
  auto elements = l.Array(n, key, "an array of numeric ids");
  if (!elements) return elements.error();
  out.clear();
  for (size_t i = 0; i < elements->size(); ++i) {
    std::string element_key = key + "[" + std::to_string(i) + "]";
    auto id = l.Int(*(*elements)[i], element_key, 0, kMaxId);
    if (!id) return id.error();
    if (std::find(out.begin(), out.end(), static_cast<Id>(*id)) == out.end()) {
      out.push_back(static_cast<Id>(*id));
    }
  }
  return Ok{};
}

Result<void> ReadSocketGroup(Loader& l, const toml::node& n, const std::string& key) {
  constexpr char kWhat[] = "a group name or a numeric gid";
  std::string text;
  if (n.is_integer()) {
    auto id = l.Int(n, key, 0, kMaxId);
    if (!id) return id.error();
    text = std::to_string(*id);
  } else if (n.is_string()) {
    auto name = l.String(n, key);
    if (!name) return name.error();
    text = *name;
  } else {
    return l.Expected(n, key, kWhat);
  }
  if (text.empty()) return l.Expected(n, key, kWhat);
  auto gid = LookUpGroup(text, kGroupFile);
  if (!gid) return l.Bad(n, key, gid.error().message());
  l.config().server.socket_group = *gid;
  l.config().server.socket_group_name = text;
  return Ok{};
}

const std::vector<Field>& ServerFields() {
  static const std::vector<Field> fields = {
      {"socket",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         auto path = l.Path(n, key, true);
         if (!path) return path.error();
         if (path->size() > kMaxSocketPath) {
           return l.Bad(n, key,
                        "socket path " + Quote(*path) + " is longer than " +
                            std::to_string(kMaxSocketPath) + " bytes (the limit of sun_path)");
         }
         if (*path == "/") return l.Expected(n, key, "a socket file path");
         l.config().server.socket = *path;
         return Ok{};
       }},
      {"socket_group", ReadSocketGroup},
      {"allowed_uids",
       [](Loader& l, const toml::node& n, const std::string& key) {
         return ReadIds(l, n, key, l.config().server.allowed_uids);
       }},
      {"allowed_gids",
       [](Loader& l, const toml::node& n, const std::string& key) {
         return ReadIds(l, n, key, l.config().server.allowed_gids);
       }},
      {"max_concurrent",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         // 0 stands for the default, the number of online cores (so the example file can
         // show the default as a value).
         auto value = l.Int(n, key, 0, kMaxConcurrent);
         if (!value) return value.error();
         l.config().server.max_concurrent =
             *value == 0 ? OnlineCores() : static_cast<uint64_t>(*value);
         return Ok{};
       }},
      {"max_queued", IntField(&Config::server, &ServerConfig::max_queued, 0, kMaxQueued)},
      {"max_body_bytes",
       IntField(&Config::server, &ServerConfig::max_body_bytes, kMinBodyBytes, kMaxBodyBytes)},
      {"max_connections",
       IntField(&Config::server, &ServerConfig::max_connections, 1, kMaxConnections)},
      {"read_timeout_seconds",
       IntField(&Config::server, &ServerConfig::read_timeout_seconds, 1, kMaxIoTimeoutSeconds)},
      {"write_timeout_seconds",
       IntField(&Config::server, &ServerConfig::write_timeout_seconds, 1, kMaxIoTimeoutSeconds)},
      {"drain_seconds",
       IntField(&Config::server, &ServerConfig::drain_seconds, 0, kMaxDrainSeconds)},
      {"result_ttl_seconds",
       IntField(&Config::server, &ServerConfig::result_ttl_seconds, 1, kMaxSeconds)},
      {"warm_sandboxes",
       IntField(&Config::server, &ServerConfig::warm_sandboxes, 0, kMaxWarmSandboxes)},
      {"warm_packs",
       [](Loader& l, const toml::node& n, const std::string& key) {
         return ReadPackRefs(l, n, key, l.config().server.warm_packs);
       }},
  };
  return fields;
}

// A path that may be "" (unset).
Reader OptionalPathField(std::string WorkerConfig::*member) {
  return [member](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
    if (n.is_string() && n.as_string()->get().empty()) {
      l.config().worker.*member = "";
      return Ok{};
    }
    auto path = l.Path(n, key, true);
    if (!path) return path.error();
    l.config().worker.*member = *path;
    return Ok{};
  };
}

Reader WorkerPathField(std::string WorkerConfig::*member) {
  return [member](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
    auto path = l.Path(n, key, true);
    if (!path) return path.error();
    if (*path == "/") return l.Expected(n, key, "a file path");
    l.config().worker.*member = *path;
    return Ok{};
  };
}

bool IsWorkerName(std::string_view name) {
  if (name.empty() || name.size() > kMaxWorkerName) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

const std::vector<Field>& WorkerFields() {
  static const std::vector<Field> fields = {
      {"broker_url",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         auto text = l.String(n, key);
         if (!text) return text.error();
         // The detail never holds the password, and neither does this message: the URL itself
         // is not quoted.
         auto url = ParseBrokerUrl(*text);
         if (!url) return l.Bad(n, key, url.error().message());
         l.config().worker.broker_url = *text;
         return Ok{};
       }},
      {"ca_file", OptionalPathField(&WorkerConfig::ca_file)},
      {"cert_file", OptionalPathField(&WorkerConfig::cert_file)},
      {"key_file", WorkerPathField(&WorkerConfig::key_file)},
      {"public_key_file", WorkerPathField(&WorkerConfig::public_key_file)},
      {"runtimes",
       [](Loader& l, const toml::node& n, const std::string& key) {
         return ReadStringList(
             l, n, key, "runtime names",
             [](const std::string& name) {
               return IsPackRef(name)
                          ? std::string()
                          : "expected a runtime name (^[a-z0-9][a-z0-9_-]{0,63}$), got " +
                                Quote(name);
             },
             l.config().worker.runtimes);
       }},
      {"max_concurrent",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         // 0 stands for the default, the number of online cores (as server.max_concurrent).
         auto value = l.Int(n, key, 0, kMaxConcurrent);
         if (!value) return value.error();
         l.config().worker.max_concurrent =
             *value == 0 ? OnlineCores() : static_cast<uint64_t>(*value);
         return Ok{};
       }},
      {"delivery_limit",
       IntField(&Config::worker, &WorkerConfig::delivery_limit, 1, kMaxDeliveryLimit)},
      {"cancel_memory_seconds",
       IntField(&Config::worker, &WorkerConfig::cancel_memory_seconds, 1, kMaxSeconds)},
      {"drain_seconds",
       IntField(&Config::worker, &WorkerConfig::drain_seconds, 0, kMaxDrainSeconds)},
      {"reconnect_max_seconds",
       IntField(&Config::worker, &WorkerConfig::reconnect_max_seconds, 1, kMaxReconnectSeconds)},
      {"heartbeat_seconds",
       IntField(&Config::worker, &WorkerConfig::heartbeat_seconds, 0, kMaxHeartbeatSeconds)},
      {"name",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         auto text = l.String(n, key);
         if (!text) return text.error();
         if (text->empty()) {  // the default, so the example file can show it as a value
           l.config().worker.name = HostName();
           return Ok{};
         }
         if (!IsWorkerName(*text)) {
           return l.Bad(n, key,
                        "expected 1 to " + std::to_string(kMaxWorkerName) +
                            " of [A-Za-z0-9._-], got " + Quote(*text));
         }
         l.config().worker.name = *text;
         return Ok{};
       }},
      {"broker_password_file", OptionalPathField(&WorkerConfig::broker_password_file)},
  };
  return fields;
}

const std::vector<Field>& TopFields() {
  static const std::vector<Field> fields = {
      {"packs_base_dir", PathField(&Config::packs_base_dir)},
      {"runtime_envs_dir", PathField(&Config::runtime_envs_dir)},
      {"state_dir", PathField(&Config::state_dir)},
      {"runtimes_dir",
       [](Loader& l, const toml::node& n, const std::string& key) -> Result<void> {
         auto path = l.Path(n, key, true);
         if (!path) return path.error();
         l.config().runtimes_dir = *path;
         return Ok{};
       }},
      {"execution",
       [](Loader& l, const toml::node& n, const std::string& key) {
         return l.ReadSection(n, key, ExecutionFields());
       }},
      {"sandbox", [](Loader& l, const toml::node& n,
                     const std::string& key) { return l.ReadSection(n, key, SandboxFields()); }},
      {"envs", [](Loader& l, const toml::node& n,
                  const std::string& key) { return l.ReadSection(n, key, EnvsFields()); }},
      {"server", [](Loader& l, const toml::node& n,
                    const std::string& key) { return l.ReadSection(n, key, ServerFields()); }},
      {"worker", [](Loader& l, const toml::node& n,
                    const std::string& key) { return l.ReadSection(n, key, WorkerFields()); }},
  };
  return fields;
}

const std::vector<std::string>& AllKeys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    for (const Field& f : TopFields()) out.emplace_back(f.name);
    const std::pair<const char*, const std::vector<Field>*> sections[] = {
        {"execution", &ExecutionFields()},
        {"sandbox", &SandboxFields()},
        {"envs", &EnvsFields()},
        {"server", &ServerFields()},
        {"worker", &WorkerFields()}};
    for (const auto& [section, fields] : sections) {
      for (const Field& f : *fields)
        out.push_back(std::string(section) + "." + std::string(f.name));
    }
    return out;
  }();
  return keys;
}

Result<void> Loader::CheckCrossFields() {
  const Config& c = config_;
  auto nested = [](const std::string& a, const std::string& b) {
    return IsWithin(a, b) || IsWithin(b, a);
  };
  if (nested(c.runtime_envs_dir, c.packs_base_dir)) {
    return Conflict("runtime_envs_dir", "packs_base_dir",
                    "runtime_envs_dir " + Quote(c.runtime_envs_dir) + " and packs_base_dir " +
                        Quote(c.packs_base_dir) +
                        " must not be the same directory or contain one another (environments "
                        "never live inside packs)");
  }
  if (IsWithin(c.state_dir, c.packs_base_dir)) {
    return Conflict("state_dir", "packs_base_dir",
                    "state_dir " + Quote(c.state_dir) + " must not be inside packs_base_dir " +
                        Quote(c.packs_base_dir) + " (the supervisor only reads packs)");
  }
  if (IsWithin(c.state_dir, c.runtime_envs_dir)) {
    return Conflict("state_dir", "runtime_envs_dir",
                    "state_dir " + Quote(c.state_dir) + " must not be inside runtime_envs_dir " +
                        Quote(c.runtime_envs_dir));
  }
  for (size_t i = 0; i < c.sandbox.extra_ro_binds.size(); ++i) {
    const std::string& bind = c.sandbox.extra_ro_binds[i];
    const std::pair<const char*, const std::string*> dirs[] = {
        {"packs_base_dir", &c.packs_base_dir},
        {"runtime_envs_dir", &c.runtime_envs_dir},
        {"state_dir", &c.state_dir}};
    for (const auto& [name, dir] : dirs) {
      if (nested(bind, *dir)) {
        return Conflict("sandbox.extra_ro_binds", name,
                        Quote(bind) + " overlaps " + name + " " + Quote(*dir) +
                            " (every action would see other packs' files)");
      }
    }
  }
  for (const std::string& name : c.sandbox.passthrough_env) {
    if (c.sandbox.set_env.count(name)) {
      return Conflict("sandbox.set_env", "sandbox.passthrough_env",
                      Quote(name) + " is also in sandbox.passthrough_env: give it one source");
    }
  }
  if (c.envs.pack_disk_mb != 0 && (c.envs.pack_disk_mb << 20) < envs::kMinPackDiskBytes) {
    return Bad(LineOf("envs.pack_disk_mb"), "envs.pack_disk_mb",
               std::to_string(c.envs.pack_disk_mb) + " is below the smallest disk (" +
                   std::to_string(envs::kMinPackDiskBytes >> 20) + " MiB), or 0 for none");
  }
  SandboxConfig& limits = config_.sandbox;
  const std::tuple<uint64_t*, uint64_t, const char*, const char*> ceilings[] = {
      {&limits.memory_ceiling_mb, limits.memory_max_mb, "sandbox.memory_ceiling_mb",
       "sandbox.memory_max_mb"},
      {&limits.pids_ceiling, limits.pids_max, "sandbox.pids_ceiling", "sandbox.pids_max"},
      {&limits.cpu_ceiling_percent, limits.cpu_max_percent, "sandbox.cpu_ceiling_percent",
       "sandbox.cpu_max_percent"}};
  for (const auto& [ceiling, default_value, ceiling_key, default_key] : ceilings) {
    if (LineOf(ceiling_key) == 0) *ceiling = default_value;  // not in the file: follows its default
    if (*ceiling < default_value) {
      return Conflict(ceiling_key, default_key,
                      std::string(ceiling_key) + " " + std::to_string(*ceiling) +
                          " is below the default " + default_key + " " +
                          std::to_string(default_value) +
                          " (the ceiling bounds what runtimes "
                          "and actions may ask for)");
    }
  }
  const SandboxConfig& s = c.sandbox;
  for (uid_t uid : c.server.allowed_uids) {
    if (uid >= s.uid_range_first && uid <= s.uid_range_last) {
      return Conflict("server.allowed_uids", "sandbox.uid_range",
                      "uid " + std::to_string(uid) +
                          " is inside sandbox.uid_range; sandboxed "
                          "code would be allowed to use the daemon");
    }
  }
  for (gid_t gid : c.server.allowed_gids) {
    if (gid >= s.uid_range_first && gid <= s.uid_range_last) {
      return Conflict("server.allowed_gids", "sandbox.uid_range",
                      "gid " + std::to_string(gid) +
                          " is inside sandbox.uid_range (also used "
                          "for gids); sandboxed code would be allowed to use the daemon");
    }
  }
  return Ok{};
}

Result<Config> Loader::Load(const toml::table& root) {
  PV_TRY(ReadTable(root, "", TopFields()));
  PV_TRY(CheckCrossFields());
  return config_;
}

// ---- Files --------------------------------------------------------------------------------------

Result<std::string> AbsolutePath(const std::string& path) {
  if (path.empty()) return Failure("read configuration", "", "the path is empty");
  if (path[0] == '/') return NormalizePath(path);
  char* cwd = getcwd(nullptr, 0);
  if (!cwd) return ErrnoError("getcwd");
  std::string dir = cwd;
  std::free(cwd);
  return NormalizePath(dir + "/" + path);
}

Result<std::string> ReadSmallFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return ErrnoError("read configuration", path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    Error error = ErrnoError("read configuration", path);
    close(fd);
    return error;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return Failure("read configuration", path, "not a regular file");
  }
  if (st.st_size > kMaxConfigFileBytes) {
    close(fd);
    return Failure("read configuration", path, "larger than 1 MiB");
  }
  std::string content;
  char buffer[8192];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      Error error = ErrnoError("read configuration", path);
      close(fd);
      return error;
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
    if (content.size() > static_cast<size_t>(kMaxConfigFileBytes)) {
      close(fd);
      return Failure("read configuration", path, "larger than 1 MiB");
    }
  }
  close(fd);
  return content;
}

// A library's message on one line: line breaks and tabs become spaces, other control characters
// '?'.
std::string OneLine(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      out += ' ';
    } else {
      out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

uint64_t OnlineCores() {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores >= 1 ? static_cast<uint64_t>(cores) : 1;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "packvisor-worker";
  std::string text = name;
  // A host name that is not a valid worker.name (it would name the worker in events) is cut at
  // the first character that does not fit.
  size_t end = 0;
  while (end < text.size() && end < kMaxWorkerName &&
         (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '.' ||
          text[end] == '_' || text[end] == '-')) {
    ++end;
  }
  return end == 0 ? "packvisor-worker" : text.substr(0, end);
}

Result<gid_t> LookUpGroup(std::string_view group, const std::string& group_file) {
  if (!group.empty() &&
      std::all_of(group.begin(), group.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    uint64_t id = 0;
    auto [end, ec] = std::from_chars(group.data(), group.data() + group.size(), id);
    if (ec != std::errc() || end != group.data() + group.size() ||
        id > static_cast<uint64_t>(kMaxId)) {
      return Failure("", "", "gid " + std::string(group) + " is out of range");
    }
    return static_cast<gid_t>(id);
  }
  auto content = ReadSmallFile(group_file);
  if (!content) return content.error();
  size_t start = 0;
  while (start < content->size()) {
    size_t end = content->find('\n', start);
    if (end == std::string::npos) end = content->size();
    std::string_view line(content->data() + start, end - start);
    start = end + 1;
    // name:password:gid:members
    size_t first = line.find(':');
    if (first == std::string_view::npos || line.substr(0, first) != group) continue;
    size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    size_t third = line.find(':', second + 1);
    std::string_view id_text = line.substr(
        second + 1, third == std::string_view::npos ? std::string_view::npos : third - second - 1);
    uint64_t id = 0;
    auto [id_end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    if (ec != std::errc() || id_end != id_text.data() + id_text.size() || id_text.empty() ||
        id > static_cast<uint64_t>(kMaxId)) {
      return Failure("", "", "group " + Quote(group) + " has a bad gid in " + group_file);
    }
    return static_cast<gid_t>(id);
  }
  return Failure("", "", "no group " + Quote(group) + " in " + group_file);
}

const std::vector<std::string>& ConfigKeyNames() {
  // AllKeys also holds the section names ("sandbox"), which are tables, not keys.
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    for (const std::string& key : AllKeys()) {
      bool section = std::any_of(AllKeys().begin(), AllKeys().end(),
                                 [&](const std::string& k) { return k.rfind(key + ".", 0) == 0; });
      if (!section) out.push_back(key);
    }
    return out;
  }();
  return keys;
}

Result<Config> ParseConfigText(std::string_view text, const std::string& source) {
  std::string dir = source.substr(0, source.rfind('/'));
  if (dir.empty()) dir = "/";
  if (text.size() > static_cast<size_t>(kMaxConfigFileBytes)) {
    return Failure(kInvalid, source, "larger than 1 MiB");
  }
  // toml++ frees nested tables recursively: a deep document is refused before it is parsed.
  if (TomlNestsDeeperThan(text, kMaxTomlDepth)) {
    return Failure(kInvalid, source,
                   "tables and arrays nested deeper than " + std::to_string(kMaxTomlDepth) +
                       " levels (refused before parsing)");
  }
  if (int line = TomlUnsafeCharacterLine(text)) {
    return Failure(kInvalid, source + ":" + std::to_string(line),
                   "a control or non-ASCII character outside a comment (write the latter as a "
                   "\\uXXXX escape in a "
                   "\"basic string\"; refused before parsing: the TOML library mishandles some)");
  }
  try {
    toml::table root = toml::parse(text, source);
    return Loader(source, dir).Load(root);
  } catch (const toml::parse_error& e) {
    uint32_t line = e.source().begin.line;
    return Failure(kInvalid, source + ":" + std::to_string(line ? line : 1),
                   "TOML syntax error: " + OneLine(e.description()));
  } catch (const std::exception& e) {
    return Failure(kInvalid, source, OneLine(e.what()));
  }
}

Result<Config> LoadConfigFile(const std::string& path) {
  auto absolute = AbsolutePath(path);
  if (!absolute) return absolute.error();
  auto content = ReadSmallFile(*absolute);
  if (!content) return content.error();
  return ParseConfigText(*content, *absolute);
}

Result<Config> LoadConfigFrom(const std::optional<std::string>& explicit_path,
                              const std::optional<std::string>& env_path,
                              const std::string& system_path) {
  if (explicit_path) return LoadConfigFile(*explicit_path);
  if (env_path && !env_path->empty()) return LoadConfigFile(*env_path);
  struct stat st {};
  if (lstat(system_path.c_str(), &st) == 0) return LoadConfigFile(system_path);
  if (errno != ENOENT && errno != ENOTDIR) return ErrnoError("read configuration", system_path);
  Config config;
  config.source = kBuiltinConfigSource;
  return config;
}

Result<Config> LoadConfig(const std::optional<std::string>& explicit_path) {
  const char* env = std::getenv("PACKVISOR_CONFIG");
  return LoadConfigFrom(explicit_path, env ? std::optional<std::string>(env) : std::nullopt,
                        kSystemConfigPath);
}

}  // namespace packvisor
