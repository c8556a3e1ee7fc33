// Placeholder until the TOML loader lands: built-in defaults only.
#include "supervisor/config.h"

#include <cstdlib>

namespace packvisor {

Result<Config> LoadConfigFile(const std::string& path) {
  return Failure("load config", path, "configuration files are not supported yet");
}

Result<Config> LoadConfig(const std::optional<std::string>& explicit_path) {
  if (explicit_path) return LoadConfigFile(*explicit_path);
  if (const char* env = std::getenv("PACKVISOR_CONFIG"); env && *env) return LoadConfigFile(env);
  Config config;
  config.source = "built-in defaults";
  return config;
}

}  // namespace packvisor
