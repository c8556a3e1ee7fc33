// Internals of pack loading: the `parameters:` schema of an action file. The public parts
// (ParameterSpec, ParamTypeName, ValidateParameters) are declared in supervisor/packs/packs.h;
// these are for supervisor/packs/packs.cc only and live in packvisor::detail.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>

#include "supervisor/packs/pack_yaml.h"
#include "supervisor/packs/packs.h"

namespace packvisor::detail {

// The `parameters:` value of an action file, in either form, into `out`:
//   flat:        {name: {type, required, default, ...}, ...}
//   JSON Schema: {type: object, properties: {name: {type, default, ...}, ...}, required: [names]}
// The JSON-Schema form is recognised by a scalar `type` at the top (a flat parameter's value is
// always a mapping); it means the same as the flat form, with the names of `required` marked
// required. Every problem is recorded in `ctx`; a parameter with an error is left out.
void ParseParameters(const FileContext& ctx, const YAML::Node& node, Budget* budget,
                     std::map<std::string, ParameterSpec>* out);

// The specification of one parameter (`prefix` is its key in messages, e.g. "parameters.who"),
// its default and enum values read with the declared type as hint, charged to `budget`.
// nullopt when it has an error; every problem is recorded in `ctx`.
std::optional<ParameterSpec> ParseParameter(const FileContext& ctx, const std::string& prefix,
                                            const YAML::Node& node, Budget* budget);

// ^[A-Za-z_][A-Za-z0-9_]{0,127}$: parameter names become shell variables (SPEC §7).
bool IsValidParameterName(const std::string& name);

}  // namespace packvisor::detail
