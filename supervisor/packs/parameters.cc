#include "supervisor/packs/parameters.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "envs/names.h"

namespace packvisor {
namespace {

using nlohmann::json;

using detail::NameOf;
using detail::Quote;
using envs::Chars;
using envs::kDigits;
using envs::kLowerAlpha;
using envs::kUpperAlpha;
using envs::MatchesName;

const std::vector<std::pair<std::string_view, ParamType>> kParamTypes = {
    {"string", ParamType::kString}, {"integer", ParamType::kInteger},
    {"number", ParamType::kNumber}, {"boolean", ParamType::kBoolean},
    {"object", ParamType::kObject}, {"array", ParamType::kArray}};

// ---------------------------------------------------------------------------------------------
// Parameter values.

std::string_view JsonTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "binary";
  }
}

std::string FormatNumber(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
  return json(d).dump();
}

// Whether valid UTF-8 `text` holds a Unicode noncharacter (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF).
bool HoldsNoncharacter(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    auto lead = static_cast<unsigned char>(text[i]);
    size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    uint32_t code = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; k < length && i + k < text.size(); ++k) {
      code = (code << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    }
    if ((code >= 0xFDD0 && code <= 0xFDEF) || (code & 0xFFFE) == 0xFFFE) return true;
    i += length;
  }
  return false;
}

// Checks `value` against `spec`; an integer-valued float becomes an integer for an integer
// parameter. Returns the problem (without the value, which may be a secret) or nullopt.
std::optional<std::string> CheckValue(const ParameterSpec& spec, json* value) {
  if (spec.type) {
    bool ok = false;
    switch (*spec.type) {
      case ParamType::kString:
        ok = value->is_string();
        break;
      case ParamType::kInteger:
        if (value->is_number_integer()) {
          ok = true;
        } else if (value->is_number_float()) {
          double d = value->get<double>();
          if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18) {
            *value = static_cast<int64_t>(d);
            ok = true;
          }
        }
        break;
      case ParamType::kNumber:
        ok = value->is_number();
        break;
      case ParamType::kBoolean:
        ok = value->is_boolean();
        break;
      case ParamType::kObject:
        ok = value->is_object();
        break;
      case ParamType::kArray:
        ok = value->is_array();
        break;
    }
    if (!ok) {
      return "expected " + std::string(ParamTypeName(*spec.type)) + ", got " +
             std::string(JsonTypeName(*value));
    }
  }
  if (!spec.enum_values.empty() && std::find(spec.enum_values.begin(), spec.enum_values.end(),
                                             *value) == spec.enum_values.end()) {
    std::string allowed;
    for (const json& e : spec.enum_values) {
      allowed += (allowed.empty() ? "" : ", ") + e.dump();
      if (allowed.size() > 300) {
        allowed += ", ...";
        break;
      }
    }
    return "not one of the allowed values (" + allowed + ")";
  }
  if (value->is_number()) {
    double d = value->get<double>();
    if (spec.minimum && d < *spec.minimum) return "must be >= " + FormatNumber(*spec.minimum);
    if (spec.maximum && d > *spec.maximum) return "must be <= " + FormatNumber(*spec.maximum);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Parameter specs.

// The keys packvisor reads in one parameter's map; others (title, format, items, position, ...)
// are ignored like every unknown key of a level the original platform reads.
const std::vector<std::string_view> kParamKeys = {"type",   "required", "default", "enum",
                                                  "secret", "minimum",  "maximum", "description"};

// The keys packvisor reads at the top of the JSON-Schema form.
const std::vector<std::string_view> kSchemaKeys = {"type", "properties", "required"};

}  // namespace

std::string_view ParamTypeName(ParamType type) { return NameOf(kParamTypes, type); }

