// The `env` commands (SPEC §8) and the terminal-reporting setup of a pack's environments that
// `env setup` and `pack register` share, over supervisor/executions/environments.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "envs/environment.h"
#include "supervisor/config/config.h"
#include "supervisor/packs/packs.h"

namespace packvisor {

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
