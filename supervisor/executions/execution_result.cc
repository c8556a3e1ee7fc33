#include "supervisor/executions/execution_result.h"

#include <sys/random.h>

#include <cstdio>
#include <cstring>
#include <type_traits>

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

std::optional<ExecutionStatus> ExecutionStatusFromName(std::string_view name) {
  for (ExecutionStatus status :
       {ExecutionStatus::kSucceeded, ExecutionStatus::kFailed, ExecutionStatus::kTimedOut,
        ExecutionStatus::kCancelled, ExecutionStatus::kSetupFailed, ExecutionStatus::kRejected,
        ExecutionStatus::kAbandoned}) {
    if (name == ExecutionStatusName(status)) return status;
  }
  return std::nullopt;
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

namespace {

// Reads the field `key` of `object` into `out` when present and of the right type; a missing
// field keeps the default unless `required`; null is accepted where `out` is optional.
template <typename T>
Result<void> ReadField(const nlohmann::json& object, const char* key, T* out,
                       bool required = false) {
  auto it = object.find(key);
  if (it == object.end()) {
    if (required) return Failure("result object", key, "missing");
    return Ok{};
  }
  auto wrong = [key](const char* want) {
    return Failure("result object", key, std::string("expected ") + want);
  };
  const nlohmann::json& value = *it;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!value.is_string()) return wrong("a string");
    *out = value.get<std::string>();
  } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
    if (value.is_null()) {
      out->reset();
    } else if (value.is_string()) {
      *out = value.get<std::string>();
    } else {
      return wrong("a string or null");
    }
  } else if constexpr (std::is_same_v<T, std::optional<int>>) {
    if (value.is_null()) {
      out->reset();
    } else if (value.is_number_integer()) {
      *out = value.get<int>();
    } else {
      return wrong("an integer or null");
    }
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!value.is_boolean()) return wrong("a boolean");
    *out = value.get<bool>();
  } else {
    static_assert(std::is_integral_v<T>);
    if (!value.is_number_integer()) return wrong("an integer");
    if constexpr (std::is_unsigned_v<T>) {
      if (!value.is_number_unsigned()) return wrong("a non-negative integer");
    }
    *out = value.get<T>();
  }
  return Ok{};
}

}  // namespace

Result<ExecutionResult> ExecutionResultFromJson(const nlohmann::json& object) {
  if (!object.is_object()) return Failure("result object", "", "expected a JSON object");
  ExecutionResult r;
  std::string status;
  PV_TRY(ReadField(object, "execution_id", &r.execution_id, true));
  PV_TRY(ReadField(object, "action_ref", &r.action_ref, true));
  PV_TRY(ReadField(object, "status", &status, true));
  std::optional<ExecutionStatus> parsed = ExecutionStatusFromName(status);
  if (!parsed) return Failure("result object", "status", "unknown status \"" + status + "\"");
  r.status = *parsed;
  PV_TRY(ReadField(object, "exit_code", &r.exit_code));
  PV_TRY(ReadField(object, "signal", &r.signal));
  if (auto it = object.find("result"); it != object.end()) r.result = *it;
  PV_TRY(ReadField(object, "stdout", &r.stdout_text));
  PV_TRY(ReadField(object, "stderr", &r.stderr_text));
  PV_TRY(ReadField(object, "stdout_truncated", &r.stdout_truncated));
  PV_TRY(ReadField(object, "stderr_truncated", &r.stderr_truncated));
  PV_TRY(ReadField(object, "stdout_bytes_truncated", &r.stdout_bytes_truncated));
  PV_TRY(ReadField(object, "stderr_bytes_truncated", &r.stderr_bytes_truncated));
  PV_TRY(ReadField(object, "timed_out", &r.timed_out));
  PV_TRY(ReadField(object, "duration_ms", &r.duration_ms));
  PV_TRY(ReadField(object, "env_build_ms", &r.env_build_ms));
  PV_TRY(ReadField(object, "error", &r.error));
  if (auto it = object.find("usage"); it != object.end()) {
    if (!it->is_object()) return Failure("result object", "usage", "expected a JSON object");
    PV_TRY(ReadField(*it, "cpu_ms", &r.cpu_ms));
    PV_TRY(ReadField(*it, "max_rss_kb", &r.max_rss_kb));
  }
  return r;
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

namespace {

// A number of seconds as a person wrote it: "30", "0.05", "1.5" (millisecond precision, which is
// the launcher's).
std::string SecondsText(double seconds) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.3f", seconds);
  std::string s = text;
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

ExecutionResult ResultFromSandbox(const sandbox::SandboxResult& sandbox_result, CappedOutput& out,
                                  CappedOutput& err, std::string execution_id,
                                  std::string action_ref, double timeout_seconds,
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
  r.released_at = sandbox_result.released_at;
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
      r.error = "timed out after " + SecondsText(timeout_seconds) + " s";
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
