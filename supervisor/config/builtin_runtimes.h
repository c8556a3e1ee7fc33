// The built-in runtime definitions (config/runtimes/*.toml), embedded at build time, and the
// registry the supervisor uses: built-ins, overridden by name by the installed definitions
// ({prefix}/share/packvisor/runtimes), overridden by name by `runtimes_dir`
// (docs/packs-and-runtimes.md, "Where definitions come from").
#pragma once

#include <string>
#include <vector>

#include "envs/runtime.h"
#include "supervisor/config/config.h"

namespace packvisor {

struct BuiltinRuntimeFile {
  std::string source;  // "config/runtimes/python.toml"
  std::string text;
};

const std::vector<BuiltinRuntimeFile>& BuiltinRuntimeFiles();

// Built-ins, then every *.toml of InstalledRuntimesDir() when that directory exists, then every
// *.toml of config.runtimes_dir; a definition of a later layer replaces the one of the same name.
// Each directory and file read must be owned by root or by the effective uid and not writable by
// group or others (root never loads a definition someone else could write); a symlink anywhere
// in a directory's path, or a file that is one, is refused.
Result<envs::RuntimeRegistry> LoadRuntimeRegistry(const Config& config);

// {prefix}/share/packvisor/runtimes, {prefix} being the parent of the directory holding the
// running binary (/proc/self/exe): /usr/share/packvisor/runtimes for /usr/bin/packvisor. Whether
// it exists is not checked. Empty when /proc/self/exe cannot be read.
std::string InstalledRuntimesDir();

// Every *.toml of `dir` in name order, under the ownership rules of LoadRuntimeRegistry.
Result<std::vector<envs::RuntimeDefinition>> LoadTrustedRuntimeDirectory(const std::string& dir);

}  // namespace packvisor
