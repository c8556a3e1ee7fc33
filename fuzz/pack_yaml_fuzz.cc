// pack.yaml and action YAML: InspectPackText on a pack.yaml and one action file, the whole path a
// pack's files take (the YAML budget check, pack metadata, action metadata with its parameters,
// their defaults and the runtime choice), then ValidateParameters on the loaded action.
//
// Input: the action YAML; or pack.yaml, a line "#action", then the action YAML.
// Invariants: nothing throws; every diagnostic is one clean line about one of the two files, with
// a line inside it; a `secret: true` parameter's default never appears in a diagnostic or in
// ValidateParameters' error; the defaults ValidateParameters fills in validate again unchanged.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "supervisor/packs/pack_yaml.h"
#include "supervisor/packs/packs.h"

namespace {

using packvisor::Diagnostic;
using packvisor::PackInspection;
using packvisor::fuzz::CheckOneLineMessage;

constexpr char kPackDir[] = "/fuzz/packs/fuzz";
constexpr char kSeparator[] = "\n#action\n";

const packvisor::envs::RuntimeRegistry* Runtimes() {
  static const auto* registry = [] {
    auto loaded = packvisor::envs::RuntimeRegistry::Load(
        std::string(PACKVISOR_SOURCE_DIR) + "/config/runtimes", std::nullopt);
    if (!loaded) packvisor::fuzz::Fail("the built-in runtimes load", loaded.error().message());
    return new packvisor::envs::RuntimeRegistry(std::move(*loaded));
  }();
  return registry;
}

// The action's stem: its `name:` when the text has a plain one (so that most inputs name their
// file), else "action".
std::string StemOf(std::string_view action) {
  size_t at = 0;
  if (action.rfind("name:", 0) != 0) {
    at = action.find("\nname:");
    if (at == std::string_view::npos) return "action";
    ++at;
  }
  size_t start = action.find(':', at) + 1;
  size_t end = action.find('\n', start);
  std::string_view name = action.substr(start, end == std::string_view::npos ? end : end - start);
  while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\r')) name.remove_suffix(1);
  if (name.empty() || name.size() > 64) return "action";
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return "action";
  }
  return std::string(name);
}

