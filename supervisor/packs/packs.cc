#include "supervisor/packs/packs.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "envs/names.h"
#include "sandbox/os/syscalls.h"
#include "supervisor/packs/pack_yaml.h"
#include "supervisor/packs/parameters.h"

namespace packvisor {
namespace {

namespace fs = std::filesystem;

using envs::Chars;
using envs::kDigits;
using envs::kLowerAlpha;
using envs::kUpperAlpha;
using envs::MatchesName;

using detail::Budget;
using detail::FileContext;
using detail::ForEachKey;
using detail::ForEachKeyWith;
using detail::GetBool;
using detail::GetEnum;
using detail::GetString;
using detail::IsQuotedOrStr;
using detail::LineOf;
using detail::NameOf;
using detail::ParseInt;
using detail::ParseParameters;
using detail::ParseYaml;
using detail::Problems;
using detail::Quote;
using detail::ReadYamlFile;
using detail::UnknownKeys;

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

// ---------------------------------------------------------------------------------------------
// Entry points.

bool IsBeneath(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
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
  std::optional<std::string> real = os::RealPath(joined);
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

// The keys packvisor reads; any other key is ignored (SPEC §4: packs of the original platform
// load unchanged), with a note, or a warning when it looks like a typo of one of these.
const std::vector<std::string_view> kPackKeys = {"ref", "version", "description", "runtime_deps"};

// `limits:` of an action: whole numbers in the ranges of envs::LimitRequest.
void ParseLimitRequest(const FileContext& ctx, const YAML::Node& node, const std::string& key,
                       envs::LimitRequest* limits) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    ctx.Add(LineOf(node), key, "expected a mapping with memory_mb, pids and/or cpu_percent");
    return;
  }
  // packvisor's own map (the original has none): a misspelt limit is an error, not a default.
  ForEachKeyWith(
      UnknownKeys::kError, ctx, node, key, {"memory_mb", "pids", "cpu_percent"},
      [&](const std::string& name, const YAML::Node& value) {
        for (const envs::LimitField& field : envs::kLimitFields) {
          if (name != field.key) continue;
          std::optional<int64_t> n =
              value.IsScalar() && !IsQuotedOrStr(value) ? ParseInt(value.Scalar()) : std::nullopt;
          if (!n || *n < static_cast<int64_t>(field.min) || *n > static_cast<int64_t>(field.max)) {
            ctx.Add(LineOf(value), key + "." + name, envs::LimitRangeMessage(field));
          } else {
            (*limits).*field.member = static_cast<uint64_t>(*n);
          }
          return true;
        }
        return false;
      });
}

bool IsValidActionName(const std::string& name) {
  // ^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$
  return MatchesName(name, Chars({kLowerAlpha, kUpperAlpha, kDigits, "_"}),
                     Chars({kLowerAlpha, kUpperAlpha, kDigits, "_-"}), 127);
}

// The pack directory as loaded: real path and the name the ref must equal.
struct PackDir {
  std::string real;
  std::string name;
  std::string actions_real;  // empty when actions/ is missing or escapes the pack
};

// `not_found` (when given) is set when `dir` does not exist.
std::optional<PackDir> OpenPackDir(const std::string& dir, Problems* problems,
                                   bool* not_found = nullptr) {
  std::optional<std::string> real = os::RealPath(dir);
  if (!real && (errno == ENOENT || errno == ENOTDIR)) {
    if (not_found != nullptr) *not_found = true;
    problems->AddFile(dir, "pack not found");
    return std::nullopt;
  }
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
  std::optional<std::string> actions_real = os::RealPath(actions);
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

// The runtime of `action` (see ChooseRuntime), or nullptr with the line and the detail of the
// problem (after "runner_type: ").
const envs::RuntimeDefinition* ChooseRuntimeOrExplain(const Action& action,
                                                      const envs::RuntimeRegistry& runtimes,
                                                      int* line, std::string* detail) {
  if (!action.runner_type.empty()) {
    Result<const envs::RuntimeDefinition*> runtime = runtimes.Find(action.runner_type);
    if (runtime.ok()) return *runtime;
    *line = action.runner_type_line;
    *detail = runtime.error().message();
    std::string lower = action.runner_type;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "native" || lower == "builtin" || lower == "standalone") {
      *detail +=
          "; the original platform's native runner (a binary run directly) is not "
          "supported: packvisor runs scripts through a runtime's interpreter";
    }
    return nullptr;
  }
  std::string ext = fs::path(action.entry_point).extension().string();
  Result<const envs::RuntimeDefinition*> runtime = runtimes.FindByExtension(ext);
  if (runtime.ok()) return *runtime;
  *line = action.entry_point_line;
  *detail = "absent, and " + runtime.error().message();
  return nullptr;
}

// The text of a pack file: `given` when the caller has it (InspectPackText), else read from `path`.
std::optional<std::string> YamlText(const std::string& path, const std::string* given,
                                    Problems* problems) {
  if (given == nullptr) return ReadYamlFile(path, problems);
  if (given->size() > kMaxYamlBytes) {
    problems->AddFile(path, "larger than " + std::to_string(kMaxYamlBytes) + " bytes (refused)");
    return std::nullopt;
  }
  return *given;
}

// Parses pack.yaml (or `given`, its text) into `pack` (which keeps its defaults where a field is
// broken).
void ParseManifestUnguarded(const PackDir& dir, const std::string* given, Pack* pack,
                            Problems* problems) {
  pack->dir = dir.real;
  pack->ref = dir.name;
  FileContext ctx{dir.real + "/pack.yaml", problems};
  std::optional<std::string> text = YamlText(ctx.path, given, problems);
  if (!text) return;
  std::optional<YAML::Node> root = ParseYaml(ctx.path, *text, problems);
  if (!root) return;
  bool have_ref = false;
  ForEachKey(ctx, *root, "", kPackKeys, [&](const std::string& key, const YAML::Node& v) {
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
      return false;
    }
    return true;
  });
  if (!have_ref) ctx.Add(LineOf(*root), "ref", "missing (required; the pack's name)");
}

