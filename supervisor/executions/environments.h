// The supervisor's side of environments: their settings from the configuration (per pack, with
// its host ids), and which runtimes of a pack have one. No printing: the `env` commands and the
// setup that reports on the terminal are the CLI's (supervisor/cli/env_commands.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "envs/environment.h"
#include "supervisor/config/config.h"
#include "supervisor/packs/packs.h"

namespace packvisor {

envs::EnvironmentSettings EnvironmentSettingsFrom(const Config& config);
// The same, with the pack's own host ids (builds run as the pack; its environments are its own).
Result<envs::EnvironmentSettings> EnvironmentSettingsForPack(const Config& config,
                                                             const std::string& pack_ref);

// The runtimes with an environment that the pack's (good) actions use, each once, in action
// order; an action whose runtime cannot be chosen adds its error to `problems`.
std::vector<const envs::RuntimeDefinition*> RuntimesWithEnvironment(
    const Pack& pack, const envs::RuntimeRegistry& runtimes, std::vector<std::string>* problems);

// What `env setup` (and the daemon's POST /v1/envs/{pack}) did for one runtime of a pack.
struct EnvironmentOutcome {
  std::string runtime;
  std::string status;  // "built", "ready", "failed", or "none" (the runtime has no environment)
  std::string path;    // the environment's directory when built or ready
  std::string error;   // when failed
};

struct PackEnvironmentsReport {
  std::string pack_ref;
  bool pack_found = true;  // false: no directory packs_base_dir/pack_ref (nothing else is set)
  std::vector<EnvironmentOutcome> environments;
  // Actions whose runtime cannot be chosen (their environments are not built).
  std::vector<std::string> problems;
  bool ok() const;  // no failure and no problem
};

// Builds (or checks, when ready) the environments of the pack `pack_ref` under packs_base_dir:
// every runtime with an environment its actions use, or only `runtime_name`. `force` rebuilds
// even a ready environment or one whose build failed. An Error when nothing could be attempted:
// an invalid pack ref, a pack that does not load, an unknown runtime. No printing.
Result<PackEnvironmentsReport> SetUpPackEnvironments(const Config& config,
                                                     const envs::RuntimeRegistry& runtimes,
                                                     const std::string& pack_ref,
                                                     const std::optional<std::string>& runtime_name,
                                                     bool force);

}  // namespace packvisor
