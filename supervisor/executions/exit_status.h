// Exit statuses of packvisor's own (SPEC §8): what an execution that did not end with the action's
// own status maps to. Here rather than in the CLI so that every adapter (the CLI today, a daemon or
// a queue worker later) reports the same numbers without including supervisor/cli/.
#pragma once

namespace packvisor {

inline constexpr int kExitTimedOut = 124;
inline constexpr int kExitOwnError = 125;
inline constexpr int kExitCannotStart = 126;
inline constexpr int kExitNotFound = 127;

}  // namespace packvisor
