// The supervisor's side of environments: their settings from the configuration (per pack, with
// its host ids), and which runtimes of a pack have one. No printing: the `env` commands and the
// setup that reports on the terminal are the CLI's (supervisor/cli/env_commands.h).
#pragma once

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

}  // namespace packvisor
