// How parameters ∪ secrets reach an action (SPEC §7): one document in the action's format, or
// for inline shell with helpers, non-exported shell variables. Pure functions; the caller owns
// (and wipes) the returned text, which may hold secrets.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "supervisor/packs/packs.h"

namespace packvisor {

// json: one compact line plus "\n". dotenv: sorted key='value' lines, nested objects flattened
// with their keys joined by '.' (only those DotenvFlattens), any other value as its ScalarText
// (arrays and other objects as compact JSON, null as ''), "'" escaped as '\'' (plus a final
// "\n"); the top-level keys are parameter names (identifiers), as ValidateParameters returns them.
// yaml: a YAML document, keys and strings double-quoted, floats with a '.' (1.0e+100).
std::string FormatParameterDocument(const nlohmann::json& inputs, ParameterFormat format);

// The value of `--param NAME=TEXT` for a parameter of type `declared` (SPEC §8): a `string`
// parameter takes the raw text (`2` stays "2"); any other type, or none declared, takes the text
// as JSON when it parses, else the text itself (validation then reports a wrong type). JSON
// nested deeper than kMaxParameterDepth stays text.
nlohmann::json ParameterValueFromText(const std::optional<ParamType>& declared,
                                      const std::string& text);

// The shell wrapper of an inline shell action with helpers: "#!/bin/bash", "set -e", then for
// every input PARAM_<IDENT_UPPER>='...' and <ident>='...' (never exported), then the code.
std::string ShellHelpersScript(const nlohmann::json& inputs, const std::string& code);

// A key made into a shell identifier: every character outside [A-Za-z0-9_] and a leading digit
// become '_'; an empty key becomes "_".
std::string ShellIdentifier(const std::string& key);

// Whether the dotenv document flattens the (nested) object: it is not empty and each key is
// made of [A-Za-z0-9_-]. Any other object is one compact JSON value: '{}' stays visible, and a
// key holding '.', '=', a quote or a newline cannot make two lines with the same key.
bool DotenvFlattens(const nlohmann::json& object);

// value as the text the shell/dotenv forms use: strings raw, numbers/bools as JSON text, null
// empty, arrays/objects compact JSON.
std::string ScalarText(const nlohmann::json& value);

// 'value' with ' escaped as '\''.
std::string SingleQuote(const std::string& value);

}  // namespace packvisor
