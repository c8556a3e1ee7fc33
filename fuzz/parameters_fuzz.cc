// Parameter input: the JSON object of --params-json, a parameters or secrets file (ParseObject),
// the texts of --param read by their declared type (ParameterValueFromText), then
// ValidateParameters against one of a few fixed schemas covering every ParamType, required,
// defaults, enum, minimum/maximum and secret: true.
//
// Input: byte 0 picks the schema; the rest is the JSON text, optionally followed by "\n--\n" and
// --param lines NAME=TEXT. Invariants: nothing throws; a refusal is one clean line (valid UTF-8);
// the value of a secret parameter never appears in an error text; a validated result validates
// again to itself and formats into every parameter document without throwing; ParseObject wipes
// the text it was given.
#include <string>
#include <utility>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "supervisor/cli/run_command.h"
#include "supervisor/executions/parameter_document.h"
#include "supervisor/packs/packs.h"

namespace {

using nlohmann::json;
using packvisor::Action;
using packvisor::ParameterSpec;
using packvisor::ParamType;
using packvisor::fuzz::CheckOneLineMessage;
using packvisor::fuzz::CheckSecretAbsent;

ParameterSpec Spec(std::optional<ParamType> type, bool required = false,
                   std::optional<json> default_value = std::nullopt,
                   std::vector<json> enum_values = {}, bool secret = false) {
  ParameterSpec spec;
  spec.type = type;
  spec.required = required;
  spec.default_value = std::move(default_value);
  spec.enum_values = std::move(enum_values);
  spec.secret = secret;
  return spec;
}

std::vector<Action> MakeSchemas() {
  std::vector<Action> schemas(3);
  // Nothing required: every type, defaults, enums, bounds, optional secrets.
  auto& open = schemas[0].parameters;
  open["s"] = Spec(ParamType::kString);
  open["i"] = Spec(ParamType::kInteger, false, json(5));
  open["i"].minimum = 0;
  open["i"].maximum = 100;
  open["n"] = Spec(ParamType::kNumber);
  open["n"].minimum = -1.5;
  open["b"] = Spec(ParamType::kBoolean, false, json(true));
  open["o"] = Spec(ParamType::kObject, false, json({{"k", "v"}}));
  open["a"] = Spec(ParamType::kArray);
  open["e"] = Spec(ParamType::kString, false, json("beta"), {"alpha", "beta", "gamma"});
  open["ei"] = Spec(ParamType::kInteger, false, std::nullopt, {1, 2, 3});
  open["any"] = Spec(std::nullopt);
  open["token"] = Spec(ParamType::kString, false, std::nullopt, {}, true);
  open["pin"] = Spec(ParamType::kInteger, false, std::nullopt, {}, true);
  // Required ones, secret and not, and a secret object.
  auto& strict = schemas[1].parameters;
  strict["name"] = Spec(ParamType::kString, true);
  strict["count"] = Spec(ParamType::kInteger, true);
  strict["password"] = Spec(ParamType::kString, true, std::nullopt, {}, true);
  strict["creds"] = Spec(ParamType::kObject, false, std::nullopt, {}, true);
  strict["mode"] = Spec(ParamType::kString, false, json("fast"), {"fast", "slow"}, true);
  strict["ratio"] = Spec(ParamType::kNumber, false, json(0.5));
  strict["ratio"].minimum = 0;
  strict["ratio"].maximum = 1;
  // schemas[2]: no parameters at all.
  return schemas;
}

const std::vector<Action>& Schemas() {
  static const std::vector<Action> schemas = MakeSchemas();
  return schemas;
}

bool IsSecret(const Action& action, const std::string& name) {
  auto spec = action.parameters.find(name);
  return spec != action.parameters.end() && spec->second.secret;
}

// The string leaves of `value`, keys included (what a leak would show).
void Strings(const json& value, std::vector<std::string>* out) {
  if (value.is_string()) {
    out->push_back(value.get<std::string>());
  } else if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      out->push_back(key);
      Strings(child, out);
    }
  } else if (value.is_array()) {
    for (const auto& child : value) Strings(child, out);
  } else if (value.is_number()) {
    out->push_back(value.dump());
  }
}

