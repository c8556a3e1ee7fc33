// Template variables of runtime definitions (SPEC §5).
//
// A template is a string in which `{name}` stands for one of five variables: {pack_dir},
// {env_dir}, {interpreter}, {manifest_path}, {action_file}. `{{` and `}}` stand for a literal
// brace; any other brace is an error. Templates are validated when a runtime definition is
// loaded (unknown placeholder = error) and substituted in ONE pass when a command is built: a
// substituted value is copied verbatim and never scanned again, so a value containing "{env_dir}"
// stays as it is. Substitution produces argv elements and environment values only; nothing here
// ever goes through a shell.
//
// Values are paths as the sandbox sees them (SPEC §6): {pack_dir} = /pack, {env_dir} = /env.
// Pure functions, no I/O, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/os/error.h"

namespace packvisor::envs {

// Where the sandbox mounts the pack (read-only) and the environment (read-write).
inline constexpr std::string_view kSandboxPackDir = "/pack";
inline constexpr std::string_view kSandboxEnvDir = "/env";

enum class TemplateVar { kPackDir, kEnvDir, kInterpreter, kManifestPath, kActionFile };

// "pack_dir", "env_dir", ... (without braces).
std::string_view TemplateVarName(TemplateVar var);

// A set of variables, as a bit mask; used to say which variables a template may use.
using TemplateVarSet = unsigned;
constexpr TemplateVarSet Bit(TemplateVar var) { return 1u << static_cast<unsigned>(var); }
inline constexpr TemplateVarSet kAllTemplateVars = 0x1f;

// The values available when a command is built. An absent value makes substitution of that
// placeholder fail (e.g. {manifest_path} for a runtime without dependencies).
struct TemplateValues {
  std::optional<std::string> pack_dir;
  std::optional<std::string> env_dir;
  std::optional<std::string> interpreter;
  std::optional<std::string> manifest_path;
  std::optional<std::string> action_file;

  const std::optional<std::string>& Get(TemplateVar var) const;
};

// Checks the syntax of `text` and that every placeholder names a variable in `allowed`.
// Returns the set of variables used. The error is one line without location, e.g.
// `unknown placeholder {envdir} (known: {pack_dir}, {env_dir}, ...)`; the caller prefixes the
// file, line and key.
Result<TemplateVarSet> ValidateTemplate(std::string_view text,
                                        TemplateVarSet allowed = kAllTemplateVars);

// One-pass substitution of `text`. Fails on a syntax error, an unknown placeholder or a
// placeholder whose value is absent.
Result<std::string> Substitute(std::string_view text, const TemplateValues& values);

// Substitute() applied to every element; argv[i] stays one element whatever its value contains.
Result<std::vector<std::string>> SubstituteArgv(const std::vector<std::string>& argv,
                                                const TemplateValues& values);

}  // namespace packvisor::envs
