#include <dirent.h>

#include <algorithm>

#include "supervisor/config/builtin_runtimes.h"

namespace packvisor {

Result<envs::RuntimeRegistry> LoadRuntimeRegistry(const Config& config) {
  std::vector<envs::RuntimeDefinition> definitions;
  for (const BuiltinRuntimeFile& file : BuiltinRuntimeFiles()) {
    auto definition = envs::ParseRuntimeDefinition(file.text, file.source);
    if (!definition) return definition.error();
    definitions.push_back(std::move(*definition));
  }
  if (config.runtimes_dir) {
    DIR* dir = opendir(config.runtimes_dir->c_str());
    if (dir == nullptr) return ErrnoError("open runtimes_dir", *config.runtimes_dir);
    std::vector<std::string> names;
    while (struct dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name.size() > 5 && name.compare(name.size() - 5, 5, ".toml") == 0) names.push_back(name);
    }
    closedir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      auto definition = envs::LoadRuntimeDefinition(*config.runtimes_dir + "/" + name);
      if (!definition) return definition.error();
      auto same = std::find_if(definitions.begin(), definitions.end(),
                               [&](const auto& d) { return d.name == definition->name; });
      if (same != definitions.end()) {
        *same = std::move(*definition);
      } else {
        definitions.push_back(std::move(*definition));
      }
    }
  }
  return envs::RuntimeRegistry::FromDefinitions(std::move(definitions));
}

}  // namespace packvisor
