// Helpers of the pack-loading unit tests: the fixture and runtime directories of the source tree,
// a temporary pack written on demand, and diagnostics as text. Header-only (unit tests need none
// of the launch harness).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "envs/runtime.h"
#include "supervisor/packs/packs.h"
#include "tests/support/scratch_dir.h"

namespace packvisor::testing {

// PACKVISOR_SOURCE_RUNTIMES_DIR is "<source>/config/runtimes".
inline const std::string kRuntimesDir = PACKVISOR_SOURCE_RUNTIMES_DIR;
inline const std::string kFixtures =
    std::filesystem::path(kRuntimesDir).parent_path().parent_path().string() +
    "/tests/fixtures/packs";

// A pack "p" in a temporary base directory, with one shell action "run" by default.
class PackBuilder {
 public:
  PackBuilder() {
    base_.Write("p/pack.yaml", "ref: p\nversion: \"1\"\n");
    base_.Write("p/actions/run.sh", "echo run\n");
  }
  std::string dir() const { return base_.path() + "/p"; }
  const std::string& base() const { return base_.path(); }
  std::string Write(const std::string& name, const std::string& text) const {
    return base_.Write("p/" + name, text);
  }
  std::string Action(const std::string& text) const { return Write("actions/run.yaml", text); }

 private:
  ScratchDir base_;
};

// The built-in runtime definitions of the source tree.
inline const envs::RuntimeRegistry& Runtimes() {
  static const envs::RuntimeRegistry* registry = [] {
    Result<envs::RuntimeRegistry> loaded = envs::RuntimeRegistry::Load(kRuntimesDir, std::nullopt);
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.error().message();
      return new envs::RuntimeRegistry();
    }
    return new envs::RuntimeRegistry(std::move(*loaded));
  }();
  return *registry;
}

inline bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

inline std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

// Every diagnostic of at least `least` severity, "file:line: severity: key: detail" per line.
inline std::string Joined(const std::vector<Diagnostic>& diagnostics,
                          Severity least = Severity::kNote) {
  std::string out;
  for (const Diagnostic& d : diagnostics) {
    if (d.severity >= least) out += d.TextWithSeverity() + "\n";
  }
  return out;
}

}  // namespace packvisor::testing
