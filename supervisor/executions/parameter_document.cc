#include "supervisor/executions/parameter_document.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "envs/document_limits.h"

namespace packvisor {
namespace {

// Nested keys a dotenv line can carry after the '.' that joins them: not empty, no '.', '=',
// quote, space or newline (so a flattened key reads back unambiguously).
bool IsDotenvKey(const std::string& key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

void Flatten(const nlohmann::json& value, const std::string& prefix, bool top,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (value.is_object() && (top || DotenvFlattens(value))) {
    for (const auto& [key, child] : value.items()) {
      Flatten(child, prefix.empty() ? key : prefix + "." + key, false, out);
    }
    return;
  }
  out.emplace_back(prefix, ScalarText(value));
}

// A float as nlohmann writes it, with a '.' in the mantissa ("1e+100" -> "1.0e+100"): YAML 1.1
// loaders (PyYAML) read an exponent without a '.' as a string.
std::string YamlFloat(const nlohmann::json& value) {
  std::string text = value.dump();
  if (text.find('.') == std::string::npos) {
    size_t exponent = text.find_first_of("eE");
    text.insert(exponent == std::string::npos ? text.size() : exponent, ".0");
  }
  return text;
}

void EmitYaml(YAML::Emitter& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, child] : value.items()) {
        // Quoted: a plain key such as `yes`, `1` or `null` is not a string to every loader.
        // An implicit key is at most 1024 characters once escaped ("\x01" is 4): a longer one
        // is written as an explicit "? " key.
        out << YAML::Key;
        if (key.size() > 200) out << YAML::LongKey;
        out << YAML::DoubleQuoted << key << YAML::Value;
        EmitYaml(out, child);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& child : value) EmitYaml(out, child);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      out << YAML::DoubleQuoted << value.get<std::string>();
      break;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    case nlohmann::json::value_t::number_float:
      out << YamlFloat(value);
      break;
    default:
      out << value.dump();
      break;
  }
}

}  // namespace

bool DotenvFlattens(const nlohmann::json& object) {
  if (!object.is_object() || object.empty()) return false;
  for (const auto& [key, child] : object.items()) {
    if (!IsDotenvKey(key)) return false;
  }
  return true;
}

std::string ScalarText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return {};
  return value.dump();
}

std::string SingleQuote(const std::string& value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string ShellIdentifier(const std::string& key) {
  if (key.empty()) return "_";
  std::string ident = key;
  for (char& c : ident) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  if (std::isdigit(static_cast<unsigned char>(ident[0]))) ident[0] = '_';
  return ident;
}

nlohmann::json ParameterValueFromText(const std::optional<ParamType>& declared,
                                      const std::string& text) {
  if (declared == ParamType::kString) return text;
  // Deeper JSON stays text (which validation then refuses for a structured type): a parsed
  // value is copied and dumped recursively.
  if (JsonNestsDeeperThan(text, kMaxParameterDepth)) return text;
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  return parsed.is_discarded() ? nlohmann::json(text) : parsed;
}

std::string FormatParameterDocument(const nlohmann::json& inputs, ParameterFormat format) {
  switch (format) {
    case ParameterFormat::kJson:
      return inputs.dump() + "\n";
    case ParameterFormat::kDotenv: {
      std::vector<std::pair<std::string, std::string>> flat;
      Flatten(inputs, "", true, flat);
      std::sort(flat.begin(), flat.end());
      std::string text;
      for (const auto& [key, value] : flat) text += key + "=" + SingleQuote(value) + "\n";
      return text;
    }
    case ParameterFormat::kYaml: {
      // Every non-ASCII character as a \u or \U escape: a noncharacter (U+FFFE) did not read
      // back through yaml-cpp, and YAML 1.1 loaders fold U+0085 and U+2028 in a double-quoted
      // string as line breaks. An ASCII document reads back the same in every loader.
      YAML::Emitter out;
      out.SetOutputCharset(YAML::EscapeNonAscii);
      EmitYaml(out, inputs);
      return std::string(out.c_str()) + "\n";
    }
  }
  return {};
}

std::string ShellHelpersScript(const nlohmann::json& inputs, const std::string& code) {
  std::string script = "#!/bin/bash\nset -e\n\n# Action parameters\n";
  for (const auto& [key, value] : inputs.items()) {
    std::string ident = ShellIdentifier(key);
    std::string upper = ident;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string quoted = SingleQuote(ScalarText(value));
    script += "PARAM_" + upper + "=" + quoted + "\n";
    script += ident + "=" + quoted + "\n";
  }
  script += "\n# Action code\n" + code;
  if (script.back() != '\n') script += "\n";
  return script;
}

}  // namespace packvisor
