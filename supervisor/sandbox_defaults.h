// How the supervisor turns its configuration into the parts of a SandboxSpec that every launch
// shares: ids, limits, timeouts and the environment of SPEC §6.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sandbox/spec.h"
#include "supervisor/config.h"

namespace packvisor {

// Limits, timeouts and the default id mapping from the configuration.
sandbox::SandboxSpec BaseSandboxSpec(const Config& config);

// The sandbox environment of SPEC §6: PATH (with /env/bin first when env_dir has a bin), HOME,
// LANG, TMPDIR, then `extra` (runtime env_vars and PACKVISOR_* variables, in order), then the
// variables of sandbox.passthrough_env that are set in the supervisor's own environment.
std::vector<std::string> SandboxEnvironment(const Config& config, const std::string& env_dir,
                                            const std::vector<std::pair<std::string, std::string>>& extra);

}  // namespace packvisor
