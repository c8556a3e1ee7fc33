// `packvisor run`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "supervisor/config/config.h"

namespace packvisor {

struct RunOptions {
  std::string action_ref;
  std::vector<std::string> params;          // K=V; V read by the declared type (RunRequest)
  std::optional<std::string> params_json;   // JSON text, or @FILE
  std::optional<std::string> secrets_file;  // a JSON object
  bool secrets_stdin = false;               // a JSON object on stdin
  std::optional<double> timeout_seconds;
  bool json = false;
};

int RunRunCommand(const Config& config, const RunOptions& options);

}  // namespace packvisor
