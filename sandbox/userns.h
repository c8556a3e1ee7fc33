// User namespace id maps. Parent side only: the supervisor, as root in the initial namespace,
// writes the maps of the child, which waits for them before changing its ids.
#pragma once

#include <sys/types.h>

#include <string>

#include "sandbox/os/error.h"
#include "sandbox/spec.h"

namespace packvisor::sandbox {

// The text of one uid_map/gid_map line: "inside host 1\n".
std::string IdMapLine(unsigned inside, unsigned host);

// Writes /proc/<pid>/uid_map and gid_map. setgroups stays "allow" so that the child can drop the
// supplementary groups it inherited from root with setgroups(0, NULL) before it drops CAP_SETGID.
Result<void> WriteIdMaps(pid_t child, const IdMapping& ids);

}  // namespace packvisor::sandbox
