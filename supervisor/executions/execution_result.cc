#include "supervisor/executions/execution_result.h"

#include <sys/random.h>

#include <cstdio>
#include <cstring>

#include "supervisor/executions/result_parsing.h"

namespace packvisor {

const char* ExecutionStatusName(ExecutionStatus status) {
  switch (status) {
    case ExecutionStatus::kSucceeded:
      return "succeeded";
    case ExecutionStatus::kFailed:
      return "failed";
    case ExecutionStatus::kTimedOut:
      return "timed_out";
    case ExecutionStatus::kCancelled:
      return "cancelled";
    case ExecutionStatus::kSetupFailed:
      return "setup_failed";
    case ExecutionStatus::kRejected:
      return "rejected";
    case ExecutionStatus::kAbandoned:
      return "abandoned";
  }
  return "failed";
}

std::string NewExecutionId() {
  unsigned char bytes[16] = {};
  ssize_t got = getrandom(bytes, sizeof(bytes), 0);
  (void)got;  // getrandom with a 16-byte request does not fail short once the pool is ready
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80);
  char text[37];
  std::snprintf(text, sizeof(text),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
                bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8],
                bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
  return text;
}

nlohmann::json ExecutionResult::ToJson() const {
  nlohmann::json j;
  j["execution_id"] = execution_id;
  j["action_ref"] = action_ref;
  j["status"] = ExecutionStatusName(status);
  j["exit_code"] = exit_code ? nlohmann::json(*exit_code) : nlohmann::json(nullptr);
  j["signal"] = signal ? nlohmann::json(*signal) : nlohmann::json(nullptr);
  j["result"] = result;
  j["stdout"] = stdout_text;
  j["stderr"] = stderr_text;
  j["stdout_truncated"] = stdout_truncated;
  j["stderr_truncated"] = stderr_truncated;
  j["stdout_bytes_truncated"] = stdout_bytes_truncated;
  j["stderr_bytes_truncated"] = stderr_bytes_truncated;
  j["timed_out"] = timed_out;
  j["duration_ms"] = duration_ms;
  j["env_build_ms"] = env_build_ms;
  j["error"] = error ? nlohmann::json(*error) : nlohmann::json(nullptr);
  j["usage"] = {{"cpu_ms", cpu_ms}, {"max_rss_kb", max_rss_kb}};
  return j;
}

std::string ExecutionResult::ToJsonLine() const {
  return ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int ExecutionResult::ExitStatus() const {
  if (start_failure_exit) return *start_failure_exit;  // 126/127: could not start, not found
  switch (status) {
    case ExecutionStatus::kTimedOut:
      return 124;
    case ExecutionStatus::kSetupFailed:
    case ExecutionStatus::kRejected:
    case ExecutionStatus::kAbandoned:
      return 125;
    case ExecutionStatus::kCancelled:
      return 128 + 15;
    case ExecutionStatus::kSucceeded:
    case ExecutionStatus::kFailed:
      break;
  }
  if (signal) return 128 + *signal;
  if (exit_code) return *exit_code;  // the action's own, also when its output did not parse
  return 125;
}

std::string HumanSummary(const ExecutionResult& result) {
  std::string line = ExecutionStatusName(result.status);
  // Rejected (and set-up failures before the launch) never ran: no duration to speak of.
  bool started = result.status != ExecutionStatus::kRejected &&
                 !(result.status == ExecutionStatus::kSetupFailed && result.duration_ms == 0);
  if (result.exit_code) line += " (exit " + std::to_string(*result.exit_code) + ")";
  if (result.signal) line += " (signal " + std::to_string(*result.signal) + ")";
  if (started) line += " in " + std::to_string(result.duration_ms) + " ms";
  if (result.env_build_ms > 0) {
    line += " (environment build " + std::to_string(result.env_build_ms) + " ms)";
  }
  if (result.error) line += ": " + *result.error;
  if (result.stdout_truncated) {
    line += "; stdout truncated: " + std::to_string(result.stdout_bytes_truncated) +
            " bytes not kept (execution.max_stdout_bytes)";
  }
  if (result.stderr_truncated) {
    line += "; stderr truncated: " + std::to_string(result.stderr_bytes_truncated) +
            " bytes not kept (execution.max_stderr_bytes)";
  }
  return line;
}

ExecutionResult ResultFromSandbox(const sandbox::SandboxResult& sandbox_result, CappedOutput& out,
                                  CappedOutput& err, std::string execution_id,
                                  std::string action_ref, int64_t timeout_seconds,
                                  const std::string& command) {
  using sandbox::Outcome;
  ExecutionResult r;
  r.execution_id = std::move(execution_id);
  r.action_ref = std::move(action_ref);
  r.stdout_truncated = out.truncated();
  r.stderr_truncated = err.truncated();
  r.stdout_bytes_truncated = out.bytes_truncated();
  r.stderr_bytes_truncated = err.bytes_truncated();
  r.stdout_text = out.TakeText();
  r.stderr_text = err.TakeText();
  r.duration_ms = sandbox_result.duration.count();
  r.cpu_ms = sandbox_result.cpu_ms;
  r.max_rss_kb = sandbox_result.max_rss_kb;
  switch (sandbox_result.outcome) {
    case Outcome::kExited:
      r.exit_code = sandbox_result.exit_code;
      r.status =
          sandbox_result.exit_code == 0 ? ExecutionStatus::kSucceeded : ExecutionStatus::kFailed;
      if (sandbox_result.exit_code != 0) {
        r.error = FailureSummary(sandbox_result.exit_code, r.stderr_text);
      }
      break;
    case Outcome::kSignaled:
      r.signal = sandbox_result.signal;
      r.status = ExecutionStatus::kFailed;
      r.error = std::string("killed by signal ") + std::to_string(sandbox_result.signal) + " (" +
                strsignal(sandbox_result.signal) + ")";
      break;
    case Outcome::kTimedOut:
      r.status = ExecutionStatus::kTimedOut;
      r.timed_out = true;
      r.error = "timed out after " + std::to_string(timeout_seconds) + " s";
      break;
    case Outcome::kCancelled:
      r.status = ExecutionStatus::kCancelled;
      r.error = "cancelled";
      break;
    case Outcome::kSetupFailed:
      r.status = ExecutionStatus::kSetupFailed;
      r.error = sandbox_result.FailureMessage();
      break;
    case Outcome::kExecFailed:
      r.status = ExecutionStatus::kFailed;
      r.exit_code = sandbox_result.exit_code;
      r.start_failure_exit = sandbox_result.exit_code;
      r.error = sandbox_result.failed_errno == ENOENT
                    ? "command not found in the sandbox: " + command
                    : "command could not be executed in the sandbox: " + command + ": " +
                          std::strerror(sandbox_result.failed_errno);
      break;
  }
  if (sandbox_result.oom_killed &&
      (r.status == ExecutionStatus::kFailed || r.status == ExecutionStatus::kSucceeded)) {
    r.status = ExecutionStatus::kFailed;
    r.error =
        "out of memory (limit " + std::to_string(sandbox_result.memory_limit_bytes >> 20) + " MiB)";
  }
  return r;
}

}  // namespace packvisor
