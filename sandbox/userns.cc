#include "sandbox/userns.h"

#include "sandbox/os/syscalls.h"

namespace packvisor::sandbox {

std::string IdMapLine(unsigned inside, unsigned host) {
  return std::to_string(inside) + " " + std::to_string(host) + " 1\n";
}

Result<void> WriteIdMaps(pid_t child, const IdMapping& ids) {
  std::string proc = "/proc/" + std::to_string(child);
  PV_TRY(os::WriteFile(proc + "/uid_map", IdMapLine(ids.inside_uid, ids.host_uid)));
  PV_TRY(os::WriteFile(proc + "/gid_map", IdMapLine(ids.inside_gid, ids.host_gid)));
  return Ok{};
}

}  // namespace packvisor::sandbox
