#include "supervisor/cli/exec_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "sandbox/launcher.h"
#include "supervisor/cli/remote_commands.h"
#include "supervisor/config/sandbox_defaults.h"
#include "supervisor/executions/execution_result.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/executions/output.h"

namespace packvisor {

void PrintExecResultHuman(const ExecutionResult& result) {
  if (result.status != ExecutionStatus::kSucceeded || result.stdout_truncated ||
      result.stderr_truncated) {
    std::fprintf(stderr, "packvisor: exec: %s\n", HumanSummary(result).c_str());
  }
}

namespace {

// A directory option as the kernel would resolve it from the working directory, as
// `pack validate ./x` reads its argument. An absolute path is kept as given. A relative one is
// joined to the working directory (getcwd: a path without symbolic links), dropping "." and
// empty parts and taking leading ".." parts off that directory, which is exactly what the
// kernel does; a ".." after a name of the argument is kept (that name may be a symbolic link)
// and SandboxSpec::Validate refuses it, as it refuses any '..', naming the path.
Result<std::string> ResolveDirOption(const std::string& flag, const std::string& dir) {
  if (dir.empty() || dir[0] == '/') return dir;
  std::error_code ec;
  std::filesystem::path cwd = std::filesystem::current_path(ec);
  if (ec) return Failure(flag, dir, "the working directory: " + ec.message());
  std::vector<std::string> parts;
  for (const auto& part : cwd) {
    if (part != "/" && !part.empty()) parts.push_back(part.string());
  }
  bool named = false;  // a component of `dir` itself has been appended
  size_t start = 0;
  while (start <= dir.size()) {
    size_t end = dir.find('/', start);
    if (end == std::string::npos) end = dir.size();
    std::string part = dir.substr(start, end - start);
    start = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == ".." && !named) {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    named = true;
    parts.push_back(part);
  }
  std::string resolved;
  for (const std::string& part : parts) resolved += "/" + part;
  return resolved.empty() ? "/" : resolved;
}

}  // namespace

int RunExecCommand(const Config& config, const ExecOptions& options) {
  if (options.server) return RunRemoteExec(config, options);
  sandbox::SandboxSpec spec = BaseSandboxSpec(config);
  if (options.network == "host") {
    spec.network = sandbox::NetworkMode::kHost;
  } else if (options.network != "none") {
    std::fprintf(stderr, "packvisor: error: --network must be 'none' or 'host', got '%s'\n",
                 options.network.c_str());
    return kExitOwnError;
  }
  if (options.timeout_seconds) {
    if (!(*options.timeout_seconds > 0) || !std::isfinite(*options.timeout_seconds)) {
      std::fprintf(stderr, "packvisor: error: --timeout must be a positive number of seconds\n");
      return kExitOwnError;
    }
    spec.timeout = std::chrono::milliseconds(
        static_cast<int64_t>(std::ceil(*options.timeout_seconds * 1000.0)));
  }
  // The limit flags may lower the configured limits, never raise them.
  auto lower = [](const char* flag, uint64_t value, uint64_t ceiling, uint64_t* out) {
    if (value == 0 || value > ceiling) {
      std::fprintf(stderr, "packvisor: error: %s %llu: must be between 1 and the configured %llu\n",
                   flag, static_cast<unsigned long long>(value),
                   static_cast<unsigned long long>(ceiling));
      return false;
    }
    *out = value;
    return true;
  };
  if (options.pids) {
    if (!lower("--pids", *options.pids, config.sandbox.pids_max, &spec.limits.nproc)) {
      return kExitOwnError;
    }
    if (spec.cgroup) spec.cgroup->pids_max = *options.pids;
  }
  if (options.memory_mb && spec.cgroup) {
    uint64_t mb = 0;
    if (!lower("--memory-mb", *options.memory_mb, config.sandbox.memory_max_mb, &mb)) {
      return kExitOwnError;
    }
    spec.cgroup->memory_max_bytes = mb << 20;
  }
  if (options.cpu_percent && spec.cgroup) {
    if (!lower("--cpu-percent", *options.cpu_percent, config.sandbox.cpu_max_percent,
               &spec.cgroup->cpu_max_percent)) {
      return kExitOwnError;
    }
  }
  auto pack_dir = ResolveDirOption("--pack-dir", options.pack_dir);
  auto env_dir = ResolveDirOption("--env-dir", options.env_dir);
  for (const auto* dir : {&pack_dir, &env_dir}) {
    if (!*dir) {
      std::fprintf(stderr, "packvisor: error: %s\n", dir->error().message().c_str());
      return kExitOwnError;
    }
  }
  spec.pack_dir = *pack_dir;
  spec.env_dir = *env_dir;
  spec.argv = options.command;
  std::string execution_id = NewExecutionId();
  std::vector<std::pair<std::string, std::string>> extra(config.sandbox.set_env.begin(),
                                                         config.sandbox.set_env.end());
  for (auto& variable : ContextVariables({{"EXEC_ID", execution_id}})) {
    extra.push_back(std::move(variable));
  }
  spec.env = SandboxEnvironment(config, spec.env_dir, extra);
  if (auto valid = spec.Validate(); !valid) {
    std::fprintf(stderr, "packvisor: error: %s\n", valid.error().message().c_str());
    return kExitOwnError;
  }

  // Human mode: the command's output reaches the terminal as it is written (see FdStreamer).
  std::unique_ptr<FdStreamer> streamer;
  if (!options.json) streamer = std::make_unique<FdStreamer>();
  CappedOutput out(config.execution.max_stdout_bytes, "stdout",
                   streamer ? streamer->To(STDOUT_FILENO) : nullptr);
  CappedOutput err(config.execution.max_stderr_bytes, "stderr",
                   streamer ? streamer->To(STDERR_FILENO) : nullptr);
  sandbox::LaunchIo io;
  io.stdout_sink = &out;
  io.stderr_sink = &err;
  spdlog::debug("exec {}: launching {}", execution_id, spec.argv[0]);
  auto launched = sandbox::RunSandbox(spec, io);
  if (streamer && !launched) streamer->Finish();
  if (!launched) {
    std::fprintf(stderr, "packvisor: error: %s\n", launched.error().message().c_str());
    return kExitOwnError;
  }
  int64_t timeout_seconds = std::chrono::ceil<std::chrono::seconds>(spec.timeout).count();
  ExecutionResult result =
      ResultFromSandbox(*launched, out, err, execution_id, "exec", timeout_seconds, spec.argv[0]);
  if (streamer) streamer->Finish();  // after ResultFromSandbox gave the streams their last bytes
  spdlog::debug("exec {}: {} in {} ms", execution_id, ExecutionStatusName(result.status),
                result.duration_ms);
  if (options.json) {
    std::cout << result.ToJsonLine() << std::endl;
  } else {
    PrintExecResultHuman(result);
  }
  return result.ExitStatus();
}

}  // namespace packvisor
