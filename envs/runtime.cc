#include "envs/runtime.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>
#include <set>

#include "envs/document_limits.h"
#include "envs/names.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor::envs {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxDefinitionBytes = 1 << 20;

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Reads a regular file of at most `limit` bytes.
Result<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return ErrnoError("open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("stat", path);
  if (!S_ISREG(st.st_mode)) return Failure("read", path, "not a regular file");
  if (static_cast<uint64_t>(st.st_size) > limit) {
    return Failure("read", path, "larger than " + std::to_string(limit) + " bytes");
  }
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", path);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > limit) {
      return Failure("read", path, "larger than " + std::to_string(limit) + " bytes");
    }
  }
  return text;
}

// `text` on one line: control characters (a quoted key or value may hold any) become '?'.
std::string OneLine(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// Builds errors of the form "file:line: key: detail", on one line whatever the key and the detail
// quote.
class Context {
 public:
  explicit Context(const std::string& source) : source_(source) {}

  Error At(const toml::node& node, const std::string& key, const std::string& detail) const {
    return AtLine(node.source().begin.line, key, detail);
  }
  Error AtLine(uint32_t line, const std::string& key, const std::string& detail) const {
    return Failure("", source_ + ":" + std::to_string(line == 0 ? 1 : line),
                   OneLine((key.size() > 200 ? key.substr(0, 200) + "..." : key) + ": " + detail));
  }
  const std::string& source() const { return source_; }

 private:
  const std::string& source_;
};

std::string Join(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// Rejects keys of `table` not in `allowed`.
Result<void> CheckKeys(const Context& ctx, const toml::table& table, const std::string& prefix,
                       std::initializer_list<std::string_view> allowed) {
  for (auto&& [key, value] : table) {
    if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
    std::string known;
    for (std::string_view k : allowed) known += (known.empty() ? "" : ", ") + std::string(k);
    return ctx.At(value, Join(prefix, key.str()), "unknown key (known: " + known + ")");
  }
  return Ok{};
}

Result<std::optional<std::string>> OptString(const Context& ctx, const toml::table& table,
                                             const std::string& prefix, std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return std::optional<std::string>();
  if (!node->is_string()) return ctx.At(*node, Join(prefix, key), "expected a string");
  return std::optional<std::string>(node->as_string()->get());
}

Result<std::string> ReqString(const Context& ctx, const toml::table& table,
                              const std::string& prefix, std::string_view key) {
  Result<std::optional<std::string>> value = OptString(ctx, table, prefix, key);
  if (!value.ok()) return value.error();
  if (!*value) {
    return ctx.AtLine(table.source().begin.line, Join(prefix, key), "missing (required)");
  }
  return **value;
}

Result<std::optional<bool>> OptBool(const Context& ctx, const toml::table& table,
                                    const std::string& prefix, std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return std::optional<bool>();
  if (!node->is_boolean()) return ctx.At(*node, Join(prefix, key), "expected true or false");
  return std::optional<bool>(node->as_boolean()->get());
}

Result<std::optional<std::vector<std::string>>> OptStringArray(const Context& ctx,
                                                               const toml::table& table,
                                                               const std::string& prefix,
                                                               std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return std::optional<std::vector<std::string>>();
  const toml::array* array = node->as_array();
  if (array == nullptr) return ctx.At(*node, Join(prefix, key), "expected an array of strings");
  std::vector<std::string> out;
  for (const toml::node& element : *array) {
    if (!element.is_string()) {
      return ctx.At(element, Join(prefix, key), "expected an array of strings");
    }
    out.push_back(element.as_string()->get());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<const toml::table*> OptTable(const Context& ctx, const toml::table& table,
                                    std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return static_cast<const toml::table*>(nullptr);
  if (!node->is_table()) return ctx.At(*node, std::string(key), "expected a table");
  return node->as_table();
}

// Validates a template string held at `node`.
Result<void> CheckTemplate(const Context& ctx, const toml::node& node, const std::string& key,
                           const std::string& text, TemplateVarSet allowed) {
  Result<TemplateVarSet> used = ValidateTemplate(text, allowed);
  if (!used.ok()) return ctx.At(node, key, used.error().message());
  return Ok{};
}

// Validates every element of the string array `key` of `table` as a template.
Result<void> CheckTemplateArray(const Context& ctx, const toml::table& table,
                                const std::string& prefix, std::string_view key,
                                TemplateVarSet allowed) {
  const toml::array* array = table.get(key) ? table.get(key)->as_array() : nullptr;
  if (array == nullptr) return Ok{};
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    std::string name = Join(prefix, key) + "[" + std::to_string(i) + "]";
    PV_TRY(CheckTemplate(ctx, element, name, element.as_string()->get(), allowed));
  }
  return Ok{};
}

bool IsExtension(const std::string& ext) {
  // ^\.[A-Za-z0-9_+-]{1,16}$
  return ext.size() >= 2 &&
         MatchesName(ext, ".", Chars({kLowerAlpha, kUpperAlpha, kDigits, "_+-"}), 16);
}

Result<void> ParseInterpreter(const Context& ctx, const toml::table& root, RuntimeDefinition* def) {
  Result<const toml::table*> table = OptTable(ctx, root, "interpreter");
  if (!table.ok()) return table.error();
  if (*table == nullptr) return ctx.AtLine(1, "interpreter", "missing table (required)");
  const toml::table& t = **table;
  PV_TRY(CheckKeys(ctx, t, "interpreter", {"binary", "args", "file_extension"}));
  Result<std::string> binary = ReqString(ctx, t, "interpreter", "binary");
  if (!binary.ok()) return binary.error();
  def->interpreter.binary = *binary;
  if (binary->empty() || binary->front() != '/') {
    return ctx.At(*t.get("binary"), "interpreter.binary",
                  "must be an absolute path inside the sandbox");
  }
  PV_TRY(CheckTemplate(ctx, *t.get("binary"), "interpreter.binary", *binary, 0));
  Result<std::optional<std::vector<std::string>>> args =
      OptStringArray(ctx, t, "interpreter", "args");
  if (!args.ok()) return args.error();
  if (*args) def->interpreter.args = **args;
  Result<std::optional<std::string>> ext = OptString(ctx, t, "interpreter", "file_extension");
  if (!ext.ok()) return ext.error();
  if (*ext) {
    if (!IsExtension(**ext)) {
      return ctx.At(*t.get("file_extension"), "interpreter.file_extension",
                    "expected a '.' and 1 to 16 letters, digits, '_', '+' or '-'");
    }
    def->interpreter.file_extension = **ext;
  }
  return Ok{};
}

Result<void> ParseLimits(const Context& ctx, const toml::table& root, RuntimeDefinition* def) {
  Result<const toml::table*> table = OptTable(ctx, root, "limits");
  if (!table.ok()) return table.error();
  if (*table == nullptr) return Ok{};
  const toml::table& t = **table;
  PV_TRY(CheckKeys(ctx, t, "limits", {"memory_mb", "pids", "cpu_percent"}));
  for (const LimitField& field : kLimitFields) {
    const toml::node* node = t.get(field.key);
    if (node == nullptr) continue;
    std::optional<int64_t> value = node->value_exact<int64_t>();
    if (!value || *value < static_cast<int64_t>(field.min) ||
        *value > static_cast<int64_t>(field.max)) {
      return ctx.At(*node, Join("limits", field.key), LimitRangeMessage(field));
    }
    def->limits.*field.member = static_cast<uint64_t>(*value);
  }
  return Ok{};
}

Result<void> ParseInline(const Context& ctx, const toml::table& root, RuntimeDefinition* def) {
  Result<const toml::table*> table = OptTable(ctx, root, "inline");
  if (!table.ok()) return table.error();
  def->inline_code.extension = def->interpreter.file_extension;
  if (*table == nullptr) return Ok{};
  const toml::table& t = **table;
  PV_TRY(CheckKeys(ctx, t, "inline", {"strategy", "extension", "shell_helpers"}));
  Result<std::optional<std::string>> strategy = OptString(ctx, t, "inline", "strategy");
  if (!strategy.ok()) return strategy.error();
  if (*strategy) {
    if (**strategy == "direct") {
      def->inline_code.strategy = InlineStrategy::kDirect;
    } else if (**strategy == "temp_file") {
      def->inline_code.strategy = InlineStrategy::kTempFile;
    } else {
      return ctx.At(*t.get("strategy"), "inline.strategy",
                    "\"" + **strategy + "\" is not \"direct\" or \"temp_file\"");
    }
  }
  Result<std::optional<std::string>> ext = OptString(ctx, t, "inline", "extension");
  if (!ext.ok()) return ext.error();
  if (*ext) {
    if (!IsExtension(**ext)) {
      return ctx.At(*t.get("extension"), "inline.extension",
                    "expected a '.' and 1 to 16 letters, digits, '_', '+' or '-'");
    }
    def->inline_code.extension = **ext;
  }
  Result<std::optional<bool>> helpers = OptBool(ctx, t, "inline", "shell_helpers");
  if (!helpers.ok()) return helpers.error();
  if (*helpers) def->inline_code.shell_helpers = **helpers;
  if (def->inline_code.shell_helpers && def->inline_code.strategy != InlineStrategy::kTempFile) {
    return ctx.At(*t.get("shell_helpers"), "inline.shell_helpers",
                  "requires strategy = \"temp_file\"");
  }
  return Ok{};
}

Result<void> ParseEnvironment(const Context& ctx, const toml::table& root, RuntimeDefinition* def) {
  Result<const toml::table*> table = OptTable(ctx, root, "environment");
  if (!table.ok()) return table.error();
  if (*table == nullptr) return Ok{};
  const toml::table& t = **table;
  PV_TRY(CheckKeys(ctx, t, "environment", {"create_command", "interpreter_path"}));
  EnvironmentSpec env;
  Result<std::optional<std::vector<std::string>>> create =
      OptStringArray(ctx, t, "environment", "create_command");
  if (!create.ok()) return create.error();
  if (*create) env.create_command = **create;
  Result<std::optional<std::string>> path = OptString(ctx, t, "environment", "interpreter_path");
  if (!path.ok()) return path.error();
  if (*path) {
    const toml::node& node = *t.get("interpreter_path");
    PV_TRY(CheckTemplate(ctx, node, "environment.interpreter_path", **path,
                         Bit(TemplateVar::kEnvDir) | Bit(TemplateVar::kPackDir)));
    if (path->value().rfind("{env_dir}/", 0) != 0 && path->value().rfind("{pack_dir}/", 0) != 0 &&
        path->value().front() != '/') {
      return ctx.At(node, "environment.interpreter_path",
                    "must be an absolute path or start with {env_dir}/ or {pack_dir}/");
    }
    env.interpreter_path = **path;
  }
  def->environment = std::move(env);
  return Ok{};
}

Result<void> ParseDependencies(const Context& ctx, const toml::table& root,
                               RuntimeDefinition* def) {
  Result<const toml::table*> table = OptTable(ctx, root, "dependencies");
  if (!table.ok()) return table.error();
  if (*table == nullptr) return Ok{};
  const toml::table& t = **table;
  PV_TRY(CheckKeys(ctx, t, "dependencies", {"manifest_file", "install_command"}));
  DependenciesSpec deps;
  Result<std::string> manifest = ReqString(ctx, t, "dependencies", "manifest_file");
  if (!manifest.ok()) return manifest.error();
  // ^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$
  if (!MatchesName(*manifest, Chars({kLowerAlpha, kUpperAlpha, kDigits, "_"}),
                   Chars({kLowerAlpha, kUpperAlpha, kDigits, "_.+-"}), 127)) {
    return ctx.At(*t.get("manifest_file"), "dependencies.manifest_file",
                  "must be a plain file name at the pack root (no '/', not starting with '.')");
  }
  deps.manifest_file = *manifest;
  Result<std::optional<std::vector<std::string>>> install =
      OptStringArray(ctx, t, "dependencies", "install_command");
  if (!install.ok()) return install.error();
  if (!*install || (*install)->empty()) {
    return ctx.AtLine(t.source().begin.line, "dependencies.install_command",
                      "missing or empty (required)");
  }
  deps.install_command = **install;
  def->dependencies = std::move(deps);
  return Ok{};
}

Result<void> ParseEnvVars(const Context& ctx, const toml::table& root, RuntimeDefinition* def,
                          TemplateVarSet allowed) {
  Result<const toml::table*> table = OptTable(ctx, root, "env_vars");
  if (!table.ok()) return table.error();
  if (*table == nullptr) return Ok{};
  const std::string env_first = Chars({kLowerAlpha, kUpperAlpha, "_"});
  const std::string env_rest = Chars({kLowerAlpha, kUpperAlpha, kDigits, "_"});
  for (auto&& [key, node] : **table) {
    std::string name(key.str());
    std::string full = "env_vars." + name;
    if (!MatchesName(name, env_first, env_rest, 127)) {  // ^[A-Za-z_][A-Za-z0-9_]{0,127}$
      return ctx.At(node, full, "not a valid environment variable name");
    }
    if (name.rfind("PACKVISOR_", 0) == 0) {
      return ctx.At(node, full, "the PACKVISOR_ prefix is reserved for the supervisor");
    }
    EnvVarSpec spec;
    if (node.is_string()) {
      spec.value = node.as_string()->get();
    } else if (const toml::table* t = node.as_table()) {
      PV_TRY(CheckKeys(ctx, *t, full, {"value", "operation", "separator"}));
      Result<std::string> value = ReqString(ctx, *t, full, "value");
      if (!value.ok()) return value.error();
      spec.value = *value;
      Result<std::optional<std::string>> op = OptString(ctx, *t, full, "operation");
      if (!op.ok()) return op.error();
      if (*op) {
        if (**op == "set") {
          spec.operation = EnvVarOperation::kSet;
        } else if (**op == "prepend") {
          spec.operation = EnvVarOperation::kPrepend;
        } else if (**op == "append") {
          spec.operation = EnvVarOperation::kAppend;
        } else {
          return ctx.At(*t->get("operation"), full + ".operation",
                        "\"" + **op + "\" is not \"set\", \"prepend\" or \"append\"");
        }
      }
      Result<std::optional<std::string>> sep = OptString(ctx, *t, full, "separator");
      if (!sep.ok()) return sep.error();
      if (*sep) spec.separator = **sep;
    } else {
      return ctx.At(node, full, "expected a string or a table {value, operation, separator}");
    }
    if (spec.value.find('\0') != std::string::npos) {
      return ctx.At(node, full, "contains a NUL byte");
    }
    PV_TRY(CheckTemplate(ctx, node, full, spec.value, allowed));
    def->env_vars[name] = std::move(spec);
  }
  return Ok{};
}

Result<RuntimeDefinition> ParseTable(const Context& ctx, const toml::table& root) {
  PV_TRY(CheckKeys(ctx, root, "",
                   {"name", "aliases", "description", "allow_io_uring", "interpreter", "inline",
                    "environment", "dependencies", "env_vars", "limits"}));
  RuntimeDefinition def;
  def.source = ctx.source();
  Result<std::string> name = ReqString(ctx, root, "", "name");
  if (!name.ok()) return name.error();
  // ^[a-z][a-z0-9_-]{0,31}$
  if (!MatchesName(*name, std::string(kLowerAlpha), Chars({kLowerAlpha, kDigits, "_-"}), 31)) {
    return ctx.At(*root.get("name"), "name",
                  "\"" + *name + "\" must match ^[a-z][a-z0-9_-]{0,31}$ (lower case)");
  }
  def.name = *name;
  Result<std::optional<std::vector<std::string>>> aliases =
      OptStringArray(ctx, root, "", "aliases");
  if (!aliases.ok()) return aliases.error();
  const std::string alias_first = Chars({kLowerAlpha, kDigits});
  const std::string alias_rest = Chars({kLowerAlpha, kDigits, "._+-"});
  if (*aliases) {
    for (const std::string& alias : **aliases) {
      std::string lower = Lower(alias);
      if (!MatchesName(lower, alias_first, alias_rest, 31)) {  // ^[a-z0-9][a-z0-9._+-]{0,31}$
        return ctx.At(*root.get("aliases"), "aliases",
                      "\"" + alias + "\" must match ^[a-z0-9][a-z0-9._+-]{0,31}$");
      }
      if (lower != def.name &&
          std::find(def.aliases.begin(), def.aliases.end(), lower) == def.aliases.end()) {
        def.aliases.push_back(lower);
      }
    }
  }
  Result<std::optional<std::string>> description = OptString(ctx, root, "", "description");
  if (!description.ok()) return description.error();
  def.description = description->value_or("");
  Result<std::optional<bool>> io_uring = OptBool(ctx, root, "", "allow_io_uring");
  if (!io_uring.ok()) return io_uring.error();
  def.allow_io_uring = io_uring->value_or(false);

  PV_TRY(ParseInterpreter(ctx, root, &def));
  PV_TRY(ParseInline(ctx, root, &def));
  PV_TRY(ParseLimits(ctx, root, &def));
  PV_TRY(ParseEnvironment(ctx, root, &def));
  PV_TRY(ParseDependencies(ctx, root, &def));

  // Which variables each template may use: {env_dir} only with an environment,
  // {manifest_path} only with dependencies, {action_file} only in the interpreter's args.
  TemplateVarSet base = Bit(TemplateVar::kPackDir);
  if (def.environment) base |= Bit(TemplateVar::kEnvDir);
  TemplateVarSet with_manifest = base | Bit(TemplateVar::kInterpreter);
  if (def.dependencies) with_manifest |= Bit(TemplateVar::kManifestPath);

  PV_TRY(CheckTemplateArray(ctx, *root["interpreter"].as_table(), "interpreter", "args",
                            base | Bit(TemplateVar::kActionFile)));
  if (def.environment) {
    PV_TRY(CheckTemplateArray(ctx, *root["environment"].as_table(), "environment", "create_command",
                              with_manifest));
  }
  if (def.dependencies) {
    PV_TRY(CheckTemplateArray(ctx, *root["dependencies"].as_table(), "dependencies",
                              "install_command", with_manifest));
  }
  PV_TRY(ParseEnvVars(ctx, root, &def, with_manifest));
  return def;
}

}  // namespace

bool RuntimeDefinition::MatchesExtension(std::string_view ext) const {
  if (!ext.empty() && ext.front() == '.') ext.remove_prefix(1);
  std::string_view own = interpreter.file_extension;
  if (!own.empty() && own.front() == '.') own.remove_prefix(1);
  return !own.empty() && Lower(own) == Lower(ext);
}

Result<RuntimeDefinition> ParseRuntimeDefinition(std::string_view toml_text,
                                                 const std::string& source) {
  Context ctx(source);
  // toml++ frees nested tables recursively: a deep definition is refused before it is parsed.
  if (TomlNestsDeeperThan(toml_text, kMaxTomlDepth)) {
    return ctx.AtLine(1, "syntax",
                      "tables and arrays nested deeper than " + std::to_string(kMaxTomlDepth) +
                          " levels (refused before parsing)");
  }
  if (int line = TomlUnsafeCharacterLine(toml_text)) {
    return ctx.AtLine(static_cast<uint32_t>(line), "syntax",
                      "a control or non-ASCII character outside a comment (write the latter as a "
                      "\\uXXXX escape in "
                      "a \"basic string\"; refused before parsing: the TOML library mishandles "
                      "some)");
  }
  try {
    toml::table root = toml::parse(toml_text, source);
    return ParseTable(ctx, root);
  } catch (const toml::parse_error& e) {
    return ctx.AtLine(e.source().begin.line, "syntax", std::string(e.description()));
  } catch (const std::exception& e) {
    return ctx.AtLine(1, "load", e.what());
  }
}

Result<RuntimeDefinition> LoadRuntimeDefinition(const std::string& path) {
  Result<std::string> text = ReadSmallFile(path, kMaxDefinitionBytes);
  if (!text.ok()) return text.error();
  return ParseRuntimeDefinition(*text, path);
}

Result<std::string> InterpreterFor(const RuntimeDefinition& runtime, CommandPhase phase) {
  if (phase == CommandPhase::kCreate || !runtime.environment ||
      !runtime.environment->interpreter_path) {
    return runtime.interpreter.binary;
  }
  TemplateValues values;
  values.pack_dir = std::string(kSandboxPackDir);
  values.env_dir = std::string(kSandboxEnvDir);
  Result<std::string> path = Substitute(*runtime.environment->interpreter_path, values);
  if (!path.ok()) {
    return Failure("", runtime.source, "environment.interpreter_path: " + path.error().message());
  }
  return path;
}

TemplateValues SandboxTemplateValues(const RuntimeDefinition& runtime, CommandPhase phase,
                                     std::optional<std::string> action_file) {
  TemplateValues values;
  values.pack_dir = std::string(kSandboxPackDir);
  if (runtime.environment) values.env_dir = std::string(kSandboxEnvDir);
  if (runtime.dependencies) {
    values.manifest_path = std::string(kSandboxPackDir) + "/" + runtime.dependencies->manifest_file;
  }
  // interpreter_path was validated at load time, so this cannot fail; fall back to the binary
  // only to keep the function total (a failure would be reported by InterpreterFor).
  Result<std::string> interpreter = InterpreterFor(runtime, phase);
  values.interpreter = interpreter.ok() ? *interpreter : runtime.interpreter.binary;
  values.action_file = std::move(action_file);
  return values;
}

Result<void> ApplyEnvVars(const RuntimeDefinition& runtime, const TemplateValues& values,
                          std::map<std::string, std::string>* env) {
  for (const auto& [name, spec] : runtime.env_vars) {
    Result<std::string> value = Substitute(spec.value, values);
    if (!value.ok()) {
      return Failure("", runtime.source, "env_vars." + name + ": " + value.error().message());
    }
    auto existing = env->find(name);
    std::string old = existing == env->end() ? std::string() : existing->second;
    std::string result;
    switch (spec.operation) {
      case EnvVarOperation::kSet:
        result = *value;
        break;
      case EnvVarOperation::kPrepend:
        result = value->empty() ? old : old.empty() ? *value : *value + spec.separator + old;
        break;
      case EnvVarOperation::kAppend:
        result = value->empty() ? old : old.empty() ? *value : old + spec.separator + *value;
        break;
    }
    (*env)[name] = std::move(result);
  }
  return Ok{};
}

namespace {

Result<std::vector<RuntimeDefinition>> LoadDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Failure("load runtime definitions", dir, "not a directory");
  }
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& path = it->path();
    if (path.extension() != ".toml" || path.filename().string().front() == '.') continue;
    files.push_back(path.string());
  }
  if (ec) return Failure("list runtime definitions", dir, ec.message());
  std::sort(files.begin(), files.end());
  std::vector<RuntimeDefinition> out;
  std::map<std::string, std::string> seen;  // name -> file
  for (const std::string& file : files) {
    Result<RuntimeDefinition> def = LoadRuntimeDefinition(file);
    if (!def.ok()) return def.error();
    auto [it, inserted] = seen.emplace(def->name, file);
    if (!inserted) {
      return Failure("", file + ":1",
                     "name: runtime \"" + def->name + "\" is already defined in " + it->second);
    }
    out.push_back(std::move(*def));
  }
  return out;
}

}  // namespace

