// The sandbox's PID 1. It reaps every orphan, forwards termination signals to the whole
// namespace, reports the action's wait status on the report pipe, and exits when the action does;
// the kernel then kills whatever is left in the namespace, so nothing outlives the execution.
#pragma once

#include <signal.h>
#include <sys/types.h>

namespace packvisor::sandbox {

// The signals init handles synchronously; they are blocked before the action is forked.
void InitSignalSet(sigset_t* set);

[[noreturn]] void RunInit(pid_t action, int report_fd);

}  // namespace packvisor::sandbox
