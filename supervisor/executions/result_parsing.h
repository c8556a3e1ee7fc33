// Turning an action's stdout into `result` (SPEC §7), on exit 0 only.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "supervisor/packs/packs.h"

namespace packvisor {

// What an action's stdout gave: `result` (null when there is none) and, when some or all of the
// output did not parse, `error` naming the failure (never quoting the output, which may hold
// secrets). A parse failure never changes the execution's status: that follows the exit code.
struct ParsedOutput {
  nlohmann::json result;
  std::optional<std::string> error;
};

// Action output nests at most this deep (JSON and YAML alike); deeper output is refused before a
// parser sees it (nlohmann-json and yaml-cpp recurse once per level), as the pack YAML is.
inline constexpr int kMaxOutputDepth = kMaxYamlDepth;

// text: null. json: the whole (trimmed) stdout, else its last non-empty line; neither parsing
// is an error. jsonl: an array of the lines that parse (blank lines ignored); bad lines are
// skipped and counted in the error with the first one's line number; null when no line parses.
// yaml: the (first) document, whose aliases may expand it to at most kMaxYamlNodes plus one node
// per byte of stdout (what the text could hold without aliases). Empty stdout gives null. JSON
// text nested deeper than kMaxOutputDepth counts as not parsing; YAML deeper than that is an
// error. Never throws.
ParsedOutput ParseActionOutput(const std::string& stdout_text, OutputFormat format);

// The error text of a failed action (attune's rule): "exited with code N" when stderr is empty,
// its last line when it has more than 5 lines, else all of it (trimmed).
std::string FailureSummary(int exit_code, const std::string& stderr_text);

}  // namespace packvisor
