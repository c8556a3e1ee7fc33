#include "supervisor/config/tenancy.h"

#include <fcntl.h>

#include <map>
#include <sstream>

#include "envs/environment.h"
#include "envs/lock.h"
#include "envs/safe_fs.h"

namespace packvisor {

sandbox::IdMapping HostIdsForExec(const Config& config) {
  sandbox::IdMapping ids;
  ids.host_uid = config.sandbox.uid_range_first;
  ids.host_gid = config.sandbox.uid_range_first;
  return ids;
}

Result<sandbox::IdMapping> HostIdsForPack(const Config& config, const std::string& pack_ref) {
  PV_TRY(envs::CheckEnvironmentNames(pack_ref, "ids"));
  auto state = envs::OpenDirPath(config.state_dir, true, 0755);
  if (!state) return state.error();
  auto lock = envs::FileLock::Acquire(config.state_dir + "/ids.lock", std::chrono::seconds(30));
  if (!lock) return lock.error();

  std::map<std::string, uid_t> allocated;
  std::map<uid_t, std::string> owners;
  auto text = envs::ReadSmallFileAt(state->get(), "ids", 16 << 20);
  if (!text && text.error().err != ENOENT) return text.error();
  if (text) {
    std::istringstream in(*text);
    std::string ref;
    unsigned long id = 0;
    while (in >> ref >> id) {
      allocated[ref] = static_cast<uid_t>(id);
      owners[static_cast<uid_t>(id)] = ref;
    }
  }
  auto found = allocated.find(pack_ref);
  uid_t id = 0;
  if (found != allocated.end()) {
    id = found->second;
    if (id <= config.sandbox.uid_range_first || id > config.sandbox.uid_range_last) {
      return Failure("host id of pack", pack_ref,
                     "persisted id " + std::to_string(id) +
                         " is outside sandbox.uid_range; "
                         "remove it from " +
                         config.state_dir + "/ids after checking its files");
    }
  } else {
    for (uid_t candidate = config.sandbox.uid_range_first + 1;
         candidate <= config.sandbox.uid_range_last && candidate != 0; ++candidate) {
      if (!owners.count(candidate)) {
        id = candidate;
        break;
      }
    }
    if (id == 0) {
      return Failure("host id of pack", pack_ref,
                     "sandbox.uid_range is exhausted (" + std::to_string(allocated.size()) +
                         " packs); widen it");
    }
    allocated[pack_ref] = id;
    std::string content;
    for (const auto& [ref, value] : allocated) content += ref + " " + std::to_string(value) + "\n";
    PV_TRY(envs::WriteFileAtomicAt(state->get(), "ids", content));
  }
  sandbox::IdMapping ids;
  ids.host_uid = id;
  ids.host_gid = id;
  return ids;
}

}  // namespace packvisor
