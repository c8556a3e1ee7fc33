// Fixtures for the `packvisor run` / RunExecution integration tests: a temporary packs_base_dir
// with packs and actions written on demand, a temporary config TOML pointing at it, and helpers
// that run an action in-process (RunExecution) or through the real binary, checking every time
// that the pack tree was not written (SPEC §5: "The pack directory is never written").
//
// Header-only on purpose: tests/CMakeLists.txt builds the integration tests from
// tests/integration/*_test.cc plus tests/support/harness.cc only.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "supervisor/config/builtin_runtimes.h"
#include "supervisor/config/config.h"
#include "supervisor/executions/execution.h"
#include "tests/support/harness.h"

namespace packvisor::testing {

// One temporary world: {root}/packs (packs_base_dir), {root}/envs, {root}/state, {root}/runtimes
// (runtimes_dir, only when a runtime definition was written) and {root}/packvisor.toml.
// Files are written world-readable (dirs 0755, files 0644): the sandbox runs as an unprivileged
// uid.
class RunWorld {
 public:
  RunWorld() = default;
  RunWorld(const RunWorld&) = delete;
  RunWorld& operator=(const RunWorld&) = delete;

  const std::string& root() const { return dir_.path(); }
  std::string PacksDir() const { return dir_.Path("packs"); }
  std::string PackDir(const std::string& pack) const { return PacksDir() + "/" + pack; }
  std::string StateDir() const { return dir_.Path("state"); }
  std::string EnvsDir() const { return dir_.Path("envs"); }
  std::string ConfigPath() const { return dir_.Path("packvisor.toml"); }

  // pack.yaml with `ref: pack` (or the given text).
  void WritePack(const std::string& pack, const std::string& pack_yaml = "") const {
    dir_.Write(
        "packs/" + pack + "/pack.yaml",
        pack_yaml.empty() ? "ref: " + pack + "\nversion: 1.0.0\ndescription: test\n" : pack_yaml);
    std::filesystem::create_directories(PackDir(pack) + "/actions");
    chmod((PackDir(pack) + "/actions").c_str(), 0755);
  }

  // actions/<name>.yaml (`action_yaml` verbatim) and, when `script_name` is not empty,
  // actions/<script_name> with `script`. Writes pack.yaml too when it is missing.
  void WriteAction(const std::string& pack, const std::string& name, const std::string& action_yaml,
                   const std::string& script_name = "", const std::string& script = "") const {
    if (!std::filesystem::exists(PackDir(pack) + "/pack.yaml")) WritePack(pack);
    dir_.Write("packs/" + pack + "/actions/" + name + ".yaml", action_yaml);
    if (!script_name.empty()) {
      dir_.Write("packs/" + pack + "/actions/" + script_name, script, 0644);
    }
  }

  // A simple action: name, runner_type, entry_point and extra YAML lines (parameters, formats).
  void WriteSimpleAction(const std::string& pack, const std::string& name,
                         const std::string& runner_type, const std::string& script_name,
                         const std::string& script, const std::string& extra_yaml = "") const {
    WriteAction(pack, name,
                "name: " + name + "\nrunner_type: " + runner_type +
                    "\nentry_point: " + script_name + "\n" + extra_yaml,
                script_name, script);
  }

  // Any file below the root (e.g. a secrets file), mode as given.
  void WriteFile(const std::string& relative, const std::string& content, int mode = 0644) const {
    dir_.Write(relative, content, mode);
  }
  std::string Path(const std::string& relative) const { return dir_.Path(relative); }

  // runtimes/<name>.toml: a runtime definition overriding the built-in of the same name.
  void WriteRuntime(const std::string& file_name, const std::string& toml) {
    dir_.Write("runtimes/" + file_name, toml);
    has_runtimes_ = true;
  }

  // Writes packvisor.toml (packs, envs and state below the root; runtimes_dir when any runtime
  // was written) followed by `extra_toml` (e.g. "[execution]\nkill_grace_seconds = 1\n").
  std::string WriteConfig(const std::string& extra_toml = "") const {
    std::string text = "packs_base_dir = \"" + PacksDir() + "\"\nruntime_envs_dir = \"" +
                       EnvsDir() + "\"\nstate_dir = \"" + StateDir() + "\"\n";
    if (has_runtimes_) text += "runtimes_dir = \"" + dir_.Path("runtimes") + "\"\n";
    text += extra_toml;
    dir_.Write("packvisor.toml", text, 0644);
    return ConfigPath();
  }

  // The config as packvisor loads it (writes the default file first if there is none).
  Config LoadedConfig() const {
    if (!std::filesystem::exists(ConfigPath())) WriteConfig();
    auto config = LoadConfigFile(ConfigPath());
    if (!config) throw std::runtime_error("config: " + config.error().message());
    return *config;
  }