bool IsAlnum(const std::string& text) {
  for (char c : text) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

// A scalar of a secret default and the byte offset in the action text where its node starts.
struct SecretScalar {
  std::string text;
  size_t at = 0;
};

// Each node once, by where it starts (an alias is its anchor's node: `&a [x, *a, *a]` is a cycle
// in yaml-cpp's graph, which the loader refuses as nested too deeply), and bounded: 64 levels,
// 10,000 nodes.
void CollectScalars(const YAML::Node& node, std::vector<SecretScalar>* out,
                    std::set<std::pair<int, int>>* seen, int depth, int* nodes_left) {
  if (depth > 64 || --*nodes_left < 0) return;
  int at = node.Mark().pos;
  if (at >= 0 && !seen->insert({at, static_cast<int>(node.Type())}).second) return;
  if (node.IsScalar()) {
    if (at >= 0) out->push_back({node.Scalar(), static_cast<size_t>(at)});
  } else if (node.IsSequence() || node.IsMap()) {
    for (const auto& entry : node) {
      CollectScalars(node.IsMap() ? entry.second : entry, out, seen, depth + 1, nodes_left);
      if (*nodes_left < 0) return;
    }
  }
}

// Where the document's public scalars start: every scalar reachable from the root but through
// the `default` of a secret parameter's spec (`secret_specs`, by start and type). An alias to a
// public node inside a secret default (`a: &a {type: x, secret: true, default: [*a]}`) reaches
// public text that the loader may quote as such. False when the walk could not finish (1,024
// levels of aliases, 20,000 nodes): the positions are then incomplete.
bool CollectPublic(const YAML::Node& node, const std::set<std::pair<int, int>>& secret_specs,
                   std::set<int>* public_at, std::set<std::pair<int, int>>* seen, int depth,
                   int* nodes_left) {
  if (depth > 1024 || --*nodes_left < 0) return false;
  int at = node.Mark().pos;
  std::pair<int, int> id{at, static_cast<int>(node.Type())};
  if (at >= 0 && !seen->insert(id).second) return true;
  if (node.IsScalar()) {
    if (at >= 0) public_at->insert(at);
  } else if (node.IsSequence()) {
    for (const auto& element : node) {
      if (!CollectPublic(element, secret_specs, public_at, seen, depth + 1, nodes_left)) {
        return false;
      }
    }
  } else if (node.IsMap()) {
    const bool secret_spec = at >= 0 && secret_specs.count(id) > 0;
    for (const auto& entry : node) {
      if (!CollectPublic(entry.first, secret_specs, public_at, seen, depth + 1, nodes_left)) {
        return false;
      }
      if (secret_spec && entry.first.IsScalar() && entry.first.Scalar() == "default") continue;
      if (!CollectPublic(entry.second, secret_specs, public_at, seen, depth + 1, nodes_left)) {
        return false;
      }
    }
  }
  return true;
}

// The scalars of the defaults of `secret: true` parameters, in either form of `parameters:`,
// read from YAML that ParseYaml accepts (bounded depth and size), with where each starts. Only
// alphanumeric ones of 4 characters or more are kept: they can be replaced in the text to tell a
// leak from a chance match.
std::vector<SecretScalar> SecretDefaults(const std::string& action_text) {
  std::vector<SecretScalar> out;
  packvisor::detail::Problems problems;
  std::optional<YAML::Node> root =
      packvisor::detail::ParseYaml("/fuzz/secret-scan.yaml", action_text, &problems);
  if (!root) return out;
  try {
    YAML::Node parameters = (*root)["parameters"];
    if (!parameters || !parameters.IsMap()) return out;
    if (parameters["properties"] && parameters["properties"].IsMap()) {
      parameters = parameters["properties"];
    }
    std::set<std::pair<int, int>> secret_specs;
    for (const auto& entry : parameters) {
      YAML::Node spec = entry.second;
      if (!spec.IsMap() || !spec["secret"] || !spec["secret"].IsScalar()) continue;
      std::optional<bool> secret = packvisor::detail::ParseLenientBool(spec["secret"].Scalar());
      if (!secret || !*secret || !spec["default"]) continue;
      secret_specs.insert({spec.Mark().pos, static_cast<int>(spec.Type())});
      std::vector<SecretScalar> scalars;
      std::set<std::pair<int, int>> seen;
      int nodes_left = 10000;
      CollectScalars(spec["default"], &scalars, &seen, 0, &nodes_left);
      for (SecretScalar& scalar : scalars) {
        if (scalar.text.size() >= 4 && IsAlnum(scalar.text)) out.push_back(std::move(scalar));
      }
    }
    if (out.empty()) return out;
    std::set<int> public_at;
    std::set<std::pair<int, int>> seen;
    int nodes_left = 20000;
    if (!CollectPublic(*root, secret_specs, &public_at, &seen, 0, &nodes_left)) return {};
    std::erase_if(out, [&](const SecretScalar& scalar) {
      return public_at.count(static_cast<int>(scalar.at)) > 0;
    });
  } catch (const YAML::Exception&) {
    // A shape this scan does not follow: no secret to look for.
    return {};
  }
  // Sorted by letters, each (letters, start) once: two parameters may share an anchor.
  std::sort(out.begin(), out.end(), [](const SecretScalar& a, const SecretScalar& b) {
    return std::tie(a.text, a.at) < std::tie(b.text, b.at);
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const SecretScalar& a, const SecretScalar& b) {
                          return a.text == b.text && a.at == b.at;
                        }),
            out.end());
  return out;
}

// What ValidateParameters makes of an empty request to the action, when it loaded.
std::optional<packvisor::Result<nlohmann::json>> FillDefaults(const PackInspection& inspection,
                                                              const std::string& stem) {
  const packvisor::Action* action = inspection.pack ? inspection.pack->FindAction(stem) : nullptr;
  if (!action) return std::nullopt;
  return packvisor::ValidateParameters(*action, nlohmann::json::object());
}

// Everything the loader says about the files, and the refusal of `filled` when there is one.
std::string AllText(const PackInspection& inspection,
                    const std::optional<packvisor::Result<nlohmann::json>>& filled) {
  std::string text;
  for (const Diagnostic& d : inspection.diagnostics) text += d.TextWithSeverity() + "\n";
  if (!inspection.pack) return text;
  for (const auto& bad : inspection.pack->bad_actions) text += bad.reason + "\n";
  if (filled && !filled->ok()) text += filled->error().message() + "\n";
  return text;
}

