// The result object of SPEC §7 (the --json output and the API body) and the exit statuses of §8.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "sandbox/launcher.h"
#include "sandbox/os/error.h"
#include "supervisor/executions/output.h"

namespace packvisor {

// kAbandoned: a daemon found the execution unfinished when it started again (the supervisor
// that ran it was killed); never produced by RunExecution itself.
enum class ExecutionStatus {
  kSucceeded,
  kFailed,
  kTimedOut,
  kCancelled,
  kSetupFailed,
  kRejected,
  kAbandoned
};

const char* ExecutionStatusName(ExecutionStatus status);
// The status named `name` (ExecutionStatusName's inverse); nullopt for any other text.
std::optional<ExecutionStatus> ExecutionStatusFromName(std::string_view name);

struct ExecutionResult {
  std::string execution_id;
  std::string action_ref;
  ExecutionStatus status = ExecutionStatus::kFailed;
  std::optional<int> exit_code;
  std::optional<int> signal;
  nlohmann::json result;  // null unless parsed
  std::string stdout_text;
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  uint64_t stdout_bytes_truncated = 0;
  uint64_t stderr_bytes_truncated = 0;
  bool timed_out = false;
  int64_t duration_ms = 0;   // the whole execution, an environment build included
  int64_t env_build_ms = 0;  // of duration_ms: building the environment (0: it was ready)
  std::optional<std::string> error;
  int64_t cpu_ms = 0;
  int64_t max_rss_kb = 0;
  // Set when the command could not be executed at all (126/127).
  std::optional<int> start_failure_exit;
  // `result` holds the lines of a jsonl output: human mode prints one per line. Not in ToJson().
  bool result_is_lines = false;
  // RunSandbox itself failed (status setup_failed): no sandbox ran, and `packvisor exec` reports
  // `error` as its own error line, not as a result. Not in ToJson().
  bool launch_failed = false;
  // When the launcher released the verified action to exec (sandbox::SandboxResult::released_at);
  // unset when it never was. The daemon's launch-latency histogram ends there. Not in ToJson().
  std::optional<std::chrono::steady_clock::time_point> released_at;

  nlohmann::json ToJson() const;
  // ToJson() as one line. The action's output may be any bytes: invalid UTF-8 is replaced by
  // U+FFFD rather than failing the whole result.
  std::string ToJsonLine() const;
  // SPEC §8: the action's code; 124 timeout; 125 packvisor's error; 126 not startable;
  // 127 not found; 128+N signal.
  int ExitStatus() const;
};

// The inverse of ExecutionResult::ToJson(), for adapters that receive a result object (the daemon's
// client): ToJson(ExecutionResultFromJson(ToJson(r))) == ToJson(r). Fields ToJson() does not write
// (start_failure_exit, result_is_lines) stay at their defaults; ExitStatus() is unchanged by that
// for every result a launch can produce, since a command that could not start carries its 126/127
// in exit_code. A missing or mistyped field is an error naming it.
Result<ExecutionResult> ExecutionResultFromJson(const nlohmann::json& object);

// Human mode's one line about how an execution ended, without the action ref (the caller puts it
// in front): "succeeded (exit 0) in 12 ms", "failed (exit 3) in 40 ms: disk is full",
// "rejected: missing required parameter 'who'", followed for each truncated stream by
// "; stdout truncated: N bytes not kept (execution.max_stdout_bytes)".
std::string HumanSummary(const ExecutionResult& result);

// A fresh random execution id (UUID v4 text).
std::string NewExecutionId();

// Combines how the sandbox ended with the captured output.
// Moves the captured output out of `out` and `err`. `timeout_seconds` is the timeout as the caller
// gave it (0.05 is reported as "0.05 s", not rounded).
ExecutionResult ResultFromSandbox(const sandbox::SandboxResult& sandbox_result, CappedOutput& out,
                                  CappedOutput& err, std::string execution_id,
                                  std::string action_ref, double timeout_seconds,
                                  const std::string& command);

}  // namespace packvisor
