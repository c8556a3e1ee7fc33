// Network namespace setup, child side.
#pragma once

namespace packvisor::sandbox {

// Brings up "lo" in the child's fresh network namespace. Returns 0 or an errno.
int BringUpLoopback();

}  // namespace packvisor::sandbox
