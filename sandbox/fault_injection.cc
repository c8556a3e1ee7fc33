#include "sandbox/fault_injection.h"

#include <cstdlib>
#include <cstring>

namespace packvisor::sandbox {

#ifdef PACKVISOR_TEST_HOOKS
FaultInjection FaultInjectionForLaunch() {
  FaultInjection faults;
  if (const char* fail = std::getenv("PACKVISOR_TEST_FAIL_STEP")) {
    faults.fail_step = SetupStepFromToken(fail);
  }
  if (const char* skip = std::getenv("PACKVISOR_TEST_SKIP_STEP")) {
    faults.skip_step = SetupStepFromToken(skip);
  }
  const char* verify = std::getenv("PACKVISOR_TEST_SKIP_VERIFY");
  faults.skip_verification = verify != nullptr && std::strcmp(verify, "1") == 0;
  return faults;
}
#else
FaultInjection FaultInjectionForLaunch() { return {}; }
#endif

}  // namespace packvisor::sandbox
