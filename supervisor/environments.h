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

int RunEnvSetupCommand(const Config& config, const std::string& pack_ref,
                       const std::optional<std::string>& runtime);
int RunEnvListCommand(const Config& config);
int RunEnvRemoveCommand(const Config& config, const std::string& target);

}  // namespace packvisor
