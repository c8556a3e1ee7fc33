// supervisor/packs/: pack and action loading and validation: pack.yaml and actions/*.yaml
// (packs.h, with its internals pack_yaml.h and parameters.h) and the checks beyond the YAML that
// `pack validate|list|register` apply (pack_checks.h). It uses config/ (and envs/, sandbox/); it
// never includes executions/ or cli/.
//
// Packs and actions (SPEC §4): loading pack.yaml and actions/*.yaml, containment of entry
// points, the choice of runtime, and validation of an execution's parameters.
//
// Every function returns errors as values and never throws. Problems are one line naming the
// file, the line and the key: `/opt/packvisor/packs/hello/pack.yaml:3: ref: "Foo" does not match
// the directory name "hello"`. The supervisor only reads packs; nothing here writes anywhere.
//
// Packs of the original platform load unchanged (SPEC §4): a key packvisor does not read is
// ignored, with a note (or a warning with "did you mean" when it is close to a key packvisor
// reads). One bad action does not break its pack: the pack loads with its good actions and lists
// the bad ones with their reason; only a broken pack.yaml or actions/ directory breaks a pack.
//
// Hostile input: YAML files larger than 1 MiB, with more than one document, nested deeper than
// 64 levels, or with more than 10,000 nodes once aliases are expanded are refused before they
// are converted (a "billion laughs" document is refused in linear time). pack.yaml and action
// YAML files must be regular files, not symlinks. An entry point must resolve, after symlinks,
// to a regular file beneath the pack's actions/ directory.
//
// Thread-safety: free functions without shared state; a loaded Pack/Action is a plain value.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envs/runtime.h"
#include "sandbox/os/error.h"

namespace packvisor {

enum class ParamType { kString, kInteger, kNumber, kBoolean, kObject, kArray };
std::string_view ParamTypeName(ParamType type);  // "string", "integer", ...

// Parameter and secret values nest at most this deep: the JSON texts they come from are checked
// before nlohmann-json parses them (a parsed value is copied, compared, dumped and freed
// recursively).
inline constexpr int kMaxParameterDepth = 64;

struct ParameterSpec {
  std::optional<ParamType> type;  // absent: any JSON value is accepted
  bool required = false;
  std::optional<nlohmann::json> default_value;
  std::vector<nlohmann::json> enum_values;  // empty: unconstrained
  bool secret = false;
  std::optional<double> minimum;  // inclusive; numbers only
  std::optional<double> maximum;  // inclusive; numbers only
  std::string description;
};

enum class ParameterDelivery { kStdin, kFile };
enum class ParameterFormat { kJson, kDotenv, kYaml };
enum class OutputFormat { kText, kJson, kYaml, kJsonl };
enum class NetworkMode { kNone, kHost };

std::string_view ParameterDeliveryName(ParameterDelivery value);  // "stdin" | "file"
std::string_view ParameterFormatName(ParameterFormat value);      // "json" | "dotenv" | "yaml"
std::string_view OutputFormatName(OutputFormat value);            // "text" | "json" | ...
std::string_view NetworkModeName(NetworkMode value);              // "none" | "host"

struct Action {
  std::string name;        // equals the YAML file's stem: actions/<name>.yaml
  std::string action_ref;  // "<pack_ref>.<name>"
  std::string description;
  std::string runner_type;         // as written; empty when absent
  std::string runtime;             // canonical runtime name; set only when loaded with a registry
  std::string entry_point;         // as written, relative to actions/
  std::string entry_path;          // the resolved real path on the host
  std::string sandbox_entry_path;  // the same file inside the sandbox: /pack/actions/...
  std::map<std::string, ParameterSpec> parameters;
  ParameterDelivery parameter_delivery = ParameterDelivery::kStdin;
  ParameterFormat parameter_format = ParameterFormat::kJson;
  OutputFormat output_format = OutputFormat::kText;
  std::optional<int64_t> timeout_seconds;  // 1 .. 604800
  std::optional<NetworkMode> network;      // absent: the operator's per-pack default
  envs::LimitRequest limits;               // `limits:` {memory_mb, pids, cpu_percent}
  bool enabled = true;                     // false: refuses to run (the caller says so)
  std::string source;                      // path of the action YAML
  int runner_type_line = 0;                // 1-based lines, for messages; 0 when absent
  int entry_point_line = 0;
  int network_line = 0;
  int limits_line = 0;
};

enum class Severity { kNote, kWarning, kError };
std::string_view SeverityName(Severity severity);  // "note" | "warning" | "error"

// One finding about a pack file. Notes (an ignored key) and warnings (a likely typo, a script
// reading an undeclared parameter) never make a pack or an action bad; errors do.
struct Diagnostic {
  Severity severity = Severity::kError;
  std::string file;    // the file it is about
  int line = 0;        // 1-based; 0 when it is about the whole file
  std::string key;     // e.g. "parameters.who.type"; empty when about no key
  std::string detail;  // one line