Result<RuntimeRegistry> RuntimeRegistry::Load(const std::string& builtin_dir,
                                              const std::optional<std::string>& extra_dir) {
  Result<std::vector<RuntimeDefinition>> builtins = LoadDir(builtin_dir);
  if (!builtins.ok()) return builtins.error();
  std::vector<RuntimeDefinition> all = std::move(*builtins);
  if (extra_dir) {
    Result<std::vector<RuntimeDefinition>> extra = LoadDir(*extra_dir);
    if (!extra.ok()) return extra.error();
    for (RuntimeDefinition& def : *extra) {
      auto same = std::find_if(all.begin(), all.end(),
                               [&](const RuntimeDefinition& d) { return d.name == def.name; });
      if (same != all.end()) {
        *same = std::move(def);  // an operator's definition replaces the built-in one
      } else {
        all.push_back(std::move(def));
      }
    }
  }
  return FromDefinitions(std::move(all));
}

Result<RuntimeRegistry> RuntimeRegistry::FromDefinitions(
    std::vector<RuntimeDefinition> definitions) {
  std::sort(definitions.begin(), definitions.end(),
            [](const RuntimeDefinition& a, const RuntimeDefinition& b) { return a.name < b.name; });
  std::map<std::string, const RuntimeDefinition*> claimed;
  for (const RuntimeDefinition& def : definitions) {
    std::vector<std::string> names = def.aliases;
    names.insert(names.begin(), def.name);
    for (const std::string& name : names) {
      auto [it, inserted] = claimed.emplace(Lower(name), &def);
      if (!inserted && it->second != &def) {
        return Failure("", def.source + ":1",
                       "\"" + name + "\" is already the name or an alias of runtime \"" +
                           it->second->name + "\" (" + it->second->source + ")");
      }
    }
  }
  RuntimeRegistry registry;
  registry.definitions_ = std::move(definitions);
  return registry;
}

