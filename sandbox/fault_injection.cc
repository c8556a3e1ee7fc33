#include "sandbox/fault_injection.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace packvisor::sandbox {

#ifdef PACKVISOR_TEST_HOOKS
FaultInjection FaultInjectionForLaunch() {
  FaultInjection faults;
  if (const char* fail = std::getenv("PACKVISOR_TEST_FAIL_STEP")) {
    faults.fail_step = SetupStepFromToken(fail);
  }
  if (const char* skip = std::getenv("PACKVISOR_TEST_SKIP_STEP")) {
    std::string_view tokens(skip);
    while (!tokens.empty()) {
      std::string token(tokens.substr(0, tokens.find(',')));
      tokens.remove_prefix(std::min(tokens.size(), token.size() + 1));
      auto bit = static_cast<uint32_t>(SetupStepFromToken(token.c_str()));
      if (bit != 0 && bit < 64) faults.skipped_steps |= uint64_t{1} << bit;
    }
  }
  const char* verify = std::getenv("PACKVISOR_TEST_SKIP_VERIFY");
  faults.skip_verification = verify != nullptr && std::strcmp(verify, "1") == 0;
  const char* no_cgroup = std::getenv("PACKVISOR_TEST_NO_CGROUP");
  faults.no_cgroup = no_cgroup != nullptr && std::strcmp(no_cgroup, "1") == 0;
  return faults;
}

std::string PackDiskSourceOverride() {
  const char* source = std::getenv("PACKVISOR_TEST_PACK_DISK_SOURCE");
  return source == nullptr ? std::string() : std::string(source);
}
#else
FaultInjection FaultInjectionForLaunch() { return {}; }
std::string PackDiskSourceOverride() { return {}; }
#endif

}  // namespace packvisor::sandbox
