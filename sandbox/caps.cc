#include "sandbox/caps.h"

#include <linux/securebits.h>
#include <sys/prctl.h>

#include <cerrno>

namespace packvisor::sandbox {

Result<CapabilityPlan> CapabilityPlan::Create() {
  cap_t empty = cap_init();
  if (empty == nullptr) return ErrnoError("cap_init");
  return CapabilityPlan(empty, static_cast<int>(cap_max_bits()) - 1);
}

CapabilityPlan::CapabilityPlan(CapabilityPlan&& other) noexcept
    : empty_(other.empty_), last_cap_(other.last_cap_) {
  other.empty_ = nullptr;
}

CapabilityPlan::~CapabilityPlan() {
  if (empty_ != nullptr) cap_free(empty_);
}

int CapabilityPlan::LockSecurebits() const {
  constexpr unsigned long kLockedBits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
                                        SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                                        SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                                        SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  static_assert(kLockedBits == kLockedSecurebits);
  return prctl(PR_SET_SECUREBITS, kLockedBits, 0, 0, 0) == 0 ? 0 : errno;
}

int CapabilityPlan::DropBounding() const {
  for (int cap = 0; cap <= last_cap_; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  }
  return 0;
}

int CapabilityPlan::ClearAmbient() const {
  return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0 ? 0 : errno;
}

int CapabilityPlan::DropSets() const { return cap_set_proc(empty_) == 0 ? 0 : errno; }

}  // namespace packvisor::sandbox
