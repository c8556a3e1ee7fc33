#include "supervisor/cli/pack_commands.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "envs/environment.h"
#include "sandbox/os/syscalls.h"
#include "supervisor/cli/env_commands.h"
#include "supervisor/config/builtin_runtimes.h"
#include "supervisor/config/sandbox_defaults.h"
#include "supervisor/executions/environments.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/packs/pack_checks.h"

namespace packvisor {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "packvisor: error: %s\n", message.c_str());
  return kExitOwnError;
}

int NotFound(const std::string& dir) {
  std::fprintf(stderr, "packvisor: error: %s: pack not found\n", dir.c_str());
  return kExitNotFound;
}

// A diagnostic about `action` from an error message that may start with "source:line: " or
// "source: " (ResolveLimits', EffectiveNetwork's): the location becomes the diagnostic's.
Diagnostic ActionError(const Action& action, int line, const std::string& message) {
  for (const std::string& prefix :
       {action.source + ":" + std::to_string(line) + ": ", action.source + ": "}) {
    if (message.compare(0, prefix.size(), prefix) == 0) {
      return Diagnostic{Severity::kError, action.source, line, "", message.substr(prefix.size())};
    }
  }
  return Diagnostic{Severity::kError, action.source, line, "", message};
}

std::string Plural(size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

nlohmann::ordered_json PackJson(const Pack& pack) {
  nlohmann::ordered_json actions = nlohmann::ordered_json::array();
  for (const Action& action : pack.actions) {
    actions.push_back({{"name", action.name},
                       {"ref", action.action_ref},
                       {"runtime", action.runtime},
                       {"entry_point", action.entry_point},
                       {"enabled", action.enabled},
                       {"source", action.source}});
  }
  nlohmann::ordered_json bad = nlohmann::ordered_json::array();
  for (const BadAction& action : pack.bad_actions) {
    bad.push_back({{"name", action.name},
                   {"ref", pack.ref + "." + action.name},
                   {"source", action.source},
                   {"reason", action.reason}});
  }
  return {{"ref", pack.ref}, {"version", pack.version}, {"description", pack.description},
          {"dir", pack.dir}, {"actions", actions},      {"bad_actions", bad}};
}

}  // namespace

std::vector<Diagnostic> CheckAgainstConfig(const Config& config,
                                           const envs::RuntimeRegistry& runtimes, Pack* pack) {
  std::vector<Diagnostic> errors;
  std::vector<Action> good;
  const SandboxIdRange ids{config.sandbox.uid_range_first, config.sandbox.uid_range_last};
  for (Action& action : pack->actions) {
    size_t before = errors.size();
    if (std::optional<Diagnostic> unreadable = CheckSandboxCanRead(*pack, action, ids)) {
      errors.push_back(std::move(*unreadable));
    }
    if (Result<const envs::RuntimeDefinition*> runtime = ChooseRuntime(action, runtimes)) {
      Result<EffectiveLimits> limits =
          ResolveLimits(config, (*runtime)->limits,
                        "runtime " + (*runtime)->name + " (" + (*runtime)->source + ")",
                        action.limits, action.source);
      if (!limits.ok()) {
        errors.push_back(ActionError(action, action.limits_line, limits.error().message()));
      }
    }
    Result<NetworkMode> network =
        EffectiveNetwork(action, pack->ref, config.sandbox.host_network_packs);
    if (!network.ok()) {
      errors.push_back(ActionError(action, action.network_line, network.error().message()));
    }
    if (errors.size() == before) {
      good.push_back(std::move(action));
      continue;
    }
    std::string reason = errors[before].Text();
    if (errors.size() - before > 1) {
      reason += " (and " + Plural(errors.size() - before - 1, "more problem") + ")";
    }
    pack->bad_actions.push_back(BadAction{action.name, action.source, reason});
  }
  pack->actions = std::move(good);
  std::sort(pack->bad_actions.begin(), pack->bad_actions.end(),
            [](const BadAction& a, const BadAction& b) { return a.name < b.name; });
  return errors;
}

