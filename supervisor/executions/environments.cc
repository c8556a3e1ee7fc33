#include "supervisor/executions/environments.h"

#include <sys/stat.h>
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
  // Builds (pip, npm, the runtime's install steps) need far more than the measured allow list
  // (downloads, renames, ...): they keep the deny list whatever sandbox.seccomp_mode says.
  settings.base_spec.seccomp_mode = sandbox::SeccompMode::kDeny;
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

bool PackEnvironmentsReport::ok() const {
  if (!problems.empty()) return false;
  for (const EnvironmentOutcome& outcome : environments) {
    if (outcome.status == "failed") return false;
  }
  return true;
}

Result<PackEnvironmentsReport> SetUpPackEnvironments(const Config& config,
                                                     const envs::RuntimeRegistry& runtimes,
                                                     const std::string& pack_ref,
                                                     const std::optional<std::string>& runtime_name,
                                                     bool force) {
  if (!IsValidPackRef(pack_ref)) {
    return Error{0, "invalid pack ref '" + pack_ref + "'", ""};
  }
  PackEnvironmentsReport report;
  report.pack_ref = pack_ref;
  std::string pack_dir = config.packs_base_dir + "/" + pack_ref;
  struct stat pack_st {};
  if (stat(pack_dir.c_str(), &pack_st) != 0 || !S_ISDIR(pack_st.st_mode)) {
    report.pack_found = false;
    return report;
  }
  auto pack = LoadPack(pack_dir, &runtimes);
  if (!pack) return pack.error();
  std::vector<const envs::RuntimeDefinition*> selected;
  if (runtime_name) {
    auto runtime = runtimes.Find(*runtime_name);
    if (!runtime) return runtime.error();
    if (!(*runtime)->environment) {
      report.environments.push_back({(*runtime)->name, "none", "", ""});
      return report;
    }
    selected.push_back(*runtime);
  } else {
    selected = RuntimesWithEnvironment(*pack, runtimes, &report.problems);
  }
  if (selected.empty()) return report;
  auto settings = EnvironmentSettingsForPack(config, pack->ref);
  if (!settings) return settings.error();
  envs::EnvironmentManager manager(std::move(*settings));
  for (const envs::RuntimeDefinition* runtime : selected) {
    auto lease = manager.Ensure(pack->ref, pack->dir, *runtime,
                                force ? envs::Rebuild::kAlways : envs::Rebuild::kWhenNeeded);
    if (!lease) {
      report.environments.push_back({runtime->name, "failed", "", lease.error().message()});
    } else {
      report.environments.push_back(
          {runtime->name, lease->built_now ? "built" : "ready", lease->host_dir, ""});
    }
  }
  return report;
}

}  // namespace packvisor