  // Everything under packs/ (paths, modes, owners, sizes, contents, mtimes).
  std::string PacksFingerprint() const { return TreeFingerprint(PacksDir()); }

  // In-process execution with `config` (the test process is root: a real sandbox). Checks that
  // the pack tree is unchanged by the run.
  ExecutionResult Run(const Config& config, RunRequest request) const {
    auto runtimes = LoadRuntimeRegistry(config);
    if (!runtimes) throw std::runtime_error("runtimes: " + runtimes.error().message());
    std::string before = PacksFingerprint();
    ExecutionContext context{config, *runtimes};
    ExecutionResult result = RunExecution(context, std::move(request));
    EXPECT_EQ(PacksFingerprint(), before) << "the run wrote into the pack directory";
    return result;
  }
  ExecutionResult Run(RunRequest request) const { return Run(LoadedConfig(), std::move(request)); }

  // `packvisor --config {root}/packvisor.toml ARGS...` (writes the default config when there is
  // none). Checks that the pack tree is unchanged by the run.
  CommandResult Cli(const std::vector<std::string>& args, const std::string& stdin_data = {},
                    const std::vector<std::string>& extra_env = {}) const {
    if (!std::filesystem::exists(ConfigPath())) WriteConfig();
    std::vector<std::string> full = {"--config", ConfigPath()};
    full.insert(full.end(), args.begin(), args.end());
    std::string before = PacksFingerprint();
    CommandResult result = RunPackvisor(full, stdin_data, extra_env);
    EXPECT_EQ(PacksFingerprint(), before) << "the run wrote into the pack directory";
    return result;
  }

 private:
  TempDir dir_;
  bool has_runtimes_ = false;
};

inline RunRequest Request(const std::string& action_ref,
                          nlohmann::json parameters = nlohmann::json::object(),
                          nlohmann::json secrets = nlohmann::json::object()) {
  RunRequest request;
  request.action_ref = action_ref;
  request.parameters = std::move(parameters);
  request.secrets = std::move(secrets);
  return request;
}

inline RunRequest InlineRequest(const std::string& action_ref, const std::string& code,
                                nlohmann::json parameters = nlohmann::json::object(),
                                nlohmann::json secrets = nlohmann::json::object()) {
  RunRequest request = Request(action_ref, std::move(parameters), std::move(secrets));
  request.inline_code = code;
  return request;
}

// A short description of a result for failure messages.
inline std::string Describe(const ExecutionResult& result) { return result.ToJson().dump(); }

// Top-level entries of `dir` (names).
inline std::set<std::string> DirectoryEntries(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// Entries of /tmp that appeared between two snapshots and look like something packvisor could
// have left there: the names it uses inside the sandbox's private /tmp (a parameter or inline-code
// file), or anything owned by a sandbox host id (100000 and up). /tmp is shared with every other
// test running in parallel, so other new entries (their scratch files and canaries) are not
// counted: packvisor itself never writes to the host's /tmp.
inline std::vector<std::string> NewTmpEntries(const std::set<std::string>& before) {
  std::vector<std::string> added;
  for (const std::string& name : DirectoryEntries("/tmp")) {
    if (before.count(name)) continue;
    // Other tests' scratch directories (TempDir), some chowned to the exec id so that a sandbox
    // can write there: created by the harness, never by packvisor.
    if (name.rfind(kTestScratchName, 0) == 0) continue;
    bool packvisor_name =
        name.rfind("packvisor-parameters", 0) == 0 || name.rfind("packvisor-inline", 0) == 0;
    struct stat st {};
    bool sandbox_owned = lstat(("/tmp/" + name).c_str(), &st) == 0 && st.st_uid >= 100000;
    if (packvisor_name || sandbox_owned) added.push_back(name);
  }
  return added;
}

// Regular files under `root` (not following symlinks, not crossing into /proc-like trees) whose
// mtime or ctime is at or after `since` and whose content (first 16 MiB) contains `needle`.
inline std::vector<std::string> RecentFilesContaining(const std::string& root,
                                                      const std::string& needle,
                                                      std::chrono::system_clock::time_point since) {
  std::vector<std::string> found;
  std::error_code ec;
  auto since_s = std::chrono::duration_cast<std::chrono::seconds>(since.time_since_epoch()).count();
  auto options = std::filesystem::directory_options::skip_permission_denied;
  for (auto it = std::filesystem::recursive_directory_iterator(root, options, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (st.st_mtim.tv_sec < since_s && st.st_ctim.tv_sec < since_s) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string content(std::min<size_t>(static_cast<size_t>(st.st_size), 16u << 20), '\0');
    in.read(content.data(), static_cast<std::streamsize>(content.size()));
    content.resize(static_cast<size_t>(in.gcount()));
    if (content.find(needle) != std::string::npos) found.push_back(it->path().string());
  }
  return found;
}

}  // namespace packvisor::testing
