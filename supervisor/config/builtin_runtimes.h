// The built-in runtime definitions (config/runtimes/*.toml), embedded at build time, and the
// registry the supervisor uses: built-ins, overridden by name by `runtimes_dir`.
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

// Built-ins, then every *.toml of config.runtimes_dir (a definition there replaces the built-in
// of the same name).
Result<envs::RuntimeRegistry> LoadRuntimeRegistry(const Config& config);

}  // namespace packvisor
