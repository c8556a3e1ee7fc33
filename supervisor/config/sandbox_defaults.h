// How the supervisor turns its configuration into the parts of a SandboxSpec that every launch
// shares: ids, limits, timeouts and the environment of SPEC §6.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "envs/runtime.h"
#include "sandbox/os/error.h"
#include "sandbox/spec.h"
#include "supervisor/config/config.h"

namespace packvisor {

// Limits, timeouts and the default id mapping from the configuration.
sandbox::SandboxSpec BaseSandboxSpec(const Config& config);

// The cgroup limits one execution runs with.
struct EffectiveLimits {
  uint64_t memory_mb = 0;
  uint64_t pids = 0;
  uint64_t cpu_percent = 0;
};

// What a runtime definition and then an action ask for: each field is the action's, else the
// runtime's, else the configuration's default. A request above the configuration's ceiling is an
// error naming the file, the key and the ceiling; nothing is clamped silently.
Result<EffectiveLimits> ResolveLimits(const Config& config, const envs::LimitRequest& runtime,
                                      const std::string& runtime_source,
                                      const envs::LimitRequest& action,
                                      const std::string& action_source);

// Sets the cgroup limits (when `spec` has a cgroup) and RLIMIT_NPROC of `spec`.
void ApplyLimits(const EffectiveLimits& limits, sandbox::SandboxSpec* spec);

// The sandbox environment of SPEC §6: PATH (with /env/bin first when env_dir has a bin), HOME,
// LANG, TMPDIR, then `extra` (runtime env_vars and PACKVISOR_* variables, in order), then the
// variables of sandbox.passthrough_env that are set in the supervisor's own environment.
std::vector<std::string> SandboxEnvironment(
    const Config& config, const std::string& env_dir,
    const std::vector<std::pair<std::string, std::string>>& extra);

// The execution's context variables of SPEC §6: each (NAME, value), NAME one of
// kContextVariableNames, as PACKVISOR_NAME and, with the same value, ATTUNE_NAME (packs of the
// original platform read those).
std::vector<std::pair<std::string, std::string>> ContextVariables(
    const std::vector<std::pair<std::string, std::string>>& values);

}  // namespace packvisor
