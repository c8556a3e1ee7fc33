// Tenant separation by host identity: every pack gets its own unprivileged host uid/gid from
// sandbox.uid_range, allocated once and persisted in {state_dir}/ids (one "pack_ref id" line
// each, rewritten atomically under an flock). The first id of the range is reserved for
// `packvisor exec` (ad-hoc commands belong to no pack); packs get the following ones.
#pragma once

#include <string>

#include "sandbox/os/error.h"
#include "sandbox/spec.h"
#include "supervisor/config/config.h"

namespace packvisor {

Result<sandbox::IdMapping> HostIdsForPack(const Config& config, const std::string& pack_ref);

// The ids of `packvisor exec`.
sandbox::IdMapping HostIdsForExec(const Config& config);

}  // namespace packvisor
