// One execution of one action (SPEC §7): resolve it, validate its inputs, build the sandbox, run
// it, capture and parse its output. Secrets travel only in the stdin document (or the private
// parameter file / inline-shell prelude inside the sandbox) and are wiped here after delivery.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "envs/runtime.h"
#include "supervisor/config.h"
#include "supervisor/execution_result.h"

namespace packvisor {

struct RunRequest {
  std::string action_ref;  // "pack.action"
  nlohmann::json parameters = nlohmann::json::object();
  nlohmann::json secrets = nlohmann::json::object();  // wiped by RunExecution
  std::optional<double> timeout_seconds;              // overrides the action's and the config's
  std::optional<std::string> inline_code;             // runs instead of the entry point
  std::string execution_id;                           // generated when empty
  int cancel_fd = -1;                                 // readable: cancel the execution
  // Names of parameters that came from the command line (visible in `ps`): a parameter the
  // action declares `secret: true` is refused among them.
  std::set<std::string> parameters_from_argv;
};

struct ExecutionContext {
  const Config& config;
  const envs::RuntimeRegistry& runtimes;
};

// Never throws and never returns an Error: every outcome, bad input included, is a result with a
// status (rejected, setup_failed, ...), and ExitStatus() gives the CLI's exit status. Error texts
// never contain a secret value.
ExecutionResult RunExecution(const ExecutionContext& context, RunRequest request);

// Overwrites every string of `value` in place (secret values, documents that held them).
void WipeJson(nlohmann::json& value);
void WipeString(std::string& text);

}  // namespace packvisor
