#include "supervisor/executions/result_parsing.h"

#include <yaml-cpp/yaml.h>

#include <sstream>
#include <vector>

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

Result<nlohmann::json> YamlToJson(const YAML::Node& node, int depth) {
  if (depth > 64) return Failure("", "", "nested more than 64 levels deep");
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nlohmann::json(nullptr);
    case YAML::NodeType::Sequence: {
      nlohmann::json array = nlohmann::json::array();
      for (const auto& child : node) {
        auto value = YamlToJson(child, depth + 1);
        if (!value) return value.error();
        array.push_back(*value);
      }
      return array;
    }
    case YAML::NodeType::Map: {
      nlohmann::json object = nlohmann::json::object();
      for (const auto& entry : node) {
        auto value = YamlToJson(entry.second, depth + 1);
        if (!value) return value.error();
        object[entry.first.as<std::string>()] = *value;
      }
      return object;
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
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

}  // namespace

ParsedOutput ParseActionOutput(const std::string& stdout_text, OutputFormat format) {
  ParsedOutput parsed;
  if (format == OutputFormat::kText) return parsed;  // no copy of a large text
  std::string trimmed = Trim(stdout_text);
  if (trimmed.empty()) return parsed;
  switch (format) {
    case OutputFormat::kJson: {
      auto whole = nlohmann::json::parse(trimmed, nullptr, false);
      if (!whole.is_discarded()) {
        parsed.result = std::move(whole);
        break;
      }
      std::vector<std::string> lines = NonEmptyLines(trimmed);
      auto last = nlohmann::json::parse(lines.back(), nullptr, false);
      if (!last.is_discarded()) {
        parsed.result = std::move(last);
        break;
      }
      parsed.error = "output_format json: stdout is not valid JSON, nor is its last line";
      break;
    }
    case OutputFormat::kJsonl: {
      // Line numbers count every line of stdout, blank ones included, from 1.
      nlohmann::json array = nlohmann::json::array();
      size_t number = 0;
      size_t bad = 0;
      size_t first_bad = 0;
      std::istringstream in(stdout_text);
      std::string line;
      while (std::getline(in, line)) {
        ++number;
        std::string item = Trim(line);
        if (item.empty()) continue;
        auto value = nlohmann::json::parse(item, nullptr, false);
        if (value.is_discarded()) {
          if (bad++ == 0) first_bad = number;
          continue;
        }
        array.push_back(std::move(value));
      }
      if (!array.empty()) parsed.result = std::move(array);
      if (bad > 0) {
        parsed.error = "output_format jsonl: skipped " + std::to_string(bad) +
                       (bad == 1 ? " line" : " lines") + " that " + (bad == 1 ? "is" : "are") +
                       " not valid JSON (the first at line " + std::to_string(first_bad) + ")";
      }
      break;
    }
    case OutputFormat::kYaml: {
      try {
        auto value = YamlToJson(YAML::Load(trimmed), 0);
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
