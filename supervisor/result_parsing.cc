#include "supervisor/result_parsing.h"

#include <yaml-cpp/yaml.h>

#include <sstream>
#include <vector>

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
  if (depth > 64) return Failure("parse output", "yaml", "nested too deeply");
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

Result<nlohmann::json> ParseActionOutput(const std::string& stdout_text, OutputFormat format) {
  if (format == OutputFormat::kText) return nlohmann::json(nullptr);  // no copy of a large text
  std::string trimmed = Trim(stdout_text);
  if (trimmed.empty()) return nlohmann::json(nullptr);
  switch (format) {
    case OutputFormat::kJson: {
      auto whole = nlohmann::json::parse(trimmed, nullptr, false);
      if (!whole.is_discarded()) return whole;
      std::vector<std::string> lines = NonEmptyLines(trimmed);
      auto last = nlohmann::json::parse(lines.back(), nullptr, false);
      if (!last.is_discarded()) return last;
      return Failure("parse output", "json", "stdout (and its last line) is not valid JSON");
    }
    case OutputFormat::kJsonl: {
      nlohmann::json array = nlohmann::json::array();
      size_t number = 0;
      for (const std::string& line : NonEmptyLines(trimmed)) {
        ++number;
        auto value = nlohmann::json::parse(line, nullptr, false);
        if (value.is_discarded()) {
          return Failure("parse output", "jsonl",
                         "line " + std::to_string(number) + " is not valid JSON");
        }
        array.push_back(std::move(value));
      }
      return array;
    }
    case OutputFormat::kYaml: {
      try {
        return YamlToJson(YAML::Load(trimmed), 0);
      } catch (const YAML::Exception& e) {
        return Failure("parse output", "yaml",
                       "not a valid YAML document (line " + std::to_string(e.mark.line + 1) + ")");
      }
    }
    case OutputFormat::kText:
      break;
  }
  return nlohmann::json(nullptr);
}

std::string FailureSummary(int exit_code, const std::string& stderr_text) {
  std::string trimmed = Trim(stderr_text);
  if (trimmed.empty()) return "exited with code " + std::to_string(exit_code);
  std::vector<std::string> lines = NonEmptyLines(trimmed);
  if (lines.size() > 5) return lines.back();
  return trimmed;
}

}  // namespace packvisor