// Parses one action file (or `given`, its text). Returns the action when the file has no problem.
std::optional<Action> ParseActionUnguarded(const Pack& pack, const PackDir& dir,
                                           const std::string& yaml_path, const std::string& stem,
                                           const std::string* given,
                                           const envs::RuntimeRegistry* runtimes,
                                           Problems* problems) {
  size_t before = problems->errors();
  FileContext ctx{yaml_path, problems};
  std::optional<std::string> text = YamlText(yaml_path, given, problems);
  if (!text) return std::nullopt;
  std::optional<YAML::Node> root = ParseYaml(yaml_path, *text, problems);
  if (!root) return std::nullopt;
  Action action;
  action.source = yaml_path;
  Budget budget;
  std::optional<std::string> name;
  int name_line = LineOf(*root);
  std::optional<std::string> entry;
  bool name_reported = false;    // a problem about name/ref is already recorded
  bool entry_reported = false;   // same for entry_point
  bool runner_reported = false;  // same for runner_type
  ForEachKey(ctx, *root, "", ActionYamlKeys(), [&](const std::string& key, const YAML::Node& v) {
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
      std::optional<std::string> runner = GetString(ctx, v, key);
      if (!runner && !v.IsNull()) runner_reported = true;
      action.runner_type = runner.value_or("");
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
      ParseParameters(ctx, v, &budget, &action.parameters);
    } else {
      return false;
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

  // The runtime before the entry point: for an unsupported runner (the original's native), the
  // runner is the reason, whatever else is wrong with the file it names.
  if (entry) action.entry_point = *entry;
  if (runtimes != nullptr && !runner_reported && (entry || !action.runner_type.empty())) {
    int line = 0;
    std::string detail;
    if (const envs::RuntimeDefinition* runtime =
            ChooseRuntimeOrExplain(action, *runtimes, &line, &detail)) {
      action.runtime = runtime->name;
    } else {
      ctx.Add(line, "runner_type", detail);
    }
  }

  if (!entry) {
    if (!entry_reported) {
      ctx.Add(LineOf(*root), "entry_point", "missing (required; a file under actions/)");
    }
  } else if (!dir.actions_real.empty()) {
    Result<std::pair<std::string, std::string>> resolved =
        ResolveEntryPoint(dir.real, dir.actions_real, *entry);
    if (!resolved.ok()) {
      ctx.Add(action.entry_point_line, "entry_point", resolved.error().message());
    } else {
      action.entry_path = resolved->first;
      action.sandbox_entry_path = resolved->second;
    }
  }

  if (problems->errors() != before) return std::nullopt;
  return action;
}

// The two parsers above with a last line of defence: yaml-cpp reports some misuse by throwing,
// and no exception may leave this file.
void ParseManifest(const PackDir& dir, Pack* pack, Problems* problems,
                   const std::string* given = nullptr) {
  try {
    ParseManifestUnguarded(dir, given, pack, problems);
  } catch (const std::exception& e) {
    problems->AddFile(dir.real + "/pack.yaml", std::string("cannot load: ") + e.what());
  }
}

std::optional<Action> ParseAction(const Pack& pack, const PackDir& dir,
                                  const std::string& yaml_path, const std::string& stem,
                                  const envs::RuntimeRegistry* runtimes, Problems* problems,
                                  const std::string* given = nullptr) {
  try {
    return ParseActionUnguarded(pack, dir, yaml_path, stem, given, runtimes, problems);
  } catch (const std::exception& e) {
    problems->AddFile(yaml_path, std::string("cannot load: ") + e.what());
    return std::nullopt;
  }
}

// The action files of actions/: *.yaml and *.yml, not hidden, sorted by (stem, path).
// Returns (stem, path).
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
  return files;
}

// The first error of diagnostics[from..], with "(and N more problems)" when there are several.
std::string FirstError(const std::vector<Diagnostic>& diagnostics, size_t from = 0) {
  std::string first;
  size_t errors = 0;
  for (size_t i = from; i < diagnostics.size(); ++i) {
    if (diagnostics[i].severity != Severity::kError) continue;
    if (errors++ == 0) first = diagnostics[i].Text();
  }
  if (errors > 1) {
    first +=
        " (and " + std::to_string(errors - 1) + " more problem" + (errors > 2 ? "s" : "") + ")";
  }
  return first;
}

}  // namespace

