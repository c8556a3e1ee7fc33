#include "supervisor/server/run_checks.h"

#include "supervisor/packs/packs.h"

namespace packvisor {

std::optional<RunRefusal> CheckRunBeforeAccepting(const ExecutionContext& context,
                                                  const RunRequest& request) {
  auto resolved =
      ResolveAction(context.config.packs_base_dir, request.action_ref, &context.runtimes);
  if (!resolved) {
    bool not_found = resolved.error().err == ENOENT;
    return RunRefusal{not_found ? 404 : 400,
                      request.action_ref + ": " +
                          (not_found ? resolved.error().subject : resolved.error().message())};
  }
  // The secrets the action declares count as inputs (as in RunExecution); the copy is wiped.
  nlohmann::json inputs = request.parameters;
  for (const auto& [name, value] : request.secrets.items()) {
    if (resolved->action.parameters.count(name) && !inputs.contains(name)) inputs[name] = value;
  }
  auto validated = ValidateParameters(resolved->action, inputs);
  WipeJson(inputs);
  if (!validated) return RunRefusal{400, request.action_ref + ": " + validated.error().message()};
  WipeJson(*validated);
  return std::nullopt;
}

}  // namespace packvisor
