// supervisor/executions/: the execution service that the CLI (and later a daemon and a queue
// worker) call: one execution of an action (execution.h), its result object (execution_result.h),
// output capture (output.h), the parameter document (parameter_document.h), result parsing
// (result_parsing.h), environment settings (environments.h) and packvisor's own exit statuses
// (exit_status.h). It uses packs/ and config/ (and envs/, sandbox/); it never includes cli/.
//
// One execution of one action (SPEC §7): resolve it, validate its inputs, build the sandbox, run
// it, capture and parse its output. Secrets travel only in the stdin document (or the private
// parameter file / inline-shell prelude inside the sandbox) and are wiped here after delivery.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "envs/runtime.h"
#include "supervisor/config/config.h"
#include "supervisor/executions/execution_result.h"
#include "supervisor/executions/output.h"

namespace packvisor {

struct RunRequest {
  std::string action_ref;  // "pack.action"
  nlohmann::json parameters = nlohmann::json::object();
  // `--param NAME=TEXT` in order, applied over `parameters` once the action is known: each TEXT
  // is read by NAME's declared type (ParameterValueFromText).
  std::vector<std::pair<std::string, std::string>> parameter_texts;
  nlohmann::json secrets = nlohmann::json::object();  // wiped by RunExecution
  std::optional<double> timeout_seconds;              // overrides the action's and the config's
  std::optional<std::string> inline_code;             // runs instead of the entry point
  std::string execution_id;                           // generated when empty
  int cancel_fd = -1;                                 // readable: cancel the execution
  // Names of parameters that came from the command line (visible in `ps`): a parameter the
  // action declares `secret: true` is refused among them.
  std::set<std::string> parameters_from_argv;
  // When set, receive the captured stdout/stderr as it arrives (exactly what the result keeps);
  // they must outlive the call.
  LiveOutput* live_stdout = nullptr;
  LiveOutput* live_stderr = nullptr;
};

struct ExecutionContext {
  const Config& config;
  const envs::RuntimeRegistry& runtimes;
};

// Never throws and never returns an Error: every outcome, bad input included, is a result with a
// status (rejected, setup_failed, ...), and ExitStatus() gives the CLI's exit status. Error texts
// never contain a secret value, nor the action ref (the result carries it). Secrets the action
// does not declare are ignored (not delivered) and their names logged at info level, so one
// secrets file can serve every action of a pack.
ExecutionResult RunExecution(const ExecutionContext& context, RunRequest request);

// Why a request would be refused before anything is prepared for it: the daemon answers 404 for
// kUnknownAction (no such pack or action) and 400 for kInvalidInput (parameters, secrets, the
// timeout, a disabled or broken action, a network the pack may not have) before it accepts.
enum class RequestProblem { kNone, kUnknownAction, kInvalidInput };
struct RequestCheck {
  RequestProblem problem;
  // Exactly the `error` of the `rejected` result RunExecution would give the same request ("" for
  // kNone). Never a secret value.
  std::string message;
};

// The checks RunExecution makes before it builds an environment or a sandbox, by the same code,
// without running anything. RunExecution makes them again (the packs may change in between), so a
// request that passes here and fails there still ends `rejected`. `request` is not changed; its
// copies of the secrets are wiped.
RequestCheck CheckRunRequest(const ExecutionContext& context, const RunRequest& request);

// Overwrites every string of `value` in place (secret values, documents that held them).
void WipeJson(nlohmann::json& value);
void WipeString(std::string& text);

}  // namespace packvisor