std::string_view SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kNote:
      return "note";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      break;
  }
  return "error";
}

namespace {

std::string Location(const Diagnostic& d) {
  std::string text = d.file;
  if (d.line > 0) text += ":" + std::to_string(d.line);
  return text;
}

}  // namespace

std::string Diagnostic::Text() const {
  return Location(*this) + ": " + (key.empty() ? "" : key + ": ") + detail;
}

std::string Diagnostic::TextWithSeverity() const {
  return Location(*this) + ": " + std::string(SeverityName(severity)) + ": " +
         (key.empty() ? "" : key + ": ") + detail;
}

size_t CountErrors(const std::vector<Diagnostic>& diagnostics) {
  return static_cast<size_t>(
      std::count_if(diagnostics.begin(), diagnostics.end(),
                    [](const Diagnostic& d) { return d.severity == Severity::kError; }));
}

PackInspection detail::InspectPackText(
    const std::string& pack_dir, const std::string& pack_yaml,
    const std::vector<std::pair<std::string, std::string>>& actions,
    const envs::RuntimeRegistry* runtimes) {
  PackInspection inspection;
  Problems problems;
  Pack pack;
  PackDir dir;
  dir.real = pack_dir;
  dir.name = fs::path(pack_dir).filename().string();
  // dir.actions_real stays empty: entry points are not resolved.
  ParseManifest(dir, &pack, &problems, &pack_yaml);
  bool pack_is_broken = problems.errors() > 0;
  for (const auto& [stem, text] : actions) {
    size_t first = problems.diagnostics().size();
    std::string path = pack_dir + "/actions/" + stem + ".yaml";
    if (std::optional<Action> action =
            ParseAction(pack, dir, path, stem, runtimes, &problems, &text)) {
      pack.actions.push_back(std::move(*action));
    } else {
      pack.bad_actions.push_back(BadAction{stem, path, FirstError(problems.diagnostics(), first)});
    }
  }
  if (!pack_is_broken) inspection.pack = std::move(pack);
  inspection.diagnostics = std::move(problems.diagnostics());
  return inspection;
}

