// Runtime definitions (SPEC §5): how to run a script of one language, and the registry that
// finds them by name, alias or file extension.
//
// A definition is one TOML file (built-ins in config/runtimes/, operators may add or override
// some in `runtimes_dir`). Loading is strict: unknown keys, wrong types, impossible values and
// unknown template placeholders are errors naming the file, the line and the key, e.g.
// `/etc/packvisor/runtimes/ruby.toml:4: interpreter.binary: must be an absolute path`.
// No function here throws. Definitions are immutable once loaded; a const registry is safe to
// share between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envs/templates.h"
#include "sandbox/os/error.h"

namespace packvisor::envs {

// Cgroup limits a runtime definition (TOML `[limits]`) or an action (YAML `limits:`) asks for.
// An unset field falls back to the next level: action, then runtime, then the configuration's
// sandbox.* defaults. Requests are checked against the configuration's ceilings when an execution
// is prepared, never silently clamped.
struct LimitRequest {
  std::optional<uint64_t> memory_mb;    // 1 .. 2^30
  std::optional<uint64_t> pids;         // 2 .. 4194304
  std::optional<uint64_t> cpu_percent;  // 1 .. 100000 (100 = one core)
};

// LimitRequest's fields as both file formats name them, with their allowed ranges: the one table
// the TOML and the YAML parser read.
struct LimitField {
  std::string_view key;
  uint64_t min;
  uint64_t max;
  std::optional<uint64_t> LimitRequest::*member;
};
inline constexpr LimitField kLimitFields[] = {
    {"memory_mb", 1, 1ull << 30, &LimitRequest::memory_mb},
    {"pids", 2, 4194304, &LimitRequest::pids},
    {"cpu_percent", 1, 100000, &LimitRequest::cpu_percent}};

// "expected a whole number from MIN to MAX", the message of a value outside `field`'s range.
std::string LimitRangeMessage(const LimitField& field);

struct InterpreterSpec {
  std::string binary;             // absolute path inside the sandbox, no placeholders
  std::vector<std::string> args;  // templates; placed between binary and the script
  std::string file_extension;     // ".py"; may be empty (no extension fallback)
};

enum class InlineStrategy { kDirect, kTempFile };

// Inline code (no entry point file). kDirect: `binary args -c CODE`; kTempFile: the code is
// written to a file on the sandbox's tmpfs. shell_helpers: the file gets the PARAM_* prelude
// (SPEC §7); only meaningful with kTempFile.
struct InlineSpec {
  InlineStrategy strategy = InlineStrategy::kDirect;
  std::string extension;  // of the temp file; defaults to interpreter.file_extension
  bool shell_helpers = false;
};

// The per-(pack, runtime) environment. Absent for runtimes without one (shell).
struct EnvironmentSpec {
  std::vector<std::string> create_command;      // templates; empty = nothing to run
  std::optional<std::string> interpreter_path;  // template using {env_dir}/{pack_dir} only
};

struct DependenciesSpec {
  std::string manifest_file;                 // a file name at the pack root: "requirements.txt"
  std::vector<std::string> install_command;  // templates; never empty
};

enum class EnvVarOperation { kSet, kPrepend, kAppend };

struct EnvVarSpec {
  std::string value;  // template
  EnvVarOperation operation = EnvVarOperation::kSet;
  std::string separator = ":";
};

struct RuntimeDefinition {
  std::string name;                  // lower case, [a-z][a-z0-9_-]*, used as a directory name
  std::vector<std::string> aliases;  // lower case
  std::string description;
  InterpreterSpec interpreter;
  InlineSpec inline_code;  // TOML table [inline]
  std::optional<EnvironmentSpec> environment;
  std::optional<DependenciesSpec> dependencies;
  std::map<std::string, EnvVarSpec> env_vars;
  bool allow_io_uring = false;  // seccomp: io_uring_* allowed for this runtime's actions
  LimitRequest limits;          // TOML table [limits]: memory_mb, pids, cpu_percent
  std::string source;           // the file it was loaded from

  // True when `ext` (".py" or "py", any case) is this runtime's file extension.
  bool MatchesExtension(std::string_view ext) const;
};

// Parses one definition. `source` names the text in errors (normally its path).
Result<RuntimeDefinition> ParseRuntimeDefinition(std::string_view toml_text,
                                                 const std::string& source);

// Reads and parses one file (at most 1 MiB).
Result<RuntimeDefinition> LoadRuntimeDefinition(const std::string& path);

// When a command is built (SPEC §5): creating the environment (it does not exist yet, so
// {interpreter} is the system binary), installing dependencies into it, or executing an action
// ({interpreter} is the environment's interpreter where the runtime has one).
enum class CommandPhase { kCreate, kInstall, kExecute };

// The template values as the sandbox sees them: {pack_dir} = /pack, {env_dir} = /env (only when
// the runtime has an environment), {manifest_path} = /pack/<manifest_file> (only with
// dependencies), {interpreter} per `phase`, {action_file} = `action_file` when given (a path
// inside the sandbox, e.g. /pack/actions/hello.sh).
TemplateValues SandboxTemplateValues(const RuntimeDefinition& runtime, CommandPhase phase,
                                     std::optional<std::string> action_file = std::nullopt);

// The interpreter for `phase` (substituted; an absolute path inside the sandbox).
Result<std::string> InterpreterFor(const RuntimeDefinition& runtime, CommandPhase phase);

// Applies the runtime's env_vars to `env` in name order: set replaces; prepend/append join the
// substituted value and the existing one with the separator, dropping empty parts (no dangling
// separator).
Result<void> ApplyEnvVars(const RuntimeDefinition& runtime, const TemplateValues& values,
                          std::map<std::string, std::string>* env);

// All known runtimes. Lookup by name or alias is case-insensitive.
class RuntimeRegistry {
 public:
  RuntimeRegistry() = default;

  // Loads every *.toml in `builtin_dir` (which must exist), then every *.toml in `extra_dir`
  // if given (which must exist too); an extra definition replaces the built-in of the same
  // name. Two definitions of one name in one directory, and a name or alias claimed by two
  // runtimes, are errors.
  static Result<RuntimeRegistry> Load(const std::string& builtin_dir,
                                      const std::optional<std::string>& extra_dir);

  // Builds a registry from definitions already parsed (tests); same conflict rules.
  static Result<RuntimeRegistry> FromDefinitions(std::vector<RuntimeDefinition> definitions);

  // By name or alias ("Python3", "node.js", "BASH"). Error: `unknown runtime "ruby" (known:
  // node, python, shell)`. The pointer is valid as long as the registry lives.
  Result<const RuntimeDefinition*> Find(std::string_view name_or_alias) const;

  // By file extension (".py" or "py", any case; not a path). Error when the extension is empty,
  // or when no runtime, or more than one, claims it.
  Result<const RuntimeDefinition*> FindByExtension(std::string_view extension) const;

  // Sorted by name.
  const std::vector<RuntimeDefinition>& definitions() const { return definitions_; }

  // "node, python, shell".
  std::string NameList() const;

 private:
  std::vector<RuntimeDefinition> definitions_;
};

}  // namespace packvisor::envs
