#include "supervisor/executions/result_parsing.h"

#include <yaml-cpp/yaml.h>

#include <sstream>
#include <vector>

#include "envs/document_limits.h"
#include "sandbox/os/error.h"

namespace packvisor {
namespace {

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return {};
  size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

std::vector<std::string> NonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::string trimmed = Trim(line);
    if (!trimmed.empty()) lines.push_back(trimmed);
  }
  return lines;
}

// Converts a node of a document CheckYamlBudget passed. Aliases are expanded here, so depth and
// node count are charged again (an alias may point into its own anchor: a cycle).
Result<nlohmann::json> YamlToJson(const YAML::Node& node, int depth, uint64_t* nodes_left) {
  auto fail = [&](const std::string& detail) {
    int line = node.IsDefined() && !node.Mark().is_null() ? node.Mark().line + 1 : 0;
    return Failure("", line > 0 ? "line " + std::to_string(line) : "", detail);
  };
  if (depth > kMaxOutputDepth) {
    return fail("nested deeper than " + std::to_string(kMaxOutputDepth) + " levels");
  }
  if (*nodes_left == 0) return fail("too many nodes once aliases are expanded (refused)");
  --*nodes_left;
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nlohmann::json(nullptr);
    case YAML::NodeType::Sequence: {
      nlohmann::json array = nlohmann::json::array();
      for (const auto& child : node) {
        auto value = YamlToJson(child, depth + 1, nodes_left);
        if (!value) return value.error();
        array.push_back(std::move(*value));
      }
      return array;
    }
    case YAML::NodeType::Map: {
      nlohmann::json object = nlohmann::json::object();
      // Copies: yaml-cpp's iterator->first refers into a temporary.
      for (const auto& entry : node) {
        YAML::Node key = entry.first;
        YAML::Node child = entry.second;
        if (!key.IsScalar()) return fail("a mapping key is not a string");
        if (!IsValidUtf8(key.Scalar())) return fail("a mapping key is not valid UTF-8");
        auto value = YamlToJson(child, depth + 1, nodes_left);
        if (!value) return value.error();
        object[key.Scalar()] = std::move(*value);
      }
      return object;
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (!IsValidUtf8(text)) return fail("a string is not valid UTF-8");
      if (node.Tag() == "!") return nlohmann::json(text);  // quoted: a string
      auto parsed = nlohmann::json::parse(text, nullptr, false);
      if (!parsed.is_discarded() && !parsed.is_object() && !parsed.is_array()) return parsed;
      if (text == "true" || text == "True") return nlohmann::json(true);
      if (text == "false" || text == "False") return nlohmann::json(false);
      if (text == "~" || text == "null") return nlohmann::json(nullptr);
      return nlohmann::json(text);
    }
  }
  return nlohmann::json(nullptr);
}

// `text` parsed as JSON; nullopt when it does not parse or nests deeper than kMaxOutputDepth
// (then `*too_deep` is set), checked first: nlohmann-json recurses when it copies, compares,
// dumps or frees a value.
std::optional<nlohmann::json> ParseJson(const std::string& text, bool* too_deep) {
  if (JsonNestsDeeperThan(text, kMaxOutputDepth)) {
    *too_deep = true;
    return std::nullopt;
  }
  auto value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

}  // namespace

ParsedOutput ParseActionOutput(const std::string& stdout_text, OutputFormat format) {
  ParsedOutput parsed;
  if (format == OutputFormat::kText) return parsed;  // no copy of a large text
  std::string trimmed = Trim(stdout_text);
  if (trimmed.empty()) return parsed;
  switch (format) {
    case OutputFormat::kJson: {
      bool too_deep = false;
      if (auto whole = ParseJson(trimmed, &too_deep)) {
        parsed.result = std::move(*whole);
        break;
      }
      std::vector<std::string> lines = NonEmptyLines(trimmed);
      if (auto last = ParseJson(lines.back(), &too_deep)) {
        parsed.result = std::move(*last);
        break;
      }
      parsed.error =
          too_deep ? "output_format json: stdout is not valid JSON nested at most " +
                         std::to_string(kMaxOutputDepth) + " levels deep, nor is its last line"
                   : "output_format json: stdout is not valid JSON, nor is its last line";
      break;
    }
    case OutputFormat::kJsonl: {
      // Line numbers count every line of stdout, blank ones included, from 1.
      nlohmann::json array = nlohmann::json::array();
      size_t number = 0;
      size_t bad = 0;
      size_t first_bad = 0;
      bool too_deep = false;
      std::istringstream in(stdout_text);
      std::string line;
      while (std::getline(in, line)) {
        ++number;
        std::string item = Trim(line);
        if (item.empty()) continue;
        auto value = ParseJson(item, &too_deep);
        if (!value) {
          if (bad++ == 0) first_bad = number;
          continue;
        }
        array.push_back(std::move(*value));
      }
      if (!array.empty()) parsed.result = std::move(array);
      if (bad > 0) {
        parsed.error =
            "output_format jsonl: skipped " + std::to_string(bad) +
            (bad == 1 ? " line" : " lines") + " that " + (bad == 1 ? "is" : "are") +
            " not valid JSON" +
            (too_deep ? " nested at most " + std::to_string(kMaxOutputDepth) + " levels deep"
                      : "") +
            " (the first at line " + std::to_string(first_bad) + ")";
      }
      break;
    }
    case OutputFormat::kYaml: {
      // Aliases may expand the document, but not beyond what its text could hold without them.
      uint64_t max_nodes = kMaxYamlNodes + trimmed.size();
      if (auto budget = CheckYamlBudget(trimmed, max_nodes); !budget) {
        parsed.error = "output_format yaml: " + budget.error().message();
        break;
      }
      try {
        auto value = YamlToJson(YAML::Load(trimmed), 0, &max_nodes);
        if (value) {
          parsed.result = std::move(*value);
        } else {
          parsed.error = "output_format yaml: " + value.error().message();
        }
      } catch (const YAML::Exception& e) {
        parsed.error = "output_format yaml: stdout is not a valid YAML document (line " +
                       std::to_string(e.mark.line + 1) + ")";
      }
      break;
    }
    case OutputFormat::kText:
      break;
  }
  return parsed;
}

std::string FailureSummary(int exit_code, const std::string& stderr_text) {
  std::string trimmed = Trim(stderr_text);
  if (trimmed.empty()) return "exited with code " + std::to_string(exit_code);
  std::vector<std::string> lines = NonEmptyLines(trimmed);
  if (lines.size() > 5) return lines.back();
  return trimmed;
}

}  // namespace packvisor
