// Capabilities and securebits. The parent prepares an empty capability set (libcap allocates);
// the child applies it without allocating.
#pragma once

#include <sys/capability.h>

#include "sandbox/os/error.h"
#include "sandbox/report.h"

namespace packvisor::sandbox {

// The securebits LockSecurebits sets (all locked); the verification expects exactly these.
inline constexpr int kLockedSecurebits = 0xef;

class CapabilityPlan {
 public:
  static Result<CapabilityPlan> Create();
  CapabilityPlan(CapabilityPlan&& other) noexcept;
  CapabilityPlan& operator=(CapabilityPlan&&) = delete;
  ~CapabilityPlan();

  // Child side, in this order; each returns 0 or an errno.
  // Securebits: no root privileges for uid 0, no setuid fixups, no keep-caps, no ambient raise,
  // all locked. Needs CAP_SETPCAP.
  int LockSecurebits() const;
  // The bounding set: needs CAP_SETPCAP, so before DropSets.
  int DropBounding() const;
  int ClearAmbient() const;
  // Inheritable, permitted and effective sets to empty.
  int DropSets() const;

 private:
  CapabilityPlan(cap_t empty, int last_cap) : empty_(empty), last_cap_(last_cap) {}
  cap_t empty_;
  int last_cap_;
};

}  // namespace packvisor::sandbox
