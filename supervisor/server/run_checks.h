// What POST /v1/executions refuses before accepting: an unknown pack or action (404) and what
// `run` would reject at once (400, with the message `run` prints). Over the execution service's
// own checks, so that the daemon and the CLI refuse the same requests with the same words.
#pragma once

#include <optional>
#include <string>

#include "supervisor/executions/execution.h"

namespace packvisor {

struct RunRefusal {
  int code = 400;  // 404 or 400
  std::string message;
};

std::optional<RunRefusal> CheckRunBeforeAccepting(const ExecutionContext& context,
                                                  const RunRequest& request);

}  // namespace packvisor