// `value` with every string leaf replaced by one of the same length that no schema holds.
json Masked(const json& value) {
  if (value.is_string()) return std::string(value.get_ref<const std::string&>().size(), '\x1e');
  if (value.is_array() || value.is_object()) {
    json copy = value;
    for (auto& child : copy) child = Masked(child);
    return copy;
  }
  return value;
}

void CheckError(const packvisor::Error& error) {
  std::string message = error.message();
  CheckOneLineMessage(message);
  PV_FUZZ_CHECK(packvisor::IsValidUtf8(message), "error is not UTF-8: " + message);
}

void Validate(const Action& action, const json& inputs) {
  auto validated = packvisor::ValidateParameters(action, inputs);
  if (!validated) {
    CheckError(validated.error());
    std::string message = validated.error().message();
    // The same inputs with every secret masked: a secret's text that shows up only with its real
    // value in place came from that value (else it is a name or schema text that happens to
    // equal it).
    json masked = inputs;
    std::vector<std::string> secrets;
    for (auto& [name, value] : masked.items()) {
      if (!IsSecret(action, name)) continue;
      Strings(value, &secrets);
      value = Masked(value);
    }
    auto again = packvisor::ValidateParameters(action, masked);
    // Text that may show up in a message by right: names (the schema's and the input's), enum
    // values, and the message of the masked inputs (masking may change which check fails first).
    std::string public_text = again ? std::string() : again.error().message();
    for (const auto& [name, spec] : action.parameters) {
      public_text += "\n" + name;
      for (const json& value : spec.enum_values) public_text += "\n" + value.dump();
    }
    for (const auto& [name, value] : inputs.items()) public_text += "\n" + name;
    for (const std::string& secret : secrets) {
      if (public_text.find(secret) == std::string::npos) CheckSecretAbsent(message, secret);
    }
    return;
  }
  auto twice = packvisor::ValidateParameters(action, *validated);
  PV_FUZZ_CHECK(twice.ok(), "a validated result is refused: " + twice.error().message());
  PV_FUZZ_CHECK(*twice == *validated, "validation is not idempotent: " + validated->dump());
  for (auto format : {packvisor::ParameterFormat::kJson, packvisor::ParameterFormat::kDotenv,
                      packvisor::ParameterFormat::kYaml}) {
    std::string document = packvisor::FormatParameterDocument(*validated, format);
    PV_FUZZ_CHECK(
        !document.empty() || (format == packvisor::ParameterFormat::kDotenv && validated->empty()),
        "empty parameter document");
  }
  (void)packvisor::ShellHelpersScript(*validated, "true");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Action& action = Schemas()[data[0] % Schemas().size()];
  std::string_view rest = packvisor::fuzz::AsText(data + 1, size - 1);
  size_t separator = rest.find("\n--\n");
  std::string text(rest.substr(0, separator));
  std::vector<std::pair<std::string, std::string>> param_texts;
  if (separator != std::string_view::npos) {
    std::string_view lines = rest.substr(separator + 4);
    while (!lines.empty()) {
      std::string_view line = lines.substr(0, lines.find('\n'));
      lines.remove_prefix(std::min(lines.size(), line.size() + 1));
      size_t eq = line.find('=');
      if (eq == std::string_view::npos || eq == 0) continue;  // refused by the CLI itself
      param_texts.emplace_back(line.substr(0, eq), line.substr(eq + 1));
    }
  }

  packvisor::fuzz::NoThrow("parameters", [&] {
    std::string copy = text;
    auto parsed = packvisor::ParseObject(copy, "--params-json");
    PV_FUZZ_CHECK(copy.find_first_not_of('\0') == std::string::npos, "text not wiped");
    json inputs = json::object();
    if (!parsed) {
      CheckError(parsed.error());
      std::string message = parsed.error().message();
      PV_FUZZ_CHECK(message == "invalid JSON --params-json: not valid JSON" ||
                        message == "invalid JSON --params-json: expected a JSON object" ||
                        message == "invalid JSON --params-json: nested deeper than 64 levels",
                    message);
      if (param_texts.empty()) return;
    } else {
      inputs = std::move(*parsed);
    }
    for (const auto& [name, value_text] : param_texts) {
      auto declared = action.parameters.find(name);
      inputs[name] = packvisor::ParameterValueFromText(
          declared == action.parameters.end() ? std::nullopt : declared->second.type, value_text);
    }
    Validate(action, inputs);
  });
  return 0;
}
