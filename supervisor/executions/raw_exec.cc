// RunRawExec: the sandbox `packvisor exec` and the daemon's POST /v1/exec launch. Every check and
// every message is the one `packvisor exec` has always printed (after "packvisor: error: ").
#include "supervisor/executions/raw_exec.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <utility>

#include "sandbox/launcher.h"
#include "supervisor/config/sandbox_defaults.h"
#include "supervisor/executions/output.h"

namespace packvisor {
namespace {

constexpr char kRawActionRef[] = "exec";

ExecutionResult RawRejected(const std::string& execution_id, std::string error) {
  ExecutionResult result;
  result.execution_id = execution_id;
  result.action_ref = kRawActionRef;
  result.status = ExecutionStatus::kRejected;
  result.error = std::move(error);
  return result;
}

std::string Decimal(uint64_t value) { return std::to_string(value); }

}  // namespace

ExecutionResult RunRawExec(const ExecutionContext& context, RawExecRequest request) {
  const Config& config = context.config;
  if (request.execution_id.empty()) request.execution_id = NewExecutionId();
  const std::string& execution_id = request.execution_id;
  sandbox::SandboxSpec spec = BaseSandboxSpec(config);
  if (request.network == "host") {
    spec.network = sandbox::NetworkMode::kHost;
  } else if (request.network != "none") {
    return RawRejected(execution_id,
                       "--network must be 'none' or 'host', got '" + request.network + "'");
  }
  if (request.timeout_seconds) {
    if (!(*request.timeout_seconds > 0) || !std::isfinite(*request.timeout_seconds)) {
      return RawRejected(execution_id, "--timeout must be a positive number of seconds");
    }
    spec.timeout = std::chrono::milliseconds(
        static_cast<int64_t>(std::ceil(*request.timeout_seconds * 1000.0)));
  }
  // The limits may lower the configured ones, never raise them.
  auto out_of_range = [](const char* flag, uint64_t value, uint64_t ceiling) {
    return std::string(flag) + " " + Decimal(value) + ": must be between 1 and the configured " +
           Decimal(ceiling);
  };
  if (request.pids) {
    if (*request.pids == 0 || *request.pids > config.sandbox.pids_max) {
      return RawRejected(execution_id,
                         out_of_range("--pids", *request.pids, config.sandbox.pids_max));
    }
    spec.limits.nproc = *request.pids;
    if (spec.cgroup) spec.cgroup->pids_max = *request.pids;
  }
  if (request.memory_mb && spec.cgroup) {
    if (*request.memory_mb == 0 || *request.memory_mb > config.sandbox.memory_max_mb) {
      return RawRejected(execution_id, out_of_range("--memory-mb", *request.memory_mb,
                                                    config.sandbox.memory_max_mb));
    }
    spec.cgroup->memory_max_bytes = *request.memory_mb << 20;
  }
  if (request.cpu_percent && spec.cgroup) {
    if (*request.cpu_percent == 0 || *request.cpu_percent > config.sandbox.cpu_max_percent) {
      return RawRejected(execution_id, out_of_range("--cpu-percent", *request.cpu_percent,
                                                    config.sandbox.cpu_max_percent));
    }
    spec.cgroup->cpu_max_percent = *request.cpu_percent;
  }
  spec.pack_dir = request.pack_dir;
  spec.env_dir = request.env_dir;
  spec.argv = std::move(request.command);
  std::vector<std::pair<std::string, std::string>> extra(config.sandbox.set_env.begin(),
                                                         config.sandbox.set_env.end());
  for (auto& variable : ContextVariables({{"EXEC_ID", execution_id}})) {
    extra.push_back(std::move(variable));
  }
  spec.env = SandboxEnvironment(config, spec.env_dir, extra);
  if (auto valid = spec.Validate(); !valid) {
    return RawRejected(execution_id, valid.error().message());
  }

  CappedOutput out(config.execution.max_stdout_bytes, "stdout", request.live_stdout);
  CappedOutput err(config.execution.max_stderr_bytes, "stderr", request.live_stderr);
  sandbox::LaunchIo io;
  io.stdout_sink = &out;
  io.stderr_sink = &err;
  io.cancel_fd = request.cancel_fd;
  spdlog::debug("exec {}: launching {}", execution_id, spec.argv[0]);
  auto launched = sandbox::RunSandbox(spec, io, context.warm_pool);
  if (!launched) {
    ExecutionResult result = RawRejected(execution_id, launched.error().message());
    result.status = ExecutionStatus::kSetupFailed;
    result.launch_failed = true;
    return result;
  }
  double timeout_seconds = std::chrono::duration<double>(spec.timeout).count();
  ExecutionResult result = ResultFromSandbox(*launched, out, err, execution_id, kRawActionRef,
                                             timeout_seconds, spec.argv[0]);
  spdlog::debug("exec {}: {} in {} ms", execution_id, ExecutionStatusName(result.status),
                result.duration_ms);
  return result;
}

}  // namespace packvisor
