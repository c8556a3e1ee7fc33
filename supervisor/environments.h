// The supervisor's side of environments: settings from the configuration, and the `env`
// commands.
#pragma once

#include <optional>
#include <string>

#include "envs/environment.h"
#include "supervisor/config.h"

namespace packvisor {

envs::EnvironmentSettings EnvironmentSettingsFrom(const Config& config);
// The same, with the pack's own host ids (builds run as the pack; its environments are its own).
Result<envs::EnvironmentSettings> EnvironmentSettingsForPack(const Config& config,
                                                             const std::string& pack_ref);

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
