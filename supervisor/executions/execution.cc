#include "supervisor/executions/execution.h"

#include <spdlog/spdlog.h>
#include <string.h>

#include <cmath>
#include <map>

#include "envs/environment.h"
#include "sandbox/launcher.h"
#include "supervisor/config/sandbox_defaults.h"
#include "supervisor/config/tenancy.h"
#include "supervisor/executions/environments.h"
#include "supervisor/executions/output.h"
#include "supervisor/executions/parameter_document.h"
#include "supervisor/executions/result_parsing.h"
#include "supervisor/packs/packs.h"

namespace packvisor {
namespace {

constexpr const char* kParameterFile = "/tmp/packvisor-parameters";
constexpr size_t kMaxInputBytes = 8u << 20;  // parameters ∪ secrets, serialized

ExecutionResult Rejected(const RunRequest& request, std::string error, int exit_status = 125) {
  ExecutionResult result;
  result.execution_id = request.execution_id;
  result.action_ref = request.action_ref;
  result.status = ExecutionStatus::kRejected;
  result.error = std::move(error);
  if (exit_status != 125) result.start_failure_exit = exit_status;
  return result;
}

// Everything the sandbox needs for this action, computed before launch.
struct Invocation {
  std::vector<std::string> argv;
  std::string stdin_document;  // may hold secrets
  std::vector<sandbox::SandboxFile> files;
  std::map<std::string, std::string> extra_env;  // sandbox.set_env, then the runtime's env_vars
  bool parameter_file = false;
};

Result<std::string> InlineFileName(const envs::RuntimeDefinition& runtime) {
  std::string extension = runtime.inline_code.extension.empty() ? runtime.interpreter.file_extension
                                                                : runtime.inline_code.extension;
  if (!extension.empty() && extension[0] != '.') extension = "." + extension;
  return "/tmp/packvisor-inline" + extension;
}

Result<Invocation> BuildInvocation(const Config& config, const Action& action,
                                   const envs::RuntimeDefinition& runtime,
                                   const RunRequest& request, const nlohmann::json& inputs) {
  Invocation invocation;
  envs::TemplateValues values;
  values.pack_dir = std::string(envs::kSandboxPackDir);
  if (runtime.environment) values.env_dir = std::string(envs::kSandboxEnvDir);
  // The environment's interpreter where the runtime has one (python: /env/bin/python3).
  auto interpreter = envs::InterpreterFor(runtime, envs::CommandPhase::kExecute);
  if (!interpreter) return interpreter.error();
  values.interpreter = *interpreter;
  if (!request.inline_code) values.action_file = action.sandbox_entry_path;
  auto interpreter_args = envs::SubstituteArgv(runtime.interpreter.args, values);
  if (!interpreter_args) return interpreter_args.error();

  bool helpers = false;
  invocation.argv.push_back(*interpreter);
  if (!request.inline_code) {
    invocation.argv.insert(invocation.argv.end(), interpreter_args->begin(),
                           interpreter_args->end());
    invocation.argv.push_back(action.sandbox_entry_path);
  } else if (runtime.inline_code.strategy == envs::InlineStrategy::kDirect) {
    // As the original platform: interpreter -c CODE, without the interpreter's args.
    invocation.argv.push_back("-c");
    invocation.argv.push_back(*request.inline_code);
  } else {
    auto name = InlineFileName(runtime);
    if (!name) return name.error();
    helpers = runtime.inline_code.shell_helpers;
    std::string content =
        helpers ? ShellHelpersScript(inputs, *request.inline_code) : *request.inline_code;
    invocation.files.push_back({*name, std::move(content), 0400});
    invocation.argv.insert(invocation.argv.end(), interpreter_args->begin(),
                           interpreter_args->end());
    invocation.argv.push_back(*name);
  }

  // The runtime's prepend/append extend the operator's fixed values.
  std::map<std::string, std::string> env = config.sandbox.set_env;
  if (auto applied = envs::ApplyEnvVars(runtime, values, &env); !applied) return applied.error();
  invocation.extra_env = std::move(env);

  // With shell helpers the inputs are in the script's prelude and nothing goes to stdin.
  if (!helpers) {
    std::string document = FormatParameterDocument(inputs, action.parameter_format);
    if (document.size() > kMaxInputBytes) {
      WipeString(document);
      return Failure("", "",
                     "parameters and secrets together exceed " +
                         std::to_string(kMaxInputBytes >> 20) + " MiB");
    }
    if (action.parameter_delivery == ParameterDelivery::kFile) {
      invocation.files.push_back({kParameterFile, std::move(document), 0400});
      invocation.parameter_file = true;
    } else {
      invocation.stdin_document = std::move(document);
    }
  }
  return invocation;
}

std::vector<std::string> EnvironmentList(
    const Config& config, const std::string& env_dir,
    const std::map<std::string, std::string>& extra,
    const std::vector<std::pair<std::string, std::string>>& context_vars) {
  // Base (PATH, HOME, LANG, TMPDIR, passthrough), then `extra` (sandbox.set_env with the
  // runtime's env_vars applied onto it), then the context variables (PACKVISOR_*, ATTUNE_*),
  // which nothing overrides.
  std::vector<std::string> base = SandboxEnvironment(config, env_dir, {});
  std::vector<std::pair<std::string, std::string>> merged;
  for (const std::string& entry : base) {
    size_t eq = entry.find('=');
    merged.emplace_back(entry.substr(0, eq), entry.substr(eq + 1));
  }
  auto set = [&merged](const std::string& name, const std::string& value) {
    for (auto& [existing, old] : merged) {
      if (existing == name) {
        old = value;
        return;
      }
    }
    merged.emplace_back(name, value);
  };
  for (const auto& [name, value] : extra) set(name, value);
  for (const auto& [name, value] : context_vars) set(name, value);
  std::vector<std::string> env;
  for (const auto& [name, value] : merged) env.push_back(name + "=" + value);
  return env;
}

}  // namespace

void WipeString(std::string& text) { explicit_bzero(text.data(), text.size()); }

void WipeJson(nlohmann::json& value) {
  if (value.is_string()) {
    WipeString(value.get_ref<std::string&>());
  } else if (value.is_structured()) {
    for (auto& child : value) WipeJson(child);
  }
}

namespace {

// What the checks of a request found: everything the launch needs, or why it is refused.
struct CheckedRequest {
  RequestProblem problem = RequestProblem::kNone;
  std::string message;  // when problem != kNone: the rejected result's `error`
  int exit_status = 125;
  std::optional<ResolvedAction> resolved;
  bool host_network = false;
  const envs::RuntimeDefinition* runtime = nullptr;
  EffectiveLimits limits;
  std::optional<Invocation> invocation;  // may hold secrets: the caller wipes it
  double timeout_seconds = 0;
};

CheckedRequest Refuse(RequestProblem problem, std::string message, int exit_status = 125) {
  CheckedRequest checked;
  checked.problem = problem;
  checked.message = std::move(message);
  checked.exit_status = exit_status;
  return checked;
}

void WipeInvocation(Invocation& invocation) {
  WipeString(invocation.stdin_document);
  for (auto& file : invocation.files) WipeString(file.content);
}

// Every check of a request that needs no environment and no sandbox, in the order RunExecution
// has always made them: the action, its network, the inputs, the runtime, the limits, the
// invocation and the timeout. Applies `parameter_texts` to request.parameters and drops (wiping)
// the secrets the action does not declare, as delivery needs.
CheckedRequest CheckRequest(const ExecutionContext& context, RunRequest& request) {
  const Config& config = context.config;
  auto resolved = ResolveAction(config.packs_base_dir, request.action_ref, &context.runtimes);
  if (!resolved) {
    // Not found (ENOENT): the text says so; strerror would only repeat it.
    bool not_found = resolved.error().err == ENOENT;
    if (not_found) return Refuse(RequestProblem::kUnknownAction, resolved.error().subject, 127);
    return Refuse(RequestProblem::kInvalidInput, resolved.error().message());
  }
  const Pack& pack = resolved->pack;
  const Action& action = resolved->action;
  if (!action.enabled) {
    return Refuse(RequestProblem::kInvalidInput,
                  "disabled (enabled: false in " + action.source + ")");
  }

  bool pack_has_host_network = false;
  for (const std::string& ref : config.sandbox.host_network_packs) {
    pack_has_host_network = pack_has_host_network || ref == pack.ref;
  }
  if (action.network == NetworkMode::kHost && !pack_has_host_network) {
    return Refuse(RequestProblem::kInvalidInput,
                  "asks for network: host (" + action.source + "), but pack " + pack.ref +
                      " is not in sandbox.host_network_packs (" + config.source + ")");
  }

  for (const std::string& name : request.parameters_from_argv) {
    auto declared = action.parameters.find(name);
    if (declared != action.parameters.end() && declared->second.secret) {
      return Refuse(RequestProblem::kInvalidInput,
                    "parameter \"" + name +
                        "\" is secret: give it with --secrets-file or --secrets-stdin, "
                        "never on the command line");
    }
  }
  if (!request.parameters.is_object() || !request.secrets.is_object()) {
    return Refuse(RequestProblem::kInvalidInput, "parameters and secrets must be JSON objects");
  }
  for (const auto& [name, text] : request.parameter_texts) {
    auto declared = action.parameters.find(name);
    request.parameters[name] = ParameterValueFromText(
        declared == action.parameters.end() ? std::nullopt : declared->second.type, text);
  }
  // Secrets the action does not declare are not delivered: one secrets file may serve every
  // action of a pack. Only their names are logged.
  for (auto it = request.secrets.begin(); it != request.secrets.end();) {
    if (action.parameters.count(it.key())) {
      ++it;
      continue;
    }
    spdlog::info("secret \"{}\" ignored: {} declares no such parameter", it.key(),
                 action.action_ref);
    WipeJson(it.value());
    it = request.secrets.erase(it);
  }
  nlohmann::json inputs = request.parameters;
  struct WipeInputs {
    nlohmann::json& inputs;
    ~WipeInputs() { WipeJson(inputs); }
  } wipe_inputs{inputs};
  for (const auto& [name, value] : request.secrets.items()) {
    if (inputs.contains(name)) {
      return Refuse(RequestProblem::kInvalidInput,
                    "input \"" + name + "\" is given both as a parameter and as a secret");
    }
    inputs[name] = value;
  }
  auto validated = ValidateParameters(action, inputs);
  if (!validated) return Refuse(RequestProblem::kInvalidInput, validated.error().message());
  WipeJson(inputs);
  inputs = std::move(*validated);

  auto runtime = ChooseRuntime(action, context.runtimes);
  if (!runtime) return Refuse(RequestProblem::kInvalidInput, runtime.error().message());
  auto limits = ResolveLimits(config, (*runtime)->limits,
                              "runtime " + (*runtime)->name + " (" + (*runtime)->source + ")",
                              action.limits, action.source);
  if (!limits) return Refuse(RequestProblem::kInvalidInput, limits.error().message());

  auto invocation = BuildInvocation(config, action, **runtime, request, inputs);
  if (!invocation) return Refuse(RequestProblem::kInvalidInput, invocation.error().message());
  double timeout_seconds = request.timeout_seconds
                               ? *request.timeout_seconds
                               : static_cast<double>(action.timeout_seconds.value_or(
                                     config.execution.default_timeout_seconds));
  if (!(timeout_seconds > 0) || !std::isfinite(timeout_seconds)) {
    WipeInvocation(*invocation);
    return Refuse(RequestProblem::kInvalidInput, "timeout must be a positive number of seconds");
  }

  CheckedRequest checked;
  checked.host_network = pack_has_host_network && action.network != NetworkMode::kNone;
  checked.runtime = *runtime;
  checked.limits = *limits;
  checked.invocation = std::move(*invocation);
  checked.timeout_seconds = timeout_seconds;
  checked.resolved = std::move(*resolved);
  return checked;
}

}  // namespace

RequestCheck CheckRunRequest(const ExecutionContext& context, const RunRequest& request) {
  RunRequest copy;  // CheckRequest applies texts and drops undeclared secrets; the caller keeps its
  copy.action_ref = request.action_ref;
  copy.parameters = request.parameters;
  copy.parameter_texts = request.parameter_texts;
  copy.secrets = request.secrets;
  copy.timeout_seconds = request.timeout_seconds;
  copy.inline_code = request.inline_code;
  copy.parameters_from_argv = request.parameters_from_argv;
  struct WipeCopy {
    RunRequest& copy;
    ~WipeCopy() {
      WipeJson(copy.secrets);
      WipeJson(copy.parameters);  // may hold secret-declared parameters
    }
  } wipe_copy{copy};
  CheckedRequest checked = CheckRequest(context, copy);
  if (checked.invocation) WipeInvocation(*checked.invocation);
  return RequestCheck{checked.problem, std::move(checked.message)};
}

ExecutionResult RunExecution(const ExecutionContext& context, RunRequest request) {
  if (request.execution_id.empty()) request.execution_id = NewExecutionId();
  struct WipeSecrets {
    nlohmann::json& secrets;
    ~WipeSecrets() { WipeJson(secrets); }
  } wipe_request{request.secrets};
  const Config& config = context.config;

  CheckedRequest checked = CheckRequest(context, request);
  if (checked.problem != RequestProblem::kNone) {
    return Rejected(request, std::move(checked.message), checked.exit_status);
  }
  const Pack& pack = checked.resolved->pack;
  const Action& action = checked.resolved->action;
  const envs::RuntimeDefinition* runtime = checked.runtime;
  Invocation* invocation = &*checked.invocation;
  struct WipeInvocationOnExit {
    Invocation& invocation;
    ~WipeInvocationOnExit() { WipeInvocation(invocation); }
  } wipe_invocation{*invocation};
  const double timeout_seconds = checked.timeout_seconds;
  const bool host_network = checked.host_network;

  // The environment, built on first use (or rebuilt when its digest changed) and held for the
  // whole execution.
  auto ids = HostIdsForPack(config, pack.ref);
  if (!ids) {
    ExecutionResult result = Rejected(request, ids.error().message());
    result.status = ExecutionStatus::kSetupFailed;
    return result;
  }
  std::optional<envs::EnvironmentLease> environment;
  // Time spent building the environment (or waiting for another execution's build of it); part
  // of duration_ms, and shown on its own as env_build_ms.
  std::chrono::milliseconds env_build_time{0};
  if (runtime->environment) {
    envs::EnvironmentSettings settings = EnvironmentSettingsFrom(config);
    settings.base_spec.ids = *ids;
    envs::EnvironmentManager manager(std::move(settings));
    auto ensure_start = std::chrono::steady_clock::now();
    auto lease =
        manager.Ensure(pack.ref, pack.dir, *runtime, envs::Rebuild::kWhenNeeded, &env_build_time);
    if (!lease) {
      ExecutionResult result = Rejected(request, lease.error().message());
      result.status = ExecutionStatus::kSetupFailed;
      result.env_build_ms = env_build_time.count();
      result.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - ensure_start)
                               .count();
      return result;
    }
    environment = std::move(*lease);
  }

