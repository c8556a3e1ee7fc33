#include "supervisor/cli/env_commands.h"

#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "supervisor/config/builtin_runtimes.h"
#include "supervisor/executions/environments.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/packs/packs.h"

namespace packvisor {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "packvisor: error: %s\n", message.c_str());
  return kExitOwnError;
}

}  // namespace

int SetUpEnvironments(const Config& config, const Pack& pack,
                      const std::vector<const envs::RuntimeDefinition*>& runtimes,
                      envs::Rebuild rebuild) {
  if (runtimes.empty()) return 0;
  auto settings = EnvironmentSettingsForPack(config, pack.ref);
  if (!settings) {
    std::fprintf(stderr, "packvisor: error: %s\n", settings.error().message().c_str());
    return 1;
  }
  envs::EnvironmentManager manager(std::move(*settings));
  int failures = 0;
  for (const envs::RuntimeDefinition* runtime : runtimes) {
    auto lease = manager.Ensure(pack.ref, pack.dir, *runtime, rebuild);
    if (!lease) {
      std::fprintf(stderr, "packvisor: %s/%s: %s\n", pack.ref.c_str(), runtime->name.c_str(),
                   lease.error().message().c_str());
      ++failures;
    } else {
      std::printf("%s/%s: %s (%s)\n", pack.ref.c_str(), runtime->name.c_str(),
                  lease->built_now ? "built" : "ready", lease->host_dir.c_str());
    }
  }
  return failures;
}

int RunEnvSetupCommand(const Config& config, const std::string& pack_ref,
                       const std::optional<std::string>& runtime_name, bool force) {
  auto runtimes = LoadRuntimeRegistry(config);
  if (!runtimes) return Fail(runtimes.error().message());
  auto report = SetUpPackEnvironments(config, *runtimes, pack_ref, runtime_name, force);
  if (!report) return Fail(report.error().message());
  if (!report->pack_found) {
    std::fprintf(stderr, "packvisor: error: pack '%s' not found in %s\n", pack_ref.c_str(),
                 config.packs_base_dir.c_str());
    return kExitNotFound;
  }
  for (const std::string& problem : report->problems)
    std::fprintf(stderr, "packvisor: %s\n", problem.c_str());
  for (const EnvironmentOutcome& outcome : report->environments) {
    if (outcome.status == "none") {
      std::printf("%s/%s: the runtime has no environment\n", pack_ref.c_str(),
                  outcome.runtime.c_str());
    } else if (outcome.status == "failed") {
      std::fprintf(stderr, "packvisor: %s/%s: %s\n", pack_ref.c_str(), outcome.runtime.c_str(),
                   outcome.error.c_str());
    } else {
      std::printf("%s/%s: %s (%s)\n", pack_ref.c_str(), outcome.runtime.c_str(),
                  outcome.status.c_str(), outcome.path.c_str());
    }
  }
  return report->ok() ? 0 : 1;
}

int RunEnvListCommand(const Config& config, bool json) {
  envs::EnvironmentManager manager(EnvironmentSettingsFrom(config));
  auto infos = manager.List();
  if (!infos) return Fail(infos.error().message());
  auto runtimes = LoadRuntimeRegistry(config);
  auto utc = [](int64_t unix_time) {
    time_t t = static_cast<time_t>(unix_time);
    struct tm tm {};
    gmtime_r(&t, &tm);
    char text[32];
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(text);
  };
  for (envs::EnvironmentInfo& info : *infos) {
    // Against the current pack and definition, a ready environment may be stale, and a failure
    // may no longer apply (its digest changed).
    if (runtimes && (info.state == envs::EnvironmentState::kReady ||
                     info.state == envs::EnvironmentState::kFailed)) {
      auto runtime = runtimes->Find(info.runtime);
      auto pack_dir = config.packs_base_dir + "/" + info.pack_ref;
      auto settings = EnvironmentSettingsForPack(config, info.pack_ref);
      if (runtime && settings) {
        envs::EnvironmentManager pack_manager(std::move(*settings));
        if (auto current = pack_manager.Inspect(info.pack_ref, pack_dir, **runtime)) {
          info.state = current->state;
        }
      }
    }
  }
  if (json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const envs::EnvironmentInfo& info : *infos) {
      rows.push_back(
          {{"pack", info.pack_ref},
           {"runtime", info.runtime},
           {"state", envs::EnvironmentStateName(info.state)},
           {"digest", info.digest.empty() ? nlohmann::json(nullptr) : nlohmann::json(info.digest)},
           {"size_bytes", info.size_bytes},
           {"last_used", info.last_used ? nlohmann::json(utc(*info.last_used)) : nullptr},
           {"path", info.path},
           {"error", info.failure.empty() ? nlohmann::json(nullptr) : nlohmann::json(info.failure)},
           {"failed_at", info.failed_at ? nlohmann::json(utc(*info.failed_at)) : nullptr}});
    }
    std::printf("%s\n",
                rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("%-20s %-10s %-8s %-14s %10s  %s\n", "PACK", "RUNTIME", "STATE", "DIGEST", "SIZE",
              "LAST USE");
  for (const envs::EnvironmentInfo& info : *infos) {
    std::string when = info.last_used ? utc(*info.last_used) : "never";
    std::printf("%-20s %-10s %-8s %-14s %9.1fM  %s\n", info.pack_ref.c_str(), info.runtime.c_str(),
                envs::EnvironmentStateName(info.state), info.digest.substr(0, 12).c_str(),
                static_cast<double>(info.size_bytes) / (1 << 20), when.c_str());
    if (!info.failure.empty()) {
      std::printf("  last build failed at %s: %s\n", utc(info.failed_at.value_or(0)).c_str(),
                  info.failure.c_str());
    }
  }
  return 0;
}

int RunEnvRemoveCommand(const Config& config, const std::string& target) {
  size_t slash = target.find('/');
  std::string pack_ref = target.substr(0, slash);
  std::string runtime = slash == std::string::npos ? std::string() : target.substr(slash + 1);
  envs::EnvironmentManager manager(EnvironmentSettingsFrom(config));
  if (auto removed = manager.Remove(pack_ref, runtime); !removed) {
    Fail(removed.error().message());
    return removed.error().err == ENOENT ? kExitNotFound : kExitOwnError;
  }
  std::printf("removed %s\n", target.c_str());
  return 0;
}

}  // namespace packvisor
