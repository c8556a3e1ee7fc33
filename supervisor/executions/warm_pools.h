// The daemon's prepared sandboxes (sandbox/warm_pool.h) from its configuration: which templates
// get sandboxes ready ahead of their claims. One pool holds every template; a claim takes a
// sandbox whose key (WarmPool::KeyOf) matches its spec.
//   - the exec sandbox (POST /v1/exec, `packvisor exec`'s spec): BaseSandboxSpec's default ids,
//     network none;
//   - each pack of server.warm_packs: the pack's tenancy ids (HostIdsForPack), network none, and
//     network host as well when the pack is in sandbox.host_network_packs.
// Each template gets `warm_sandboxes` sandboxes; 0 disables pooling (no pool, no zygote).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sandbox/os/error.h"
#include "sandbox/spec.h"
#include "sandbox/warm_pool.h"
#include "supervisor/config/config.h"

namespace packvisor {

// The templates for `config`: a pack ref whose ids cannot be allocated is an error naming it.
Result<std::vector<sandbox::SandboxSpec>> WarmPoolTemplates(
    const Config& config, const std::vector<std::string>& warm_packs);

// At daemon start, on the main thread, before any request is read and before any other thread
// is started (the zygote is forked here: see sandbox/warm_pool.h). Null when warm_sandboxes is 0.
// The daemon passes config.server.warm_sandboxes and config.server.warm_packs.
Result<std::unique_ptr<sandbox::WarmPool>> CreateWarmPools(
    const Config& config, int warm_sandboxes, const std::vector<std::string>& warm_packs);

// On SIGHUP: the pool's templates from the new configuration; every unclaimed sandbox of the old
// ones is killed. A pool created with 0 sandboxes stays absent until a restart (the zygote must
// come from a process that has read no request).
Result<void> ReconfigureWarmPools(sandbox::WarmPool& pool, const Config& config, int warm_sandboxes,
                                  const std::vector<std::string>& warm_packs);

}  // namespace packvisor