namespace detail {

std::optional<ParameterSpec> ParseParameter(const FileContext& ctx, const std::string& prefix,
                                            const YAML::Node& node, Budget* budget) {
  if (!node.IsMap()) {
    ctx.Add(LineOf(node), prefix, "expected a mapping {type, required, default, ...}");
    return std::nullopt;
  }
  size_t before = ctx.problems->errors();
  ParameterSpec spec;
  // The type first: it guides how default and enum scalars are read.
  if (node["type"]) spec.type = GetEnum(ctx, node["type"], prefix + ".type", kParamTypes);
  YAML::Node default_node;
  YAML::Node enum_node;
  ForEachKey(ctx, node, prefix, kParamKeys, [&](const std::string& key, const YAML::Node& v) {
    std::string full = prefix + "." + key;
    if (key == "type") {
      // read above
    } else if (key == "required") {
      spec.required = GetBool(ctx, v, full).value_or(false);
    } else if (key == "secret") {
      spec.secret = GetBool(ctx, v, full).value_or(false);
    } else if (key == "description") {
      spec.description = GetString(ctx, v, full).value_or("");
    } else if (key == "minimum") {
      spec.minimum = GetNumber(ctx, v, full);
    } else if (key == "maximum") {
      spec.maximum = GetNumber(ctx, v, full);
    } else if (key == "default") {
      default_node = v;
    } else if (key == "enum") {
      enum_node = v;
    } else {
      return false;
    }
    return true;
  });
  if ((spec.minimum || spec.maximum) && spec.type && *spec.type != ParamType::kInteger &&
      *spec.type != ParamType::kNumber) {
    ctx.Add(LineOf(node), prefix, "minimum/maximum apply only to integer and number parameters");
  }
  if (spec.minimum && spec.maximum && *spec.minimum > *spec.maximum) {
    ctx.Add(LineOf(node["minimum"]), prefix + ".minimum", "greater than maximum");
  }
  if (enum_node && !enum_node.IsNull()) {
    if (!enum_node.IsSequence() || enum_node.size() == 0) {
      ctx.Add(LineOf(enum_node), prefix + ".enum", "expected a non-empty list");
    } else {
      for (const YAML::Node& element : enum_node) {
        Result<json> value = ToJson(element, spec.type, 0, budget);
        if (!value.ok()) {
          ctx.Add(LineOf(element), prefix + ".enum", value.error().message());
          continue;
        }
        ParameterSpec type_only;
        type_only.type = spec.type;
        if (std::optional<std::string> bad = CheckValue(type_only, &*value)) {
          ctx.Add(LineOf(element), prefix + ".enum", *bad);
          continue;
        }
        spec.enum_values.push_back(std::move(*value));
      }
    }
  }
  if (default_node && !default_node.IsNull()) {
    Result<json> value = ToJson(default_node, spec.type, 0, budget);
    if (!value.ok()) {
      ctx.Add(LineOf(default_node), prefix + ".default", value.error().message());
    } else if (std::optional<std::string> bad = CheckValue(spec, &*value)) {
      ctx.Add(LineOf(default_node), prefix + ".default", *bad);
    } else {
      spec.default_value = std::move(*value);
    }
  }
  if (ctx.problems->errors() != before) return std::nullopt;
  return spec;
}

namespace {

// name -> spec entries of `properties` (the flat form's whole map, or the JSON-Schema form's
// `properties:`), keyed `prefix.<name>` in messages.
void ParseParameterMap(const FileContext& ctx, const YAML::Node& node, const std::string& prefix,
                       Budget* budget, std::map<std::string, ParameterSpec>* out) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    ctx.Add(LineOf(node), prefix, "expected a mapping of parameter name to specification");
    return;
  }
  ForEachKey(ctx, node, prefix, {}, [&](const std::string& param, const YAML::Node& spec) {
    std::string key = prefix + "." + param;
    if (!IsValidParameterName(param)) {
      ctx.Add(LineOf(spec), key,
              "not a valid parameter name (letters, digits and '_', not starting "
              "with a digit)");
    } else if (std::optional<ParameterSpec> parsed = ParseParameter(ctx, key, spec, budget)) {
      (*out)[param] = std::move(*parsed);
    }
    return true;
  });
}

// The JSON-Schema form: {type: object, properties: {...}, required: [...]}.
void ParseSchemaForm(const FileContext& ctx, const YAML::Node& node, Budget* budget,
                     std::map<std::string, ParameterSpec>* out) {
  const std::string prefix = "parameters";
  YAML::Node required;
  YAML::Node properties;
  ForEachKey(ctx, node, prefix, kSchemaKeys, [&](const std::string& key, const YAML::Node& v) {
    if (key == "type") {
      std::optional<std::string> type = GetString(ctx, v, prefix + ".type");
      if (type && *type != "object") {
        ctx.Add(LineOf(v), prefix + ".type",
                Quote(*type) + ": the JSON-Schema form of parameters has type object");
      }
    } else if (key == "properties") {
      properties = v;
    } else if (key == "required") {
      required = v;
    } else {
      return false;
    }
    return true;
  });
  if (properties) ParseParameterMap(ctx, properties, prefix + ".properties", budget, out);
  if (!required || required.IsNull()) return;
  if (!required.IsSequence()) {
    ctx.Add(LineOf(required), prefix + ".required", "expected a list of parameter names");
    return;
  }
  for (const YAML::Node& element : required) {
    std::optional<std::string> name = GetString(ctx, element, prefix + ".required");
    if (!name) continue;
    auto spec = out->find(*name);
    if (spec != out->end()) {
      spec->second.required = true;
    } else if (const YAML::Node& declared = properties;
               !declared || !declared.IsMap() || !declared[*name]) {
      // A required name that is no property could never be given (unknown parameters are
      // refused): the action could never run.
      ctx.Add(LineOf(element), prefix + ".required",
              Quote(*name) + " is not one of parameters.properties");
    }
  }
}

}  // namespace

