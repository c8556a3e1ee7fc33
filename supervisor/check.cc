#include "supervisor/check.h"

#include <cstdio>

namespace packvisor {

int RunCheckCommand(const Config&) {
  std::puts("check: not implemented yet");
  return 1;
}

}  // namespace packvisor
