// Internals of pack loading: the `parameters:` schema of an action file. The public parts
// (ParameterSpec, ParamTypeName, ValidateParameters) are declared in supervisor/packs.h; these
// are for supervisor/packs.cc only and live in packvisor::detail.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

#include "supervisor/pack_yaml.h"
#include "supervisor/packs.h"

namespace packvisor::detail {

// The specification of parameter `name` (`parameters.<name>` in the file), its default and enum
// values read with the declared type as hint, charged to `budget`. nullopt when it has any
// problem; every problem is recorded in `ctx`.
std::optional<ParameterSpec> ParseParameter(const FileContext& ctx, const std::string& name,
                                            const YAML::Node& node, Budget* budget);

// ^[A-Za-z_][A-Za-z0-9_]{0,127}$: parameter names become shell variables (SPEC §7).
bool IsValidParameterName(const std::string& name);

}  // namespace packvisor::detail