void ParseParameters(const FileContext& ctx, const YAML::Node& node, Budget* budget,
                     std::map<std::string, ParameterSpec>* out) {
  if (node.IsMap() && node["type"] && node["type"].IsScalar()) {
    ParseSchemaForm(ctx, node, budget, out);
  } else {
    ParseParameterMap(ctx, node, "parameters", budget, out);
  }
}

bool IsValidParameterName(const std::string& name) {
  // Shell helpers turn parameter names into shell variables (SPEC §7): identifiers only.
  // ^[A-Za-z_][A-Za-z0-9_]{0,127}$
  return MatchesName(name, Chars({kLowerAlpha, kUpperAlpha, "_"}),
                     Chars({kLowerAlpha, kUpperAlpha, kDigits, "_"}), 127);
}

}  // namespace detail

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    unsigned char lead = byte(i);
    size_t length = lead < 0x80             ? 1
                    : (lead & 0xE0) == 0xC0 ? 2
                    : (lead & 0xF0) == 0xE0 ? 3
                    : (lead & 0xF8) == 0xF0 ? 4
                                            : 0;
    if (length == 0 || i + length > text.size()) return false;
    uint32_t code = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return false;
      code = (code << 6) | (byte(i + k) & 0x3F);
    }
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::optional<std::string> ParameterTextProblem(const json& value) {
  std::vector<const json*> pending = {&value};  // iterative: the value may nest deeply
  auto problem = [](std::string_view text) -> std::optional<std::string> {
    if (!IsValidUtf8(text)) return "not valid UTF-8";
    if (HoldsNoncharacter(text)) {
      return "holds a Unicode noncharacter (such as U+FFFE), which the yaml document cannot carry";
    }
    return std::nullopt;
  };
  while (!pending.empty()) {
    const json* next = pending.back();
    pending.pop_back();
    if (next->is_string()) {
      if (auto found = problem(next->get_ref<const std::string&>())) return found;
    } else if (next->is_object()) {
      for (const auto& [key, child] : next->items()) {
        if (auto found = problem(key)) return found;
        pending.push_back(&child);
      }
    } else if (next->is_array()) {
      for (const json& child : *next) pending.push_back(&child);
    }
  }
  return std::nullopt;
}

Result<json> ValidateParameters(const Action& action, const json& params) {
  // The action is not named: the caller's context (the result's action_ref) does that.
  auto fail = [&](const std::string& detail) { return Failure("", "", detail); };
  if (!params.is_object()) {
    return fail("parameters must be a JSON object, got " + std::string(JsonTypeName(params)));
  }
  json out = json::object();
  for (const auto& [name, value] : params.items()) {
    auto spec = action.parameters.find(name);
    if (spec == action.parameters.end()) {
      if (!IsValidUtf8(name)) return fail("unknown parameter (its name is not valid UTF-8)");
      std::string accepted;
      for (const auto& [known, unused] : action.parameters) {
        accepted += (accepted.empty() ? "" : ", ") + known;
      }
      return fail("unknown parameter " + Quote(name) +
                  " (accepted: " + (accepted.empty() ? "none" : accepted) + ")");
    }
    if (value.is_null()) {
      // No value: the default or, without one, null itself (dotenv name=''), as the original
      // platform delivers it. A required parameter still needs a value.
      if (!spec->second.default_value && !spec->second.required) out[name] = nullptr;
      continue;
    }
    // A --param text is raw bytes; no parameter document (JSON, YAML) can carry invalid UTF-8.
    if (auto problem = ParameterTextProblem(value)) {
      return fail("parameter " + Quote(name) + ": " + *problem);
    }
    json checked = value;
    if (std::optional<std::string> bad = CheckValue(spec->second, &checked)) {
      return fail("parameter " + Quote(name) + ": " + *bad);
    }
    out[name] = std::move(checked);
  }
  for (const auto& [name, spec] : action.parameters) {
    if (out.contains(name)) continue;
    if (spec.default_value) {
      // A pack's default is held to what a given value is (fuzz target pack_yaml: a default that
      // is not UTF-8 was filled in, and writing the JSON document would have thrown).
      if (auto problem = ParameterTextProblem(*spec.default_value)) {
        return fail("parameter " + Quote(name) + ": its default: " + *problem);
      }
      out[name] = *spec.default_value;
    } else if (spec.required && spec.secret) {
      return fail("missing required secret " + Quote(name) +
                  ": give it with --secrets-file or --secrets-stdin");
    } else if (spec.required) {
      return fail("missing required parameter " + Quote(name));
    }
  }
  return out;
}

}  // namespace packvisor
