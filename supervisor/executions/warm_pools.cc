#include "supervisor/executions/warm_pools.h"

#include <algorithm>

#include "supervisor/config/sandbox_defaults.h"
#include "supervisor/config/tenancy.h"

namespace packvisor {

Result<std::vector<sandbox::SandboxSpec>> WarmPoolTemplates(
    const Config& config, const std::vector<std::string>& warm_packs) {
  std::vector<sandbox::SandboxSpec> templates;
  sandbox::SandboxSpec exec = BaseSandboxSpec(config);
  exec.network = sandbox::NetworkMode::kNone;
  templates.push_back(exec);
  for (const std::string& ref : warm_packs) {
    auto ids = HostIdsForPack(config, ref);
    if (!ids) return Failure("server.warm_packs", ref, ids.error().message());
    sandbox::SandboxSpec spec = BaseSandboxSpec(config);
    spec.ids = *ids;
    spec.network = sandbox::NetworkMode::kNone;
    templates.push_back(spec);
    const auto& host_packs = config.sandbox.host_network_packs;
    if (std::find(host_packs.begin(), host_packs.end(), ref) != host_packs.end()) {
      spec.network = sandbox::NetworkMode::kHost;
      templates.push_back(spec);
    }
  }
  return templates;
}

Result<std::unique_ptr<sandbox::WarmPool>> CreateWarmPools(
    const Config& config, int warm_sandboxes, const std::vector<std::string>& warm_packs) {
  if (warm_sandboxes <= 0) return std::unique_ptr<sandbox::WarmPool>();
  auto templates = WarmPoolTemplates(config, warm_packs);
  if (!templates) return templates.error();
  return sandbox::WarmPool::Create({std::move(*templates), warm_sandboxes});
}

Result<void> ReconfigureWarmPools(sandbox::WarmPool& pool, const Config& config, int warm_sandboxes,
                                  const std::vector<std::string>& warm_packs) {
  auto templates = WarmPoolTemplates(config, warm_packs);
  if (!templates) return templates.error();
  pool.Reconfigure({std::move(*templates), std::max(warm_sandboxes, 0)});
  return Ok{};
}

}  // namespace packvisor