  // "file:line: key: detail" (the form of error messages).
  std::string Text() const;
  // "file:line: severity: key: detail" (the form `pack validate` prints).
  std::string TextWithSeverity() const;
};

// An action that cannot run: its file is listed, but it is not in Pack::actions.
struct BadAction {
  std::string name;    // the YAML file's stem
  std::string source;  // path of the action YAML
  std::string reason;  // the first error, one line ("... (and N more problems)")
};

struct Pack {
  std::string ref;
  std::string version;
  std::string description;
  std::vector<std::string> runtime_deps;
  std::string dir;                     // the pack directory's real path
  std::vector<Action> actions;         // the good actions, sorted by name
  std::vector<BadAction> bad_actions;  // sorted by name

  const Action* FindAction(std::string_view name) const;  // nullptr when absent
};

// Limits applied to every pack YAML file.
inline constexpr size_t kMaxYamlBytes = 1 << 20;
inline constexpr uint64_t kMaxYamlNodes = 10000;
inline constexpr int kMaxYamlDepth = 64;

// Refuses YAML `text` before a node tree is built (YAML::Load recurses once per level;
// converting its tree expands every alias): an event-parser pass over its first document (the
// one YAML::Load returns) that stops at a depth above kMaxYamlDepth, at more than `max_nodes`
// nodes once aliases are expanded, or at a syntax error. The error is one line, "line N: <what>"
// (N from 1), and never quotes the text (it may hold secrets).
Result<void> CheckYamlBudget(std::string_view text, uint64_t max_nodes = kMaxYamlNodes);

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong form, no surrogate, nothing above
// U+10FFFF): what nlohmann-json can dump, and so what a parameter document can carry.
bool IsValidUtf8(std::string_view text);

// Why a parameter value's strings and keys cannot go into every parameter document: "not valid
// UTF-8", or a Unicode noncharacter (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF: yaml-cpp's emitter writes
// U+FFFD in its place); nullopt when they can. ValidateParameters refuses such values.
std::optional<std::string> ParameterTextProblem(const nlohmann::json& value);

// The keys packvisor reads at the top of an action YAML file; any other key is ignored (a note, or
// a "did you mean" warning when it is close to one of these).
const std::vector<std::string_view>& ActionYamlKeys();

// `^[a-z0-9][a-z0-9_-]{0,63}$`.
bool IsValidPackRef(std::string_view ref);

// What loading a pack found: the pack (absent when the pack as a whole is broken: its
// directory, pack.yaml or actions/) and every note, warning and error, in file order.
struct PackInspection {
  std::optional<Pack> pack;
  std::vector<Diagnostic> diagnostics;
  bool not_found = false;  // `pack_dir` does not exist
};

// Loads pack.yaml and every actions/*.yaml (and *.yml) of the pack in `pack_dir` (relative to
// the current directory when relative). With `runtimes`, every action's runtime is chosen (see
// ChooseRuntime) and an unknown one makes the action bad; without, Action::runtime stays empty.
// An action with any error is bad (Pack::bad_actions) and the others load.
PackInspection InspectPack(const std::string& pack_dir,
                           const envs::RuntimeRegistry* runtimes = nullptr);

// InspectPack for callers that only want the pack: fails when the pack as a whole is broken
// (error().err is ENOENT when `pack_dir` does not exist), with the first error and "(and N more
// problems)" when there are several. Bad actions do not fail it.
Result<Pack> LoadPack(const std::string& pack_dir, const envs::RuntimeRegistry* runtimes = nullptr);

// Every note, warning and error of the pack in `dir`, in file order (InspectPack's).
std::vector<Diagnostic> ValidatePackDir(const std::string& dir,
                                        const envs::RuntimeRegistry* runtimes = nullptr);

// The errors of `diagnostics` only.
size_t CountErrors(const std::vector<Diagnostic>& diagnostics);

// A pack directory that does not load at all.
struct BrokenPack {
  std::string dir;
  std::string reason;  // the first error, one line ("... (and N more problems)")
};

struct PackListing {
  std::vector<Pack> packs;         // the packs that load, sorted by ref (with their bad actions)
  std::vector<BrokenPack> broken;  // the directories that do not, sorted by name
};

// Every directory of `packs_base_dir` (hidden entries skipped) loaded as a pack. Broken packs
// are left out of `packs` and reported in `broken`. Fails only when the base directory cannot
// be read.
Result<PackListing> ListPacks(const std::string& packs_base_dir,
                              const envs::RuntimeRegistry* runtimes = nullptr);

struct ActionRef {
  std::string pack;    // everything before the first dot
  std::string action;  // everything after it
};

// Splits "pack.action" and checks both parts' syntax. Errors do not repeat the ref (the caller
// names it).
Result<ActionRef> ParseActionRef(std::string_view action_ref);

struct ResolvedAction {
  Pack pack;  // pack.yaml only: `actions` is empty
  Action action;
};

// Finds and loads one action by ref: `{packs_base_dir}/{pack}/pack.yaml` and
// `{packs_base_dir}/{pack}/actions/{action}.yaml` (other actions are not read, so a bad sibling
// never blocks it). When the pack or the action does not exist, error().err is ENOENT (the CLI's
// exit 127); any other failure (a bad action: its first error) has err 0 or another errno.
// Errors do not repeat the ref (the caller names it).
Result<ResolvedAction> ResolveAction(const std::string& packs_base_dir, std::string_view action_ref,
                                     const envs::RuntimeRegistry* runtimes = nullptr);

// The runtime of an action: runner_type (a name or alias, case-insensitive) is authoritative;
// only when it is absent is the runtime chosen by the entry point's extension. The error names
// the action file and line, e.g. `.../actions/x.yaml:4: runner_type: unknown runtime "ruby"
// (known: node, python, shell)`; the original platform's native runner is named as such.
Result<const envs::RuntimeDefinition*> ChooseRuntime(const Action& action,
                                                     const envs::RuntimeRegistry& runtimes);

// The network an execution of `action` gets (SPEC §4): packs listed in `host_network_packs`
// (the config's sandbox.host_network_packs) get the host network unless the action says
// `network: none`; other packs get none, and an action of theirs that says `network: host` is
// refused with an error naming the file, the line and the config key.
Result<NetworkMode> EffectiveNetwork(const Action& action, std::string_view pack_ref,
                                     const std::vector<std::string>& host_network_packs);

// Checks `params` (a JSON object) against the action's parameters and returns it with defaults
// filled in. Errors name the parameter (not the action: the caller gives that context), never a
// value: unknown parameter, missing required parameter (a secret one says where secrets come
// from), wrong type, not in enum, below minimum, above maximum. A null value is no value: the
// default fills it, a required parameter is missing, otherwise it stays null. An integer-valued
// float (3.0) is accepted for an integer parameter and returned as an integer.
Result<nlohmann::json> ValidateParameters(const Action& action, const nlohmann::json& params);

}  // namespace packvisor