int RunPackListCommand(const Config& config, bool json) {
  auto runtimes = LoadRuntimeRegistry(config);
  if (!runtimes) return Fail(runtimes.error().message());
  auto listing = ListPacks(config.packs_base_dir, &*runtimes);
  if (!listing) return Fail(listing.error().message());
  bool all_good = listing->broken.empty();
  for (Pack& pack : listing->packs) {
    (void)CheckAgainstConfig(config, *runtimes, &pack);
    all_good = all_good && pack.bad_actions.empty();
  }
  if (json) {
    nlohmann::ordered_json packs = nlohmann::ordered_json::array();
    for (const Pack& pack : listing->packs) packs.push_back(PackJson(pack));
    nlohmann::ordered_json broken = nlohmann::ordered_json::array();
    for (const BrokenPack& pack : listing->broken) {
      broken.push_back({{"dir", pack.dir}, {"reason", pack.reason}});
    }
    std::cout << nlohmann::ordered_json{{"packs", packs}, {"broken_packs", broken}}.dump(2)
              << std::endl;
    return all_good ? 0 : 1;
  }
  for (const Pack& pack : listing->packs) {
    std::printf("%s %s  %s\n", pack.ref.c_str(), pack.version.c_str(), pack.description.c_str());
    for (const Action& action : pack.actions) {
      std::printf("  %-32s %-8s %s%s\n", action.action_ref.c_str(), action.runtime.c_str(),
                  action.entry_point.c_str(), action.enabled ? "" : "  (disabled)");
    }
    for (const BadAction& action : pack.bad_actions) {
      std::printf("  %-32s %-8s %s\n", (pack.ref + "." + action.name).c_str(), "BAD",
                  action.reason.c_str());
    }
  }
  for (const BrokenPack& pack : listing->broken) {
    std::fprintf(stderr, "packvisor: %s\n", pack.reason.c_str());
  }
  return all_good ? 0 : 1;
}

int RunPackValidateCommand(const Config& config, const std::string& dir) {
  auto runtimes = LoadRuntimeRegistry(config);
  if (!runtimes) return Fail(runtimes.error().message());
  PackInspection inspection = InspectPack(dir, &*runtimes);
  if (inspection.not_found) return NotFound(dir);
  std::vector<Diagnostic>& diagnostics = inspection.diagnostics;
  if (inspection.pack) {
    for (Diagnostic& error : CheckAgainstConfig(config, *runtimes, &*inspection.pack)) {
      diagnostics.push_back(std::move(error));
    }
    for (const Action& action : inspection.pack->actions) {
      for (Diagnostic& warning : FindUndeclaredParameters(action)) {
        diagnostics.push_back(std::move(warning));
      }
    }
  }
  size_t counts[3] = {};
  for (const Diagnostic& d : diagnostics) {
    ++counts[static_cast<int>(d.severity)];
    std::printf("%s\n", d.TextWithSeverity().c_str());
  }
  size_t notes = counts[static_cast<int>(Severity::kNote)];
  size_t warnings = counts[static_cast<int>(Severity::kWarning)];
  size_t errors = counts[static_cast<int>(Severity::kError)];
  std::string summary = dir + ": " + (errors == 0 ? "ok" : Plural(errors, "error")) + " (" +
                        Plural(warnings, "warning") + ", " + Plural(notes, "note");
  if (inspection.pack) {
    summary += "; " + Plural(inspection.pack->actions.size(), "good action") + ", " +
               std::to_string(inspection.pack->bad_actions.size()) + " bad";
  }
  std::printf("%s)\n", summary.c_str());
  return errors == 0 ? 0 : 1;
}

int RunPackRegisterCommand(const Config& config, const std::string& dir) {
  auto runtimes = LoadRuntimeRegistry(config);
  if (!runtimes) return Fail(runtimes.error().message());
  PackInspection inspection = InspectPack(dir, &*runtimes);
  if (inspection.not_found) return NotFound(dir);
  // Notes (ignored keys) are for `pack validate`; warnings and errors are shown here too.
  for (const Diagnostic& d : inspection.diagnostics) {
    if (d.severity != Severity::kNote) std::printf("%s\n", d.TextWithSeverity().c_str());
  }
  if (!inspection.pack) return 1;
  Pack& pack = *inspection.pack;
  // Executions find packs under packs_base_dir: registering one that is elsewhere would build an
  // environment no execution uses.
  std::string expected = config.packs_base_dir + "/" + pack.ref;
  if (os::RealPath(expected) != pack.dir) {
    return Fail("pack register: " + dir + " is not " + expected +
                " (packs run from packs_base_dir; copy the pack there first)");
  }
  for (const Diagnostic& error : CheckAgainstConfig(config, *runtimes, &pack)) {
    std::printf("%s\n", error.TextWithSeverity().c_str());
  }
  if (pack.bad_actions.empty()) {
    std::printf("%s: valid (%s)\n", pack.ref.c_str(),
                Plural(pack.actions.size(), "action").c_str());
  } else {
    std::printf("%s: %s registered, %zu bad\n", pack.ref.c_str(),
                Plural(pack.actions.size(), "action").c_str(), pack.bad_actions.size());
  }
  std::vector<std::string> problems;  // none: a good action's runtime is known
  int failures =
      SetUpEnvironments(config, pack, RuntimesWithEnvironment(pack, *runtimes, &problems));
  for (const std::string& problem : problems)
    std::fprintf(stderr, "packvisor: %s\n", problem.c_str());
  failures += static_cast<int>(problems.size());
  for (const BadAction& action : pack.bad_actions) {
    std::fprintf(stderr, "packvisor: error: %s.%s not registered: %s\n", pack.ref.c_str(),
                 action.name.c_str(), action.reason.c_str());
  }
  return failures == 0 && pack.bad_actions.empty() ? 0 : 1;
}

}  // namespace packvisor
