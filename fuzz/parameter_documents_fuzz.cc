// What packvisor writes for an action: the parameter document (FormatParameterDocument: json,
// dotenv, yaml), the shell helpers of inline shell (ShellHelpersScript) and SingleQuote.
//
// Input: a JSON object (parsed with the depth limit parameters have), and the raw bytes for
// SingleQuote. Invariants, each a round trip: the JSON document is one line that parses back
// (nlohmann) to the inputs; the YAML document loads back (yaml-cpp) to the same values, every
// key quoted and every plain scalar one that YAML 1.1 loaders (PyYAML) read as the same type;
// the dotenv document, read by the strict reader below (the quoting docs/executions.md gives),
// has each key once with its ScalarText; SingleQuote(x) read back as POSIX shell quoting gives
// x; the shell helpers assign each input's ScalarText to a valid identifier.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "envs/document_limits.h"
#include "fuzz/fuzz_support.h"
#include "supervisor/executions/parameter_document.h"
#include "supervisor/packs/packs.h"

namespace {

using nlohmann::json;
using packvisor::ParameterFormat;
using packvisor::ScalarText;

// Reads one POSIX-shell word made of '...' runs and \' (what SingleQuote writes) from the front
// of `text`; nullopt when it does not start with one.
std::optional<std::string> ReadSingleQuoted(std::string_view* text) {
  std::string value;
  bool any = false;
  for (;;) {
    if (text->substr(0, 2) == "\\'") {
      value += '\'';
      text->remove_prefix(2);
    } else if (!text->empty() && text->front() == '\'') {
      size_t close = text->find('\'', 1);
      if (close == std::string_view::npos) return std::nullopt;
      value.append(text->substr(1, close - 1));
      text->remove_prefix(close + 1);
    } else {
      break;
    }
    any = true;
  }
  if (!any) return std::nullopt;
  return value;
}

// The strict dotenv reader: KEY='value' lines, KEY without '=', '\'' or a newline, the value
// single-quoted as above (newlines inside the quotes are part of it).
std::optional<std::vector<std::pair<std::string, std::string>>> ReadDotenv(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> entries;
  while (!text.empty()) {
    size_t eq = text.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string key(text.substr(0, eq));
    if (key.find_first_of("\n'") != std::string::npos) return std::nullopt;
    text.remove_prefix(eq + 1);
    std::optional<std::string> value = ReadSingleQuoted(&text);
    if (!value || text.empty() || text.front() != '\n') return std::nullopt;
    text.remove_prefix(1);
    entries.emplace_back(std::move(key), std::move(*value));
  }
  return entries;
}

// Which nested objects the dotenv document flattens (docs/executions.md): non-empty ones whose
// keys are all made of [A-Za-z0-9_-]; any other is one compact JSON value.
bool Flattens(const json& object) {
  static const std::regex kKey("[A-Za-z0-9_-]+");
  if (object.empty()) return false;
  for (const auto& [key, child] : object.items()) {
    if (!std::regex_match(key, kKey)) return false;
  }
  return true;
}

// What the dotenv document holds, as docs/executions.md describes it: nested objects flattened
// with '.', every other value as its ScalarText.
void Flatten(const json& value, const std::string& prefix, bool top,
             std::vector<std::pair<std::string, std::string>>* out) {
  if (value.is_object() && (top || Flattens(value))) {
    for (const auto& [key, child] : value.items()) {
      Flatten(child, prefix.empty() ? key : prefix + "." + key, false, out);
    }
    return;
  }
  out->emplace_back(prefix, ScalarText(value));
}

// YAML 1.1 (PyYAML) reads these plain scalars as the JSON values nlohmann wrote.
bool PlainScalarReadsTheSame(const std::string& text, const json& value) {
  static const std::regex kInt("-?(0|[1-9][0-9]*)");
  static const std::regex kFloat("-?(0|[1-9][0-9]*)\\.[0-9]+([eE][-+][0-9]+)?");
  if (value.is_null()) return text == "~" || text == "null";
  if (value.is_boolean()) return text == "true" || text == "false";
  if (value.is_number_integer()) return std::regex_match(text, kInt);
  if (value.is_number_float()) return std::regex_match(text, kFloat);
  return false;
}

// The YAML node as the action's loader reads it, checked against `expected` on the way.
void CheckYaml(const YAML::Node& node, const json& expected, const std::string& document) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      PV_FUZZ_CHECK(expected.is_object(), "YAML mapping for a non-object: " + document);
      PV_FUZZ_CHECK(node.size() == expected.size(), "YAML mapping size differs: " + document);
      for (const auto& entry : node) {
        YAML::Node key = entry.first;
        YAML::Node child = entry.second;
        PV_FUZZ_CHECK(key.IsScalar() && key.Tag() == "!", "a YAML key is not quoted: " + document);
        PV_FUZZ_CHECK(expected.contains(key.Scalar()), "unexpected YAML key: " + document);
        CheckYaml(child, expected[key.Scalar()], document);
      }
      return;
    }
    case YAML::NodeType::Sequence: {
      PV_FUZZ_CHECK(expected.is_array(), "YAML sequence for a non-array: " + document);
      PV_FUZZ_CHECK(node.size() == expected.size(), "YAML sequence size differs: " + document);
      for (size_t i = 0; i < node.size(); ++i) CheckYaml(node[i], expected[i], document);
      return;
    }
    case YAML::NodeType::Null:
      PV_FUZZ_CHECK(expected.is_null(), "YAML null for a value: " + document);
      return;
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!") {
        PV_FUZZ_CHECK(expected.is_string() && node.Scalar() == expected.get<std::string>(),
                      "quoted YAML scalar differs: " + document);
      } else {
        PV_FUZZ_CHECK(
            !expected.is_string() && PlainScalarReadsTheSame(node.Scalar(), expected),
            "plain YAML scalar " + node.Scalar() + " for " + expected.dump() + ": " + document);
        json read = json::parse(node.Scalar());
        PV_FUZZ_CHECK(read == expected, "YAML scalar reads back differently: " + document);
      }
      return;
    case YAML::NodeType::Undefined:
      break;
  }
  packvisor::fuzz::Fail("undefined YAML node", document);
}

