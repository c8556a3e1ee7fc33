// Turning an action's stdout into `result` (SPEC §7), on exit 0 only.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "sandbox/os/error.h"
#include "supervisor/packs.h"

namespace packvisor {

// text: null. json: the whole (trimmed) stdout, else its last non-empty line. jsonl: an array of
// every non-empty line (each must parse). yaml: the document. Empty stdout gives null. An Error
// (naming the format, never quoting the output) when it does not parse.
Result<nlohmann::json> ParseActionOutput(const std::string& stdout_text, OutputFormat format);

// The error text of a failed action (attune's rule): "exited with code N" when stderr is empty,
// its last line when it has more than 5 lines, else all of it (trimmed).
std::string FailureSummary(int exit_code, const std::string& stderr_text);

}  // namespace packvisor
