#include "envs/templates.h"

#include <array>

namespace packvisor::envs {
namespace {

constexpr std::array<TemplateVar, 5> kVars = {TemplateVar::kPackDir, TemplateVar::kEnvDir,
                                              TemplateVar::kInterpreter, TemplateVar::kManifestPath,
                                              TemplateVar::kActionFile};

std::optional<TemplateVar> VarByName(std::string_view name) {
  for (TemplateVar var : kVars) {
    if (TemplateVarName(var) == name) return var;
  }
  return std::nullopt;
}

std::string KnownList(TemplateVarSet allowed) {
  std::string list;
  for (TemplateVar var : kVars) {
    if ((allowed & Bit(var)) == 0) continue;
    if (!list.empty()) list += ", ";
    list += "{" + std::string(TemplateVarName(var)) + "}";
  }
  return list.empty() ? "none" : list;
}

Error TemplateError(std::string detail) { return Failure("", "", std::move(detail)); }

// A piece of a parsed template: literal text, or a variable.
struct Piece {
  std::string literal;
  std::optional<TemplateVar> var;
};

// Parses `text` into pieces. Placeholders are `{` [a-z_]+ `}`; `{{` and `}}` are literal braces.
Result<std::vector<Piece>> Parse(std::string_view text, TemplateVarSet allowed) {
  std::vector<Piece> pieces;
  std::string literal;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        ++i;
        continue;
      }
      return TemplateError("unmatched '}' at offset " + std::to_string(i) + " (write '}}')");
    }
    if (c != '{') {
      literal += c;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{';
      ++i;
      continue;
    }
    size_t close = text.find('}', i + 1);
    if (close == std::string_view::npos) {
      return TemplateError("unterminated '{' at offset " + std::to_string(i) + " (write '{{')");
    }
    std::string_view name = text.substr(i + 1, close - i - 1);
    std::optional<TemplateVar> var = VarByName(name);
    if (!var) {
      return TemplateError("unknown placeholder {" + std::string(name) +
                           "} (known: " + KnownList(kAllTemplateVars) + ")");
    }
    if ((allowed & Bit(*var)) == 0) {
      return TemplateError("placeholder {" + std::string(name) +
                           "} is not available here (allowed: " + KnownList(allowed) + ")");
    }
    if (!literal.empty()) pieces.push_back(Piece{std::move(literal), std::nullopt});
    literal.clear();
    pieces.push_back(Piece{{}, var});
    i = close;
  }
  if (!literal.empty()) pieces.push_back(Piece{std::move(literal), std::nullopt});
  return pieces;
}

}  // namespace

std::string_view TemplateVarName(TemplateVar var) {
  switch (var) {
    case TemplateVar::kPackDir:
      return "pack_dir";
    case TemplateVar::kEnvDir:
      return "env_dir";
    case TemplateVar::kInterpreter:
      return "interpreter";
    case TemplateVar::kManifestPath:
      return "manifest_path";
    case TemplateVar::kActionFile:
      return "action_file";
  }
  return "?";
}

const std::optional<std::string>& TemplateValues::Get(TemplateVar var) const {
  switch (var) {
    case TemplateVar::kPackDir:
      return pack_dir;
    case TemplateVar::kEnvDir:
      return env_dir;
    case TemplateVar::kInterpreter:
      return interpreter;
    case TemplateVar::kManifestPath:
      return manifest_path;
    case TemplateVar::kActionFile:
      return action_file;
  }
  return pack_dir;  // unreachable
}

Result<TemplateVarSet> ValidateTemplate(std::string_view text, TemplateVarSet allowed) {
  Result<std::vector<Piece>> pieces = Parse(text, allowed);
  if (!pieces.ok()) return pieces.error();
  TemplateVarSet used = 0;
  for (const Piece& piece : *pieces) {
    if (piece.var) used |= Bit(*piece.var);
  }
  return used;
}

Result<std::string> Substitute(std::string_view text, const TemplateValues& values) {
  Result<std::vector<Piece>> pieces = Parse(text, kAllTemplateVars);
  if (!pieces.ok()) return pieces.error();
  std::string out;
  for (const Piece& piece : *pieces) {
    if (!piece.var) {
      out += piece.literal;
      continue;
    }
    const std::optional<std::string>& value = values.Get(*piece.var);
    if (!value) {
      return TemplateError("placeholder {" + std::string(TemplateVarName(*piece.var)) +
                           "} has no value here");
    }
    out += *value;  // copied verbatim: never scanned for placeholders again
  }
  return out;
}

Result<std::vector<std::string>> SubstituteArgv(const std::vector<std::string>& argv,
                                                const TemplateValues& values) {
  std::vector<std::string> out;
  out.reserve(argv.size());
  for (size_t i = 0; i < argv.size(); ++i) {
    Result<std::string> element = Substitute(argv[i], values);
    if (!element.ok()) {
      return Failure("", "argv[" + std::to_string(i) + "]", element.error().message());
    }
    out.push_back(std::move(*element));
  }
  return out;
}

}  // namespace packvisor::envs