  sandbox::SandboxSpec spec = BaseSandboxSpec(config);
  spec.ids = *ids;
  spec.pack_dir = pack.dir;
  if (environment) spec.env_dir = environment->host_dir;
  spec.network = host_network ? sandbox::NetworkMode::kHost : sandbox::NetworkMode::kNone;
  spec.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(timeout_seconds * 1000)));
  ApplyLimits(checked.limits, &spec);
  spec.argv = invocation->argv;
  spec.files = invocation->files;
  std::vector<std::pair<std::string, std::string>> context_values = {
      {"EXEC_ID", request.execution_id},
      {"ACTION", action.action_ref},
      {"PACK_REF", pack.ref},
      {"PARAMETER_DELIVERY", std::string(ParameterDeliveryName(action.parameter_delivery))},
      {"PARAMETER_FORMAT", std::string(ParameterFormatName(action.parameter_format))}};
  if (invocation->parameter_file) context_values.emplace_back("PARAMETER_FILE", kParameterFile);
  spec.env = EnvironmentList(config, spec.env_dir, invocation->extra_env,
                             ContextVariables(context_values));
  struct WipeSpecFiles {
    sandbox::SandboxSpec& spec;
    ~WipeSpecFiles() {
      for (auto& file : spec.files) WipeString(file.content);
    }
  } wipe_spec{spec};

  CappedOutput out(config.execution.max_stdout_bytes, "stdout", request.live_stdout);
  CappedOutput err(config.execution.max_stderr_bytes, "stderr", request.live_stderr);
  sandbox::LaunchIo io;
  io.stdin_data = invocation->stdin_document;
  io.stdout_sink = &out;
  io.stderr_sink = &err;
  io.cancel_fd = request.cancel_fd;
  spdlog::debug("execution {}: {} with runtime {} ({} argv elements)", request.execution_id,
                action.action_ref, runtime->name, spec.argv.size());
  auto launched = sandbox::RunSandbox(spec, io, context.warm_pool);
  if (!launched) {
    ExecutionResult result = Rejected(request, launched.error().message());
    result.status = ExecutionStatus::kSetupFailed;
    result.env_build_ms = result.duration_ms = env_build_time.count();
    return result;
  }
  ExecutionResult result = ResultFromSandbox(*launched, out, err, request.execution_id,
                                             action.action_ref, timeout_seconds, spec.argv[0]);
  result.env_build_ms = env_build_time.count();
  result.duration_ms += result.env_build_ms;
  if (result.status == ExecutionStatus::kSucceeded) {
    // As the original platform: a parse failure sets `error` but the status follows the exit
    // code; a parsed result replaces stdout.
    ParsedOutput parsed = ParseActionOutput(result.stdout_text, action.output_format);
    result.error = std::move(parsed.error);
    if (!parsed.result.is_null()) {
      result.result = std::move(parsed.result);
      result.result_is_lines = action.output_format == OutputFormat::kJsonl;
      result.stdout_text.clear();
    }
  }
  spdlog::debug("execution {}: {} in {} ms", request.execution_id,
                ExecutionStatusName(result.status), result.duration_ms);
  return result;
}

}  // namespace packvisor
