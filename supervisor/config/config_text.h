// The configuration loader on text already in memory: LoadConfigFile (config.h) reads the file
// and calls it; tests and the config_toml fuzz target call it directly, without a file.
#pragma once

#include <string>
#include <string_view>

#include "sandbox/os/error.h"
#include "supervisor/config/config.h"

namespace packvisor {

// LoadConfigFile on text already read: `source` is the file's absolute path (it names the file in
// errors, and relative paths are resolved against its directory). Text over 1 MiB, or nesting
// deeper than kMaxTomlDepth (envs/document_limits.h), is refused before it is parsed. Never
// throws.
Result<Config> ParseConfigText(std::string_view text, const std::string& source);

}  // namespace packvisor
