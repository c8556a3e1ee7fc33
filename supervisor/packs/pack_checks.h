// Checks of a loaded action that look beyond its YAML: the script it names, and the permissions
// the sandbox user meets on the way to it. For `packvisor pack validate|list|register`; `run`
// does not read scripts. Nothing here writes anywhere or follows a symlink.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "supervisor/packs/packs.h"

namespace packvisor {

// At most this much of a script is read for FindUndeclaredParameters.
inline constexpr size_t kMaxScriptScanBytes = 256 * 1024;

// Warnings (one per name, at its first use) for the parameters that the action's script reads
// but its YAML does not declare, where a few patterns over the script text show it (the
// runtime is Action::runtime; docs/packs-and-runtimes.md lists the patterns and their limits):
//   python: params.get("x"), params["x"]  (also parameters / inputs / args)
//   shell:  $PARAM_X, ${PARAM_X}          (X is the upper-cased name)
//   node:   args.x, args["x"]             (also params)
// Only the first kMaxScriptScanBytes of Action::entry_path are read, opened without following a
// symlink; a script that cannot be read gives no warning (the loader has checked it exists).
std::vector<Diagnostic> FindUndeclaredParameters(const Action& action);

// The same scan over `text` (for tests): (name as written in the script, 1-based line).
struct ParameterUse {
  std::string name;  // for shell, the part after PARAM_
  int line = 0;
};
std::vector<ParameterUse> ScanParameterUses(const std::string& runtime, const std::string& text);

// The host ids a pack's sandbox may run as (sandbox.uid_range).
struct SandboxIdRange {
  uid_t first = 0;
  uid_t last = 0;
};

// An error when the sandbox user could not read the action's script: the file needs a read bit
// and every directory from the pack's root down to it a search bit that apply to that user.
// Which host id a pack gets is known only once it runs, so the user is taken to be a stranger
// (the "other" bits), except that owner or group bits count when the owner or group is an id
// of `ids`. nullopt when the script is readable.
std::optional<Diagnostic> CheckSandboxCanRead(const Pack& pack, const Action& action,
                                              const SandboxIdRange& ids);

}  // namespace packvisor