PackInspection InspectPack(const std::string& pack_dir, const envs::RuntimeRegistry* runtimes) {
  PackInspection inspection;
  Problems problems;
  Pack pack;
  std::optional<PackDir> dir = OpenPackDir(pack_dir, &problems, &inspection.not_found);
  if (dir) {
    ParseManifest(*dir, &pack, &problems);
    std::vector<std::pair<std::string, std::string>> files = ListActionFiles(*dir, &problems);
    bool pack_is_broken = problems.errors() > 0;
    for (size_t i = 0; i < files.size(); ++i) {
      const auto& [stem, path] = files[i];
      size_t first = problems.diagnostics().size();
      if (i + 1 < files.size() && files[i + 1].first == stem) {
        // actions/x.yaml and actions/x.yml: neither is the action x.
        problems.AddFile(files[i + 1].second, "defines the same action as " + path);
        pack.bad_actions.push_back(
            BadAction{stem, path, FirstError(problems.diagnostics(), first)});
        while (i + 1 < files.size() && files[i + 1].first == stem) ++i;
        continue;
      }
      if (std::optional<Action> action = ParseAction(pack, *dir, path, stem, runtimes, &problems)) {
        pack.actions.push_back(std::move(*action));
      } else {
        pack.bad_actions.push_back(
            BadAction{stem, path, FirstError(problems.diagnostics(), first)});
      }
    }
    std::sort(pack.actions.begin(), pack.actions.end(),
              [](const Action& a, const Action& b) { return a.name < b.name; });
    if (!pack_is_broken) inspection.pack = std::move(pack);
  }
  inspection.diagnostics = std::move(problems.diagnostics());
  return inspection;
}

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

const std::vector<std::string_view>& ActionYamlKeys() {
  static const std::vector<std::string_view> keys = {"name",
                                                     "ref",
                                                     "description",
                                                     "runner_type",
                                                     "entry_point",
                                                     "parameters",
                                                     "parameter_delivery",
                                                     "parameter_format",
                                                     "output_format",
                                                     "timeout_seconds",
                                                     "network",
                                                     "limits",
                                                     "enabled"};
  return keys;
}

bool IsValidPackRef(std::string_view ref) {
  // ^[a-z0-9][a-z0-9_-]{0,63}$
  return MatchesName(ref, Chars({kLowerAlpha, kDigits}), Chars({kLowerAlpha, kDigits, "_-"}), 63);
}

Result<Pack> LoadPack(const std::string& pack_dir, const envs::RuntimeRegistry* runtimes) {
  PackInspection inspection = InspectPack(pack_dir, runtimes);
  if (inspection.pack) return std::move(*inspection.pack);
  return Error{inspection.not_found ? ENOENT : 0, "", FirstError(inspection.diagnostics)};
}

std::vector<Diagnostic> ValidatePackDir(const std::string& dir,
                                        const envs::RuntimeRegistry* runtimes) {
  return InspectPack(dir, runtimes).diagnostics;
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
      listing.broken.push_back(
          BrokenPack{path, path + ": not a valid pack name (^[a-z0-9][a-z0-9_-]{0,63}$)"});
      continue;
    }
    PackInspection inspection = InspectPack(path, runtimes);
    if (!inspection.pack) {
      listing.broken.push_back(BrokenPack{path, FirstError(inspection.diagnostics)});
      continue;
    }
    listing.packs.push_back(std::move(*inspection.pack));
  }
  return listing;
}

Result<ActionRef> ParseActionRef(std::string_view action_ref) {
  size_t dot = action_ref.find('.');
  if (dot == std::string_view::npos) {
    return Failure("", "", "not of the form pack.action");
  }
  ActionRef ref{std::string(action_ref.substr(0, dot)), std::string(action_ref.substr(dot + 1))};
  if (!IsValidPackRef(ref.pack)) {
    return Failure("", "",
                   "pack " + Quote(ref.pack) + " does not match ^[a-z0-9][a-z0-9_-]{0,63}$");
  }
  if (!IsValidActionName(ref.action)) {
    return Failure(
        "", "",
        "action " + Quote(ref.action) + " does not match ^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$");
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
  if (problems.errors() > 0) return Failure("", "", FirstError(problems.diagnostics()));
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
                 "no such action in pack " + Quote(ref->pack) + " (no " + dir->actions_real + "/" +
                     ref->action + ".yaml)"};
  }
  std::optional<Action> action =
      ParseAction(resolved.pack, *dir, yaml_path, ref->action, runtimes, &problems);
  if (!action) return Failure("", "", FirstError(problems.diagnostics()));
  resolved.action = std::move(*action);
  return resolved;
}

Result<const envs::RuntimeDefinition*> ChooseRuntime(const Action& action,
                                                     const envs::RuntimeRegistry& runtimes) {
  int line = 0;
  std::string detail;
  if (const envs::RuntimeDefinition* runtime =
          ChooseRuntimeOrExplain(action, runtimes, &line, &detail)) {
    return runtime;
  }
  return Failure("", action.source + ":" + std::to_string(line), "runner_type: " + detail);
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

}  // namespace packvisor