bool IsIdentifier(std::string_view text) {
  static const std::regex kIdentifier("[A-Za-z_][A-Za-z0-9_]*");
  return std::regex_match(text.begin(), text.end(), kIdentifier);
}

void CheckShellHelpers(const json& inputs) {
  const std::string code = "echo \"$name\"";
  std::string script = packvisor::ShellHelpersScript(inputs, code);
  std::string_view rest = script;
  const std::string_view head = "#!/bin/bash\nset -e\n\n# Action parameters\n";
  PV_FUZZ_CHECK(rest.substr(0, head.size()) == head, script);
  rest.remove_prefix(head.size());
  for (const auto& [key, value] : inputs.items()) {
    std::string names[2];  // PARAM_<UPPER>='...', then <ident>='...'
    for (std::string& name : names) {
      size_t eq = rest.find('=');
      PV_FUZZ_CHECK(eq != std::string_view::npos, script);
      name = std::string(rest.substr(0, eq));
      PV_FUZZ_CHECK(IsIdentifier(name), "not a shell identifier: " + name);
      rest.remove_prefix(eq + 1);
      std::optional<std::string> read = ReadSingleQuoted(&rest);
      PV_FUZZ_CHECK(read && *read == ScalarText(value), "shell value differs: " + script);
      PV_FUZZ_CHECK(!rest.empty() && rest.front() == '\n', script);
      rest.remove_prefix(1);
    }
    std::string upper = names[1];
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    PV_FUZZ_CHECK(names[0] == "PARAM_" + upper, "PARAM_ name differs: " + script);
  }
  PV_FUZZ_CHECK(rest == "\n# Action code\n" + code + "\n", script);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string raw(packvisor::fuzz::AsText(data, size));
  packvisor::fuzz::NoThrow("parameter documents", [&] {
    std::string quoted = packvisor::SingleQuote(raw);
    std::string_view rest = quoted;
    std::optional<std::string> read = ReadSingleQuoted(&rest);
    PV_FUZZ_CHECK(read && rest.empty() && *read == raw, "SingleQuote does not read back");

    if (packvisor::JsonNestsDeeperThan(raw, packvisor::kMaxParameterDepth)) return;
    json inputs = json::parse(raw, nullptr, false);
    if (inputs.is_discarded() || !inputs.is_object()) return;
    // Documents are written for validated parameters only: ValidateParameters refuses text no
    // document can carry (a noncharacter such as U+FFFE in the yaml one).
    if (packvisor::ParameterTextProblem(inputs)) return;

    std::string document = packvisor::FormatParameterDocument(inputs, ParameterFormat::kJson);
    PV_FUZZ_CHECK(document.find('\n') == document.size() - 1, "JSON document is not one line");
    PV_FUZZ_CHECK(json::parse(document) == inputs, "JSON document differs: " + document);

    document = packvisor::FormatParameterDocument(inputs, ParameterFormat::kYaml);
    YAML::Node loaded;
    try {
      loaded = YAML::Load(document);
    } catch (const YAML::Exception& e) {
      packvisor::fuzz::Fail("YAML document does not load: " + e.msg, document);
    }
    CheckYaml(loaded, inputs, document);

    // The top-level keys of a parameter document are parameter names (identifiers): the others
    // never reach it (ValidateParameters refuses undeclared names).
    json parameters = json::object();
    for (const auto& [key, value] : inputs.items()) {
      if (IsIdentifier(key)) parameters[key] = value;
    }
    document = packvisor::FormatParameterDocument(parameters, ParameterFormat::kDotenv);
    auto entries = ReadDotenv(document);
    PV_FUZZ_CHECK(entries.has_value(), "dotenv document does not read back: " + document);
    std::vector<std::pair<std::string, std::string>> expected;
    Flatten(parameters, "", true, &expected);
    std::sort(expected.begin(), expected.end());
    std::map<std::string, std::string> by_key;
    for (const auto& [key, value] : *entries) {
      PV_FUZZ_CHECK(by_key.emplace(key, value).second, "dotenv key twice: " + key);
    }
    PV_FUZZ_CHECK(*entries == expected, "dotenv document differs: " + document);

    CheckShellHelpers(inputs);
  });
  return 0;
}
