#include "supervisor/executions/environments.h"

#include <unistd.h>

#include <set>

#include "supervisor/config/sandbox_defaults.h"
#include "supervisor/config/tenancy.h"
#include "supervisor/packs/packs.h"

namespace packvisor {

envs::EnvironmentSettings EnvironmentSettingsFrom(const Config& config) {
  envs::EnvironmentSettings settings;
  settings.runtime_envs_dir = config.runtime_envs_dir;
  settings.state_dir = config.state_dir;
  settings.base_spec = BaseSandboxSpec(config);
  for (const std::string& entry : SandboxEnvironment(config, "", {})) {
    size_t eq = entry.find('=');
    std::string name = entry.substr(0, eq);
    if (name != "PATH") settings.base_env.emplace_back(name, entry.substr(eq + 1));
  }
  settings.install_env = config.envs.install_env;
  settings.install_network = config.sandbox.install_network;
  settings.max_size_bytes = config.envs.max_size_mb << 20;
  settings.pack_disk_bytes = config.envs.pack_disk_mb << 20;
  settings.build_timeout = std::chrono::seconds(config.envs.build_timeout_seconds);
  settings.show_progress = isatty(2) == 1;
  return settings;
}

Result<envs::EnvironmentSettings> EnvironmentSettingsForPack(const Config& config,
                                                             const std::string& pack_ref) {
  auto ids = HostIdsForPack(config, pack_ref);
  if (!ids) return ids.error();
  envs::EnvironmentSettings settings = EnvironmentSettingsFrom(config);
  settings.base_spec.ids = *ids;
  return settings;
}

std::vector<const envs::RuntimeDefinition*> RuntimesWithEnvironment(
    const Pack& pack, const envs::RuntimeRegistry& runtimes, std::vector<std::string>* problems) {
  std::set<std::string> seen;
  std::vector<const envs::RuntimeDefinition*> used;
  for (const Action& action : pack.actions) {
    auto runtime = ChooseRuntime(action, runtimes);
    if (!runtime) {
      problems->push_back(runtime.error().message());
      continue;
    }
    if ((*runtime)->environment && seen.insert((*runtime)->name).second) used.push_back(*runtime);
  }
  return used;
}

}  // namespace packvisor
