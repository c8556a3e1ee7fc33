// `packvisor check`: probes the host for what the sandbox needs and prints a table.
#pragma once

#include "supervisor/config.h"

namespace packvisor {

// Prints the table to stdout; returns 0 only when the default sandbox can run on this host.
int RunCheckCommand(const Config& config);

}  // namespace packvisor
