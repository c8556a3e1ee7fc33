#include "supervisor/config/sandbox_defaults.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdlib>

namespace packvisor {

sandbox::SandboxSpec BaseSandboxSpec(const Config& config) {
  sandbox::SandboxSpec spec;
  spec.ids.host_uid = config.sandbox.uid_range_first;
  spec.ids.host_gid = config.sandbox.uid_range_first;
  spec.limits.nofile = config.sandbox.nofile;
  spec.limits.nproc = config.sandbox.pids_max;
  spec.limits.fsize_bytes = config.sandbox.fsize_mb << 20;
  spec.limits.tmp_size_bytes = config.sandbox.tmp_size_mb << 20;
  spec.timeout = std::chrono::seconds(config.execution.default_timeout_seconds);
  spec.kill_grace = std::chrono::seconds(config.execution.kill_grace_seconds);
  spec.extra_ro_binds = config.sandbox.extra_ro_binds;
  spec.cgroup_parent = config.sandbox.cgroup_parent;
  spec.seccomp_mode = config.sandbox.seccomp_mode;
  if (sandbox::CgroupLayout::Probe().backend != sandbox::CgroupBackend::kNone ||
      !config.sandbox.allow_rlimits_only) {
    // Without a back end the launch then fails closed, naming what is missing.
    spec.cgroup = sandbox::CgroupLimits{config.sandbox.memory_max_mb << 20, config.sandbox.pids_max,
                                        config.sandbox.cpu_max_percent};
  } else {
    spdlog::warn(
        "no usable cgroup back end ({}): running with rlimits only, as "
        "sandbox.allow_rlimits_only allows",
        sandbox::CgroupLayout::Probe().why_none);
  }
  return spec;
}

Result<EffectiveLimits> ResolveLimits(const Config& config, const envs::LimitRequest& runtime,
                                      const std::string& runtime_source,
                                      const envs::LimitRequest& action,
                                      const std::string& action_source) {
  struct Field {
    std::optional<uint64_t> envs::LimitRequest::*request;
    const char* key;
    uint64_t default_value;
    uint64_t ceiling;
    const char* ceiling_key;
  };
  const Field fields[] = {
      {&envs::LimitRequest::memory_mb, "memory_mb", config.sandbox.memory_max_mb,
       config.sandbox.memory_ceiling_mb, "sandbox.memory_ceiling_mb"},
      {&envs::LimitRequest::pids, "pids", config.sandbox.pids_max, config.sandbox.pids_ceiling,
       "sandbox.pids_ceiling"},
      {&envs::LimitRequest::cpu_percent, "cpu_percent", config.sandbox.cpu_max_percent,
       config.sandbox.cpu_ceiling_percent, "sandbox.cpu_ceiling_percent"}};
  uint64_t values[3] = {};
  for (size_t i = 0; i < 3; ++i) {
    const Field& f = fields[i];
    const std::optional<uint64_t>& from_action = action.*f.request;
    const std::optional<uint64_t>& from_runtime = runtime.*f.request;
    const std::string& source = from_action ? action_source : runtime_source;
    values[i] = from_action.value_or(from_runtime.value_or(f.default_value));
    if ((from_action || from_runtime) && values[i] > f.ceiling) {
      return Failure(source + ":", std::string("limits.") + f.key,
                     std::to_string(values[i]) + " exceeds " + f.ceiling_key + " " +
                         std::to_string(f.ceiling) + " (" + config.source + ")");
    }
  }
  return EffectiveLimits{values[0], values[1], values[2]};
}

void ApplyLimits(const EffectiveLimits& limits, sandbox::SandboxSpec* spec) {
  spec->limits.nproc = limits.pids;
  if (spec->cgroup) {
    spec->cgroup->memory_max_bytes = limits.memory_mb << 20;
    spec->cgroup->pids_max = limits.pids;
    spec->cgroup->cpu_max_percent = limits.cpu_percent;
  }
}

std::vector<std::string> SandboxEnvironment(
    const Config& config, const std::string& env_dir,
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::map<std::string, std::string> values;
  std::vector<std::string> order;
  auto set = [&](const std::string& name, const std::string& value) {
    if (!values.count(name)) order.push_back(name);
    values[name] = value;
  };
  // lstat: the env tree is written by sandboxed code; root never follows a link planted there.
  struct stat st {};
  bool env_has_bin =
      !env_dir.empty() && lstat((env_dir + "/bin").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  set("PATH", std::string(env_has_bin ? "/env/bin:" : "") + "/usr/local/bin:/usr/bin:/bin");
  set("HOME", "/tmp");
  set("LANG", "C.UTF-8");
  set("TMPDIR", "/tmp");
  for (const auto& [name, value] : extra) set(name, value);
  for (const std::string& name : config.sandbox.passthrough_env) {
    if (const char* value = std::getenv(name.c_str())) set(name, value);
  }
  std::vector<std::string> env;
  env.reserve(order.size());
  for (const std::string& name : order) env.push_back(name + "=" + values[name]);
  return env;
}

std::vector<std::pair<std::string, std::string>> ContextVariables(
    const std::vector<std::pair<std::string, std::string>>& values) {
  std::vector<std::pair<std::string, std::string>> variables;
  for (const auto& [name, value] : values) variables.emplace_back("PACKVISOR_" + name, value);
  for (const auto& [name, value] : values) variables.emplace_back("ATTUNE_" + name, value);
  return variables;
}

}  // namespace packvisor
