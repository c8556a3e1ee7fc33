// The command line of SPEC §8. Parses argv, loads the configuration once, dispatches, and is the
// one place that turns an Error into a message and an exit status.
#pragma once

#include <string_view>

namespace packvisor {

// Exit statuses of packvisor's own (SPEC §8).
inline constexpr int kExitTimedOut = 124;
inline constexpr int kExitOwnError = 125;
inline constexpr int kExitCannotStart = 126;
inline constexpr int kExitNotFound = 127;

// What the build put into the binary (main.cc passes the generated values).
struct BuildInfo {
  std::string_view version;  // the CMake project version
  std::string_view commit;   // the git commit built from, "-dirty" if modified, or "unknown"
};

int RunCli(int argc, char** argv, const BuildInfo& build);

}  // namespace packvisor