std::string AllText(const PackInspection& inspection, const std::string& stem) {
  return AllText(inspection, FillDefaults(inspection, stem));
}

size_t Lines(std::string_view text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
}

PackInspection Inspect(const std::string& pack_yaml, const std::string& stem,
                       const std::string& action) {
  return packvisor::detail::InspectPackText(kPackDir, pack_yaml, {{stem, action}}, Runtimes());
}

// Where the default's own copy of the secret's letters is: the first one after the node's start
// past quotes, block-scalar indicators and white space. Nothing when there is no such occurrence
// (an alias, an escape).
std::optional<size_t> OwnCopy(const std::string& action, const SecretScalar& secret) {
  for (size_t at = secret.at; at < action.size() && at < secret.at + 64; ++at) {
    if (action.compare(at, secret.text.size(), secret.text) == 0) return at;
    if (std::string_view("\"' |>-+0123456789\r\n\t").find(action[at]) == std::string_view::npos)
      break;
  }
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = packvisor::fuzz::AsText(data, size);
  std::string pack_yaml = "ref: fuzz\nversion: 1.0.0\n";
  std::string action(input);
  if (size_t at = input.find(kSeparator); at != std::string_view::npos) {
    pack_yaml = std::string(input.substr(0, at));
    action = std::string(input.substr(at + sizeof(kSeparator) - 1));
  }
  const std::string stem = StemOf(action);
  const std::string pack_path = std::string(kPackDir) + "/pack.yaml";
  const std::string action_path = std::string(kPackDir) + "/actions/" + stem + ".yaml";

  packvisor::fuzz::NoThrow("InspectPackText", [&] {
    PackInspection inspection = Inspect(pack_yaml, stem, action);
    for (const Diagnostic& d : inspection.diagnostics) {
      std::string text = d.TextWithSeverity();
      CheckOneLineMessage(text);
      PV_FUZZ_CHECK(d.file == pack_path || d.file == action_path, "about another file: " + text);
      size_t lines = Lines(d.file == pack_path ? pack_yaml : action);
      PV_FUZZ_CHECK(d.line >= 0 && static_cast<size_t>(d.line) <= lines,
                    "a line outside the file: " + text);
    }
    if (inspection.pack) {
      for (const auto& bad : inspection.pack->bad_actions) CheckOneLineMessage(bad.reason);
    }

    const std::optional<packvisor::Result<nlohmann::json>> filled = FillDefaults(inspection, stem);
    if (filled && !filled->ok()) {
      CheckOneLineMessage(filled->error().message());
    } else if (filled) {
      auto again = packvisor::ValidateParameters(*inspection.pack->FindAction(stem), **filled);
      PV_FUZZ_CHECK(again.ok() && *again == **filled,
                    "the filled-in defaults do not validate as themselves: " + (*filled)->dump());
    }
    const std::string said = AllText(inspection, filled);
    const std::vector<SecretScalar> secrets = SecretDefaults(action);
    // Per letters (the secrets are sorted by them), two loads at most.
    for (size_t first = 0; first < secrets.size();) {
      const std::string& letters = secrets[first].text;
      size_t end = first;
      std::vector<size_t> own_copies;
      for (; end < secrets.size() && secrets[end].text == letters; ++end) {
        // Not found: an alias, an escape. Such a copy cannot be told from the others.
        if (std::optional<size_t> own = OwnCopy(action, secrets[end])) {
          own_copies.push_back(*own);
        }
      }
      first = end;
      if (own_copies.empty() || said.find(letters) == std::string::npos) continue;
      // The messages' own words ("string", "default"): still said when every copy of the letters
      // is replaced by others of its length.
      const std::string other_pack = packvisor::fuzz::ReplaceCopies(pack_yaml, letters);
      const std::string none_action = packvisor::fuzz::ReplaceCopies(action, letters);
      if (AllText(Inspect(other_pack, stem, none_action), stem).find(letters) !=
          std::string::npos) {
        continue;
      }
      // Where else the input writes the same letters is public text (a type, a key) that a
      // diagnostic may quote: every copy but the secret defaults' own is replaced. The letters
      // still said can only come from a secret default: a leak.
      const std::string own_action = packvisor::fuzz::ReplaceCopies(action, letters, own_copies);
      packvisor::fuzz::CheckSecretAbsent(AllText(Inspect(other_pack, stem, own_action), stem),
                                         letters);
    }
  });
  return 0;
}
