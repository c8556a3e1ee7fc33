// `packvisor pack list|validate|register` (SPEC §8).
//
// All three load packs the same way (InspectPack: one bad action never hides the rest of its
// pack) and apply the same checks against the configuration, so an action `run` would refuse is
// "bad" in each: an error of its YAML, a script the sandbox user cannot read, limits above the
// configured ceilings, or a host network the operator does not grant. A DIR argument is resolved
// against the current directory. Exit statuses: 0 when all is well; 1 when a pack or an action is
// bad (or, for register, an environment failed); 125 packvisor's own error (configuration,
// runtime definitions, a pack outside packs_base_dir); 127 when DIR does not exist.
#pragma once

#include <string>
#include <vector>

#include "envs/runtime.h"
#include "supervisor/config/config.h"
#include "supervisor/packs/packs.h"

namespace packvisor {

// `pack list [--json]`: every pack under packs_base_dir with its actions, bad actions marked with
// their reason; `--json` prints one JSON document instead (docs/packs-and-runtimes.md).
int RunPackListCommand(const Config& config, bool json);

// `pack validate DIR`: every note, warning and error, one per line, then a summary line.
int RunPackValidateCommand(const Config& config, const std::string& dir);

// `pack register DIR`: validate, then set up the environments of the good actions' runtimes;
// the bad actions are named on stderr and make the exit status 1.
int RunPackRegisterCommand(const Config& config, const std::string& dir);

// The errors `run` would give the good actions of `pack` beyond their YAML (the script's
// permissions for the sandbox user, limits against the ceilings, the host network). The actions
// concerned move from pack->actions to pack->bad_actions.
std::vector<Diagnostic> CheckAgainstConfig(const Config& config,
                                           const envs::RuntimeRegistry& runtimes, Pack* pack);

}  // namespace packvisor
