// Runtime definitions (config/runtimes/*.toml, runtimes_dir): ParseRuntimeDefinition on any text.
// Invariants: a refusal is one clean line naming the file; nothing throws; an accepted definition
// can build its commands (every template it holds substitutes with the sandbox's values); and
// TomlNestsDeeperThan, which guards toml++ from deep documents, never undercounts: a text it
// passes parses to tables and arrays no deeper than it allowed.
#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "envs/document_limits.h"
#include "envs/runtime.h"
#include "fuzz/fuzz_support.h"

namespace {

using packvisor::fuzz::CheckOneLineMessage;
namespace envs = packvisor::envs;

constexpr char kSource[] = "/fuzz/runtimes/lang.toml";

// How deep tables and arrays nest under `root` (a table or array directly in it is at depth 1),
// counted iteratively: when the guard undercounts, a recursive walk could itself overflow.
int Depth(const toml::table& root) {
  int deepest = 0;
  std::vector<std::pair<const toml::node*, int>> stack = {{&root, 0}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    if (const toml::table* table = node->as_table()) {
      deepest = std::max(deepest, depth);
      for (const auto& [key, child] : *table) stack.emplace_back(&child, depth + 1);
    } else if (const toml::array* array = node->as_array()) {
      deepest = std::max(deepest, depth);
      for (const toml::node& child : *array) stack.emplace_back(&child, depth + 1);
    }
  }
  return deepest;
}

void CheckDepthGuard(std::string_view text) {
  if (packvisor::TomlNestsDeeperThan(text, packvisor::kMaxTomlDepth)) return;
  if (packvisor::TomlUnsafeCharacterLine(text) != 0) return;
  try {
    toml::table root = toml::parse(text, std::string_view(kSource));
    int depth = Depth(root);
    PV_FUZZ_CHECK(depth <= packvisor::kMaxTomlDepth,
                  "TomlNestsDeeperThan passed a document " + std::to_string(depth) + " deep");
  } catch (const toml::parse_error&) {
    // Refused: toml++ freed what it had built (no deeper than the guard allowed).
  }
}

void CheckUsable(const envs::RuntimeDefinition& runtime) {
  for (envs::CommandPhase phase :
       {envs::CommandPhase::kCreate, envs::CommandPhase::kInstall, envs::CommandPhase::kExecute}) {
    auto interpreter = envs::InterpreterFor(runtime, phase);
    PV_FUZZ_CHECK(interpreter.ok(), "no interpreter: " + interpreter.error().message());
    PV_FUZZ_CHECK(!interpreter->empty() && (*interpreter)[0] == '/',
                  "the interpreter is not an absolute path: " + *interpreter);
  }
  envs::TemplateValues create = envs::SandboxTemplateValues(runtime, envs::CommandPhase::kCreate);
  if (runtime.environment) {
    auto argv = envs::SubstituteArgv(runtime.environment->create_command, create);
    PV_FUZZ_CHECK(argv.ok(), "create_command: " + argv.error().message());
  }
  envs::TemplateValues install = envs::SandboxTemplateValues(runtime, envs::CommandPhase::kInstall);
  if (runtime.dependencies) {
    auto argv = envs::SubstituteArgv(runtime.dependencies->install_command, install);
    PV_FUZZ_CHECK(argv.ok(), "install_command: " + argv.error().message());
  }
  envs::TemplateValues execute =
      envs::SandboxTemplateValues(runtime, envs::CommandPhase::kExecute,
                                  "/pack/actions/a" + runtime.interpreter.file_extension);
  auto args = envs::SubstituteArgv(runtime.interpreter.args, execute);
  PV_FUZZ_CHECK(args.ok(), "interpreter.args: " + args.error().message());
  std::map<std::string, std::string> env = {{"PATH", "/usr/bin:/bin"}};
  auto applied = envs::ApplyEnvVars(runtime, execute, &env);
  PV_FUZZ_CHECK(applied.ok(), "env_vars: " + applied.error().message());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = packvisor::fuzz::AsText(data, size);
  packvisor::fuzz::NoThrow("ParseRuntimeDefinition", [&] {
    auto runtime = envs::ParseRuntimeDefinition(text, kSource);
    if (!runtime) {
      std::string message = runtime.error().message();
      CheckOneLineMessage(message);
      PV_FUZZ_CHECK(message.rfind(std::string(kSource) + ":", 0) == 0,
                    "the refusal does not start with the file: " + message);
    } else {
      PV_FUZZ_CHECK(runtime->source == kSource, runtime->source);
      CheckUsable(*runtime);
    }
  });
  packvisor::fuzz::NoThrow("toml::parse", [&] { CheckDepthGuard(text); });
  return 0;
}