Result<const RuntimeDefinition*> RuntimeRegistry::Find(std::string_view name_or_alias) const {
  std::string wanted = Lower(name_or_alias);
  for (const RuntimeDefinition& def : definitions_) {
    if (def.name == wanted ||
        std::find(def.aliases.begin(), def.aliases.end(), wanted) != def.aliases.end()) {
      return &def;
    }
  }
  return Failure(
      "", "", "unknown runtime \"" + std::string(name_or_alias) + "\" (known: " + NameList() + ")");
}

Result<const RuntimeDefinition*> RuntimeRegistry::FindByExtension(
    std::string_view extension) const {
  std::string ext(extension);
  if (!ext.empty() && ext.front() != '.') ext.insert(0, ".");
  if (ext.size() < 2) {
    return Failure(
        "", "",
        "no file extension to choose a runtime by; set runner_type (known: " + NameList() + ")");
  }
  std::vector<const RuntimeDefinition*> matches;
  for (const RuntimeDefinition& def : definitions_) {
    if (def.MatchesExtension(ext)) matches.push_back(&def);
  }
  if (matches.size() == 1) return matches.front();
  if (matches.empty()) {
    return Failure("", "",
                   "no runtime handles files ending in \"" + ext +
                       "\"; set runner_type (known: " + NameList() + ")");
  }
  std::string names;
  for (const RuntimeDefinition* def : matches) names += (names.empty() ? "" : ", ") + def->name;
  return Failure("", "",
                 "several runtimes handle \"" + ext + "\" (" + names + "); set runner_type");
}

std::string RuntimeRegistry::NameList() const {
  std::string names;
  for (const RuntimeDefinition& def : definitions_) {
    names += (names.empty() ? "" : ", ") + def.name;
  }
  return names.empty() ? "none" : names;
}

std::string LimitRangeMessage(const LimitField& field) {
  return "expected a whole number from " + std::to_string(field.min) + " to " +
         std::to_string(field.max);
}

}  // namespace packvisor::envs
