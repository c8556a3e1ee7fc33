#include "supervisor/cli/exec_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "supervisor/cli/remote_commands.h"
#include "supervisor/executions/execution_result.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/executions/output.h"
#include "supervisor/executions/raw_exec.h"

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
  auto pack_dir = ResolveDirOption("--pack-dir", options.pack_dir);
  auto env_dir = ResolveDirOption("--env-dir", options.env_dir);
  for (const auto* dir : {&pack_dir, &env_dir}) {
    if (!*dir) {
      std::fprintf(stderr, "packvisor: error: %s\n", dir->error().message().c_str());
      return kExitOwnError;
    }
  }
  RawExecRequest request;
  request.pack_dir = *pack_dir;
  request.env_dir = *env_dir;
  request.network = options.network;
  request.timeout_seconds = options.timeout_seconds;
  request.memory_mb = options.memory_mb;
  request.pids = options.pids;
  request.cpu_percent = options.cpu_percent;
  request.command = options.command;
  // Human mode: the command's output reaches the terminal as it is written (see FdStreamer).
  std::unique_ptr<FdStreamer> streamer;
  if (!options.json) {
    streamer = std::make_unique<FdStreamer>();
    request.live_stdout = streamer->To(STDOUT_FILENO);
    request.live_stderr = streamer->To(STDERR_FILENO);
  }
  const envs::RuntimeRegistry no_runtimes;  // a raw command uses no runtime definition
  ExecutionResult result = RunRawExec(ExecutionContext{config, no_runtimes}, std::move(request));
  if (streamer) streamer->Finish();  // RunRawExec gave the streams their last bytes
  // Bad options, and a sandbox that could not be launched at all, are packvisor's own errors:
  // one line, no result object.
  if (result.status == ExecutionStatus::kRejected || result.launch_failed) {
    std::fprintf(stderr, "packvisor: error: %s\n", result.error.value_or("").c_str());
    return kExitOwnError;
  }
  if (options.json) {
    std::cout << result.ToJsonLine() << std::endl;
  } else {
    PrintExecResultHuman(result);
  }
  return result.ExitStatus();
}

}  // namespace packvisor
