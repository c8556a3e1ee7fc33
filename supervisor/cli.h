// The command line of SPEC §8. Parses argv, loads the configuration once, dispatches, and is the
// one place that turns an Error into a message and an exit status.
#pragma once

namespace packvisor {

// Exit statuses of packvisor's own (SPEC §8).
inline constexpr int kExitTimedOut = 124;
inline constexpr int kExitOwnError = 125;
inline constexpr int kExitCannotStart = 126;
inline constexpr int kExitNotFound = 127;

int RunCli(int argc, char** argv);

}  // namespace packvisor
