// The supervisor's side of environments: settings from the configuration, and the `env`
// commands.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "envs/environment.h"
#include "supervisor/config.h"
#include "supervisor/packs.h"

namespace packvisor {

envs::EnvironmentSettings EnvironmentSettingsFrom(const Config& config);
// The same, with the pack's own host ids (builds run as the pack; its environments are its own).
Result<envs::EnvironmentSettings> EnvironmentSettingsForPack(const Config& config,
                                                             const std::string& pack_ref);

// The runtimes with an environment that the pack's (good) actions use, each once, in action
// order; an action whose runtime cannot be chosen adds its error to `problems`.
std::vector<const envs::RuntimeDefinition*> RuntimesWithEnvironment(
    const Pack& pack, const envs::RuntimeRegistry& runtimes, std::vector<std::string>* problems);

// Best effort: sets up each of `runtimes`' environments of `pack` (built, or found ready), each
// reported on one line (stdout when ready, stderr when it failed). Returns how many failed.
int SetUpEnvironments(const Config& config, const Pack& pack,
                      const std::vector<const envs::RuntimeDefinition*>& runtimes,
                      envs::Rebuild rebuild = envs::Rebuild::kWhenNeeded);

// `env setup PACK [--runtime R] [--force]`: 127 when the pack is not in packs_base_dir; --force
// rebuilds even a ready environment or one whose build failed for the same digest.
int RunEnvSetupCommand(const Config& config, const std::string& pack_ref,
                       const std::optional<std::string>& runtime, bool force = false);
// `env list [--json]`: a table, or one JSON array of {pack, runtime, state, digest, size_bytes,
// last_used, path, error, failed_at}.
int RunEnvListCommand(const Config& config, bool json = false);
// `env rm PACK[/RUNTIME]`: 127 when there is nothing of that name to remove.
int RunEnvRemoveCommand(const Config& config, const std::string& target);

}  // namespace packvisor
